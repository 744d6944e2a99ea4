//! Compact JWS parsing and registered-claim checks (`exp`, `nbf`, `iss`, `aud`) for RS256 tokens.
//!
//! The parsing is done here by hand rather than by `jsonwebtoken::decode` so that every way a
//! token can be wrong maps to its own [`TokenError`] (e.g. `alg: none` is an unsupported
//! algorithm, not a JSON error), and so that time is an argument, not the system clock.
//! Only the RSA signature check itself is delegated (to `jsonwebtoken`, i.e. ring).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::claims::normalize_audience;
use crate::TokenError;

/// The only algorithm berth signs with and accepts.
pub(crate) const RS256: &str = "RS256";

/// What a token must satisfy besides a valid signature.
///
/// `exp`, `iss` and `aud` are required in every token; `nbf` is checked when present.
/// An empty `issuers` or `audiences` list accepts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRules {
    /// Accepted `iss` values, compared exactly.
    pub issuers: Vec<String>,
    /// Accepted audiences, compared after [`normalize_audience`] on both sides; the token's
    /// `aud` (a string or an array of strings) must contain at least one of them.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// The current time in unix seconds, passed in so tests can move time.
    pub now: i64,
}

/// A token's header, read without checking the signature. Use it for routing and logging
/// only (e.g. which `kid` to reload), never for trust decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedHeader {
    /// The `alg` member as written.
    pub alg: String,
    /// The `kid` member, if any.
    pub kid: Option<String>,
    /// The `typ` member, if any.
    pub typ: Option<String>,
}

/// The header members berth reads. Duplicate members make deserialization fail, which is what
/// we want: a header that says two things is malformed.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: Option<Value>,
}

/// The three base64url segments of a compact JWS, plus the signed prefix.
pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(TokenError::malformed("expected three `.`-separated segments"));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::malformed("empty header or payload segment"));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Parts { header, payload, signature, signing_input })
}

fn decode_segment(segment: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::malformed(format!("{what} is not unpadded base64url")))
}

fn optional_string(value: Option<Value>, member: &str) -> Result<Option<String>, TokenError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::malformed(format!("header `{member}` is not a string"))),
    }
}

pub(crate) fn parse_header(segment: &str) -> Result<UnverifiedHeader, TokenError> {
    let bytes = decode_segment(segment, "header")?;
    let raw: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::malformed(format!("header is not a json object: {e}")))?;
    // RFC 7515 §4.1.11: extensions marked critical must be understood; berth understands none.
    if raw.crit.is_some() {
        return Err(TokenError::malformed("header has a `crit` member"));
    }
    let alg = optional_string(raw.alg, "alg")?
        .ok_or_else(|| TokenError::malformed("header lacks `alg`"))?;
    Ok(UnverifiedHeader {
        alg,
        kid: optional_string(raw.kid, "kid")?,
        typ: optional_string(raw.typ, "typ")?,
    })
}

/// Reads a token's header without verifying anything else.
pub fn decode_unverified_header(token: &str) -> Result<UnverifiedHeader, TokenError> {
    parse_header(split(token)?.header)
}

pub(crate) fn decode_signature(segment: &str) -> Result<Vec<u8>, TokenError> {
    decode_segment(segment, "signature")
}

pub(crate) fn parse_payload(segment: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = decode_segment(segment, "payload")?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::malformed(format!("payload is not a json object: {e}")))
}

/// A JSON NumericDate as whole seconds. Fractions are allowed by RFC 7519 and truncated.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(seconds) => Ok(Some(seconds)),
            // `as` saturates, so absurd values become i64::MIN/MAX rather than wrapping.
            None => n
                .as_f64()
                .map(|f| Some(f as i64))
                .ok_or_else(|| TokenError::malformed(format!("`{name}` is not a usable number"))),
        },
        Some(_) => Err(TokenError::malformed(format!("`{name}` is not a number"))),
    }
}

/// Checks `exp`, `nbf`, `iss` and `aud`, in that order.
pub(crate) fn check_registered_claims(
    claims: &Map<String, Value>,
    rules: &VerifyRules,
) -> Result<(), TokenError> {
    let leeway = i64::try_from(rules.leeway_secs).unwrap_or(i64::MAX);

    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim { claim: "exp" })?;
    // RFC 7519 §4.1.4: the token must not be accepted "on or after" `exp`.
    if rules.now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired { exp });
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if rules.now.saturating_add(leeway) < nbf {
            return Err(TokenError::NotYetValid { nbf });
        }
    }

    let iss = match claims.get("iss") {
        None => return Err(TokenError::MissingClaim { claim: "iss" }),
        Some(Value::String(iss)) => iss,
        Some(_) => return Err(TokenError::malformed("`iss` is not a string")),
    };
    if !rules.issuers.iter().any(|accepted| accepted == iss) {
        return Err(TokenError::WrongIssuer { iss: iss.clone() });
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim { claim: "aud" }),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| TokenError::malformed("`aud` has a non-string item"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TokenError::malformed("`aud` is neither a string nor an array")),
    };
    let accepted: Vec<String> = rules.audiences.iter().map(|a| normalize_audience(a)).collect();
    let matches = audiences.iter().any(|aud| accepted.contains(&normalize_audience(aud)));
    if !matches {
        return Err(TokenError::WrongAudience {
            aud: audiences.into_iter().map(str::to_owned).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(now: i64) -> VerifyRules {
        VerifyRules {
            issuers: vec!["https://issuer.example/".into()],
            audiences: vec!["https://127.0.0.1:8443//.default".into()],
            leeway_secs: 60,
            now,
        }
    }

    fn check(claims: Value, now: i64) -> Result<(), TokenError> {
        let Value::Object(map) = claims else { panic!("test claims must be an object") };
        check_registered_claims(&map, &rules(now))
    }

    fn base() -> Value {
        json!({"iss":"https://issuer.example/","aud":"https://127.0.0.1:8443/","exp":1000,"nbf":500})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut claims = base();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> Value {
        let mut claims = base();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[test]
    fn expiry_honours_leeway_and_is_exclusive() {
        assert_eq!(check(base(), 1000 + 59), Ok(()));
        assert_eq!(check(base(), 1000 + 60), Err(TokenError::Expired { exp: 1000 }));
        assert_eq!(check(base(), i64::MAX), Err(TokenError::Expired { exp: 1000 }));
        assert_eq!(check(with("exp", json!(i64::MAX)), i64::MAX - 1), Ok(()));
    }

    #[test]
    fn not_before_honours_leeway() {
        assert_eq!(check(base(), 440), Ok(()));
        assert_eq!(check(base(), 439), Err(TokenError::NotYetValid { nbf: 500 }));
        assert_eq!(check(without("nbf"), i64::MIN), Ok(()));
    }

    #[test]
    fn fractional_dates_are_truncated() {
        assert_eq!(check(with("exp", json!(1000.9)), 1059), Ok(()));
        assert_eq!(check(with("exp", json!(1000.9)), 1060), Err(TokenError::Expired { exp: 1000 }));
        assert_eq!(check(with("exp", json!(1e300)), 600), Ok(()));
    }

    #[test]
    fn required_claims() {
        assert_eq!(check(without("exp"), 600), Err(TokenError::MissingClaim { claim: "exp" }));
        assert_eq!(check(without("iss"), 600), Err(TokenError::MissingClaim { claim: "iss" }));
        assert_eq!(check(without("aud"), 600), Err(TokenError::MissingClaim { claim: "aud" }));
    }

    #[test]
    fn wrongly_typed_claims_are_malformed() {
        for (key, value) in [
            ("exp", json!("1000")),
            ("nbf", json!(null)),
            ("iss", json!(["https://issuer.example/"])),
            ("aud", json!(5)),
            ("aud", json!(["https://127.0.0.1:8443", 5])),
        ] {
            assert!(
                matches!(check(with(key, value.clone()), 600), Err(TokenError::Malformed { .. })),
                "{key}: {value}"
            );
        }
    }

    #[test]
    fn issuer_is_exact() {
        assert_eq!(
            check(with("iss", json!("https://issuer.example")), 600),
            Err(TokenError::WrongIssuer { iss: "https://issuer.example".into() })
        );
    }

    #[test]
    fn audience_string_or_array_normalized() {
        assert_eq!(check(with("aud", json!("HTTPS://127.0.0.1:8443")), 600), Ok(()));
        assert_eq!(
            check(with("aud", json!(["other", "https://127.0.0.1:8443/.default"])), 600),
            Ok(())
        );
        assert_eq!(
            check(with("aud", json!(["other", "https://127.0.0.1:8444"])), 600),
            Err(TokenError::WrongAudience {
                aud: vec!["other".into(), "https://127.0.0.1:8444".into()]
            })
        );
        assert_eq!(
            check(with("aud", json!([])), 600),
            Err(TokenError::WrongAudience { aud: vec![] })
        );
    }

    #[test]
    fn empty_rule_lists_accept_nothing() {
        let Value::Object(map) = base() else { unreachable!() };
        let mut no_issuers = rules(600);
        no_issuers.issuers.clear();
        assert!(matches!(
            check_registered_claims(&map, &no_issuers),
            Err(TokenError::WrongIssuer { .. })
        ));
        let mut no_audiences = rules(600);
        no_audiences.audiences.clear();
        assert!(matches!(
            check_registered_claims(&map, &no_audiences),
            Err(TokenError::WrongAudience { .. })
        ));
    }

    #[test]
    fn header_parsing() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let header = parse_header(&b64(r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#)).unwrap();
        assert_eq!(
            header,
            UnverifiedHeader {
                alg: "RS256".into(),
                kid: Some("k1".into()),
                typ: Some("JWT".into())
            }
        );
        for bad in [
            r#"{"typ":"JWT"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"["RS256"]"#,
            "not json",
        ] {
            assert!(
                matches!(parse_header(&b64(bad)), Err(TokenError::Malformed { .. })),
                "accepted {bad}"
            );
        }
        assert!(matches!(parse_header("eyJ!"), Err(TokenError::Malformed { .. })));
        // Padded base64 is not base64url as JWS defines it.
        assert!(matches!(
            parse_header("eyJhbGciOiJSUzI1NiJ9=="),
            Err(TokenError::Malformed { .. })
        ));
    }

    #[test]
    fn splitting() {
        let parts = split("a.b.c").unwrap();
        assert_eq!(
            (parts.header, parts.payload, parts.signature, parts.signing_input),
            ("a", "b", "c", "a.b")
        );
        assert_eq!(split("a.b.").unwrap().signature, "");
        for bad in ["", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "...."] {
            assert!(matches!(split(bad), Err(TokenError::Malformed { .. })), "accepted {bad:?}");
        }
    }
}
