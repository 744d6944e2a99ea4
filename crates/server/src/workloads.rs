//! Workloads: resources (registries, sites, user-assigned identities) registered to get their managed
//! identities' tokens from berth's workload endpoints, and the server-side API other parts of berth call.
//!
//! A workload proves which resource it is in one of two ways:
//! - App Service protocol: the `X-IDENTITY-HEADER` secret issued by [`register`] (stored only as its SHA-256;
//!   the secret is 256 random bits, so a fast hash is enough and keeps every request cheap). [`register`] again
//!   rotates it: the old secret stops working at once on this node, within [`RESOLVE_TTL`] on others.
//! - IMDS protocol (no secret): the listener. Each workload gets its own metadata listener on a loopback port,
//!   opened by berth for that workload only; a request's workload is the listener it arrived on. The platform hands
//!   the port to that workload alone (e.g. published into its network namespace only), exactly as a VM's IMDS is
//!   reachable only from inside that VM.
//!
//! Either way a workload can only ever get tokens of identities bound to its own resource: its system-assigned
//! identity (for a user-assigned identity registered as a workload: itself) and the user-assigned identities
//! attached to it. Selectors only choose among those.
//!
//! Tokens are RS256-signed Entra-style v1 tokens (`oid`, `tid`, `appid`, `xms_mirid`, `idtyp`, `aud` as asked).
//! As real IMDS does, a minted token is handed out again for the same identity and resource while it is younger
//! than [`TOKEN_REUSE_SECS`], because RSA signing (about 1 ms) would otherwise bound the endpoint's throughput.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_arm::ResourceId;
use berth_db::{Principal, PrincipalKind, WorkloadPut, WorkloadRecord};
use berth_identity::{normalize_audience, random_token, EntraClaims};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::time::{now_rfc3339, now_unix};

/// The App Service protocol's path (`IDENTITY_ENDPOINT`), on a workload's listener and on the main listener.
pub const APP_SERVICE_PATH: &str = "/msi/token";
/// The IMDS protocol's path under `AZURE_POD_IDENTITY_AUTHORITY_HOST`.
pub const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// How long a node trusts what it read about a workload (its identities, its header) before reading again.
pub const RESOLVE_TTL: Duration = Duration::from_secs(1);
/// A minted token is handed out again while it is younger than this (its `expires_in` shrinking accordingly).
pub const TOKEN_REUSE_SECS: i64 = 300;
/// Bound on the token cache; it is emptied when it grows beyond (tokens are re-minted on demand).
const TOKEN_CACHE_LIMIT: usize = 10_000;

/// What a workload needs to ask for tokens; the header secret is shown here only.
#[derive(Debug, Clone)]
pub struct WorkloadCredentials {
    pub resource_id: String,
    /// `IDENTITY_HEADER`: the App Service protocol's secret.
    pub identity_header: String,
    pub endpoints: WorkloadEndpoints,
    pub created_at: String,
    pub rotated_at: String,
    /// Whether the workload was registered now (else its header was rotated).
    pub created: bool,
}

/// Where a workload asks for tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadEndpoints {
    /// `IDENTITY_ENDPOINT` on the workload's own listener: `http://127.0.0.1:{port}/msi/token`.
    pub identity_endpoint: Option<String>,
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST`: `http://127.0.0.1:{port}` (IMDS protocol).
    pub imds_endpoint: Option<String>,
    /// The App Service protocol on berth's main (TLS) listener, for workloads on other hosts.
    pub remote_identity_endpoint: String,
}

/// A registered workload as shown (no secret).
#[derive(Debug, Clone)]
pub struct WorkloadInfo {
    pub resource_id: String,
    pub endpoints: WorkloadEndpoints,
    pub created_at: String,
    pub rotated_at: String,
}

/// Which of a workload's identities a request wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySelector {
    /// The system-assigned identity (for a user-assigned identity registered as a workload: itself), or the only
    /// identity the workload has.
    Default,
    /// `client_id`: the identity's client (application) id.
    ClientId(String),
    /// `object_id` / `principal_id`: the identity's principal id.
    ObjectId(String),
    /// `msi_res_id` / `mi_res_id`: the user-assigned identity's resource id.
    ResourceId(String),
}

/// A token handed to a workload.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: Arc<str>,
    /// The resource as requested (the token's `aud`).
    pub resource: String,
    /// The identity's client id.
    pub client_id: String,
    pub not_before: i64,
    pub expires_on: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The resource is not a registered workload (or no longer exists).
    #[error("the resource is not a registered workload")]
    NotRegistered,
    /// The resource to register does not exist.
    #[error("the resource does not exist")]
    ResourceMissing,
    /// No identity of the workload matches the selector (or it has none).
    #[error("identity not found")]
    IdentityNotFound,
    /// The requested resource (audience) is not one berth issues tokens for.
    #[error("unknown resource `{0}`")]
    UnknownResource(String),
    #[error("{0}")]
    Internal(String),
}

impl From<berth_db::DbError> for WorkloadError {
    fn from(e: berth_db::DbError) -> Self {
        WorkloadError::Internal(format!("metadata store: {e}"))
    }
}

/// SHA-256 (hex) of a header secret, as stored.
pub fn header_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identities a workload may get tokens for, as resolved at one moment.
#[derive(Debug)]
pub(crate) struct ResolvedWorkload {
    /// Lower-cased resource id.
    key: String,
    identities: Vec<Principal>,
}

struct CachedToken {
    token: IssuedToken,
    issued_at: i64,
}

/// What a node read about a workload, and when (`None`: not registered).
type CachedResolution = (Instant, Option<Arc<ResolvedWorkload>>);

/// Per-node workload state: open listeners and short-lived caches.
#[derive(Default)]
pub struct WorkloadRuntime {
    /// Open metadata listeners by workload key: (port, accept task).
    listeners: Mutex<HashMap<String, (u16, JoinHandle<()>)>>,
    resolved: Mutex<HashMap<String, CachedResolution>>,
    /// Header hash → workload key; only hits are cached, so guessed headers cannot grow it.
    by_header: Mutex<HashMap<String, (Instant, String)>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WorkloadRuntime {
    /// The port this node listens on for the workload, if any.
    pub fn listener_port(&self, key: &str) -> Option<u16> {
        lock(&self.listeners).get(key).map(|(port, _)| *port)
    }

    /// Forget what this node knows about a workload (after a change made here).
    fn forget(&self, key: &str) {
        lock(&self.resolved).remove(key);
        lock(&self.by_header).retain(|_, (_, k)| k != key);
    }

    /// Stop accepting on the workload's listener (connections already open finish their requests).
    pub(crate) fn stop_listening(&self, key: &str) {
        self.close(key);
    }

    fn close(&self, key: &str) -> Option<JoinHandle<()>> {
        lock(&self.listeners).remove(key).map(|(_, task)| {
            task.abort();
            task
        })
    }

    /// Stop every metadata listener and wait until their sockets are closed.
    pub async fn close_all(&self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.listeners)
            .drain()
            .map(|(_, (_, task))| {
                task.abort();
                task
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

fn endpoints(state: &AppState, port: Option<u16>) -> WorkloadEndpoints {
    WorkloadEndpoints {
        identity_endpoint: port.map(|p| format!("http://127.0.0.1:{p}{APP_SERVICE_PATH}")),
        imds_endpoint: port.map(|p| format!("http://127.0.0.1:{p}")),
        remote_identity_endpoint: format!("{}{APP_SERVICE_PATH}", state.public_url),
    }
}

fn canonical_key(resource_id: &str) -> String {
    ResourceId::parse(resource_id)
        .map(|id| id.key())
        .unwrap_or_else(|_| resource_id.to_ascii_lowercase())
}

/// Register the resource as a workload, or rotate the header secret of a registered one, and make sure this node
/// listens for it. Returns the new secret (shown only here) and the endpoints. The web-app host agent calls this
/// for a site; operators reach it through `PUT {resource}/providers/Berth.ManagedIdentity/workloadEndpoints/default`.
pub async fn register(
    state: &Arc<AppState>,
    resource_id: &str,
) -> Result<WorkloadCredentials, WorkloadError> {
    let Some(resource) = state.db.get_resource(&canonical_key(resource_id)).await? else {
        return Err(WorkloadError::ResourceMissing);
    };
    let secret = random_token(32);
    let now = now_rfc3339();
    let record = WorkloadRecord {
        resource_id: resource.id.clone(),
        header_hash: header_hash(&secret),
        imds_port: None,
        created_at: now.clone(),
        rotated_at: now,
    };
    let (stored, created) = match state.db.put_workload(&record).await? {
        WorkloadPut::Created(stored) => (stored, true),
        WorkloadPut::Rotated(stored) => (stored, false),
        WorkloadPut::ResourceMissing => return Err(WorkloadError::ResourceMissing),
    };
    let key = stored.key();
    state.workloads.forget(&key);
    let port = ensure_listener(state, &stored, true).await?;
    Ok(WorkloadCredentials {
        resource_id: stored.resource_id,
        identity_header: secret,
        endpoints: endpoints(state, Some(port)),
        created_at: stored.created_at,
        rotated_at: stored.rotated_at,
        created,
    })
}

/// A registered workload, without its secret.
pub async fn show(
    state: &AppState,
    resource_id: &str,
) -> Result<Option<WorkloadInfo>, WorkloadError> {
    let Some(record) = state.db.get_workload(&canonical_key(resource_id)).await? else {
        return Ok(None);
    };
    let port = state.workloads.listener_port(&record.key()).or(record.imds_port);
    Ok(Some(WorkloadInfo {
        resource_id: record.resource_id,
        endpoints: endpoints(state, port),
        created_at: record.created_at,
        rotated_at: record.rotated_at,
    }))
}

/// Unregister a workload and close its listener on this node. Returns whether it was registered.
pub async fn unregister(state: &AppState, resource_id: &str) -> Result<bool, WorkloadError> {
    let key = canonical_key(resource_id);
    let existed = state.db.delete_workload(&key).await?;
    state.workloads.forget(&key);
    if let Some(task) = state.workloads.close(&key) {
        let _ = task.await;
    }
    Ok(existed)
}

/// A token of one of the workload's identities for `resource` (the audience, e.g.
/// `https://containerregistry.azure.net`), as the endpoints hand out. The host agent calls this in-process.
pub async fn token_for(
    state: &AppState,
    resource_id: &str,
    selector: &IdentitySelector,
    resource: &str,
) -> Result<IssuedToken, WorkloadError> {
    let workload = resolve(state, &canonical_key(resource_id)).await?;
    issue(state, &workload, selector, resource)
}

/// The workload whose header secret this is (any node may have issued it).
pub(crate) async fn workload_for_header(
    state: &AppState,
    secret: &str,
) -> Result<Option<String>, WorkloadError> {
    let hash = header_hash(secret);
    if let Some((at, key)) = lock(&state.workloads.by_header).get(&hash) {
        if at.elapsed() < RESOLVE_TTL {
            return Ok(Some(key.clone()));
        }
    }
    let Some(record) = state.db.workload_by_header_hash(&hash).await? else {
        return Ok(None);
    };
    let key = record.key();
    lock(&state.workloads.by_header).insert(hash, (Instant::now(), key.clone()));
    Ok(Some(key))
}

/// The workload's identities: from this node's cache when read less than [`RESOLVE_TTL`] ago.
pub(crate) async fn resolve(
    state: &AppState,
    key: &str,
) -> Result<Arc<ResolvedWorkload>, WorkloadError> {
    if let Some((at, cached)) = lock(&state.workloads.resolved).get(key) {
        if at.elapsed() < RESOLVE_TTL {
            return cached.clone().ok_or(WorkloadError::NotRegistered);
        }
    }
    let resolved = read_workload(state, key).await?.map(Arc::new);
    let mut cache = lock(&state.workloads.resolved);
    if cache.len() > TOKEN_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key.to_owned(), (Instant::now(), resolved.clone()));
    resolved.ok_or(WorkloadError::NotRegistered)
}

async fn read_workload(
    state: &AppState,
    key: &str,
) -> Result<Option<ResolvedWorkload>, WorkloadError> {
    if state.db.get_workload(key).await?.is_none() {
        return Ok(None);
    }
    let Some(resource) = state.db.get_resource(key).await? else { return Ok(None) };
    let body: serde_json::Value = serde_json::from_str(&resource.body)
        .map_err(|e| WorkloadError::Internal(format!("stored body of {}: {e}", resource.id)))?;
    let mut bound = vec![key.to_owned()];
    if let Some(users) =
        body.pointer("/identity/userAssignedIdentities").and_then(|v| v.as_object())
    {
        bound.extend(users.keys().map(|k| canonical_key(k)));
    }
    let identities = state
        .db
        .identities_bound_to(&bound)
        .await?
        .into_iter()
        // Only the resource's own identity, and user-assigned identities attached to it.
        .filter(|p| is_own(p, key) || p.kind == PrincipalKind::UserAssignedIdentity)
        .collect();
    Ok(Some(ResolvedWorkload { key: key.to_owned(), identities }))
}

fn is_own(principal: &Principal, key: &str) -> bool {
    principal.resource_id.as_deref().is_some_and(|r| canonical_key(r) == key)
}

fn select<'a>(
    workload: &'a ResolvedWorkload,
    selector: &IdentitySelector,
) -> Option<&'a Principal> {
    let ids = &workload.identities;
    match selector {
        IdentitySelector::Default => ids.iter().find(|p| is_own(p, &workload.key)).or_else(|| {
            if ids.len() == 1 {
                ids.first()
            } else {
                None
            }
        }),
        IdentitySelector::ClientId(c) => {
            ids.iter().find(|p| p.app_id.eq_ignore_ascii_case(c.trim()))
        }
        IdentitySelector::ObjectId(o) => ids.iter().find(|p| p.id.eq_ignore_ascii_case(o.trim())),
        IdentitySelector::ResourceId(r) => {
            let wanted = canonical_key(r.trim());
            ids.iter().find(|p| {
                p.kind == PrincipalKind::UserAssignedIdentity
                    && p.resource_id.as_deref().is_some_and(|id| canonical_key(id) == wanted)
            })
        }
    }
}

/// Pick the identity and hand out its token for `resource`, minting one when none young enough is cached.
pub(crate) fn issue(
    state: &AppState,
    workload: &ResolvedWorkload,
    selector: &IdentitySelector,
    resource: &str,
) -> Result<IssuedToken, WorkloadError> {
    let wanted = normalize_audience(resource);
    if wanted.is_empty() || !state.known_audiences().iter().any(|a| normalize_audience(a) == wanted)
    {
        return Err(WorkloadError::UnknownResource(resource.to_owned()));
    }
    let principal = select(workload, selector).ok_or(WorkloadError::IdentityNotFound)?;
    let now = now_unix();
    let cache_key = (principal.id.clone(), resource.to_owned());
    if let Some(cached) = lock(&state.workloads.tokens).get(&cache_key) {
        if now - cached.issued_at < TOKEN_REUSE_SECS && cached.token.expires_on > now {
            return Ok(cached.token.clone());
        }
    }
    let lifetime = state.token_lifetime_secs;
    let claims = EntraClaims {
        aud: resource.to_owned(),
        iss: state.issuer(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        oid: principal.id.clone(),
        tid: state.tenant_id.clone(),
        sub: principal.id.clone(),
        appid: Some(principal.app_id.clone()),
        azp: None,
        idtyp: "app".into(),
        ver: "1.0".into(),
        uti: random_token(16),
        // The user-assigned identity's id, or the resource of a system-assigned one.
        xms_mirid: principal.resource_id.clone(),
        roles: Vec::new(),
    };
    let access_token: Arc<str> =
        state.keys().sign(&claims).map_err(|e| WorkloadError::Internal(e.to_string()))?.into();
    let token = IssuedToken {
        access_token,
        resource: resource.to_owned(),
        client_id: principal.app_id.clone(),
        not_before: now,
        expires_on: now + lifetime,
    };
    let mut cache = lock(&state.workloads.tokens);
    if cache.len() >= TOKEN_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(cache_key, CachedToken { token: token.clone(), issued_at: now });
    Ok(token)
}

/// Make sure this node listens for the workload: on the recorded port if it can, else (when `may_move`) on a
/// new one, which is recorded. Returns the port.
async fn ensure_listener(
    state: &Arc<AppState>,
    record: &WorkloadRecord,
    may_move: bool,
) -> Result<u16, WorkloadError> {
    let key = record.key();
    if let Some(port) = state.workloads.listener_port(&key) {
        return Ok(port);
    }
    let bound = match record.imds_port {
        Some(port) => match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => Some(listener),
            Err(e) if may_move => {
                tracing::warn!(workload = %record.resource_id, port, error = %e, "workload port taken; moving");
                None
            }
            Err(e) => {
                return Err(WorkloadError::Internal(format!("binding 127.0.0.1:{port}: {e}")))
            }
        },
        None => None,
    };
    let listener = match bound {
        Some(listener) => listener,
        None => TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| WorkloadError::Internal(format!("binding a workload listener: {e}")))?,
    };
    let port = listener.local_addr().map_err(|e| WorkloadError::Internal(e.to_string()))?.port();
    if record.imds_port != Some(port) {
        state.db.set_workload_port(&record.resource_id, port).await?;
    }
    let router = crate::routes::workload_router(state.clone(), key.clone());
    let task = tokio::spawn(serve_workload(listener, router));
    let mut listeners = lock(&state.workloads.listeners);
    if let Some((_, previous)) = listeners.insert(key, (port, task)) {
        previous.abort();
    }
    Ok(port)
}

/// Open the listeners of every registered workload (at start). A port another process holds (e.g. another berth
/// node on this host) is logged and left to it.
pub async fn open_all(state: &Arc<AppState>) -> Result<(), WorkloadError> {
    for record in state.db.list_workloads().await? {
        if let Err(e) = ensure_listener(state, &record, record.imds_port.is_none()).await {
            tracing::warn!(workload = %record.resource_id, error = %e, "workload listener not opened");
        }
    }
    Ok(())
}

/// Plain HTTP on loopback, as IMDS and App Service's local endpoint are.
async fn serve_workload(listener: TcpListener, router: axum::Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "workload listener accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "workload connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_hash_is_sha256_hex() {
        assert_eq!(
            header_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
