//! The Microsoft Graph subset the Azure CLI needs: applications, service principals, their passwords, and
//! directory-object lookups.
//!
//! In berth an application and its service principal are one principal row: `POST /applications` creates
//! both, `POST /servicePrincipals` returns the one made for that `appId`. Creating principals and secrets is a
//! directory-administrator act: it needs `Microsoft.Authorization/roleAssignments/write` on the caller's
//! subscription (Owner or User Access Administrator).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{ArmErrorCode, ResourceId};
use berth_authz::ActionKind;
use berth_db::{Principal, PrincipalKind, PrincipalSecret};
use berth_identity::secret::secret_hint;
use berth_identity::{generate_client_secret, hash_secret};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{json_response, parse_json_object, read_body, MAX_JSON_BODY};
use crate::auth::{authenticate, Caller};
use crate::bootstrap::SECRET_LIFETIME_SECS;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, GRAPH_AUDIENCE};
use crate::time::{now_rfc3339, now_unix};

pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult<Response> {
    let mut audiences = state.arm_audiences();
    audiences.push(GRAPH_AUDIENCE.to_string());
    let caller = authenticate(&state, &headers, audiences).await?;
    let segments: Vec<String> =
        uri.path().split('/').filter(|s| !s.is_empty()).skip(1).map(str::to_string).collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let body = read_body(body, MAX_JSON_BODY).await?;
    match (lower.as_slice(), &method) {
        (["applications"], &Method::POST) => create_application(&state, &caller, &body).await,
        (["applications", _, "addpassword"], &Method::POST) => {
            add_password(&state, &caller, &segments[1], &body).await
        }
        (["serviceprincipals"], &Method::POST) => {
            create_service_principal(&state, &caller, &body).await
        }
        (["serviceprincipals"], &Method::GET) => {
            list_service_principals(&state, query.get("$filter")).await
        }
        (["directoryobjects", "getbyids"], &Method::POST) => get_by_ids(&state, &body).await,
        _ => Err(ApiError::arm(
            ArmErrorCode::ResourceNotFound,
            format!("Graph path '{}' is not served.", uri.path()),
        )),
    }
}

async fn require_directory_admin(state: &AppState, caller: &Caller) -> ApiResult<()> {
    for sub in state.db.list_subscriptions().await? {
        let scope = ResourceId::subscription(&sub.id);
        let decision = state
            .authorizer
            .check(
                caller.object_id(),
                "Microsoft.Authorization/roleAssignments/write",
                ActionKind::Control,
                &scope,
            )
            .await?;
        if decision.is_allowed() {
            return Ok(());
        }
    }
    Err(ApiError::arm(
        ArmErrorCode::AuthorizationFailed,
        "Insufficient privileges to complete the operation: creating applications and credentials needs \
         'Microsoft.Authorization/roleAssignments/write' on a subscription (Owner or User Access Administrator).",
    ))
}

fn application_json(p: &Principal) -> Value {
    json!({
        "id": p.application_object_id,
        "appId": p.app_id,
        "displayName": p.display_name,
        "createdDateTime": p.created_at,
        "passwordCredentials": [],
    })
}

fn service_principal_json(p: &Principal) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": p.id,
        "appId": p.app_id,
        "displayName": p.display_name,
        "servicePrincipalType": if p.kind == PrincipalKind::ServicePrincipal { "Application" } else { "ManagedIdentity" },
        "servicePrincipalNames": [p.app_id],
        "accountEnabled": true,
    })
}

async fn create_application(state: &AppState, caller: &Caller, body: &[u8]) -> ApiResult<Response> {
    require_directory_admin(state, caller).await?;
    let body = parse_json_object(body)?;
    let name = body.get("displayName").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    if name.is_empty() || name.len() > 256 {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            "'displayName' is required (1-256 characters).",
        ));
    }
    let principal = Principal {
        id: Uuid::new_v4().to_string(),
        tenant_id: state.tenant_id.clone(),
        app_id: Uuid::new_v4().to_string(),
        kind: PrincipalKind::ServicePrincipal,
        display_name: name.to_string(),
        resource_id: None,
        application_object_id: Some(Uuid::new_v4().to_string()),
        created_at: now_rfc3339(),
    };
    state.db.create_principal(&principal, None).await?;
    tracing::info!(app_id = %principal.app_id, by = %caller.object_id(), "created application and service principal");
    Ok(json_response(StatusCode::CREATED, application_json(&principal)))
}

async fn create_service_principal(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> ApiResult<Response> {
    require_directory_admin(state, caller).await?;
    let body = parse_json_object(body)?;
    let app_id = body.get("appId").and_then(Value::as_str).unwrap_or_default();
    let principal = state.db.get_principal_by_app_id(app_id).await?.ok_or_else(|| {
        ApiError::arm(
            ArmErrorCode::BadRequest,
            format!("No application with appId '{app_id}' exists."),
        )
    })?;
    Ok(json_response(StatusCode::CREATED, service_principal_json(&principal)))
}

async fn add_password(
    state: &AppState,
    caller: &Caller,
    application_id: &str,
    body: &[u8],
) -> ApiResult<Response> {
    require_directory_admin(state, caller).await?;
    let body = parse_json_object(body)?;
    let principal =
        state.db.get_principal_by_application_object(application_id).await?.ok_or_else(|| {
            ApiError::arm(
                ArmErrorCode::ResourceNotFound,
                format!("Application '{application_id}' does not exist."),
            )
        })?;
    let display_name = body
        .get("passwordCredential")
        .and_then(|c| c.get("displayName"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let secret = generate_client_secret();
    let hash = tokio::task::spawn_blocking({
        let secret = secret.clone();
        move || hash_secret(&secret)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let expires_at = now_unix() + SECRET_LIFETIME_SECS;
    let key_id = Uuid::new_v4().to_string();
    let record = PrincipalSecret {
        id: key_id.clone(),
        principal_id: principal.id.clone(),
        secret_hash: hash,
        hint: secret_hint(&secret),
        display_name: display_name.clone(),
        created_at: now_rfc3339(),
        expires_at,
    };
    state.db.add_secret(&record).await?;
    let end = time::OffsetDateTime::from_unix_timestamp(expires_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    // The only time the secret is ever returned; berth keeps its hash.
    Ok(Json(json!({
        "keyId": key_id,
        "displayName": display_name,
        "hint": record.hint,
        "secretText": secret,
        "startDateTime": record.created_at,
        "endDateTime": end,
    }))
    .into_response())
}

/// `$filter=servicePrincipalNames/any(c:c eq 'X')` or `appId eq 'X'` or `displayName eq 'X'`.
async fn list_service_principals(state: &AppState, filter: Option<&String>) -> ApiResult<Response> {
    let filter = filter.map(String::as_str).unwrap_or_default();
    let quoted = filter.split('\'').nth(1).unwrap_or_default().to_string();
    let lower = filter.to_ascii_lowercase();
    let mut found = Vec::new();
    if lower.starts_with("displayname eq") {
        found = state.db.list_principals_by_display_name(&quoted).await?;
    } else if lower.starts_with("serviceprincipalnames/any") || lower.starts_with("appid eq") {
        if let Some(p) = state.db.get_principal_by_app_id(&quoted).await? {
            found.push(p);
        }
    } else if !filter.is_empty() {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            format!("Unsupported $filter '{filter}'."),
        ));
    }
    let value: Vec<Value> = found.iter().map(service_principal_json).collect();
    Ok(Json(json!({ "value": value })).into_response())
}

async fn get_by_ids(state: &AppState, body: &[u8]) -> ApiResult<Response> {
    let body = parse_json_object(body)?;
    let ids = body.get("ids").and_then(Value::as_array).cloned().unwrap_or_default();
    if ids.len() > 1000 {
        return Err(ApiError::arm(ArmErrorCode::BadRequest, "At most 1000 ids per request."));
    }
    let mut value = Vec::new();
    for id in ids.iter().filter_map(Value::as_str) {
        if let Some(p) = state.db.get_principal(id).await? {
            value.push(service_principal_json(&p));
        }
    }
    Ok(Json(json!({ "value": value })).into_response())
}
