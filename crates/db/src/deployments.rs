//! Template deployments in the store: one row per deployment (its template, redacted parameters, state, outputs,
//! error and times), its operations, and the lease that keeps a crashed node's run from staying `Running`.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::identities::is_foreign_key_violation;
use crate::{Db, Result};

/// A deployment as stored. JSON columns are kept as text; the server owns their shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    /// The deployment's ID as created (`{scope}/providers/Microsoft.Resources/deployments/{name}`).
    pub id: String,
    /// Lower-cased ID of the resource group or subscription it targets.
    pub scope_key: String,
    /// Lower-cased ID of its resource group, for resource-group deployments.
    pub group_key: Option<String>,
    pub subscription_id: String,
    pub name: String,
    pub location: Option<String>,
    pub template_hash: String,
    /// The template (JSON).
    pub template: String,
    /// The parameters as the record shows them (JSON), secure values left out.
    pub parameters: String,
    pub mode: String,
    /// ARM's provisioning state: `Accepted`, `Running`, `Succeeded`, `Failed`, `Canceled`.
    pub state: String,
    pub outputs: Option<String>,
    pub output_resources: Option<String>,
    /// ARM's error object (JSON) of a failed deployment.
    pub error: Option<String>,
    pub correlation_id: String,
    pub created_at: String,
    /// ARM's `timestamp`: the last change of state.
    pub updated_at: String,
    pub started_ms: i64,
    pub duration_ms: i64,
    /// The run that owns the row; only it may change the state.
    pub run_id: String,
    /// Unix milliseconds until which the run's node is presumed alive.
    pub lease_until: i64,
}

impl DeploymentRecord {
    pub fn key(&self) -> String {
        self.id.to_ascii_lowercase()
    }

    /// Whether the state is final (`Succeeded`, `Failed`, `Canceled`).
    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.state)
    }

    /// A run still in progress whose node stopped renewing its lease.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        !self.is_terminal() && self.lease_until < now_ms
    }
}

pub fn is_terminal(state: &str) -> bool {
    matches!(state, "Succeeded" | "Failed" | "Canceled")
}

/// What [`Db::start_deployment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentStart {
    /// The run owns the row now; `created` when no deployment of that name existed.
    Started { created: bool },
    /// A run of the same deployment is in progress (its lease holds).
    Active,
    /// The resource group does not exist (any more).
    GroupMissing,
}

/// What [`Db::delete_deployment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentDelete {
    Deleted,
    Missing,
    Active,
}

/// The final state of a run, for [`Db::finish_deployment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentOutcome {
    pub state: String,
    pub outputs: Option<String>,
    pub output_resources: Option<String>,
    pub error: Option<String>,
    pub updated_at: String,
    pub duration_ms: i64,
}

const COLUMNS: &str = "id, scope_key, group_key, subscription_id, name, location, template_hash, template, \
     parameters, mode, state, outputs, output_resources, error, correlation_id, created_at, updated_at, started_ms, \
     duration_ms, run_id, lease_until";

fn record_from(row: &AnyRow) -> Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        id: row.try_get("id")?,
        scope_key: row.try_get("scope_key")?,
        group_key: row.try_get("group_key")?,
        subscription_id: row.try_get("subscription_id")?,
        name: row.try_get("name")?,
        location: row.try_get("location")?,
        template_hash: row.try_get("template_hash")?,
        template: row.try_get("template")?,
        parameters: row.try_get("parameters")?,
        mode: row.try_get("mode")?,
        state: row.try_get("state")?,
        outputs: row.try_get("outputs")?,
        output_resources: row.try_get("output_resources")?,
        error: row.try_get("error")?,
        correlation_id: row.try_get("correlation_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_ms: row.try_get("started_ms")?,
        duration_ms: row.try_get("duration_ms")?,
        run_id: row.try_get("run_id")?,
        lease_until: row.try_get("lease_until")?,
    })
}

impl Db {
    /// Start a run: create the deployment, or replace a finished one of the same name (its operations go with it;
    /// its creation time stays), in one transaction. A run in progress whose lease holds is `Active`; one whose
    /// lease expired is replaced.
    pub async fn start_deployment(
        &self,
        record: &DeploymentRecord,
        now_ms: i64,
    ) -> Result<DeploymentStart> {
        let key = record.key();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {COLUMNS} FROM deployments WHERE key = $1");
        let existing = sqlx::query(&sql).bind(&key).fetch_optional(&mut *tx).await?;
        let existing = existing.as_ref().map(record_from).transpose()?;
        if let Some(old) = &existing {
            if !old.is_terminal() && old.lease_until >= now_ms {
                return Ok(DeploymentStart::Active);
            }
            sqlx::query("DELETE FROM deployments WHERE key = $1")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        let created_at = existing
            .as_ref()
            .map(|old| old.created_at.clone())
            .unwrap_or_else(|| record.created_at.clone());
        // An existing deployment keeps the name's casing from its creation.
        let id = existing.as_ref().map(|old| old.id.clone()).unwrap_or_else(|| record.id.clone());
        let name =
            existing.as_ref().map(|old| old.name.clone()).unwrap_or_else(|| record.name.clone());
        let inserted = sqlx::query(
            "INSERT INTO deployments (key, id, scope_key, group_key, subscription_id, name, location, template_hash, \
             template, parameters, mode, state, outputs, output_resources, error, correlation_id, created_at, \
             updated_at, started_ms, duration_ms, run_id, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(&key)
        .bind(&id)
        .bind(&record.scope_key)
        .bind(&record.group_key)
        .bind(&record.subscription_id)
        .bind(&name)
        .bind(&record.location)
        .bind(&record.template_hash)
        .bind(&record.template)
        .bind(&record.parameters)
        .bind(&record.mode)
        .bind(&record.state)
        .bind(&record.outputs)
        .bind(&record.output_resources)
        .bind(&record.error)
        .bind(&record.correlation_id)
        .bind(&created_at)
        .bind(&record.updated_at)
        .bind(record.started_ms)
        .bind(record.duration_ms)
        .bind(&record.run_id)
        .bind(record.lease_until)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_foreign_key_violation(&e) => return Ok(DeploymentStart::GroupMissing),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(DeploymentStart::Started { created: existing.is_none() })
    }

    pub async fn get_deployment(&self, id: &str) -> Result<Option<DeploymentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM deployments WHERE key = $1");
        let row =
            sqlx::query(&sql).bind(id.to_ascii_lowercase()).fetch_optional(self.pool()).await?;
        row.as_ref().map(record_from).transpose()
    }

    /// The deployments at a scope (a resource group's or a subscription's own), newest first.
    pub async fn list_deployments(&self, scope_key: &str) -> Result<Vec<DeploymentRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deployments WHERE scope_key = $1 ORDER BY started_ms DESC, key"
        );
        let rows =
            sqlx::query(&sql).bind(scope_key.to_ascii_lowercase()).fetch_all(self.pool()).await?;
        rows.iter().map(record_from).collect()
    }

    /// Delete a finished deployment and its operations (a running one is `Active`).
    pub async fn delete_deployment(&self, id: &str, now_ms: i64) -> Result<DeploymentDelete> {
        let key = id.to_ascii_lowercase();
        let done = sqlx::query(
            "DELETE FROM deployments WHERE key = $1 AND (state IN ('Succeeded', 'Failed', 'Canceled') \
             OR lease_until < $2)",
        )
        .bind(&key)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(DeploymentDelete::Deleted);
        }
        Ok(match self.get_deployment(id).await? {
            Some(_) => DeploymentDelete::Active,
            None => DeploymentDelete::Missing,
        })
    }

    /// Move a run to another non-final state and renew its lease. False when the run no longer owns the row.
    pub async fn deployment_progress(
        &self,
        id: &str,
        run_id: &str,
        state: &str,
        updated_at: &str,
        lease_until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deployments SET state = $1, updated_at = $2, lease_until = $3 \
             WHERE key = $4 AND run_id = $5 AND state NOT IN ('Succeeded', 'Failed', 'Canceled')",
        )
        .bind(state)
        .bind(updated_at)
        .bind(lease_until)
        .bind(id.to_ascii_lowercase())
        .bind(run_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record a run's final state. False when the run no longer owns the row (replaced, deleted, or marked
    /// failed after its lease expired).
    pub async fn finish_deployment(
        &self,
        id: &str,
        run_id: &str,
        outcome: &DeploymentOutcome,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deployments SET state = $1, outputs = $2, output_resources = $3, error = $4, updated_at = $5, \
             duration_ms = $6 WHERE key = $7 AND run_id = $8 AND state NOT IN ('Succeeded', 'Failed', 'Canceled')",
        )
        .bind(&outcome.state)
        .bind(&outcome.outputs)
        .bind(&outcome.output_resources)
        .bind(&outcome.error)
        .bind(&outcome.updated_at)
        .bind(outcome.duration_ms)
        .bind(id.to_ascii_lowercase())
        .bind(run_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Mark a run whose lease expired before `now_ms` as finished with `outcome` (normally Failed). False when it
    /// finished, was replaced or renewed its lease meanwhile.
    pub async fn fail_stale_deployment(
        &self,
        id: &str,
        run_id: &str,
        now_ms: i64,
        outcome: &DeploymentOutcome,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deployments SET state = $1, error = $2, updated_at = $3, duration_ms = $4 \
             WHERE key = $5 AND run_id = $6 AND lease_until < $7 \
             AND state NOT IN ('Succeeded', 'Failed', 'Canceled')",
        )
        .bind(&outcome.state)
        .bind(&outcome.error)
        .bind(&outcome.updated_at)
        .bind(outcome.duration_ms)
        .bind(id.to_ascii_lowercase())
        .bind(run_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Create or replace one operation of a run (`body` is ARM's operation JSON). Nothing is written when the run
    /// no longer owns the deployment.
    pub async fn put_deployment_operation(
        &self,
        id: &str,
        run_id: &str,
        operation_id: &str,
        seq: i64,
        body: &str,
    ) -> Result<bool> {
        let key = id.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let owner = sqlx::query("SELECT key FROM deployments WHERE key = $1 AND run_id = $2")
            .bind(&key)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
        if owner.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM deployment_operations WHERE deployment_key = $1 AND operation_id = $2",
        )
        .bind(&key)
        .bind(operation_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deployment_operations (deployment_key, operation_id, seq, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key)
        .bind(operation_id)
        .bind(seq)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A deployment's operations (ARM's JSON), in the order they started.
    pub async fn deployment_operations(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT body FROM deployment_operations WHERE deployment_key = $1 ORDER BY seq, operation_id",
        )
        .bind(id.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| Ok(row.try_get("body")?)).collect()
    }
}
