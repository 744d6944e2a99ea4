//! `berth acr create|show|list|update|delete`: container registries, with the requests az sends.
//! Results are printed with `properties` flattened, as the Python SDK model az uses prints them.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::{confirm, Context};
use crate::args::{AcrCreateArgs, AcrDeleteArgs, AcrListArgs, AcrNameArgs, AcrUpdateArgs};
use crate::arm::{
    flatten_properties, list_all, registry_path, resource_group_of, resource_group_path,
    resources_of_type_path, with_api_version, REGISTRIES_API, REGISTRY_TYPE, RESOURCE_GROUPS_API,
};
use crate::session::Session;

pub async fn create(args: AcrCreateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr create").await?;
    let subscription = context.subscription_id(&session)?;
    // Like az, take the resource group's location when -l is absent (this also reports a missing group).
    let location = match args.location {
        Some(location) => location,
        None => {
            let group_path = with_api_version(
                &resource_group_path(&subscription, &args.resource_group),
                RESOURCE_GROUPS_API,
            );
            let group = session.client.get(&group_path).await?;
            match group.get("location").and_then(Value::as_str) {
                Some(location) => location.to_owned(),
                None => bail!(
                    "resource group '{}' has no location; pass --location",
                    args.resource_group
                ),
            }
        }
    };
    let mut properties = Map::new();
    properties
        .insert("adminUserEnabled".to_owned(), Value::Bool(args.admin_enabled.unwrap_or(false)));
    if let Some(anonymous) = args.allow_anonymous_pull {
        properties.insert("anonymousPullEnabled".to_owned(), Value::Bool(anonymous));
    }
    if let Some(mode) = args.role_assignment_mode {
        properties.insert("roleAssignmentMode".to_owned(), Value::from(mode.as_arm()));
    }
    let mut body =
        json!({"location": location, "sku": {"name": args.sku.as_str()}, "properties": properties});
    if let Some(tags) = args.tags.to_json() {
        body["tags"] = tags;
    }
    if let Some(identities) = &args.identity.assign_identity {
        body["identity"] = super::identity::assign_identity_block(
            identities,
            &subscription,
            &args.resource_group,
        )?;
    }
    let path = with_api_version(
        &registry_path(&subscription, &args.resource_group, &args.name),
        REGISTRIES_API,
    );
    Ok(flatten_properties(session.client.put(&path, &body).await?))
}

pub async fn show(args: AcrNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr show").await?;
    let path = registry_url(&session, &args, context).await?;
    Ok(flatten_properties(session.client.get(&path).await?))
}

pub async fn list(args: AcrListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr list").await?;
    let subscription = context.subscription_id(&session)?;
    let encoded_subscription = berth_client::encode_path_segment(&subscription);
    let path = match &args.resource_group {
        Some(group) => format!(
            "/subscriptions/{encoded_subscription}/resourceGroups/{}/providers/{REGISTRY_TYPE}?api-version={REGISTRIES_API}",
            berth_client::encode_path_segment(group)
        ),
        None => format!("/subscriptions/{encoded_subscription}/providers/{REGISTRY_TYPE}?api-version={REGISTRIES_API}"),
    };
    let registries = list_all(&session.client, &path).await?;
    Ok(Value::Array(registries.into_iter().map(flatten_properties).collect()))
}

pub async fn update(args: AcrUpdateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr update").await?;
    let path = registry_url(&session, &args.registry, context).await?;
    // Only what changes is sent, so fields the server manages are never echoed back stale.
    let mut body = Map::new();
    if let Some(sku) = args.sku {
        body.insert("sku".to_owned(), json!({"name": sku.as_str()}));
    }
    if let Some(tags) = args.tags.to_json() {
        body.insert("tags".to_owned(), tags);
    }
    let mut properties = Map::new();
    if let Some(anonymous) = args.anonymous_pull_enabled {
        properties.insert("anonymousPullEnabled".to_owned(), Value::Bool(anonymous));
    }
    if let Some(admin) = args.admin_enabled {
        properties.insert("adminUserEnabled".to_owned(), Value::Bool(admin));
    }
    if let Some(mode) = args.role_assignment_mode {
        properties.insert("roleAssignmentMode".to_owned(), Value::from(mode.as_arm()));
    }
    if !properties.is_empty() {
        body.insert("properties".to_owned(), Value::Object(properties));
    }
    if let Some(identities) = &args.identity.assign_identity {
        // Added to what the registry has, as `acr identity assign` does; no value means [system].
        let values = if identities.is_empty() {
            vec![super::identity::SYSTEM.to_owned()]
        } else {
            identities.clone()
        };
        let subscription = context.subscription_id(&session)?;
        let group = match &args.registry.resource_group {
            Some(group) => group.clone(),
            None => crate::arm::resource_group_of(&path).unwrap_or_default().to_owned(),
        };
        let registry = session.client.get(&path).await?;
        let identity = super::identity::assign_patch(&registry, &values, &subscription, &group)?;
        body.insert("identity".to_owned(), identity);
    }
    let result = if body.is_empty() {
        session.client.get(&path).await?
    } else {
        session.client.patch(&path, &Value::Object(body)).await?
    };
    Ok(flatten_properties(result))
}

pub async fn delete(args: AcrDeleteArgs, context: &Context<'_>) -> Result<()> {
    let question =
        format!("Are you sure you want to delete the registry '{}'?", args.registry.name);
    if !confirm(&question, args.confirm.yes)? {
        return Ok(());
    }
    let session = context.session("acr delete").await?;
    let path = registry_url(&session, &args.registry, context).await?;
    session.client.delete(&path).await?;
    Ok(())
}

/// The registry's URL; without `-g` the group is found through the subscription's resource list,
/// matching the name case-insensitively, as az does.
pub(super) async fn registry_url(
    session: &Session,
    args: &AcrNameArgs,
    context: &Context<'_>,
) -> Result<String> {
    let subscription = session.subscription(context.global.subscription.as_deref())?;
    let subscription_id = subscription.subscription_id.clone();
    let group = match &args.resource_group {
        Some(group) => group.clone(),
        None => {
            let resources =
                list_all(&session.client, &resources_of_type_path(&subscription_id, REGISTRY_TYPE))
                    .await?;
            let found = resources.iter().find(|resource| {
                resource
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case(&args.name))
            });
            match found.and_then(|resource| resource.get("id")).and_then(Value::as_str).and_then(resource_group_of) {
                Some(group) => group.to_owned(),
                None => bail!(
                    "The resource with name '{}' and type '{REGISTRY_TYPE}' could not be found in subscription '{} ({})'.",
                    args.name,
                    subscription.display_name,
                    subscription_id
                ),
            }
        }
    };
    Ok(with_api_version(&registry_path(&subscription_id, &group, &args.name), REGISTRIES_API))
}
