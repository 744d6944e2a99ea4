//! The identity provider: Entra-compatible OpenID discovery, JWKS and the client-credentials token endpoint.
//!
//! Operators (service principals) sign in with a client id and secret and get an RS256 access token for a
//! resource berth serves: the control plane, the Graph subset or the registry token exchange. A workload running
//! elsewhere signs in as a user-assigned managed identity with its own OIDC token as a jwt-bearer
//! `client_assertion` (workload identity federation, `crate::federation`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::Engine;
use berth_db::PrincipalKind;
use berth_identity::{normalize_audience, random_token, EntraClaims};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_response, read_body};
use crate::auth::verify_client_secret;
use crate::error::{ApiError, ApiResult};
use crate::federation::{authenticate_assertion, JWT_BEARER};
use crate::state::AppState;
use crate::time::now_unix;

/// Token requests are small forms; anything larger is refused.
const MAX_FORM_BODY: usize = 64 * 1024;

fn check_tenant(state: &AppState, tenant: &str) -> ApiResult<()> {
    if tenant.eq_ignore_ascii_case(&state.tenant_id) || tenant.eq_ignore_ascii_case("organizations")
    {
        Ok(())
    } else {
        Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
            ),
        ))
    }
}

pub async fn openid_configuration_v2(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Value>> {
    check_tenant(&state, &tenant)?;
    let base = format!("{}/{}", state.public_url, state.tenant_id);
    Ok(Json(json!({
        "issuer": state.issuer(),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "grant_types_supported": ["client_credentials"],
        "tenant_region_scope": "berth",
        "cloud_instance_name": "berth",
    })))
}

pub async fn openid_configuration_v1(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Value>> {
    check_tenant(&state, &tenant)?;
    let base = format!("{}/{}", state.public_url, state.tenant_id);
    Ok(Json(json!({
        "issuer": state.issuer(),
        "token_endpoint": format!("{base}/oauth2/token"),
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "jwks_uri": format!("{base}/discovery/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })))
}

pub async fn jwks(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Value>> {
    check_tenant(&state, &tenant)?;
    Ok(Json(state.keys().jwks()))
}

#[derive(Deserialize, Default)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// How the client proves who it is.
enum Credential {
    Secret(String),
    /// An external OIDC token (never logged).
    Assertion(String),
}

/// The client id and its credential: a secret (form or Basic header) or a jwt-bearer client assertion.
fn client_credential(form: &TokenForm, headers: &HeaderMap) -> ApiResult<(String, Credential)> {
    if form.client_assertion.is_some() || form.client_assertion_type.is_some() {
        let Some(client_id) = form.client_id.clone() else {
            return Err(invalid_request(
                900144,
                "The request body must contain the parameter: 'client_id'.",
            ));
        };
        if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(invalid_request(90011, "Unexpected client assertion type."));
        }
        return match form.client_assertion.as_deref().map(str::trim) {
            Some(assertion) if !assertion.is_empty() => {
                Ok((client_id, Credential::Assertion(assertion.to_owned())))
            }
            _ => Err(ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )),
        };
    }
    let (client_id, client_secret) = match (form.client_id.clone(), form.client_secret.clone(), basic_credentials(headers)) {
        (Some(id), Some(secret), _) => (id, secret),
        (_, None, Some((id, secret))) => (id, secret),
        (None, Some(_), Some((id, secret))) => (id, secret),
        (Some(_), None, None) => {
            return Err(ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ))
        }
        (None, _, _) => {
            return Err(invalid_request(900144, "The request body must contain the parameter: 'client_id'."))
        }
    };
    Ok((client_id, Credential::Secret(client_secret)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V1,
    V2,
}

pub async fn token_v2(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    token(state, tenant, headers, body, Flavor::V2).await
}

pub async fn token_v1(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    token(state, tenant, headers, body, Flavor::V1).await
}

fn invalid_request(code: u32, message: impl Into<String>) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", code, message)
}

/// `client_secret_basic`: credentials in the Authorization header (form-urlencoded inside base64).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
    };
    Some((unescape(id), unescape(secret)))
}

async fn token(
    state: Arc<AppState>,
    tenant: String,
    headers: HeaderMap,
    body: Body,
    flavor: Flavor,
) -> ApiResult<Response> {
    check_tenant(&state, &tenant)?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(invalid_request(
            900144,
            "The request body must be application/x-www-form-urlencoded.",
        ));
    }
    let bytes = read_body(body, MAX_FORM_BODY)
        .await
        .map_err(|_| invalid_request(900144, "The request body is too large."))?;
    let form: TokenForm = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
        invalid_request(900144, format!("The request body could not be parsed: {e}."))
    })?;

    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ))
        }
        None => {
            return Err(invalid_request(
                900144,
                "The request body must contain the parameter: 'grant_type'.",
            ))
        }
    }

    let (client_id, credential) = client_credential(&form, &headers)?;

    let resource = match flavor {
        Flavor::V2 => {
            let scope = form.scope.as_deref().unwrap_or_default().trim();
            if scope.is_empty() {
                return Err(invalid_request(
                    900144,
                    "The request body must contain the parameter: 'scope'.",
                ));
            }
            let mut scopes = scope
                .split_whitespace()
                .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"));
            let (Some(only), None) = (scopes.next(), scopes.next()) else {
                return Err(ApiError::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must have a single scope value with /.default suffixed to the resource identifier.",
                ));
            };
            match only.strip_suffix("/.default") {
                Some(resource) if !resource.is_empty() => resource.to_string(),
                _ => {
                    return Err(ApiError::oauth(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        1002012,
                        format!("The provided value '{only}' for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier."),
                    ))
                }
            }
        }
        Flavor::V1 => match form.resource.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => {
                return Err(invalid_request(
                    900144,
                    "The request body must contain the parameter: 'resource'.",
                ))
            }
        },
    };
    let wanted = normalize_audience(&resource);
    if !state.known_audiences().iter().any(|a| normalize_audience(a) == wanted) {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant."),
        ));
    }

    let Some(found) = state.db.get_principal_by_app_id(&client_id).await? else {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    let principal = match credential {
        Credential::Secret(client_secret) => {
            let Some(principal) = verify_client_secret(&state, &client_id, &client_secret).await?
            else {
                tracing::info!(client_id = %client_id, "client credentials rejected");
                return Err(ApiError::oauth(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                ));
            };
            principal
        }
        Credential::Assertion(assertion) => {
            authenticate_assertion(&state, &found, &assertion).await?;
            found
        }
    };
    let now = now_unix();
    let lifetime = state.token_lifetime_secs;
    let claims = EntraClaims {
        aud: resource.clone(),
        iss: state.issuer(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        oid: principal.id.clone(),
        tid: state.tenant_id.clone(),
        sub: principal.id.clone(),
        appid: Some(principal.app_id.clone()),
        azp: Some(principal.app_id.clone()),
        idtyp: "app".into(),
        ver: if flavor == Flavor::V1 { "1.0".into() } else { "2.0".into() },
        uti: random_token(16),
        // A managed identity's resource: the user-assigned identity, or the resource of a system-assigned one.
        xms_mirid: match principal.kind {
            PrincipalKind::ServicePrincipal => None,
            _ => principal.resource_id.clone(),
        },
        roles: Vec::new(),
    };
    let access_token = state.keys().sign(&claims).map_err(ApiError::internal)?;
    let body = match flavor {
        Flavor::V2 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }),
        Flavor::V1 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "access_token": access_token,
        }),
    };
    let mut response = json_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().map_err(ApiError::internal)?);
    Ok(response)
}
