//! `Microsoft.ContainerRegistry/registries`: create, read, update (PUT and PATCH), delete, name availability.
//!
//! Names are ACR's (5–50 alphanumerics) and unique across the server, compared case-insensitively, because the
//! name is the registry's address (`loginServer`). A registry may have managed identities (`identity`, see
//! `resource_identity`); its system-assigned principal is written and deleted in the registry's transaction.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{types, validate_registry_name, ArmErrorCode, ResourceId};
use berth_db::{DbError, IdentityPut};
use serde_json::{json, Map, Value};

use super::arm::{
    group_not_found, required_location, resource_record, stored, validate_tags, ArmContext,
};
use super::{json_response, parse_json_object, resource_identity};
use crate::error::{ApiError, ApiResult};
use crate::gc::{self, GcOptions};
use crate::time::now_rfc3339;

const READ: &str = "Microsoft.ContainerRegistry/registries/read";
const WRITE: &str = "Microsoft.ContainerRegistry/registries/write";
const DELETE: &str = "Microsoft.ContainerRegistry/registries/delete";

pub const ROLE_ASSIGNMENT_MODES: &[&str] =
    &["LegacyRegistryPermissions", "AbacRepositoryPermissions"];

fn unique_name(name: &str) -> String {
    format!("registry:{}", name.to_ascii_lowercase())
}

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
            let record =
                ctx.state.db.get_resource(&id.key()).await?.ok_or_else(|| not_found(id))?;
            Ok(Json(stored(&record)?).into_response())
        }
        Method::PUT | Method::PATCH => {
            let result = put(ctx, group, id, body, *method == Method::PATCH).await;
            // The data plane caches registries briefly; this node sees the change at once.
            ctx.state.v2_caches.forget_registries();
            result
        }
        Method::DELETE => {
            ctx.authorize(DELETE, id).await?;
            let removed = ctx.state.db.delete_resource(&id.key()).await?;
            ctx.state.v2_caches.forget_registries();
            Ok(if removed.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK }
                .into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{method}' is not allowed on a registry."),
        )),
    }
}

fn not_found(id: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceNotFound,
        format!(
            "The Resource 'Microsoft.ContainerRegistry/registries/{}' under resource group '{}' was not found.",
            id.name().unwrap_or_default(),
            id.resource_group_name().unwrap_or_default()
        ),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::InvalidRequestContent, message)
}

fn canonical_sku(body: &Map<String, Value>, previous: Option<&Value>) -> ApiResult<String> {
    let given = match body.get("sku") {
        None | Some(Value::Null) => None,
        Some(Value::Object(sku)) => match sku.get("name") {
            Some(Value::String(name)) => Some(name.clone()),
            _ => return Err(invalid("'sku.name' must be one of Basic, Standard, Premium.")),
        },
        Some(_) => return Err(invalid("'sku' must be an object with a 'name'.")),
    };
    let name = match (given, previous.and_then(|p| p.pointer("/sku/name")).and_then(Value::as_str))
    {
        (Some(name), _) => name,
        (None, Some(prev)) => prev.to_string(),
        (None, None) => {
            return Err(invalid(
                "The registry needs a sku: 'sku': {'name': 'Basic'|'Standard'|'Premium'}.",
            ))
        }
    };
    ["Basic", "Standard", "Premium"]
        .iter()
        .find(|s| s.eq_ignore_ascii_case(&name))
        .map(|s| s.to_string())
        .ok_or_else(|| {
            invalid(format!("The sku '{name}' is not supported. Use Basic, Standard or Premium."))
        })
}

fn bool_property(props: &Map<String, Value>, key: &str, default: bool) -> ApiResult<bool> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("'properties.{key}' must be true or false."))),
    }
}

async fn put(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
    patch: bool,
) -> ApiResult<Response> {
    let name = id.name().unwrap_or_default().to_string();
    validate_registry_name(&name)?;
    ctx.authorize(WRITE, id).await?;
    let body = parse_json_object(body)?;
    if ctx.state.db.get_resource_group(&group.key()).await?.is_none() {
        return Err(group_not_found(group));
    }
    let existing = ctx.state.db.get_resource(&id.key()).await?;
    let previous = existing.as_ref().map(stored).transpose()?;
    if patch && previous.is_none() {
        return Err(not_found(id));
    }
    let location = match (&previous, patch) {
        (Some(prev), true) => {
            prev.get("location").and_then(Value::as_str).unwrap_or_default().to_string()
        }
        _ => required_location(&body)?,
    };
    if let Some(prev) = &previous {
        let prev_location = prev.get("location").and_then(Value::as_str).unwrap_or_default();
        if !prev_location.eq_ignore_ascii_case(&location) {
            return Err(invalid(format!(
                "The registry exists in location '{prev_location}'; its location cannot change to '{location}'."
            )));
        }
    }
    let sku = canonical_sku(&body, previous.as_ref())?;
    let empty = Map::new();
    let props = match body.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid("'properties' must be an object.")),
    };
    // On PATCH, what the body leaves out keeps its value; on PUT it takes the default.
    let prev_props = if patch { previous.as_ref().and_then(|p| p.get("properties")) } else { None };
    let prev_bool = |key: &str, default: bool| {
        prev_props.and_then(|p| p.get(key)).and_then(Value::as_bool).unwrap_or(default)
    };

    let admin = bool_property(props, "adminUserEnabled", prev_bool("adminUserEnabled", false))?;
    if admin {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            "The admin user is not supported: use a service principal or a managed identity with a role assignment.",
        ));
    }
    let anonymous =
        bool_property(props, "anonymousPullEnabled", prev_bool("anonymousPullEnabled", false))?;
    if anonymous && sku == "Basic" {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            "Anonymous pull is only available in the Standard and Premium SKUs.",
        ));
    }
    let mode = match props.get("roleAssignmentMode") {
        None | Some(Value::Null) => prev_props
            .and_then(|p| p.get("roleAssignmentMode"))
            .and_then(Value::as_str)
            .unwrap_or(ROLE_ASSIGNMENT_MODES[0])
            .to_string(),
        Some(Value::String(m)) => ROLE_ASSIGNMENT_MODES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(m))
            .map(|s| s.to_string())
            .ok_or_else(|| {
                invalid(format!(
                    "'properties.roleAssignmentMode' must be one of {}.",
                    ROLE_ASSIGNMENT_MODES.join(", ")
                ))
            })?,
        Some(_) => return Err(invalid("'properties.roleAssignmentMode' must be a string.")),
    };
    let public_network_access = match props.get("publicNetworkAccess") {
        None | Some(Value::Null) => prev_props
            .and_then(|p| p.get("publicNetworkAccess"))
            .and_then(Value::as_str)
            .unwrap_or("Enabled")
            .to_string(),
        Some(Value::String(v)) if v.eq_ignore_ascii_case("enabled") => "Enabled".into(),
        Some(Value::String(v)) if v.eq_ignore_ascii_case("disabled") => "Disabled".into(),
        Some(_) => {
            return Err(invalid("'properties.publicNetworkAccess' must be Enabled or Disabled."))
        }
    };
    let tags = if patch && !body.contains_key("tags") {
        previous.as_ref().and_then(|p| p.get("tags")).cloned().unwrap_or_else(|| json!({}))
    } else {
        validate_tags(body.get("tags"))?
    };

    // Keep the name's casing from creation.
    let id = match &existing {
        Some(record) => ResourceId::parse(&record.id).map_err(ApiError::internal)?,
        None => id.clone(),
    };
    let identity = resource_identity::plan(
        ctx,
        &id,
        body.get("identity"),
        previous.as_ref().and_then(|p| p.get("identity")),
        patch,
        WRITE,
    )
    .await?;
    let created_on = previous
        .as_ref()
        .and_then(|p| p.pointer("/properties/creationDate"))
        .cloned()
        .unwrap_or_else(|| json!(now_rfc3339()));
    let mut envelope = json!({
        "id": id.to_string(),
        "name": id.name(),
        "type": types::REGISTRY,
        "location": location,
        "tags": tags,
        "sku": {"name": sku, "tier": sku},
        "properties": {
            "loginServer": ctx.state.login_server(&name),
            "creationDate": created_on,
            "provisioningState": "Succeeded",
            "adminUserEnabled": false,
            "anonymousPullEnabled": anonymous,
            "roleAssignmentMode": mode,
            "publicNetworkAccess": public_network_access,
            "networkRuleBypassOptions": "AzureServices",
            "dataEndpointEnabled": false,
            "zoneRedundancy": "Disabled",
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
            },
        },
        "systemData": ctx.system_data(previous.as_ref().and_then(|p| p.get("systemData"))),
    });
    if let Some(block) = identity.block {
        envelope["identity"] = block;
    }
    let record =
        resource_record(ctx, &id, group, Some(unique_name(&name)), &envelope, existing.as_ref());
    let read_body = existing.as_ref().map(|e| e.body.as_str());
    match ctx.state.db.put_resource_with_identities(&record, read_body, &identity.add, &identity.remove).await {
        Ok(IdentityPut::Created) => Ok(json_response(StatusCode::CREATED, envelope)),
        Ok(IdentityPut::Updated) => Ok(json_response(StatusCode::OK, envelope)),
        Ok(IdentityPut::Changed) => Err(ApiError::arm(
            ArmErrorCode::Conflict,
            format!("The registry '{name}' was changed by another request at the same time. Retry the request."),
        )),
        Err(DbError::Conflict(_)) => Err(ApiError::arm(
            ArmErrorCode::RegistryNameNotAvailable,
            format!("The registry name '{name}' is already in use. Registry names are unique across the server."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `POST /subscriptions/{sub}/providers/Microsoft.ContainerRegistry/checkNameAvailability`.
pub async fn check_name_availability(ctx: &ArmContext, body: &[u8]) -> ApiResult<Response> {
    let body = parse_json_object(body)?;
    let name =
        body.get("name").and_then(Value::as_str).ok_or_else(|| invalid("'name' is required."))?;
    ctx.authorize(
        "Microsoft.ContainerRegistry/checkNameAvailability/read",
        &ResourceId::subscription(&ctx.subscription.id),
    )
    .await?;
    if let Err(e) = validate_registry_name(name) {
        return Ok(Json(
            json!({"nameAvailable": false, "reason": "Invalid", "message": e.message}),
        )
        .into_response());
    }
    let taken = ctx.state.db.get_resource_by_unique_name(&unique_name(name)).await?.is_some();
    Ok(Json(if taken {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The registry {name} is already in use.")})
    } else {
        json!({"nameAvailable": true})
    })
    .into_response())
}

/// `POST .../registries/{name}/garbageCollect` (berth's own action): collect the registry's garbage now. Body
/// (optional): `{"dryRun": bool, "untagged": bool}`; answer: what was (or would be) deleted. Needs the registry's
/// `write` action. Blob files are shared by every registry (content-addressed), so the blob counts include those
/// that other registries' deletions freed.
pub async fn garbage_collect(
    ctx: &ArmContext,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    ctx.authorize(WRITE, id).await?;
    let body = parse_json_object(body)?;
    let flag = |key: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(invalid(format!("'{key}' must be true or false."))),
    };
    let (dry_run, untagged) = (flag("dryRun")?, flag("untagged")?);
    let record = ctx.state.db.get_resource(&id.key()).await?.ok_or_else(|| not_found(id))?;
    let options = GcOptions {
        dry_run,
        untagged,
        grace_period: ctx.state.gc_grace_period,
        registry: Some(record.name.to_ascii_lowercase()),
    };
    let report = gc::collect(&ctx.state, &options, None).await.map_err(ApiError::internal)?;
    tracing::info!(
        registry = %record.name,
        dry_run,
        untagged,
        manifests = report.deleted_manifests,
        links = report.deleted_blob_links,
        blobs = report.deleted_blobs,
        bytes = report.reclaimed_bytes,
        "garbage collection requested"
    );
    Ok(Json(report).into_response())
}
