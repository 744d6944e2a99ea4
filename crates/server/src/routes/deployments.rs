//! `Microsoft.Resources/deployments` at resource-group and subscription scope: PUT (an asynchronous run), GET,
//! list, DELETE, `validate`, `whatIf`, `operations` and `operationStatuses`.
//!
//! A template is parsed and planned by `berth-template` before anything is written, so a bad template is a 400
//! with ARM's `InvalidTemplate` naming the problem. The run (`deploy_runner.rs`) then sends every planned resource
//! as an internal request, carrying the caller's bearer token, through the server's own router: the same
//! handlers and authorization as a direct call decide each resource.

use std::collections::{HashMap, HashSet};

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{types, ArmErrorCode, ResourceId, ResourceType};
use berth_db::{DeploymentDelete, DeploymentOutcome, DeploymentRecord, DeploymentStart};
use berth_template::{
    parse_deployment_request, Code, DeploymentContext, DeploymentMode, Diagnostics, Plan,
    ResourceGroupInfo, ResourceSnapshot,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::arm::{require_group, stored, ArmContext};
use super::deploy_runner::{self, Dispatcher};
use super::json_response;
use crate::error::{ApiError, ApiResult};
use crate::time::now_rfc3339;

const READ: &str = "Microsoft.Resources/deployments/read";
const WRITE: &str = "Microsoft.Resources/deployments/write";
const DELETE: &str = "Microsoft.Resources/deployments/delete";
const VALIDATE: &str = "Microsoft.Resources/deployments/validate/action";
const WHAT_IF: &str = "Microsoft.Resources/deployments/whatIf/action";
const OPERATIONS_READ: &str = "Microsoft.Resources/deployments/operations/read";
const STATUS_READ: &str = "Microsoft.Resources/deployments/operationstatuses/read";
/// The api-version berth uses for its own internal requests when the template names none.
pub(crate) const API_VERSION: &str = "2025-04-01";
/// How long a run's node is presumed alive without renewing its lease.
pub(crate) const LEASE_MS: i64 = 30_000;

/// Where deployments live: a resource group, or a subscription itself.
pub(crate) struct Target {
    pub scope: ResourceId,
    pub group: Option<ResourceId>,
}

pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// ISO 8601 duration as ARM prints it (`PT1.234S`).
pub(crate) fn iso_duration(ms: i64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// Requests under `{scope}/providers/Microsoft.Resources/deployments[/...]`; `rest` are the segments after
/// `deployments`, as sent.
pub(crate) async fn handle(
    ctx: &ArmContext,
    method: &Method,
    headers: &HeaderMap,
    target: Target,
    rest: &[String],
    body: &[u8],
) -> ApiResult<Response> {
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (lower.as_slice(), method) {
        ([], &Method::GET) => list(ctx, &target).await,
        ([_], &Method::PUT) => put(ctx, headers, &target, &rest[0], body).await,
        ([_], &Method::GET) => get(ctx, &target, &rest[0]).await,
        ([_], &Method::DELETE) => delete(ctx, &target, &rest[0]).await,
        ([_, "validate"], &Method::POST) => validate(ctx, &target, &rest[0], body).await,
        ([_, "whatif"], &Method::POST) => what_if(ctx, headers, &target, &rest[0], body).await,
        ([_, "operations"], &Method::GET) => operations(ctx, &target, &rest[0], None).await,
        ([_, "operations", _], &Method::GET) => {
            operations(ctx, &target, &rest[0], Some(&rest[2])).await
        }
        ([_, "operationstatuses", _], &Method::GET) => {
            operation_status(ctx, &target, &rest[0], &rest[2]).await
        }
        (_, m) => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{m}' is not allowed on this deployment path."),
        )),
    }
}

fn deployment_id(target: &Target, name: &str) -> ResourceId {
    let rt = ResourceType::parse(types::DEPLOYMENT).expect("a valid type");
    target.scope.provider_resource(&rt, name)
}

/// ARM's rule: 1-64 characters of letters, digits, `-`, `_`, `.`, `(` and `)`.
fn validate_name(name: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::arm(
            ArmErrorCode::InvalidResourceName,
            format!(
                "The deployment name '{name}' is invalid: it must be 1-64 characters of letters, digits, \
                 '-', '_', '.', '(' and ')'."
            ),
        ))
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::arm(
        ArmErrorCode::DeploymentNotFound,
        format!("Deployment '{name}' could not be found."),
    )
}

/// A template problem as ARM reports it: 400 with the engine's code and every diagnostic (path, line and column).
pub(crate) fn template_error(diagnostics: &Diagnostics) -> ApiError {
    let code = match diagnostics.0.first().map(|d| d.code) {
        Some(Code::InvalidRequestContent) => ArmErrorCode::InvalidRequestContent,
        Some(Code::InvalidParameter) => ArmErrorCode::InvalidTemplateParameter,
        Some(Code::DeploymentFailed) => ArmErrorCode::DeploymentFailed,
        _ => ArmErrorCode::InvalidTemplate,
    };
    let what = match code {
        ArmErrorCode::InvalidRequestContent => "The request content is invalid",
        ArmErrorCode::DeploymentFailed => "Deployment evaluation failed",
        _ => "Deployment template validation failed",
    };
    let details: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    ApiError::arm(code, format!("{what}: '{}'.", details.join("; ")))
}

/// A request's template planned against its target: what PUT, validate and whatIf share.
struct Prepared {
    plan: Plan,
    mode: DeploymentMode,
    location: Option<String>,
}

async fn prepare(
    ctx: &ArmContext,
    target: &Target,
    name: &str,
    body: &[u8],
) -> ApiResult<Prepared> {
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::arm(ArmErrorCode::InvalidRequestContent, "The request content is not UTF-8.")
    })?;
    let request = parse_deployment_request(text).map_err(|d| template_error(&d))?;
    let now = OffsetDateTime::now_utc();
    let mut dctx = match &target.group {
        Some(group) => {
            let record = require_group(ctx, group).await?;
            DeploymentContext::resource_group(
                ctx.state.tenant_id.clone(),
                ctx.subscription.id.clone(),
                group_info(&record.name, &stored(&record)?),
                name,
                now,
            )
        }
        None => {
            if request.location.as_deref().is_none_or(|l| l.trim().is_empty()) {
                return Err(ApiError::arm(
                    ArmErrorCode::LocationRequired,
                    "A subscription-level deployment needs a 'location'.",
                ));
            }
            DeploymentContext {
                tenant_id: ctx.state.tenant_id.clone(),
                subscription_id: Some(ctx.subscription.id.clone()),
                subscription_display_name: String::new(),
                resource_group: None,
                management_group: None,
                deployment_name: name.to_string(),
                location: None,
                mode: DeploymentMode::Incremental,
                now,
                guid_seed: 0,
                environment: None,
            }
        }
    };
    dctx.subscription_display_name = ctx.subscription.display_name.clone();
    dctx.location = request.location.clone();
    dctx.mode = request.mode;
    dctx.guid_seed = Uuid::new_v4().as_u64_pair().0;
    let plan =
        Plan::new(request.template, &request.parameters, dctx).map_err(|d| template_error(&d))?;
    Ok(Prepared { plan, mode: request.mode, location: request.location })
}

pub(crate) fn group_info(name: &str, body: &Value) -> ResourceGroupInfo {
    ResourceGroupInfo {
        name: body.get("name").and_then(Value::as_str).unwrap_or(name).to_string(),
        location: body.get("location").and_then(Value::as_str).unwrap_or_default().to_string(),
        tags: body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default(),
        managed_by: body.get("managedBy").and_then(Value::as_str).map(str::to_string),
    }
}

/// ARM's `templateHash`: a number derived from the template's bytes.
fn template_hash(template: &Value) -> String {
    let digest = Sha256::digest(template.to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).to_string()
}

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

fn bearer_token(headers: &HeaderMap) -> ApiResult<String> {
    Ok(crate::auth::bearer(headers)?.trim().to_string())
}

fn parse_json_text(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// The deployment as ARM shows it.
pub(crate) fn deployment_json(record: &DeploymentRecord) -> Value {
    let mut properties = Map::new();
    properties.insert("templateHash".into(), json!(record.template_hash));
    properties.insert(
        "parameters".into(),
        parse_json_text(Some(&record.parameters)).unwrap_or_else(|| json!({})),
    );
    properties.insert("mode".into(), json!(record.mode));
    properties.insert("provisioningState".into(), json!(record.state));
    properties.insert("timestamp".into(), json!(record.updated_at));
    properties.insert("duration".into(), json!(iso_duration(record.duration_ms)));
    properties.insert("correlationId".into(), json!(record.correlation_id));
    properties.insert("providers".into(), json!([]));
    properties.insert("dependencies".into(), json!([]));
    if let Some(outputs) = parse_json_text(record.outputs.as_deref()) {
        properties.insert("outputs".into(), outputs);
    }
    let output_resources: Vec<Value> = parse_json_text(record.output_resources.as_deref())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    properties.insert("outputResources".into(), Value::Array(output_resources));
    if let Some(error) = parse_json_text(record.error.as_deref()) {
        properties.insert("error".into(), error);
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(record.id));
    out.insert("name".into(), json!(record.name));
    out.insert("type".into(), json!(types::DEPLOYMENT));
    if let Some(location) = &record.location {
        out.insert("location".into(), json!(location));
    }
    out.insert("properties".into(), Value::Object(properties));
    Value::Object(out)
}

/// The record, after marking it Failed when its run's node stopped renewing the lease.
pub(crate) async fn load(ctx: &ArmContext, id: &ResourceId) -> ApiResult<Option<DeploymentRecord>> {
    let Some(record) = ctx.state.db.get_deployment(&id.to_string()).await? else {
        return Ok(None);
    };
    fail_if_stale(&ctx.state.db, record).await.map(Some)
}

pub(crate) async fn fail_if_stale(
    db: &berth_db::Db,
    record: DeploymentRecord,
) -> ApiResult<DeploymentRecord> {
    let now = now_ms();
    if !record.is_stale(now) {
        return Ok(record);
    }
    let outcome = DeploymentOutcome {
        state: "Failed".into(),
        outputs: None,
        output_resources: None,
        error: Some(
            json!({
                "code": "DeploymentInterrupted",
                "message": "The node running this deployment stopped before it finished. Resources it deployed \
                            before that remain; deploy again to finish.",
                "target": record.id,
            })
            .to_string(),
        ),
        updated_at: now_rfc3339(),
        duration_ms: (now - record.started_ms).max(0),
    };
    db.fail_stale_deployment(&record.id, &record.run_id, now, &outcome).await?;
    Ok(db.get_deployment(&record.id).await?.unwrap_or(record))
}

async fn list(ctx: &ArmContext, target: &Target) -> ApiResult<Response> {
    ctx.authorize(READ, &target.scope).await?;
    if let Some(group) = &target.group {
        require_group(ctx, group).await?;
    }
    let mut value = Vec::new();
    for record in ctx.state.db.list_deployments(&target.scope.key()).await? {
        let record = fail_if_stale(&ctx.state.db, record).await?;
        value.push(deployment_json(&record));
    }
    Ok(Json(json!({ "value": value })).into_response())
}

async fn get(ctx: &ArmContext, target: &Target, name: &str) -> ApiResult<Response> {
    let id = deployment_id(target, name);
    ctx.authorize(READ, &id).await?;
    if let Some(group) = &target.group {
        require_group(ctx, group).await?;
    }
    let record = load(ctx, &id).await?.ok_or_else(|| not_found(name))?;
    Ok(Json(deployment_json(&record)).into_response())
}

async fn delete(ctx: &ArmContext, target: &Target, name: &str) -> ApiResult<Response> {
    let id = deployment_id(target, name);
    ctx.authorize(DELETE, &id).await?;
    if let Some(group) = &target.group {
        require_group(ctx, group).await?;
    }
    match ctx.state.db.delete_deployment(&id.to_string(), now_ms()).await? {
        DeploymentDelete::Deleted => Ok(StatusCode::OK.into_response()),
        DeploymentDelete::Missing => Ok(StatusCode::NO_CONTENT.into_response()),
        DeploymentDelete::Active => Err(ApiError::arm(
            ArmErrorCode::DeploymentActive,
            format!("The deployment '{name}' is still running; delete it when it has finished."),
        )),
    }
}

async fn put(
    ctx: &ArmContext,
    headers: &HeaderMap,
    target: &Target,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    validate_name(name)?;
    let id = deployment_id(target, name);
    ctx.authorize(WRITE, &id).await?;
    let prepared = prepare(ctx, target, name, body).await?;
    let token = bearer_token(headers)?;
    let plan = prepared.plan;
    let now = now_ms();
    let run_id = Uuid::new_v4().simple().to_string();
    let record = DeploymentRecord {
        id: id.to_string(),
        scope_key: target.scope.key(),
        group_key: target.group.as_ref().map(ResourceId::key),
        subscription_id: ctx.subscription.id.clone(),
        name: name.to_string(),
        location: prepared.location.clone(),
        template_hash: template_hash(&plan.template().raw),
        template: plan.template().raw.to_string(),
        parameters: Value::Object(plan.parameters_for_record()).to_string(),
        mode: prepared.mode.as_str().to_string(),
        state: "Accepted".into(),
        outputs: None,
        output_resources: None,
        error: None,
        correlation_id: correlation_id(headers),
        created_at: now_rfc3339(),
        updated_at: now_rfc3339(),
        started_ms: now,
        duration_ms: 0,
        run_id: run_id.clone(),
        lease_until: now + LEASE_MS,
    };
    let created = match ctx.state.db.start_deployment(&record, now).await? {
        DeploymentStart::Started { created } => created,
        DeploymentStart::Active => {
            return Err(ApiError::arm(
                ArmErrorCode::DeploymentActive,
                format!("The deployment '{name}' is already running; wait until it has finished."),
            ))
        }
        DeploymentStart::GroupMissing => {
            return Err(super::arm::group_not_found(target.group.as_ref().unwrap_or(&target.scope)))
        }
    };
    let stored = ctx.state.db.get_deployment(&record.id).await?.unwrap_or(record);
    let dispatcher = Dispatcher::new(ctx.state.clone(), token, stored.correlation_id.clone());
    let complete_group =
        (prepared.mode == DeploymentMode::Complete).then(|| target.group.clone()).flatten();
    tokio::spawn(deploy_runner::run(
        dispatcher,
        stored.id.clone(),
        run_id.clone(),
        now,
        plan,
        complete_group,
    ));
    let api = ctx.query.get("api-version").cloned().unwrap_or_else(|| API_VERSION.into());
    let status_url = format!(
        "{}{}/operationStatuses/{run_id}?api-version={api}",
        ctx.state.public_url,
        deploy_runner::encode_path(&stored.id)
    );
    let mut response = json_response(
        if created { StatusCode::CREATED } else { StatusCode::OK },
        deployment_json(&stored),
    );
    if let Ok(value) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert("azure-asyncoperation", value);
    }
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Ok(response)
}

async fn validate(
    ctx: &ArmContext,
    target: &Target,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    validate_name(name)?;
    let id = deployment_id(target, name);
    ctx.authorize(VALIDATE, &id).await?;
    let prepared = prepare(ctx, target, name, body).await?;
    let plan = &prepared.plan;
    let validated: Vec<Value> =
        plan.waves().iter().flatten().map(|&i| json!({ "id": plan.resources()[i].id })).collect();
    let mut out = json!({
        "id": id.to_string(),
        "name": name,
        "type": types::DEPLOYMENT,
        "properties": {
            "templateHash": template_hash(&plan.template().raw),
            "parameters": Value::Object(plan.parameters_for_record()),
            "mode": prepared.mode.as_str(),
            "provisioningState": "Succeeded",
            "timestamp": now_rfc3339(),
            "duration": "PT0S",
            "correlationId": Uuid::new_v4().to_string(),
            "providers": [],
            "dependencies": [],
            "validatedResources": validated,
        }
    });
    if let Some(location) = &prepared.location {
        out["location"] = json!(location);
    }
    Ok(Json(out).into_response())
}

async fn what_if(
    ctx: &ArmContext,
    headers: &HeaderMap,
    target: &Target,
    name: &str,
    body: &[u8],
) -> ApiResult<Response> {
    validate_name(name)?;
    let id = deployment_id(target, name);
    ctx.authorize(WHAT_IF, &id).await?;
    let prepared = prepare(ctx, target, name, body).await?;
    let plan = &prepared.plan;
    let dispatcher =
        Dispatcher::new(ctx.state.clone(), bearer_token(headers)?, correlation_id(headers));
    let mut groups = HashMap::new();
    for record in ctx.state.db.list_resource_groups(&ctx.subscription.id).await? {
        let info = group_info(&record.name, &stored(&record)?);
        groups.insert(info.name.to_ascii_lowercase(), info);
    }
    let lookup = |name: &str| groups.get(&name.to_ascii_lowercase()).cloned();

    // The resources as they are, read as the caller (what it may not read counts as absent). Nested templates'
    // resources are only known once their parent's body is evaluated, so read until nothing new turns up.
    let mut snapshot = ResourceSnapshot::new();
    let mut fetched: HashSet<String> = HashSet::new();
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for resource in plan.resources() {
        wanted.push((resource.id.clone(), resource.api_version.clone()));
        wanted.extend(resource.references.iter().map(|r| (r.clone(), None)));
    }
    let mut changes = Vec::new();
    for _ in 0..8 {
        let mut new = false;
        for (rid, api) in wanted.drain(..) {
            if !fetched.insert(rid.to_ascii_lowercase()) {
                continue;
            }
            new = true;
            let (status, body) = dispatcher
                .call(Method::GET, &rid, api.as_deref().unwrap_or(API_VERSION), None)
                .await;
            if status == StatusCode::OK {
                snapshot.insert(&rid, body);
            }
        }
        if !new && !changes.is_empty() {
            break;
        }
        changes = plan.what_if(&snapshot, &lookup).map_err(|d| template_error(&d))?;
        wanted = changes
            .iter()
            .filter(|c| !fetched.contains(&c.resource_id.to_ascii_lowercase()))
            .map(|c| (c.resource_id.clone(), None))
            .collect();
        if wanted.is_empty() {
            break;
        }
    }
    let mut value: Vec<Value> = changes.iter().map(|c| c.to_json()).collect();
    // The group's other resources: kept (Ignore) in Incremental mode, deleted in Complete mode.
    if let Some(group) = &target.group {
        let named: HashSet<String> =
            changes.iter().map(|c| c.resource_id.to_ascii_lowercase()).collect();
        for record in ctx
            .state
            .db
            .list_resources(&ctx.subscription.id, Some(group.key().as_str()), None)
            .await?
        {
            if named.contains(&record.id.to_ascii_lowercase())
                || record.type_key.matches('/').count() != 1
            {
                continue;
            }
            value.push(match prepared.mode {
                DeploymentMode::Complete => json!({
                    "resourceId": record.id, "changeType": "Delete", "before": stored(&record)?, "after": null,
                }),
                DeploymentMode::Incremental => {
                    json!({ "resourceId": record.id, "changeType": "Ignore" })
                }
            });
        }
    }
    Ok(Json(json!({
        "status": "Succeeded",
        "properties": { "changes": value },
    }))
    .into_response())
}

async fn operations(
    ctx: &ArmContext,
    target: &Target,
    name: &str,
    operation: Option<&str>,
) -> ApiResult<Response> {
    let id = deployment_id(target, name);
    ctx.authorize(OPERATIONS_READ, &id).await?;
    if let Some(group) = &target.group {
        require_group(ctx, group).await?;
    }
    let record = load(ctx, &id).await?.ok_or_else(|| not_found(name))?;
    let value: Vec<Value> = ctx
        .state
        .db
        .deployment_operations(&record.id)
        .await?
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect();
    match operation {
        None => Ok(Json(json!({ "value": value })).into_response()),
        Some(op) => value
            .into_iter()
            .find(|v| v["operationId"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(op)))
            .map(|v| Json(v).into_response())
            .ok_or_else(|| {
                ApiError::arm(
                    ArmErrorCode::ResourceNotFound,
                    format!("The operation '{op}' of deployment '{name}' could not be found."),
                )
            }),
    }
}

async fn operation_status(
    ctx: &ArmContext,
    target: &Target,
    name: &str,
    run_id: &str,
) -> ApiResult<Response> {
    let id = deployment_id(target, name);
    ctx.authorize(STATUS_READ, &id).await?;
    let record = load(ctx, &id).await?.ok_or_else(|| not_found(name))?;
    if !record.run_id.eq_ignore_ascii_case(run_id) {
        return Err(ApiError::arm(
            ArmErrorCode::ResourceNotFound,
            format!("The operation '{run_id}' of deployment '{name}' could not be found."),
        ));
    }
    let status = match record.state.as_str() {
        "Accepted" | "Running" => "Running",
        other => other,
    };
    let mut out = json!({ "status": status });
    if let Some(error) = parse_json_text(record.error.as_deref()) {
        out["error"] = error;
    }
    Ok(Json(out).into_response())
}
