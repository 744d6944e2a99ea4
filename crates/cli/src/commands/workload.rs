//! `berth identity endpoint create|show|rotate|delete`: the workload endpoints of a resource, through its
//! `{resource}/providers/Berth.ManagedIdentity/workloadEndpoints/default` resource. Printed with `properties`
//! flattened, so `--query identityHeader -o tsv` gives the secret.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{confirm, Context};
use crate::args::{IdentityEndpointArgs, IdentityEndpointDeleteArgs};
use crate::arm::{flatten_properties, with_api_version};

/// berth's own api-version for its extension resource.
pub const ENDPOINT_API: &str = "2026-01-01";

fn endpoint_path(args: &IdentityEndpointArgs) -> Result<String> {
    let resource = args.resource.trim().trim_end_matches('/');
    if !resource.starts_with("/subscriptions/") || resource.contains('?') {
        bail!(
            "--resource must be a resource ID (/subscriptions/.../providers/...), not '{}'",
            args.resource
        );
    }
    Ok(with_api_version(
        &format!("{resource}/providers/Berth.ManagedIdentity/workloadEndpoints/default"),
        ENDPOINT_API,
    ))
}

pub async fn create(args: IdentityEndpointArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity endpoint create").await?;
    let answer = session.client.put(&endpoint_path(&args)?, &json!({})).await?;
    Ok(flatten_properties(answer))
}

pub async fn show(args: IdentityEndpointArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity endpoint show").await?;
    Ok(flatten_properties(session.client.get(&endpoint_path(&args)?).await?))
}

pub async fn rotate(args: IdentityEndpointArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("identity endpoint rotate").await?;
    let path = endpoint_path(&args)?.replacen("/default?", "/default/rotateHeader?", 1);
    Ok(flatten_properties(session.client.post(&path, &json!({})).await?))
}

pub async fn delete(args: IdentityEndpointDeleteArgs, context: &Context<'_>) -> Result<()> {
    if !confirm("Are you sure you want to perform this operation?", args.confirm.yes)? {
        return Ok(());
    }
    let session = context.session("identity endpoint delete").await?;
    session.client.delete(&endpoint_path(&args.endpoint)?).await?;
    Ok(())
}
