//! The `identity` block of resources that have managed identities (registries; sites use it too).
//!
//! `{"type": "SystemAssigned" | "UserAssigned" | "SystemAssigned, UserAssigned" | "None",
//!   "userAssignedIdentities": {"<identity resource id>": {}}}` on PUT or PATCH becomes a plan: the block to store
//! and answer with (`principalId`/`tenantId` of the system identity, `{principalId, clientId}` per user-assigned
//! identity), the system-assigned principal to create and the one to delete. The caller writes the resource and
//! the plan in one transaction. As in ARM: the type is parsed case-insensitively and answered in its exact
//! spelling; turning the system identity off and on gives a new principal; on PATCH, `userAssignedIdentities`
//! entries are merged (`null` removes one); attaching a user-assigned identity needs its `assign/action`.

use berth_arm::{types, ArmErrorCode, ResourceId};
use berth_db::{Principal, PrincipalKind};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::arm::ArmContext;
use crate::error::{ApiError, ApiResult};
use crate::time::now_rfc3339;

/// The action ARM checks on every user-assigned identity a request attaches to a resource.
pub const ASSIGN_ACTION: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

/// What a request does to a resource's identities.
#[derive(Debug, Default)]
pub struct IdentityPlan {
    /// The block to store and return; `None` when the resource has no identity.
    pub block: Option<Value>,
    /// The system-assigned principal to create with the resource.
    pub add: Vec<Principal>,
    /// Principal ids to delete with the change.
    pub remove: Vec<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::BadRequest, message)
}

/// `(system, user)` from a type string, case-insensitively; the order of the two parts does not matter.
fn parse_type(text: &str) -> ApiResult<(bool, bool)> {
    let mut system = false;
    let mut user = false;
    let mut none = false;
    for part in text.split(',').map(str::trim) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" if !system => system = true,
            "userassigned" if !user => user = true,
            "none" if !none => none = true,
            _ => {
                return Err(bad_request(format!(
                    "The identity type '{text}' is invalid. Allowed values are 'SystemAssigned', 'UserAssigned', \
                     'SystemAssigned, UserAssigned' and 'None'."
                )))
            }
        }
    }
    if none && (system || user) {
        return Err(bad_request(format!(
            "The identity type '{text}' is invalid: 'None' cannot be combined with another type."
        )));
    }
    Ok((system, user))
}

/// The exact spelling ARM answers with.
fn type_name(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

/// A user-assigned identity's ID from a map key, or ARM's complaint.
fn user_identity_id(key: &str) -> ApiResult<ResourceId> {
    let id = ResourceId::parse(key).ok().filter(|id| {
        id.subscription_id().is_some()
            && id.resource_group_name().is_some()
            && id.resource_type().is_some_and(|t| t.is(types::USER_ASSIGNED_IDENTITY))
    });
    id.ok_or_else(|| {
        bad_request(format!(
            "The user assigned identity id '{key}' is invalid. It must be a resource id of the form \
             /subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroupName}}/providers/\
             Microsoft.ManagedIdentity/userAssignedIdentities/{{name}}."
        ))
    })
}

/// Plans the identity change of a PUT or PATCH on `resource` (its canonical ID). `requested` is the body's
/// `identity` member (absent: no change), `previous` the stored block, `write_action` the action the request was
/// authorized for (named in linked-authorization errors).
pub async fn plan(
    ctx: &ArmContext,
    resource: &ResourceId,
    requested: Option<&Value>,
    previous: Option<&Value>,
    patch: bool,
    write_action: &str,
) -> ApiResult<IdentityPlan> {
    let requested = match requested {
        None => return Ok(IdentityPlan { block: previous.cloned(), ..IdentityPlan::default() }),
        Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(bad_request("'identity' must be an object with a 'type'.")),
    };
    let (system, user) = match requested.map(|r| r.get("type")) {
        None => (false, false),
        Some(Some(Value::String(t))) => parse_type(t)?,
        Some(None | Some(Value::Null)) => {
            return Err(bad_request(
                "'identity.type' is required: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned' or \
                 'None'.",
            ))
        }
        Some(Some(_)) => return Err(bad_request("'identity.type' must be a string.")),
    };
    let mut plan = IdentityPlan::default();

    // The system-assigned identity: kept while wanted, new when turned on, deleted when turned off.
    let current = ctx
        .state
        .db
        .identity_principal(&resource.to_string(), PrincipalKind::SystemAssignedIdentity)
        .await?;
    let system_principal = match (system, current) {
        (true, Some(current)) => Some(current.id),
        (true, None) => {
            let principal = Principal {
                id: Uuid::new_v4().to_string(),
                tenant_id: ctx.state.tenant_id.clone(),
                app_id: Uuid::new_v4().to_string(),
                kind: PrincipalKind::SystemAssignedIdentity,
                display_name: resource.name().unwrap_or_default().to_owned(),
                resource_id: Some(resource.to_string()),
                application_object_id: None,
                created_at: now_rfc3339(),
            };
            let id = principal.id.clone();
            plan.add.push(principal);
            Some(id)
        }
        (false, Some(current)) => {
            plan.remove.push(current.id);
            None
        }
        (false, None) => None,
    };

    // The user-assigned identities: on PATCH merged into what the resource has, on PUT as given.
    let empty = Map::new();
    let asked = match requested.and_then(|r| r.get("userAssignedIdentities")) {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad_request("'identity.userAssignedIdentities' must be an object.")),
    };
    let mut users: Vec<(String, Value)> = Vec::new();
    if user && patch {
        if let Some(Value::Object(kept)) = previous.and_then(|p| p.get("userAssignedIdentities")) {
            users.extend(kept.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    for (key, value) in asked {
        let id = user_identity_id(key)?;
        match value {
            Value::Null => users.retain(|(k, _)| !k.eq_ignore_ascii_case(&id.to_string())),
            Value::Object(_) if !user => {
                return Err(bad_request(
                    "The request format was unexpected, a non-UserAssigned identity type should not contain: \
                     userAssignedIdentities",
                ))
            }
            Value::Object(_) => {
                let (key, entry) = attach(ctx, resource, &id, write_action).await?;
                match users.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                    Some(existing) => *existing = (key, entry),
                    None => users.push((key, entry)),
                }
            }
            _ => {
                return Err(bad_request(format!(
                    "The value of user assigned identity '{key}' must be an object ({{}}) or null."
                )))
            }
        }
    }
    if user && users.is_empty() {
        return Err(bad_request(
            "The identity type includes 'UserAssigned', but 'userAssignedIdentities' names no identity.",
        ));
    }
    if !system && !user {
        return Ok(plan);
    }
    let mut block = Map::new();
    block.insert("type".into(), json!(type_name(system, user)));
    if let Some(principal_id) = system_principal {
        block.insert("principalId".into(), json!(principal_id));
        block.insert("tenantId".into(), json!(ctx.state.tenant_id));
    }
    if user {
        block.insert("userAssignedIdentities".into(), Value::Object(users.into_iter().collect()));
    }
    plan.block = Some(Value::Object(block));
    Ok(plan)
}

/// Checks that the caller may attach the identity (linked authorization, before existence as in ARM) and that
/// it exists; returns its canonical ID and `{principalId, clientId}`.
async fn attach(
    ctx: &ArmContext,
    resource: &ResourceId,
    identity: &ResourceId,
    write_action: &str,
) -> ApiResult<(String, Value)> {
    if !ctx.may(ASSIGN_ACTION, identity).await? {
        return Err(ApiError::arm(
            ArmErrorCode::LinkedAuthorizationFailed,
            format!(
                "The client '{}' with object id '{}' has permission to perform action '{write_action}' on scope \
                 '{resource}'; however, it does not have permission to perform action(s) '{ASSIGN_ACTION}' on the \
                 linked scope(s) '{identity}' (respectively) or the linked scope(s) are invalid.",
                ctx.caller.principal.app_id, ctx.caller.principal.id
            ),
        ));
    }
    let record = ctx
        .state
        .db
        .get_resource(&identity.key())
        .await?
        .filter(|r| r.type_key == types::USER_ASSIGNED_IDENTITY.to_ascii_lowercase());
    let Some(record) = record else {
        return Err(ApiError::arm(
            ArmErrorCode::FailedIdentityOperation,
            format!(
                "Identity operation for resource '{resource}' failed with error 'Failed to perform resource identity \
                 operation. Status: 'NotFound'. Response: '{{\"error\":{{\"code\":\"NotFound\",\"message\":\"Resource \
                 '{identity}' not found.\"}}}}'.'"
            ),
        ));
    };
    let body: Value = serde_json::from_str(&record.body)
        .map_err(|e| ApiError::internal(format!("stored body of {}: {e}", record.id)))?;
    let field = |name: &str| body.pointer(&format!("/properties/{name}")).cloned();
    let entry = json!({"principalId": field("principalId"), "clientId": field("clientId")});
    Ok((record.id, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_case_insensitively_and_print_exactly() {
        assert_eq!(parse_type("SystemAssigned").unwrap(), (true, false));
        assert_eq!(parse_type("systemassigned, userassigned").unwrap(), (true, true));
        assert_eq!(parse_type("UserAssigned,SystemAssigned").unwrap(), (true, true));
        assert_eq!(parse_type("NONE").unwrap(), (false, false));
        for bad in ["", "System", "None, SystemAssigned", "SystemAssigned, SystemAssigned", "x"] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name(true, true), "SystemAssigned, UserAssigned");
        assert_eq!(type_name(false, true), "UserAssigned");
    }

    #[test]
    fn user_identity_ids_must_name_identities() {
        let good = "/subscriptions/s/resourcegroups/rg/providers/microsoft.managedidentity/userassignedidentities/id1";
        assert_eq!(
            user_identity_id(good).unwrap().to_string(),
            "/subscriptions/s/resourceGroups/rg/providers/microsoft.managedidentity/userassignedidentities/id1"
        );
        for bad in [
            "id1",
            "/subscriptions/s/resourceGroups/rg",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
        ] {
            assert!(user_identity_id(bad).is_err(), "{bad}");
        }
    }
}
