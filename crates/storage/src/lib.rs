//! Content-addressed blob storage over object_store: streaming verified uploads.
//!
//! # What it does
//!
//! [`BlobStore`] keeps blobs under `blobs/<algorithm>/<first two hex>/<hex>` and upload sessions under `uploads/`.
//! An upload is created, receives bytes by [`BlobStore::append`] (each call a `PATCH` or the body of a `PUT`),
//! and ends with [`BlobStore::commit`], which checks the digest the client named and only then makes the blob
//! visible. A mismatch makes nothing visible, discards the upload and reports `DIGEST_INVALID`. Reads stream in
//! large chunks ([`BlobStore::get`]); nothing ever holds a whole blob in memory.
//!
//! # Design, and the numbers behind it
//!
//! Measured with `examples/blob_bench.rs` on the 2-vCPU reference machine class (no HTTP, 512 MiB blobs, runs
//! started on an idle machine, ranges over 4–8 runs). The single-core sha256 ceiling is 1.55–1.60 GiB/s for
//! `DigestHasher` and 1.61–1.68 GiB/s for Python's hashlib (OpenSSL); both use SHA-NI.
//!
//! | phase | GiB/s | peak RSS of the whole benchmark |
//! |---|---|---|
//! | one 512 MiB append (1 MiB pieces) + commit | 1.45–1.55 | 17.5 MiB |
//! | 64 × 8 MiB appends + commit | 1.13–1.33 | 21.7 MiB |
//! | one 512 MiB append in 64 KiB pieces (hyper-sized frames) | 1.40–1.61 | 14.7 MiB |
//! | read 512 MiB, 1 MiB chunks (page cache hot) | 7.0–10.9 | +1.5 MiB over idle |
//! | read 512 MiB, 256 KiB chunks | 3.4–5.7 | same |
//! | object_store `LocalFileSystem`: upload / read, same disk | 0.33–0.92 / 0.25–0.36 | 35–40 MiB |
//!
//! The first large write after the machine has been idle runs at 0.36–0.56 GiB/s: the page-cache copy in
//! `write(2)` then touches guest memory the hypervisor has to fault in (`dd` shows the same, 0.3 GB/s first,
//! 3–4.6 GB/s after). That is the "first write" effect of `registry-peers.md` §6 and hits every registry alike.
//!
//! - **Two backends behind one type.** Local directories take a fast path that uses `std::fs` directly on
//!   tokio's blocking pool; every other store (S3, Azure Blob, GCS, memory) goes through `object_store`. Through
//!   object_store, a local disk reads at 0.25–0.36 GiB/s, because its local reader yields 8 KiB chunks with one
//!   blocking-pool hop each (the cause of trow's 245 MiB/s GETs), and uploads at well under 1 GiB/s (one task
//!   hashing and writing in turn, plus 8 MiB multipart buffers). Hence the fast path, for reads too.
//! - **Upload = hash and write in parallel.** [`BlobStore::append`] batches incoming `Bytes` (no copy; about
//!   512 KiB per batch) and hands each batch to two blocking workers: one `writev`s it to the upload file, one
//!   updates the sha256 state. The slower of the two sets the pace, instead of their sum, so an upload runs at
//!   90–97 % of the hashing ceiling. Queues are bounded (2 batches of 256 KiB per worker), so memory per upload is a few
//!   MiB whatever the blob size; repeated 512 MiB uploads leave RSS flat.
//! - **Appends return before the hash is done.** An append answers once its bytes are written; the hash of its
//!   last few batches finishes in the background (`HashState::Pending`) while the client sends the next chunk,
//!   and the next append's hash worker continues from it. Chunked uploads (64 × 8 MiB) went from 0.76–1.03 to
//!   1.13–1.33 GiB/s with this.
//! - **Crash safety.** Bytes land in `uploads/<id>` as they arrive; the upload's offset is the file's length, so
//!   after a crash, `kill -9` or restart, [`BlobStore::upload_status`] reports exactly what is stored and the
//!   client resumes from there. The hash state lives in memory only (sha2 0.10 cannot serialize it); when it is
//!   missing or does not cover exactly the stored bytes, commit re-hashes the file (about 0.35 s per 512 MiB) —
//!   correctness never depends on in-memory state. A blob becomes visible only through `rename(2)` of a
//!   complete, verified file, which is atomic: readers see the whole blob or nothing. With
//!   [`StoreOptions::sync_on_commit`] the file and directories are also fsynced first (power-loss safety; an
//!   estimated +0.25–0.3 s per 512 MiB from the 1.7–2.1 GiB/s `fdatasync` disk ceiling); off by default, like
//!   distribution and trow, since the page cache survives `kill -9`.
//! - **Verify, then publish.** [`BlobStore::commit`] is [`BlobStore::verify`] (hash check; the upload's session is
//!   held so nothing can be appended) followed by [`BlobStore::publish`] (the rename, or the object store's copy).
//!   The registry runs `publish` inside the metadata transaction that holds the blob's row, so garbage collection,
//!   which deletes files under the same lock, can never delete bytes a push is about to link (see `berth-db`).
//!   [`BlobInfo::modified`] lets garbage collection leave recent files alone.
//! - **One writer per upload.** Each session has an async mutex; the blocking task that writes the file owns
//!   the guard until its last byte is written, so a request future dropped mid-write (client gone) cannot let
//!   a retry interleave with it, nor a commit rename a file that is still growing.
//! - **Reads.** A local read is a file handle plus a stream that reads 1 MiB chunks on the blocking pool, always
//!   one chunk ahead (so the disk or page-cache copy overlaps the socket write), and holds no thread while the
//!   client is slow. Both chunk sizes leave the loopback socket (2.8 GiB/s) as the GET limit; 1 MiB costs the
//!   least CPU per byte, which the socket copy needs on a 2-core machine ([`StoreOptions::read_chunk_size`]).
//!   Each chunk is a fresh allocation handed to the HTTP body as `Bytes` without a copy; zero-copy `sendfile`
//!   is out of reach behind hyper (and `unsafe` is forbidden), so one user-space copy remains.
//! - **Object stores** keep each append as its own part object (published only when complete, so a crash loses
//!   at most the append in flight) and write the blob on commit as one server-side copy (one part) or one
//!   streamed multipart upload (several), after verifying. See `object.rs` for the layout and its limits.

mod error;
mod local;
mod object;
mod reader;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use berth_oci::{Algorithm, Digest, DigestHasher};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::Stream;
use object_store::ObjectStore;

pub use error::{BodyError, StorageError};
pub use reader::BlobReader;

/// Shorthand for this crate's results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Tuning and durability knobs of a [`BlobStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// `fsync` an upload's data (and the directory entries) before a commit makes the blob visible, so that a
    /// committed blob also survives power loss, not only a crash or restart. Costs about 0.25 s per 512 MiB on
    /// the reference machine (estimated from its 1.7–2.1 GiB/s `fdatasync` disk ceiling), so it is off by default,
    /// as in distribution and trow.
    pub sync_on_commit: bool,
    /// Size of the chunks a local read yields. 1 MiB measured best (see the crate docs).
    pub read_chunk_size: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { sync_on_commit: false, read_chunk_size: 1024 * 1024 }
    }
}

impl StoreOptions {
    pub fn with_sync_on_commit(mut self, sync_on_commit: bool) -> StoreOptions {
        self.sync_on_commit = sync_on_commit;
        self
    }

    pub fn with_read_chunk_size(mut self, read_chunk_size: usize) -> StoreOptions {
        self.read_chunk_size = read_chunk_size.max(4096);
        self
    }
}

/// The id of an upload session: 1 to 64 characters of `[A-Za-z0-9_-]`, so it is safe as a path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(Box<str>);

impl UploadId {
    pub(crate) fn generate() -> UploadId {
        UploadId(uuid::Uuid::new_v4().to_string().into())
    }

    /// Validates an id taken from a URL.
    pub fn parse(text: &str) -> Result<UploadId> {
        let valid = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(UploadId(text.into()))
        } else {
            Err(StorageError::InvalidUploadId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    /// Bytes received so far; the next chunk must start here.
    pub offset: u64,
    /// When bytes last arrived (or the session started).
    pub last_modified: SystemTime,
}

/// A stored blob, as listed for garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    /// When the blob's bytes were last written (garbage collection leaves recent files alone).
    pub modified: SystemTime,
}

/// An upload whose bytes match the digest the client named, not yet visible as a blob: [`BlobStore::verify`]
/// hands it out, [`BlobStore::publish`] makes it visible. It holds the upload's session, so nothing can be appended
/// in between, and stale-upload removal skips it. Dropped without publishing, the upload stays as it was (a later
/// commit verifies it again).
pub struct VerifiedUpload {
    id: UploadId,
    digest: Digest,
    size: u64,
    guard: SessionGuard,
}

impl VerifiedUpload {
    pub fn id(&self) -> &UploadId {
        &self.id
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl std::fmt::Debug for VerifiedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedUpload")
            .field("id", &self.id)
            .field("digest", &self.digest)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// In-process state of one upload session. Losing it (restart, another node) is harmless: the digest is then
/// recomputed from the stored bytes at commit.
#[derive(Debug, Default)]
pub(crate) struct Session {
    hash: HashState,
}

/// The incremental hash of an upload's stored bytes. Only trusted if it covers exactly the stored size.
// One value per open upload session, so the size gap between variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
pub(crate) enum HashState {
    /// Lost (restart, failed write): commit re-hashes the stored bytes.
    #[default]
    Unknown,
    Ready(DigestHasher),
    /// Still hashing the tail of the previous append: an append returns once its bytes are written, and the
    /// hash catches up while the client sends the next chunk.
    Pending(tokio::task::JoinHandle<Option<DigestHasher>>),
}

impl HashState {
    pub(crate) fn take(&mut self) -> HashState {
        std::mem::take(self)
    }

    pub(crate) async fn resolve(self) -> Option<DigestHasher> {
        match self {
            HashState::Unknown => None,
            HashState::Ready(hasher) => Some(hasher),
            HashState::Pending(handle) => handle.await.ok().flatten(),
        }
    }

    /// [`HashState::resolve`] for code already running on the blocking pool.
    pub(crate) fn resolve_blocking(self) -> Option<DigestHasher> {
        match self {
            HashState::Unknown => None,
            HashState::Ready(hasher) => Some(hasher),
            HashState::Pending(handle) => {
                tokio::runtime::Handle::current().block_on(handle).ok().flatten()
            }
        }
    }
}

/// Exclusive access to one upload. Blocking tasks that write an upload own the guard, so that a request future
/// dropped mid-write (client gone) cannot let a second request interleave with the still-running write.
pub(crate) type SessionGuard = tokio::sync::OwnedMutexGuard<Session>;

#[derive(Default)]
struct Sessions(Mutex<HashMap<UploadId, Arc<tokio::sync::Mutex<Session>>>>);

impl Sessions {
    fn entry(&self, id: &UploadId) -> Arc<tokio::sync::Mutex<Session>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(id.clone()).or_default().clone()
    }

    async fn lock(&self, id: &UploadId) -> SessionGuard {
        self.entry(id).lock_owned().await
    }

    fn try_lock(&self, id: &UploadId) -> Option<SessionGuard> {
        self.entry(id).try_lock_owned().ok()
    }

    fn insert_new(&self, id: &UploadId, hasher: DigestHasher) {
        let session = Session { hash: HashState::Ready(hasher) };
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
    }

    fn forget(&self, id: &UploadId) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}

enum Backend {
    /// Direct std::fs on a local directory: staging file, positional reads, atomic rename.
    Local(local::LocalBackend),
    /// Any object_store implementation: per-append part objects, write-then-visible commits.
    Object(object::ObjectBackend),
}

struct Inner {
    backend: Backend,
    sessions: Sessions,
    options: StoreOptions,
}

/// Content-addressed blob storage with resumable, verified uploads. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.inner.backend {
            Backend::Local(local) => format!("local {}", local.root().display()),
            Backend::Object(object) => format!("object store {}", object.describe()),
        };
        f.debug_struct("BlobStore")
            .field("backend", &backend)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl BlobStore {
    /// Opens the store at `location`: `file:///absolute/path` or a plain path (local filesystem, created if
    /// missing), or `memory://` (in-process object store, for tests). Other backends: [`BlobStore::with_object_store`].
    pub async fn open(location: &str) -> Result<BlobStore> {
        BlobStore::open_with(location, StoreOptions::default()).await
    }

    pub async fn open_with(location: &str, options: StoreOptions) -> Result<BlobStore> {
        let invalid = |reason: &str| StorageError::InvalidLocation {
            location: location.to_owned(),
            reason: reason.into(),
        };
        let backend = if location == "memory://" || location == "memory:///" {
            Backend::Object(object::ObjectBackend::new(Arc::new(
                object_store::memory::InMemory::new(),
            )))
        } else if let Some(path) = location.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid("a file URL needs an absolute path (`file:///data/blobs`)"));
            }
            if path.contains('%') {
                return Err(invalid(
                    "percent-encoded file URLs are not supported; pass a plain path",
                ));
            }
            Backend::Local(local::LocalBackend::open(path.into()).await?)
        } else if location.contains("://") {
            return Err(invalid(
                "unsupported scheme; build the object store and use `BlobStore::with_object_store`",
            ));
        } else if location.is_empty() {
            return Err(invalid("empty path"));
        } else {
            let path =
                std::path::absolute(location).map_err(StorageError::io("resolving", location))?;
            Backend::Local(local::LocalBackend::open(path).await?)
        };
        Ok(BlobStore::from_backend(backend, options))
    }

    /// A store on any object_store backend (S3, Azure Blob, …), rooted at the store's top level (wrap the store in
    /// `object_store::prefix::PrefixStore` to use a sub-path).
    pub fn with_object_store(store: Arc<dyn ObjectStore>, options: StoreOptions) -> BlobStore {
        BlobStore::from_backend(Backend::Object(object::ObjectBackend::new(store)), options)
    }

    fn from_backend(backend: Backend, options: StoreOptions) -> BlobStore {
        BlobStore { inner: Arc::new(Inner { backend, sessions: Sessions::default(), options }) }
    }

    /// Whether this store uses the local-filesystem fast path.
    pub fn is_local(&self) -> bool {
        matches!(self.inner.backend, Backend::Local(_))
    }

    // ----- uploads -----

    /// Starts an upload session, hashing with sha256 as bytes arrive.
    pub async fn create_upload(&self) -> Result<UploadId> {
        self.create_upload_for(Algorithm::Sha256).await
    }

    /// Starts an upload session hashing incrementally with `algorithm` (a commit with another algorithm still
    /// works, by re-reading the upload once).
    pub async fn create_upload_for(&self, algorithm: Algorithm) -> Result<UploadId> {
        let id = UploadId::generate();
        match &self.inner.backend {
            Backend::Local(local) => local.create_upload(&id).await?,
            Backend::Object(object) => object.create_upload(&id).await?,
        }
        self.inner.sessions.insert_new(&id, DigestHasher::new(algorithm));
        Ok(id)
    }

    /// Streams `body` onto the end of the upload and returns the new offset (total bytes received).
    ///
    /// `offset` is where the client says the chunk starts (from `Content-Range`); it must equal the current size,
    /// else [`StorageError::OffsetMismatch`]. `None` appends at whatever the current size is. The body is never
    /// buffered whole. If the body fails midway, the bytes that did arrive are kept (the client resumes from
    /// [`BlobStore::upload_status`]) and [`StorageError::Body`] is returned.
    pub async fn append<S, E>(&self, id: &UploadId, offset: Option<u64>, body: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        let guard = self.inner.sessions.lock(id).await;
        let result = match &self.inner.backend {
            Backend::Local(local) => local.append(guard, id, offset, body).await,
            Backend::Object(object) => object.append(guard, id, offset, body).await,
        };
        if matches!(result, Err(StorageError::UploadUnknown(_))) {
            self.inner.sessions.forget(id);
        }
        result
    }

    /// The upload's current offset. Does not wait for an append in progress (it reports what is stored so far).
    pub async fn upload_status(&self, id: &UploadId) -> Result<UploadStatus> {
        match &self.inner.backend {
            Backend::Local(local) => local.status(id).await,
            Backend::Object(object) => object.status(id).await,
        }
    }

    /// Verifies the upload against `expected` and, only if it matches, makes it visible as that blob (atomically:
    /// readers see the whole blob or nothing). Returns the blob's size. On a mismatch the upload is discarded
    /// (as distribution does) and [`StorageError::DigestMismatch`] is returned; nothing becomes visible.
    /// [`BlobStore::verify`] and [`BlobStore::publish`] are the two halves, for callers that must do something in
    /// between (the registry locks the blob's metadata before the bytes appear).
    pub async fn commit(&self, id: &UploadId, expected: &Digest) -> Result<u64> {
        let verified = self.verify(id, expected).await?;
        let size = verified.size;
        self.publish(verified).await?;
        Ok(size)
    }

    /// Checks the upload against `expected` without making it visible yet; see [`VerifiedUpload`]. A mismatch
    /// discards the upload, as [`BlobStore::commit`] does.
    pub async fn verify(&self, id: &UploadId, expected: &Digest) -> Result<VerifiedUpload> {
        let guard = self.inner.sessions.lock(id).await;
        let sync = self.inner.options.sync_on_commit;
        let result = match &self.inner.backend {
            Backend::Local(local) => local.verify(guard, id, expected, sync).await,
            Backend::Object(object) => object.verify(guard, id, expected).await,
        };
        self.verified(id, expected, result)
    }

    fn verified(
        &self,
        id: &UploadId,
        expected: &Digest,
        result: Result<(SessionGuard, u64)>,
    ) -> Result<VerifiedUpload> {
        match result {
            Ok((guard, size)) => {
                Ok(VerifiedUpload { id: id.clone(), digest: expected.clone(), size, guard })
            }
            Err(error) => {
                if matches!(
                    error,
                    StorageError::DigestMismatch { .. } | StorageError::UploadUnknown(_)
                ) {
                    self.inner.sessions.forget(id);
                }
                Err(error)
            }
        }
    }

    /// Makes a verified upload visible as its blob, replacing (local) or keeping (object stores) a blob of the same
    /// digest already there, and ends the upload. Returns the blob's size.
    pub async fn publish(&self, verified: VerifiedUpload) -> Result<u64> {
        let VerifiedUpload { id, digest, size, guard } = verified;
        let sync = self.inner.options.sync_on_commit;
        let result = match &self.inner.backend {
            Backend::Local(local) => local.publish(guard, &id, &digest, sync).await,
            Backend::Object(object) => object.publish(guard, &id, &digest).await,
        };
        if matches!(result, Ok(()) | Err(StorageError::UploadUnknown(_))) {
            self.inner.sessions.forget(&id);
        }
        result.map(|()| size)
    }

    /// Appends `chunk` (a final chunk already in memory) at `offset` and commits as [`BlobStore::commit`] does, in
    /// one step where the backend allows it. Same errors as `append` followed by `commit`.
    pub async fn append_and_commit(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        chunk: Bytes,
        expected: &Digest,
    ) -> Result<u64> {
        let verified = self.append_and_verify(id, offset, chunk, expected).await?;
        let size = verified.size;
        self.publish(verified).await?;
        Ok(size)
    }

    /// [`BlobStore::append_and_commit`] up to verification: see [`BlobStore::verify`].
    pub async fn append_and_verify(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        chunk: Bytes,
        expected: &Digest,
    ) -> Result<VerifiedUpload> {
        match &self.inner.backend {
            Backend::Local(local) => {
                let guard = self.inner.sessions.lock(id).await;
                let sync = self.inner.options.sync_on_commit;
                let result =
                    local.append_and_verify(guard, id, offset, chunk, expected, sync).await;
                self.verified(id, expected, result)
            }
            Backend::Object(_) => {
                let body = futures::stream::once(async move { Ok::<_, std::io::Error>(chunk) });
                self.append(id, offset, body).await?;
                self.verify(id, expected).await
            }
        }
    }

    /// Discards an upload.
    pub async fn cancel(&self, id: &UploadId) -> Result<()> {
        let guard = self.inner.sessions.lock(id).await;
        let result = match &self.inner.backend {
            Backend::Local(local) => local.cancel(guard, id).await,
            Backend::Object(object) => object.cancel(guard, id).await,
        };
        self.inner.sessions.forget(id);
        result
    }

    /// Removes uploads that received no bytes for `older_than` and are not in use; returns their ids so that the
    /// caller can drop its session records.
    pub async fn remove_stale_uploads(&self, older_than: Duration) -> Result<Vec<UploadId>> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let candidates = match &self.inner.backend {
            Backend::Local(local) => local.uploads_idle_since(cutoff).await?,
            Backend::Object(object) => object.uploads_idle_since(cutoff).await?,
        };
        let mut removed = Vec::new();
        for id in candidates {
            // Skip sessions a request is working on right now.
            let Some(guard) = self.inner.sessions.try_lock(&id) else { continue };
            let result = match &self.inner.backend {
                Backend::Local(local) => local.cancel(guard, &id).await,
                Backend::Object(object) => object.cancel(guard, &id).await,
            };
            self.inner.sessions.forget(&id);
            match result {
                Ok(()) => removed.push(id),
                Err(StorageError::UploadUnknown(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(removed)
    }

    /// Monolithic upload in one call (`POST ?digest=` with a body): create, append, commit.
    pub async fn put_stream<S, E>(&self, expected: &Digest, body: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        let verified = self.put_stream_verified(expected, body).await?;
        let id = verified.id.clone();
        let size = verified.size;
        if let Err(error) = self.publish(verified).await {
            self.discard(&id).await;
            return Err(error);
        }
        Ok(size)
    }

    /// [`BlobStore::put_stream`] up to verification: see [`BlobStore::verify`]. Whoever does not publish the
    /// result should [`BlobStore::cancel`] its upload.
    pub async fn put_stream_verified<S, E>(
        &self,
        expected: &Digest,
        body: S,
    ) -> Result<VerifiedUpload>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        let id = self.create_upload_for(expected.algorithm()).await?;
        let result = match self.append(&id, Some(0), body).await {
            Ok(_) => self.verify(&id, expected).await,
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.discard(&id).await;
        }
        result
    }

    /// Best effort: a failed one-shot upload cannot be resumed by anyone, so do not leave it behind.
    async fn discard(&self, id: &UploadId) {
        match self.cancel(id).await {
            Ok(()) | Err(StorageError::UploadUnknown(_)) => {}
            Err(error) => {
                tracing::debug!(upload = %id, %error, "discarding failed one-shot upload")
            }
        }
    }

    /// Stores a small blob held in memory (manifests, configs) after checking it against `expected`.
    pub async fn put_bytes(&self, expected: &Digest, bytes: Bytes) -> Result<u64> {
        let actual = verify_in_memory(expected.algorithm(), bytes.clone()).await?;
        if actual != *expected {
            return Err(StorageError::DigestMismatch { expected: expected.clone(), actual });
        }
        let size = bytes.len() as u64;
        match &self.inner.backend {
            Backend::Local(local) => {
                local.put_bytes(expected, bytes, self.inner.options.sync_on_commit).await?
            }
            Backend::Object(object) => object.put_bytes(expected, bytes).await?,
        }
        Ok(size)
    }

    // ----- blobs -----

    /// The blob's size, or `None` if it does not exist.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match &self.inner.backend {
            Backend::Local(local) => local.stat(digest).await,
            Backend::Object(object) => object.stat(digest).await,
        }
    }

    /// Opens the blob for streaming, whole or a byte range. `range` is end-exclusive; its end is clamped to the
    /// blob's size; a range that starts at or after the end (or is empty) is [`StorageError::RangeNotSatisfiable`].
    pub async fn get(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<BlobReader> {
        match &self.inner.backend {
            Backend::Local(local) => {
                local.get(digest, range, self.inner.options.read_chunk_size).await
            }
            Backend::Object(object) => object.get(digest, range).await,
        }
    }

    /// Reads a whole blob into memory, refusing blobs larger than `max_len` ([`StorageError::TooLarge`]). For
    /// manifests and configs; stream anything else with [`BlobStore::get`].
    pub async fn read_to_bytes(&self, digest: &Digest, max_len: u64) -> Result<Bytes> {
        use futures::TryStreamExt;
        let reader = self.get(digest, None).await?;
        if reader.size() > max_len {
            return Err(StorageError::TooLarge { size: reader.size(), limit: max_len });
        }
        let mut buffer = Vec::with_capacity(reader.size() as usize);
        let mut stream = reader.into_stream();
        while let Some(chunk) = stream.try_next().await? {
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.into())
    }

    /// Deletes a blob; `false` if it did not exist. Readers that already opened it can finish (local filesystem).
    pub async fn delete(&self, digest: &Digest) -> Result<bool> {
        match &self.inner.backend {
            Backend::Local(local) => local.delete(digest).await,
            Backend::Object(object) => object.delete(digest).await,
        }
    }

    /// Every stored blob, for garbage collection. Memory use is bounded by one shard directory (local) or one list
    /// page (object store), not by the number of blobs.
    pub fn list_blobs(&self) -> BoxStream<'static, Result<BlobInfo>> {
        match &self.inner.backend {
            Backend::Local(local) => local.list_blobs(),
            Backend::Object(object) => object.list_blobs(),
        }
    }
}

/// Hashes an in-memory blob, off the async threads when it is large enough to matter.
async fn verify_in_memory(algorithm: Algorithm, bytes: Bytes) -> Result<Digest> {
    const INLINE_LIMIT: usize = 64 * 1024;
    if bytes.len() <= INLINE_LIMIT {
        return Ok(Digest::compute(algorithm, &bytes));
    }
    Ok(tokio::task::spawn_blocking(move || Digest::compute(algorithm, &bytes)).await?)
}

/// `blobs/<algorithm>/<first two hex>/<hex>`, shared by both backends.
pub(crate) fn blob_key(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("blobs/{}/{}/{hex}", digest.algorithm(), &hex[..2])
}

/// Clamps a requested range to a blob of `size` bytes.
pub(crate) fn resolve_range(range: Option<Range<u64>>, size: u64) -> Result<Range<u64>> {
    match range {
        None => Ok(0..size),
        Some(range) if range.start >= size || range.end <= range.start => {
            Err(StorageError::RangeNotSatisfiable { start: range.start, size })
        }
        Some(range) => Ok(range.start..range.end.min(size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids() {
        let generated = UploadId::generate();
        assert_eq!(UploadId::parse(generated.as_str()).unwrap(), generated);
        for bad in ["", "../x", "a/b", "a.b", &"a".repeat(65), "a b"] {
            assert!(matches!(UploadId::parse(bad), Err(StorageError::InvalidUploadId(_))), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(resolve_range(None, 10).unwrap(), 0..10);
        assert_eq!(resolve_range(Some(2..5), 10).unwrap(), 2..5);
        assert_eq!(resolve_range(Some(2..50), 10).unwrap(), 2..10);
        assert!(resolve_range(Some(10..11), 10).is_err());
        assert!(resolve_range(Some(3..3), 10).is_err());
        assert!(resolve_range(Some(0..1), 0).is_err());
    }

    /// The incremental hash must survive across appends (pending between them), or every commit would re-read
    /// the whole upload; the conformance tests cannot tell the two apart, so look inside.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hash_state_carries_across_appends() {
        let directory = tempfile::tempdir().unwrap();
        for store in [
            BlobStore::open(directory.path().to_str().unwrap()).await.unwrap(),
            BlobStore::open("memory://").await.unwrap(),
        ] {
            let id = store.create_upload().await.unwrap();
            let mut total = 0u64;
            for size in [1usize, 700_000, 3 * 1024 * 1024, 0, 5] {
                let piece = Bytes::from(vec![7u8; size]);
                let stream = futures::stream::iter([Ok::<_, std::io::Error>(piece)]);
                total = store.append(&id, None, stream).await.unwrap();
            }
            let mut guard = store.inner.sessions.lock(&id).await;
            let hasher = guard.hash.take().resolve().await.expect("hash state kept");
            assert_eq!(hasher.bytes_hashed(), total);
            assert_eq!(hasher.finalize(), Digest::sha256_of(&vec![7u8; total as usize]));
        }
    }

    #[test]
    fn blob_keys_are_sharded() {
        let digest = Digest::sha256_of(b"");
        assert_eq!(
            blob_key(&digest),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
