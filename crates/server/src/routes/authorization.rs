//! `Microsoft.Authorization` at any scope: role definitions (the built-in roles, read-only, and custom roles) and
//! role assignments, with ARM's rules (reference `rbac-arm-bicep.md` §1–§4); a registry's `checkAccess`, which
//! explains a principal's registry rights; and berth's audit log of decisions (`Berth.Authorization/auditEvents`).
//!
//! Order of checks, as everywhere on the control plane: authorize at the target scope, then existence. Writing an
//! assignment is checked with the request's attributes (`@Request[Microsoft.Authorization/roleAssignments:...]`),
//! deleting one with the assignment's (`@Resource[...]`), so the RBAC Administrator's delegation conditions work.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{ArmErrorCode, ResourceId};
use berth_authz::acr::{self, RegistryAction, RegistryQuery};
use berth_authz::condition::{ARM_INVALID_CONDITION_MESSAGE, SUPPORTED_VERSION};
use berth_authz::{
    builtin_roles, find_builtin_role, AttributeSource, Attributes, Condition, Decision, Permission,
    RoleDefinition,
};
use berth_db::{AssignmentWrite, AuditQuery, CustomRoleRecord, RoleAssignmentRecord, RoleDeletion};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::arm::{require_group, ArmContext};
use super::{json_response, parse_json_object};
use crate::authorize::{assignment_of, custom_role_definition, load_grants};
use crate::error::{ApiError, ApiResult};
use crate::registry_auth;
use crate::time::now_rfc3339;

const PROVIDER: &str = "Microsoft.Authorization";
const AUDIT_PROVIDER: &str = "Berth.Authorization";
const ROLE_DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";
const ROLE_ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
const DEFINITIONS_READ: &str = "Microsoft.Authorization/roleDefinitions/read";
const DEFINITIONS_WRITE: &str = "Microsoft.Authorization/roleDefinitions/write";
const DEFINITIONS_DELETE: &str = "Microsoft.Authorization/roleDefinitions/delete";
const ASSIGNMENTS_READ: &str = "Microsoft.Authorization/roleAssignments/read";
const ASSIGNMENTS_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
const ASSIGNMENTS_DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
const AUDIT_READ: &str = "Berth.Authorization/auditEvents/read";
const ATTR_ROLE: &str = "Microsoft.Authorization/roleAssignments:RoleDefinitionId";
const ATTR_PRINCIPAL: &str = "Microsoft.Authorization/roleAssignments:PrincipalId";
const ATTR_PRINCIPAL_TYPE: &str = "Microsoft.Authorization/roleAssignments:PrincipalType";
/// `principalType` values ARM accepts (2022-04-01's enum and 2020-04-01-preview's wider one).
const PRINCIPAL_TYPES: &[&str] = &[
    "User",
    "Group",
    "ServicePrincipal",
    "ForeignGroup",
    "Application",
    "DirectoryObjectOrGroup",
    "DirectoryRoleTemplate",
    "Everyone",
    "MSI",
    "Unknown",
    "Device",
];

/// Where, in the lower-cased path segments after `/subscriptions/{sub}`, the `providers/Microsoft.Authorization`
/// (or `providers/Berth.Authorization`) of an extension resource starts.
pub(crate) fn provider_position(rest: &[&str]) -> Option<usize> {
    rest.windows(3).position(|w| {
        w[0] == "providers"
            && (w[1] == "microsoft.authorization" || w[1] == "berth.authorization")
            && matches!(w[2], "roledefinitions" | "roleassignments" | "auditevents")
    })
}

pub(crate) fn invalid_scope(detail: &str) -> ApiError {
    ApiError::arm(ArmErrorCode::InvalidRequestFormat, format!("The scope is not valid: {detail}."))
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::arm(
        ArmErrorCode::MethodNotAllowed,
        format!("The method '{method}' is not allowed on this resource."),
    )
}

/// `tail` is `providers/{namespace}/{type}[/{name}]` in the request's casing.
pub(crate) async fn handle(
    ctx: &ArmContext,
    method: &Method,
    scope: &ResourceId,
    tail: &[String],
    body: &[u8],
) -> ApiResult<Response> {
    let namespace = tail[1].to_ascii_lowercase();
    let kind = tail[2].to_ascii_lowercase();
    let name = match tail.len() {
        3 => None,
        4 => Some(tail[3].as_str()),
        _ => {
            return Err(ApiError::arm(
                ArmErrorCode::InvalidResourceType,
                format!(
                    "The resource path '{}' does not name a resource type berth serves.",
                    tail.join("/")
                ),
            ))
        }
    };
    match (namespace.as_str(), kind.as_str(), name, method) {
        ("microsoft.authorization", "roledefinitions", None, &Method::GET) => {
            list_definitions(ctx, scope).await
        }
        ("microsoft.authorization", "roledefinitions", Some(guid), m) => match *m {
            Method::GET => get_definition(ctx, scope, guid).await,
            Method::PUT => put_definition(ctx, scope, guid, body).await,
            Method::DELETE => delete_definition(ctx, scope, guid).await,
            _ => Err(method_not_allowed(m)),
        },
        ("microsoft.authorization", "roleassignments", None, &Method::GET) => {
            list_assignments(ctx, scope).await
        }
        ("microsoft.authorization", "roleassignments", Some(name), m) => match *m {
            Method::GET => get_assignment(ctx, scope, name).await,
            Method::PUT => put_assignment(ctx, scope, name, body).await,
            Method::DELETE => delete_assignment(ctx, scope, name).await,
            _ => Err(method_not_allowed(m)),
        },
        ("berth.authorization", "auditevents", None, &Method::GET) => list_audit(ctx, scope).await,
        (_, _, _, m) if *m == Method::GET || *m == Method::PUT || *m == Method::DELETE => {
            Err(ApiError::arm(
                ArmErrorCode::InvalidResourceType,
                format!(
                    "The resource type '{}' could not be found in the namespace '{}'.",
                    tail[2], tail[1]
                ),
            ))
        }
        (_, _, _, m) => Err(method_not_allowed(m)),
    }
}

/// The scope must exist: its subscription (checked by the dispatcher), group or resource.
async fn require_scope(ctx: &ArmContext, scope: &ResourceId) -> ApiResult<()> {
    if scope.is_subscription() {
        return Ok(());
    }
    if scope.is_resource_group() {
        require_group(ctx, scope).await?;
        return Ok(());
    }
    let group = ResourceId::resource_group(
        scope.subscription_id().unwrap_or_default(),
        scope.resource_group_name().unwrap_or_default(),
    );
    require_group(ctx, &group).await?;
    if ctx.state.db.get_resource(&scope.key()).await?.is_none() {
        return Err(ApiError::arm(
            ArmErrorCode::ResourceNotFound,
            format!("The Resource '{scope}' was not found."),
        ));
    }
    Ok(())
}

fn is_guid(text: &str) -> bool {
    Uuid::parse_str(text).is_ok() && text.len() == 36
}

// ---- role definitions -----------------------------------------------------------------------------------------

/// A role definition's ID as ARM returns it: under the subscription, whatever scope it was read at.
fn definition_id(ctx: &ArmContext, guid: &str) -> String {
    format!("/subscriptions/{}/providers/{PROVIDER}/roleDefinitions/{guid}", ctx.subscription.id)
}

fn definition_json(
    ctx: &ArmContext,
    role: &RoleDefinition,
    record: Option<&CustomRoleRecord>,
) -> Value {
    let mut properties = json!({
        "roleName": role.role_name,
        "type": role.role_type,
        "description": role.description,
        "assignableScopes": role.assignable_scopes,
        "permissions": role.permissions,
    });
    if let Some(r) = record {
        properties["createdOn"] = json!(r.created_at);
        properties["updatedOn"] = json!(r.updated_at);
        properties["createdBy"] = json!(r.created_by);
        properties["updatedBy"] = json!(r.updated_by);
    }
    json!({
        "id": definition_id(ctx, &role.name),
        "name": role.name,
        "type": ROLE_DEFINITION_TYPE,
        "properties": properties,
    })
}

/// Whether a custom role is visible at `scope`: one of its assignable scopes contains the scope or lies below it.
fn assignable_near(role: &RoleDefinition, scope: &ResourceId) -> bool {
    role.assignable_scopes
        .iter()
        .filter_map(|s| ResourceId::parse(s).ok())
        .any(|s| scope.is_within(&s) || s.is_within(scope))
}

/// Whether a role may be assigned at `scope`: one of its assignable scopes contains it.
fn assignable_at(role: &RoleDefinition, scope: &ResourceId) -> bool {
    role.assignable_scopes
        .iter()
        .filter_map(|s| ResourceId::parse(s).ok())
        .any(|s| scope.is_within(&s))
}

/// `$filter` of the role definition list: `roleName eq '...'` and/or `type eq 'BuiltInRole|CustomRole'`.
fn definition_filter(filter: &str) -> ApiResult<(Option<String>, Option<String>)> {
    let mut role_name = None;
    let mut role_type = None;
    for clause in split_and(filter) {
        let (field, value) =
            clause.split_once(" eq ").ok_or_else(|| bad_filter(filter, DEFINITION_FILTERS))?;
        let value = quoted(value).ok_or_else(|| bad_filter(filter, DEFINITION_FILTERS))?;
        match field.trim().to_ascii_lowercase().as_str() {
            "rolename" => role_name = Some(value),
            "type" => role_type = Some(value),
            _ => return Err(bad_filter(filter, DEFINITION_FILTERS)),
        }
    }
    Ok((role_name, role_type))
}

const DEFINITION_FILTERS: &str = "roleName eq '<name>' and/or type eq 'BuiltInRole|CustomRole'";
const ASSIGNMENT_FILTERS: &str =
    "atScope(), principalId eq '<id>', assignedTo('<id>'), joined with 'and'";

fn split_and(filter: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = filter.trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        match lower.find(" and ") {
            Some(i) => {
                out.push(rest[..i].trim());
                rest = rest[i + 5..].trim();
            }
            None => {
                if !rest.is_empty() {
                    out.push(rest);
                }
                return out;
            }
        }
    }
}

fn quoted(value: &str) -> Option<String> {
    let value = value.trim();
    value.strip_prefix('\'')?.strip_suffix('\'').map(|v| v.replace("''", "'"))
}

fn bad_filter(filter: &str, supported: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::InvalidRequestFormat,
        format!("The $filter '{filter}' is not supported. Supported: {supported}."),
    )
}

async fn list_definitions(ctx: &ArmContext, scope: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(DEFINITIONS_READ, scope).await?;
    require_scope(ctx, scope).await?;
    let (role_name, role_type) = match ctx.query.get("$filter") {
        Some(f) if !f.trim().is_empty() => definition_filter(f)?,
        _ => (None, None),
    };
    let mut value = Vec::new();
    let wants = |role: &RoleDefinition| {
        role_name.as_ref().is_none_or(|n| role.role_name.eq_ignore_ascii_case(n))
            && role_type.as_ref().is_none_or(|t| role.role_type.eq_ignore_ascii_case(t))
    };
    for role in builtin_roles() {
        if wants(role) {
            value.push(definition_json(ctx, role, None));
        }
    }
    for record in ctx.state.db.list_custom_roles().await? {
        let Some(role) = custom_role_definition(&record) else { continue };
        if wants(&role) && assignable_near(&role, scope) {
            value.push(definition_json(ctx, &role, Some(&record)));
        }
    }
    Ok(Json(json!({ "value": value })).into_response())
}

fn definition_not_found(guid: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::RoleDefinitionDoesNotExist,
        format!("The specified role definition with ID '{guid}' does not exist."),
    )
}

async fn get_definition(ctx: &ArmContext, scope: &ResourceId, guid: &str) -> ApiResult<Response> {
    ctx.authorize(DEFINITIONS_READ, scope).await?;
    require_scope(ctx, scope).await?;
    if let Some(role) = find_builtin_role(guid) {
        return Ok(Json(definition_json(ctx, role, None)).into_response());
    }
    let record =
        ctx.state.db.get_custom_role(guid).await?.ok_or_else(|| definition_not_found(guid))?;
    let role = custom_role_definition(&record)
        .ok_or_else(|| ApiError::internal("stored custom role is corrupt"))?;
    Ok(Json(definition_json(ctx, &role, Some(&record))).into_response())
}

fn bad_definition(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::InvalidRequestContent, message)
}

fn string_list(value: Option<&Value>, what: &str) -> ApiResult<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => Ok(s.to_string()),
                _ => Err(bad_definition(format!(
                    "'{what}' must hold non-empty action strings without spaces."
                ))),
            })
            .collect(),
        Some(_) => Err(bad_definition(format!("'{what}' must be an array of strings."))),
    }
}

/// A custom role from a PUT body (`properties.roleName`, `description`, `assignableScopes`, `permissions`).
fn parse_definition(guid: &str, body: &Map<String, Value>) -> ApiResult<RoleDefinition> {
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p,
        _ => return Err(bad_definition("The role definition needs a 'properties' object.")),
    };
    let role_name = match props.get("roleName").and_then(Value::as_str).map(str::trim) {
        Some(n) if !n.is_empty() && n.len() <= 512 => n.to_string(),
        _ => return Err(bad_definition("'properties.roleName' is required (1-512 characters).")),
    };
    let description = match props.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(bad_definition("'properties.description' must be a string.")),
    };
    let assignable_scopes = string_list(props.get("assignableScopes"), "assignableScopes")?;
    if assignable_scopes.is_empty() {
        return Err(bad_definition("'properties.assignableScopes' must name at least one scope."));
    }
    for scope in &assignable_scopes {
        let parsed = ResourceId::parse(scope).map_err(|e| {
            bad_definition(format!("The assignable scope '{scope}' is not valid: {e}."))
        })?;
        if parsed.is_root() {
            return Err(bad_definition(
                "A custom role cannot be assignable at the root scope '/'.",
            ));
        }
    }
    let permissions = match props.get("permissions") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|p| {
                let p = p
                    .as_object()
                    .ok_or_else(|| bad_definition("Each permission must be an object."))?;
                Ok(Permission {
                    actions: string_list(p.get("actions"), "actions")?,
                    not_actions: string_list(p.get("notActions"), "notActions")?,
                    data_actions: string_list(p.get("dataActions"), "dataActions")?,
                    not_data_actions: string_list(p.get("notDataActions"), "notDataActions")?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        _ => return Err(bad_definition("'properties.permissions' must be a non-empty array.")),
    };
    Ok(RoleDefinition::custom(
        guid.to_ascii_lowercase(),
        role_name,
        description,
        assignable_scopes,
        permissions,
    ))
}

async fn put_definition(
    ctx: &ArmContext,
    scope: &ResourceId,
    guid: &str,
    body: &[u8],
) -> ApiResult<Response> {
    ctx.authorize(DEFINITIONS_WRITE, scope).await?;
    if !is_guid(guid) {
        return Err(ApiError::arm(
            ArmErrorCode::InvalidRoleDefinitionId,
            format!("The role definition ID '{guid}' is not valid. The role definition ID must be a GUID."),
        ));
    }
    if find_builtin_role(guid).is_some() {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            format!("The role definition '{guid}' is a built-in role; built-in roles cannot be changed."),
        ));
    }
    let body = parse_json_object(body)?;
    let role = parse_definition(guid, &body)?;
    if berth_authz::find_builtin_role_by_name(&role.role_name).is_some() {
        return Err(same_name(&role.role_name));
    }
    // Creating a role needs the right at every scope it can be assigned at, as ARM checks.
    for assignable in &role.assignable_scopes {
        let assignable = ResourceId::parse(assignable).map_err(ApiError::internal)?;
        ctx.authorize(DEFINITIONS_WRITE, &assignable).await?;
    }
    require_scope(ctx, scope).await?;
    let existing = ctx.state.db.get_custom_role(guid).await?;
    let now = now_rfc3339();
    let record = CustomRoleRecord {
        name: role.name.clone(),
        role_name: role.role_name.clone(),
        scope: existing.as_ref().map(|e| e.scope.clone()).unwrap_or_else(|| scope.to_string()),
        body: serde_json::to_string(&role).map_err(ApiError::internal)?,
        created_at: existing.as_ref().map(|e| e.created_at.clone()).unwrap_or_else(|| now.clone()),
        updated_at: now,
        created_by: existing
            .as_ref()
            .map(|e| e.created_by.clone())
            .unwrap_or_else(|| Some(ctx.caller.object_id().to_string())),
        updated_by: Some(ctx.caller.object_id().to_string()),
    };
    let created = match ctx.state.db.put_custom_role(&record).await {
        Ok(created) => created,
        Err(berth_db::DbError::Conflict(_)) => return Err(same_name(&role.role_name)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(role = %role.name, name = %role.role_name, created, "custom role written");
    Ok(json_response(
        if created { StatusCode::CREATED } else { StatusCode::OK },
        definition_json(ctx, &role, Some(&record)),
    ))
}

fn same_name(role_name: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::RoleDefinitionWithSameNameExists,
        format!(
            "A role definition cannot be updated with a name that already exists: '{role_name}'."
        ),
    )
}

async fn delete_definition(
    ctx: &ArmContext,
    scope: &ResourceId,
    guid: &str,
) -> ApiResult<Response> {
    ctx.authorize(DEFINITIONS_DELETE, scope).await?;
    if find_builtin_role(guid).is_some() {
        return Err(ApiError::arm(
            ArmErrorCode::BadRequest,
            format!("The role definition '{guid}' is a built-in role; built-in roles cannot be deleted."),
        ));
    }
    match ctx.state.db.delete_custom_role(guid).await? {
        RoleDeletion::Deleted(record) => {
            let role =
                custom_role_definition(&record).ok_or_else(|| ApiError::internal("stored custom role is corrupt"))?;
            Ok(Json(definition_json(ctx, &role, Some(&record))).into_response())
        }
        RoleDeletion::NotFound => Ok(StatusCode::NO_CONTENT.into_response()),
        RoleDeletion::InUse(n) => Err(ApiError::arm(
            ArmErrorCode::RoleDefinitionHasAssignments,
            format!(
                "There are existing role assignments referencing role '{guid}' ({n} of them). Delete them before \
                 deleting the role definition."
            ),
        )),
    }
}

// ---- role assignments -----------------------------------------------------------------------------------------

fn assignment_json(record: &RoleAssignmentRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "type": ROLE_ASSIGNMENT_TYPE,
        "properties": {
            "roleDefinitionId": record.role_definition_id,
            "principalId": record.principal_id,
            "principalType": record.principal_type,
            "scope": record.scope,
            "condition": record.condition,
            "conditionVersion": record.condition_version,
            "description": record.description,
            "createdOn": record.created_at,
            "updatedOn": record.updated_at,
            "createdBy": record.created_by,
            "updatedBy": record.updated_by,
            "delegatedManagedIdentityResourceId": null,
        },
    })
}

fn assignment_id(scope: &ResourceId, name: &str) -> String {
    let scope = scope.to_string();
    let base = if scope == "/" { String::new() } else { scope };
    format!("{base}/providers/{PROVIDER}/roleAssignments/{name}")
}

fn bad_assignment(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::InvalidRequestContent, message)
}

/// The attributes a role assignment's delegation condition sees for it.
fn assignment_attributes(
    source: AttributeSource,
    role_definition_id: &str,
    principal_id: &str,
    principal_type: &str,
) -> Attributes {
    Attributes::new()
        .with(source, ATTR_ROLE, role_definition_id)
        .with(source, ATTR_PRINCIPAL, principal_id)
        .with(source, ATTR_PRINCIPAL_TYPE, principal_type)
}

/// The role a `roleDefinitionId` names, if it exists: a built-in or a stored custom role.
async fn resolve_role(ctx: &ArmContext, role_definition_id: &str) -> ApiResult<RoleDefinition> {
    let id = ResourceId::parse(role_definition_id).ok();
    let guid = id
        .as_ref()
        .filter(|id| id.resource_type().is_some_and(|t| t.is(ROLE_DEFINITION_TYPE)))
        .and_then(|id| id.name())
        .filter(|g| is_guid(g))
        .ok_or_else(|| {
            ApiError::arm(
                ArmErrorCode::InvalidRoleDefinitionId,
                format!(
                    "The role definition ID '{role_definition_id}' is not valid: it must be \
                     '/subscriptions/{{sub}}/providers/Microsoft.Authorization/roleDefinitions/{{guid}}'."
                ),
            )
        })?
        .to_string();
    if let Some(role) = find_builtin_role(&guid) {
        return Ok(role.clone());
    }
    let record =
        ctx.state.db.get_custom_role(&guid).await?.ok_or_else(|| definition_not_found(&guid))?;
    custom_role_definition(&record)
        .ok_or_else(|| ApiError::internal("stored custom role is corrupt"))
}

async fn put_assignment(
    ctx: &ArmContext,
    scope: &ResourceId,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    if !is_guid(name) {
        return Err(ApiError::arm(
            ArmErrorCode::InvalidRoleAssignmentId,
            format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
        ));
    }
    let body = parse_json_object(body)?;
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => return Err(bad_assignment("The role assignment needs a 'properties' object.")),
    };
    let text = |key: &str| -> ApiResult<Option<String>> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(bad_assignment(format!("'properties.{key}' must be a string."))),
        }
    };
    let role_definition_id = text("roleDefinitionId")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_assignment("'properties.roleDefinitionId' is required."))?;
    let principal_id = text("principalId")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_assignment("'properties.principalId' is required."))?;
    if !is_guid(&principal_id) {
        return Err(bad_assignment(format!(
            "'properties.principalId' '{principal_id}' is not a GUID."
        )));
    }
    let principal_type = match text("principalType")? {
        None => None,
        Some(t) => Some(
            PRINCIPAL_TYPES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(&t))
                .map(|s| s.to_string())
                .ok_or_else(|| {
                    bad_assignment(format!(
                        "'properties.principalType' '{t}' is not one of {}.",
                        PRINCIPAL_TYPES.join(", ")
                    ))
                })?,
        ),
    };
    let description = text("description")?;
    if description.as_ref().is_some_and(|d| d.len() > 2048) {
        return Err(bad_assignment("'properties.description' is longer than 2048 characters."));
    }
    let condition = text("condition")?.filter(|c| !c.is_empty());
    let condition_version = text("conditionVersion")?.filter(|c| !c.is_empty());
    let condition_version = match (&condition, condition_version) {
        (None, Some(_)) => {
            return Err(ApiError::arm(
                ArmErrorCode::InvalidCondition,
                "'properties.conditionVersion' is given without a 'properties.condition'.",
            ))
        }
        (None, None) => None,
        (Some(text), version) => {
            Condition::parse_versioned(text, version.as_deref()).map_err(|e| {
                ApiError::arm(
                    ArmErrorCode::InvalidCondition,
                    format!("{ARM_INVALID_CONDITION_MESSAGE} {e}."),
                )
            })?;
            Some(version.unwrap_or_else(|| SUPPORTED_VERSION.to_string()))
        }
    };
    let attribute_type = principal_type.clone().unwrap_or_else(|| "ServicePrincipal".into());
    ctx.authorize_with(
        ASSIGNMENTS_WRITE,
        scope,
        &assignment_attributes(
            AttributeSource::Request,
            &role_definition_id,
            &principal_id,
            &attribute_type,
        ),
    )
    .await?;
    require_scope(ctx, scope).await?;
    let role = resolve_role(ctx, &role_definition_id).await?;
    if !assignable_at(&role, scope) {
        return Err(ApiError::arm(
            ArmErrorCode::RoleDefinitionDoesNotExist,
            format!(
                "The role definition '{}' ('{}') cannot be assigned at scope '{scope}': its assignable scopes are {}.",
                role.name,
                role.role_name,
                role.assignable_scopes.join(", ")
            ),
        ));
    }
    let principal = ctx.state.db.get_principal(&principal_id).await?.ok_or_else(|| {
        ApiError::arm(
            ArmErrorCode::PrincipalNotFound,
            format!(
                "Principal {} does not exist in the directory {}.",
                principal_id.replace('-', ""),
                ctx.state.tenant_id
            ),
        )
    })?;
    let now = now_rfc3339();
    let record = RoleAssignmentRecord {
        id: assignment_id(scope, name),
        name: name.to_ascii_lowercase(),
        scope: scope.to_string(),
        role_definition_id: definition_id(ctx, &role.name),
        principal_id: principal.id.clone(),
        principal_type: principal_type.unwrap_or_else(|| "ServicePrincipal".into()),
        condition,
        condition_version,
        description,
        created_at: now.clone(),
        updated_at: now,
        created_by: Some(ctx.caller.object_id().to_string()),
        updated_by: Some(ctx.caller.object_id().to_string()),
    };
    let written = match ctx.state.db.put_role_assignment(&record).await {
        Ok(w) => w,
        Err(berth_db::DbError::Conflict(_)) => return Err(exists()),
        Err(e) => return Err(e.into()),
    };
    match written {
        AssignmentWrite::Created(r) => {
            tracing::info!(assignment = %r.id, principal = %r.principal_id, role = %role.role_name, "role assignment created");
            Ok(json_response(StatusCode::CREATED, assignment_json(&r)))
        }
        AssignmentWrite::Updated(r) => Ok(json_response(StatusCode::OK, assignment_json(&r))),
        AssignmentWrite::UpdateNotPermitted(_) => Err(ApiError::arm(
            ArmErrorCode::RoleAssignmentUpdateNotPermitted,
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        )),
        AssignmentWrite::Exists(_) => Err(exists()),
    }
}

fn exists() -> ApiError {
    ApiError::arm(ArmErrorCode::RoleAssignmentExists, "The role assignment already exists.")
}

fn assignment_not_found(name: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::RoleAssignmentNotFound,
        format!("The role assignment '{name}' is not found."),
    )
}

async fn get_assignment(ctx: &ArmContext, scope: &ResourceId, name: &str) -> ApiResult<Response> {
    ctx.authorize(ASSIGNMENTS_READ, scope).await?;
    let record = ctx
        .state
        .db
        .get_role_assignment(&assignment_id(scope, name))
        .await?
        .ok_or_else(|| assignment_not_found(name))?;
    Ok(Json(assignment_json(&record)).into_response())
}

async fn delete_assignment(
    ctx: &ArmContext,
    scope: &ResourceId,
    name: &str,
) -> ApiResult<Response> {
    let id = assignment_id(scope, name);
    let existing = ctx.state.db.get_role_assignment(&id).await?;
    let attributes = match &existing {
        Some(r) => assignment_attributes(
            AttributeSource::Resource,
            &r.role_definition_id,
            &r.principal_id,
            &r.principal_type,
        ),
        None => Attributes::new(),
    };
    ctx.authorize_with(ASSIGNMENTS_DELETE, scope, &attributes).await?;
    if existing.is_none() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    match ctx.state.db.take_role_assignment(&id).await? {
        Some(record) => {
            tracing::info!(assignment = %record.id, "role assignment deleted");
            Ok(Json(assignment_json(&record)).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `$filter` of the assignment list.
#[derive(Default)]
struct AssignmentFilter {
    at_scope: bool,
    principal: Option<String>,
}

fn assignment_filter(filter: &str) -> ApiResult<AssignmentFilter> {
    let mut out = AssignmentFilter::default();
    for clause in split_and(filter) {
        let lower = clause.to_ascii_lowercase();
        if lower.replace(' ', "") == "atscope()" {
            out.at_scope = true;
        } else if let Some(inner) = lower
            .strip_prefix("assignedto(")
            .and_then(|_| clause.get(11..))
            .and_then(|c| c.trim().strip_suffix(')'))
        {
            out.principal =
                Some(quoted(inner).ok_or_else(|| bad_filter(filter, ASSIGNMENT_FILTERS))?);
        } else if let Some((field, value)) = clause.split_once(" eq ") {
            if field.trim().eq_ignore_ascii_case("principalId") {
                out.principal =
                    Some(quoted(value).ok_or_else(|| bad_filter(filter, ASSIGNMENT_FILTERS))?);
            } else {
                return Err(bad_filter(filter, ASSIGNMENT_FILTERS));
            }
        } else {
            return Err(bad_filter(filter, ASSIGNMENT_FILTERS));
        }
    }
    Ok(out)
}

/// Assignments at `scope` and above it (atScope()), or at, above and below it (no filter, or a principal filter),
/// as ARM lists them.
async fn list_assignments(ctx: &ArmContext, scope: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(ASSIGNMENTS_READ, scope).await?;
    require_scope(ctx, scope).await?;
    let filter = match ctx.query.get("$filter") {
        Some(f) if !f.trim().is_empty() => assignment_filter(f)?,
        _ => AssignmentFilter::default(),
    };
    let chain: Vec<String> = scope.scope_chain().iter().map(ResourceId::key).collect();
    let mut records = ctx.state.db.role_assignments_at_scopes(&chain).await?;
    if !filter.at_scope {
        let below = ctx.state.db.role_assignments_below(&scope.to_string()).await?;
        records.extend(
            below.into_iter().filter(|r| !r.scope.eq_ignore_ascii_case(&scope.to_string())),
        );
    }
    let value: Vec<Value> = records
        .iter()
        .filter(|r| {
            filter.principal.as_ref().is_none_or(|p| r.principal_id.eq_ignore_ascii_case(p))
        })
        .map(assignment_json)
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

// ---- explaining registry access -------------------------------------------------------------------------------

/// `POST {registry}/checkAccess` with `{"principalId", "repository"}`: each registry action the principal may or
/// may not perform there (for `repository`, or registry-wide without it), which assignment allowed it, and the
/// principal's assignments that apply to the registry. Reading this needs `roleAssignments/read` on the registry.
pub(crate) async fn check_access(
    ctx: &ArmContext,
    registry_id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    ctx.authorize(ASSIGNMENTS_READ, registry_id).await?;
    let body = parse_json_object(body)?;
    let principal_id = body
        .get("principalId")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad_assignment("'principalId' is required."))?
        .to_string();
    let repository = match body.get("repository") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if !r.trim().is_empty() => Some(r.trim().to_string()),
        Some(_) => return Err(bad_assignment("'repository' must be a non-empty string.")),
    };
    let name = registry_id.name().unwrap_or_default();
    let registry = registry_auth::find_registry(&ctx.state, name)
        .await?
        .filter(|r| r.id == *registry_id)
        .ok_or_else(|| {
            ApiError::arm(
                ArmErrorCode::ResourceNotFound,
                format!("The Resource '{registry_id}' was not found."),
            )
        })?;
    if ctx.state.db.get_principal(&principal_id).await?.is_none() {
        return Err(ApiError::arm(
            ArmErrorCode::PrincipalNotFound,
            format!(
                "Principal {principal_id} does not exist in the directory {}.",
                ctx.state.tenant_id
            ),
        ));
    }
    let grants = load_grants(&ctx.state.db, &principal_id).await?;
    let mode = registry.mode();
    let query = RegistryQuery {
        principal_id: &principal_id,
        registry: &registry.id,
        mode,
        repository: repository.as_deref(),
    };
    let access = acr::access(&grants.catalog, &grants.assignments, &query);
    let decisions: Vec<Value> = RegistryAction::ALL
        .into_iter()
        .map(|action| {
            let checked: Vec<&str> = action.rbac_actions(mode).iter().map(|(a, _)| *a).collect();
            match access.decision(action) {
                Decision::Allowed { assignment_id, role_name } => json!({
                    "action": action.as_str(), "allowed": true, "roleAssignmentId": assignment_id,
                    "roleDefinitionName": role_name, "checkedActions": checked,
                }),
                Decision::Denied => json!({
                    "action": action.as_str(), "allowed": false, "roleAssignmentId": null,
                    "roleDefinitionName": null, "checkedActions": checked,
                    "reason": "no role assignment of the principal at the registry or above it grants this",
                }),
            }
        })
        .collect();
    let applicable: Vec<Value> = db_assignments_applying(ctx, &principal_id, &registry.id).await?;
    Ok(Json(json!({
        "registry": registry.id.to_string(),
        "roleAssignmentMode": mode.as_str(),
        "principalId": principal_id,
        "repository": repository,
        "decisions": decisions,
        "assignments": applicable,
    }))
    .into_response())
}

async fn db_assignments_applying(
    ctx: &ArmContext,
    principal_id: &str,
    scope: &ResourceId,
) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for record in ctx.state.db.role_assignments_of(principal_id).await? {
        let role_name = find_builtin_role(&berth_db::role_key(&record.role_definition_id))
            .map(|r| r.role_name.clone());
        let Some(assignment) = assignment_of(record.clone()) else { continue };
        if scope.is_within(&assignment.scope) {
            let mut json = assignment_json(&record);
            json["properties"]["roleDefinitionName"] = json!(role_name);
            out.push(json);
        }
    }
    Ok(out)
}

// ---- audit ----------------------------------------------------------------------------------------------------

/// `GET {scope}/providers/Berth.Authorization/auditEvents`: the audited decisions at the scope or below it,
/// newest first. `$filter`: `principalId eq '<id>'`, `allowed eq true|false`; `$top` (default 100, at most 10000);
/// `since` (unix milliseconds).
async fn list_audit(ctx: &ArmContext, scope: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(AUDIT_READ, scope).await?;
    let mut query =
        AuditQuery { scope: Some(scope.to_string()), limit: 100, ..AuditQuery::default() };
    if let Some(filter) = ctx.query.get("$filter").filter(|f| !f.trim().is_empty()) {
        const SUPPORTED: &str = "principalId eq '<id>' and/or allowed eq true|false";
        for clause in split_and(filter) {
            let (field, value) =
                clause.split_once(" eq ").ok_or_else(|| bad_filter(filter, SUPPORTED))?;
            match field.trim().to_ascii_lowercase().as_str() {
                "principalid" => {
                    query.principal_id =
                        Some(quoted(value).ok_or_else(|| bad_filter(filter, SUPPORTED))?)
                }
                "allowed" => {
                    query.allowed = Some(match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad_filter(filter, SUPPORTED)),
                    })
                }
                _ => return Err(bad_filter(filter, SUPPORTED)),
            }
        }
    }
    if let Some(top) = ctx.query.get("$top") {
        query.limit =
            top.trim().parse::<i64>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(
                || {
                    ApiError::arm(
                        ArmErrorCode::InvalidRequestFormat,
                        "$top must be an integer from 1 to 10000.",
                    )
                },
            )?;
    }
    if let Some(since) = ctx.query.get("since") {
        query.since = Some(since.trim().parse::<i64>().map_err(|_| {
            ApiError::arm(ArmErrorCode::InvalidRequestFormat, "since must be unix milliseconds.")
        })?);
    }
    let events = ctx.state.db.list_audit_events(&query).await?;
    let value: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": format!("{}/providers/{AUDIT_PROVIDER}/auditEvents/{}", e.scope, e.id),
                "name": e.id,
                "type": "Berth.Authorization/auditEvents",
                "properties": {
                    "time": time_of(e.at),
                    "principalId": e.principal_id,
                    "surface": e.surface,
                    "action": e.action,
                    "scope": e.scope,
                    "repository": e.repository,
                    "allowed": e.allowed,
                    "roleAssignmentId": e.assignment_id,
                    "roleDefinitionName": e.role_name,
                }
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

fn time_of(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
