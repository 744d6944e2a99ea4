//! `Microsoft.ManagedIdentity/userAssignedIdentities` and their `federatedIdentityCredentials`.
//!
//! An identity is an ARM resource and a principal at once: creating the resource creates the principal (a
//! `clientId` and a `principalId`, no secret ever) in the same transaction, and deleting it (or its group) deletes
//! the principal and its federated credentials with it, so its tokens stop at the next check. The order of checks
//! is ARM's: name, authorization at the target scope, then the group, then existence.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{types, ArmErrorCode, ResourceId};
use berth_db::{
    CredentialPut, DbError, FederatedCredentialRecord, IdentityPut, Principal, PrincipalKind,
    ResourceRecord,
};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::arm::{
    group_not_found, required_location, resource_record, stored, validate_tags, ArmContext,
};
use super::{json_response, parse_json_object};
use crate::error::{ApiError, ApiResult};
use crate::federation::DEFAULT_AUDIENCE;
use crate::time::now_rfc3339;

const READ: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/read";
const WRITE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/write";
const DELETE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/delete";
const CREDENTIAL_READ: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read";
const CREDENTIAL_WRITE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write";
const CREDENTIAL_DELETE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete";
/// The child type of federated credentials, as ARM spells it.
pub const CREDENTIALS: &str = "federatedIdentityCredentials";
const CREDENTIAL_TYPE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
/// Entra's limit of federated credentials on one identity.
const MAX_CREDENTIALS: usize = 20;
/// Longest issuer, subject and audience Entra accepts.
const MAX_CLAIM_VALUE: usize = 600;

/// Requests on one identity: `.../userAssignedIdentities/{name}`.
pub async fn handle(
    ctx: &ArmContext,
    method: &Method,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    match *method {
        Method::GET => {
            ctx.authorize(READ, id).await?;
            let record = existing_identity(ctx, group, id).await?;
            Ok(Json(stored(&record)?).into_response())
        }
        Method::PUT => put(ctx, group, id, body).await,
        Method::PATCH => patch(ctx, group, id, body).await,
        Method::DELETE => {
            ctx.authorize(DELETE, id).await?;
            // The principal and the federated credentials go with the resource, in the same transaction.
            let removed = ctx.state.db.delete_resource(&id.key()).await?;
            if !removed.is_empty() {
                tracing::info!(identity = %id, "deleted user-assigned identity");
            }
            Ok(if removed.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK }
                .into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{method}' is not allowed on a user-assigned identity."),
        )),
    }
}

fn not_found(id: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceNotFound,
        format!(
            "The Resource '{}/{}' under resource group '{}' was not found. For more details please go to \
             https://aka.ms/ARMResourceNotFoundFix",
            types::USER_ASSIGNED_IDENTITY,
            id.name().unwrap_or_default(),
            id.resource_group_name().unwrap_or_default()
        ),
    )
}

/// The identity, after its group: a missing group is `ResourceGroupNotFound`, a missing identity
/// `ResourceNotFound`.
async fn existing_identity(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
) -> ApiResult<ResourceRecord> {
    if ctx.state.db.get_resource_group(&group.key()).await?.is_none() {
        return Err(group_not_found(group));
    }
    match ctx.state.db.get_resource(&id.key()).await? {
        Some(record) if record.type_key == types::USER_ASSIGNED_IDENTITY.to_ascii_lowercase() => {
            Ok(record)
        }
        _ => Err(not_found(id)),
    }
}

/// Identity names: 3–128 characters of letters, digits, `-` and `_`, starting with a letter or digit.
fn validate_identity_name(name: &str) -> ApiResult<()> {
    let ok = (3..=128).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::arm(
            ArmErrorCode::InvalidResourceName,
            format!(
                "Resource name '{name}' is invalid. The name can contain only letters, numbers, hyphens and \
                 underscores, must start with a letter or number, and must be 3 to 128 characters long."
            ),
        ))
    }
}

fn concurrently_changed(id: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::Conflict,
        format!("The resource '{id}' was changed by another request at the same time. Retry the request."),
    )
}

fn envelope(
    ctx: &ArmContext,
    id: &ResourceId,
    location: &str,
    tags: Value,
    principal_id: &str,
    client_id: &str,
    previous: Option<&Value>,
) -> Value {
    json!({
        "id": id.to_string(),
        "name": id.name(),
        "type": types::USER_ASSIGNED_IDENTITY,
        "location": location,
        "tags": tags,
        "properties": {
            "tenantId": ctx.state.tenant_id,
            "principalId": principal_id,
            "clientId": client_id,
            "isolationScope": "None",
        },
        "systemData": ctx.system_data(previous.and_then(|p| p.get("systemData"))),
    })
}

async fn put(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    let name = id.name().unwrap_or_default().to_string();
    validate_identity_name(&name)?;
    ctx.authorize(WRITE, id).await?;
    let body = parse_json_object(body)?;
    if ctx.state.db.get_resource_group(&group.key()).await?.is_none() {
        return Err(group_not_found(group));
    }
    let location = required_location(&body)?;
    let tags = validate_tags(body.get("tags"))?;
    let existing = ctx.state.db.get_resource(&id.key()).await?;
    if existing
        .as_ref()
        .is_some_and(|r| r.type_key != types::USER_ASSIGNED_IDENTITY.to_ascii_lowercase())
    {
        return Err(ApiError::internal(format!("{id} is stored with another type")));
    }
    let previous = existing.as_ref().map(stored).transpose()?;
    let (id, principal_id, client_id, new_principal) = match (&existing, &previous) {
        (Some(record), Some(prev)) => {
            let prev_location = prev.get("location").and_then(Value::as_str).unwrap_or_default();
            if !prev_location.eq_ignore_ascii_case(&location) {
                return Err(ApiError::arm(
                    ArmErrorCode::InvalidResourceLocation,
                    format!(
                        "The resource '{name}' already exists in location '{prev_location}' in resource group '{}'. \
                         A resource with the same name cannot be created in location '{location}'. Please select \
                         a new resource name.",
                        group.resource_group_name().unwrap_or_default()
                    ),
                ));
            }
            let text = |key: &str| {
                prev.pointer(&format!("/properties/{key}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::internal(format!("stored identity {id} lacks {key}")))
            };
            let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
            (id, text("principalId")?, text("clientId")?, None)
        }
        _ => {
            let principal = Principal {
                id: Uuid::new_v4().to_string(),
                tenant_id: ctx.state.tenant_id.clone(),
                app_id: Uuid::new_v4().to_string(),
                kind: PrincipalKind::UserAssignedIdentity,
                display_name: name.clone(),
                resource_id: Some(id.to_string()),
                application_object_id: None,
                created_at: now_rfc3339(),
            };
            (id.clone(), principal.id.clone(), principal.app_id.clone(), Some(principal))
        }
    };
    let envelope =
        envelope(ctx, &id, &location, tags, &principal_id, &client_id, previous.as_ref());
    let record = resource_record(ctx, &id, group, None, &envelope, existing.as_ref());
    let added: Vec<Principal> = new_principal.into_iter().collect();
    let outcome = ctx
        .state
        .db
        .put_resource_with_identities(
            &record,
            existing.as_ref().map(|r| r.body.as_str()),
            &added,
            &[],
        )
        .await;
    match outcome {
        Ok(IdentityPut::Created) => {
            tracing::info!(identity = %id, principal = %principal_id, "created user-assigned identity");
            Ok(json_response(StatusCode::CREATED, envelope))
        }
        Ok(IdentityPut::Updated) => Ok(json_response(StatusCode::OK, envelope)),
        Ok(IdentityPut::Changed) | Err(DbError::Conflict(_)) => Err(concurrently_changed(&id)),
        Err(e) => Err(e.into()),
    }
}

/// PATCH changes tags only; everything else an identity has is fixed at creation.
async fn patch(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    ctx.authorize(WRITE, id).await?;
    let body = parse_json_object(body)?;
    let record = existing_identity(ctx, group, id).await?;
    let mut envelope = stored(&record)?;
    if body.contains_key("tags") {
        envelope["tags"] = validate_tags(body.get("tags"))?;
    }
    envelope["systemData"] = ctx.system_data(envelope.get("systemData"));
    let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
    let updated = resource_record(ctx, &id, group, None, &envelope, Some(&record));
    match ctx.state.db.put_resource_with_identities(&updated, Some(&record.body), &[], &[]).await? {
        IdentityPut::Changed => Err(concurrently_changed(&id)),
        _ => Ok(Json(envelope).into_response()),
    }
}

// ---- federated identity credentials -------------------------------------------------------------------------

fn parent_not_found(identity: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ParentResourceNotFound,
        format!(
            "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
            identity.name().unwrap_or_default()
        ),
    )
}

fn credential_not_found(credential: &ResourceId, identity: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceNotFound,
        format!(
            "The Resource '{}/{}/{CREDENTIALS}/{}' under resource group '{}' was not found. For more details \
             please go to https://aka.ms/ARMResourceNotFoundFix",
            types::USER_ASSIGNED_IDENTITY,
            identity.name().unwrap_or_default(),
            credential.name().unwrap_or_default(),
            identity.resource_group_name().unwrap_or_default()
        ),
    )
}

/// The identity a credential request is below; `ParentResourceNotFound` when it does not exist.
async fn parent_identity(
    ctx: &ArmContext,
    group: &ResourceId,
    identity: &ResourceId,
) -> ApiResult<ResourceRecord> {
    existing_identity(ctx, group, identity).await.map_err(|e| match e {
        ApiError::Arm(ref arm) if arm.code == ArmErrorCode::ResourceNotFound => {
            parent_not_found(identity)
        }
        other => other,
    })
}

/// `GET .../userAssignedIdentities/{name}/federatedIdentityCredentials`.
pub async fn list_credentials(
    ctx: &ArmContext,
    group: &ResourceId,
    identity: &ResourceId,
) -> ApiResult<Response> {
    ctx.authorize(CREDENTIAL_READ, identity).await?;
    let parent = parent_identity(ctx, group, identity).await?;
    let mut value = Vec::new();
    for credential in ctx.state.db.federated_credentials_of(&parent.id).await? {
        value.push(credential_body(&credential)?);
    }
    Ok(Json(json!({ "value": value })).into_response())
}

fn credential_body(record: &FederatedCredentialRecord) -> ApiResult<Value> {
    serde_json::from_str(&record.body)
        .map_err(|e| ApiError::internal(format!("stored body of {}: {e}", record.id)))
}

/// Requests on one credential: `.../federatedIdentityCredentials/{name}`.
pub async fn handle_credential(
    ctx: &ArmContext,
    method: &Method,
    group: &ResourceId,
    identity: &ResourceId,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let id = identity
        .child(CREDENTIALS, name)
        .ok_or_else(|| ApiError::internal(format!("{identity} cannot have children")))?;
    match *method {
        Method::GET => {
            ctx.authorize(CREDENTIAL_READ, &id).await?;
            parent_identity(ctx, group, identity).await?;
            let record = ctx
                .state
                .db
                .get_federated_credential(&id.key())
                .await?
                .ok_or_else(|| credential_not_found(&id, identity))?;
            Ok(Json(credential_body(&record)?).into_response())
        }
        Method::PUT => put_credential(ctx, group, identity, &id, body).await,
        Method::DELETE => {
            ctx.authorize(CREDENTIAL_DELETE, &id).await?;
            parent_identity(ctx, group, identity).await?;
            let removed = ctx.state.db.delete_federated_credential(&id.key()).await?;
            Ok(if removed { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{method}' is not allowed on a federated identity credential."),
        )),
    }
}

/// Credential names: 3–120 characters of letters, digits, `-` and `_`, starting with a letter or digit.
fn validate_credential_name(name: &str) -> ApiResult<()> {
    let ok = (3..=120).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::arm(
            ArmErrorCode::InvalidResourceName,
            format!(
                "Resource name '{name}' is invalid. The name of a federated identity credential can contain only \
                 letters, numbers, hyphens and underscores, must start with a letter or number, and must be 3 to \
                 120 characters long."
            ),
        ))
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::BadRequest, message)
}

fn claim_value(props: &Map<String, Value>, key: &str) -> ApiResult<String> {
    match props.get(key) {
        Some(Value::String(v)) if !v.trim().is_empty() => {
            if v.len() > MAX_CLAIM_VALUE {
                return Err(bad_request(format!(
                    "'properties.{key}' is longer than {MAX_CLAIM_VALUE} characters."
                )));
            }
            Ok(v.clone())
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            Err(bad_request(format!("'properties.{key}' is required and must not be empty.")))
        }
        Some(_) => Err(bad_request(format!("'properties.{key}' must be a string."))),
    }
}

/// Issuer (an `https://` URL), subject and audiences (default `api://AzureADTokenExchange`), compared exactly
/// with what assertions say, so they are kept as given.
fn credential_properties(body: &Map<String, Value>) -> ApiResult<(String, String, Vec<String>)> {
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => {
            return Err(bad_request(
                "'properties' with 'issuer' and 'subject' is required for a federated identity credential.",
            ))
        }
        Some(_) => return Err(bad_request("'properties' must be an object.")),
    };
    let issuer = claim_value(props, "issuer")?;
    let is_https = issuer.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        && issuer.len() > 8
        && !issuer.chars().any(char::is_whitespace);
    if !is_https {
        return Err(bad_request(format!(
            "The issuer '{issuer}' is invalid: it must be an https:// URL, as the issuer's tokens state it in 'iss'."
        )));
    }
    let subject = claim_value(props, "subject")?;
    let audiences = match props.get("audiences") {
        None | Some(Value::Null) => vec![DEFAULT_AUDIENCE.to_owned()],
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut audiences = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(a) if !a.trim().is_empty() && a.len() <= MAX_CLAIM_VALUE => {
                        audiences.push(a.to_owned())
                    }
                    _ => {
                        return Err(bad_request(format!(
                            "Every item of 'properties.audiences' must be a non-empty string of at most \
                             {MAX_CLAIM_VALUE} characters."
                        )))
                    }
                }
            }
            audiences
        }
        Some(_) => {
            return Err(bad_request(
                "'properties.audiences' must be a non-empty array of strings (default: [\"api://AzureADTokenExchange\"]).",
            ))
        }
    };
    Ok((issuer, subject, audiences))
}

async fn put_credential(
    ctx: &ArmContext,
    group: &ResourceId,
    identity: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    let name = id.name().unwrap_or_default().to_string();
    validate_credential_name(&name)?;
    ctx.authorize(CREDENTIAL_WRITE, id).await?;
    let body = parse_json_object(body)?;
    let parent = parent_identity(ctx, group, identity).await?;
    let (issuer, subject, audiences) = credential_properties(&body)?;
    // The credential takes the identity's name casing; its own name keeps the casing of its creation.
    let parent_id = ResourceId::parse(&parent.id).map_err(ApiError::internal)?;
    let existing = ctx.state.db.get_federated_credential(&id.key()).await?;
    let name = existing.as_ref().map(|e| e.name.clone()).unwrap_or(name);
    let id = parent_id
        .child(CREDENTIALS, &name)
        .ok_or_else(|| ApiError::internal(format!("{parent_id} cannot have children")))?;
    let previous = existing.as_ref().map(credential_body).transpose()?;
    let envelope = json!({
        "id": id.to_string(),
        "name": name,
        "type": CREDENTIAL_TYPE,
        "properties": {"issuer": issuer, "subject": subject, "audiences": audiences},
        "systemData": ctx.system_data(previous.as_ref().and_then(|p| p.get("systemData"))),
    });
    let now = now_rfc3339();
    let record = FederatedCredentialRecord {
        id: id.to_string(),
        identity_id: parent.id.clone(),
        name,
        issuer: issuer.clone(),
        subject: subject.clone(),
        audiences,
        body: envelope.to_string(),
        created_at: existing.as_ref().map(|e| e.created_at.clone()).unwrap_or_else(|| now.clone()),
        updated_at: now,
    };
    match ctx.state.db.put_federated_credential(&record, MAX_CREDENTIALS).await {
        Ok(CredentialPut::Created) => Ok(json_response(StatusCode::CREATED, envelope)),
        Ok(CredentialPut::Updated) => Ok(json_response(StatusCode::OK, envelope)),
        Ok(CredentialPut::IdentityMissing) => Err(parent_not_found(identity)),
        Ok(CredentialPut::LimitReached) => Err(bad_request(format!(
            "The identity '{}' already has {MAX_CREDENTIALS} federated identity credentials, the most one identity \
             can have.",
            parent_id.name().unwrap_or_default()
        ))),
        Err(DbError::Conflict(_)) => Err(ApiError::arm(
            ArmErrorCode::Conflict,
            format!(
                "A federated identity credential with issuer '{issuer}' and subject '{subject}' already exists on \
                 the identity '{}'. The combination of issuer and subject must be unique per identity.",
                parent_id.name().unwrap_or_default()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names() {
        assert!(validate_identity_name("id1").is_ok());
        assert!(validate_identity_name("my_id-2").is_ok());
        for bad in ["ab", "-id", "has.dot", "has space", &"a".repeat(129)] {
            assert!(validate_identity_name(bad).is_err(), "{bad}");
        }
        assert!(validate_credential_name(&"a".repeat(120)).is_ok());
        assert!(validate_credential_name(&"a".repeat(121)).is_err());
    }

    #[test]
    fn credential_properties_default_and_validate() {
        let body = |props: Value| json!({"properties": props}).as_object().unwrap().clone();
        let (issuer, subject, audiences) = credential_properties(&body(
            json!({"issuer": "https://kubernetes.example/oidc", "subject": "system:serviceaccount:ns:sa"}),
        ))
        .unwrap();
        assert_eq!(issuer, "https://kubernetes.example/oidc");
        assert_eq!(subject, "system:serviceaccount:ns:sa");
        assert_eq!(audiences, vec![DEFAULT_AUDIENCE.to_owned()]);
        for bad in [
            json!({"issuer": "http://insecure.example", "subject": "s"}),
            json!({"issuer": "https://", "subject": "s"}),
            json!({"issuer": "https://i.example", "subject": ""}),
            json!({"issuer": "https://i.example"}),
            json!({"issuer": "https://i.example", "subject": "s", "audiences": []}),
            json!({"issuer": "https://i.example", "subject": "s", "audiences": [""]}),
            json!({"issuer": "https://i.example", "subject": "s", "audiences": "api://x"}),
        ] {
            assert!(credential_properties(&body(bad.clone())).is_err(), "{bad}");
        }
        assert!(credential_properties(&Map::new()).is_err());
    }
}
