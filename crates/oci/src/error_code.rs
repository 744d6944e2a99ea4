//! The distribution error-code registry as data, and the `{"errors":[{"code","message","detail"}]}` body.
//!
//! Codes, default messages and statuses follow CNCF distribution's `errcode` registry (which the OCI distribution
//! spec's error table is taken from), with one deliberate difference: `BLOB_UPLOAD_INVALID` is 400 here, where
//! distribution says 404 (an invalid upload is a client error, not a missing resource).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One distribution error code. `as_str` is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    /// Schema1 signature failures; kept so that clients' codes parse.
    ManifestUnverified,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    /// The tag is malformed or does not match the URI.
    TagInvalid,
    RangeInvalid,
    PaginationNumberInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::BlobUnknown,
        ErrorCode::BlobUploadInvalid,
        ErrorCode::BlobUploadUnknown,
        ErrorCode::DigestInvalid,
        ErrorCode::ManifestBlobUnknown,
        ErrorCode::ManifestInvalid,
        ErrorCode::ManifestUnknown,
        ErrorCode::ManifestUnverified,
        ErrorCode::NameInvalid,
        ErrorCode::NameUnknown,
        ErrorCode::SizeInvalid,
        ErrorCode::TagInvalid,
        ErrorCode::RangeInvalid,
        ErrorCode::PaginationNumberInvalid,
        ErrorCode::Unauthorized,
        ErrorCode::Denied,
        ErrorCode::Unsupported,
        ErrorCode::TooManyRequests,
        ErrorCode::Unavailable,
        ErrorCode::Unknown,
    ];

    /// The wire value, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        self.descriptor().0
    }

    /// The HTTP status the registry answers with by default.
    pub fn http_status(self) -> u16 {
        self.descriptor().1
    }

    /// distribution's default message for the code.
    pub fn default_message(self) -> &'static str {
        self.descriptor().2
    }

    /// (wire value, status, default message).
    fn descriptor(self) -> (&'static str, u16, &'static str) {
        match self {
            ErrorCode::BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
            ErrorCode::BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
            ErrorCode::BlobUploadUnknown => {
                ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
            }
            ErrorCode::DigestInvalid => {
                ("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
            }
            ErrorCode::ManifestBlobUnknown => {
                ("MANIFEST_BLOB_UNKNOWN", 400, "blob unknown to registry")
            }
            ErrorCode::ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest invalid"),
            ErrorCode::ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown"),
            ErrorCode::ManifestUnverified => {
                ("MANIFEST_UNVERIFIED", 400, "manifest failed signature verification")
            }
            ErrorCode::NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
            ErrorCode::NameUnknown => {
                ("NAME_UNKNOWN", 404, "repository name not known to registry")
            }
            ErrorCode::SizeInvalid => {
                ("SIZE_INVALID", 400, "provided length did not match content length")
            }
            ErrorCode::TagInvalid => ("TAG_INVALID", 400, "manifest tag did not match URI"),
            ErrorCode::RangeInvalid => ("RANGE_INVALID", 416, "invalid content range"),
            ErrorCode::PaginationNumberInvalid => {
                ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")
            }
            ErrorCode::Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
            ErrorCode::Denied => ("DENIED", 403, "requested access to the resource is denied"),
            ErrorCode::Unsupported => ("UNSUPPORTED", 405, "The operation is unsupported."),
            ErrorCode::TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests"),
            ErrorCode::Unavailable => ("UNAVAILABLE", 503, "service unavailable"),
            ErrorCode::Unknown => ("UNKNOWN", 500, "unknown error"),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a known error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(text: &str) -> Result<ErrorCode, UnknownErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownErrorCode(text.to_owned()))
    }
}

/// The registry's error body: `{"errors":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub errors: Vec<ErrorEntry>,
}

/// One entry of [`ErrorBody`]. `code` is a string on the wire so that a client can read codes it does not know;
/// servers build entries from an [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ErrorEntry {
    /// An entry with the code's default message and no detail.
    pub fn new(code: ErrorCode) -> ErrorEntry {
        ErrorEntry {
            code: code.as_str().to_owned(),
            message: code.default_message().to_owned(),
            detail: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> ErrorEntry {
        self.message = message.into();
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> ErrorEntry {
        self.detail = Some(detail);
        self
    }

    /// The code, if it is one this crate knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}

impl ErrorBody {
    /// A body with a single entry.
    pub fn single(entry: ErrorEntry) -> ErrorBody {
        ErrorBody { errors: vec![entry] }
    }

    /// The status to answer with: that of the first known code, or 500.
    pub fn http_status(&self) -> u16 {
        self.errors.iter().find_map(ErrorEntry::error_code).map_or(500, ErrorCode::http_status)
    }
}

impl From<ErrorCode> for ErrorEntry {
    fn from(code: ErrorCode) -> ErrorEntry {
        ErrorEntry::new(code)
    }
}

impl From<&crate::OciError> for ErrorEntry {
    /// The error's code, with the error's own text as message.
    fn from(error: &crate::OciError) -> ErrorEntry {
        ErrorEntry::new(error.code()).with_message(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
            assert!((400..600).contains(&code.http_status()));
            assert!(!code.default_message().is_empty());
        }
        assert!("NOPE".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn spec_statuses() {
        assert_eq!(ErrorCode::BlobUnknown.http_status(), 404);
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::Denied.http_status(), 403);
        assert_eq!(ErrorCode::RangeInvalid.http_status(), 416);
        assert_eq!(ErrorCode::TooManyRequests.http_status(), 429);
    }

    #[test]
    fn body_shape() {
        let body =
            ErrorBody::single(ErrorEntry::new(ErrorCode::Unauthorized).with_detail(
                serde_json::json!([{"Type":"repository","Name":"a/b","Action":"pull"}]),
            ));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"a/b","Action":"pull"}]}]}"#
        );
        assert_eq!(body.http_status(), 401);
        let no_detail =
            serde_json::to_string(&ErrorBody::single(ErrorCode::BlobUnknown.into())).unwrap();
        assert_eq!(
            no_detail,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
        );
    }

    #[test]
    fn reads_bodies_with_unknown_codes() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"code":"CUSTOM","message":"x"}]}"#).unwrap();
        assert_eq!(body.errors[0].error_code(), None);
        assert_eq!(body.http_status(), 500);
    }

    #[test]
    fn oci_error_to_entry() {
        let error = crate::Digest::parse("sha256:x").unwrap_err();
        let entry = ErrorEntry::from(&error);
        assert_eq!(entry.code, "DIGEST_INVALID");
        assert!(entry.message.contains("sha256:x"));
    }
}
