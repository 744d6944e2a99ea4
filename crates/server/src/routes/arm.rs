//! The control plane under `/subscriptions`: ARM's conventions for subscriptions, resource groups and
//! resources.
//!
//! ARM paths are case-insensitive (`resourcegroups` and `resourceGroups` both occur on the wire), so one
//! dispatcher matches the lower-cased segments instead of a router of fixed strings. The order of checks is
//! ARM's: authenticate, then the subscription, then authorization at the target scope, then existence; so a
//! caller without rights learns nothing about what exists.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{types, validate_resource_group_name, ArmErrorCode, ResourceId, ResourceType};
use berth_authz::{ActionKind, Attributes};
use berth_db::{ResourceRecord, RoleAssignmentRecord, Subscription};
use serde_json::{json, Map, Value};

use super::{
    authorization, deployments, identities, json_response, parse_json_object, read_body,
    registries, sites, workloads, MAX_JSON_BODY,
};
use crate::audit::Audited;
use crate::auth::{authenticate, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_rfc3339;

/// Everything a control-plane handler needs about its request.
pub(crate) struct ArmContext {
    pub state: Arc<AppState>,
    pub caller: Caller,
    pub subscription: Subscription,
    pub query: HashMap<String, String>,
}

impl ArmContext {
    /// Check an action at a scope; ARM's `AuthorizationFailed` when denied.
    pub async fn authorize(&self, action: &str, scope: &ResourceId) -> ApiResult<()> {
        self.authorize_with(action, scope, &Attributes::new()).await
    }

    /// [`ArmContext::authorize`] with request attributes for conditions. The decision is audited.
    pub async fn authorize_with(
        &self,
        action: &str,
        scope: &ResourceId,
        attributes: &Attributes,
    ) -> ApiResult<()> {
        let decision = self
            .state
            .authorizer
            .check_with(self.caller.object_id(), action, ActionKind::Control, scope, attributes)
            .await?;
        self.state.audit.record(Audited {
            principal_id: self.caller.object_id(),
            surface: "arm",
            action,
            scope: &scope.to_string(),
            repository: None,
            decision: &decision,
        });
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(self.authorization_failed(action, scope))
        }
    }

    /// ARM's `AuthorizationFailed` for `action` at `scope`.
    pub fn authorization_failed(&self, action: &str, scope: &ResourceId) -> ApiError {
        ApiError::arm(
            ArmErrorCode::AuthorizationFailed,
            format!(
                "The client '{}' with object id '{}' does not have authorization to perform action '{}' over \
                 scope '{}' or the scope is invalid. If access was recently granted, please refresh your \
                 credentials.",
                self.caller.principal.app_id, self.caller.principal.id, action, scope
            ),
        )
    }

    /// Whether the caller may perform `action` at `scope` (for filtering lists).
    pub async fn may(&self, action: &str, scope: &ResourceId) -> ApiResult<bool> {
        Ok(self
            .state
            .authorizer
            .check(self.caller.object_id(), action, ActionKind::Control, scope)
            .await?
            .is_allowed())
    }

    /// ARM's `systemData` for a create or update by this caller, keeping the original creation fields.
    pub fn system_data(&self, previous: Option<&Value>) -> Value {
        let now = now_rfc3339();
        let who = self.caller.principal.app_id.clone();
        let created_at =
            previous.and_then(|p| p.get("createdAt")).cloned().unwrap_or_else(|| json!(now));
        let created_by =
            previous.and_then(|p| p.get("createdBy")).cloned().unwrap_or_else(|| json!(who));
        json!({
            "createdBy": created_by,
            "createdByType": "Application",
            "createdAt": created_at,
            "lastModifiedBy": who,
            "lastModifiedByType": "Application",
            "lastModifiedAt": now,
        })
    }
}

/// `GET /subscriptions`: the subscriptions in which the caller holds any role.
pub async fn list_subscriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    require_api_version(&query)?;
    let caller = authenticate(&state, &headers, state.arm_audiences()).await?;
    let assignments = state.db.role_assignments_of(caller.object_id()).await?;
    let value: Vec<Value> = state
        .db
        .list_subscriptions()
        .await?
        .iter()
        .filter(|sub| subscription_visible(&assignments, &sub.id))
        .map(subscription_json)
        .collect();
    Ok(Json(json!({ "value": value })))
}

/// A subscription is visible to a principal holding any role in it, or above it.
fn subscription_visible(assignments: &[RoleAssignmentRecord], subscription_id: &str) -> bool {
    let scope = ResourceId::subscription(subscription_id);
    assignments.iter().any(|a| {
        ResourceId::parse(&a.scope).is_ok_and(|s| s.is_within(&scope) || scope.is_within(&s))
    })
}

fn subscription_json(sub: &Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", sub.id),
        "subscriptionId": sub.id,
        "tenantId": sub.tenant_id,
        "displayName": sub.display_name,
        "state": sub.state,
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "berth", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
    })
}

fn require_api_version(query: &HashMap<String, String>) -> ApiResult<()> {
    if query.get("api-version").is_some_and(|v| !v.trim().is_empty()) {
        Ok(())
    } else {
        Err(ApiError::arm(
            ArmErrorCode::MissingApiVersionParameter,
            "The api-version query parameter (?api-version=) is required for all requests.",
        ))
    }
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// Everything under `/subscriptions/{sub}/...`.
pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult<Response> {
    require_api_version(&query)?;
    let caller = authenticate(&state, &headers, state.arm_audiences()).await?;
    let segments = decode_segments(uri.path());
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let sub_id = segments.get(1).cloned().unwrap_or_default();
    let subscription = match state.db.get_subscription(&sub_id).await? {
        Some(s) => s,
        None => {
            return Err(ApiError::arm(
                ArmErrorCode::SubscriptionNotFound,
                format!("The subscription '{sub_id}' could not be found."),
            ))
        }
    };
    let ctx = ArmContext { state, caller, subscription, query };
    let sub = ctx.subscription.id.clone();
    let rest: Vec<&str> = lower.iter().skip(2).map(String::as_str).collect();
    let body_bytes = read_body(body, MAX_JSON_BODY).await?;

    // Role definitions and assignments (and berth's audit log) are extension resources at any scope.
    if let Some(at) = authorization::provider_position(&rest) {
        let scope = ResourceId::parse(&format!("/{}", segments[..at + 2].join("/")))
            .map_err(|e| authorization::invalid_scope(&e.to_string()))?;
        return authorization::handle(&ctx, &method, &scope, &segments[at + 2..], &body_bytes)
            .await;
    }

    match (rest.as_slice(), &method) {
        ([], &Method::GET) => get_subscription(&ctx).await,
        (["resourcegroups"], &Method::GET) => list_groups(&ctx).await,
        (["resourcegroups", _], m) => {
            let name = &segments[3];
            let id = ResourceId::resource_group(&sub, name);
            match *m {
                Method::PUT => put_group(&ctx, &id, name, &body_bytes).await,
                Method::PATCH => patch_group(&ctx, &id, &body_bytes).await,
                Method::GET => get_group(&ctx, &id).await,
                Method::HEAD => head_group(&ctx, &id).await,
                Method::DELETE => delete_group(&ctx, &id).await,
                _ => Err(method_not_allowed(&method)),
            }
        }
        (["resources"], &Method::GET) => list_resources(&ctx, None).await,
        // Template deployments, at a resource group or at the subscription itself.
        (["resourcegroups", _, "providers", "microsoft.resources", "deployments", ..], m) => {
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let target = deployments::Target { scope: group.clone(), group: Some(group) };
            deployments::handle(&ctx, m, &headers, target, &segments[7..], &body_bytes).await
        }
        (["providers", "microsoft.resources", "deployments", ..], m) => {
            let scope = ResourceId::subscription(&sub);
            let target = deployments::Target { scope, group: None };
            deployments::handle(&ctx, m, &headers, target, &segments[5..], &body_bytes).await
        }
        (["resourcegroups", _, "resources"], &Method::GET) => {
            let group = ResourceId::resource_group(&sub, &segments[3]);
            require_group(&ctx, &group).await?;
            list_resources(&ctx, Some(&group)).await
        }
        (["providers", ns, kind], &Method::GET) => {
            let rt = known_type(ns, kind, &segments[3], &segments[4])?;
            list_of_type(&ctx, None, &rt).await
        }
        (["providers", "microsoft.containerregistry", "checknameavailability"], &Method::POST) => {
            registries::check_name_availability(&ctx, &body_bytes).await
        }
        (["resourcegroups", _, "providers", ns, kind], &Method::GET) => {
            let rt = known_type(ns, kind, &segments[5], &segments[6])?;
            let group = ResourceId::resource_group(&sub, &segments[3]);
            ctx.authorize(&format!("{rt}/read"), &group).await?;
            require_group(&ctx, &group).await?;
            list_of_type(&ctx, Some(&group), &rt).await
        }
        (["resourcegroups", _, "providers", ns, kind, _], m) => {
            let rt = known_type(ns, kind, &segments[5], &segments[6])?;
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let id = group.provider_resource(&rt, &segments[7]);
            if rt.is(types::REGISTRY) {
                registries::handle(&ctx, m, &group, &id, &body_bytes).await
            } else if rt.is(types::USER_ASSIGNED_IDENTITY) {
                identities::handle(&ctx, m, &group, &id, &body_bytes).await
            } else if rt.is(types::SITE) {
                sites::handle_site(&ctx, m, &group, &id, &body_bytes).await
            } else if rt.is(types::SERVER_FARM) {
                sites::handle_plan(&ctx, m, &group, &id, &body_bytes).await
            } else {
                Err(method_not_allowed(m))
            }
        }
        (["providers", "microsoft.web", "checknameavailability"], &Method::POST) => {
            sites::check_name_availability(&ctx, &body_bytes).await
        }
        (["resourcegroups", _, "providers", "microsoft.web", "sites", _, tail @ ..], m)
            if !tail.is_empty() =>
        {
            let rt = known_type("microsoft.web", "sites", &segments[5], &segments[6])?;
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let site = group.provider_resource(&rt, &segments[7]);
            sites::handle_site_child(&ctx, m, &group, &site, tail, &body_bytes).await
        }
        (
            ["resourcegroups", _, "providers", "microsoft.containerregistry", "registries", _, "checkaccess"],
            &Method::POST,
        ) => {
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let rt = known_type(
                "microsoft.containerregistry",
                "registries",
                &segments[5],
                &segments[6],
            )?;
            let id = group.provider_resource(&rt, &segments[7]);
            authorization::check_access(&ctx, &id, &body_bytes).await
        }
        (
            ["resourcegroups", _, "providers", "microsoft.containerregistry", "registries", _, "garbagecollect"],
            m,
        ) => {
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let rt = known_type(
                "microsoft.containerregistry",
                "registries",
                &segments[5],
                &segments[6],
            )?;
            let id = group.provider_resource(&rt, &segments[7]);
            match *m {
                Method::POST => registries::garbage_collect(&ctx, &id, &body_bytes).await,
                _ => Err(method_not_allowed(m)),
            }
        }
        (
            ["resourcegroups", _, "providers", "microsoft.managedidentity", "userassignedidentities", _, "federatedidentitycredentials", tail @ ..],
            m,
        ) if tail.len() <= 1 => {
            let rt = known_type(
                "microsoft.managedidentity",
                "userassignedidentities",
                &segments[5],
                &segments[6],
            )?;
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let identity = group.provider_resource(&rt, &segments[7]);
            match (segments.get(9), m) {
                (None, &Method::GET) => identities::list_credentials(&ctx, &group, &identity).await,
                (None, m) => Err(method_not_allowed(m)),
                (Some(name), m) => {
                    identities::handle_credential(&ctx, m, &group, &identity, name, &body_bytes)
                        .await
                }
            }
        }
        // A workload's endpoints: an extension resource of any resource (registries, identities, sites).
        (
            ["resourcegroups", _, "providers", _, _, _, "providers", "berth.managedidentity", "workloadendpoints", _, tail @ ..],
            m,
        ) if tail.len() <= 1 => {
            let group = ResourceId::resource_group(&sub, &segments[3]);
            let rt = ResourceType::parse(&format!("{}/{}", segments[5], segments[6])).ok_or_else(
                || ApiError::arm(ArmErrorCode::InvalidResourceType, "Invalid resource type."),
            )?;
            let parent = group.provider_resource(&rt, &segments[7]);
            workloads::handle_endpoint(
                &ctx,
                m,
                &parent,
                &segments[11],
                segments.get(12).map(String::as_str),
            )
            .await
        }
        (_, m)
            if [
                Method::GET,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::POST,
                Method::HEAD,
            ]
            .contains(m) =>
        {
            Err(ApiError::arm(
                ArmErrorCode::InvalidResourceType,
                format!(
                    "The resource path '{}' does not name a resource type berth serves.",
                    uri.path()
                ),
            ))
        }
        (_, m) => Err(method_not_allowed(m)),
    }
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::arm(
        ArmErrorCode::MethodNotAllowed,
        format!("The method '{method}' is not allowed on this resource."),
    )
}

/// The resource types reachable under `providers/{ns}/{type}`; others are `InvalidResourceType`.
fn known_type(ns_lower: &str, kind_lower: &str, ns: &str, kind: &str) -> ApiResult<ResourceType> {
    let served = [types::REGISTRY, types::USER_ASSIGNED_IDENTITY, types::SERVER_FARM, types::SITE];
    let wanted = format!("{ns_lower}/{kind_lower}");
    served
        .iter()
        .find(|t| t.eq_ignore_ascii_case(&wanted))
        .and_then(|t| ResourceType::parse(t))
        .ok_or_else(|| {
            ApiError::arm(
                ArmErrorCode::InvalidResourceType,
                format!("The resource type '{kind}' could not be found in the namespace '{ns}'."),
            )
        })
}

async fn get_subscription(ctx: &ArmContext) -> ApiResult<Response> {
    let assignments = ctx.state.db.role_assignments_of(ctx.caller.object_id()).await?;
    if !subscription_visible(&assignments, &ctx.subscription.id) {
        // Hidden, not forbidden: a stranger cannot tell a subscription exists.
        return Err(ApiError::arm(
            ArmErrorCode::SubscriptionNotFound,
            format!("The subscription '{}' could not be found.", ctx.subscription.id),
        ));
    }
    Ok(Json(subscription_json(&ctx.subscription)).into_response())
}

pub(crate) async fn require_group(
    ctx: &ArmContext,
    group: &ResourceId,
) -> ApiResult<ResourceRecord> {
    ctx.state.db.get_resource_group(&group.key()).await?.ok_or_else(|| group_not_found(group))
}

pub(crate) fn group_not_found(group: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceGroupNotFound,
        format!(
            "Resource group '{}' could not be found.",
            group.resource_group_name().unwrap_or_default()
        ),
    )
}

fn stored_body(record: &ResourceRecord) -> ApiResult<Value> {
    serde_json::from_str(&record.body)
        .map_err(|e| ApiError::internal(format!("stored body of {}: {e}", record.id)))
}

const GROUP_READ: &str = "Microsoft.Resources/subscriptions/resourceGroups/read";
const GROUP_WRITE: &str = "Microsoft.Resources/subscriptions/resourceGroups/write";
const GROUP_DELETE: &str = "Microsoft.Resources/subscriptions/resourceGroups/delete";

async fn list_groups(ctx: &ArmContext) -> ApiResult<Response> {
    let mut value = Vec::new();
    for record in ctx.state.db.list_resource_groups(&ctx.subscription.id).await? {
        let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
        if ctx.may(GROUP_READ, &id).await? {
            value.push(stored_body(&record)?);
        }
    }
    Ok(Json(json!({ "value": value })).into_response())
}

async fn get_group(ctx: &ArmContext, id: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(GROUP_READ, id).await?;
    let record = require_group(ctx, id).await?;
    Ok(Json(stored_body(&record)?).into_response())
}

async fn head_group(ctx: &ArmContext, id: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(GROUP_READ, id).await?;
    let exists = ctx.state.db.get_resource_group(&id.key()).await?.is_some();
    Ok(if exists { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response())
}

/// Tags: at most 50, string values, names up to 512 characters and values up to 256.
pub(crate) fn validate_tags(value: Option<&Value>) -> ApiResult<Value> {
    match value {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(map)) => {
            if map.len() > 50 {
                return Err(ApiError::arm(
                    ArmErrorCode::InvalidRequestContent,
                    "A resource can have at most 50 tags.",
                ));
            }
            for (k, v) in map {
                let ok =
                    !k.is_empty() && k.len() <= 512 && v.as_str().is_some_and(|s| s.len() <= 256);
                if !ok {
                    return Err(ApiError::arm(
                        ArmErrorCode::InvalidRequestContent,
                        format!("The tag '{k}' is invalid: names are 1-512 characters and values strings of at most 256."),
                    ));
                }
            }
            Ok(Value::Object(map.clone()))
        }
        Some(_) => Err(ApiError::arm(
            ArmErrorCode::InvalidRequestContent,
            "'tags' must be an object of strings.",
        )),
    }
}

pub(crate) fn required_location(body: &Map<String, Value>) -> ApiResult<String> {
    match body.get("location") {
        Some(Value::String(l)) if !l.trim().is_empty() => Ok(l.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::arm(
            ArmErrorCode::LocationRequired,
            "The location property is required for this definition.",
        )),
        Some(_) => {
            Err(ApiError::arm(ArmErrorCode::InvalidRequestContent, "'location' must be a string."))
        }
    }
}

async fn put_group(
    ctx: &ArmContext,
    id: &ResourceId,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    validate_resource_group_name(name)?;
    ctx.authorize(GROUP_WRITE, id).await?;
    let body = parse_json_object(body)?;
    let location = required_location(&body)?;
    let tags = validate_tags(body.get("tags"))?;
    let existing = ctx.state.db.get_resource_group(&id.key()).await?;
    let previous = existing.as_ref().map(stored_body).transpose()?;
    if let Some(prev) = &previous {
        let prev_location = prev.get("location").and_then(Value::as_str).unwrap_or_default();
        if !prev_location.eq_ignore_ascii_case(&location) {
            return Err(ApiError::arm(
                ArmErrorCode::InvalidResourceGroupLocation,
                format!(
                    "Invalid resource group location '{location}'. The Resource group already exists in location \
                     '{prev_location}'."
                ),
            ));
        }
    }
    // The group keeps the name's casing from its creation.
    let id = match &existing {
        Some(record) => ResourceId::parse(&record.id).map_err(ApiError::internal)?,
        None => id.clone(),
    };
    let mut envelope = json!({
        "id": id.to_string(),
        "name": id.resource_group_name(),
        "type": types::RESOURCE_GROUP,
        "location": location,
        "tags": tags,
        "properties": {"provisioningState": "Succeeded"},
        "systemData": ctx.system_data(previous.as_ref().and_then(|p| p.get("systemData"))),
    });
    if let Some(managed_by) = body.get("managedBy").and_then(Value::as_str) {
        envelope["managedBy"] = json!(managed_by);
    }
    let created = save_group(ctx, &id, &envelope, existing.as_ref()).await?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, envelope))
}

async fn save_group(
    ctx: &ArmContext,
    id: &ResourceId,
    envelope: &Value,
    existing: Option<&ResourceRecord>,
) -> ApiResult<bool> {
    let now = now_rfc3339();
    let record = ResourceRecord {
        id: id.to_string(),
        subscription_id: ctx.subscription.id.clone(),
        group_key: id.key(),
        type_key: types::RESOURCE_GROUP.to_ascii_lowercase(),
        name: id.resource_group_name().unwrap_or_default().to_string(),
        unique_name: None,
        body: envelope.to_string(),
        created_at: existing.map(|e| e.created_at.clone()).unwrap_or_else(|| now.clone()),
        updated_at: now,
    };
    Ok(ctx.state.db.put_resource_group(&record).await?)
}

async fn patch_group(ctx: &ArmContext, id: &ResourceId, body: &[u8]) -> ApiResult<Response> {
    ctx.authorize(GROUP_WRITE, id).await?;
    let body = parse_json_object(body)?;
    let record = require_group(ctx, id).await?;
    let mut envelope = stored_body(&record)?;
    if body.contains_key("tags") {
        envelope["tags"] = validate_tags(body.get("tags"))?;
    }
    if let Some(managed_by) = body.get("managedBy").and_then(Value::as_str) {
        envelope["managedBy"] = json!(managed_by);
    }
    envelope["systemData"] = ctx.system_data(envelope.get("systemData"));
    let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
    save_group(ctx, &id, &envelope, Some(&record)).await?;
    Ok(Json(envelope).into_response())
}

async fn delete_group(ctx: &ArmContext, id: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(GROUP_DELETE, id).await?;
    match ctx.state.db.delete_resource_group(&id.key()).await? {
        Some(removed) => {
            ctx.state.v2_caches.forget_registries();
            tracing::info!(group = %id, resources = removed.len(), "deleted resource group");
            Ok(StatusCode::OK.into_response())
        }
        None => Err(group_not_found(id)),
    }
}

/// The short form ARM's generic `/resources` list returns.
fn generic_view(envelope: &Value) -> Value {
    let mut out = Map::new();
    for key in ["id", "name", "type", "location", "sku", "kind", "tags", "identity", "managedBy"] {
        if let Some(v) = envelope.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// `$filter` of the generic list: `resourceType eq '...'` and `name eq '...'`, joined by `and`.
fn parse_filter(filter: &str) -> ApiResult<(Option<String>, Option<String>)> {
    let mut resource_type = None;
    let mut name = None;
    for clause in filter.split(" and ") {
        let clause = clause.trim();
        let (field, value) = clause.split_once(" eq ").ok_or_else(|| bad_filter(filter))?;
        let value = value.trim();
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(|| bad_filter(filter))?
            .replace("''", "'");
        match field.trim().to_ascii_lowercase().as_str() {
            "resourcetype" => resource_type = Some(value),
            "name" => name = Some(value),
            _ => return Err(bad_filter(filter)),
        }
    }
    Ok((resource_type, name))
}

fn bad_filter(filter: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::InvalidRequestFormat,
        format!("The $filter '{filter}' is not supported. Use resourceType eq '<type>' and/or name eq '<name>'."),
    )
}

async fn list_resources(ctx: &ArmContext, group: Option<&ResourceId>) -> ApiResult<Response> {
    let (resource_type, name) = match ctx.query.get("$filter") {
        Some(f) => parse_filter(f)?,
        None => (None, None),
    };
    let records = ctx
        .state
        .db
        .list_resources(
            &ctx.subscription.id,
            group.map(|g| g.key()).as_deref(),
            resource_type.as_deref(),
        )
        .await?;
    let mut value = Vec::new();
    for record in records {
        if name.as_ref().is_some_and(|n| !n.eq_ignore_ascii_case(&record.name)) {
            continue;
        }
        let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
        let Some(rt) = id.resource_type() else { continue };
        if ctx.may(&format!("{rt}/read"), &id).await? {
            value.push(generic_view(&stored_body(&record)?));
        }
    }
    Ok(Json(json!({ "value": value })).into_response())
}

async fn list_of_type(
    ctx: &ArmContext,
    group: Option<&ResourceId>,
    rt: &ResourceType,
) -> ApiResult<Response> {
    let records = ctx
        .state
        .db
        .list_resources(
            &ctx.subscription.id,
            group.map(|g| g.key()).as_deref(),
            Some(&rt.to_string()),
        )
        .await?;
    let mut value = Vec::new();
    for record in records {
        let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
        if !ctx.may(&format!("{rt}/read"), &id).await? {
            continue;
        }
        if rt.is(types::SITE) {
            // Sites carry the host agent's `imagePull`, kept outside the stored body.
            value.push(sites::site_view(ctx, &record).await?);
        } else {
            value.push(stored_body(&record)?);
        }
    }
    Ok(Json(json!({ "value": value })).into_response())
}

pub(crate) fn resource_record(
    ctx: &ArmContext,
    id: &ResourceId,
    group: &ResourceId,
    unique_name: Option<String>,
    envelope: &Value,
    existing: Option<&ResourceRecord>,
) -> ResourceRecord {
    let now = now_rfc3339();
    ResourceRecord {
        id: id.to_string(),
        subscription_id: ctx.subscription.id.clone(),
        group_key: group.key(),
        type_key: id
            .resource_type()
            .map(|t| t.to_string().to_ascii_lowercase())
            .unwrap_or_default(),
        name: id.name().unwrap_or_default().to_string(),
        unique_name,
        body: envelope.to_string(),
        created_at: existing.map(|e| e.created_at.clone()).unwrap_or_else(|| now.clone()),
        updated_at: now,
    }
}

pub(crate) fn stored(record: &ResourceRecord) -> ApiResult<Value> {
    stored_body(record)
}
