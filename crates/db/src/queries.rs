//! The query layer: one method per question the server asks, the same SQL for SQLite and PostgreSQL.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::models::*;
use crate::{map_unique, Db, DbError, Result};

pub(crate) fn principal_from(row: &AnyRow) -> Result<Principal> {
    let kind: String = row.try_get("kind")?;
    Ok(Principal {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        app_id: row.try_get("app_id")?,
        kind: PrincipalKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("principal kind `{kind}`")))?,
        display_name: row.try_get("display_name")?,
        resource_id: row.try_get("resource_id")?,
        application_object_id: row.try_get("application_object_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn resource_from(row: &AnyRow) -> Result<ResourceRecord> {
    Ok(ResourceRecord {
        id: row.try_get("id")?,
        subscription_id: row.try_get("subscription_id")?,
        group_key: row.try_get("group_key")?,
        type_key: row.try_get("type_key")?,
        name: row.try_get("name")?,
        unique_name: row.try_get("unique_name")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn group_from(row: &AnyRow) -> Result<ResourceRecord> {
    let key: String = row.try_get("key")?;
    Ok(ResourceRecord {
        id: row.try_get("id")?,
        subscription_id: row.try_get("subscription_id")?,
        group_key: key,
        type_key: "microsoft.resources/resourcegroups".into(),
        name: row.try_get("name")?,
        unique_name: None,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn assignment_from(row: &AnyRow) -> Result<RoleAssignmentRecord> {
    Ok(RoleAssignmentRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        role_definition_id: row.try_get("role_definition_id")?,
        principal_id: row.try_get("principal_id")?,
        principal_type: row.try_get("principal_type")?,
        condition: row.try_get("condition")?,
        condition_version: row.try_get("condition_version")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// `LIKE` pattern for "key or anything below it"; ARM keys never contain `%` or `_` wildcards we care about
/// except `_`, which we escape.
fn below(key: &str) -> String {
    format!("{}/%", key.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

pub(crate) const PRINCIPAL_COLUMNS: &str =
    "id, tenant_id, app_id, kind, display_name, resource_id, application_object_id, created_at";
const RESOURCE_COLUMNS: &str =
    "id, subscription_id, group_key, type_key, name, unique_name, body, created_at, updated_at";
const ASSIGNMENT_COLUMNS: &str =
    "id, name, scope, role_definition_id, principal_id, principal_type, condition, \
     condition_version, description, created_at, updated_at, created_by, updated_by";

impl Db {
    // ---- settings -------------------------------------------------------------------------------------------

    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    // ---- tenant and subscriptions ---------------------------------------------------------------------------

    /// Create the tenant, its first subscription and the bootstrap principal with its secret and Owner
    /// assignment, all or nothing. Marks the store as bootstrapped.
    pub async fn bootstrap(
        &self,
        tenant_id: &str,
        subscription: &Subscription,
        owner: &Principal,
        secret: &PrincipalSecret,
        owner_assignment: &RoleAssignmentRecord,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, $2)")
            .bind(tenant_id)
            .bind(&subscription.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, tenant_id, display_name, state, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&subscription.id)
        .bind(&subscription.tenant_id)
        .bind(&subscription.display_name)
        .bind(&subscription.state)
        .bind(&subscription.created_at)
        .execute(&mut *tx)
        .await?;
        insert_principal(&mut tx, owner).await?;
        insert_secret(&mut tx, secret).await?;
        insert_assignment(&mut tx, owner_assignment).await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES ('tenant_id', $1)")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn tenant_id(&self) -> Result<Option<String>> {
        self.setting("tenant_id").await
    }

    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>> {
        let rows = sqlx::query("SELECT id, tenant_id, display_name, state, created_at FROM subscriptions ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Subscription {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    display_name: r.try_get("display_name")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>> {
        Ok(self.list_subscriptions().await?.into_iter().find(|s| s.id.eq_ignore_ascii_case(id)))
    }

    // ---- principals and secrets -----------------------------------------------------------------------------

    /// Create a principal, optionally with a secret, in one transaction.
    pub async fn create_principal(
        &self,
        principal: &Principal,
        secret: Option<&PrincipalSecret>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_principal(&mut tx, principal).await?;
        if let Some(secret) = secret {
            insert_secret(&mut tx, secret).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_principal(&self, id: &str) -> Result<Option<Principal>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = $1");
        let row =
            sqlx::query(&sql).bind(id.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(principal_from).transpose()
    }

    pub async fn get_principal_by_app_id(&self, app_id: &str) -> Result<Option<Principal>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE app_id = $1");
        let row =
            sqlx::query(&sql).bind(app_id.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(principal_from).transpose()
    }

    pub async fn get_principal_by_application_object(
        &self,
        object_id: &str,
    ) -> Result<Option<Principal>> {
        let sql =
            format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE application_object_id = $1");
        let row = sqlx::query(&sql)
            .bind(object_id.to_ascii_lowercase())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(principal_from).transpose()
    }

    pub async fn list_principals_by_display_name(
        &self,
        display_name: &str,
    ) -> Result<Vec<Principal>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE display_name = $1 ORDER BY created_at");
        let rows = sqlx::query(&sql).bind(display_name).fetch_all(self.pool()).await?;
        rows.iter().map(principal_from).collect()
    }

    /// Remove a principal and its secrets. Returns whether it existed.
    pub async fn delete_principal(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM principal_secrets WHERE principal_id = $1")
            .bind(id.to_ascii_lowercase())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM principals WHERE id = $1")
            .bind(id.to_ascii_lowercase())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn add_secret(&self, secret: &PrincipalSecret) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_secret(&mut tx, secret).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn secrets_of(&self, principal_id: &str) -> Result<Vec<PrincipalSecret>> {
        let rows = sqlx::query(
            "SELECT id, principal_id, secret_hash, hint, display_name, created_at, expires_at \
             FROM principal_secrets WHERE principal_id = $1 ORDER BY created_at",
        )
        .bind(principal_id.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PrincipalSecret {
                    id: r.try_get("id")?,
                    principal_id: r.try_get("principal_id")?,
                    secret_hash: r.try_get("secret_hash")?,
                    hint: r.try_get("hint")?,
                    display_name: r.try_get("display_name")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    // ---- signing keys ---------------------------------------------------------------------------------------

    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let rows = sqlx::query("SELECT kid, private_pem, created_at, retired_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredSigningKey {
                    kid: r.try_get("kid")?,
                    private_pem: r.try_get("private_pem")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Add a new signing key and retire the previous active ones at `now`, atomically.
    pub async fn rotate_signing_key(&self, key: &StoredSigningKey, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, private_pem, created_at, retired_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.private_pem)
            .bind(key.created_at)
            .bind(key.retired_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, || format!("signing key `{}`", key.kid)))?;
        tx.commit().await?;
        Ok(())
    }

    /// Forget keys retired before `cutoff` (their tokens have all expired).
    pub async fn prune_signing_keys(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(cutoff)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    // ---- resource groups ------------------------------------------------------------------------------------

    /// Create or replace a resource group. Returns true when it was created.
    pub async fn put_resource_group(&self, group: &ResourceRecord) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT key FROM resource_groups WHERE key = $1")
            .bind(group.key())
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            sqlx::query("UPDATE resource_groups SET body = $1, updated_at = $2 WHERE key = $3")
                .bind(&group.body)
                .bind(&group.updated_at)
                .bind(group.key())
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO resource_groups (key, id, subscription_id, name, body, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(group.key())
            .bind(&group.id)
            .bind(&group.subscription_id)
            .bind(&group.name)
            .bind(&group.body)
            .bind(&group.created_at)
            .bind(&group.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, || format!("resource group `{}`", group.name)))?;
        }
        tx.commit().await?;
        Ok(existing.is_none())
    }

    pub async fn get_resource_group(&self, key: &str) -> Result<Option<ResourceRecord>> {
        let row = sqlx::query(
            "SELECT key, id, subscription_id, name, body, created_at, updated_at FROM resource_groups WHERE key = $1",
        )
        .bind(key.to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(group_from).transpose()
    }

    pub async fn list_resource_groups(&self, subscription_id: &str) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT key, id, subscription_id, name, body, created_at, updated_at FROM resource_groups \
             WHERE subscription_id = $1 ORDER BY key",
        )
        .bind(subscription_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(group_from).collect()
    }

    /// Delete a group with every resource in it and every role assignment scoped at or below it, atomically.
    /// Returns the deleted resources (so their identities can be removed too), or `None` if no such group.
    pub async fn delete_resource_group(&self, key: &str) -> Result<Option<Vec<ResourceRecord>>> {
        let key = key.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT key FROM resource_groups WHERE key = $1")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE group_key = $1");
        let rows = sqlx::query(&sql).bind(&key).fetch_all(&mut *tx).await?;
        let removed = rows.iter().map(resource_from).collect::<Result<Vec<_>>>()?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE scope_key = $1 OR scope_key LIKE $2 ESCAPE '\\'",
        )
        .bind(&key)
        .bind(below(&key))
        .execute(&mut *tx)
        .await?;
        purge_registry_contents(&mut tx, &removed).await?;
        sqlx::query("DELETE FROM resources WHERE group_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM resource_groups WHERE key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    // ---- resources ------------------------------------------------------------------------------------------

    /// Create or replace a resource. Returns true when it was created; `Conflict` when `unique_name` is taken by
    /// another resource.
    pub async fn put_resource(&self, resource: &ResourceRecord) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        match put_resource_in(&mut tx, resource).await {
            Ok(created) => {
                tx.commit().await?;
                Ok(created)
            }
            Err(e) => {
                // Release SQLite's write lock before answering: a dropped transaction rolls back only later, and
                // the caller's next write (on another connection) would find the database locked.
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    pub async fn get_resource(&self, key: &str) -> Result<Option<ResourceRecord>> {
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE key = $1");
        let row =
            sqlx::query(&sql).bind(key.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(resource_from).transpose()
    }

    pub async fn get_resource_by_unique_name(
        &self,
        unique_name: &str,
    ) -> Result<Option<ResourceRecord>> {
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE unique_name = $1");
        let row = sqlx::query(&sql).bind(unique_name).fetch_optional(self.pool()).await?;
        row.as_ref().map(resource_from).transpose()
    }

    /// Resources of a subscription, optionally narrowed to one group (by key) and one type (lower-cased).
    pub async fn list_resources(
        &self,
        subscription_id: &str,
        group_key: Option<&str>,
        type_key: Option<&str>,
    ) -> Result<Vec<ResourceRecord>> {
        let mut sql =
            format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE subscription_id = $1");
        let mut binds = vec![subscription_id.to_string()];
        if let Some(g) = group_key {
            binds.push(g.to_ascii_lowercase());
            sql.push_str(&format!(" AND group_key = ${}", binds.len()));
        }
        if let Some(t) = type_key {
            binds.push(t.to_ascii_lowercase());
            sql.push_str(&format!(" AND type_key = ${}", binds.len()));
        }
        sql.push_str(" ORDER BY key");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(resource_from).collect()
    }

    /// Delete a resource, its child resources and the role assignments scoped at or below it. Returns the
    /// deleted records (the resource first), empty if it did not exist.
    pub async fn delete_resource(&self, key: &str) -> Result<Vec<ResourceRecord>> {
        let key = key.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE key = $1 OR key LIKE $2 ESCAPE '\\' ORDER BY key");
        let rows = sqlx::query(&sql).bind(&key).bind(below(&key)).fetch_all(&mut *tx).await?;
        let removed = rows.iter().map(resource_from).collect::<Result<Vec<_>>>()?;
        if removed.is_empty() {
            return Ok(removed);
        }
        sqlx::query(
            "DELETE FROM role_assignments WHERE scope_key = $1 OR scope_key LIKE $2 ESCAPE '\\'",
        )
        .bind(&key)
        .bind(below(&key))
        .execute(&mut *tx)
        .await?;
        purge_registry_contents(&mut tx, &removed).await?;
        sqlx::query("DELETE FROM resources WHERE key = $1 OR key LIKE $2 ESCAPE '\\'")
            .bind(&key)
            .bind(below(&key))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    // ---- role assignments -----------------------------------------------------------------------------------

    pub async fn create_role_assignment(&self, assignment: &RoleAssignmentRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_assignment(&mut tx, assignment).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn role_assignments_of(
        &self,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignmentRecord>> {
        let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE principal_id = $1 ORDER BY key");
        let rows = sqlx::query(&sql)
            .bind(principal_id.to_ascii_lowercase())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(assignment_from).collect()
    }

    pub async fn role_assignments_at(&self, scope: &str) -> Result<Vec<RoleAssignmentRecord>> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE scope_key = $1 ORDER BY key"
        );
        let rows =
            sqlx::query(&sql).bind(scope.to_ascii_lowercase()).fetch_all(self.pool()).await?;
        rows.iter().map(assignment_from).collect()
    }

    pub async fn delete_role_assignment(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM role_assignments WHERE key = $1")
            .bind(id.to_ascii_lowercase())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The `unique_name` prefix of registries; their content rows are keyed by the lower-cased registry name.
const REGISTRY_UNIQUE_PREFIX: &str = "registry:";

/// Remove the repositories, manifests, tags, blob links and upload sessions of every registry among `removed`,
/// in the caller's transaction: a registry created later under the same name must start empty, and the blobs
/// only the deleted registry referenced become garbage for the collector.
async fn purge_registry_contents(tx: &mut Tx<'_>, removed: &[ResourceRecord]) -> Result<()> {
    let registries = removed
        .iter()
        .filter_map(|r| r.unique_name.as_deref()?.strip_prefix(REGISTRY_UNIQUE_PREFIX));
    for registry in registries {
        for table in [
            "tags",
            "manifest_references",
            "manifests",
            "repository_blobs",
            "uploads",
            "repositories",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE registry = $1"))
                .bind(registry)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

async fn insert_principal(tx: &mut Tx<'_>, p: &Principal) -> Result<()> {
    sqlx::query(
        "INSERT INTO principals (id, tenant_id, app_id, kind, display_name, resource_id, application_object_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.id.to_ascii_lowercase())
    .bind(&p.tenant_id)
    .bind(p.app_id.to_ascii_lowercase())
    .bind(p.kind.as_str())
    .bind(&p.display_name)
    .bind(&p.resource_id)
    .bind(p.application_object_id.as_ref().map(|s| s.to_ascii_lowercase()))
    .bind(&p.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_unique(e, || format!("principal `{}`", p.id)))?;
    Ok(())
}

async fn insert_secret(tx: &mut Tx<'_>, s: &PrincipalSecret) -> Result<()> {
    sqlx::query(
        "INSERT INTO principal_secrets (id, principal_id, secret_hash, hint, display_name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id)
    .bind(s.principal_id.to_ascii_lowercase())
    .bind(&s.secret_hash)
    .bind(&s.hint)
    .bind(&s.display_name)
    .bind(&s.created_at)
    .bind(s.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_assignment(tx: &mut Tx<'_>, a: &RoleAssignmentRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_assignments (key, id, name, scope, scope_key, role_definition_id, principal_id, \
         principal_type, condition, condition_version, description, created_at, updated_at, created_by, updated_by, \
         role_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(a.id.to_ascii_lowercase())
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.scope)
    .bind(a.scope.to_ascii_lowercase())
    .bind(&a.role_definition_id)
    .bind(a.principal_id.to_ascii_lowercase())
    .bind(&a.principal_type)
    .bind(&a.condition)
    .bind(&a.condition_version)
    .bind(&a.description)
    .bind(&a.created_at)
    .bind(&a.updated_at)
    .bind(&a.created_by)
    .bind(&a.updated_by)
    .bind(crate::rbac::role_key(&a.role_definition_id))
    .execute(&mut **tx)
    .await
    .map_err(|e| map_unique(e, || format!("role assignment `{}`", a.name)))?;
    Ok(())
}

pub(crate) async fn put_resource_in(tx: &mut Tx<'_>, r: &ResourceRecord) -> Result<bool> {
    let key = r.key();
    let existing = sqlx::query("SELECT key FROM resources WHERE key = $1")
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
    if existing.is_some() {
        sqlx::query("UPDATE resources SET body = $1, updated_at = $2 WHERE key = $3")
            .bind(&r.body)
            .bind(&r.updated_at)
            .bind(&key)
            .execute(&mut **tx)
            .await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO resources (key, id, subscription_id, group_key, type_key, name, unique_name, body, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&key)
    .bind(&r.id)
    .bind(&r.subscription_id)
    .bind(r.group_key.to_ascii_lowercase())
    .bind(r.type_key.to_ascii_lowercase())
    .bind(&r.name)
    .bind(&r.unique_name)
    .bind(&r.body)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_unique(e, || format!("resource name `{}`", r.name)))?;
    Ok(true)
}
