//! The HTTP surfaces of one berth process, routed by path, and the middleware every request passes through.

mod acr;
mod arm;
mod authorization;
mod deploy_runner;
mod deployments;
mod graph;
mod identities;
mod idp;
mod metadata;
mod registries;
mod registry_tokens;
mod resource_identity;
mod sites;
pub(crate) mod v2;
mod workloads;

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use berth_arm::ArmErrorCode;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest JSON body accepted on the control plane and the identity provider.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(idp::token_v2))
        .route("/{tenant}/oauth2/token", post(idp::token_v1))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(idp::openid_configuration_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(idp::openid_configuration_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(idp::jwks))
        .route("/{tenant}/discovery/keys", get(idp::jwks))
        .route("/metadata/endpoints", get(metadata::endpoints))
        .route(crate::workloads::IMDS_PATH, any(workloads::imds_on_main))
        .route(crate::workloads::APP_SERVICE_PATH, any(workloads::app_service_on_main))
        .route("/oauth2/exchange", post(registry_tokens::exchange))
        .route("/oauth2/token", get(registry_tokens::token_get).post(registry_tokens::token_post))
        .route("/subscriptions", get(arm::list_subscriptions))
        .route("/subscriptions/{*rest}", any(arm::dispatch))
        .route("/v1.0/{*rest}", any(graph::dispatch))
        // The registry data plane; its bodies stream (no JSON body limit applies).
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/acr/v1/{*rest}", any(acr::dispatch))
        .route("/{tenant}/acr/v1/{*rest}", any(acr::dispatch))
        .route("/{tenant}/v2", any(v2::registry_base))
        .route("/{tenant}/v2/", any(v2::registry_base))
        .fallback(not_found)
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// The router of one workload's metadata listener (plain HTTP on loopback): the IMDS and App Service endpoints,
/// answering for the workload `key` only.
pub(crate) fn workload_router(state: Arc<AppState>, key: String) -> Router {
    Router::new()
        .route(crate::workloads::IMDS_PATH, any(workloads::imds_on_listener))
        .route(crate::workloads::APP_SERVICE_PATH, any(workloads::app_service_on_listener))
        .fallback(workloads::listener_not_found)
        .layer(middleware::from_fn(request_context))
        .with_state(Arc::new(workloads::WorkloadListener { state, key }))
}

async fn not_found() -> ApiError {
    ApiError::arm(ArmErrorCode::ResourceNotFound, "No route matches the requested path.")
}

/// One span per request with its id; the id is returned in `x-ms-request-id` (and the correlation headers ARM
/// clients log), and one access-log line is written when the response is ready.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    let correlation_id = request.headers().get("x-ms-correlation-request-id").cloned();
    let span = tracing::info_span!("request", id = %request_id, %method, %path);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::error!(target: "berth::access", status = status.as_u16(), elapsed_ms, "request failed");
        } else {
            tracing::info!(target: "berth::access", status = status.as_u16(), elapsed_ms, "request");
        }
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-ms-request-id", value.clone());
        headers.insert("x-ms-correlation-request-id", correlation_id.unwrap_or(value));
    }
    if let Some(value) = client_request_id {
        headers.insert("x-ms-client-request-id", value);
    }
    response
}

/// Read a whole body of at most `limit` bytes; larger bodies are refused with 413 before they are buffered.
pub(crate) async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::arm(
            ArmErrorCode::RequestEntityTooLarge,
            format!("The request content is larger than the {limit} bytes this endpoint accepts."),
        )
    })
}

/// Parse a JSON object body; anything else is ARM's `InvalidRequestContent`.
pub(crate) fn parse_json_object(
    bytes: &[u8],
) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::arm(
            ArmErrorCode::InvalidRequestContent,
            "The request content must be a JSON object.",
        )),
        Err(e) => Err(ApiError::arm(
            ArmErrorCode::InvalidRequestContent,
            format!("The request content was invalid and could not be deserialized: {e}."),
        )),
    }
}

pub(crate) fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}
