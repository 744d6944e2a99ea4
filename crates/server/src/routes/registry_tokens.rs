//! `/oauth2/exchange` and `/oauth2/token`: ACR's token exchange (Entra token → registry refresh token) and the
//! Docker token protocol (credentials or refresh token → scoped access token), GET and POST forms.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use berth_identity::RegistryGrantType;
use berth_oci::{parse_scopes, ErrorCode, Scope};
use serde_json::json;

use super::{json_response, read_body};
use crate::auth::{verify_client_secret, verify_entra_token};
use crate::error::{ApiError, ApiResult};
use crate::registry_auth::{
    find_registry, grant, mint_access_token, mint_refresh_token, registry_audiences,
    registry_name_from_service, verify_registry_token, Registry, NULL_GUID,
};
use crate::state::{AppState, REGISTRY_AUDIENCE};
use crate::time::now_rfc3339;

const MAX_FORM_BODY: usize = 64 * 1024;

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::oci(ErrorCode::Unauthorized, message)
}

fn pairs(text: &str) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(text).map_err(|e| {
        ApiError::oci_malformed(
            ErrorCode::Unsupported,
            format!("the request parameters could not be parsed: {e}"),
        )
    })
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Every `scope` parameter, each possibly holding several space-separated scopes.
fn scopes(pairs: &[(String, String)]) -> ApiResult<Vec<Scope>> {
    let mut out = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "scope") {
        out.extend(parse_scopes(value).map_err(|e| {
            ApiError::oci_malformed(ErrorCode::Unsupported, format!("invalid scope: {e}"))
        })?);
    }
    Ok(out)
}

async fn form_pairs(headers: &HeaderMap, body: Body) -> ApiResult<Vec<(String, String)>> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::oci_malformed(
            ErrorCode::Unsupported,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_body(body, MAX_FORM_BODY)
        .await
        .map_err(|_| ApiError::oci_malformed(ErrorCode::Unsupported, "the form is too large"))?;
    pairs(
        std::str::from_utf8(&bytes).map_err(|_| {
            ApiError::oci_malformed(ErrorCode::Unsupported, "the form is not UTF-8")
        })?,
    )
}

/// The registry a `service` names (None for the bare server host in path mode); unknown names are refused.
async fn service_registry(state: &AppState, service: Option<&str>) -> ApiResult<Option<Registry>> {
    let Some(service) = service.filter(|s| !s.is_empty()) else { return Ok(None) };
    match registry_name_from_service(state, service) {
        Some(name) => match find_registry(state, &name).await? {
            Some(registry) => Ok(Some(registry)),
            None => Err(unauthorized(format!(
                "the service '{service}' names no registry on this server"
            ))),
        },
        None if state.registry_domain.is_none()
            && service.eq_ignore_ascii_case(&state.public_host) =>
        {
            Ok(None)
        }
        None => {
            Err(unauthorized(format!("the service '{service}' names no registry on this server")))
        }
    }
}

/// In path mode a client that pinged `/v2/` names the bare server host as `service`; then the registry is the one
/// every repository scope names (its first segment), so a refresh token minted for that registry is accepted.
async fn registry_of_scopes(
    state: &AppState,
    registry: Option<Registry>,
    scopes: &[Scope],
) -> ApiResult<Option<Registry>> {
    if registry.is_some() || state.registry_domain.is_some() {
        return Ok(registry);
    }
    let mut names = scopes
        .iter()
        .filter(|s| s.resource_type == "repository")
        .filter_map(|s| crate::registry_auth::split_path_mode_name(&s.name).map(|(r, _)| r));
    let Some(first) = names.next() else { return Ok(None) };
    if names.any(|n| !n.eq_ignore_ascii_case(first)) {
        return Ok(None);
    }
    find_registry(state, first).await
}

/// `POST /oauth2/exchange`: an Entra access token from berth's identity provider becomes a registry refresh token.
pub async fn exchange(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let form = form_pairs(&headers, body).await?;
    match first(&form, "grant_type") {
        Some("access_token") | Some("access_token_refresh_token") => {}
        Some(other) => {
            return Err(ApiError::oci_malformed(
                ErrorCode::Unsupported,
                format!("grant_type '{other}' is not supported; use access_token"),
            ))
        }
        None => {
            return Err(ApiError::oci_malformed(ErrorCode::Unsupported, "grant_type is required"))
        }
    }
    let service = first(&form, "service")
        .ok_or_else(|| ApiError::oci_malformed(ErrorCode::Unsupported, "service is required"))?;
    let registry = service_registry(&state, Some(service)).await?;
    if let Some(tenant) = first(&form, "tenant").filter(|t| !t.is_empty()) {
        if !tenant.eq_ignore_ascii_case(&state.tenant_id) {
            return Err(unauthorized(format!("tenant '{tenant}' is not this server's tenant")));
        }
    }
    let token = first(&form, "access_token").filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::oci_malformed(ErrorCode::Unsupported, "access_token is required")
    })?;
    let mut audiences = vec![REGISTRY_AUDIENCE.to_string()];
    if registry.as_ref().is_none_or(|r| r.arm_audience_tokens) {
        audiences.extend(state.arm_audiences());
    }
    let claims = verify_entra_token(&state, token, audiences)
        .await
        .map_err(|e| unauthorized(format!("the access token was refused: {e}")))?;
    if !claims.tid.eq_ignore_ascii_case(&state.tenant_id)
        || state.db.get_principal(&claims.oid).await?.is_none()
    {
        return Err(unauthorized("the access token's principal does not exist in this tenant"));
    }
    let audience = registry
        .as_ref()
        .map(|r| r.login_server.clone())
        .unwrap_or_else(|| state.public_host.clone());
    let refresh_token = mint_refresh_token(&state, &claims.oid, &audience)?;
    Ok(json_response(StatusCode::OK, json!({ "refresh_token": refresh_token })))
}

/// Who is asking: a principal id, or None for anonymous.
pub(crate) async fn principal_from_password(
    state: &AppState,
    registry: Option<&Registry>,
    user: &str,
    password: &str,
) -> ApiResult<String> {
    if user == NULL_GUID {
        let claims = verify_registry_token(
            state,
            password,
            RegistryGrantType::RefreshToken,
            registry_audiences(state, registry),
        )
        .await
        .map_err(|e| unauthorized(format!("the refresh token was refused: {e}")))?;
        let principal = claims.oid.unwrap_or(claims.sub);
        if state.db.get_principal(&principal).await?.is_none() {
            return Err(unauthorized("the refresh token's principal no longer exists"));
        }
        return Ok(principal);
    }
    match verify_client_secret(state, user, password).await? {
        Some(principal) => Ok(principal.id),
        None => Err(unauthorized("invalid username or password")),
    }
}

fn basic(headers: &HeaderMap) -> ApiResult<Option<(String, String)>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| unauthorized("malformed Authorization header"))?;
    let Some(("Basic" | "basic", encoded)) = text.split_once(' ') else {
        return Err(unauthorized("only Basic credentials are accepted here"));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let (user, pass) =
        decoded.split_once(':').ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    Ok(Some((user.to_string(), pass.to_string())))
}

async fn issue(
    state: &AppState,
    principal: Option<String>,
    registry: Option<&Registry>,
    service: Option<&str>,
    scopes: &[Scope],
    with_refresh: bool,
) -> ApiResult<Response> {
    let access = grant(state, principal.as_deref(), registry, scopes).await?;
    let audience = match registry {
        Some(r) => r.login_server.clone(),
        None => service
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| state.public_host.clone()),
    };
    let subject = principal.clone().unwrap_or_else(|| "anonymous".into());
    let (token, expires_at) = mint_access_token(state, &subject, &audience, access)?;
    let mut body = json!({
        "access_token": token,
        "token": token,
        "expires_in": (expires_at - crate::time::now_unix()).max(0),
        "issued_at": now_rfc3339(),
    });
    if let (true, Some(principal)) = (with_refresh, &principal) {
        body["refresh_token"] = json!(mint_refresh_token(state, principal, &audience)?);
    }
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /oauth2/token?service=..&scope=..`: Basic credentials (client id and secret, or the null GUID and a
/// refresh token), or none for anonymous pulls.
pub async fn token_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = pairs(query.as_deref().unwrap_or_default())?;
    let service = first(&params, "service");
    let scopes = scopes(&params)?;
    let registry =
        registry_of_scopes(&state, service_registry(&state, service).await?, &scopes).await?;
    let principal = match basic(&headers)? {
        Some((user, pass)) => {
            Some(principal_from_password(&state, registry.as_ref(), &user, &pass).await?)
        }
        None => None,
    };
    let offline = first(&params, "offline_token") == Some("true");
    issue(&state, principal, registry.as_ref(), service, &scopes, offline).await
}

/// `POST /oauth2/token`: `grant_type=refresh_token` or `password` (with `access_type=offline` for a refresh token).
pub async fn token_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let form = form_pairs(&headers, body).await?;
    let service = first(&form, "service");
    let scopes = scopes(&form)?;
    let registry =
        registry_of_scopes(&state, service_registry(&state, service).await?, &scopes).await?;
    match first(&form, "grant_type") {
        Some("refresh_token") => {
            let token = first(&form, "refresh_token").unwrap_or_default();
            if token.is_empty() {
                // The SDK's anonymous client sends an empty refresh token.
                return issue(&state, None, registry.as_ref(), service, &scopes, false).await;
            }
            let principal =
                principal_from_password(&state, registry.as_ref(), NULL_GUID, token).await?;
            issue(&state, Some(principal), registry.as_ref(), service, &scopes, false).await
        }
        Some("password") => {
            let user = first(&form, "username").unwrap_or_default();
            let password = first(&form, "password").unwrap_or_default();
            let principal = if user.is_empty() && password.is_empty() {
                None
            } else {
                Some(principal_from_password(&state, registry.as_ref(), user, password).await?)
            };
            let offline = first(&form, "access_type") == Some("offline");
            issue(&state, principal, registry.as_ref(), service, &scopes, offline).await
        }
        Some(other) => Err(ApiError::oci_malformed(
            ErrorCode::Unsupported,
            format!("grant_type '{other}' is not supported"),
        )),
        None => Err(ApiError::oci_malformed(ErrorCode::Unsupported, "grant_type is required")),
    }
}
