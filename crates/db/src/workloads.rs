//! Workloads in the store: resources registered to get their managed identities' tokens from the workload
//! endpoints, with the hash of their App Service header secret and the port of their metadata listener.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::identities::is_foreign_key_violation;
use crate::models::Principal;
use crate::queries::{principal_from, PRINCIPAL_COLUMNS};
use crate::{map_unique, Db, Result};

/// A registered workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRecord {
    /// The workload's resource, as created.
    pub resource_id: String,
    /// SHA-256 (hex) of the current `X-IDENTITY-HEADER` secret.
    pub header_hash: String,
    /// The loopback port of the workload's metadata listener, once one was opened.
    pub imds_port: Option<u16>,
    pub created_at: String,
    pub rotated_at: String,
}

impl WorkloadRecord {
    pub fn key(&self) -> String {
        self.resource_id.to_ascii_lowercase()
    }
}

/// What [`Db::put_workload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadPut {
    /// Registered now; the stored record.
    Created(WorkloadRecord),
    /// Was registered: the header hash was replaced, the rest kept; the stored record.
    Rotated(WorkloadRecord),
    /// The resource does not exist (any more).
    ResourceMissing,
}

const WORKLOAD_COLUMNS: &str = "resource_id, header_hash, imds_port, created_at, rotated_at";

fn workload_from(row: &AnyRow) -> Result<WorkloadRecord> {
    let port: Option<i64> = row.try_get("imds_port")?;
    Ok(WorkloadRecord {
        resource_id: row.try_get("resource_id")?,
        header_hash: row.try_get("header_hash")?,
        imds_port: port.and_then(|p| u16::try_from(p).ok()),
        created_at: row.try_get("created_at")?,
        rotated_at: row.try_get("rotated_at")?,
    })
}

impl Db {
    /// Register `record.resource_id` as a workload, or give a registered one the new header hash (its port and
    /// creation time are kept). One transaction; a resource deleted concurrently gives `ResourceMissing`.
    pub async fn put_workload(&self, record: &WorkloadRecord) -> Result<WorkloadPut> {
        let key = record.key();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE resource_key = $1");
        let existing = sqlx::query(&sql).bind(&key).fetch_optional(&mut *tx).await?;
        let conflict = |e| map_unique(e, || "workload header".to_owned());
        let stored = match existing {
            Some(row) => {
                let mut stored = workload_from(&row)?;
                sqlx::query(
                    "UPDATE workloads SET header_hash = $1, rotated_at = $2 WHERE resource_key = $3",
                )
                .bind(&record.header_hash)
                .bind(&record.rotated_at)
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                stored.header_hash = record.header_hash.clone();
                stored.rotated_at = record.rotated_at.clone();
                WorkloadPut::Rotated(stored)
            }
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO workloads (resource_key, resource_id, header_hash, imds_port, created_at, rotated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&key)
                .bind(&record.resource_id)
                .bind(&record.header_hash)
                .bind(record.imds_port.map(i64::from))
                .bind(&record.created_at)
                .bind(&record.rotated_at)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => WorkloadPut::Created(record.clone()),
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Ok(WorkloadPut::ResourceMissing)
                    }
                    Err(e) => return Err(conflict(e)),
                }
            }
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// Record the port of a workload's metadata listener. Returns whether the workload exists.
    pub async fn set_workload_port(&self, resource_id: &str, port: u16) -> Result<bool> {
        let done = sqlx::query("UPDATE workloads SET imds_port = $1 WHERE resource_key = $2")
            .bind(i64::from(port))
            .bind(resource_id.to_ascii_lowercase())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn get_workload(&self, resource_id: &str) -> Result<Option<WorkloadRecord>> {
        let sql = format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE resource_key = $1");
        let row = sqlx::query(&sql)
            .bind(resource_id.to_ascii_lowercase())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(workload_from).transpose()
    }

    /// The workload whose current header secret hashes to `header_hash`.
    pub async fn workload_by_header_hash(
        &self,
        header_hash: &str,
    ) -> Result<Option<WorkloadRecord>> {
        let sql = format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE header_hash = $1");
        let row = sqlx::query(&sql).bind(header_hash).fetch_optional(self.pool()).await?;
        row.as_ref().map(workload_from).transpose()
    }

    /// Every registered workload, by resource key.
    pub async fn list_workloads(&self) -> Result<Vec<WorkloadRecord>> {
        let sql = format!("SELECT {WORKLOAD_COLUMNS} FROM workloads ORDER BY resource_key");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(workload_from).collect()
    }

    /// Returns whether it was registered.
    pub async fn delete_workload(&self, resource_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM workloads WHERE resource_key = $1")
            .bind(resource_id.to_ascii_lowercase())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The managed identities bound to any of the resources `resource_ids` (any casing), oldest first: a
    /// workload's own system-assigned identity (or, for a user-assigned identity, itself) and the user-assigned
    /// identities attached to it, in one query.
    pub async fn identities_bound_to(&self, resource_ids: &[String]) -> Result<Vec<Principal>> {
        if resource_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=resource_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE resource_key IN ({}) ORDER BY created_at, id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in resource_ids {
            query = query.bind(id.to_ascii_lowercase());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(principal_from).collect()
    }
}
