//! Typed values of conditions (strings, integers, booleans, GUIDs, date-times) and the attributes a request carries.

use std::fmt;

/// A point in time with the precision of conditions' `DateTime` operators (100 ns ticks, since 1970-01-01 UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    ticks: i128,
}

impl DateTime {
    /// From seconds and nanoseconds since the Unix epoch (how the caller passes the current time in).
    pub fn from_unix(seconds: i64, nanos: u32) -> DateTime {
        DateTime { ticks: i128::from(seconds) * 10_000_000 + i128::from(nanos / 100) }
    }

    /// 100 ns ticks since the Unix epoch.
    pub fn ticks(self) -> i128 {
        self.ticks
    }

    /// `yyyy-mm-ddThh:mm:ss[.f{1,7}]Z`, the format conditions use (`'2022-06-01T00:00:00.0Z'`). Only UTC (`Z`).
    pub fn parse(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = b.get(r)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            part.iter()
                .try_fold(0i64, |acc, d| acc.checked_mul(10)?.checked_add(i64::from(d - b'0')))
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let mut rest = &b[19..];
        let mut fraction_ticks = 0i64;
        if rest.first() == Some(&b'.') {
            let frac: Vec<u8> = rest[1..].iter().copied().take_while(u8::is_ascii_digit).collect();
            if frac.is_empty() || frac.len() > 7 {
                return None;
            }
            let mut value = frac.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            for _ in frac.len()..7 {
                value *= 10;
            }
            fraction_ticks = value;
            rest = &rest[1 + frac.len()..];
        }
        if !matches!(rest, [b'Z'] | [b'z']) {
            return None;
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(DateTime { ticks: i128::from(seconds) * 10_000_000 + i128::from(fraction_ticks) })
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.ticks.div_euclid(10_000_000) as i64;
        let fraction = self.ticks.rem_euclid(10_000_000);
        let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{fraction:07}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `00000000-0000-0000-0000-000000000000` (any case) as a number; `None` for anything else.
pub fn parse_guid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let digit = (c as char).to_digit(16)?;
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

fn format_guid(g: u128) -> String {
    let hex = format!("{g:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// One value of an attribute or a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Guid(u128),
    DateTime(DateTime),
}

impl Value {
    /// The value as a string operand. Strings are themselves; GUIDs print lower-case; other types are not strings.
    pub(crate) fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
            Value::Guid(g) => Some(std::borrow::Cow::Owned(format_guid(*g))),
            _ => None,
        }
    }

    pub(crate) fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// A GUID, or a string holding one; a resource ID's last segment counts (a role assignment request's
    /// `roleDefinitionId` is a full ID, and `GuidEquals` compares its GUID).
    pub(crate) fn as_guid(&self) -> Option<u128> {
        match self {
            Value::Guid(g) => Some(*g),
            Value::String(s) => parse_guid(s.rsplit('/').next().unwrap_or_default()),
            _ => None,
        }
    }

    pub(crate) fn as_datetime(&self) -> Option<DateTime> {
        match self {
            Value::DateTime(d) => Some(*d),
            Value::String(s) => DateTime::parse(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "'{s}'"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Guid(g) => f.write_str(&format_guid(*g)),
            Value::DateTime(d) => write!(f, "'{d}'"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Integer(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}
impl From<DateTime> for Value {
    fn from(d: DateTime) -> Value {
        Value::DateTime(d)
    }
}

/// Where an attribute comes from: `@Resource`, `@Request`, `@Principal` or `@Environment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeSource {
    Resource,
    Request,
    Principal,
    Environment,
}

impl AttributeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeSource::Resource => "Resource",
            AttributeSource::Request => "Request",
            AttributeSource::Principal => "Principal",
            AttributeSource::Environment => "Environment",
        }
    }

    /// The source named after `@`, case-insensitively.
    pub fn parse(s: &str) -> Option<AttributeSource> {
        [
            AttributeSource::Resource,
            AttributeSource::Request,
            AttributeSource::Principal,
            AttributeSource::Environment,
        ]
        .into_iter()
        .find(|source| source.as_str().eq_ignore_ascii_case(s))
    }
}

/// The marker Azure puts after a tag key to say the key is case-sensitive (`tags:Project<$key_case_sensitive$>`).
pub const CASE_SENSITIVE_KEY_MARKER: &str = "<$key_case_sensitive$>";

/// Whether an attribute name in a condition names the attribute the request carries. Names compare ASCII
/// case-insensitively, except names carrying [`CASE_SENSITIVE_KEY_MARKER`], which compare exactly.
pub(crate) fn attribute_names_match(in_condition: &str, in_request: &str) -> bool {
    if in_condition.contains(CASE_SENSITIVE_KEY_MARKER) {
        in_condition == in_request
    } else {
        in_condition.eq_ignore_ascii_case(in_request)
    }
}

/// The attributes of one request, by source and name, each with one or more values (multi-valued attributes, such
/// as a principal's custom security attributes, have several), and the request's sub-operation if it has one.
///
/// An attribute the request does not carry is *missing*, which is not the same as present with no values: see
/// [`Condition`](super::Condition) for how a condition treats a missing attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    sub_operation: Option<String>,
    entries: Vec<(AttributeSource, String, Vec<Value>)>,
}

impl Attributes {
    /// No attributes and no sub-operation.
    pub const fn new() -> Attributes {
        Attributes { sub_operation: None, entries: Vec::new() }
    }

    /// The request's sub-operation (e.g. `Blob.List`), which `SubOperationMatches` and the older
    /// `@Request[subOperation]` spelling test.
    pub fn with_sub_operation(mut self, sub_operation: impl Into<String>) -> Attributes {
        self.sub_operation = Some(sub_operation.into());
        self
    }

    /// A single-valued attribute.
    pub fn with(
        self,
        source: AttributeSource,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Attributes {
        self.with_values(source, name, vec![value.into()])
    }

    /// A multi-valued attribute (possibly with no values: present, but empty).
    pub fn with_values(
        mut self,
        source: AttributeSource,
        name: impl Into<String>,
        values: Vec<Value>,
    ) -> Attributes {
        self.set(source, name, values);
        self
    }

    /// Set (or replace) an attribute's values.
    pub fn set(&mut self, source: AttributeSource, name: impl Into<String>, values: Vec<Value>) {
        let name = name.into();
        match self.entries.iter_mut().find(|(s, n, _)| *s == source && *n == name) {
            Some(entry) => entry.2 = values,
            None => self.entries.push((source, name, values)),
        }
    }

    pub fn sub_operation(&self) -> Option<&str> {
        self.sub_operation.as_deref()
    }

    /// The values of the attribute a condition names, or `None` when the request does not carry it.
    pub fn get(&self, source: AttributeSource, name: &str) -> Option<&[Value]> {
        self.entries
            .iter()
            .find(|(s, n, _)| *s == source && attribute_names_match(name, n))
            .map(|(_, _, values)| values.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.sub_operation.is_none() && self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_order_and_print() {
        let a = DateTime::parse("2022-06-01T00:00:00.0Z").unwrap();
        let b = DateTime::parse("2022-06-01T00:00:00.0000001Z").unwrap();
        assert!(a < b);
        assert_eq!(b.ticks() - a.ticks(), 1);
        assert_eq!(a, DateTime::from_unix(1_654_041_600, 0));
        assert_eq!(a.to_string(), "2022-06-01T00:00:00.0000000Z");
        assert_eq!(
            DateTime::parse("2024-02-29T23:59:59Z").unwrap().to_string(),
            "2024-02-29T23:59:59.0000000Z"
        );
        assert_eq!(DateTime::parse("1969-12-31T23:59:59Z").unwrap().ticks(), -10_000_000);
        for bad in [
            "2023-02-29T00:00:00Z",
            "2022-06-01 00:00:00Z",
            "2022-06-01T00:00:00",
            "2022-06-01T00:00:00+01:00",
            "2022-13-01T00:00:00Z",
            "2022-06-01T24:00:00Z",
            "2022-06-01T00:00:00.12345678Z",
            "2022-06-01T00:00:00.Z",
            "2022-6-01T00:00:00Z",
        ] {
            assert!(DateTime::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn guids_parse_case_insensitively() {
        let g = parse_guid("7F951DDA-4ED3-4680-A7CA-43FE172D538D").unwrap();
        assert_eq!(Some(g), parse_guid("7f951dda-4ed3-4680-a7ca-43fe172d538d"));
        assert_eq!(format_guid(g), "7f951dda-4ed3-4680-a7ca-43fe172d538d");
        assert!(parse_guid("7f951dda4ed34680a7ca43fe172d538d").is_none());
        assert!(parse_guid("7f951dda-4ed3-4680-a7ca-43fe172d538g").is_none());
        let id = Value::from(
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
        );
        assert_eq!(id.as_guid(), Some(g));
    }

    #[test]
    fn attribute_lookup_ignores_case_unless_marked() {
        let attrs = Attributes::new()
            .with(
                AttributeSource::Request,
                "Microsoft.ContainerRegistry/registries/repositories:name",
                "a",
            )
            .with(AttributeSource::Resource, "x/tags:Project<$key_case_sensitive$>", "b");
        assert!(attrs
            .get(
                AttributeSource::Request,
                "microsoft.containerregistry/REGISTRIES/repositories:NAME"
            )
            .is_some());
        assert!(attrs
            .get(
                AttributeSource::Resource,
                "microsoft.containerregistry/registries/repositories:name"
            )
            .is_none());
        assert!(attrs
            .get(AttributeSource::Resource, "x/tags:Project<$key_case_sensitive$>")
            .is_some());
        assert!(attrs
            .get(AttributeSource::Resource, "x/tags:project<$key_case_sensitive$>")
            .is_none());
    }
}
