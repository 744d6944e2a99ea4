//! `berth identity create|show|list|delete`, `berth identity federated-credential create|show|list|delete` and
//! `berth acr identity assign|remove|show` (plus `--assign-identity` of `acr create|update`), with the requests az
//! sends. Identities and credentials print with `properties` flattened, as az prints the SDK models, so
//! `--query principalId` works.

use anyhow::{bail, Result};
use berth_client::encode_path_segment;
use serde_json::{json, Map, Value};

use super::acr::registry_url;
use super::{confirm, Context};
use crate::args::{
    AcrIdentityArgs, AcrNameArgs, FederatedCredentialCreateArgs, FederatedCredentialDeleteArgs,
    FederatedCredentialListArgs, FederatedCredentialNameArgs, IdentityCreateArgs, IdentityListArgs,
    IdentityNameArgs,
};
use crate::arm::{
    flatten_properties, list_all, resource_group_of, resource_group_path, with_api_version,
    RESOURCE_GROUPS_API,
};
use crate::session::Session;

/// The api-version az 2.91 sends for `Microsoft.ManagedIdentity`.
pub const IDENTITY_API: &str = "2025-05-31-preview";
pub const IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
/// How az's `--identities` and `--assign-identity` name the system-assigned identity.
pub const SYSTEM: &str = "[system]";

/// `/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
pub fn identity_id(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{IDENTITY_TYPE}/{}",
        encode_path_segment(subscription),
        encode_path_segment(group),
        encode_path_segment(name)
    )
}

fn credential_path(subscription: &str, args: &FederatedCredentialNameArgs) -> String {
    format!(
        "{}/federatedIdentityCredentials/{}",
        identity_id(subscription, &args.resource_group, &args.identity_name),
        encode_path_segment(&args.name)
    )
}

pub async fn create(args: IdentityCreateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity create").await?;
    let subscription = context.subscription_id(&session)?;
    // Like az, take the resource group's location when -l is absent (this also reports a missing group).
    let location = match args.location {
        Some(location) => location,
        None => {
            let path = with_api_version(
                &resource_group_path(&subscription, &args.resource_group),
                RESOURCE_GROUPS_API,
            );
            match session.client.get(&path).await?.get("location").and_then(Value::as_str) {
                Some(location) => location.to_owned(),
                None => bail!(
                    "resource group '{}' has no location; pass --location",
                    args.resource_group
                ),
            }
        }
    };
    let mut body = json!({"location": location});
    if let Some(tags) = args.tags.to_json() {
        body["tags"] = tags;
    }
    let path = with_api_version(
        &identity_id(&subscription, &args.resource_group, &args.name),
        IDENTITY_API,
    );
    Ok(flatten_properties(session.client.put(&path, &body).await?))
}

pub async fn show(args: IdentityNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity show").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &identity_id(&subscription, &args.resource_group, &args.name),
        IDENTITY_API,
    );
    Ok(flatten_properties(session.client.get(&path).await?))
}

pub async fn list(args: IdentityListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity list").await?;
    let subscription = encode_path_segment(&context.subscription_id(&session)?);
    let path = match &args.resource_group {
        Some(group) => format!(
            "/subscriptions/{subscription}/resourcegroups/{}/providers/{IDENTITY_TYPE}?api-version={IDENTITY_API}",
            encode_path_segment(group)
        ),
        None => format!(
            "/subscriptions/{subscription}/providers/{IDENTITY_TYPE}?api-version={IDENTITY_API}"
        ),
    };
    let identities = list_all(&session.client, &path).await?;
    Ok(Value::Array(identities.into_iter().map(flatten_properties).collect()))
}

pub async fn delete(args: IdentityNameArgs, context: &Context<'_>) -> Result<()> {
    let session = context.session("identity delete").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &identity_id(&subscription, &args.resource_group, &args.name),
        IDENTITY_API,
    );
    session.client.delete(&path).await?;
    Ok(())
}

pub async fn credential_create(
    args: FederatedCredentialCreateArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("identity federated-credential create").await?;
    let subscription = context.subscription_id(&session)?;
    let body = json!({"properties": {
        "issuer": args.issuer,
        "subject": args.subject,
        "audiences": args.audiences,
    }});
    let path = with_api_version(&credential_path(&subscription, &args.credential), IDENTITY_API);
    Ok(flatten_properties(session.client.put(&path, &body).await?))
}

pub async fn credential_show(
    args: FederatedCredentialNameArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("identity federated-credential show").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&credential_path(&subscription, &args), IDENTITY_API);
    Ok(flatten_properties(session.client.get(&path).await?))
}

pub async fn credential_list(
    args: FederatedCredentialListArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("identity federated-credential list").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &format!(
            "{}/federatedIdentityCredentials",
            identity_id(&subscription, &args.resource_group, &args.identity_name)
        ),
        IDENTITY_API,
    );
    let credentials = list_all(&session.client, &path).await?;
    Ok(Value::Array(credentials.into_iter().map(flatten_properties).collect()))
}

pub async fn credential_delete(
    args: FederatedCredentialDeleteArgs,
    context: &Context<'_>,
) -> Result<()> {
    if !confirm("Are you sure you want to perform this operation?", args.confirm.yes)? {
        return Ok(());
    }
    let session = context.session("identity federated-credential delete").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(&credential_path(&subscription, &args.credential), IDENTITY_API);
    session.client.delete(&path).await?;
    Ok(())
}

// ---- identities of registries ---------------------------------------------------------------------------------

/// What `--identities`/`--assign-identity` name: the system identity and user-assigned identity IDs. Names are
/// taken as identities in `group` of the current subscription, as az expands them.
fn requested_identities(
    values: &[String],
    subscription: &str,
    group: &str,
) -> Result<(bool, Vec<String>)> {
    let mut system = false;
    let mut users = Vec::new();
    for value in values {
        let value = value.trim();
        if value.eq_ignore_ascii_case(SYSTEM) {
            system = true;
        } else if value.starts_with('/') {
            users.push(value.to_owned());
        } else if value.is_empty() {
            bail!("an empty identity was given; use [system], an identity name or an identity resource ID");
        } else {
            users.push(identity_id(subscription, group, value));
        }
    }
    Ok((system, users))
}

/// The `identity` block of a registry create: `--assign-identity` with no value means `[system]`.
pub fn assign_identity_block(values: &[String], subscription: &str, group: &str) -> Result<Value> {
    let values = if values.is_empty() { vec![SYSTEM.to_owned()] } else { values.to_vec() };
    let (system, users) = requested_identities(&values, subscription, group)?;
    Ok(identity_block(system, !users.is_empty(), users.iter().map(|id| (id.clone(), json!({})))))
}

fn type_name(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

fn identity_block(
    system: bool,
    user: bool,
    entries: impl Iterator<Item = (String, Value)>,
) -> Value {
    let mut block = Map::new();
    block.insert("type".to_owned(), json!(type_name(system, user)));
    let entries: Map<String, Value> = entries.collect();
    if !entries.is_empty() {
        block.insert("userAssignedIdentities".to_owned(), Value::Object(entries));
    }
    Value::Object(block)
}

/// The registry's current identity: (system assigned, user-assigned IDs).
fn current_identity(registry: &Value) -> (bool, Vec<String>) {
    let identity = registry.get("identity");
    let kind = identity.and_then(|i| i.get("type")).and_then(Value::as_str).unwrap_or("None");
    let system = kind.to_ascii_lowercase().contains("systemassigned");
    let users = identity
        .and_then(|i| i.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    (system, users)
}

/// The registry's URL, subscription and group (found through the resource list when `-g` is absent).
async fn registry_target(
    session: &Session,
    args: &AcrNameArgs,
    context: &Context<'_>,
) -> Result<(String, String, String)> {
    let url = registry_url(session, args, context).await?;
    let subscription = context.subscription_id(session)?;
    let group = match &args.resource_group {
        Some(group) => group.clone(),
        None => resource_group_of(&url).unwrap_or_default().to_owned(),
    };
    Ok((url, subscription, group))
}

/// The `identity` member of a PATCH that adds `values` to what `registry` has (merged by the server).
pub fn assign_patch(
    registry: &Value,
    values: &[String],
    subscription: &str,
    group: &str,
) -> Result<Value> {
    let (has_system, has_users) = current_identity(registry);
    let (system, users) = requested_identities(values, subscription, group)?;
    let user = !has_users.is_empty() || !users.is_empty();
    Ok(identity_block(has_system || system, user, users.into_iter().map(|id| (id, json!({})))))
}

pub async fn acr_assign(args: AcrIdentityArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr identity assign").await?;
    let (url, subscription, group) = registry_target(&session, &args.registry, context).await?;
    let registry = session.client.get(&url).await?;
    let identity = assign_patch(&registry, &args.identities, &subscription, &group)?;
    let updated = session.client.patch(&url, &json!({ "identity": identity })).await?;
    Ok(updated.get("identity").cloned().unwrap_or(Value::Null))
}

pub async fn acr_remove(args: AcrIdentityArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr identity remove").await?;
    let (url, subscription, group) = registry_target(&session, &args.registry, context).await?;
    let registry = session.client.get(&url).await?;
    let (has_system, has_users) = current_identity(&registry);
    let (system, users) = requested_identities(&args.identities, &subscription, &group)?;
    let assigned = |id: &String| has_users.iter().any(|h| h.eq_ignore_ascii_case(id));
    if let Some(missing) = users.iter().find(|id| !assigned(id)) {
        bail!("The identity '{missing}' is not assigned to the registry '{}'.", args.registry.name);
    }
    let remaining = has_users.iter().filter(|h| !users.iter().any(|u| u.eq_ignore_ascii_case(h)));
    let user = remaining.count() > 0;
    let identity =
        identity_block(has_system && !system, user, users.into_iter().map(|id| (id, Value::Null)));
    let updated = session.client.patch(&url, &json!({ "identity": identity })).await?;
    Ok(updated.get("identity").cloned().unwrap_or(Value::Null))
}

pub async fn acr_show(args: AcrNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr identity show").await?;
    let url = registry_url(&session, &args, context).await?;
    let registry = session.client.get(&url).await?;
    Ok(registry.get("identity").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_expand_like_az() {
        let (system, users) = requested_identities(
            &[
                "[System]".into(),
                "id1".into(),
                "/subscriptions/s/resourceGroups/g2/providers/X/y/z".into(),
            ],
            "s",
            "g",
        )
        .unwrap();
        assert!(system);
        assert_eq!(
            users,
            vec![
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
                "/subscriptions/s/resourceGroups/g2/providers/X/y/z",
            ]
        );
        assert_eq!(
            assign_identity_block(&[], "s", "g").unwrap(),
            json!({"type": "SystemAssigned"})
        );
        assert_eq!(
            assign_identity_block(&["id1".into()], "s", "g").unwrap(),
            json!({"type": "UserAssigned", "userAssignedIdentities": {identity_id("s", "g", "id1"): {}}})
        );
    }

    #[test]
    fn assigning_keeps_what_the_registry_has() {
        let registry = json!({"identity": {"type": "SystemAssigned", "principalId": "p"}});
        assert_eq!(
            assign_patch(&registry, &["id1".into()], "s", "g").unwrap(),
            json!({"type": "SystemAssigned, UserAssigned",
                   "userAssignedIdentities": {identity_id("s", "g", "id1"): {}}})
        );
        let none = json!({});
        assert_eq!(
            assign_patch(&none, &["[system]".into()], "s", "g").unwrap(),
            json!({"type": "SystemAssigned"})
        );
    }
}
