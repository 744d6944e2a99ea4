//! RBAC storage: custom role definitions, role assignment writes that keep ARM's uniqueness rules in one
//! transaction, queries over the scope chain, and the audit trail of authorization decisions.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::models::RoleAssignmentRecord;
use crate::{map_unique, Db, Result};

/// A stored custom role. `body` is its JSON definition (roleName, description, assignableScopes, permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRoleRecord {
    /// The role's GUID, lower-case.
    pub name: String,
    pub role_name: String,
    /// The scope it was created at (the `{scope}` of its URL).
    pub scope: String,
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// The outcome of deleting a custom role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleDeletion {
    Deleted(CustomRoleRecord),
    NotFound,
    /// Refused: this many role assignments still use the role.
    InUse(u64),
}

/// The outcome of writing a role assignment under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentWrite {
    /// A new assignment.
    Created(RoleAssignmentRecord),
    /// The name existed with the same principal, role and scope; its description and condition were replaced.
    Updated(RoleAssignmentRecord),
    /// The name exists with another principal, role or scope (ARM's `RoleAssignmentUpdateNotPermitted`).
    UpdateNotPermitted(RoleAssignmentRecord),
    /// Another name already gives this principal this role at this scope (ARM's `RoleAssignmentExists`).
    Exists(RoleAssignmentRecord),
}

/// One audited authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub principal_id: String,
    /// `arm` or `registry`.
    pub surface: String,
    pub action: String,
    pub scope: String,
    pub repository: Option<String>,
    pub allowed: bool,
    pub assignment_id: Option<String>,
    pub role_name: Option<String>,
}

/// Which audit events to read; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub principal_id: Option<String>,
    /// Events at this scope or below it.
    pub scope: Option<String>,
    pub allowed: Option<bool>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    pub limit: i64,
}

/// The role GUID of a role definition ID (its last segment), lower-case.
pub fn role_key(role_definition_id: &str) -> String {
    role_definition_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

const ROLE_COLUMNS: &str =
    "name, role_name, scope, body, created_at, updated_at, created_by, updated_by";
const ASSIGNMENT_COLUMNS: &str =
    "id, name, scope, role_definition_id, principal_id, principal_type, condition, \
     condition_version, description, created_at, updated_at, created_by, updated_by";
const AUDIT_COLUMNS: &str =
    "id, at, principal_id, surface, action, scope, repository, allowed, assignment_id, role_name";

fn role_from(row: &AnyRow) -> Result<CustomRoleRecord> {
    Ok(CustomRoleRecord {
        name: row.try_get("name")?,
        role_name: row.try_get("role_name")?,
        scope: row.try_get("scope")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
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

fn audit_from(row: &AnyRow) -> Result<AuditEvent> {
    let allowed: i64 = row.try_get("allowed")?;
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        principal_id: row.try_get("principal_id")?,
        surface: row.try_get("surface")?,
        action: row.try_get("action")?,
        scope: row.try_get("scope")?,
        repository: row.try_get("repository")?,
        allowed: allowed != 0,
        assignment_id: row.try_get("assignment_id")?,
        role_name: row.try_get("role_name")?,
    })
}

/// `LIKE` pattern for "anything below `key`", with LIKE's wildcards escaped.
fn below(key: &str) -> String {
    format!("{}/%", key.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

impl Db {
    // ---- custom roles ---------------------------------------------------------------------------------------

    /// Create or replace a custom role. Returns true when created; `Conflict` when another role has its name.
    pub async fn put_custom_role(&self, role: &CustomRoleRecord) -> Result<bool> {
        let name = role.name.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT name FROM role_definitions WHERE name = $1")
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
        let conflict = || format!("role name `{}`", role.role_name);
        if existing.is_some() {
            sqlx::query(
                "UPDATE role_definitions SET role_name = $1, role_name_key = $2, body = $3, updated_at = $4, \
                 updated_by = $5 WHERE name = $6",
            )
            .bind(&role.role_name)
            .bind(role.role_name.to_lowercase())
            .bind(&role.body)
            .bind(&role.updated_at)
            .bind(&role.updated_by)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, conflict))?;
        } else {
            sqlx::query(
                "INSERT INTO role_definitions (name, role_name, role_name_key, scope, body, created_at, updated_at, \
                 created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&name)
            .bind(&role.role_name)
            .bind(role.role_name.to_lowercase())
            .bind(&role.scope)
            .bind(&role.body)
            .bind(&role.created_at)
            .bind(&role.updated_at)
            .bind(&role.created_by)
            .bind(&role.updated_by)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, conflict))?;
        }
        tx.commit().await?;
        Ok(existing.is_none())
    }

    pub async fn get_custom_role(&self, guid: &str) -> Result<Option<CustomRoleRecord>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions WHERE name = $1");
        let row =
            sqlx::query(&sql).bind(guid.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(role_from).transpose()
    }

    /// A custom role by its name, case-insensitively.
    pub async fn get_custom_role_by_name(
        &self,
        role_name: &str,
    ) -> Result<Option<CustomRoleRecord>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions WHERE role_name_key = $1");
        let row =
            sqlx::query(&sql).bind(role_name.to_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(role_from).transpose()
    }

    pub async fn list_custom_roles(&self) -> Result<Vec<CustomRoleRecord>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions ORDER BY role_name_key");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(role_from).collect()
    }

    /// The custom roles among `guids` (unknown GUIDs are skipped).
    pub async fn custom_roles_by_guids(&self, guids: &[String]) -> Result<Vec<CustomRoleRecord>> {
        if guids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=guids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {ROLE_COLUMNS} FROM role_definitions WHERE name IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for guid in guids {
            query = query.bind(guid.to_ascii_lowercase());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(role_from).collect()
    }

    /// Delete a custom role unless an assignment uses it; the check and the delete are one transaction.
    pub async fn delete_custom_role(&self, guid: &str) -> Result<RoleDeletion> {
        let guid = guid.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions WHERE name = $1");
        let Some(row) = sqlx::query(&sql).bind(&guid).fetch_optional(&mut *tx).await? else {
            return Ok(RoleDeletion::NotFound);
        };
        let role = role_from(&row)?;
        let in_use: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM role_assignments WHERE role_key = $1")
                .bind(&guid)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if in_use > 0 {
            return Ok(RoleDeletion::InUse(in_use as u64));
        }
        sqlx::query("DELETE FROM role_definitions WHERE name = $1")
            .bind(&guid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RoleDeletion::Deleted(role))
    }

    // ---- role assignments -----------------------------------------------------------------------------------

    /// Write an assignment under its name with ARM's rules, in one transaction: a new name is created unless the
    /// same (scope, principal, role) exists under another name; an existing name keeps its principal, role and
    /// scope and may change only its description and condition.
    pub async fn put_role_assignment(&self, a: &RoleAssignmentRecord) -> Result<AssignmentWrite> {
        let key = a.id.to_ascii_lowercase();
        let scope_key = a.scope.to_ascii_lowercase();
        let principal = a.principal_id.to_ascii_lowercase();
        let role = role_key(&a.role_definition_id);
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE key = $1");
        if let Some(row) = sqlx::query(&sql).bind(&key).fetch_optional(&mut *tx).await? {
            let existing = assignment_from(&row)?;
            let same = existing.principal_id.eq_ignore_ascii_case(&principal)
                && existing.scope.eq_ignore_ascii_case(&a.scope)
                && role_key(&existing.role_definition_id) == role;
            if !same {
                return Ok(AssignmentWrite::UpdateNotPermitted(existing));
            }
            sqlx::query(
                "UPDATE role_assignments SET description = $1, condition = $2, condition_version = $3, \
                 principal_type = $4, updated_at = $5, updated_by = $6 WHERE key = $7",
            )
            .bind(&a.description)
            .bind(&a.condition)
            .bind(&a.condition_version)
            .bind(&a.principal_type)
            .bind(&a.updated_at)
            .bind(&a.updated_by)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(&sql).bind(&key).fetch_one(&mut *tx).await?;
            let updated = assignment_from(&row)?;
            tx.commit().await?;
            return Ok(AssignmentWrite::Updated(updated));
        }
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE scope_key = $1 AND principal_id = $2 AND role_key = $3"
        );
        if let Some(row) = sqlx::query(&sql)
            .bind(&scope_key)
            .bind(&principal)
            .bind(&role)
            .fetch_optional(&mut *tx)
            .await?
        {
            return Ok(AssignmentWrite::Exists(assignment_from(&row)?));
        }
        // A concurrent writer that took the same triple between the check and the insert makes this a `Conflict`.
        crate::queries::insert_assignment(&mut tx, a).await?;
        tx.commit().await?;
        let mut created = a.clone();
        created.principal_id = principal;
        Ok(AssignmentWrite::Created(created))
    }

    pub async fn get_role_assignment(&self, id: &str) -> Result<Option<RoleAssignmentRecord>> {
        let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE key = $1");
        let row =
            sqlx::query(&sql).bind(id.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(assignment_from).transpose()
    }

    /// Delete an assignment by its ID and return it.
    pub async fn take_role_assignment(&self, id: &str) -> Result<Option<RoleAssignmentRecord>> {
        let key = id.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE key = $1");
        let Some(row) = sqlx::query(&sql).bind(&key).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let record = assignment_from(&row)?;
        sqlx::query("DELETE FROM role_assignments WHERE key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    /// Assignments whose scope is one of `scopes` (compared case-insensitively), e.g. a scope and its ancestors.
    pub async fn role_assignments_at_scopes(
        &self,
        scopes: &[String],
    ) -> Result<Vec<RoleAssignmentRecord>> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=scopes.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE scope_key IN ({}) ORDER BY key",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for scope in scopes {
            query = query.bind(scope.to_ascii_lowercase());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(assignment_from).collect()
    }

    /// Assignments at `scope` or below it.
    pub async fn role_assignments_below(&self, scope: &str) -> Result<Vec<RoleAssignmentRecord>> {
        let key = scope.to_ascii_lowercase();
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE scope_key = $1 OR scope_key LIKE $2 ESCAPE '\\' \
             ORDER BY key"
        );
        let rows = sqlx::query(&sql).bind(&key).bind(below(&key)).fetch_all(self.pool()).await?;
        rows.iter().map(assignment_from).collect()
    }

    // ---- audit ----------------------------------------------------------------------------------------------

    /// Append audit events, all in one transaction.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO audit_events (id, at, principal_id, surface, action, scope_key, scope, repository, \
                 allowed, assignment_id, role_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&e.id)
            .bind(e.at)
            .bind(e.principal_id.to_ascii_lowercase())
            .bind(&e.surface)
            .bind(&e.action)
            .bind(e.scope.to_ascii_lowercase())
            .bind(&e.scope)
            .bind(&e.repository)
            .bind(i64::from(e.allowed))
            .bind(&e.assignment_id)
            .bind(&e.role_name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes audit events older than `before_ms` (Unix milliseconds), a few thousand per statement so that no
    /// single write holds SQLite's lock for long; returns how many went.
    pub async fn delete_audit_events_before(&self, before_ms: i64) -> Result<u64> {
        const CHUNK: i64 = 5000;
        let mut deleted = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)",
            )
            .bind(before_ms)
            .bind(CHUNK)
            .execute(self.pool())
            .await?;
            deleted += done.rows_affected();
            if done.rows_affected() < CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }

    /// Audit events matching `query`, newest first.
    pub async fn list_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut texts: Vec<String> = Vec::new();
        if let Some(p) = &query.principal_id {
            texts.push(p.to_ascii_lowercase());
            sql.push_str(&format!(" AND principal_id = ${}", texts.len()));
        }
        if let Some(scope) = &query.scope {
            let key = scope.to_ascii_lowercase();
            texts.push(key.clone());
            texts.push(below(&key));
            sql.push_str(&format!(
                " AND (scope_key = ${} OR scope_key LIKE ${} ESCAPE '\\')",
                texts.len() - 1,
                texts.len()
            ));
        }
        let mut n = texts.len();
        if query.allowed.is_some() {
            n += 1;
            sql.push_str(&format!(" AND allowed = ${n}"));
        }
        if query.since.is_some() {
            n += 1;
            sql.push_str(&format!(" AND at >= ${n}"));
        }
        sql.push_str(&format!(" ORDER BY at DESC, id LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql);
        for t in &texts {
            q = q.bind(t);
        }
        if let Some(allowed) = query.allowed {
            q = q.bind(i64::from(allowed));
        }
        if let Some(since) = query.since {
            q = q.bind(since);
        }
        q = q.bind(query.limit.clamp(1, 10_000));
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(audit_from).collect()
    }
}
