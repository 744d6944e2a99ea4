//! Redaction for `--debug` logs: request and response dumps must never show a bearer token, a
//! client secret or a freshly minted password.

use serde_json::Value;

/// What replaces a secret in logs (the Azure CLI prints the same word).
pub const REDACTED: &str = "REDACTED";

/// JSON keys and form fields whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "accessToken",
    "refresh_token",
    "refreshToken",
    "client_secret",
    "clientSecret",
    "client_assertion",
    "assertion",
    "password",
    "secretText",
    "id_token",
];

/// Headers whose values are secrets.
const SECRET_HEADERS: &[&str] =
    &["authorization", "x-identity-header", "proxy-authorization", "cookie", "set-cookie"];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|secret| secret.eq_ignore_ascii_case(key))
}

/// The header value to log for `name`.
pub fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if SECRET_HEADERS.iter().any(|secret| secret.eq_ignore_ascii_case(name)) {
        REDACTED
    } else {
        value
    }
}

/// A copy of `value` with the values of secret keys replaced, at any depth.
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let shown = if is_secret_key(key) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        json(inner)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        other => other.clone(),
    }
}

/// A copy of an `application/x-www-form-urlencoded` body with secret fields replaced.
pub fn form(body: &str) -> String {
    body.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A body as it may appear in a log: JSON and form bodies redacted; anything else summarised.
pub fn body(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return json(&value).to_string();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains('=') && !text.contains(char::is_whitespace) => form(text),
        // Free text might carry anything (e.g. a token in an HTML error page); only its size is shown.
        _ => format!("<{} bytes>", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authorization_header_is_redacted_and_others_kept() {
        assert_eq!(header_value("Authorization", "Bearer abc"), REDACTED);
        assert_eq!(header_value("accept", "application/json"), "application/json");
    }

    #[test]
    fn json_secrets_are_redacted_at_any_depth() {
        let body =
            json!({"access_token":"t","expires_in":3599,"nested":[{"secretText":"s","keyId":"k"}]});
        assert_eq!(
            json(&body),
            json!({"access_token":"REDACTED","expires_in":3599,"nested":[{"secretText":"REDACTED","keyId":"k"}]})
        );
    }

    #[test]
    fn form_secrets_are_redacted() {
        let body = "grant_type=client_credentials&client_id=app&client_secret=s3cr3t&scope=x";
        assert_eq!(
            form(body),
            "grant_type=client_credentials&client_id=app&client_secret=REDACTED&scope=x"
        );
    }

    #[test]
    fn free_text_bodies_show_only_their_size() {
        assert_eq!(body(b"some html with token"), "<20 bytes>");
        assert_eq!(body(b""), "");
        assert_eq!(body(br#"{"password":"p"}"#), r#"{"password":"REDACTED"}"#);
    }
}
