//! Web apps' host-agent state: which pull each site wants, who works on it (a lease), the outcome and a log.
//!
//! A site's resource row and its `site_states` row are written in one transaction ([`Db::put_site`]); both go
//! with the resource (foreign key), so a deleted site leaves no agent state behind. Leases are taken with a
//! conditional UPDATE, which both SQLite and PostgreSQL run atomically, so of several nodes exactly one wins.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::identities::write_resource_with_identities;
use crate::models::{Principal, ResourceRecord};
use crate::{Db, IdentityPut, Result};

/// The host agent's view of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteState {
    /// Lower-cased site ID.
    pub site_key: String,
    /// The site ID as created.
    pub site_id: String,
    /// Bumped by every request for a new pull (image change, restart).
    pub generation: i64,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: String,
    /// What the agent did with the pulled image: `Pending`, `Pulled`, `Running`, `Exited`, `Failed`.
    pub run_state: String,
    /// The image reference the pull is for.
    pub image: String,
    /// The digest of the manifest pulled (after a success).
    pub digest: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// RFC 3339 time of the last attempt's end.
    pub last_attempt: Option<String>,
    /// Failed attempts since the last request or success (drives the backoff).
    pub attempts: i64,
    /// Unix milliseconds before which the agent leaves the site alone.
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
}

/// The outcome of one pull attempt, as the agent records it.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub status: String,
    pub run_state: String,
    pub digest: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub last_attempt: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

const STATE_COLUMNS: &str =
    "site_key, site_id, generation, status, run_state, image, digest, error_code, \
     error_message, last_attempt, attempts, next_attempt_at, lease_owner, lease_until";

fn state_from(row: &AnyRow) -> Result<SiteState> {
    Ok(SiteState {
        site_key: row.try_get("site_key")?,
        site_id: row.try_get("site_id")?,
        generation: row.try_get("generation")?,
        status: row.try_get("status")?,
        run_state: row.try_get("run_state")?,
        image: row.try_get("image")?,
        digest: row.try_get("digest")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        last_attempt: row.try_get("last_attempt")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
    })
}

/// How many log lines a site keeps.
pub const SITE_LOG_LINES: i64 = 500;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Ask for a pull of `image` now: a new generation, `InProgress`, no backoff. Creates the row when missing.
async fn request_pull_in(tx: &mut Tx<'_>, site_id: &str, image: &str) -> Result<()> {
    let key = site_id.to_ascii_lowercase();
    let updated = sqlx::query(
        "UPDATE site_states SET generation = generation + 1, status = 'InProgress', run_state = 'Pending', \
         image = $1, error_code = NULL, error_message = NULL, attempts = 0, next_attempt_at = 0 WHERE site_key = $2",
    )
    .bind(image)
    .bind(&key)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO site_states (site_key, site_id, generation, status, run_state, image, attempts, \
             next_attempt_at, lease_until) VALUES ($1, $2, 1, 'InProgress', 'Pending', $3, 0, 0, 0)",
        )
        .bind(&key)
        .bind(site_id)
        .bind(image)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Db {
    /// Write a site (as [`Db::put_resource_with_identities`] does) and, in the same transaction, ask the host
    /// agent for a pull of `pull` when it is `Some` (the image changed, or the site is new).
    pub async fn put_site(
        &self,
        resource: &ResourceRecord,
        read_body: Option<&str>,
        add: &[Principal],
        remove: &[String],
        pull: Option<&str>,
    ) -> Result<IdentityPut> {
        let mut tx = self.begin_write().await?;
        let outcome =
            write_resource_with_identities(&mut tx, resource, read_body, add, remove).await?;
        if outcome == IdentityPut::Changed {
            return Ok(outcome);
        }
        if let Some(image) = pull {
            request_pull_in(&mut tx, &resource.id, image).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Ask for a new pull of a site's current image (a restart). False when the site has no state (no image).
    pub async fn restart_site(&self, site_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE site_states SET generation = generation + 1, status = 'InProgress', run_state = 'Pending', \
             error_code = NULL, error_message = NULL, attempts = 0, next_attempt_at = 0 WHERE site_key = $1",
        )
        .bind(site_id.to_ascii_lowercase())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn site_state(&self, site_id: &str) -> Result<Option<SiteState>> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM site_states WHERE site_key = $1");
        let row = sqlx::query(&sql)
            .bind(site_id.to_ascii_lowercase())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(state_from).transpose()
    }

    /// The IDs of every site the agent knows (a site's state row is deleted with the site).
    pub async fn site_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT site_id FROM site_states").fetch_all(self.pool()).await?;
        rows.iter().map(|row| Ok(row.try_get::<String, _>("site_id")?)).collect()
    }

    /// Sites whose pull is wanted (in progress, or failed and due for a retry) and whose lease is free at `now`.
    pub async fn due_sites(&self, now_ms: i64) -> Result<Vec<SiteState>> {
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM site_states WHERE status <> 'Succeeded' AND next_attempt_at <= $1 \
             AND lease_until < $1 ORDER BY next_attempt_at, site_key"
        );
        let rows = sqlx::query(&sql).bind(now_ms).fetch_all(self.pool()).await?;
        rows.iter().map(state_from).collect()
    }

    /// Take (or renew) the lease on a site until `until_ms`. True when `owner` holds it afterwards: nobody held
    /// it, it had expired at `now_ms`, or `owner` already held it.
    pub async fn lease_site(
        &self,
        site_key: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE site_states SET lease_owner = $1, lease_until = $2 \
             WHERE site_key = $3 AND (lease_until < $4 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(site_key)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record the outcome of working on `generation` and release the lease. When a new pull was asked for in
    /// the meantime (the generation moved on), only the lease is released, so the next round pulls again.
    /// False when `owner` no longer held the lease (nothing recorded).
    pub async fn finish_site_pull(
        &self,
        site_key: &str,
        owner: &str,
        generation: i64,
        outcome: &PullOutcome,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let recorded = sqlx::query(
            "UPDATE site_states SET status = $1, run_state = $2, digest = $3, error_code = $4, error_message = $5, \
             last_attempt = $6, attempts = $7, next_attempt_at = $8, lease_owner = NULL, lease_until = 0 \
             WHERE site_key = $9 AND lease_owner = $10 AND generation = $11",
        )
        .bind(&outcome.status)
        .bind(&outcome.run_state)
        .bind(&outcome.digest)
        .bind(&outcome.error_code)
        .bind(&outcome.error_message)
        .bind(&outcome.last_attempt)
        .bind(outcome.attempts)
        .bind(outcome.next_attempt_at)
        .bind(site_key)
        .bind(owner)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        if recorded.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(true);
        }
        let released = sqlx::query(
            "UPDATE site_states SET lease_owner = NULL, lease_until = 0, last_attempt = $1 \
             WHERE site_key = $2 AND lease_owner = $3",
        )
        .bind(&outcome.last_attempt)
        .bind(site_key)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(released.rows_affected() == 1)
    }

    /// Set what the agent did with a pulled image (the runtime hand-off and its end).
    pub async fn set_site_run_state(&self, site_key: &str, run_state: &str) -> Result<()> {
        sqlx::query("UPDATE site_states SET run_state = $1 WHERE site_key = $2")
            .bind(run_state)
            .bind(site_key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Append a line to a site's log (at Unix milliseconds `at`), pruning lines beyond [`SITE_LOG_LINES`]. A
    /// site deleted meanwhile is not an error: the line is dropped with it.
    pub async fn append_site_log(&self, site_key: &str, at: i64, line: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT site_key FROM site_states WHERE site_key = $1")
            .bind(site_key)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(());
        }
        let row =
            sqlx::query("SELECT COUNT(*) AS n, MAX(seq) AS top FROM site_log WHERE site_key = $1")
                .bind(site_key)
                .fetch_one(&mut *tx)
                .await?;
        let count: i64 = row.try_get("n")?;
        let top: Option<i64> = row.try_get("top")?;
        let seq = top.unwrap_or(0) + 1;
        sqlx::query("INSERT INTO site_log (site_key, at, seq, line) VALUES ($1, $2, $3, $4)")
            .bind(site_key)
            .bind(at)
            .bind(seq)
            .bind(line)
            .execute(&mut *tx)
            .await?;
        if count >= SITE_LOG_LINES {
            sqlx::query("DELETE FROM site_log WHERE site_key = $1 AND seq <= $2")
                .bind(site_key)
                .bind(seq - SITE_LOG_LINES)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A site's log, oldest first: `(Unix milliseconds, line)`.
    pub async fn site_log(&self, site_id: &str) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT at, line FROM site_log WHERE site_key = $1 ORDER BY seq")
            .bind(site_id.to_ascii_lowercase())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("at")?, r.try_get("line")?))).collect()
    }
}
