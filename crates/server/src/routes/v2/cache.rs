//! Small in-process caches of the data plane. Four hold things that never change once written: manifest bytes by
//! digest (content-addressed), verified registry access tokens (a signed token means the same thing until it
//! expires), signed access tokens by grant, handed out again for the same grant for a minute, and the repository
//! of each upload session (fixed when the session starts; a session that ended elsewhere, on another node or in
//! garbage collection, has no bytes left in the blob store, which every use of a session reads or writes, so a
//! stale entry ends in `BLOB_UPLOAD_UNKNOWN` all the same). The last holds registries (name, id, anonymous pull)
//! for [`REGISTRY_TTL`]: this node forgets them at once when its control plane changes one, other nodes sharing
//! the store see the change within the TTL. Repository contents (blob links, manifests, tags) are always read
//! from the metadata store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_identity::RegistryAccess;
use bytes::Bytes;

use crate::registry_auth::{MintedToken, Registry};

/// Total bytes of manifests kept in memory.
const MANIFEST_BUDGET: usize = 8 * 1024 * 1024;
/// Manifests larger than this are read from the blob store each time (they are rare and would crowd others out).
const MANIFEST_ENTRY_LIMIT: usize = 256 * 1024;
/// Verified tokens kept; each is about a kilobyte.
const TOKEN_ENTRIES: usize = 1024;
/// Signed access tokens kept for reuse (by subject, audience and access); each is about a kilobyte.
const MINTED_ENTRIES: usize = 4096;
/// How long a registry looked up in the metadata store is trusted.
pub(crate) const REGISTRY_TTL: Duration = Duration::from_secs(1);
const REGISTRY_ENTRIES: usize = 256;
/// Upload sessions remembered; each is about 150 bytes.
const UPLOAD_ENTRIES: usize = 4096;

/// A token that passed verification: its audience, expiry and granted access.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    pub audience: String,
    pub expires_at: i64,
    pub access: Arc<Vec<RegistryAccess>>,
}

/// A map bounded by a total weight; when full, arbitrary entries make room (no recency bookkeeping on the hot
/// read path, which only takes the lock for a lookup).
struct Bounded<V> {
    entries: HashMap<String, (V, usize)>,
    weight: usize,
    budget: usize,
}

impl<V: Clone> Bounded<V> {
    fn new(budget: usize) -> Self {
        Bounded { entries: HashMap::new(), weight: 0, budget }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).map(|(value, _)| value.clone())
    }

    fn insert(&mut self, key: String, value: V, weight: usize) {
        if weight > self.budget {
            return;
        }
        if let Some((_, old)) = self.entries.remove(&key) {
            self.weight -= old;
        }
        while self.weight + weight > self.budget {
            let Some(victim) = self.entries.keys().next().cloned() else { break };
            if let Some((_, old)) = self.entries.remove(&victim) {
                self.weight -= old;
            }
        }
        self.weight += weight;
        self.entries.insert(key, (value, weight));
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, old)) = self.entries.remove(key) {
            self.weight -= old;
        }
    }
}

/// The data plane's caches, shared by every request of a process.
pub struct V2Caches {
    manifests: Mutex<Bounded<Bytes>>,
    tokens: Mutex<Bounded<VerifiedToken>>,
    minted: Mutex<Bounded<MintedToken>>,
    registries: Mutex<Bounded<(Instant, Registry)>>,
    /// Upload id → (registry, repository).
    uploads: Mutex<Bounded<(String, String)>>,
}

impl Default for V2Caches {
    fn default() -> Self {
        V2Caches {
            manifests: Mutex::new(Bounded::new(MANIFEST_BUDGET)),
            tokens: Mutex::new(Bounded::new(TOKEN_ENTRIES)),
            minted: Mutex::new(Bounded::new(MINTED_ENTRIES)),
            registries: Mutex::new(Bounded::new(REGISTRY_ENTRIES)),
            uploads: Mutex::new(Bounded::new(UPLOAD_ENTRIES)),
        }
    }
}

impl V2Caches {
    /// Manifest bytes by digest; the caller has checked that the manifest belongs to the repository.
    pub(crate) fn manifest(&self, digest: &str) -> Option<Bytes> {
        self.manifests.lock().unwrap_or_else(PoisonError::into_inner).get(digest)
    }

    /// Remember manifest bytes that were verified against `digest`.
    pub(crate) fn remember_manifest(&self, digest: &str, bytes: Bytes) {
        if bytes.len() > MANIFEST_ENTRY_LIMIT {
            return;
        }
        let weight = bytes.len() + digest.len();
        self.manifests.lock().unwrap_or_else(PoisonError::into_inner).insert(
            digest.to_string(),
            bytes,
            weight,
        );
    }

    /// A previously verified access token that has not expired at `now`.
    pub(crate) fn token(&self, token: &str, now: i64) -> Option<VerifiedToken> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let found = tokens.get(token)?;
        if found.expires_at <= now {
            tokens.remove(token);
            return None;
        }
        Some(found)
    }

    /// A registry (by lower-case name) looked up less than [`REGISTRY_TTL`] ago.
    pub(crate) fn registry(&self, name: &str) -> Option<Registry> {
        let registries = self.registries.lock().unwrap_or_else(PoisonError::into_inner);
        registries.get(name).filter(|(at, _)| at.elapsed() < REGISTRY_TTL).map(|(_, r)| r)
    }

    pub(crate) fn remember_registry(&self, registry: Registry) {
        self.registries.lock().unwrap_or_else(PoisonError::into_inner).insert(
            registry.name.clone(),
            (Instant::now(), registry),
            1,
        );
    }

    /// Forget every cached registry: one was created, changed or deleted on this node.
    pub(crate) fn forget_registries(&self) {
        let mut registries = self.registries.lock().unwrap_or_else(PoisonError::into_inner);
        *registries = Bounded::new(REGISTRY_ENTRIES);
    }

    /// A signed access token minted for the grant `key` (see `registry_auth::mint_access_token`).
    pub(crate) fn minted_token(&self, key: &str) -> Option<MintedToken> {
        self.minted.lock().unwrap_or_else(PoisonError::into_inner).get(key)
    }

    pub(crate) fn remember_minted_token(&self, key: String, minted: MintedToken) {
        self.minted.lock().unwrap_or_else(PoisonError::into_inner).insert(key, minted, 1);
    }

    /// The registry and repository an upload session was started in, if this process knows the session.
    pub(crate) fn upload(&self, id: &str) -> Option<(String, String)> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner).get(id)
    }

    pub(crate) fn remember_upload(&self, id: &str, registry: &str, repository: &str) {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner).insert(
            id.to_string(),
            (registry.to_string(), repository.to_string()),
            1,
        );
    }

    /// The session ended (finished, cancelled, its bytes gone).
    pub(crate) fn forget_upload(&self, id: &str) {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    pub(crate) fn remember_token(&self, token: &str, verified: VerifiedToken) {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(
            token.to_string(),
            verified,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_keeps_its_budget() {
        let mut map = Bounded::new(10);
        map.insert("a".into(), 1, 4);
        map.insert("b".into(), 2, 4);
        assert_eq!(map.weight, 8);
        map.insert("c".into(), 3, 4);
        assert!(map.weight <= 10);
        assert_eq!(map.get("c"), Some(3));
        map.insert("huge".into(), 4, 11);
        assert_eq!(map.get("huge"), None, "an entry over the whole budget is not kept");
        map.insert("c".into(), 5, 2);
        assert_eq!(map.get("c"), Some(5));
        assert_eq!(map.weight, map.entries.values().map(|(_, w)| w).sum::<usize>());
    }

    #[test]
    fn expired_tokens_are_forgotten() {
        let caches = V2Caches::default();
        let verified =
            VerifiedToken { audience: "x".into(), expires_at: 100, access: Arc::new(Vec::new()) };
        caches.remember_token("t", verified);
        assert!(caches.token("t", 99).is_some());
        assert!(caches.token("t", 100).is_none());
        assert!(caches.token("t", 50).is_none(), "an expired entry is removed");
    }

    #[test]
    fn registries_are_kept_briefly_and_forgotten_on_change() {
        let caches = V2Caches::default();
        let id = berth_arm::ResourceId::parse(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/acr",
        )
        .unwrap();
        let registry = Registry {
            name: "acr".into(),
            id,
            login_server: "h/acr".into(),
            anonymous_pull: false,
            abac_mode: false,
            arm_audience_tokens: true,
        };
        caches.remember_registry(registry);
        assert_eq!(caches.registry("acr").map(|r| r.login_server), Some("h/acr".into()));
        assert!(caches.registry("other").is_none());
        caches.forget_registries();
        assert!(caches.registry("acr").is_none());
    }

    #[test]
    fn upload_sessions_are_remembered_until_forgotten() {
        let caches = V2Caches::default();
        assert!(caches.upload("u1").is_none());
        caches.remember_upload("u1", "acr", "app");
        assert_eq!(caches.upload("u1"), Some(("acr".into(), "app".into())));
        caches.forget_upload("u1");
        assert!(caches.upload("u1").is_none());
    }

    #[test]
    fn large_manifests_are_not_cached() {
        let caches = V2Caches::default();
        caches.remember_manifest("small", Bytes::from_static(b"{}"));
        caches.remember_manifest("large", Bytes::from(vec![b' '; MANIFEST_ENTRY_LIMIT + 1]));
        assert_eq!(caches.manifest("small").as_deref(), Some(&b"{}"[..]));
        assert!(caches.manifest("large").is_none());
    }
}
