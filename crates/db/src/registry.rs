//! The registry's metadata: repositories, blob links, manifests, their references, tags and upload sessions.
//!
//! Lists are sorted here in byte order rather than by SQL `ORDER BY`: SQLite and PostgreSQL collate text
//! differently, and `n`/`last` pagination must be the same on both.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::batch::{Batch, Value};
use crate::gc::BlobLink;
use crate::{Db, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    /// The digest of the manifest this one refers to (OCI `subject`).
    pub subject: Option<String>,
    /// JSON object of the manifest's annotations.
    pub annotations: Option<String>,
    pub created_at: String,
}

/// What a manifest references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferenceKind {
    Blob,
    Manifest,
    Subject,
}

impl ReferenceKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::Blob => "blob",
            ReferenceKind::Manifest => "manifest",
            ReferenceKind::Subject => "subject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: String,
    pub registry: String,
    pub repository: String,
    pub created_at: String,
}

fn manifest_from(row: &AnyRow) -> Result<ManifestRecord> {
    Ok(ManifestRecord {
        registry: row.try_get("registry")?,
        repository: row.try_get("repository")?,
        digest: row.try_get("digest")?,
        media_type: row.try_get("media_type")?,
        size: row.try_get("size")?,
        artifact_type: row.try_get("artifact_type")?,
        subject: row.try_get("subject")?,
        annotations: row.try_get("annotations")?,
        created_at: row.try_get("created_at")?,
    })
}

const MANIFEST_COLUMNS: &str =
    "registry, repository, digest, media_type, size, artifact_type, subject, annotations, created_at";

/// Byte-order page: entries after `last`, at most `n`.
fn page(mut items: Vec<String>, last: Option<&str>, n: Option<usize>) -> Vec<String> {
    items.sort_unstable();
    items.dedup();
    let start = match last {
        Some(last) => items.partition_point(|i| i.as_str() <= last),
        None => 0,
    };
    let end = n.map_or(items.len(), |n| (start + n).min(items.len()));
    items[start..end].to_vec()
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

pub(crate) async fn ensure_repository(
    tx: &mut Tx<'_>,
    registry: &str,
    repository: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(ENSURE_REPOSITORY)
        .bind(registry)
        .bind(repository)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const ENSURE_REPOSITORY: &str =
    "INSERT INTO repositories (registry, name, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (registry, name) DO NOTHING";

pub(crate) fn push_ensure_repository<'a>(
    batch: &mut Batch<'a>,
    registry: &'a str,
    repository: &'a str,
    now: &'a str,
) {
    batch.push(
        ENSURE_REPOSITORY,
        vec![Value::Text(registry), Value::Text(repository), Value::Text(now)],
    );
}

/// The records of a manifest put (repository, manifest, references, tag), added to the caller's batch.
pub(crate) fn push_manifest_records<'a>(
    batch: &mut Batch<'a>,
    manifest: &'a ManifestRecord,
    references: &'a [(String, ReferenceKind)],
    tag: Option<&'a str>,
) {
    let (registry, repository) = (manifest.registry.as_str(), manifest.repository.as_str());
    push_ensure_repository(batch, registry, repository, &manifest.created_at);
    batch.push(
        format!(
            "INSERT INTO manifests ({MANIFEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (registry, repository, digest) DO NOTHING"
        ),
        vec![
            Value::Text(registry),
            Value::Text(repository),
            Value::Text(&manifest.digest),
            Value::Text(&manifest.media_type),
            Value::Integer(manifest.size),
            Value::OptionalText(manifest.artifact_type.as_deref()),
            Value::OptionalText(manifest.subject.as_deref()),
            Value::OptionalText(manifest.annotations.as_deref()),
            Value::Text(&manifest.created_at),
        ],
    );
    for (target, kind) in references {
        batch.push(
            "INSERT INTO manifest_references (registry, repository, manifest, target, kind) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (registry, repository, manifest, target) DO NOTHING",
            vec![
                Value::Text(registry),
                Value::Text(repository),
                Value::Text(&manifest.digest),
                Value::Text(target),
                Value::Text(kind.as_str()),
            ],
        );
    }
    if let Some(tag) = tag {
        batch.push(
            "INSERT INTO tags (registry, repository, tag, digest, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            vec![
                Value::Text(registry),
                Value::Text(repository),
                Value::Text(tag),
                Value::Text(&manifest.digest),
                Value::Text(&manifest.created_at),
            ],
        );
    }
}

impl Db {
    /// Make a blob readable through a repository (after an upload or a mount), creating the repository. The blob's
    /// row in `blobs` is inserted or refreshed in the same transaction (see `gc.rs`).
    pub async fn link_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        size: i64,
        now: &str,
    ) -> Result<()> {
        let link = BlobLink { registry, repository, digest, size, now };
        let nothing = std::future::ready(Ok::<(), std::convert::Infallible>(()));
        match self.link_blob_publishing(&link, None, nothing).await? {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }

    /// The end of an upload: link its blob to the repository and drop the upload's record, in one transaction.
    pub async fn finish_upload(
        &self,
        upload_id: &str,
        registry: &str,
        repository: &str,
        digest: &str,
        size: i64,
        now: &str,
    ) -> Result<()> {
        let link = BlobLink { registry, repository, digest, size, now };
        let nothing = std::future::ready(Ok::<(), std::convert::Infallible>(()));
        match self.link_blob_publishing(&link, Some(upload_id), nothing).await? {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }

    /// The size of a blob if it is linked to the repository.
    pub async fn linked_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT size FROM repository_blobs WHERE registry = $1 AND repository = $2 AND digest = $3")
            .bind(registry)
            .bind(repository)
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("size")?),
            None => None,
        })
    }

    pub async fn unlink_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE registry = $1 AND repository = $2 AND digest = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Store a manifest, what it references and optionally a tag pointing at it, in one transaction. Storing the
    /// same manifest again is a no-op apart from the tag. [`Db::store_manifest`] also checks the references and
    /// writes the bytes.
    pub async fn put_manifest(
        &self,
        manifest: &ManifestRecord,
        references: &[(String, ReferenceKind)],
        tag: Option<&str>,
    ) -> Result<()> {
        self.store_manifest_records(manifest, references, tag).await
    }

    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ManifestRecord>> {
        let sql = format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE registry = $1 AND repository = $2 AND digest = $3");
        let row = sqlx::query(&sql)
            .bind(registry)
            .bind(repository)
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(manifest_from).transpose()
    }

    /// The manifest a tag points at, in one query: the hot path of pulls by tag.
    pub async fn manifest_by_tag(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ManifestRecord>> {
        let row = sqlx::query(
            "SELECT m.registry, m.repository, m.digest, m.media_type, m.size, m.artifact_type, m.subject, \
             m.annotations, m.created_at FROM tags t JOIN manifests m \
             ON m.registry = t.registry AND m.repository = t.repository AND m.digest = t.digest \
             WHERE t.registry = $1 AND t.repository = $2 AND t.tag = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(tag)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(manifest_from).transpose()
    }

    pub async fn resolve_tag(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT digest FROM tags WHERE registry = $1 AND repository = $2 AND tag = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(tag)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("digest")?),
            None => None,
        })
    }

    /// Tags of a repository in byte order, after `last`, at most `n`.
    pub async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT tag FROM tags WHERE registry = $1 AND repository = $2")
            .bind(registry)
            .bind(repository)
            .fetch_all(self.pool())
            .await?;
        let tags = rows.iter().map(|r| r.try_get("tag")).collect::<Result<Vec<String>, _>>()?;
        Ok(page(tags, last, n))
    }

    /// Tags of a repository pointing at a manifest.
    pub async fn tags_of(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT tag FROM tags WHERE registry = $1 AND repository = $2 AND digest = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .fetch_all(self.pool())
        .await?;
        let tags = rows.iter().map(|r| r.try_get("tag")).collect::<Result<Vec<String>, _>>()?;
        Ok(page(tags, None, None))
    }

    pub async fn repository_exists(&self, registry: &str, repository: &str) -> Result<bool> {
        let row = sqlx::query("SELECT name FROM repositories WHERE registry = $1 AND name = $2")
            .bind(registry)
            .bind(repository)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Repositories of a registry in byte order, after `last`, at most `n`.
    pub async fn list_repositories(
        &self,
        registry: &str,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM repositories WHERE registry = $1")
            .bind(registry)
            .fetch_all(self.pool())
            .await?;
        let names = rows.iter().map(|r| r.try_get("name")).collect::<Result<Vec<String>, _>>()?;
        Ok(page(names, last, n))
    }

    /// Manifests of a repository, newest first.
    pub async fn list_manifests(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<ManifestRecord>> {
        let sql = format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE registry = $1 AND repository = $2 ORDER BY created_at DESC");
        let rows = sqlx::query(&sql).bind(registry).bind(repository).fetch_all(self.pool()).await?;
        rows.iter().map(manifest_from).collect()
    }

    /// Manifests whose `subject` is `digest`, optionally narrowed to one artifact type.
    pub async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestRecord>> {
        let sql = format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE registry = $1 AND repository = $2 AND subject = $3");
        let rows = sqlx::query(&sql)
            .bind(registry)
            .bind(repository)
            .bind(digest)
            .fetch_all(self.pool())
            .await?;
        let mut found = rows.iter().map(manifest_from).collect::<Result<Vec<_>>>()?;
        if let Some(wanted) = artifact_type {
            found.retain(|m| m.artifact_type.as_deref() == Some(wanted));
        }
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }

    /// Delete a manifest with its tags and references. Returns whether it existed.
    pub async fn delete_manifest(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // Waits for a put of the same manifest (which holds the digest's row) so its tags go too.
        crate::gc::lock_digest(&mut tx, digest).await?;
        for sql in [
            "DELETE FROM tags WHERE registry = $1 AND repository = $2 AND digest = $3",
            "DELETE FROM manifest_references WHERE registry = $1 AND repository = $2 AND manifest = $3",
        ] {
            sqlx::query(sql).bind(registry).bind(repository).bind(digest).execute(&mut *tx).await?;
        }
        let done = sqlx::query(
            "DELETE FROM manifests WHERE registry = $1 AND repository = $2 AND digest = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_tag(&self, registry: &str, repository: &str, tag: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM tags WHERE registry = $1 AND repository = $2 AND tag = $3")
                .bind(registry)
                .bind(repository)
                .bind(tag)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Delete a repository with all its manifests, tags and blob links (the blobs are left to garbage
    /// collection). Returns whether it existed.
    pub async fn delete_repository(&self, registry: &str, repository: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM tags WHERE registry = $1 AND repository = $2",
            "DELETE FROM manifest_references WHERE registry = $1 AND repository = $2",
            "DELETE FROM manifests WHERE registry = $1 AND repository = $2",
            "DELETE FROM repository_blobs WHERE registry = $1 AND repository = $2",
        ] {
            sqlx::query(sql).bind(registry).bind(repository).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM repositories WHERE registry = $1 AND name = $2")
            .bind(registry)
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every digest some repository still links or stores as a manifest: what garbage collection must keep.
    pub async fn live_digests(&self) -> Result<std::collections::HashSet<String>> {
        let mut live = std::collections::HashSet::new();
        for sql in [
            "SELECT DISTINCT digest FROM repository_blobs",
            "SELECT DISTINCT digest FROM manifests",
        ] {
            for row in sqlx::query(sql).fetch_all(self.pool()).await? {
                live.insert(row.try_get::<String, _>("digest")?);
            }
        }
        Ok(live)
    }

    // ---- upload sessions ------------------------------------------------------------------------------------

    pub async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        const INSERT: &str =
            "INSERT INTO uploads (id, registry, repository, created_at) VALUES ($1, $2, $3, $4)";
        if let Some(writer) = &self.sqlite_writer {
            let values = [&upload.id, &upload.registry, &upload.repository, &upload.created_at]
                .map(|text| Value::Text(text));
            writer.execute(INSERT, &values).await?;
            return Ok(());
        }
        sqlx::query(INSERT)
            .bind(&upload.id)
            .bind(&upload.registry)
            .bind(&upload.repository)
            .bind(&upload.created_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>> {
        let row =
            sqlx::query("SELECT id, registry, repository, created_at FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => Some(UploadRecord {
                id: r.try_get("id")?,
                registry: r.try_get("registry")?,
                repository: r.try_get("repository")?,
                created_at: r.try_get("created_at")?,
            }),
            None => None,
        })
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(self.pool()).await?;
        Ok(done.rows_affected() > 0)
    }
}

// ---- the ACR metadata API (`/acr/v1`) --------------------------------------------------------------------

/// A tag, the manifest it points at, and when it was last set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    pub tag: String,
    pub digest: String,
    pub updated_at: String,
}

/// What ACR reports about a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub created_at: String,
    /// The latest of its creation, its manifests' creation and its tags' updates.
    pub last_updated: String,
    pub manifest_count: i64,
    pub tag_count: i64,
}

/// What a deleted repository held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRepository {
    pub manifests: Vec<String>,
    pub tags: Vec<String>,
}

/// The order of ACR's tag and manifest lists: by key (tag name or digest, byte order), or by last update time
/// (ties broken by key). `last` is always a key: the entry the previous page ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    Key,
    TimeAscending,
    TimeDescending,
}

/// An RFC 3339 UTC time as a string that sorts in time order: fractions of a second padded to nine digits
/// (`time` writes as few as needed, so `05.1Z` would sort after `05.12Z`).
fn time_key(time: &str) -> String {
    match (time.split_once('.'), time.strip_suffix('Z')) {
        (Some((seconds, fraction)), Some(_)) => {
            let digits = fraction.trim_end_matches('Z');
            format!("{seconds}.{digits:0<9}Z")
        }
        (None, Some(seconds)) => format!("{seconds}.000000000Z"),
        _ => time.to_string(),
    }
}

/// One page of `items` in `order`: the entries after the one whose key is `last`, at most `n`. In time order an
/// unknown `last` ends the listing (its place in the order is unknown).
fn page_in_order<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    time: impl Fn(&T) -> &str,
    order: ListOrder,
    last: Option<&str>,
    n: Option<usize>,
) -> Vec<T> {
    match order {
        ListOrder::Key => items.sort_by(|a, b| key(a).cmp(key(b))),
        ListOrder::TimeAscending | ListOrder::TimeDescending => {
            items.sort_by(|a, b| {
                time_key(time(a)).cmp(&time_key(time(b))).then_with(|| key(a).cmp(key(b)))
            });
            if order == ListOrder::TimeDescending {
                items.reverse();
            }
        }
    }
    let start = match (last, order) {
        (None, _) => 0,
        (Some(last), ListOrder::Key) => items.partition_point(|i| key(i) <= last),
        (Some(last), _) => {
            items.iter().position(|i| key(i) == last).map_or(items.len(), |found| found + 1)
        }
    };
    let end = n.map_or(items.len(), |n| start.saturating_add(n).min(items.len()));
    items.truncate(end);
    items.drain(..start.min(end));
    items
}

fn tag_from(row: &AnyRow) -> Result<TagRecord> {
    Ok(TagRecord {
        tag: row.try_get("tag")?,
        digest: row.try_get("digest")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    /// A repository's creation and update times and how many manifests and tags it has; `None` when it does not
    /// exist.
    pub async fn repository_summary(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<RepositorySummary>> {
        let Some(row) =
            sqlx::query("SELECT created_at FROM repositories WHERE registry = $1 AND name = $2")
                .bind(registry)
                .bind(repository)
                .fetch_optional(self.pool())
                .await?
        else {
            return Ok(None);
        };
        let created_at: String = row.try_get("created_at")?;
        let mut last_updated = created_at.clone();
        let mut counts = [0i64; 2];
        for (slot, sql) in [
            "SELECT created_at AS at FROM manifests WHERE registry = $1 AND repository = $2",
            "SELECT updated_at AS at FROM tags WHERE registry = $1 AND repository = $2",
        ]
        .into_iter()
        .enumerate()
        {
            let rows =
                sqlx::query(sql).bind(registry).bind(repository).fetch_all(self.pool()).await?;
            counts[slot] = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            for row in rows {
                let at: String = row.try_get("at")?;
                if time_key(&at) > time_key(&last_updated) {
                    last_updated = at;
                }
            }
        }
        Ok(Some(RepositorySummary {
            created_at,
            last_updated,
            manifest_count: counts[0],
            tag_count: counts[1],
        }))
    }

    /// A repository's tags in `order`, optionally only those pointing at `digest`, after `last`, at most `n`.
    pub async fn tag_records(
        &self,
        registry: &str,
        repository: &str,
        digest: Option<&str>,
        order: ListOrder,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<TagRecord>> {
        let rows = sqlx::query(
            "SELECT tag, digest, updated_at FROM tags WHERE registry = $1 AND repository = $2",
        )
        .bind(registry)
        .bind(repository)
        .fetch_all(self.pool())
        .await?;
        let mut tags = rows.iter().map(tag_from).collect::<Result<Vec<_>>>()?;
        if let Some(digest) = digest {
            tags.retain(|t| t.digest == digest);
        }
        Ok(page_in_order(tags, |t| &t.tag, |t| &t.updated_at, order, last, n))
    }

    pub async fn tag_record(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<TagRecord>> {
        let row = sqlx::query(
            "SELECT tag, digest, updated_at FROM tags WHERE registry = $1 AND repository = $2 AND tag = $3",
        )
        .bind(registry)
        .bind(repository)
        .bind(tag)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(tag_from).transpose()
    }

    /// A repository's manifests in `order` (by digest, or by creation time), after `last`, at most `n`.
    pub async fn manifest_records(
        &self,
        registry: &str,
        repository: &str,
        order: ListOrder,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Vec<ManifestRecord>> {
        let sql = format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE registry = $1 AND repository = $2"
        );
        let rows = sqlx::query(&sql).bind(registry).bind(repository).fetch_all(self.pool()).await?;
        let manifests = rows.iter().map(manifest_from).collect::<Result<Vec<_>>>()?;
        Ok(page_in_order(manifests, |m| &m.digest, |m| &m.created_at, order, last, n))
    }

    /// For each manifest of a repository: the total size of the blobs it references (config and layers) that are
    /// linked to the repository.
    pub async fn manifest_blob_sizes(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<std::collections::HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT r.manifest AS manifest, b.size AS size FROM manifest_references r JOIN repository_blobs b \
             ON b.registry = r.registry AND b.repository = r.repository AND b.digest = r.target \
             WHERE r.registry = $1 AND r.repository = $2 AND r.kind = 'blob'",
        )
        .bind(registry)
        .bind(repository)
        .fetch_all(self.pool())
        .await?;
        let mut sizes = std::collections::HashMap::new();
        for row in rows {
            let manifest: String = row.try_get("manifest")?;
            let size: i64 = row.try_get("size")?;
            *sizes.entry(manifest).or_insert(0i64) += size;
        }
        Ok(sizes)
    }

    /// Delete a repository like [`Db::delete_repository`], reporting the manifests and tags it held, in one
    /// transaction. `None` when it did not exist.
    pub async fn delete_repository_reporting(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<DeletedRepository>> {
        let mut tx = self.begin_write().await?;
        let mut listed = Vec::new();
        for sql in [
            "SELECT digest AS item FROM manifests WHERE registry = $1 AND repository = $2",
            "SELECT tag AS item FROM tags WHERE registry = $1 AND repository = $2",
        ] {
            let rows = sqlx::query(sql).bind(registry).bind(repository).fetch_all(&mut *tx).await?;
            let items =
                rows.iter().map(|r| r.try_get("item")).collect::<Result<Vec<String>, _>>()?;
            listed.push(page(items, None, None));
        }
        for sql in [
            "DELETE FROM tags WHERE registry = $1 AND repository = $2",
            "DELETE FROM manifest_references WHERE registry = $1 AND repository = $2",
            "DELETE FROM manifests WHERE registry = $1 AND repository = $2",
            "DELETE FROM repository_blobs WHERE registry = $1 AND repository = $2",
        ] {
            sqlx::query(sql).bind(registry).bind(repository).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM repositories WHERE registry = $1 AND name = $2")
            .bind(registry)
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        let tags = listed.pop().unwrap_or_default();
        let manifests = listed.pop().unwrap_or_default();
        Ok(Some(DeletedRepository { manifests, tags }))
    }
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn times_sort_whatever_their_fraction_digits() {
        use super::time_key;
        // As text `05.1Z` sorts after `05.12Z`; as times it comes first.
        assert!(time_key("2026-01-01T00:00:05.1Z") < time_key("2026-01-01T00:00:05.12Z"));
        assert!(time_key("2026-01-01T00:00:05Z") < time_key("2026-01-01T00:00:05.000000001Z"));
        assert_eq!(time_key("t"), "t");
    }

    #[test]
    fn pages_in_key_or_time_order() {
        use super::{page_in_order, ListOrder};
        let items = vec![
            ("b", "2026-01-01T00:00:02Z"),
            ("a", "2026-01-01T00:00:03Z"),
            ("c", "2026-01-01T00:00:01Z"),
        ];
        let keys = |order, last, n| -> Vec<&str> {
            page_in_order(items.clone(), |i| i.0, |i| i.1, order, last, n)
                .into_iter()
                .map(|i| i.0)
                .collect()
        };
        assert_eq!(keys(ListOrder::Key, None, None), ["a", "b", "c"]);
        assert_eq!(keys(ListOrder::Key, Some("a"), Some(1)), ["b"]);
        assert_eq!(keys(ListOrder::Key, Some("aa"), None), ["b", "c"]);
        assert_eq!(keys(ListOrder::TimeAscending, None, Some(2)), ["c", "b"]);
        assert_eq!(keys(ListOrder::TimeDescending, Some("a"), None), ["b", "c"]);
        assert_eq!(keys(ListOrder::TimeDescending, Some("gone"), None), Vec::<&str>::new());
        assert_eq!(keys(ListOrder::Key, Some("c"), Some(5)), Vec::<&str>::new());
        assert_eq!(keys(ListOrder::Key, None, Some(0)), Vec::<&str>::new());
    }

    #[test]
    fn pages_in_byte_order() {
        let items = vec!["b".to_string(), "A".into(), "a".into(), "c".into()];
        assert_eq!(page(items.clone(), None, None), ["A", "a", "b", "c"]);
        assert_eq!(page(items.clone(), Some("a"), Some(1)), ["b"]);
        assert_eq!(page(items.clone(), Some("c"), Some(5)), Vec::<String>::new());
        assert_eq!(page(items, Some("0"), Some(2)), ["A", "a"]);
    }
}
