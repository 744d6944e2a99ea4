//! The one place where domain errors become HTTP responses, each surface with its own wire body.
//!
//! Handlers return [`ApiError`]. What the client sees is the protocol's error body (ARM's
//! `{"error":{code,message}}`, Entra's `{"error","error_description","error_codes"}`); internal details of a 500
//! are logged with the request's id and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_arm::{ArmError, ArmErrorCode};
use berth_oci::{ErrorBody, ErrorCode, ErrorEntry};
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// A control-plane (ARM or Graph) error.
    Arm(ArmError),
    /// An OAuth2 error from the identity provider's token endpoint, shaped like Entra's.
    OAuth { status: StatusCode, error: &'static str, description: String, code: u32 },
    /// A registry (OCI distribution) error; `challenge` is the `WWW-Authenticate` value of a 401.
    Oci {
        status: StatusCode,
        code: ErrorCode,
        message: String,
        detail: Option<serde_json::Value>,
        challenge: Option<String>,
    },
    /// A managed-identity endpoint error in IMDS's shape: `{"error","error_description"}`.
    Imds { status: StatusCode, error: &'static str, description: String },
    /// A managed-identity endpoint error in App Service's shape: `{"statusCode","message","correlationId"}`.
    AppService { status: StatusCode, message: String },
    /// Something went wrong on our side. The text is logged, not returned.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn arm(code: ArmErrorCode, message: impl Into<String>) -> Self {
        ApiError::Arm(ArmError::new(code, message))
    }

    pub fn oci(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::Oci { status, code, message: message.into(), detail: None, challenge: None }
    }

    /// A malformed registry request: 400 whatever the code's usual status.
    pub fn oci_malformed(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Oci {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            detail: None,
            challenge: None,
        }
    }

    /// 401 `UNAUTHORIZED` with a challenge telling the client where to get a token.
    pub fn oci_unauthorized(
        message: impl Into<String>,
        challenge: String,
        detail: Option<serde_json::Value>,
    ) -> Self {
        ApiError::Oci {
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::Unauthorized,
            message: message.into(),
            detail,
            challenge: Some(challenge),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    pub fn oauth(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        ApiError::OAuth {
            status,
            error,
            description: format!("AADSTS{code}: {}", description.into()),
            code,
        }
    }
}

impl ApiError {
    pub fn imds(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        ApiError::Imds { status, error, description: description.into() }
    }

    pub fn app_service(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::AppService { status, message: message.into() }
    }
}

impl From<ArmError> for ApiError {
    fn from(e: ArmError) -> Self {
        ApiError::Arm(e)
    }
}

impl From<berth_db::DbError> for ApiError {
    fn from(e: berth_db::DbError) -> Self {
        ApiError::Internal(format!("metadata store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Arm(err) => {
                let status =
                    StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
                let mut response = (status, axum::Json(err.body())).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(r#"Bearer error="invalid_token", error_description="The access token is missing or invalid""#),
                    );
                }
                response
            }
            ApiError::OAuth { status, error, description, code } => {
                let body = json!({
                    "error": error,
                    "error_description": description,
                    "error_codes": [code],
                    "timestamp": crate::time::now_rfc3339(),
                });
                (status, axum::Json(body)).into_response()
            }
            ApiError::Oci { status, code, message, detail, challenge } => {
                let mut entry = ErrorEntry::new(code).with_message(message);
                if let Some(detail) = detail {
                    entry = entry.with_detail(detail);
                }
                let mut response = (status, axum::Json(ErrorBody::single(entry))).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    "docker-distribution-api-version",
                    HeaderValue::from_static("registry/2.0"),
                );
                if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert(header::WWW_AUTHENTICATE, challenge);
                }
                response
            }
            ApiError::Imds { status, error, description } => {
                let body = json!({"error": error, "error_description": description});
                (status, axum::Json(body)).into_response()
            }
            ApiError::AppService { status, message } => {
                let body = json!({
                    "statusCode": status.as_u16(),
                    "message": message,
                    "correlationId": uuid::Uuid::new_v4().to_string(),
                });
                (status, axum::Json(body)).into_response()
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                let body = ArmError::new(
                    ArmErrorCode::InternalServerError,
                    "The server encountered an internal error. The request id in x-ms-request-id identifies it in the server log.",
                )
                .body();
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
            }
        }
    }
}
