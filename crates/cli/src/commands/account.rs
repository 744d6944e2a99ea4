//! `berth login`, `berth logout` and `berth account show|list|set`.

use anyhow::{bail, Context as _, Result};
use berth_client::Client;
use serde_json::Value;

use super::{Context, UsageError};
use crate::args::LoginArgs;
use crate::arm::{list_all, SUBSCRIPTIONS_API};
use crate::profile::{Profile, Subscription, UnknownSubscription};
use crate::session::{trusted_ca_pem, MANAGEMENT_SCOPE};

/// Logs in as a service principal: token, subscription list, then the stored profile. Prints the
/// accounts as `az login` does.
pub async fn login(args: LoginArgs, context: &Context<'_>) -> Result<Value> {
    let stored_ca = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the CA file `{}`", path.display()))?,
        ),
        None => None,
    };
    let ca_pem = trusted_ca_pem(stored_ca.as_deref())?;
    let client = Client::new(&args.server, ca_pem.as_deref())?;
    let token = client
        .client_credentials_token(&args.tenant, &args.username, &args.password, MANAGEMENT_SCOPE)
        .await?;
    let client =
        client.with_bearer_token(token.access_token.clone()).with_header("CommandName", "login");
    let listed =
        list_all(&client, &format!("/subscriptions?api-version={SUBSCRIPTIONS_API}")).await?;
    let subscriptions: Vec<Subscription> =
        listed.iter().filter_map(subscription_from_json).collect();
    if subscriptions.is_empty() && !args.allow_no_subscriptions {
        bail!("No subscriptions found for {}.", args.username);
    }
    // az makes the first enabled subscription the default.
    let default_subscription = subscriptions
        .iter()
        .find(|s| s.state.eq_ignore_ascii_case("enabled"))
        .or_else(|| subscriptions.first())
        .map(|s| s.subscription_id.clone());
    let profile = Profile {
        server: client.base_url().to_owned(),
        tenant_id: args.tenant,
        client_id: args.username,
        client_secret: args.password,
        ca_pem: stored_ca,
        subscriptions,
        default_subscription,
    };
    context.config_dir.save_profile(&profile)?;
    context.config_dir.save_token(&profile, &token)?;
    Ok(accounts_json(&profile))
}

/// Reads one entry of `GET /subscriptions`; entries without an ID are skipped.
fn subscription_from_json(entry: &Value) -> Option<Subscription> {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    let subscription_id = text("subscriptionId")
        .or_else(|| text("id").and_then(|id| id.rsplit('/').next().map(str::to_owned)))
        .filter(|id| !id.is_empty())?;
    Some(Subscription {
        display_name: text("displayName").unwrap_or_else(|| subscription_id.clone()),
        state: text("state").unwrap_or_else(|| "Enabled".to_owned()),
        tenant_id: text("tenantId").unwrap_or_default(),
        managed_by_tenants: entry
            .get("managedByTenants")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        subscription_id,
    })
}

fn accounts_json(profile: &Profile) -> Value {
    Value::Array(
        profile.subscriptions.iter().map(|s| profile.account_json(s, "cloudName")).collect(),
    )
}

pub fn logout(context: &Context<'_>) -> Result<()> {
    if !context.config_dir.clear()? {
        bail!("There are no active accounts.");
    }
    Ok(())
}

pub fn show(context: &Context<'_>) -> Result<Value> {
    let profile = context.config_dir.require_profile()?;
    let subscription = profile.subscription(context.global.subscription.as_deref())?;
    Ok(profile.account_json(&subscription, "environmentName"))
}

pub fn list(context: &Context<'_>) -> Result<Value> {
    let profile = context.config_dir.require_profile()?;
    Ok(accounts_json(&profile))
}

pub fn set(context: &Context<'_>) -> Result<()> {
    let Some(wanted) = context.global.subscription.as_deref() else {
        return Err(UsageError(
            "the following arguments are required: --subscription/-s".to_owned(),
        )
        .into());
    };
    let mut profile = context.config_dir.require_profile()?;
    let chosen = profile.subscription(Some(wanted))?.subscription_id;
    // Only a subscription the login listed can become the default.
    if !profile.subscriptions.iter().any(|s| s.subscription_id == chosen) {
        return Err(UnknownSubscription(wanted.to_owned()).into());
    }
    profile.default_subscription = Some(chosen);
    context.config_dir.save_profile(&profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscription_entries_are_read_like_az() {
        let entry = json!({"id":"/subscriptions/abc","subscriptionId":"abc","displayName":"Dev","state":"Enabled","tenantId":"t","managedByTenants":[]});
        let subscription = subscription_from_json(&entry).expect("subscription");
        assert_eq!(
            (subscription.subscription_id.as_str(), subscription.display_name.as_str()),
            ("abc", "Dev")
        );
        let only_id =
            subscription_from_json(&json!({"id": "/subscriptions/xyz"})).expect("subscription");
        assert_eq!(only_id.subscription_id, "xyz");
        assert!(subscription_from_json(&json!({"displayName": "no id"})).is_none());
    }
}
