//! Output of command results, byte for byte as the Azure CLI (knack's `output.py`) prints them:
//! `json` (sorted keys, 2-space indent), `yaml`, `table`, `tsv` and `none`, after `--query`.
//!
//! A command result of `null` (or a query that yields `null`) prints nothing at all, as in knack.

mod query;
mod table;
mod tsv;

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::args::OutputFormat;

pub use query::{Query, QueryResult};

/// What the formatters need to know besides the value itself.
#[derive(Debug, Clone, Default)]
pub struct RenderContext {
    /// A `--query` was applied: table columns follow the result's key order instead of being sorted.
    pub query_active: bool,
    /// Objects built by the query's multiselect hashes (key lists in query order): TSV keeps their order.
    pub ordered_objects: Vec<Vec<String>>,
}

/// Output errors that knack reports instead of printing.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("Table output unavailable. Use the --query option to specify an appropriate query. Use --debug for more info.")]
    TableUnavailable,
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Applies `query` (when given) and renders `result` in `format`. `None` means print nothing.
pub fn render(
    result: &Value,
    query: Option<&Query>,
    format: OutputFormat,
) -> Result<Option<String>, anyhow::Error> {
    let (value, context) = match query {
        Some(query) => {
            let QueryResult { value, ordered_objects } = query.search(result)?;
            (value, RenderContext { query_active: true, ordered_objects })
        }
        None => (result.clone(), RenderContext::default()),
    };
    if value.is_null() {
        return Ok(None);
    }
    Ok(Some(format_value(&value, format, &context)?))
}

/// Renders an already-queried value.
pub fn format_value(
    value: &Value,
    format: OutputFormat,
    context: &RenderContext,
) -> Result<String, OutputError> {
    Ok(match format {
        // Colour is only added on terminals by az; berth prints the plain forms.
        OutputFormat::Json | OutputFormat::Jsonc => json(value),
        OutputFormat::Yaml | OutputFormat::Yamlc => yaml(value)?,
        OutputFormat::Table => table::render(value, context)?,
        OutputFormat::Tsv => tsv::render(value, context),
        OutputFormat::None => String::new(),
    })
}

/// `json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(',', ': ')) + '\n'`.
pub fn json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value, 0);
    out.push('\n');
    out
}

fn write_json(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&python_number(n)),
        Value::String(s) => out.push_str(&json_string(s)),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                out.push_str(if index == 0 { "\n" } else { ",\n" });
                push_indent(out, indent + 2);
                write_json(out, item, indent + 2);
            }
            out.push('\n');
            push_indent(out, indent);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in sorted_entries(map).into_iter().enumerate() {
                out.push_str(if index == 0 { "\n" } else { ",\n" });
                push_indent(out, indent + 2);
                out.push_str(&json_string(key));
                out.push_str(": ");
                write_json(out, item, indent + 2);
            }
            out.push('\n');
            push_indent(out, indent);
            out.push('}');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A JSON string literal; serde_json escapes exactly the characters Python's encoder escapes with
/// `ensure_ascii=False` (quote, backslash, control characters).
fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `yaml.safe_dump(result, default_flow_style=False)`: block style with sorted keys.
fn yaml(value: &Value) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&sorted_copy(value))
}

fn sorted_copy(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            sorted_entries(map)
                .into_iter()
                .map(|(key, item)| (key.clone(), sorted_copy(item)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(sorted_copy).collect()),
        other => other.clone(),
    }
}

/// Python's `str()` of a JSON value as json.loads would have made it (`True`, `None`, `1.0`, ...).
pub(crate) fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a JSON value (strings quoted as Python quotes them).
pub(crate) fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => python_number(n),
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", "))
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(key, item)| format!("{}: {}", python_string_repr(key), python_repr(item)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn python_string_repr(text: &str) -> String {
    // Python picks single quotes unless the text holds a single quote and no double quote.
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::new();
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An integer as digits, a float as Python's `repr(float)`.
pub(crate) fn python_number(number: &serde_json::Number) -> String {
    if let Some(i) = number.as_i64() {
        return i.to_string();
    }
    if let Some(u) = number.as_u64() {
        return u.to_string();
    }
    number.as_f64().map(python_float).unwrap_or_else(|| number.to_string())
}

/// Python's `repr(float)`: shortest round-trip digits, positional for exponents in [-4, 16),
/// scientific (`1e+16`, `1.5e-05`) otherwise, and always a `.0` on integral positional values.
pub(crate) fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.5e-5`.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let integral_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= integral_len {
                format!("{digits}{}.0", "0".repeat(integral_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..integral_len], &digits[integral_len..])
            }
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_owned() } else { format!("{first}.{rest}") };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{exponent_sign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_sorts_keys_and_indents_two_spaces() {
        let value = json!({"name": "g", "id": "/x", "properties": {"provisioningState": "Succeeded"}, "tags": {}, "list": []});
        assert_eq!(
            json(&value),
            "{\n  \"id\": \"/x\",\n  \"list\": [],\n  \"name\": \"g\",\n  \"properties\": {\n    \"provisioningState\": \"Succeeded\"\n  },\n  \"tags\": {}\n}\n"
        );
    }

    #[test]
    fn json_arrays_of_scalars_and_non_ascii_text() {
        assert_eq!(
            json(&json!([1, true, null, "生活"])),
            "[\n  1,\n  true,\n  null,\n  \"生活\"\n]\n"
        );
        assert_eq!(json(&json!("a\"b\\c\n\u{1}")), "\"a\\\"b\\\\c\\n\\u0001\"\n");
    }

    #[test]
    fn json_floats_as_python_prints_them() {
        assert_eq!(
            json(&json!({"a": 1.0, "b": 0.1, "c": 1e16, "d": 1.5e-5})),
            "{\n  \"a\": 1.0,\n  \"b\": 0.1,\n  \"c\": 1e+16,\n  \"d\": 1.5e-05\n}\n"
        );
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(-2.5), "-2.5");
        assert_eq!(python_float(100.0), "100.0");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(0.00001), "1e-05");
        assert_eq!(python_float(1e15), "1000000000000000.0");
        assert_eq!(python_float(1e16), "1e+16");
        // Expected values from CPython 3's repr().
        assert_eq!(python_float(1.2345678901234567e17), "1.2345678901234566e+17");
        assert_eq!(python_float(1e22), "1e+22");
        assert_eq!(python_float(5e-324), "5e-324");
        assert_eq!(python_float(123456789.125), "123456789.125");
        assert_eq!(python_float(-0.0), "-0.0");
        assert_eq!(python_float(123.456), "123.456");
    }

    #[test]
    fn python_str_of_scalars() {
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(false)), "False");
        assert_eq!(python_str(&Value::Null), "None");
        assert_eq!(python_str(&json!(42)), "42");
        assert_eq!(python_str(&json!("text")), "text");
        assert_eq!(python_repr(&json!(["a", 1, {"k": "it's"}])), "['a', 1, {'k': \"it's\"}]");
    }

    #[test]
    fn yaml_is_block_style_with_sorted_keys() {
        let value = json!({"name": "g", "id": "/x", "tags": {"b": "2", "a": "1"}, "list": ["x"]});
        assert_eq!(
            yaml(&value).expect("yaml"),
            "id: /x\nlist:\n- x\nname: g\ntags:\n  a: '1'\n  b: '2'\n"
        );
    }

    #[test]
    fn none_format_prints_nothing() {
        let out = format_value(&json!({"a": 1}), OutputFormat::None, &RenderContext::default())
            .expect("render");
        assert_eq!(out, "");
    }

    #[test]
    fn null_results_print_nothing_in_any_format() {
        let query = Query::compile("missing").expect("query");
        for format in
            [OutputFormat::Json, OutputFormat::Tsv, OutputFormat::Table, OutputFormat::Yaml]
        {
            assert_eq!(render(&json!({"a": 1}), Some(&query), format).expect("render"), None);
            assert_eq!(render(&Value::Null, None, format).expect("render"), None);
        }
    }

    #[test]
    fn query_then_tsv_prints_a_bare_value() {
        let query = Query::compile("id").expect("query");
        let registry = json!({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r", "name": "r"});
        let out = render(&registry, Some(&query), OutputFormat::Tsv).expect("render");
        assert_eq!(out.as_deref(), Some("/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r\n"));
    }

    #[test]
    fn query_then_json_sorts_even_multiselect_keys() {
        let query = Query::compile("{name:name, id:id}").expect("query");
        let out = render(&json!({"id": "i", "name": "n"}), Some(&query), OutputFormat::Json)
            .expect("render");
        assert_eq!(out.as_deref(), Some("{\n  \"id\": \"i\",\n  \"name\": \"n\"\n}\n"));
    }
}
