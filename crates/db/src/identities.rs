//! Managed identities and federated identity credentials in the store.
//!
//! A managed identity is a principal bound to a resource (`principals.resource_key`): a user-assigned identity to
//! its own `Microsoft.ManagedIdentity/userAssignedIdentities` resource, a system-assigned one to the resource that
//! has it. Creating or changing such a resource writes the resource and its identity principals in one transaction;
//! deleting the resource (or its group) deletes them by foreign key in the same statement, so a principal never
//! outlives its resource and its tokens stop at the next check.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::models::{Principal, PrincipalKind, ResourceRecord};
use crate::queries::{principal_from, put_resource_in, PRINCIPAL_COLUMNS};
use crate::{map_unique, Db, DbError, Result};

/// A federated identity credential of a user-assigned identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredentialRecord {
    /// As created: `{identity id}/federatedIdentityCredentials/{name}`.
    pub id: String,
    /// The identity's ID (any casing; stored lower-cased as its key).
    pub identity_id: String,
    pub name: String,
    /// Compared exactly with an assertion's `iss`.
    pub issuer: String,
    /// Compared exactly with an assertion's `sub`.
    pub subject: String,
    /// An assertion's `aud` must contain one of these, exactly.
    pub audiences: Vec<String>,
    /// The JSON envelope as served.
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
}

impl FederatedCredentialRecord {
    pub fn key(&self) -> String {
        self.id.to_ascii_lowercase()
    }
}

/// What [`Db::put_resource_with_identities`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityPut {
    Created,
    Updated,
    /// The stored resource was no longer what the caller read (another request changed it first); nothing was
    /// written.
    Changed,
}

/// What [`Db::put_federated_credential`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPut {
    Created,
    Updated,
    /// The identity does not exist (any more).
    IdentityMissing,
    /// The identity already has `limit` credentials.
    LimitReached,
}

const CREDENTIAL_COLUMNS: &str =
    "id, identity_key, name, issuer, subject, audiences, body, created_at, updated_at";

fn credential_from(row: &AnyRow) -> Result<FederatedCredentialRecord> {
    let audiences: String = row.try_get("audiences")?;
    Ok(FederatedCredentialRecord {
        id: row.try_get("id")?,
        identity_id: row.try_get("identity_key")?,
        name: row.try_get("name")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        audiences: serde_json::from_str(&audiences)
            .map_err(|e| DbError::Corrupt(format!("audiences of a federated credential: {e}")))?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Db {
    /// Create or replace `resource` and, in the same transaction, create the identity principals in `add` (each
    /// bound to its `resource_id`) and delete the principals whose ids are in `remove`.
    ///
    /// `read_body` is the body the caller based its change on (`None`: the resource did not exist). When the stored
    /// body differs, nothing is written and [`IdentityPut::Changed`] is returned, so two concurrent requests cannot
    /// both create an identity for one resource. `Conflict` when `unique_name` is taken by another resource (or a
    /// concurrent request created the same resource first).
    pub async fn put_resource_with_identities(
        &self,
        resource: &ResourceRecord,
        read_body: Option<&str>,
        add: &[Principal],
        remove: &[String],
    ) -> Result<IdentityPut> {
        let mut tx = self.begin_write().await?;
        let outcome =
            write_resource_with_identities(&mut tx, resource, read_body, add, remove).await?;
        if outcome != IdentityPut::Changed {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// The managed identity of `kind` bound to the resource `resource_id` (any casing), if any.
    pub async fn identity_principal(
        &self,
        resource_id: &str,
        kind: PrincipalKind,
    ) -> Result<Option<Principal>> {
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE resource_key = $1 AND kind = $2 ORDER BY created_at"
        );
        let row = sqlx::query(&sql)
            .bind(resource_id.to_ascii_lowercase())
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(principal_from).transpose()
    }

    /// Every managed identity bound to the resource `resource_id` (any casing), oldest first.
    pub async fn identity_principals(&self, resource_id: &str) -> Result<Vec<Principal>> {
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE resource_key = $1 ORDER BY created_at, id"
        );
        let rows =
            sqlx::query(&sql).bind(resource_id.to_ascii_lowercase()).fetch_all(self.pool()).await?;
        rows.iter().map(principal_from).collect()
    }

    /// Create or replace a federated credential of an existing identity, all in one transaction: the identity must
    /// exist, (issuer, subject) must be unique on it (`Conflict` otherwise), and it may hold at most `limit`.
    pub async fn put_federated_credential(
        &self,
        credential: &FederatedCredentialRecord,
        limit: usize,
    ) -> Result<CredentialPut> {
        let identity_key = credential.identity_id.to_ascii_lowercase();
        let key = credential.key();
        let mut tx = self.begin_write().await?;
        let identity = sqlx::query("SELECT key FROM resources WHERE key = $1")
            .bind(&identity_key)
            .fetch_optional(&mut *tx)
            .await?;
        if identity.is_none() {
            return Ok(CredentialPut::IdentityMissing);
        }
        let siblings = sqlx::query("SELECT key FROM federated_credentials WHERE identity_key = $1")
            .bind(&identity_key)
            .fetch_all(&mut *tx)
            .await?;
        let mut exists = false;
        for row in &siblings {
            let sibling: String = row.try_get("key")?;
            exists |= sibling == key;
        }
        let audiences = serde_json::to_string(&credential.audiences)
            .map_err(|e| DbError::Corrupt(format!("audiences: {e}")))?;
        let conflict = |e| map_unique(e, || format!("federated credential `{}`", credential.name));
        if exists {
            sqlx::query(
                "UPDATE federated_credentials SET issuer = $1, subject = $2, audiences = $3, body = $4, updated_at = $5 \
                 WHERE key = $6",
            )
            .bind(&credential.issuer)
            .bind(&credential.subject)
            .bind(&audiences)
            .bind(&credential.body)
            .bind(&credential.updated_at)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        } else {
            if siblings.len() >= limit {
                return Ok(CredentialPut::LimitReached);
            }
            let inserted = sqlx::query(
                "INSERT INTO federated_credentials (key, id, identity_key, name, issuer, subject, audiences, body, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&key)
            .bind(&credential.id)
            .bind(&identity_key)
            .bind(&credential.name)
            .bind(&credential.issuer)
            .bind(&credential.subject)
            .bind(&audiences)
            .bind(&credential.body)
            .bind(&credential.created_at)
            .bind(&credential.updated_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // The identity was deleted by a concurrent transaction after our check.
                Err(e) if is_foreign_key_violation(&e) => {
                    return Ok(CredentialPut::IdentityMissing)
                }
                Err(e) => return Err(conflict(e)),
            }
        }
        tx.commit().await?;
        Ok(if exists { CredentialPut::Updated } else { CredentialPut::Created })
    }

    pub async fn get_federated_credential(
        &self,
        id: &str,
    ) -> Result<Option<FederatedCredentialRecord>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM federated_credentials WHERE key = $1");
        let row =
            sqlx::query(&sql).bind(id.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(credential_from).transpose()
    }

    /// The federated credentials of an identity, by name.
    pub async fn federated_credentials_of(
        &self,
        identity_id: &str,
    ) -> Result<Vec<FederatedCredentialRecord>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM federated_credentials WHERE identity_key = $1 ORDER BY key"
        );
        let rows =
            sqlx::query(&sql).bind(identity_id.to_ascii_lowercase()).fetch_all(self.pool()).await?;
        rows.iter().map(credential_from).collect()
    }

    /// Returns whether it existed.
    pub async fn delete_federated_credential(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM federated_credentials WHERE key = $1")
            .bind(id.to_ascii_lowercase())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// The body of [`Db::put_resource_with_identities`] inside the caller's transaction (which commits it unless the
/// outcome is [`IdentityPut::Changed`]), so that other writers (sites) can add their rows to the same transaction.
pub(crate) async fn write_resource_with_identities(
    tx: &mut Tx<'_>,
    resource: &ResourceRecord,
    read_body: Option<&str>,
    add: &[Principal],
    remove: &[String],
) -> Result<IdentityPut> {
    let created = match read_body {
        // Conditional, so that of two concurrent writers that read the same body only the first changes it
        // (PostgreSQL re-checks the condition after waiting for the row lock).
        Some(expected) => {
            let done = sqlx::query(
                "UPDATE resources SET body = $1, updated_at = $2 WHERE key = $3 AND body = $4",
            )
            .bind(&resource.body)
            .bind(&resource.updated_at)
            .bind(resource.key())
            .bind(expected)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(IdentityPut::Changed);
            }
            false
        }
        None => {
            let exists = sqlx::query("SELECT key FROM resources WHERE key = $1")
                .bind(resource.key())
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_some() {
                return Ok(IdentityPut::Changed);
            }
            // A concurrent creation of the same key fails here with `Conflict`, and nothing is written.
            put_resource_in(tx, resource).await?
        }
    };
    for id in remove {
        sqlx::query("DELETE FROM principals WHERE id = $1 AND resource_key IS NOT NULL")
            .bind(id.to_ascii_lowercase())
            .execute(&mut **tx)
            .await?;
    }
    for principal in add {
        insert_identity_principal(tx, principal).await?;
    }
    Ok(if created { IdentityPut::Created } else { IdentityPut::Updated })
}

async fn insert_identity_principal(tx: &mut Tx<'_>, p: &Principal) -> Result<()> {
    let resource_key = p.resource_id.as_ref().map(|r| r.to_ascii_lowercase()).ok_or_else(|| {
        DbError::Corrupt(format!("identity principal `{}` has no resource", p.id))
    })?;
    sqlx::query(
        "INSERT INTO principals (id, tenant_id, app_id, kind, display_name, resource_id, application_object_id, \
         created_at, resource_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id.to_ascii_lowercase())
    .bind(&p.tenant_id)
    .bind(p.app_id.to_ascii_lowercase())
    .bind(p.kind.as_str())
    .bind(&p.display_name)
    .bind(&p.resource_id)
    .bind(p.application_object_id.as_ref().map(|s| s.to_ascii_lowercase()))
    .bind(&p.created_at)
    .bind(resource_key)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_unique(e, || format!("principal `{}`", p.id)))?;
    Ok(())
}
