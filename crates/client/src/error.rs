//! Errors of the client: transport and TLS set-up failures, and the error bodies berth's surfaces
//! answer with (ARM `{"error":{"code","message"}}`, OAuth `{"error","error_description"}`, and the
//! registry's OCI/ACR `{"errors":[{"code","message","detail"}]}`).

use serde_json::Value;

/// Everything a [`crate::Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL or a request path does not form a valid URL.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The CA bundle holds no usable certificate.
    #[error("invalid CA certificate bundle: {0}")]
    InvalidCaBundle(String),
    /// reqwest refused the TLS or client settings.
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// The request never got an answer (connection refused, TLS failure, timeout, ...).
    #[error("request to `{url}` failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an ARM error body.
    #[error(transparent)]
    Arm(#[from] ArmError),
    /// The token endpoint answered with an OAuth error body.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The registry answered with an OCI/ACR error body.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A failure status whose body is not a known error shape.
    #[error("operation returned an invalid status `{status} {reason}`")]
    Status { status: u16, reason: String, body: String },
    /// A success status whose body is not JSON, or not the JSON expected.
    #[error("unexpected response from `{url}`: {reason}")]
    UnexpectedResponse { url: String, reason: String },
    /// A long-running operation ended in `Failed` or `Canceled`.
    #[error("long-running operation ended with status `{status}`")]
    OperationFailed { status: String, error: Option<ArmError> },
}

impl Error {
    /// The HTTP status of an error answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Arm(e) => Some(e.status),
            Error::OAuth(e) => Some(e.status),
            Error::Registry(e) => Some(e.status),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An ARM error answer: `{"error":{"code":"ResourceGroupNotFound","message":"..."}}`.
/// Displays as the Azure CLI prints it: `(Code) message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}) {message}")]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// An OAuth2 error answer from the token endpoint: `{"error":"invalid_client","error_description":"..."}`.
/// Displays the description, as the Azure CLI does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if description.is_empty() { error } else { description })]
pub struct OAuthError {
    pub status: u16,
    pub error: String,
    pub description: String,
}

/// A registry error answer: `{"errors":[{"code":"NAME_UNKNOWN","message":"..."}]}` (the first entry).
/// Displays as `(CODE) message`, like ARM errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}) {message}")]
pub struct RegistryError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Turns a failure answer (status >= 400) into the matching error.
pub(crate) fn error_from_body(status: u16, reason: &str, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body).into_owned();
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Error::Status { status, reason: reason.to_owned(), body: text };
    };
    if let Some(arm) = arm_error_from_json(status, &json) {
        return Error::Arm(arm);
    }
    if let Some(Value::String(error)) = json.get("error") {
        let description =
            json.get("error_description").and_then(Value::as_str).unwrap_or_default().to_owned();
        return Error::OAuth(OAuthError { status, error: error.clone(), description });
    }
    if let Some(registry) = registry_error_from_json(status, &json) {
        return Error::Registry(registry);
    }
    Error::Status { status, reason: reason.to_owned(), body: text }
}

/// Reads `{"errors":[{"code","message"}, ...]}`; `None` when the JSON has another shape.
fn registry_error_from_json(status: u16, json: &Value) -> Option<RegistryError> {
    let first = json.get("errors")?.as_array()?.first()?.as_object()?;
    let code = first.get("code")?.as_str()?.to_owned();
    let message = first.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(RegistryError { status, code, message })
}

/// Reads `{"error":{"code","message"}}`; `None` when the JSON has another shape.
pub(crate) fn arm_error_from_json(status: u16, json: &Value) -> Option<ArmError> {
    let error = json.get("error")?.as_object()?;
    let code = error.get("code")?.as_str()?.to_owned();
    let message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(ArmError { status, code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_error_body_becomes_arm_error() {
        let body = br#"{"error":{"code":"ResourceGroupNotFound","message":"Resource group 'g' could not be found."}}"#;
        let error = error_from_body(404, "Not Found", body);
        assert_eq!(
            error.to_string(),
            "(ResourceGroupNotFound) Resource group 'g' could not be found."
        );
        assert_eq!(error.status(), Some(404));
        assert!(
            matches!(error, Error::Arm(ArmError { ref code, .. }) if code == "ResourceGroupNotFound")
        );
    }

    #[test]
    fn oauth_error_body_shows_its_description() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
        let error = error_from_body(401, "Unauthorized", body);
        assert_eq!(error.to_string(), "AADSTS7000215: Invalid client secret provided.");
        assert!(
            matches!(error, Error::OAuth(OAuthError { ref error, .. }) if error == "invalid_client")
        );
    }

    #[test]
    fn oauth_error_without_description_shows_its_code() {
        let error = error_from_body(400, "Bad Request", br#"{"error":"invalid_scope"}"#);
        assert_eq!(error.to_string(), "invalid_scope");
    }

    #[test]
    fn unknown_bodies_keep_status_and_text() {
        let error = error_from_body(502, "Bad Gateway", b"<html>oops</html>");
        assert_eq!(error.to_string(), "operation returned an invalid status `502 Bad Gateway`");
        assert!(matches!(error, Error::Status { ref body, .. } if body == "<html>oops</html>"));
        let empty = error_from_body(404, "Not Found", br#"{"errors":[]}"#);
        assert!(matches!(empty, Error::Status { status: 404, .. }));
    }

    #[test]
    fn registry_error_body_becomes_registry_error() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":null},{"code":"X"}]}"#;
        let error = error_from_body(404, "Not Found", body);
        assert_eq!(error.to_string(), "(NAME_UNKNOWN) repository name not known to registry");
        assert_eq!(error.status(), Some(404));
        let bare = error_from_body(401, "Unauthorized", br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        assert!(
            matches!(bare, Error::Registry(RegistryError { ref code, ref message, .. }) if code == "UNAUTHORIZED" && message.is_empty())
        );
    }

    #[test]
    fn arm_error_without_message_has_empty_message() {
        let error = arm_error_from_json(409, &serde_json::json!({"error":{"code":"Conflict"}}));
        assert_eq!(error.map(|e| e.message), Some(String::new()));
    }
}
