//! First start: the tenant, a default subscription, the bootstrap owner and the first signing key.
//!
//! Everything is created in one transaction, so a crash during first start leaves an empty store that the next
//! start bootstraps again. Several nodes starting together on one PostgreSQL race safely: one wins the
//! transaction, the others see its tenant and carry on.

use std::path::Path;

use anyhow::{Context, Result};
use berth_authz::role_ids;
use berth_db::{
    Db, DbError, Principal, PrincipalKind, PrincipalSecret, RoleAssignmentRecord, StoredSigningKey,
    Subscription,
};
use berth_identity::{generate_client_secret, hash_secret, SigningKey};
use serde_json::json;
use uuid::Uuid;

use crate::fsutil::write_private;
use crate::time::{now_rfc3339, now_unix};

/// Secrets made by berth are valid for two years unless said otherwise.
pub const SECRET_LIFETIME_SECS: i64 = 2 * 365 * 24 * 3600;
/// An active signing key older than this is replaced at start (the old one keeps verifying until pruned).
pub const SIGNING_KEY_MAX_AGE_SECS: i64 = 30 * 24 * 3600;
/// Retired keys are kept this long: longer than any token they signed lives.
pub const RETIRED_KEY_KEEP_SECS: i64 = 24 * 3600;

pub struct Bootstrapped {
    pub tenant_id: String,
}

/// Make sure the store is bootstrapped; on the very first start write `bootstrap.json` with the owner's secret.
pub async fn ensure(
    db: &Db,
    data_dir: &Path,
    endpoint: &str,
    ca: Option<(&Path, &str)>,
) -> Result<Bootstrapped> {
    if let Some(tenant_id) = db.tenant_id().await? {
        ensure_signing_key(db).await?;
        return Ok(Bootstrapped { tenant_id });
    }
    let tenant_id = Uuid::new_v4().to_string();
    let now = now_rfc3339();
    let subscription = Subscription {
        id: Uuid::new_v4().to_string(),
        tenant_id: tenant_id.clone(),
        display_name: "berth".into(),
        state: "Enabled".into(),
        created_at: now.clone(),
    };
    let owner = Principal {
        id: Uuid::new_v4().to_string(),
        tenant_id: tenant_id.clone(),
        app_id: Uuid::new_v4().to_string(),
        kind: PrincipalKind::ServicePrincipal,
        display_name: "berth-bootstrap-owner".into(),
        resource_id: None,
        application_object_id: Some(Uuid::new_v4().to_string()),
        created_at: now.clone(),
    };
    let secret = generate_client_secret();
    let secret_hash = tokio::task::spawn_blocking({
        let secret = secret.clone();
        move || hash_secret(&secret)
    })
    .await??;
    let stored_secret = PrincipalSecret {
        id: Uuid::new_v4().to_string(),
        principal_id: owner.id.clone(),
        secret_hash,
        hint: secret.chars().take(3).collect(),
        display_name: Some("bootstrap".into()),
        created_at: now.clone(),
        expires_at: now_unix() + SECRET_LIFETIME_SECS,
    };
    let scope = format!("/subscriptions/{}", subscription.id);
    let assignment_name = Uuid::new_v4().to_string();
    let assignment = RoleAssignmentRecord {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment_name}"),
        name: assignment_name,
        scope: scope.clone(),
        role_definition_id: format!(
            "{scope}/providers/Microsoft.Authorization/roleDefinitions/{}",
            role_ids::OWNER
        ),
        principal_id: owner.id.clone(),
        principal_type: "ServicePrincipal".into(),
        condition: None,
        condition_version: None,
        description: Some("berth bootstrap owner".into()),
        created_at: now.clone(),
        updated_at: now.clone(),
        created_by: None,
        updated_by: None,
    };
    match db.bootstrap(&tenant_id, &subscription, &owner, &stored_secret, &assignment).await {
        Ok(()) => {}
        Err(err) => {
            // Another node may have won the race; then its tenant is ours.
            if let Some(tenant_id) = db.tenant_id().await? {
                ensure_signing_key(db).await?;
                return Ok(Bootstrapped { tenant_id });
            }
            return Err(err).context("bootstrapping the metadata store");
        }
    }
    ensure_signing_key(db).await?;

    let bootstrap = json!({
        "tenantId": tenant_id,
        "subscriptionId": subscription.id,
        "clientId": owner.app_id,
        "clientSecret": secret,
        "endpoint": endpoint,
        "caCertificate": ca.map(|(_, pem)| pem),
        "caCertificateFile": ca.map(|(path, _)| path.display().to_string()),
    });
    write_private(
        &data_dir.join("bootstrap.json"),
        serde_json::to_string_pretty(&bootstrap)?.as_bytes(),
    )
    .context("writing bootstrap.json")?;
    tracing::info!(tenant = %tenant_id, subscription = %subscription.id, client_id = %owner.app_id,
        "first start: created the tenant and the bootstrap owner; credentials are in bootstrap.json");
    Ok(Bootstrapped { tenant_id })
}

/// Make sure there is an active signing key that is not too old; prune keys whose tokens have all expired.
pub async fn ensure_signing_key(db: &Db) -> Result<()> {
    let now = now_unix();
    let keys = db.signing_keys().await?;
    let fresh = keys
        .iter()
        .any(|k| k.retired_at.is_none() && now - k.created_at < SIGNING_KEY_MAX_AGE_SECS);
    if !fresh {
        rotate_signing_key(db).await?;
    }
    db.prune_signing_keys(now - RETIRED_KEY_KEEP_SECS).await?;
    Ok(())
}

/// Generate a new signing key, make it the active one and retire the others (they still verify).
pub async fn rotate_signing_key(db: &Db) -> Result<String> {
    let now = now_unix();
    let key = tokio::task::spawn_blocking(move || SigningKey::generate(now)).await??;
    let stored = StoredSigningKey {
        kid: key.kid.clone(),
        private_pem: key.private_pem,
        created_at: now,
        retired_at: None,
    };
    match db.rotate_signing_key(&stored, now).await {
        Ok(()) => Ok(stored.kid),
        Err(DbError::Conflict(_)) => Ok(stored.kid),
        Err(e) => Err(e.into()),
    }
}

pub fn to_signing_keys(stored: Vec<StoredSigningKey>) -> Vec<SigningKey> {
    stored
        .into_iter()
        .map(|k| SigningKey {
            kid: k.kid,
            private_pem: k.private_pem,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect()
}
