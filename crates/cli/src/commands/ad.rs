//! `berth ad sp create-for-rbac`: an application, its service principal and a client secret, through
//! berth's Graph subset with the same bearer token. The secret is shown once; berth keeps its hash.

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::Context;
use crate::args::CreateForRbacArgs;

pub async fn create_for_rbac(args: CreateForRbacArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("ad sp create-for-rbac").await?;
    let display_name = match args.name {
        Some(name) => name,
        None => default_display_name()?,
    };
    let client = &session.client;
    let application =
        client.post("/v1.0/applications", &json!({"displayName": display_name})).await?;
    let object_id = field(&application, "id", "application")?;
    let app_id = field(&application, "appId", "application")?;
    client.post("/v1.0/servicePrincipals", &json!({"appId": app_id})).await?;
    let password_path =
        format!("/v1.0/applications/{}/addPassword", berth_client::encode_path_segment(&object_id));
    let password = client
        .post(&password_path, &json!({"passwordCredential": {"displayName": "rbac"}}))
        .await?;
    let secret = field(&password, "secretText", "password credential")?;
    context.warn(
        "The output includes credentials that you must protect. Be sure that you do not include these credentials \
         in your code or check the credentials into your source control.",
    );
    let shown_name =
        application.get("displayName").and_then(Value::as_str).unwrap_or(&display_name);
    Ok(json!({
        "appId": app_id,
        "displayName": shown_name,
        "password": secret,
        "tenant": session.profile.tenant_id,
    }))
}

fn field(value: &Value, key: &str, what: &str) -> Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the server's {what} has no `{key}`"))
}

/// az names unnamed principals `azure-cli-<UTC timestamp>`; berth says `berth-cli-`.
fn default_display_name() -> Result<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    Ok(format!("berth-cli-{}", time::OffsetDateTime::now_utc().format(&format)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_has_a_timestamp() {
        let name = default_display_name().expect("name");
        assert!(name.starts_with("berth-cli-20"), "{name}");
        assert_eq!(name.len(), "berth-cli-2026-01-01-00-00-00".len());
    }

    #[test]
    fn missing_fields_are_reported() {
        let error = field(&json!({}), "appId", "application").expect_err("missing");
        assert_eq!(error.to_string(), "the server's application has no `appId`");
    }
}
