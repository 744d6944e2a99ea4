//! Garbage collection of registry content: what deleting manifests, tags and repositories left behind.
//!
//! Deletions in the data plane and the ACR API only remove metadata; the bytes go here. One run:
//!
//! 1. with `untagged` only, and in one registry: manifests that no tag points at, no index of their repository
//!    references and that are not referrers of a subject still in the repository (repeatedly: an index's children
//!    and a subject's referrers follow it);
//! 2. blob links (one registry, or all) that no manifest of their repository references;
//! 3. blobs (of every registry: the blob store is shared and content-addressed) that no link and no manifest names
//!    any more, and files in the blob store without any record (a crash between writing bytes and linking them);
//! 4. upload sessions that received no bytes.
//!
//! Everything in 1–4 must also be older than the grace period (its manifest's creation, the link's last upload or
//! mount, the blob's last link, the file's last write, the session's last bytes), so that a push in progress, whose
//! blobs are not referenced until its manifest arrives, keeps them. A run first reads the state and plans every
//! deletion from it (the plan is also the answer of a dry run), then applies each deletion in its own transaction,
//! which checks again, under the digest's lock, that it still holds: anything pushed, tagged or referenced since
//! the plan was made is kept. Why that lock makes deleting bytes safe while pushes continue, on SQLite and on
//! PostgreSQL with several nodes, is explained in `berth_db`'s `gc.rs`. Correctness does not depend on the grace
//! period: with none, a push can fail (its not yet referenced blobs were collected) but never lose a blob it was
//! told is stored and referenced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_db::{DbError, GcBlob, GcManifest, GcReference, RepositoryDigest};
use berth_oci::Digest;
use berth_storage::{BlobInfo, StorageError, UploadId};
use futures::TryStreamExt;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::time::now_rfc3339;

/// What one run does.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Plan and count only; delete nothing.
    pub dry_run: bool,
    /// Also delete untagged manifests (needs `registry`).
    pub untagged: bool,
    /// Only what is older than this is collected.
    pub grace_period: Duration,
    /// Manifests and links of this registry (lower-cased name); `None` for every registry.
    pub registry: Option<String>,
}

/// What a run deleted (or, in a dry run, would delete). `deletedBlobs` and `reclaimedBytes` count blob files
/// and the bytes they held; upload sessions are only logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub deleted_manifests: u64,
    pub deleted_blob_links: u64,
    pub deleted_blobs: u64,
    pub reclaimed_bytes: u64,
    #[serde(skip)]
    pub deleted_uploads: u64,
}

impl GcReport {
    fn is_empty(&self) -> bool {
        *self == GcReport::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("metadata store: {0}")]
    Db(#[from] DbError),
    #[error("blob store: {0}")]
    Storage(#[from] StorageError),
    #[error("untagged manifests are collected one registry at a time")]
    UntaggedNeedsRegistry,
}

/// A link to delete and the time it was last made, as read.
struct PlannedLink {
    link: RepositoryDigest,
    linked_at: String,
}

/// Everything one run deletes, in order.
#[derive(Default)]
struct Plan {
    manifests: Vec<RepositoryDigest>,
    links: Vec<PlannedLink>,
    blobs: Vec<GcBlob>,
    orphans: Vec<BlobInfo>,
}

/// Whether an RFC 3339 time lies before `cutoff`. Unreadable times never do: such things are kept.
fn before(time: &str, cutoff: OffsetDateTime) -> bool {
    OffsetDateTime::parse(time, &Rfc3339).is_ok_and(|t| t < cutoff)
}

/// Run once. `stop` ends a run early, between two deletions (at shutdown); the report then covers what was done.
pub async fn collect(
    state: &AppState,
    options: &GcOptions,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<GcReport, GcError> {
    if options.untagged && options.registry.is_none() {
        return Err(GcError::UntaggedNeedsRegistry);
    }
    let now = OffsetDateTime::now_utc();
    let cutoff = now - options.grace_period;
    let file_cutoff =
        SystemTime::now().checked_sub(options.grace_period).unwrap_or(SystemTime::UNIX_EPOCH);
    let plan = make_plan(state, options, cutoff, file_cutoff).await?;
    if options.dry_run {
        return Ok(GcReport {
            deleted_manifests: plan.manifests.len() as u64,
            deleted_blob_links: plan.links.len() as u64,
            deleted_blobs: (plan.blobs.len() + plan.orphans.len()) as u64,
            reclaimed_bytes: plan
                .blobs
                .iter()
                .map(|b| u64::try_from(b.size).unwrap_or(0))
                .chain(plan.orphans.iter().map(|o| o.size))
                .sum(),
            deleted_uploads: 0,
        });
    }
    let stopping = || stop.is_some_and(|s| *s.borrow());
    let mut report = GcReport::default();
    for manifest in &plan.manifests {
        if stopping() {
            return Ok(report);
        }
        if state.db.gc_delete_untagged_manifest(manifest).await? {
            report.deleted_manifests += 1;
        }
    }
    for planned in &plan.links {
        if stopping() {
            return Ok(report);
        }
        if state.db.gc_delete_link(&planned.link, &planned.linked_at).await? {
            report.deleted_blob_links += 1;
        }
    }
    for blob in &plan.blobs {
        if stopping() {
            return Ok(report);
        }
        let Ok(digest) = Digest::parse(&blob.digest) else {
            tracing::warn!(digest = %blob.digest, "garbage collection skips a blob row with an invalid digest");
            continue;
        };
        let remove = state.blobs.delete(&digest);
        match state.db.gc_delete_blob(&blob.digest, &blob.last_linked_at, remove).await? {
            Ok(None) => {}
            Ok(Some(removed)) => {
                report.deleted_blobs += 1;
                if removed {
                    report.reclaimed_bytes += u64::try_from(blob.size).unwrap_or(0);
                }
            }
            Err(error) => {
                tracing::warn!(%digest, %error, "garbage collection could not delete a blob")
            }
        }
    }
    let now_text = now_rfc3339();
    for orphan in &plan.orphans {
        if stopping() {
            return Ok(report);
        }
        let size = i64::try_from(orphan.size).unwrap_or(i64::MAX);
        let remove = state.blobs.delete(&orphan.digest);
        match state.db.gc_delete_orphan(orphan.digest.as_str(), size, &now_text, remove).await? {
            Ok(None) => {}
            Ok(Some(removed)) => {
                if removed {
                    report.deleted_blobs += 1;
                    report.reclaimed_bytes += orphan.size;
                }
            }
            Err(error) => {
                tracing::warn!(digest = %orphan.digest, %error, "garbage collection could not delete a file")
            }
        }
    }
    if !stopping() {
        report.deleted_uploads = remove_stale_uploads(state, options.grace_period, cutoff).await?;
    }
    Ok(report)
}

async fn make_plan(
    state: &AppState,
    options: &GcOptions,
    cutoff: OffsetDateTime,
    file_cutoff: SystemTime,
) -> Result<Plan, GcError> {
    let registry = options.registry.as_deref();
    let references = state.db.gc_references(registry).await?;
    let mut plan = Plan::default();
    if options.untagged {
        let manifests = state.db.gc_manifests(registry).await?;
        let tagged: HashSet<RepositoryDigest> =
            state.db.gc_tagged(registry).await?.into_iter().collect();
        plan.manifests = untagged_manifests(&manifests, &tagged, &references, cutoff);
    }
    let deleted_manifests: HashSet<&RepositoryDigest> = plan.manifests.iter().collect();

    // Links no remaining manifest of their repository references.
    let referenced: HashSet<(&str, &str, &str)> = references
        .iter()
        .filter(|r| {
            !deleted_manifests.contains(&RepositoryDigest {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                digest: r.manifest.clone(),
            })
        })
        .map(|r| (r.registry.as_str(), r.repository.as_str(), r.target.as_str()))
        .collect();
    for link in state.db.gc_links(registry).await? {
        let key = (link.registry.as_str(), link.repository.as_str(), link.digest.as_str());
        if !referenced.contains(&key) && before(&link.linked_at, cutoff) {
            plan.links.push(PlannedLink {
                link: RepositoryDigest {
                    registry: link.registry,
                    repository: link.repository,
                    digest: link.digest,
                },
                linked_at: link.linked_at,
            });
        }
    }

    // Blobs nothing will name once the above are gone.
    let mut links_going: HashMap<&str, i64> = HashMap::new();
    for planned in &plan.links {
        *links_going.entry(planned.link.digest.as_str()).or_default() += 1;
    }
    let mut manifests_going: HashMap<&str, i64> = HashMap::new();
    for manifest in &plan.manifests {
        *manifests_going.entry(manifest.digest.as_str()).or_default() += 1;
    }
    let rows = state.db.gc_blobs().await?;
    let known: HashSet<String> = rows.iter().map(|b| b.digest.clone()).collect();
    let mut blobs = Vec::new();
    for blob in rows {
        let links = blob.links - links_going.get(blob.digest.as_str()).copied().unwrap_or(0);
        let manifests =
            blob.manifests - manifests_going.get(blob.digest.as_str()).copied().unwrap_or(0);
        if links <= 0 && manifests <= 0 && before(&blob.last_linked_at, cutoff) {
            blobs.push(blob);
        }
    }
    plan.blobs = blobs;

    // Files without a record.
    let mut files = state.blobs.list_blobs();
    while let Some(file) = files.try_next().await? {
        if file.modified < file_cutoff && !known.contains(file.digest.as_str()) {
            plan.orphans.push(file);
        }
    }
    Ok(plan)
}

/// Untagged manifests to delete, in an order in which each is deletable once the ones before it are gone: first
/// those nothing keeps, then the children and referrers that only the first kept, and so on.
fn untagged_manifests(
    manifests: &[GcManifest],
    tagged: &HashSet<RepositoryDigest>,
    references: &[GcReference],
    cutoff: OffsetDateTime,
) -> Vec<RepositoryDigest> {
    type Repository<'a> = (&'a str, &'a str);
    let mut by_repository: HashMap<Repository<'_>, Vec<&GcManifest>> = HashMap::new();
    for manifest in manifests {
        by_repository
            .entry((manifest.registry.as_str(), manifest.repository.as_str()))
            .or_default()
            .push(manifest);
    }
    // Index → child manifests.
    let mut children: HashMap<(Repository<'_>, &str), Vec<&str>> = HashMap::new();
    for reference in references.iter().filter(|r| r.kind == "manifest") {
        children
            .entry(((&reference.registry, &reference.repository), &reference.manifest))
            .or_default()
            .push(&reference.target);
    }
    let mut repositories: Vec<_> = by_repository.into_iter().collect();
    repositories.sort_by_key(|(repository, _)| *repository);
    let mut order = Vec::new();
    for ((registry, repository), manifests) in repositories {
        let mut present: HashSet<&str> = manifests.iter().map(|m| m.digest.as_str()).collect();
        let is_tagged = |digest: &str| {
            tagged.contains(&RepositoryDigest {
                registry: registry.to_string(),
                repository: repository.to_string(),
                digest: digest.to_string(),
            })
        };
        loop {
            let kept_by_index: HashSet<&str> = present
                .iter()
                .filter_map(|parent| children.get(&((registry, repository), *parent)))
                .flatten()
                .copied()
                .collect();
            let mut layer: Vec<&str> = manifests
                .iter()
                .filter(|m| present.contains(m.digest.as_str()))
                .filter(|m| before(&m.created_at, cutoff))
                .filter(|m| !is_tagged(&m.digest) && !kept_by_index.contains(m.digest.as_str()))
                .filter(|m| m.subject.as_deref().is_none_or(|s| !present.contains(s)))
                .map(|m| m.digest.as_str())
                .collect();
            if layer.is_empty() {
                break;
            }
            layer.sort_unstable();
            for digest in layer {
                present.remove(digest);
                order.push(RepositoryDigest {
                    registry: registry.to_string(),
                    repository: repository.to_string(),
                    digest: digest.to_string(),
                });
            }
        }
    }
    order
}

/// Upload sessions without bytes for the grace period: their bytes in the blob store (sessions a request is
/// working on in this process are skipped) and their records, also records whose bytes are gone.
async fn remove_stale_uploads(
    state: &AppState,
    grace_period: Duration,
    cutoff: OffsetDateTime,
) -> Result<u64, GcError> {
    let mut removed = 0;
    for id in state.blobs.remove_stale_uploads(grace_period).await? {
        state.v2_caches.forget_upload(id.as_str());
        state.db.delete_upload(id.as_str()).await?;
        removed += 1;
    }
    for record in state.db.gc_uploads().await? {
        if !before(&record.created_at, cutoff) {
            continue;
        }
        let gone = match UploadId::parse(&record.id) {
            Ok(id) => {
                matches!(state.blobs.upload_status(&id).await, Err(StorageError::UploadUnknown(_)))
            }
            Err(_) => true,
        };
        if gone {
            state.v2_caches.forget_upload(&record.id);
            if state.db.delete_upload(&record.id).await? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The background collector of `berth serve`: every `interval`, blob-level garbage of all registries (links no
/// manifest references, unreferenced blobs, orphan files, stale uploads; never manifests). Ends at shutdown.
pub(crate) fn spawn_background(
    state: Arc<AppState>,
    interval: Duration,
    grace_period: Duration,
    audit_retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let options = GcOptions { dry_run: false, untagged: false, grace_period, registry: None };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            match collect(&state, &options, Some(&shutdown)).await {
                Ok(report) if report.is_empty() => {
                    tracing::debug!("garbage collection found nothing")
                }
                Ok(report) => tracing::info!(
                    manifests = report.deleted_manifests,
                    links = report.deleted_blob_links,
                    blobs = report.deleted_blobs,
                    bytes = report.reclaimed_bytes,
                    uploads = report.deleted_uploads,
                    "garbage collection"
                ),
                Err(error) => tracing::warn!(%error, "garbage collection failed"),
            }
            if !audit_retention.is_zero() {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or_default();
                let cutoff = now_ms - audit_retention.as_millis() as i64;
                match state.db.delete_audit_events_before(cutoff).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        tracing::info!(deleted, "audit events past their retention removed")
                    }
                    Err(error) => tracing::warn!(%error, "removing old audit events failed"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(repository: &str, digest: &str, subject: Option<&str>) -> GcManifest {
        GcManifest {
            registry: "acr".into(),
            repository: repository.into(),
            digest: digest.into(),
            subject: subject.map(str::to_string),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn at(repository: &str, digest: &str) -> RepositoryDigest {
        RepositoryDigest {
            registry: "acr".into(),
            repository: repository.into(),
            digest: digest.into(),
        }
    }

    fn reference(manifest: &str, target: &str, kind: &str) -> GcReference {
        GcReference {
            registry: "acr".into(),
            repository: "app".into(),
            manifest: manifest.into(),
            target: target.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn untagged_manifests_go_parents_and_subjects_first() {
        let manifests = vec![
            manifest("app", "index", None),
            manifest("app", "child", None),
            manifest("app", "tagged", None),
            manifest("app", "child-of-tagged", None),
            manifest("app", "signature", Some("index")),
            manifest("app", "kept-signature", Some("tagged")),
            manifest("other", "child", None),
        ];
        let tagged: HashSet<RepositoryDigest> = [at("app", "tagged")].into_iter().collect();
        let references = vec![
            reference("index", "child", "manifest"),
            reference("tagged", "child-of-tagged", "manifest"),
            reference("signature", "index", "subject"),
            reference("index", "layer", "blob"),
        ];
        let cutoff = OffsetDateTime::parse("2026-01-02T00:00:00Z", &Rfc3339).unwrap();
        let order = untagged_manifests(&manifests, &tagged, &references, cutoff);
        let names: Vec<(&str, &str)> =
            order.iter().map(|m| (m.repository.as_str(), m.digest.as_str())).collect();
        assert_eq!(
            names,
            [("app", "index"), ("app", "child"), ("app", "signature"), ("other", "child")]
        );

        // Younger than the grace period: kept.
        let early = OffsetDateTime::parse("2025-12-31T00:00:00Z", &Rfc3339).unwrap();
        assert!(untagged_manifests(&manifests, &tagged, &references, early).is_empty());
    }

    #[test]
    fn unreadable_times_are_never_old() {
        let cutoff = OffsetDateTime::parse("2026-01-02T00:00:00Z", &Rfc3339).unwrap();
        assert!(before("2026-01-01T23:59:59.999999999Z", cutoff));
        assert!(!before("2026-01-02T00:00:00Z", cutoff));
        assert!(!before("", cutoff));
        assert!(!before("yesterday", cutoff));
    }
}
