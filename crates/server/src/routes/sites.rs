//! `Microsoft.Web/serverfarms` (App Service plans) and `Microsoft.Web/sites` (web apps that run a container).
//!
//! A site's container comes from `siteConfig.linuxFxVersion` or `windowsFxVersion` (`DOCKER|<image>`); with
//! `acrUseManagedIdentityCreds` the host agent (`crate::host_agent`) pulls it with the site's system identity, or
//! with the user-assigned identity whose **clientId** is `acrUserManagedIdentityID`. Writing a site writes its
//! identities (`resource_identity`) and, when the image or the identities changed, a request for a new pull, all in
//! one transaction; `POST .../restart` asks for a new pull at once. `properties.imagePull` is the agent's record
//! (`status`, `image`, `digest`, `error`, `lastAttempt`), read from the store on every GET. Web PUTs answer 200,
//! never 201: the Azure SDKs accept only 200 and 202 there.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_arm::{types, ArmErrorCode, ResourceId};
use berth_db::{DbError, IdentityPut, ResourceRecord, SiteState};
use serde_json::{json, Map, Value};

use super::arm::{
    group_not_found, required_location, resource_record, stored, validate_tags, ArmContext,
};
use super::{json_response, parse_json_object, resource_identity};
use crate::error::{ApiError, ApiResult};
use crate::host_agent::image_ref::image_of_fx_version;

const PLAN_READ: &str = "Microsoft.Web/serverfarms/read";
const PLAN_WRITE: &str = "Microsoft.Web/serverfarms/write";
const PLAN_DELETE: &str = "Microsoft.Web/serverfarms/delete";
const SITE_READ: &str = "Microsoft.Web/sites/read";
const SITE_WRITE: &str = "Microsoft.Web/sites/write";
const SITE_DELETE: &str = "Microsoft.Web/sites/delete";
const SITE_RESTART: &str = "Microsoft.Web/sites/restart/action";
const CONFIG_READ: &str = "Microsoft.Web/sites/config/Read";
const CONFIG_WRITE: &str = "Microsoft.Web/sites/config/Write";
const CONFIG_LIST: &str = "Microsoft.Web/sites/config/list/Action";

/// The `siteConfig` members berth keeps (others sent by clients are ignored), with their names as served.
const SITE_CONFIG_KEYS: &[&str] = &[
    "linuxFxVersion",
    "windowsFxVersion",
    "acrUseManagedIdentityCreds",
    "acrUserManagedIdentityID",
    "alwaysOn",
    "appCommandLine",
    "http20Enabled",
    "minTlsVersion",
    "ftpsState",
    "numberOfWorkers",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::arm(ArmErrorCode::BadRequest, message)
}

fn not_found(kind: &str, id: &ResourceId) -> ApiError {
    ApiError::arm(
        ArmErrorCode::ResourceNotFound,
        format!(
            "The Resource '{kind}/{}' under resource group '{}' was not found.",
            id.name().unwrap_or_default(),
            id.resource_group_name().unwrap_or_default()
        ),
    )
}

fn site_unique_name(name: &str) -> String {
    format!("site:{}", name.to_ascii_lowercase())
}

/// Site names become host names: 2–60 letters, digits and hyphens, not starting or ending with a hyphen.
fn site_name_problem(name: &str) -> Option<String> {
    let ok = (2..=60).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!ok).then(|| {
        format!(
            "The site name '{name}' is invalid: use 2 to 60 letters, digits and hyphens, not starting or ending \
             with a hyphen."
        )
    })
}

fn validate_site_name(name: &str) -> ApiResult<()> {
    match site_name_problem(name) {
        None => Ok(()),
        Some(message) => Err(ApiError::arm(ArmErrorCode::InvalidResourceName, message)),
    }
}

fn validate_plan_name(name: &str) -> ApiResult<()> {
    let ok = (1..=60).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::arm(
            ArmErrorCode::InvalidResourceName,
            format!("The plan name '{name}' is invalid: use 1 to 60 letters, digits, hyphens and underscores."),
        ))
    }
}

fn object_member<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> ApiResult<Option<&'a Map<String, Value>>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(ApiError::arm(
            ArmErrorCode::InvalidRequestContent,
            format!("'{what}' must be an object."),
        )),
    }
}

// ---- plans ----------------------------------------------------------------------------------------------------

/// The tier of an App Service sku name, as ARM answers it.
fn sku_tier(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    Some(match upper.as_str() {
        "F1" => "Free",
        "D1" => "Shared",
        "B1" | "B2" | "B3" => "Basic",
        "S1" | "S2" | "S3" => "Standard",
        "P1" | "P2" | "P3" => "Premium",
        "P1V2" | "P2V2" | "P3V2" => "PremiumV2",
        "P0V3" => "Premium0V3",
        "P1V3" | "P2V3" | "P3V3" | "P1MV3" | "P2MV3" | "P3MV3" | "P4MV3" | "P5MV3" => "PremiumV3",
        "I1V2" | "I2V2" | "I3V2" | "I4V2" | "I5V2" | "I6V2" => "IsolatedV2",
        _ => return None,
    })
}

pub async fn handle_plan(
    ctx: &ArmContext,
    method: &Method,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    match *method {
        Method::GET => {
            ctx.authorize(PLAN_READ, id).await?;
            let record = ctx
                .state
                .db
                .get_resource(&id.key())
                .await?
                .ok_or_else(|| not_found(types::SERVER_FARM, id))?;
            Ok(Json(plan_view(ctx, &record).await?).into_response())
        }
        Method::PUT | Method::PATCH => {
            put_plan(ctx, group, id, body, *method == Method::PATCH).await
        }
        Method::DELETE => {
            ctx.authorize(PLAN_DELETE, id).await?;
            if ctx.state.db.get_resource(&id.key()).await?.is_none() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let sites = sites_on_plan(ctx, id).await?;
            if !sites.is_empty() {
                return Err(ApiError::arm(
                    ArmErrorCode::Conflict,
                    format!(
                        "Server farm '{}' cannot be deleted because it has web app(s) {} assigned to it.",
                        id.name().unwrap_or_default(),
                        sites.join(",")
                    ),
                ));
            }
            ctx.state.db.delete_resource(&id.key()).await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{method}' is not allowed on an App Service plan."),
        )),
    }
}

/// Names of the sites of the subscription whose `serverFarmId` is `plan`.
async fn sites_on_plan(ctx: &ArmContext, plan: &ResourceId) -> ApiResult<Vec<String>> {
    let sites = ctx
        .state
        .db
        .list_resources(&ctx.subscription.id, None, Some(&types::SITE.to_ascii_lowercase()))
        .await?;
    let mut names = Vec::new();
    for record in sites {
        let body = stored(&record)?;
        let farm = body.pointer("/properties/serverFarmId").and_then(Value::as_str).unwrap_or("");
        if farm.eq_ignore_ascii_case(&plan.to_string()) {
            names.push(record.name);
        }
    }
    Ok(names)
}

/// A plan as served: the stored envelope with its current number of sites.
async fn plan_view(ctx: &ArmContext, record: &ResourceRecord) -> ApiResult<Value> {
    let mut body = stored(record)?;
    let id = ResourceId::parse(&record.id).map_err(ApiError::internal)?;
    let count = sites_on_plan(ctx, &id).await?.len();
    body["properties"]["numberOfSites"] = json!(count);
    Ok(body)
}

async fn put_plan(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
    patch: bool,
) -> ApiResult<Response> {
    validate_plan_name(id.name().unwrap_or_default())?;
    ctx.authorize(PLAN_WRITE, id).await?;
    let body = parse_json_object(body)?;
    if ctx.state.db.get_resource_group(&group.key()).await?.is_none() {
        return Err(group_not_found(group));
    }
    let existing = ctx.state.db.get_resource(&id.key()).await?;
    let previous = existing.as_ref().map(stored).transpose()?;
    if patch && previous.is_none() {
        return Err(not_found(types::SERVER_FARM, id));
    }
    let location = match (&previous, patch) {
        (Some(prev), true) => prev["location"].as_str().unwrap_or_default().to_string(),
        _ => required_location(&body)?,
    };
    if let Some(prev) = &previous {
        let prev_location = prev["location"].as_str().unwrap_or_default();
        if !prev_location.eq_ignore_ascii_case(&location) {
            return Err(invalid(format!(
                "The plan exists in location '{prev_location}'; its location cannot change to '{location}'."
            )));
        }
    }
    let props = object_member(&body, "properties", "properties")?;
    let prev_props = previous.as_ref().map(|p| p["properties"].clone()).unwrap_or(Value::Null);
    let reserved = match props.and_then(|p| p.get("reserved")) {
        None | Some(Value::Null) => match body.get("kind").and_then(Value::as_str) {
            Some(kind) => kind.to_ascii_lowercase().contains("linux"),
            None => prev_props["reserved"].as_bool().unwrap_or(false),
        },
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("'properties.reserved' must be true or false.")),
    };
    let per_site_scaling = match props.and_then(|p| p.get("perSiteScaling")) {
        None | Some(Value::Null) => prev_props["perSiteScaling"].as_bool().unwrap_or(false),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("'properties.perSiteScaling' must be true or false.")),
    };
    let sku = match object_member(&body, "sku", "sku")? {
        Some(sku) => {
            let name = sku
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("'sku.name' is required, e.g. B1, S1, P1V3."))?;
            let tier = sku_tier(name).ok_or_else(|| {
                invalid(format!(
                    "The sku '{name}' is not an App Service plan sku (e.g. F1, B1, S1, P1V2, P0V3, P1V3)."
                ))
            })?;
            let capacity = match sku.get("capacity") {
                None | Some(Value::Null) => 1,
                Some(v) => v
                    .as_u64()
                    .filter(|c| (1..=30).contains(c))
                    .ok_or_else(|| invalid("'sku.capacity' must be a number from 1 to 30."))?,
            };
            let name = name.to_ascii_uppercase();
            json!({"name": name, "tier": tier, "size": name, "family": &name[..1], "capacity": capacity})
        }
        None => previous.as_ref().map(|p| p["sku"].clone()).unwrap_or_else(
            || json!({"name": "B1", "tier": "Basic", "size": "B1", "family": "B", "capacity": 1}),
        ),
    };
    let tags = if patch && !body.contains_key("tags") {
        previous.as_ref().map(|p| p["tags"].clone()).unwrap_or_else(|| json!({}))
    } else {
        validate_tags(body.get("tags"))?
    };
    let id = match &existing {
        Some(record) => ResourceId::parse(&record.id).map_err(ApiError::internal)?,
        None => id.clone(),
    };
    let envelope = json!({
        "id": id.to_string(),
        "name": id.name(),
        "type": types::SERVER_FARM,
        "kind": if reserved { "linux" } else { "app" },
        "location": location,
        "tags": tags,
        "sku": sku,
        "properties": {
            "reserved": reserved,
            "perSiteScaling": per_site_scaling,
            "provisioningState": "Succeeded",
            "status": "Ready",
            "maximumNumberOfWorkers": 30,
            "numberOfWorkers": sku["capacity"],
            "numberOfSites": 0,
            "resourceGroup": id.resource_group_name(),
            "zoneRedundant": false,
        },
        "systemData": ctx.system_data(previous.as_ref().and_then(|p| p.get("systemData"))),
    });
    let record = resource_record(ctx, &id, group, None, &envelope, existing.as_ref());
    ctx.state.db.put_resource(&record).await?;
    let record = ctx
        .state
        .db
        .get_resource(&id.key())
        .await?
        .ok_or_else(|| not_found(types::SERVER_FARM, &id))?;
    Ok(json_response(StatusCode::OK, plan_view(ctx, &record).await?))
}

// ---- sites ----------------------------------------------------------------------------------------------------

pub async fn handle_site(
    ctx: &ArmContext,
    method: &Method,
    group: &ResourceId,
    id: &ResourceId,
    body: &[u8],
) -> ApiResult<Response> {
    match *method {
        Method::GET => {
            ctx.authorize(SITE_READ, id).await?;
            let record = ctx
                .state
                .db
                .get_resource(&id.key())
                .await?
                .ok_or_else(|| not_found(types::SITE, id))?;
            Ok(Json(site_view(ctx, &record).await?).into_response())
        }
        Method::PUT | Method::PATCH => {
            let body = parse_json_object(body)?;
            put_site(ctx, group, id, SiteChange::Site { body, patch: *method == Method::PATCH })
                .await
        }
        Method::DELETE => {
            ctx.authorize(SITE_DELETE, id).await?;
            let removed = ctx.state.db.delete_resource(&id.key()).await?;
            if !removed.is_empty() {
                tracing::info!(site = %id, "deleted site (its system identity and agent state with it)");
                // The agent removes the site's files on its next round; wake this node's at once.
                ctx.state.site_wakeup.notify_one();
            }
            Ok(if removed.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK }
                .into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::MethodNotAllowed,
            format!("The method '{method}' is not allowed on a site."),
        )),
    }
}

/// Requests below a site: `config/web`, `config/appsettings`, `config/appsettings/list`,
/// `config/slotConfigNames`, `restart`, and berth's `log` (the host agent's log).
pub async fn handle_site_child(
    ctx: &ArmContext,
    method: &Method,
    group: &ResourceId,
    site: &ResourceId,
    tail: &[&str],
    body: &[u8],
) -> ApiResult<Response> {
    match (tail, method) {
        (["restart"], &Method::POST) => restart(ctx, site).await,
        (["config", "web"], &Method::GET) => {
            ctx.authorize(CONFIG_READ, site).await?;
            let record = require_site(ctx, site).await?;
            Ok(Json(config_web_view(&stored(&record)?)).into_response())
        }
        (["config", "web"], m) if *m == Method::PUT || *m == Method::PATCH => {
            ctx.authorize(CONFIG_WRITE, site).await?;
            let body = parse_json_object(body)?;
            let config =
                object_member(&body, "properties", "properties")?.cloned().unwrap_or_default();
            put_site(ctx, group, site, SiteChange::Config { config, patch: *m == Method::PATCH })
                .await?;
            let record = require_site(ctx, site).await?;
            Ok(Json(config_web_view(&stored(&record)?)).into_response())
        }
        (["config", "appsettings", "list"], &Method::POST) => {
            ctx.authorize(CONFIG_LIST, site).await?;
            let record = require_site(ctx, site).await?;
            Ok(Json(app_settings_view(&stored(&record)?)).into_response())
        }
        (["config", "appsettings"], &Method::PUT) => {
            ctx.authorize(CONFIG_WRITE, site).await?;
            let body = parse_json_object(body)?;
            let settings =
                object_member(&body, "properties", "properties")?.cloned().unwrap_or_default();
            if let Some((key, _)) = settings.iter().find(|(_, v)| !v.is_string()) {
                return Err(invalid(format!("The app setting '{key}' must be a string.")));
            }
            put_site(ctx, group, site, SiteChange::AppSettings(settings)).await?;
            let record = require_site(ctx, site).await?;
            Ok(Json(app_settings_view(&stored(&record)?)).into_response())
        }
        (["config", "slotconfignames"], &Method::GET) => {
            ctx.authorize(CONFIG_READ, site).await?;
            require_site(ctx, site).await?;
            Ok(Json(json!({
                "id": format!("{site}/config/slotConfigNames"),
                "name": "slotConfigNames",
                "type": "Microsoft.Web/sites/config",
                "properties": {"appSettingNames": null, "connectionStringNames": null, "azureStorageConfigNames": null},
            }))
            .into_response())
        }
        (["log"], &Method::GET) => {
            ctx.authorize(SITE_READ, site).await?;
            let record = require_site(ctx, site).await?;
            let lines = ctx.state.db.site_log(&record.id).await?;
            let value: Vec<Value> = lines
                .into_iter()
                .map(|(at, line)| json!({"time": crate::host_agent::rfc3339_of_millis(at), "message": line}))
                .collect();
            Ok(Json(json!({ "value": value })).into_response())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::InvalidResourceType,
            format!(
                "The path '{}' below site '{}' is not served by berth.",
                tail.join("/"),
                site.name().unwrap_or_default()
            ),
        )),
    }
}

async fn require_site(ctx: &ArmContext, id: &ResourceId) -> ApiResult<ResourceRecord> {
    ctx.state.db.get_resource(&id.key()).await?.ok_or_else(|| not_found(types::SITE, id))
}

async fn restart(ctx: &ArmContext, site: &ResourceId) -> ApiResult<Response> {
    ctx.authorize(SITE_RESTART, site).await?;
    let record = require_site(ctx, site).await?;
    if !ctx.state.db.restart_site(&record.id).await? {
        return Err(invalid(format!(
            "The site '{}' has no container image to start: set siteConfig.linuxFxVersion (or windowsFxVersion) \
             to DOCKER|<image>.",
            record.name
        )));
    }
    ctx.state.site_wakeup.notify_one();
    tracing::info!(site = %record.id, "restart requested: the host agent pulls again");
    Ok(StatusCode::OK.into_response())
}

/// `POST /subscriptions/{sub}/providers/Microsoft.Web/checknameavailability`, body `{"name", "type": "Site"}`.
pub async fn check_name_availability(ctx: &ArmContext, body: &[u8]) -> ApiResult<Response> {
    let body = parse_json_object(body)?;
    let name =
        body.get("name").and_then(Value::as_str).ok_or_else(|| invalid("'name' is required."))?;
    ctx.authorize(
        "Microsoft.Web/checknameavailability/read",
        &ResourceId::subscription(&ctx.subscription.id),
    )
    .await?;
    if let Some(message) = site_name_problem(name) {
        return Ok(Json(json!({"nameAvailable": false, "reason": "Invalid", "message": message}))
            .into_response());
    }
    let taken = ctx.state.db.get_resource_by_unique_name(&site_unique_name(name)).await?.is_some();
    Ok(Json(if taken {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("Hostname '{name}' already exists. Please select a different name.")})
    } else {
        json!({"nameAvailable": true, "reason": "", "message": ""})
    })
    .into_response())
}

/// What a write changes on a site.
enum SiteChange {
    /// PUT or PATCH of the site itself.
    Site { body: Map<String, Value>, patch: bool },
    /// PUT or PATCH of `config/web` (the site's `siteConfig`).
    Config { config: Map<String, Value>, patch: bool },
    /// PUT of `config/appsettings`.
    AppSettings(Map<String, Value>),
}

/// `siteConfig` as stored: known members only, with `acrUserManagedIdentityID` taken case-insensitively (Azure's
/// docs spell it with a capital A) and checked to be a clientId (a GUID); the fx versions checked to be
/// `DOCKER|<image>` with a registry host.
fn merge_site_config(
    base: &Map<String, Value>,
    given: &Map<String, Value>,
) -> ApiResult<Map<String, Value>> {
    let mut out = base.clone();
    for (key, value) in given {
        let Some(known) = SITE_CONFIG_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
            continue;
        };
        let known = known.to_string();
        let value = match known.as_str() {
            "linuxFxVersion" | "windowsFxVersion" => match value {
                Value::Null => Value::Null,
                Value::String(s) if s.trim().is_empty() => json!(""),
                Value::String(s) => {
                    image_of_fx_version(s)
                        .map_err(|e| invalid(format!("'siteConfig.{known}' is invalid: {e}.")))?;
                    json!(s.trim())
                }
                _ => return Err(invalid(format!("'siteConfig.{known}' must be a string."))),
            },
            "acrUseManagedIdentityCreds" | "alwaysOn" | "http20Enabled" => match value {
                Value::Null | Value::Bool(_) => value.clone(),
                _ => return Err(invalid(format!("'siteConfig.{known}' must be true or false."))),
            },
            "acrUserManagedIdentityID" => match value {
                Value::Null => Value::Null,
                Value::String(s) if s.trim().is_empty() => Value::Null,
                Value::String(s) => {
                    let client_id = uuid::Uuid::parse_str(s.trim()).map_err(|_| {
                        invalid(format!(
                            "'siteConfig.acrUserManagedIdentityID' must be the clientId (a GUID) of a user-assigned \
                             identity of the site, not '{s}' (a resource ID or a principalId does not work)."
                        ))
                    })?;
                    json!(client_id.to_string())
                }
                _ => {
                    return Err(invalid("'siteConfig.acrUserManagedIdentityID' must be a string."))
                }
            },
            _ => value.clone(),
        };
        out.insert(known, value);
    }
    let fx = |key: &str| out.get(key).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if fx("linuxFxVersion") && fx("windowsFxVersion") {
        return Err(invalid(
            "A site runs either a Linux or a Windows container: set linuxFxVersion or windowsFxVersion, not both.",
        ));
    }
    Ok(out)
}

/// The `DOCKER|<image>` a site runs (Linux or Windows), if any.
pub(crate) fn site_image(site: &Value) -> Option<String> {
    ["linuxFxVersion", "windowsFxVersion"].iter().find_map(|key| {
        site.pointer(&format!("/properties/siteConfig/{key}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

/// What decides a pull: the image, the identity settings and the identities. A change asks for a new pull.
fn pull_inputs(site: &Value) -> Value {
    json!([
        site_image(site),
        site.pointer("/properties/siteConfig/acrUseManagedIdentityCreds"),
        site.pointer("/properties/siteConfig/acrUserManagedIdentityID"),
        site.get("identity"),
    ])
}

async fn put_site(
    ctx: &ArmContext,
    group: &ResourceId,
    id: &ResourceId,
    change: SiteChange,
) -> ApiResult<Response> {
    let name = id.name().unwrap_or_default().to_string();
    validate_site_name(&name)?;
    if matches!(change, SiteChange::Site { .. }) {
        ctx.authorize(SITE_WRITE, id).await?;
    }
    if ctx.state.db.get_resource_group(&group.key()).await?.is_none() {
        return Err(group_not_found(group));
    }
    let existing = ctx.state.db.get_resource(&id.key()).await?;
    let previous = existing.as_ref().map(stored).transpose()?;
    let patch = match &change {
        SiteChange::Site { patch, .. } => *patch,
        _ => true,
    };
    let Some(base) = previous.clone().or_else(|| (!patch).then(|| json!({}))) else {
        return Err(not_found(types::SITE, id));
    };
    let empty = Map::new();
    let (body, props) = match &change {
        SiteChange::Site { body, .. } => {
            (body, object_member(body, "properties", "properties")?.unwrap_or(&empty))
        }
        _ => (&empty, &empty),
    };
    let site_patch = patch && matches!(change, SiteChange::Site { .. });
    let location = match (&previous, patch) {
        (Some(prev), true) => prev["location"].as_str().unwrap_or_default().to_string(),
        _ => required_location(body)?,
    };
    if let Some(prev) = &previous {
        let prev_location = prev["location"].as_str().unwrap_or_default();
        if !prev_location.eq_ignore_ascii_case(&location) {
            return Err(invalid(format!(
                "The site exists in location '{prev_location}'; its location cannot change to '{location}'."
            )));
        }
    }

    // The plan: required on creation, must exist, and the caller must be able to read it.
    let plan_id = match props.get("serverFarmId") {
        None | Some(Value::Null) => {
            base.pointer("/properties/serverFarmId").and_then(Value::as_str).map(str::to_string)
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("'properties.serverFarmId' must be a string.")),
    };
    let Some(plan_id) = plan_id else {
        return Err(invalid(
            "'properties.serverFarmId' is required: the resource ID of the App Service plan the site runs on.",
        ));
    };
    let plan_rid = ResourceId::parse(&plan_id)
        .ok()
        .filter(|p| p.resource_type().is_some_and(|t| t.is(types::SERVER_FARM)))
        .ok_or_else(|| {
            invalid(format!("'properties.serverFarmId' '{plan_id}' is not an App Service plan ID."))
        })?;
    if !ctx.may(PLAN_READ, &plan_rid).await? {
        return Err(ApiError::arm(
            ArmErrorCode::LinkedAuthorizationFailed,
            format!(
                "The client '{}' with object id '{}' has permission to perform action '{SITE_WRITE}' on scope '{id}'; \
                 however, it does not have permission to perform action(s) '{PLAN_READ}' on the linked scope(s) \
                 '{plan_rid}'.",
                ctx.caller.principal.app_id, ctx.caller.principal.id
            ),
        ));
    }
    let plan = ctx
        .state
        .db
        .get_resource(&plan_rid.key())
        .await?
        .ok_or_else(|| not_found(types::SERVER_FARM, &plan_rid))?;
    let plan = stored(&plan)?;

    // siteConfig: on PUT of the site as given; PATCH and config/web merge into what is stored.
    let stored_config = base
        .pointer("/properties/siteConfig")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let site_config = match &change {
        SiteChange::Site { .. } => {
            let given = object_member(props, "siteConfig", "properties.siteConfig")?
                .cloned()
                .unwrap_or_default();
            let start =
                if site_patch || previous.is_some() { stored_config.clone() } else { Map::new() };
            merge_site_config(&start, &given)?
        }
        SiteChange::Config { config, patch } => {
            let start = if *patch { stored_config.clone() } else { Map::new() };
            merge_site_config(&start, config)?
        }
        SiteChange::AppSettings(_) => stored_config.clone(),
    };
    let app_settings = match &change {
        SiteChange::AppSettings(settings) => Value::Object(settings.clone()),
        SiteChange::Site { .. } => {
            match props.get("siteConfig").and_then(|c| c.get("appSettings")) {
                // The create body's list form: [{"name", "value"}].
                Some(Value::Array(list)) => {
                    let mut map = base
                        .pointer("/properties/appSettings")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for item in list {
                        let (Some(k), Some(v)) = (
                            item.get("name").and_then(Value::as_str),
                            item.get("value").and_then(Value::as_str),
                        ) else {
                            return Err(invalid("'siteConfig.appSettings' must be a list of {\"name\", \"value\"} strings."));
                        };
                        map.insert(k.to_string(), json!(v));
                    }
                    Value::Object(map)
                }
                _ => base.pointer("/properties/appSettings").cloned().unwrap_or_else(|| json!({})),
            }
        }
        SiteChange::Config { .. } => {
            base.pointer("/properties/appSettings").cloned().unwrap_or_else(|| json!({}))
        }
    };
    let bool_prop = |key: &str, default: bool| -> ApiResult<bool> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(base
                .pointer(&format!("/properties/{key}"))
                .and_then(Value::as_bool)
                .unwrap_or(default)),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(format!("'properties.{key}' must be true or false."))),
        }
    };
    let https_only = bool_prop("httpsOnly", false)?;
    let enabled = bool_prop("enabled", true)?;
    let tags = match &change {
        SiteChange::Site { body, .. } if !site_patch || body.contains_key("tags") => {
            validate_tags(body.get("tags"))?
        }
        _ => base.get("tags").cloned().unwrap_or_else(|| json!({})),
    };

    let id = match &existing {
        Some(record) => ResourceId::parse(&record.id).map_err(ApiError::internal)?,
        None => id.clone(),
    };
    let identity = resource_identity::plan(
        ctx,
        &id,
        body.get("identity"),
        previous.as_ref().and_then(|p| p.get("identity")),
        site_patch,
        SITE_WRITE,
    )
    .await?;
    let windows =
        site_config.get("windowsFxVersion").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let linux = !windows && plan["properties"]["reserved"].as_bool().unwrap_or(false);
    let kind = if windows {
        "app,container,windows"
    } else if linux {
        "app,linux,container"
    } else {
        "app"
    };
    let host_name = format!(
        "{}.{}",
        name.to_ascii_lowercase(),
        ctx.state.public_host.split(':').next().unwrap_or("localhost")
    );
    let mut envelope = json!({
        "id": id.to_string(),
        "name": id.name(),
        "type": types::SITE,
        "kind": kind,
        "location": location,
        "tags": tags,
        "properties": {
            "name": id.name(),
            "state": if enabled { "Running" } else { "Stopped" },
            "enabled": enabled,
            "hostNames": [host_name],
            "enabledHostNames": [host_name],
            "defaultHostName": host_name,
            "serverFarmId": plan_rid.to_string(),
            "reserved": linux,
            "isXenon": windows,
            "hyperV": windows,
            "httpsOnly": https_only,
            "sku": plan["sku"]["tier"],
            "resourceGroup": id.resource_group_name(),
            "siteConfig": Value::Object(site_config),
            "appSettings": app_settings,
            "provisioningState": "Succeeded",
        },
        "systemData": ctx.system_data(previous.as_ref().and_then(|p| p.get("systemData"))),
    });
    if let Some(block) = identity.block {
        envelope["identity"] = block;
    }
    let wants_pull = site_image(&envelope).filter(|_| {
        previous.as_ref().is_none_or(|prev| pull_inputs(prev) != pull_inputs(&envelope))
    });
    let record = resource_record(
        ctx,
        &id,
        group,
        Some(site_unique_name(&name)),
        &envelope,
        existing.as_ref(),
    );
    let read_body = existing.as_ref().map(|e| e.body.as_str());
    let outcome = ctx
        .state
        .db
        .put_site(&record, read_body, &identity.add, &identity.remove, wants_pull.as_deref())
        .await;
    match outcome {
        Ok(IdentityPut::Created | IdentityPut::Updated) => {}
        Ok(IdentityPut::Changed) => {
            return Err(ApiError::arm(
                ArmErrorCode::Conflict,
                format!("The site '{name}' was changed by another request at the same time. Retry the request."),
            ))
        }
        Err(DbError::Conflict(_)) => {
            return Err(ApiError::arm(
                ArmErrorCode::Conflict,
                format!("Website with given name {name} already exists."),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    if wants_pull.is_some() {
        ctx.state.site_wakeup.notify_one();
    }
    Ok(json_response(
        StatusCode::OK,
        site_view_of(envelope, ctx.state.db.site_state(&id.to_string()).await?),
    ))
}

/// A site as served: the stored envelope with the host agent's `imagePull` record.
pub(crate) async fn site_view(ctx: &ArmContext, record: &ResourceRecord) -> ApiResult<Value> {
    let state = ctx.state.db.site_state(&record.id).await?;
    Ok(site_view_of(stored(record)?, state))
}

fn site_view_of(mut body: Value, state: Option<SiteState>) -> Value {
    if let Some(props) = body.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("appSettings");
        if let Some(state) = state {
            let error = match (&state.error_code, &state.error_message) {
                (Some(code), Some(message)) => json!({"code": code, "message": message}),
                _ => Value::Null,
            };
            props.insert(
                "imagePull".into(),
                json!({
                    "status": state.status,
                    "image": state.image,
                    "digest": state.digest,
                    "error": error,
                    "lastAttempt": state.last_attempt,
                    "attempts": state.attempts,
                    "runState": state.run_state,
                }),
            );
        }
    }
    body
}

fn config_web_view(site: &Value) -> Value {
    let mut config = site.pointer("/properties/siteConfig").cloned().unwrap_or_else(|| json!({}));
    if let Some(map) = config.as_object_mut() {
        for key in SITE_CONFIG_KEYS {
            map.entry(key.to_string()).or_insert(Value::Null);
        }
    }
    json!({
        "id": format!("{}/config/web", site["id"].as_str().unwrap_or_default()),
        "name": site["name"],
        "type": "Microsoft.Web/sites/config",
        "location": site["location"],
        "properties": config,
    })
}

fn app_settings_view(site: &Value) -> Value {
    json!({
        "id": format!("{}/config/appsettings", site["id"].as_str().unwrap_or_default()),
        "name": "appsettings",
        "type": "Microsoft.Web/sites/config",
        "location": site["location"],
        "properties": site.pointer("/properties/appSettings").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_config_is_checked_and_normalised() {
        let given = json!({"AcrUserManagedIdentityID": "6A2B4A0E-4C3D-4B7A-9F58-1B0B3C9D1E2F",
            "linuxFxVersion": "Docker|127.0.0.1:8443/acr/app:v1", "unknown": 1});
        let out = merge_site_config(&Map::new(), given.as_object().unwrap()).unwrap();
        assert_eq!(out["acrUserManagedIdentityID"], "6a2b4a0e-4c3d-4b7a-9f58-1b0b3c9d1e2f");
        assert!(!out.contains_key("unknown"));
        for bad in [
            json!({"acrUserManagedIdentityID": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"}),
            json!({"linuxFxVersion": "NODE|18-lts"}),
            json!({"linuxFxVersion": "DOCKER|nginx"}),
            json!({"linuxFxVersion": "DOCKER|a.com/x:1", "windowsFxVersion": "DOCKER|a.com/y:1"}),
            json!({"acrUseManagedIdentityCreds": "yes"}),
        ] {
            assert!(merge_site_config(&Map::new(), bad.as_object().unwrap()).is_err(), "{bad}");
        }
        let cleared =
            merge_site_config(&out, json!({"acrUserManagedIdentityID": ""}).as_object().unwrap())
                .unwrap();
        assert_eq!(cleared["acrUserManagedIdentityID"], Value::Null);
    }

    #[test]
    fn sku_tiers() {
        assert_eq!(sku_tier("p0v3"), Some("Premium0V3"));
        assert_eq!(sku_tier("B1"), Some("Basic"));
        assert_eq!(sku_tier("X9"), None);
    }
}
