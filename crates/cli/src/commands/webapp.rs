//! `berth appservice plan create|show|list|delete` and `berth webapp create|show|list|delete|restart`,
//! `webapp identity assign|remove|show`, `webapp config container set|show` and `webapp log tail`, with the
//! requests az sends (api-version 2025-05-01; Web PUTs answer 200). Sites and plans print with `properties`
//! flattened, as az prints the SDK models, so `--query principalId` (on `identity show`) and
//! `--query imagePull.status` (on `show`) work.

use anyhow::{bail, Context as _, Result};
use berth_client::encode_path_segment;
use serde_json::{json, Value};

use super::identity::{assign_patch, identity_id, SYSTEM};
use super::{confirm, Context};
use crate::args::{
    ContainerSetArgs, PlanCreateArgs, PlanDeleteArgs, PlanNameArgs, WebListArgs, WebappCreateArgs,
    WebappIdentityArgs, WebappNameArgs,
};
use crate::arm::{
    flatten_properties, list_all, resource_group_path, with_api_version, RESOURCE_GROUPS_API,
};
use crate::session::Session;

pub const WEB_API: &str = "2025-05-01";
pub const SITE_TYPE: &str = "Microsoft.Web/sites";
pub const PLAN_TYPE: &str = "Microsoft.Web/serverfarms";

fn resource_path(subscription: &str, group: &str, resource_type: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{resource_type}/{}",
        encode_path_segment(subscription),
        encode_path_segment(group),
        encode_path_segment(name)
    )
}

fn list_path(subscription: &str, group: Option<&str>, resource_type: &str) -> String {
    let subscription = encode_path_segment(subscription);
    match group {
        Some(group) => format!(
            "/subscriptions/{subscription}/resourcegroups/{}/providers/{resource_type}?api-version={WEB_API}",
            encode_path_segment(group)
        ),
        None => format!("/subscriptions/{subscription}/providers/{resource_type}?api-version={WEB_API}"),
    }
}

async fn group_location(session: &Session, subscription: &str, group: &str) -> Result<String> {
    let path = with_api_version(&resource_group_path(subscription, group), RESOURCE_GROUPS_API);
    let body = session.client.get(&path).await?;
    body.get("location")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("resource group '{group}' has no location"))
}

// ---- plans ----------------------------------------------------------------------------------------------------

fn plan_body(location: &str, linux: bool, sku: &str, workers: u64) -> Value {
    json!({
        "location": location,
        "kind": if linux { "linux" } else { "app" },
        "properties": {"perSiteScaling": false, "reserved": linux},
        "sku": {"name": sku, "capacity": workers},
    })
}

pub async fn plan_create(args: PlanCreateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("appservice plan create").await?;
    let subscription = context.subscription_id(&session)?;
    let location = match args.location {
        Some(location) => location,
        None => group_location(&session, &subscription, &args.resource_group).await?,
    };
    let mut body = plan_body(&location, args.is_linux, &args.sku, args.number_of_workers);
    if let Some(tags) = args.tags.to_json() {
        body["tags"] = tags;
    }
    let path = with_api_version(
        &resource_path(&subscription, &args.resource_group, PLAN_TYPE, &args.name),
        WEB_API,
    );
    Ok(flatten_properties(session.client.put(&path, &body).await?))
}

pub async fn plan_show(args: PlanNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("appservice plan show").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &resource_path(&subscription, &args.resource_group, PLAN_TYPE, &args.name),
        WEB_API,
    );
    Ok(flatten_properties(session.client.get(&path).await?))
}

pub async fn plan_list(args: WebListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("appservice plan list").await?;
    let subscription = context.subscription_id(&session)?;
    let plans = list_all(
        &session.client,
        &list_path(&subscription, args.resource_group.as_deref(), PLAN_TYPE),
    )
    .await?;
    Ok(Value::Array(plans.into_iter().map(flatten_properties).collect()))
}

pub async fn plan_delete(args: PlanDeleteArgs, context: &Context<'_>) -> Result<()> {
    if !confirm("Are you sure you want to delete the App Service plan?", args.confirm.yes)? {
        return Ok(());
    }
    let session = context.session("appservice plan delete").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &resource_path(&subscription, &args.plan.resource_group, PLAN_TYPE, &args.plan.name),
        WEB_API,
    );
    session.client.delete(&path).await?;
    Ok(())
}

// ---- web apps -------------------------------------------------------------------------------------------------

fn site_path(subscription: &str, app: &WebappNameArgs) -> String {
    resource_path(subscription, &app.resource_group, SITE_TYPE, &app.name)
}

/// The clientId that `acrUserManagedIdentityID` takes for `--acr-identity`: null for `[system]`, else the
/// user-assigned identity's (looked up, as az does).
async fn acr_identity_client_id(
    session: &Session,
    subscription: &str,
    group: &str,
    identity: &str,
) -> Result<(Value, Option<String>)> {
    if identity.trim().eq_ignore_ascii_case(SYSTEM) {
        return Ok((Value::Null, None));
    }
    let id = if identity.starts_with('/') {
        identity.to_owned()
    } else {
        identity_id(subscription, group, identity)
    };
    let body = session.client.get(&with_api_version(&id, super::identity::IDENTITY_API)).await?;
    let client_id = body
        .pointer("/properties/clientId")
        .and_then(Value::as_str)
        .with_context(|| format!("the identity '{identity}' has no clientId"))?;
    Ok((json!(client_id), Some(id)))
}

pub async fn create(args: WebappCreateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp create").await?;
    let subscription = context.subscription_id(&session)?;
    let group = args.app.resource_group.clone();
    // The plan: named, given by ID, or a default Linux plan made for the app.
    let plan_id = match &args.plan {
        Some(plan) if plan.starts_with('/') => plan.clone(),
        Some(plan) => resource_path(&subscription, &group, PLAN_TYPE, plan),
        None => {
            let name = format!("{}-plan", args.app.name);
            let id = resource_path(&subscription, &group, PLAN_TYPE, &name);
            let path = with_api_version(&id, WEB_API);
            if session.client.get(&path).await.is_err() {
                let location = group_location(&session, &subscription, &group).await?;
                session.client.put(&path, &plan_body(&location, true, "B1", 1)).await?;
                context.warn(&format!(
                    "Created the App Service plan '{name}' (Linux, B1) for the web app."
                ));
            }
            id
        }
    };
    let plan = session.client.get(&with_api_version(&plan_id, WEB_API)).await?;
    let location = plan.get("location").and_then(Value::as_str).unwrap_or_default().to_owned();
    // A Linux plan runs Linux containers; any other plan Windows containers, as az decides.
    let windows = !plan.pointer("/properties/reserved").and_then(Value::as_bool).unwrap_or(false);
    let fx_key = if windows { "windowsFxVersion" } else { "linuxFxVersion" };
    let mut site_config = json!({
        "appSettings": [{"name": "WEBSITES_ENABLE_APP_SERVICE_STORAGE", "value": "false"}],
        "alwaysOn": true,
        fx_key: format!("DOCKER|{}", args.container_image_name),
    });
    let mut assigned = args.assign_identity.clone();
    if args.acr_use_identity {
        site_config["acrUseManagedIdentityCreds"] = json!(true);
        let acr_identity = args.acr_identity.as_deref().unwrap_or(SYSTEM);
        let (client_id, user_id) =
            acr_identity_client_id(&session, &subscription, &group, acr_identity).await?;
        site_config["acrUserManagedIdentityID"] = client_id;
        // The identity that pulls must be the site's: assign it with the others.
        let wanted = user_id.unwrap_or_else(|| SYSTEM.to_owned());
        let list = assigned.get_or_insert_with(Vec::new);
        if list.is_empty() {
            list.push(SYSTEM.to_owned());
        }
        if !list.iter().any(|v| {
            v.eq_ignore_ascii_case(&wanted) || identity_matches(v, &wanted, &subscription, &group)
        }) {
            list.push(wanted);
        }
    } else if args.acr_identity.is_some() {
        bail!("--acr-identity needs --acr-use-identity");
    }
    let mut body = json!({
        "location": location,
        "properties": {"serverFarmId": plan_id, "httpsOnly": false, "siteConfig": site_config},
    });
    if let Some(values) = &assigned {
        body["identity"] =
            assign_patch(&json!({}), &default_system(values), &subscription, &group)?;
    }
    if let Some(tags) = args.tags.to_json() {
        body["tags"] = tags;
    }
    let path = with_api_version(&site_path(&subscription, &args.app), WEB_API);
    Ok(flatten_properties(session.client.put(&path, &body).await?))
}

fn default_system(values: &[String]) -> Vec<String> {
    if values.is_empty() {
        vec![SYSTEM.to_owned()]
    } else {
        values.to_vec()
    }
}

fn identity_matches(value: &str, id: &str, subscription: &str, group: &str) -> bool {
    let expanded = if value.starts_with('/') || value.eq_ignore_ascii_case(SYSTEM) {
        value.to_owned()
    } else {
        identity_id(subscription, group, value)
    };
    expanded.eq_ignore_ascii_case(id)
}

pub async fn show(args: WebappNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp show").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&site_path(&subscription, &args), WEB_API);
    Ok(flatten_properties(session.client.get(&path).await?))
}

pub async fn list(args: WebListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp list").await?;
    let subscription = context.subscription_id(&session)?;
    let sites = list_all(
        &session.client,
        &list_path(&subscription, args.resource_group.as_deref(), SITE_TYPE),
    )
    .await?;
    Ok(Value::Array(sites.into_iter().map(flatten_properties).collect()))
}

pub async fn delete(args: WebappNameArgs, context: &Context<'_>) -> Result<()> {
    let session = context.session("webapp delete").await?;
    let subscription = context.subscription_id(&session)?;
    session.client.delete(&with_api_version(&site_path(&subscription, &args), WEB_API)).await?;
    Ok(())
}

pub async fn restart(args: WebappNameArgs, context: &Context<'_>) -> Result<()> {
    let session = context.session("webapp restart").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&format!("{}/restart", site_path(&subscription, &args)), WEB_API);
    session.client.post(&path, &json!({})).await?;
    Ok(())
}

pub async fn identity_assign(args: WebappIdentityArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp identity assign").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&site_path(&subscription, &args.app), WEB_API);
    let site = session.client.get(&path).await?;
    let identity = assign_patch(
        &site,
        &default_system(&args.identities),
        &subscription,
        &args.app.resource_group,
    )?;
    let updated = session.client.patch(&path, &json!({ "identity": identity })).await?;
    Ok(updated.get("identity").cloned().unwrap_or(Value::Null))
}

pub async fn identity_remove(args: WebappIdentityArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp identity remove").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&site_path(&subscription, &args.app), WEB_API);
    let site = session.client.get(&path).await?;
    let identity = site.get("identity");
    let kind = identity
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("None")
        .to_ascii_lowercase();
    let has_system = kind.contains("systemassigned");
    let has_users: Vec<String> = identity
        .and_then(|i| i.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let values = default_system(&args.identities);
    let remove_system = values.iter().any(|v| v.eq_ignore_ascii_case(SYSTEM));
    let removed: Vec<String> = values
        .iter()
        .filter(|v| !v.eq_ignore_ascii_case(SYSTEM))
        .map(|v| {
            if v.starts_with('/') {
                v.clone()
            } else {
                identity_id(&subscription, &args.app.resource_group, v)
            }
        })
        .collect();
    if let Some(missing) =
        removed.iter().find(|id| !has_users.iter().any(|h| h.eq_ignore_ascii_case(id)))
    {
        bail!("The identity '{missing}' is not assigned to the web app '{}'.", args.app.name);
    }
    let remaining =
        has_users.iter().filter(|h| !removed.iter().any(|r| r.eq_ignore_ascii_case(h))).count();
    let system = has_system && !remove_system;
    let kind = match (system, remaining > 0) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    };
    let mut block = json!({"type": kind});
    if remaining > 0 && !removed.is_empty() {
        block["userAssignedIdentities"] =
            Value::Object(removed.into_iter().map(|id| (id, Value::Null)).collect());
    }
    let updated = session.client.patch(&path, &json!({ "identity": block })).await?;
    Ok(updated.get("identity").cloned().unwrap_or(Value::Null))
}

pub async fn identity_show(args: WebappNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp identity show").await?;
    let subscription = context.subscription_id(&session)?;
    let site =
        session.client.get(&with_api_version(&site_path(&subscription, &args), WEB_API)).await?;
    Ok(site.get("identity").cloned().unwrap_or(Value::Null))
}

/// The container settings of a `config/web` answer, with the agent's `imagePull` when given.
fn container_view(config: &Value, site: Option<&Value>) -> Value {
    let p = &config["properties"];
    let mut view = json!({
        "linuxFxVersion": p["linuxFxVersion"],
        "windowsFxVersion": p["windowsFxVersion"],
        "acrUseManagedIdentityCreds": p["acrUseManagedIdentityCreds"],
        "acrUserManagedIdentityID": p["acrUserManagedIdentityID"],
    });
    if let Some(pull) = site.and_then(|s| s.pointer("/properties/imagePull")) {
        view["imagePull"] = pull.clone();
    }
    view
}

pub async fn container_set(args: ContainerSetArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp config container set").await?;
    let subscription = context.subscription_id(&session)?;
    let site_url = site_path(&subscription, &args.app);
    let path = with_api_version(&format!("{site_url}/config/web"), WEB_API);
    let current = session.client.get(&path).await?;
    let mut properties = serde_json::Map::new();
    if let Some(image) = &args.container_image_name {
        let windows = current
            .pointer("/properties/windowsFxVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        let key = if windows { "windowsFxVersion" } else { "linuxFxVersion" };
        properties.insert(key.to_owned(), json!(format!("DOCKER|{image}")));
    }
    if let Some(use_identity) = args.acr_use_identity {
        properties.insert("acrUseManagedIdentityCreds".to_owned(), json!(use_identity));
    }
    if let Some(identity) = &args.acr_identity {
        let (client_id, _) =
            acr_identity_client_id(&session, &subscription, &args.app.resource_group, identity)
                .await?;
        properties.insert("acrUserManagedIdentityID".to_owned(), client_id);
    }
    if properties.is_empty() {
        bail!("nothing to set: give --container-image-name, --acr-use-identity or --acr-identity");
    }
    let location = current.get("location").cloned().unwrap_or(Value::Null);
    let updated = session
        .client
        .patch(&path, &json!({"location": location, "properties": properties}))
        .await?;
    Ok(container_view(&updated, None))
}

pub async fn container_show(args: WebappNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp config container show").await?;
    let subscription = context.subscription_id(&session)?;
    let site_url = site_path(&subscription, &args);
    let config =
        session.client.get(&with_api_version(&format!("{site_url}/config/web"), WEB_API)).await?;
    let site = session.client.get(&with_api_version(&site_url, WEB_API)).await?;
    Ok(container_view(&config, Some(&site)))
}

pub async fn log_tail(args: WebappNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("webapp log tail").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&format!("{}/log", site_path(&subscription, &args)), WEB_API);
    Ok(Value::Array(list_all(&session.client, &path).await?))
}
