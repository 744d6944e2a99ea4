//! Garbage collection of the registry's content, safe while pushes continue: the `blobs` table, the writes that
//! make a digest reachable, what garbage collection reads, and its deletions.
//!
//! # Why no push can lose a blob
//!
//! A blob is reachable when its bytes sit at their content address in the blob store and a link (or a manifest)
//! names its digest. Garbage collection decides that nothing names digest D and deletes D's file; a push that
//! links D between that decision and the deletion would end up with a link to nothing. Both sides therefore take
//! the same lock first: D's row in `blobs`.
//!
//! - Writers (an upload's commit, a mount, a manifest put, which also writes the manifest's own bytes) hold D's lock
//!   before they write the bytes (the caller's `publish` future runs inside the transaction), check what the
//!   manifest references, and insert the link. On PostgreSQL they take it by inserting or updating D's row first
//!   (`touch_blob`, `lock_blob`); on SQLite `BEGIN IMMEDIATE` has already taken the database's single write lock,
//!   so there the row is written after the bytes, with the other records and the commit, in one round trip on
//!   the write connection (`writer.rs`).
//! - Garbage collection locks D's row the same way (`UPDATE ... SET size = size`, or for a file without a row
//!   an `INSERT ... ON CONFLICT DO NOTHING`, which waits for a writer's uncommitted insert), then checks in a new
//!   statement that no link and no manifest names D, and deletes the file before it commits the row's deletion.
//!
//! Whoever comes second waits for the first to commit. A writer that waited finds no row, inserts one and writes
//! the bytes again, after the file was deleted. A collector that waited sees the writer's link in its check (on
//! PostgreSQL in READ COMMITTED, each statement sees what committed before it started: the check runs after the
//! lock was granted), or, where a single statement both waits and checks, a changed `last_linked_at` makes it
//! skip the row (a blocked `UPDATE`/`DELETE` re-checks only the row's own columns, not its subqueries). A row whose
//! file a crash deleted before the deletion committed is harmless: nothing links it (that was checked), and
//! every way to link it again (upload) writes the bytes again.
//!
//! Locks are taken in digest order when a transaction needs several (a manifest and what it references), and
//! garbage collection takes one per transaction, so writers and collectors cannot deadlock on them. Every
//! transaction here starts with a write, which on SQLite takes the write lock at once (waiting through
//! `busy_timeout`) instead of failing later when a read snapshot would have to be upgraded.

use std::future::Future;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::batch::{self, Batch, Value};
use crate::registry::{ensure_repository, push_ensure_repository, push_manifest_records};
use crate::{Db, ManifestRecord, ReferenceKind, Result, UploadRecord};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// A link of a blob to a repository being made.
#[derive(Debug, Clone, Copy)]
pub struct BlobLink<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub digest: &'a str,
    pub size: i64,
    /// RFC 3339; becomes the link's `linked_at` and the blob's `last_linked_at`.
    pub now: &'a str,
}

/// The outcome of [`Db::store_manifest`].
#[derive(Debug)]
pub enum ManifestStore<E> {
    Stored,
    /// The manifest references a blob not linked to its repository, or a manifest the repository lacks.
    Missing {
        digest: String,
        kind: ReferenceKind,
    },
    /// The caller's `publish` failed; nothing was stored.
    NotPublished(E),
}

/// A manifest as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcManifest {
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub subject: Option<String>,
    pub created_at: String,
}

/// A digest in one repository: a tagged manifest, or a manifest garbage collection deletes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryDigest {
    pub registry: String,
    pub repository: String,
    pub digest: String,
}

/// A manifest's reference to `target` (a blob, a child manifest or its subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReference {
    pub registry: String,
    pub repository: String,
    pub manifest: String,
    pub target: String,
    pub kind: String,
}

/// A blob link with the time it was last made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLink {
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub size: i64,
    pub linked_at: String,
}

/// A row of `blobs` with how many links and manifests (in any registry) name its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcBlob {
    pub digest: String,
    pub size: i64,
    pub last_linked_at: String,
    pub links: i64,
    pub manifests: i64,
}

const TOUCH_BLOB: &str = "INSERT INTO blobs (digest, size, last_linked_at) VALUES ($1, $2, $3) \
     ON CONFLICT (digest) DO UPDATE SET size = excluded.size, last_linked_at = excluded.last_linked_at";

/// Insert or refresh the digest's row, taking its lock.
async fn touch_blob(tx: &mut Tx<'_>, digest: &str, size: i64, now: &str) -> Result<()> {
    sqlx::query(TOUCH_BLOB).bind(digest).bind(size).bind(now).execute(&mut **tx).await?;
    Ok(())
}

fn push_touch_blob<'a>(batch: &mut Batch<'a>, digest: &'a str, size: i64, now: &'a str) {
    batch.push(TOUCH_BLOB, vec![Value::Text(digest), Value::Integer(size), Value::Text(now)]);
}

/// Lock the digest's row if it exists, refreshing `last_linked_at` when `now` is given; whether it exists.
async fn lock_blob(tx: &mut Tx<'_>, digest: &str, now: Option<&str>) -> Result<bool> {
    let done = match now {
        Some(now) => {
            sqlx::query("UPDATE blobs SET last_linked_at = $2 WHERE digest = $1")
                .bind(digest)
                .bind(now)
                .execute(&mut **tx)
                .await?
        }
        None => {
            sqlx::query("UPDATE blobs SET size = size WHERE digest = $1")
                .bind(digest)
                .execute(&mut **tx)
                .await?
        }
    };
    Ok(done.rows_affected() > 0)
}

const UPSERT_LINK: &str =
    "INSERT INTO repository_blobs (registry, repository, digest, size, created_at, linked_at) \
     VALUES ($1, $2, $3, $4, $5, $5) \
     ON CONFLICT (registry, repository, digest) DO UPDATE SET linked_at = excluded.linked_at";

async fn upsert_link(tx: &mut Tx<'_>, link: &BlobLink<'_>) -> Result<()> {
    sqlx::query(UPSERT_LINK)
        .bind(link.registry)
        .bind(link.repository)
        .bind(link.digest)
        .bind(link.size)
        .bind(link.now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn push_upsert_link<'a>(batch: &mut Batch<'a>, link: &BlobLink<'a>) {
    batch.push(
        UPSERT_LINK,
        vec![
            Value::Text(link.registry),
            Value::Text(link.repository),
            Value::Text(link.digest),
            Value::Integer(link.size),
            Value::Text(link.now),
        ],
    );
}

/// The records of a blob link after its row: the repository, the link, and the end of its upload session.
fn push_link_records<'a>(batch: &mut Batch<'a>, link: &BlobLink<'a>, upload_id: Option<&'a str>) {
    push_ensure_repository(batch, link.registry, link.repository, link.now);
    push_upsert_link(batch, link);
    if let Some(id) = upload_id {
        batch.push("DELETE FROM uploads WHERE id = $1", vec![Value::Text(id)]);
    }
}

/// Whether anything (a link or a manifest, in any registry) names the digest.
async fn digest_in_use(tx: &mut Tx<'_>, digest: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS used FROM repository_blobs WHERE digest = $1 \
         UNION ALL SELECT 1 AS used FROM manifests WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

fn in_registry(base: &str, registry: Option<&str>) -> String {
    match registry {
        Some(_) => format!("{base} WHERE registry = $1"),
        None => base.to_string(),
    }
}

async fn fetch_scoped(db: &Db, base: &str, registry: Option<&str>) -> Result<Vec<AnyRow>> {
    let sql = in_registry(base, registry);
    let mut query = sqlx::query(&sql);
    if let Some(registry) = registry {
        query = query.bind(registry);
    }
    Ok(query.fetch_all(db.pool()).await?)
}

impl Db {
    // ---- writes that make a digest reachable --------------------------------------------------------------

    /// Link a blob to a repository (creating the repository), after `publish` made its bytes visible in the blob
    /// store, all while the blob's row is locked; with `upload_id`, also end that upload session. If `publish`
    /// fails nothing is written and its error is returned inside `Ok`.
    pub async fn link_blob_publishing<T, E>(
        &self,
        link: &BlobLink<'_>,
        upload_id: Option<&str>,
        publish: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let mut batch = Batch::default();
        // See the module's comment. SQLite's `BEGIN IMMEDIATE` holds the one write lock before the bytes appear;
        // the rows and the commit follow in one round trip to the connection's thread (`writer.rs`).
        if let Some(writer) = &self.sqlite_writer {
            let mut tx = writer.begin().await?;
            tx.ensure_begun().await?;
            let published = match publish.await {
                Ok(published) => published,
                Err(error) => {
                    tx.rollback().await?;
                    return Ok(Err(error));
                }
            };
            push_touch_blob(&mut batch, link.digest, link.size, link.now);
            push_link_records(&mut batch, link, upload_id);
            tx.commit(batch).await?;
            return Ok(Ok(published));
        }
        // PostgreSQL: the blob's row is locked before its bytes appear.
        let mut tx = self.begin_write().await?;
        touch_blob(&mut tx, link.digest, link.size, link.now).await?;
        let published = match publish.await {
            Ok(published) => published,
            Err(error) => {
                tx.rollback().await?;
                return Ok(Err(error));
            }
        };
        push_link_records(&mut batch, link, upload_id);
        batch.run(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(Ok(published))
    }

    /// Link a blob that the repository `source` of the same registry has to `link.repository`; `None` (and
    /// nothing written) when the source does not have it or its bytes are gone. Returns the blob's size.
    pub async fn mount_blob(
        &self,
        registry: &str,
        source: &str,
        repository: &str,
        digest: &str,
        now: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        if !lock_blob(&mut tx, digest, Some(now)).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT size FROM repository_blobs WHERE registry = $1 AND repository = $2 AND digest = $3",
        )
        .bind(registry)
        .bind(source)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let size: i64 = row.try_get("size")?;
        ensure_repository(&mut tx, registry, repository, now).await?;
        upsert_link(&mut tx, &BlobLink { registry, repository, digest, size, now }).await?;
        tx.commit().await?;
        Ok(Some(size))
    }

    /// Store a manifest like [`Db::put_manifest`], in one transaction that first locks the manifest's digest and
    /// every digest it references (in digest order), then checks that each referenced blob is linked to the
    /// repository and each child manifest is in it, then runs `publish` (which writes the manifest's bytes), and
    /// only then writes the records.
    pub async fn store_manifest<T, E>(
        &self,
        manifest: &ManifestRecord,
        references: &[(String, ReferenceKind)],
        tag: Option<&str>,
        publish: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<ManifestStore<E>> {
        let presence = presence_query(manifest, references);
        // As in `link_blob_publishing`: on SQLite the check takes the write lock (`BEGIN IMMEDIATE` goes with it),
        // and the rows and the commit follow in one round trip.
        if let Some(writer) = &self.sqlite_writer {
            let mut tx = writer.begin().await?;
            let present = match &presence {
                Some((sql, values)) => tx.fetch_all(sql, values).await?,
                None => Vec::new(),
            };
            if let Some((digest, kind)) = first_absent(references, &present)? {
                tx.rollback().await?;
                return Ok(ManifestStore::Missing { digest, kind });
            }
            tx.ensure_begun().await?;
            if let Err(error) = publish.await {
                tx.rollback().await?;
                return Ok(ManifestStore::NotPublished(error));
            }
            let mut batch = Batch::default();
            push_manifest_locks(&mut batch, manifest, references);
            push_manifest_records(&mut batch, manifest, references, tag);
            tx.commit(batch).await?;
            return Ok(ManifestStore::Stored);
        }
        // PostgreSQL: the rows are locked first.
        let mut tx = self.begin_write().await?;
        let mut locks = Batch::default();
        push_manifest_locks(&mut locks, manifest, references);
        locks.run(&mut tx, self.backend()).await?;
        let present = match &presence {
            Some((sql, values)) => {
                batch::bind(sqlx::query(sql), values).fetch_all(&mut *tx).await?
            }
            None => Vec::new(),
        };
        if let Some((digest, kind)) = first_absent(references, &present)? {
            tx.rollback().await?;
            return Ok(ManifestStore::Missing { digest, kind });
        }
        if let Err(error) = publish.await {
            tx.rollback().await?;
            return Ok(ManifestStore::NotPublished(error));
        }
        let mut batch = Batch::default();
        push_manifest_records(&mut batch, manifest, references, tag);
        batch.run(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(ManifestStore::Stored)
    }

    /// [`Db::store_manifest`] without checks or bytes to write: the records only (what `put_manifest` does).
    pub(crate) async fn store_manifest_records(
        &self,
        manifest: &ManifestRecord,
        references: &[(String, ReferenceKind)],
        tag: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut batch = Batch::default();
        push_manifest_locks(&mut batch, manifest, references);
        push_manifest_records(&mut batch, manifest, references, tag);
        batch.run(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- what garbage collection reads ----------------------------------------------------------------------

    /// Manifests of one registry, or of all.
    pub async fn gc_manifests(&self, registry: Option<&str>) -> Result<Vec<GcManifest>> {
        let rows = fetch_scoped(
            self,
            "SELECT registry, repository, digest, subject, created_at FROM manifests",
            registry,
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GcManifest {
                    registry: row.try_get("registry")?,
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                    subject: row.try_get("subject")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The manifests tags point at, in one registry or all.
    pub async fn gc_tagged(&self, registry: Option<&str>) -> Result<Vec<RepositoryDigest>> {
        let rows =
            fetch_scoped(self, "SELECT DISTINCT registry, repository, digest FROM tags", registry)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(RepositoryDigest {
                    registry: row.try_get("registry")?,
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                })
            })
            .collect()
    }

    /// What the manifests of one registry (or all) reference.
    pub async fn gc_references(&self, registry: Option<&str>) -> Result<Vec<GcReference>> {
        let rows = fetch_scoped(
            self,
            "SELECT registry, repository, manifest, target, kind FROM manifest_references",
            registry,
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GcReference {
                    registry: row.try_get("registry")?,
                    repository: row.try_get("repository")?,
                    manifest: row.try_get("manifest")?,
                    target: row.try_get("target")?,
                    kind: row.try_get("kind")?,
                })
            })
            .collect()
    }

    /// Blob links of one registry, or of all.
    pub async fn gc_links(&self, registry: Option<&str>) -> Result<Vec<GcLink>> {
        let rows = fetch_scoped(
            self,
            "SELECT registry, repository, digest, size, \
             COALESCE(NULLIF(linked_at, ''), created_at) AS linked_at FROM repository_blobs",
            registry,
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GcLink {
                    registry: row.try_get("registry")?,
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                    size: row.try_get("size")?,
                    linked_at: row.try_get("linked_at")?,
                })
            })
            .collect()
    }

    /// Every row of `blobs`, with how many links and manifests (of any registry) name it.
    pub async fn gc_blobs(&self) -> Result<Vec<GcBlob>> {
        let rows = sqlx::query(
            "SELECT b.digest AS digest, b.size AS size, b.last_linked_at AS last_linked_at, \
             (SELECT COUNT(*) FROM repository_blobs l WHERE l.digest = b.digest) AS links, \
             (SELECT COUNT(*) FROM manifests m WHERE m.digest = b.digest) AS manifests \
             FROM blobs b",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GcBlob {
                    digest: row.try_get("digest")?,
                    size: row.try_get("size")?,
                    last_linked_at: row.try_get("last_linked_at")?,
                    links: row.try_get("links")?,
                    manifests: row.try_get("manifests")?,
                })
            })
            .collect()
    }

    /// Every upload session's record.
    pub async fn gc_uploads(&self) -> Result<Vec<UploadRecord>> {
        let rows = sqlx::query("SELECT id, registry, repository, created_at FROM uploads")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UploadRecord {
                    id: row.try_get("id")?,
                    registry: row.try_get("registry")?,
                    repository: row.try_get("repository")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ---- garbage collection's deletions ---------------------------------------------------------------------

    /// Delete a manifest if it is still untagged, no index of its repository references it, and it is not a
    /// referrer whose subject is in the repository; with its references. Whether it was deleted.
    pub async fn gc_delete_untagged_manifest(&self, manifest: &RepositoryDigest) -> Result<bool> {
        let RepositoryDigest { registry, repository, digest } = manifest;
        let mut tx = self.begin_write().await?;
        lock_blob(&mut tx, digest, None).await?;
        let done = sqlx::query(
            "DELETE FROM manifests WHERE registry = $1 AND repository = $2 AND digest = $3 \
             AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.registry = $1 AND t.repository = $2 AND t.digest = $3) \
             AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.registry = $1 AND r.repository = $2 \
                 AND r.target = $3 AND r.kind = 'manifest') \
             AND (subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.registry = $1 \
                 AND s.repository = $2 AND s.digest = manifests.subject))",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM manifest_references WHERE registry = $1 AND repository = $2 AND manifest = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Delete a blob link if it was last made at `linked_at` (not made again since garbage collection looked)
    /// and no manifest of its repository references the blob. Whether it was deleted.
    pub async fn gc_delete_link(&self, link: &RepositoryDigest, linked_at: &str) -> Result<bool> {
        let RepositoryDigest { registry, repository, digest } = link;
        let mut tx = self.begin_write().await?;
        lock_blob(&mut tx, digest, None).await?;
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE registry = $1 AND repository = $2 AND digest = $3 \
             AND COALESCE(NULLIF(linked_at, ''), created_at) = $4 \
             AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.registry = $1 AND r.repository = $2 \
                 AND r.target = $3)",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .bind(linked_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Delete a blob's row if it was last linked at `last_linked_at` and no link or manifest names the digest,
    /// running `remove` (which deletes the bytes) while the row is locked and before the deletion commits. `None`
    /// when the blob was kept; otherwise what `remove` returned. If `remove` fails, the row stays.
    pub async fn gc_delete_blob<T, E>(
        &self,
        digest: &str,
        last_linked_at: &str,
        remove: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<Option<T>, E>> {
        let mut tx = self.begin_write().await?;
        let locked =
            sqlx::query("UPDATE blobs SET size = size WHERE digest = $1 AND last_linked_at = $2")
                .bind(digest)
                .bind(last_linked_at)
                .execute(&mut *tx)
                .await?;
        if locked.rows_affected() == 0 || digest_in_use(&mut tx, digest).await? {
            tx.rollback().await?;
            return Ok(Ok(None));
        }
        sqlx::query("DELETE FROM blobs WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
        let removed = match remove.await {
            Ok(removed) => removed,
            Err(error) => {
                tx.rollback().await?;
                return Ok(Err(error));
            }
        };
        tx.commit().await?;
        Ok(Ok(Some(removed)))
    }

    /// Delete the bytes of a digest that has no row in `blobs` (left behind by a crash between writing bytes and
    /// committing their link): claims the digest with a row of its own (waiting for a writer that is inserting
    /// one, and giving up if one exists), runs `remove` if no link or manifest names it, and deletes the row
    /// again. `None` when the file was kept. A digest some link names without a row gets its row back.
    pub async fn gc_delete_orphan<T, E>(
        &self,
        digest: &str,
        size: i64,
        now: &str,
        remove: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<Option<T>, E>> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO blobs (digest, size, last_linked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Ok(None));
        }
        if digest_in_use(&mut tx, digest).await? {
            // Linked without a row (written before the row existed): keep the row, it belongs there.
            tx.commit().await?;
            return Ok(Ok(None));
        }
        let removed = match remove.await {
            Ok(removed) => removed,
            Err(error) => {
                tx.rollback().await?;
                return Ok(Err(error));
            }
        };
        sqlx::query("DELETE FROM blobs WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(Some(removed)))
    }
}

/// Lock a digest's row inside a transaction that is about to change what names it (a manifest deletion).
pub(crate) async fn lock_digest(tx: &mut Tx<'_>, digest: &str) -> Result<()> {
    lock_blob(tx, digest, None).await?;
    Ok(())
}

/// The row locks of a manifest put, in digest order: its own digest's row (inserted or refreshed) and the rows of
/// the digests it references (their `last_linked_at` refreshed; a reference without a row is checked afterwards).
fn push_manifest_locks<'a>(
    batch: &mut Batch<'a>,
    manifest: &'a ManifestRecord,
    references: &'a [(String, ReferenceKind)],
) {
    let mut digests: Vec<&str> = references
        .iter()
        .filter(|(_, kind)| *kind != ReferenceKind::Subject)
        .map(|(target, _)| target.as_str())
        .chain([manifest.digest.as_str()])
        .collect();
    digests.sort_unstable();
    digests.dedup();
    for digest in digests {
        if digest == manifest.digest {
            push_touch_blob(batch, digest, manifest.size, &manifest.created_at);
        } else {
            batch.push(
                "UPDATE blobs SET last_linked_at = $2 WHERE digest = $1",
                vec![Value::Text(digest), Value::Text(&manifest.created_at)],
            );
        }
    }
}

/// One query for which of the manifest's references its repository has: `(kind, digest)` rows, `kind` being `b`
/// for a blob linked to it and `m` for a manifest in it. `None` when nothing needs checking (a subject may be
/// absent).
fn presence_query<'a>(
    manifest: &'a ManifestRecord,
    references: &'a [(String, ReferenceKind)],
) -> Option<(String, Vec<Value<'a>>)> {
    let mut values = vec![Value::Text(&manifest.registry), Value::Text(&manifest.repository)];
    let mut selects = Vec::new();
    for (kind, code, table) in [
        (ReferenceKind::Blob, "b", "repository_blobs"),
        (ReferenceKind::Manifest, "m", "manifests"),
    ] {
        let start = values.len();
        values.extend(
            references
                .iter()
                .filter(|(_, reference_kind)| *reference_kind == kind)
                .map(|(target, _)| Value::Text(target)),
        );
        if values.len() == start {
            continue;
        }
        let placeholders: Vec<String> =
            (start..values.len()).map(|i| format!("${}", i + 1)).collect();
        selects.push(format!(
            "SELECT CAST('{code}' AS TEXT) AS kind, digest FROM {table} \
             WHERE registry = $1 AND repository = $2 AND digest IN ({})",
            placeholders.join(", ")
        ));
    }
    (!selects.is_empty()).then(|| (selects.join(" UNION ALL "), values))
}

/// The first of the manifest's references (in its order) that the rows of [`presence_query`] do not show: a blob
/// not linked to the repository or a manifest not in it.
fn first_absent(
    references: &[(String, ReferenceKind)],
    present: &[AnyRow],
) -> Result<Option<(String, ReferenceKind)>> {
    let mut found = std::collections::HashSet::new();
    for row in present {
        let kind = match row.try_get::<String, _>("kind")?.as_str() {
            "b" => ReferenceKind::Blob,
            _ => ReferenceKind::Manifest,
        };
        found.insert((kind, row.try_get::<String, _>("digest")?));
    }
    Ok(references
        .iter()
        .filter(|(_, kind)| *kind != ReferenceKind::Subject)
        .find(|(target, kind)| !found.contains(&(*kind, target.clone())))
        .map(|(target, kind)| (target.clone(), *kind)))
}
