//! Shared server state: the metadata store, the signing keys, the tenant and the addresses clients use.

use std::sync::{Arc, RwLock};

use anyhow::Result;
use berth_db::Db;
use berth_identity::KeyRing;
use berth_storage::BlobStore;

use crate::audit::AuditLog;
use crate::authorize::Authorizer;
use crate::bootstrap::to_signing_keys;
use crate::federation::FederatedIssuers;
use crate::routes::v2::V2Caches;
use crate::workloads::WorkloadRuntime;

/// Audiences that name the control plane (ARM), besides the server's own URL.
pub const ARM_AUDIENCES: &[&str] =
    &["https://management.azure.com", "https://management.core.windows.net"];
/// The Graph audience; Graph routes also accept ARM tokens (az reuses one when the resource ids match).
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// The registry audience of Entra tokens presented at `/oauth2/exchange`.
pub const REGISTRY_AUDIENCE: &str = "https://containerregistry.azure.net";

pub struct AppState {
    pub db: Db,
    /// Blob and manifest bytes, content-addressed.
    pub blobs: BlobStore,
    /// The registry data plane's caches of immutable things (manifest bytes, verified tokens).
    pub(crate) v2_caches: V2Caches,
    keys: RwLock<KeyRing>,
    pub tenant_id: String,
    /// Base URL clients use, without a trailing slash, e.g. `https://127.0.0.1:8443`.
    pub public_url: String,
    /// `host:port` of [`AppState::public_url`].
    pub public_host: String,
    pub registry_domain: Option<String>,
    pub authorizer: Arc<dyn Authorizer>,
    /// Lifetime of identity-provider access tokens, in seconds.
    pub token_lifetime_secs: i64,
    /// Lifetime of registry access tokens, in seconds (ACR's 75 minutes by default).
    pub registry_token_lifetime_secs: i64,
    /// External OIDC issuers trusted for workload identity federation (none unless configured).
    pub federation: FederatedIssuers,
    /// How old unreferenced content must be before garbage collection removes it (`--gc-grace-period`).
    pub gc_grace_period: std::time::Duration,
    /// Workload metadata listeners and caches of this node (`crate::workloads`).
    pub workloads: WorkloadRuntime,
    /// Wakes this node's host agent when a site asks for a pull (a write or a restart).
    pub site_wakeup: tokio::sync::Notify,
    /// Where authorization decisions are audited (written in the background).
    pub audit: AuditLog,
}

impl AppState {
    pub async fn new(
        db: Db,
        blobs: BlobStore,
        tenant_id: String,
        public_url: String,
        registry_domain: Option<String>,
        authorizer: Arc<dyn Authorizer>,
    ) -> Result<AppState> {
        let keys = KeyRing::new(to_signing_keys(db.signing_keys().await?))?;
        let public_host =
            public_url.split_once("://").map(|(_, h)| h).unwrap_or(&public_url).to_string();
        Ok(AppState {
            audit: AuditLog::start(db.clone()),
            db,
            blobs,
            v2_caches: V2Caches::default(),
            keys: RwLock::new(keys),
            tenant_id,
            public_url,
            public_host,
            registry_domain,
            authorizer,
            token_lifetime_secs: 3599,
            registry_token_lifetime_secs: 75 * 60,
            federation: FederatedIssuers::default(),
            gc_grace_period: crate::config::DEFAULT_GC_GRACE_PERIOD,
            workloads: WorkloadRuntime::default(),
            site_wakeup: tokio::sync::Notify::new(),
        })
    }

    /// The current key ring (cheap clone).
    pub fn keys(&self) -> KeyRing {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-read the signing keys from the store: another node may have rotated them.
    pub async fn reload_keys(&self) -> Result<()> {
        let ring = KeyRing::new(to_signing_keys(self.db.signing_keys().await?))?;
        match self.keys.write() {
            Ok(mut k) => *k = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    /// `iss` of the tokens this server issues, as its OpenID configuration states it.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.public_url, self.tenant_id)
    }

    /// Audiences accepted on the control plane.
    pub fn arm_audiences(&self) -> Vec<String> {
        let mut audiences: Vec<String> = ARM_AUDIENCES.iter().map(|s| s.to_string()).collect();
        audiences.push(self.public_url.clone());
        audiences
    }

    /// Audiences for which the token endpoint mints tokens.
    pub fn known_audiences(&self) -> Vec<String> {
        let mut audiences = self.arm_audiences();
        audiences.push(GRAPH_AUDIENCE.to_string());
        audiences.push(REGISTRY_AUDIENCE.to_string());
        audiences
    }

    /// The login server of a registry: `<name>.<domain>` in host mode, else `<host:port>/<name>`.
    pub fn login_server(&self, registry_name: &str) -> String {
        let name = registry_name.to_ascii_lowercase();
        match &self.registry_domain {
            Some(domain) => format!("{name}.{domain}"),
            None => format!("{}/{name}", self.public_host),
        }
    }
}
