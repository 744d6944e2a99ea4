//! The workload token endpoints, in the IMDS (`/metadata/identity/oauth2/token`, api-version 2018-02-01) and App
//! Service (`/msi/token`, api-version 2019-08-01, `X-IDENTITY-HEADER`) protocols, and the operator's resource
//! `{resource}/providers/Berth.ManagedIdentity/workloadEndpoints/default` that registers a workload and rotates its
//! header secret. How a request's workload is known is `crate::workloads`' design: the listener for IMDS, the
//! header for App Service.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{ArmErrorCode, ResourceId};
use serde_json::{json, Value};

use super::arm::ArmContext;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::workloads::{
    self, IdentitySelector, IssuedToken, WorkloadEndpoints, WorkloadError, IMDS_PATH,
};

/// The type of the operator's resource, and its only name.
pub const ENDPOINT_TYPE: &str = "Berth.ManagedIdentity/workloadEndpoints";
pub const ENDPOINT_NAME: &str = "default";
const READ: &str = "Berth.ManagedIdentity/workloadEndpoints/read";
const WRITE: &str = "Berth.ManagedIdentity/workloadEndpoints/write";
const DELETE: &str = "Berth.ManagedIdentity/workloadEndpoints/delete";
/// The only App Service api-version served (MSAL and azure-identity send it).
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// The state of one workload's metadata listener: the listener is the workload.
pub(crate) struct WorkloadListener {
    pub state: Arc<AppState>,
    /// The workload's lower-cased resource id.
    pub key: String,
}

impl WorkloadListener {
    /// The listener's workload; a workload found gone (its resource deleted, or unregistered on another node)
    /// has its listener closed on this node.
    async fn resolve(&self) -> Result<Arc<workloads::ResolvedWorkload>, WorkloadError> {
        let resolved = workloads::resolve(&self.state, &self.key).await;
        if matches!(resolved, Err(WorkloadError::NotRegistered)) {
            self.state.workloads.stop_listening(&self.key);
        }
        resolved
    }
}

/// A selector's query name and what it selects by.
type SelectorParam<'a> = (&'a str, fn(String) -> IdentitySelector);

/// A token request's parameters, protocol-neutral.
#[derive(Debug)]
struct TokenRequest {
    resource: String,
    selector: IdentitySelector,
}

/// The query as pairs; a parameter given twice is refused (which value would count is not obvious).
fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| format!("The query string could not be parsed: {e}"))?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("Query variable '{name}' is given more than once"));
        }
    }
    Ok(pairs)
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `resource` and at most one selector among `selectors` (query names and what they select by).
fn token_request(
    pairs: &[(String, String)],
    selectors: &[SelectorParam<'_>],
) -> Result<TokenRequest, String> {
    let resource = match get(pairs, "resource").map(str::trim) {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => return Err("Required query variable 'resource' is missing".into()),
    };
    let mut chosen = selectors
        .iter()
        .filter_map(|(name, make)| get(pairs, name).map(|v| (name, make(v.to_owned()))));
    let selector = match (chosen.next(), chosen.next()) {
        (None, _) => IdentitySelector::Default,
        (Some((_, selector)), None) => selector,
        (Some(_), Some(_)) => {
            let names: Vec<&str> = selectors.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "Only one of the query variables {} may be given",
                names.join(", ")
            ));
        }
    };
    if let IdentitySelector::ClientId(v)
    | IdentitySelector::ObjectId(v)
    | IdentitySelector::ResourceId(v) = &selector
    {
        if v.trim().is_empty() {
            return Err("An identity selector was given with an empty value".into());
        }
    }
    Ok(TokenRequest { resource, selector })
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- IMDS ----------------------------------------------------------------------------------------------------

fn imds_bad_request(description: impl Into<String>) -> ApiError {
    ApiError::imds(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn imds_error(err: WorkloadError, state: &AppState) -> ApiError {
    match err {
        WorkloadError::NotRegistered
        | WorkloadError::IdentityNotFound
        | WorkloadError::ResourceMissing => imds_bad_request("Identity not found"),
        WorkloadError::UnknownResource(resource) => ApiError::imds(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            unknown_resource_text(&resource, state),
        ),
        WorkloadError::Internal(detail) => ApiError::internal(detail),
    }
}

fn unknown_resource_text(resource: &str, state: &AppState) -> String {
    format!(
        "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen \
         if the application has not been installed by the administrator of the tenant or consented to by any user in \
         the tenant. You might have sent your authentication request to the wrong tenant.",
        state.tenant_id
    )
}

/// The checks every IMDS request passes first: GET, and `Metadata: true` exactly (IMDS's SSRF guard).
fn imds_preamble(method: &Method, headers: &HeaderMap) -> ApiResult<()> {
    if method != Method::GET {
        return Err(ApiError::imds(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            format!("The method '{method}' is not allowed; use GET"),
        ));
    }
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return Err(ApiError::imds(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        ));
    }
    Ok(())
}

fn imds_request(raw: Option<&str>) -> ApiResult<TokenRequest> {
    let pairs = query_pairs(raw).map_err(imds_bad_request)?;
    if get(&pairs, "api-version").is_none_or(|v| v.trim().is_empty()) {
        return Err(imds_bad_request("Required query variable 'api-version' is missing"));
    }
    token_request(
        &pairs,
        &[
            ("client_id", IdentitySelector::ClientId),
            ("object_id", IdentitySelector::ObjectId),
            ("principal_id", IdentitySelector::ObjectId),
            ("msi_res_id", IdentitySelector::ResourceId),
            ("mi_res_id", IdentitySelector::ResourceId),
        ],
    )
    .map_err(imds_bad_request)
}

fn imds_body(token: &IssuedToken, now: i64) -> Response {
    let expires_in = (token.expires_on - now).max(0).to_string();
    no_store(
        Json(json!({
            "access_token": &*token.access_token,
            "refresh_token": "",
            "expires_in": expires_in,
            "expires_on": token.expires_on.to_string(),
            "ext_expires_in": expires_in,
            "not_before": token.not_before.to_string(),
            "resource": token.resource,
            "token_type": "Bearer",
            "client_id": token.client_id,
        }))
        .into_response(),
    )
}

/// `GET /metadata/identity/oauth2/token` on a workload's own listener.
pub(crate) async fn imds_on_listener(
    State(listener): State<Arc<WorkloadListener>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    imds_preamble(&method, &headers)?;
    let request = imds_request(raw.as_deref())?;
    let state = &listener.state;
    let workload = listener.resolve().await.map_err(|e| imds_error(e, state))?;
    let token = workloads::issue(state, &workload, &request.selector, &request.resource)
        .map_err(|e| imds_error(e, state))?;
    Ok(imds_body(&token, crate::time::now_unix()))
}

/// `GET /metadata/identity/oauth2/token` on the main listener, which is no workload's: the request is checked
/// like any IMDS request, then refused as IMDS refuses a machine without identity.
pub(crate) async fn imds_on_main(
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    imds_preamble(&method, &headers)?;
    imds_request(raw.as_deref())?;
    Err(imds_bad_request(format!(
        "Identity not found: berth's main listener serves no workload. A workload asks its own metadata listener \
         (the imdsEndpoint of its {ENDPOINT_TYPE}/{ENDPOINT_NAME}) at {IMDS_PATH}"
    )))
}

// ---- App Service ---------------------------------------------------------------------------------------------

fn app_service_bad_request(message: impl Into<String>) -> ApiError {
    ApiError::app_service(StatusCode::BAD_REQUEST, message)
}

fn app_service_unauthorized() -> ApiError {
    ApiError::app_service(
        StatusCode::UNAUTHORIZED,
        "The X-IDENTITY-HEADER is missing or is not the current identity header of a workload.",
    )
}

fn app_service_error(err: WorkloadError, state: &AppState) -> ApiError {
    match err {
        WorkloadError::NotRegistered | WorkloadError::ResourceMissing => app_service_unauthorized(),
        WorkloadError::IdentityNotFound => {
            app_service_bad_request("Unable to load the proper Managed Identity.")
        }
        WorkloadError::UnknownResource(resource) => {
            app_service_bad_request(unknown_resource_text(&resource, state))
        }
        WorkloadError::Internal(detail) => ApiError::internal(detail),
    }
}

/// One App Service request; `listener_key` is the workload whose listener it came in on (none: main listener).
async fn app_service(
    state: &AppState,
    listener_key: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::app_service(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("The method '{method}' is not allowed; use GET."),
        ));
    }
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(app_service_unauthorized)?;
    let key = workloads::workload_for_header(state, secret)
        .await
        .map_err(|e| app_service_error(e, state))?
        .ok_or_else(app_service_unauthorized)?;
    // On a workload's own listener only that workload's header counts.
    if listener_key.is_some_and(|k| k != key) {
        return Err(app_service_unauthorized());
    }
    let pairs = query_pairs(raw).map_err(app_service_bad_request)?;
    match get(&pairs, "api-version") {
        Some(APP_SERVICE_API_VERSION) => {}
        Some(other) => {
            return Err(app_service_bad_request(format!(
                "The api-version '{other}' is not supported by this endpoint; use {APP_SERVICE_API_VERSION}."
            )))
        }
        None => {
            return Err(app_service_bad_request(format!(
                "The query parameter 'api-version' is required; use {APP_SERVICE_API_VERSION}."
            )))
        }
    }
    let request = token_request(
        &pairs,
        &[
            ("client_id", IdentitySelector::ClientId),
            ("principal_id", IdentitySelector::ObjectId),
            ("object_id", IdentitySelector::ObjectId),
            ("mi_res_id", IdentitySelector::ResourceId),
        ],
    )
    .map_err(app_service_bad_request)?;
    let workload =
        workloads::resolve(state, &key).await.map_err(|e| app_service_error(e, state))?;
    let token = workloads::issue(state, &workload, &request.selector, &request.resource)
        .map_err(|e| app_service_error(e, state))?;
    Ok(no_store(
        Json(json!({
            "access_token": &*token.access_token,
            "expires_on": token.expires_on.to_string(),
            "resource": token.resource,
            "token_type": "Bearer",
            "client_id": token.client_id,
        }))
        .into_response(),
    ))
}

/// `GET /msi/token` on a workload's own listener.
pub(crate) async fn app_service_on_listener(
    State(listener): State<Arc<WorkloadListener>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    app_service(&listener.state, Some(&listener.key), &method, &headers, raw.as_deref()).await
}

/// `GET /msi/token` on the main listener: the header alone names the workload.
pub(crate) async fn app_service_on_main(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    app_service(&state, None, &method, &headers, raw.as_deref()).await
}

/// Anything else on a workload's listener.
pub(crate) async fn listener_not_found() -> ApiError {
    ApiError::imds(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("This listener serves {IMDS_PATH} and {}", workloads::APP_SERVICE_PATH),
    )
}

// ---- The operator's resource ---------------------------------------------------------------------------------

fn endpoint_json(
    parent: &str,
    endpoints: &WorkloadEndpoints,
    created_at: &str,
    rotated_at: &str,
    identity_header: Option<&str>,
) -> Value {
    let mut properties = json!({
        "resourceId": parent,
        "identityEndpoint": endpoints.identity_endpoint,
        "imdsEndpoint": endpoints.imds_endpoint,
        "remoteIdentityEndpoint": endpoints.remote_identity_endpoint,
        "createdAt": created_at,
        "headerRotatedAt": rotated_at,
    });
    if let Some(secret) = identity_header {
        properties["identityHeader"] = json!(secret);
    }
    json!({
        "id": format!("{parent}/providers/{ENDPOINT_TYPE}/{ENDPOINT_NAME}"),
        "name": ENDPOINT_NAME,
        "type": ENDPOINT_TYPE,
        "properties": properties,
    })
}

fn endpoint_not_found(parent: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceNotFound,
        format!("The resource '{parent}' is not registered as a workload ({ENDPOINT_TYPE}/{ENDPOINT_NAME})."),
    )
}

fn arm_error(err: WorkloadError, parent: &ResourceId) -> ApiError {
    match err {
        WorkloadError::ResourceMissing => ApiError::arm(
            ArmErrorCode::ParentResourceNotFound,
            format!("Can not perform requested operation on nested resource. Parent resource '{parent}' not found."),
        ),
        WorkloadError::NotRegistered => endpoint_not_found(parent),
        other => ApiError::internal(other),
    }
}

/// `{parent}/providers/Berth.ManagedIdentity/workloadEndpoints/{name}[/{action}]`: PUT registers (or rotates the
/// header of) the workload and returns the header secret once; POST `rotateHeader` rotates it; GET shows the
/// endpoints; DELETE unregisters. Authorized at the parent resource, as ARM authorizes extension resources.
pub(crate) async fn handle_endpoint(
    ctx: &ArmContext,
    method: &Method,
    parent: &ResourceId,
    name: &str,
    action: Option<&str>,
) -> ApiResult<Response> {
    let action = action.map(str::to_ascii_lowercase);
    match (action.as_deref(), method) {
        (None, &Method::PUT) | (Some("rotateheader"), &Method::POST) => {
            ctx.authorize(WRITE, parent).await?
        }
        (None, &Method::GET) => ctx.authorize(READ, parent).await?,
        (None, &Method::DELETE) => ctx.authorize(DELETE, parent).await?,
        (None, _) | (Some("rotateheader"), _) => {
            return Err(ApiError::arm(
                ArmErrorCode::MethodNotAllowed,
                format!("The method '{method}' is not allowed on this resource."),
            ))
        }
        (Some(other), _) => {
            return Err(ApiError::arm(
                ArmErrorCode::InvalidResourceType,
                format!("The action '{other}' is not served on {ENDPOINT_TYPE}; use rotateHeader."),
            ))
        }
    }
    if !name.eq_ignore_ascii_case(ENDPOINT_NAME) {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            format!("A resource has one workload endpoint, named '{ENDPOINT_NAME}', not '{name}'."),
        ));
    }
    let state = &ctx.state;
    let parent_id = parent.to_string();
    match *method {
        Method::GET => {
            let info = workloads::show(state, &parent_id)
                .await
                .map_err(|e| arm_error(e, parent))?
                .ok_or_else(|| endpoint_not_found(parent))?;
            Ok(Json(endpoint_json(
                &info.resource_id,
                &info.endpoints,
                &info.created_at,
                &info.rotated_at,
                None,
            ))
            .into_response())
        }
        Method::DELETE => {
            let existed =
                workloads::unregister(state, &parent_id).await.map_err(|e| arm_error(e, parent))?;
            Ok(if existed { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        _ => {
            if action.is_some()
                && workloads::show(state, &parent_id)
                    .await
                    .map_err(|e| arm_error(e, parent))?
                    .is_none()
            {
                return Err(endpoint_not_found(parent));
            }
            let credentials =
                workloads::register(state, &parent_id).await.map_err(|e| arm_error(e, parent))?;
            let status = if credentials.created { StatusCode::CREATED } else { StatusCode::OK };
            let body = endpoint_json(
                &credentials.resource_id,
                &credentials.endpoints,
                &credentials.created_at,
                &credentials.rotated_at,
                Some(&credentials.identity_header),
            );
            Ok(no_store((status, Json(body)).into_response()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors() -> Vec<SelectorParam<'static>> {
        vec![("client_id", IdentitySelector::ClientId), ("mi_res_id", IdentitySelector::ResourceId)]
    }

    #[test]
    fn one_selector_at_most() {
        let pairs = query_pairs(Some("resource=https%3A%2F%2Fa&client_id=x")).unwrap();
        let request = token_request(&pairs, &selectors()).unwrap();
        assert_eq!(request.resource, "https://a");
        assert_eq!(request.selector, IdentitySelector::ClientId("x".into()));
        let pairs = query_pairs(Some("resource=r&client_id=x&mi_res_id=y")).unwrap();
        assert!(token_request(&pairs, &selectors()).unwrap_err().contains("Only one"));
        let pairs = query_pairs(Some("client_id=x")).unwrap();
        assert!(token_request(&pairs, &selectors()).unwrap_err().contains("'resource'"));
        let pairs = query_pairs(Some("resource=r&client_id=")).unwrap();
        assert!(token_request(&pairs, &selectors()).is_err());
        assert!(query_pairs(Some("resource=a&resource=b")).unwrap_err().contains("more than once"));
        let pairs = query_pairs(None).unwrap();
        assert!(token_request(&pairs, &selectors()).is_err());
    }
}
