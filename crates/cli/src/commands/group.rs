//! `berth group create|show|list|delete`: resource groups, with the requests az sends.

use anyhow::Result;
use berth_client::Method;
use serde_json::{json, Value};

use super::{confirm, Context};
use crate::args::{GroupCreateArgs, GroupDeleteArgs, GroupNameArgs};
use crate::arm::{list_all, resource_group_path, with_api_version, RESOURCE_GROUPS_API};

pub async fn create(args: GroupCreateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("group create").await?;
    let subscription = context.subscription_id(&session)?;
    let mut body = json!({"location": args.location});
    if let Some(tags) = args.tags.to_json() {
        body["tags"] = tags;
    }
    let path =
        with_api_version(&resource_group_path(&subscription, &args.name), RESOURCE_GROUPS_API);
    Ok(session.client.put(&path, &body).await?)
}

pub async fn show(args: GroupNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("group show").await?;
    let subscription = context.subscription_id(&session)?;
    let path =
        with_api_version(&resource_group_path(&subscription, &args.name), RESOURCE_GROUPS_API);
    Ok(session.client.get(&path).await?)
}

pub async fn list(context: &Context<'_>) -> Result<Value> {
    let session = context.session("group list").await?;
    let subscription = context.subscription_id(&session)?;
    let path = format!(
        "/subscriptions/{}/resourcegroups?api-version={RESOURCE_GROUPS_API}",
        berth_client::encode_path_segment(&subscription)
    );
    Ok(Value::Array(list_all(&session.client, &path).await?))
}

pub async fn delete(args: GroupDeleteArgs, context: &Context<'_>) -> Result<()> {
    if !confirm("Are you sure you want to perform this operation?", args.confirm.yes)? {
        return Ok(());
    }
    let session = context.session("group delete").await?;
    let subscription = context.subscription_id(&session)?;
    let path =
        with_api_version(&resource_group_path(&subscription, &args.name), RESOURCE_GROUPS_API);
    if args.no_wait {
        session.client.request(Method::DELETE, &path, None).await?;
    } else {
        session.client.delete(&path).await?;
    }
    Ok(())
}
