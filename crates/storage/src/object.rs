//! The object_store backend (S3, Azure Blob, GCS, in-memory): uploads are part objects, commits write-then-visible.
//!
//! Layout under the store's root:
//! - `uploads/<id>/started`: empty marker; the session exists while it does;
//! - `uploads/<id>/part-<offset, 20 digits>`: one object per append, complete or absent (object stores publish
//!   an object only when its upload completes, so a crash mid-append loses that append, never corrupts);
//! - `blobs/<algorithm>/<2 hex>/<hex>`: committed blobs.
//!
//! A commit verifies the digest first (from the in-process hash state, or by streaming the parts through a hasher
//! after a restart) and only then writes the blob object: with one part, a server-side `copy`; with several, one
//! streamed multipart upload. The blob becomes visible when that upload completes, whole. Hashing happens on the
//! async task here: these backends are network-bound well below hashing speed.
//!
//! Not done: appends to one upload from two nodes at once are not excluded (the offset check is read-then-write);
//! put a sticky session or a database lock in front for multi-node deployments.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest, DigestHasher};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, PutPayload, WriteMultipart};

use crate::reader::BlobReader;
use crate::{
    blob_key, resolve_range, BlobInfo, BodyError, HashState, Result, SessionGuard, StorageError,
    UploadId, UploadStatus,
};

/// Chunk size of multipart uploads: the S3 minimum part size is 5 MiB.
const MULTIPART_CHUNK: usize = 8 * 1024 * 1024;
/// Multipart chunks in flight per upload.
const MULTIPART_CONCURRENCY: usize = 2;
const MARKER: &str = "started";
const PART_PREFIX: &str = "part-";

pub(crate) struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
}

/// The stored parts of one upload, in offset order.
struct Parts {
    parts: Vec<ObjectMeta>,
    /// Total contiguous bytes (the upload's offset).
    size: u64,
    last_modified: SystemTime,
}

impl ObjectBackend {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> ObjectBackend {
        ObjectBackend { store }
    }

    pub(crate) fn describe(&self) -> String {
        self.store.to_string()
    }

    fn upload_dir(id: &UploadId) -> Path {
        Path::from(format!("uploads/{id}"))
    }

    fn part_path(id: &UploadId, offset: u64) -> Path {
        Path::from(format!("uploads/{id}/{PART_PREFIX}{offset:020}"))
    }

    fn marker_path(id: &UploadId) -> Path {
        Path::from(format!("uploads/{id}/{MARKER}"))
    }

    fn blob_path(digest: &Digest) -> Path {
        Path::from(blob_key(digest))
    }

    pub(crate) async fn create_upload(&self, id: &UploadId) -> Result<()> {
        self.store.put(&ObjectBackend::marker_path(id), PutPayload::new()).await?;
        Ok(())
    }

    async fn parts(&self, id: &UploadId) -> Result<Parts> {
        let mut objects: Vec<ObjectMeta> =
            self.store.list(Some(&ObjectBackend::upload_dir(id))).try_collect().await?;
        let Some(marker) = objects.iter().find(|object| object.location.filename() == Some(MARKER))
        else {
            return Err(StorageError::UploadUnknown(id.clone()));
        };
        let mut last_modified = SystemTime::from(marker.last_modified);
        let mut parts: Vec<(u64, ObjectMeta)> = Vec::new();
        for object in objects.drain(..) {
            let offset = object
                .location
                .filename()
                .and_then(|name| name.strip_prefix(PART_PREFIX)?.parse().ok());
            if let Some(offset) = offset {
                last_modified = last_modified.max(SystemTime::from(object.last_modified));
                parts.push((offset, object));
            }
        }
        parts.sort_by_key(|(offset, _)| *offset);
        // Parts are written at the current end only, so they are contiguous; stop at a gap defensively.
        let mut size = 0;
        let mut contiguous = Vec::new();
        for (offset, part) in parts {
            if offset != size {
                break;
            }
            size += part.size;
            contiguous.push(part);
        }
        Ok(Parts { parts: contiguous, size, last_modified })
    }

    pub(crate) async fn append<S, E>(
        &self,
        mut guard: SessionGuard,
        id: &UploadId,
        offset: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        let current = self.parts(id).await?.size;
        if let Some(given) = offset {
            if given != current {
                return Err(StorageError::OffsetMismatch { upload: id.clone(), current, given });
            }
        }
        let mut hasher =
            guard.hash.take().resolve().await.filter(|hasher| hasher.bytes_hashed() == current);
        let mut writer: Option<WriteMultipart> = None;
        let mut written = 0u64;
        let mut body_error = None;
        futures::pin_mut!(body);
        while let Some(next) = body.next().await {
            let chunk = match next {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => chunk,
                Err(error) => {
                    body_error = Some(error.into());
                    break;
                }
            };
            // The part object is only created once there is data, so an empty append leaves nothing behind.
            let writer = match &mut writer {
                Some(writer) => writer,
                None => {
                    let upload =
                        self.store.put_multipart(&ObjectBackend::part_path(id, current)).await?;
                    writer.insert(WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK))
                }
            };
            if let Some(hasher) = &mut hasher {
                hasher.update(&chunk);
            }
            written += chunk.len() as u64;
            writer.wait_for_capacity(MULTIPART_CONCURRENCY).await?;
            writer.put(chunk);
        }
        // Keep what arrived even if the body failed, like the local backend: the client resumes from there.
        if let Some(writer) = writer {
            writer.finish().await?;
        }
        guard.hash = hasher.map_or(HashState::Unknown, HashState::Ready);
        match body_error {
            Some(error) => Err(StorageError::Body(error)),
            None => Ok(current + written),
        }
    }

    pub(crate) async fn status(&self, id: &UploadId) -> Result<UploadStatus> {
        let parts = self.parts(id).await?;
        Ok(UploadStatus { offset: parts.size, last_modified: parts.last_modified })
    }

    /// Checks the upload against `expected`, removing it on a mismatch; the guard goes back to the caller until
    /// [`ObjectBackend::publish`].
    pub(crate) async fn verify(
        &self,
        mut guard: SessionGuard,
        id: &UploadId,
        expected: &Digest,
    ) -> Result<(SessionGuard, u64)> {
        let parts = self.parts(id).await?;
        let actual = match guard.hash.take().resolve().await {
            Some(hasher)
                if hasher.bytes_hashed() == parts.size
                    && hasher.algorithm() == expected.algorithm() =>
            {
                hasher.finalize()
            }
            _ => self.hash_parts(&parts, expected.algorithm()).await?,
        };
        if actual != *expected {
            self.remove_upload(id).await?;
            return Err(StorageError::DigestMismatch { expected: expected.clone(), actual });
        }
        Ok((guard, parts.size))
    }

    /// Writes a verified upload as the blob `digest` (unless that blob exists), then removes the upload.
    pub(crate) async fn publish(
        &self,
        guard: SessionGuard,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<()> {
        let parts = self.parts(id).await?;
        let blob = ObjectBackend::blob_path(digest);
        let exists = match self.store.head(&blob).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(error) => return Err(error.into()),
        };
        if !exists {
            match parts.parts.as_slice() {
                [] => {
                    self.store.put(&blob, PutPayload::new()).await?;
                }
                [single] => self.store.copy(&single.location, &blob).await?,
                several => {
                    let upload = self.store.put_multipart(&blob).await?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
                    for part in several {
                        let mut stream = self.store.get(&part.location).await?.into_stream();
                        while let Some(chunk) = stream.try_next().await? {
                            writer.wait_for_capacity(MULTIPART_CONCURRENCY).await?;
                            writer.put(chunk);
                        }
                    }
                    writer.finish().await?;
                }
            }
        }
        self.remove_upload(id).await?;
        drop(guard);
        Ok(())
    }

    async fn hash_parts(&self, parts: &Parts, algorithm: Algorithm) -> Result<Digest> {
        let mut hasher = DigestHasher::new(algorithm);
        for part in &parts.parts {
            let mut stream = self.store.get(&part.location).await?.into_stream();
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
            }
        }
        Ok(hasher.finalize())
    }

    async fn remove_upload(&self, id: &UploadId) -> Result<()> {
        let objects: Vec<ObjectMeta> =
            self.store.list(Some(&ObjectBackend::upload_dir(id))).try_collect().await?;
        // Parts first, marker last, so a crash midway leaves a (smaller) upload, not orphaned parts.
        let (markers, parts): (Vec<_>, Vec<_>) =
            objects.into_iter().partition(|object| object.location.filename() == Some(MARKER));
        for object in parts.into_iter().chain(markers) {
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    pub(crate) async fn cancel(&self, guard: SessionGuard, id: &UploadId) -> Result<()> {
        self.parts(id).await?; // UploadUnknown if there is no such session
        self.remove_upload(id).await?;
        drop(guard);
        Ok(())
    }

    pub(crate) async fn uploads_idle_since(&self, cutoff: SystemTime) -> Result<Vec<UploadId>> {
        let mut latest: std::collections::BTreeMap<UploadId, SystemTime> =
            std::collections::BTreeMap::new();
        let mut objects = self.store.list(Some(&Path::from("uploads")));
        while let Some(object) = objects.try_next().await? {
            let Some(id) =
                object.location.parts().nth(1).and_then(|part| UploadId::parse(part.as_ref()).ok())
            else {
                continue;
            };
            let modified = SystemTime::from(object.last_modified);
            let entry = latest.entry(id).or_insert(modified);
            *entry = (*entry).max(modified);
        }
        Ok(latest
            .into_iter()
            .filter(|(_, modified)| *modified < cutoff)
            .map(|(id, _)| id)
            .collect())
    }

    pub(crate) async fn put_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        self.store.put(&ObjectBackend::blob_path(digest), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    pub(crate) async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.store.head(&ObjectBackend::blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn get(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<BlobReader> {
        let path = ObjectBackend::blob_path(digest);
        let Some(size) = self.stat(digest).await? else {
            return Err(StorageError::BlobUnknown(digest.clone()));
        };
        let range = resolve_range(range, size)?;
        if range.is_empty() {
            return Ok(BlobReader::empty());
        }
        let options =
            GetOptions { range: Some(GetRange::Bounded(range.clone())), ..GetOptions::default() };
        let result = match self.store.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::BlobUnknown(digest.clone()))
            }
            Err(error) => return Err(error.into()),
        };
        let stream = result.into_stream().map_err(StorageError::from).boxed();
        Ok(BlobReader::new(size, range, stream))
    }

    pub(crate) async fn delete(&self, digest: &Digest) -> Result<bool> {
        if self.stat(digest).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&ObjectBackend::blob_path(digest)).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) fn list_blobs(&self) -> BoxStream<'static, Result<BlobInfo>> {
        self.store
            .list(Some(&Path::from("blobs")))
            .map_err(StorageError::from)
            .try_filter_map(|object| async move {
                // blobs/<algorithm>/<shard>/<hex>; anything else is not ours.
                let parts: Vec<_> = object.location.parts().collect();
                let digest = match parts.as_slice() {
                    [_, algorithm, _, hex] => {
                        Digest::parse(&format!("{}:{}", algorithm.as_ref(), hex.as_ref())).ok()
                    }
                    _ => None,
                };
                Ok(digest.map(|digest| BlobInfo {
                    digest,
                    size: object.size,
                    modified: SystemTime::from(object.last_modified),
                }))
            })
            .boxed()
    }
}
