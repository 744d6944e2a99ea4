//! The host agent: runs every web app (`Microsoft.Web/sites`) whose image is a container on a berth registry.
//!
//! One background task per `berth serve` process. Each round it takes the sites that want a pull (their
//! `site_states` row is `InProgress`, or `Failed` and due for a retry), takes a lease on each (a conditional UPDATE,
//! so with several nodes on one database only one works a site at a time; the lease expires if the node dies),
//! and pulls: a token for the site's managed identity, minted here as the identity provider would, exchanged at
//! the registry through the real HTTP token flow on berth's own listener (`pull.rs`), so the registry's own
//! authorization decides; then index → platform → manifest → config and layers, every digest verified, bytes
//! streamed to disk; then the layers unpacked (`unpack.rs`) into `DATA/sites/<site>/rootfs` and the OCI runtime
//! bundle's `config.json` written (`bundle.rs`). The outcome goes to the site's `imagePull` record and log; a
//! failure is retried with exponential backoff, and a restart or a new image pulls again at once. With an OCI
//! runtime configured the bundle is handed to it; without one the site stops at `Pulled`.

pub mod bundle;
pub mod image_ref;
pub mod pull;
pub mod unpack;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_db::{PullOutcome, SiteState};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::time::now_rfc3339;

/// How the agent works; `berth serve` flags.
#[derive(Debug, Clone)]
pub struct HostAgentConfig {
    /// How often the agent looks for work (it also wakes at once on this node's writes and restarts).
    pub poll_interval: Duration,
    /// The first retry delay after a failed pull; doubled per further failure.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
    /// An OCI runtime (`crun`, `runc`, `youki`: a path or a name on `PATH`) to run pulled bundles with.
    pub oci_runtime: Option<PathBuf>,
}

impl Default for HostAgentConfig {
    fn default() -> Self {
        HostAgentConfig {
            poll_interval: Duration::from_secs(2),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            oci_runtime: None,
        }
    }
}

/// The agent never polls more often than this (a zero interval would spin).
const MIN_POLL: Duration = Duration::from_millis(20);

/// How long a lease lasts; renewed between layers, so a pull that makes progress keeps it.
const LEASE: Duration = Duration::from_secs(120);

/// Where the agent reaches berth's own listener, and what it trusts there.
#[derive(Clone)]
pub struct Listener {
    pub local_addr: SocketAddr,
    /// PEM certificates to trust (berth's CA, or the configured certificate chain); `None` for plain HTTP.
    pub trust_pem: Option<String>,
}

/// `2026-11-22T20:31:17.123Z` for Unix milliseconds.
pub fn rfc3339_of_millis(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The directory of a site's bundle: `DATA/sites/<UUID v5 of the lower-cased site ID>`, a name that is safe
/// whatever the site's group is called and stays the same for the site's life.
pub fn site_directory(data_dir: &Path, site_id: &str) -> PathBuf {
    let name =
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, site_id.to_ascii_lowercase().as_bytes());
    data_dir.join("sites").join(name.to_string())
}

/// The delay before retry number `attempts` (1 after the first failure).
fn backoff(config: &HostAgentConfig, attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
    config.retry_base.saturating_mul(2u32.saturating_pow(exponent)).min(config.retry_max)
}

struct Agent {
    state: Arc<AppState>,
    config: HostAgentConfig,
    data_dir: PathBuf,
    listener: Listener,
    /// This process's lease owner name.
    owner: String,
}

/// Start the agent; it stops when `shutdown` turns true (between two sites, or within a pull's next step).
pub fn spawn(
    state: Arc<AppState>,
    config: HostAgentConfig,
    data_dir: PathBuf,
    listener: Listener,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let agent =
        Agent { state, config, data_dir, listener, owner: uuid::Uuid::new_v4().to_string() };
    tokio::spawn(async move {
        tracing::info!(owner = %agent.owner, "host agent started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match agent.state.db.due_sites(now_millis()).await {
                Ok(due) => {
                    for site in due {
                        if *shutdown.borrow() {
                            break;
                        }
                        agent.work(site, &mut shutdown).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "host agent: listing sites failed"),
            }
            agent.remove_deleted_sites().await;
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = agent.state.site_wakeup.notified() => {}
                _ = tokio::time::sleep(agent.config.poll_interval.max(MIN_POLL)) => {}
            }
        }
        tracing::info!("host agent stopped");
    })
}

impl Agent {
    /// Removes the bundle directories of sites that no longer exist (deleted through any node). The directories
    /// are listed before the sites, so a site created in between is never mistaken for a deleted one.
    async fn remove_deleted_sites(&self) {
        let root = self.data_dir.join("sites");
        let Ok(entries) = std::fs::read_dir(&root) else { return };
        let on_disk: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        if on_disk.is_empty() {
            return;
        }
        let known = match self.state.db.site_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "host agent: listing sites failed");
                return;
            }
        };
        let wanted: std::collections::HashSet<PathBuf> =
            known.iter().map(|id| site_directory(&self.data_dir, id)).collect();
        for directory in on_disk.into_iter().filter(|d| !wanted.contains(d)) {
            match tokio::fs::remove_dir_all(&directory).await {
                Ok(()) => {
                    tracing::info!(directory = %directory.display(), "host agent: removed a deleted site's files")
                }
                Err(e) => {
                    tracing::warn!(directory = %directory.display(), error = %e, "host agent: removing a deleted site's files failed")
                }
            }
        }
    }

    async fn log(&self, site_key: &str, line: &str) {
        if let Err(e) = self.state.db.append_site_log(site_key, now_millis(), line).await {
            tracing::warn!(site = %site_key, error = %e, "host agent: writing the site log failed");
        }
    }

    async fn work(&self, site: SiteState, shutdown: &mut watch::Receiver<bool>) {
        let now = now_millis();
        match self
            .state
            .db
            .lease_site(&site.site_key, &self.owner, now, now + LEASE.as_millis() as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(site = %site.site_id, error = %e, "host agent: taking the lease failed");
                return;
            }
        }
        let attempt = site.attempts + 1;
        self.log(&site.site_key, &format!("pulling {} (attempt {attempt})", site.image)).await;
        let started = std::time::Instant::now();
        let directory = site_directory(&self.data_dir, &site.site_id);
        let job = pull::PullJob {
            state: &self.state,
            listener: &self.listener,
            site_id: &site.site_id,
            site_key: &site.site_key,
            owner: &self.owner,
            directory: &directory,
            lease: LEASE,
        };
        let result = tokio::select! {
            result = job.run() => Some(result),
            _ = shutdown.changed() => None,
        };
        let Some(result) = result else {
            // Shutting down mid-pull: give the lease back so another node (or the next start) pulls again.
            let outcome = PullOutcome {
                status: "InProgress".into(),
                run_state: "Pending".into(),
                digest: None,
                error_code: None,
                error_message: None,
                last_attempt: now_rfc3339(),
                attempts: site.attempts,
                next_attempt_at: 0,
            };
            let _ = self
                .state
                .db
                .finish_site_pull(&site.site_key, &self.owner, site.generation, &outcome)
                .await;
            return;
        };
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(pulled) => PullOutcome {
                status: "Succeeded".into(),
                run_state: "Pulled".into(),
                digest: Some(pulled.digest.clone()),
                error_code: None,
                error_message: None,
                last_attempt: now_rfc3339(),
                attempts: 0,
                next_attempt_at: 0,
            },
            Err(error) => PullOutcome {
                status: "Failed".into(),
                run_state: "Pending".into(),
                digest: None,
                error_code: Some(error.code.to_string()),
                error_message: Some(error.message.clone()),
                last_attempt: now_rfc3339(),
                attempts: attempt,
                next_attempt_at: now_millis() + backoff(&self.config, attempt).as_millis() as i64,
            },
        };
        match &result {
            Ok(pulled) => {
                self.log(
                    &site.site_key,
                    &format!(
                        "pulled {} ({}, {} layers, {} bytes) in {:.2}s into {}",
                        site.image,
                        pulled.digest,
                        pulled.layers,
                        pulled.bytes,
                        elapsed.as_secs_f64(),
                        directory.join("rootfs").display()
                    ),
                )
                .await;
                tracing::info!(site = %site.site_id, digest = %pulled.digest, elapsed_ms = elapsed.as_millis() as u64, "site image pulled");
            }
            Err(error) => {
                let retry = backoff(&self.config, attempt);
                self.log(
                    &site.site_key,
                    &format!(
                        "pull failed: {}: {} (retry in {:.1}s)",
                        error.code,
                        error.message,
                        retry.as_secs_f64()
                    ),
                )
                .await;
                tracing::info!(site = %site.site_id, code = error.code, message = %error.message, "site image pull failed");
            }
        }
        match self
            .state
            .db
            .finish_site_pull(&site.site_key, &self.owner, site.generation, &outcome)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(site = %site.site_id, "host agent: lease lost before the outcome was recorded")
            }
            Err(e) => {
                tracing::warn!(site = %site.site_id, error = %e, "host agent: recording the outcome failed")
            }
        }
        if result.is_ok() {
            if let Some(runtime) = &self.config.oci_runtime {
                let (run_state, line) = bundle::run(runtime, &directory, &site.site_id).await;
                self.log(&site.site_key, &line).await;
                if let Err(e) = self.state.db.set_site_run_state(&site.site_key, run_state).await {
                    tracing::warn!(site = %site.site_id, error = %e, "host agent: recording the run state failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let config = HostAgentConfig {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..HostAgentConfig::default()
        };
        let delays: Vec<u128> = (1..=6).map(|a| backoff(&config, a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&config, i64::MAX), Duration::from_secs(1));
    }

    #[test]
    fn site_directories_are_stable_and_safe() {
        let a = site_directory(
            Path::new("/d"),
            "/subscriptions/s/resourceGroups/G(1)/providers/Microsoft.Web/sites/App",
        );
        let b = site_directory(
            Path::new("/d"),
            "/subscriptions/s/resourcegroups/g(1)/providers/microsoft.web/sites/app",
        );
        assert_eq!(a, b);
        assert!(a.starts_with("/d/sites"));
        assert_eq!(rfc3339_of_millis(1_000), "1970-01-01T00:00:01Z");
    }
}
