//! Storage conformance suite: the same behaviour checks against the local fast path, the in-memory object store
//! and object_store's own filesystem backend (the generic path on a real directory).

use std::sync::Arc;
use std::time::Duration;

use berth_oci::{Algorithm, Digest};
use berth_storage::{BlobStore, StorageError, StoreOptions, UploadId};
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use object_store::ObjectStore;

/// How to build (and rebuild, as after a restart) one kind of store over the same data.
enum Kind {
    Local,
    Memory,
    ObjectFs,
}

struct Harness {
    kind: Kind,
    directory: tempfile::TempDir,
    memory: Arc<object_store::memory::InMemory>,
}

impl Harness {
    fn new(kind: Kind) -> Harness {
        let directory = tempfile::tempdir().unwrap();
        Harness { kind, directory, memory: Arc::new(object_store::memory::InMemory::new()) }
    }

    /// A fresh `BlobStore` over the harness's data; calling it again simulates a process restart.
    async fn open(&self) -> BlobStore {
        match self.kind {
            Kind::Local => BlobStore::open(self.directory.path().to_str().unwrap()).await.unwrap(),
            Kind::Memory => {
                BlobStore::with_object_store(self.memory.clone(), StoreOptions::default())
            }
            Kind::ObjectFs => {
                let store: Arc<dyn ObjectStore> = Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(self.directory.path())
                        .unwrap(),
                );
                BlobStore::with_object_store(store, StoreOptions::default())
            }
        }
    }
}

fn body(chunks: &[&[u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let owned: Vec<Result<Bytes, std::io::Error>> =
        chunks.iter().map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    stream::iter(owned)
}

fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length).map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

async fn read_all(
    store: &BlobStore,
    digest: &Digest,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let reader = store.get(digest, range).await.unwrap();
    let expected_length = reader.content_length();
    let chunks: Vec<Bytes> = reader.try_collect().await.unwrap();
    let data = chunks.concat();
    assert_eq!(data.len() as u64, expected_length);
    data
}

async fn write_verify_read(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let digest = Digest::sha256_of(&data);
    let id = store.create_upload().await.unwrap();
    assert_eq!(store.upload_status(&id).await.unwrap().offset, 0);
    let (first, rest) = data.split_at(1024 * 1024 + 5);
    assert_eq!(
        store.append(&id, Some(0), body(&[&first[..10], &first[10..]])).await.unwrap(),
        first.len() as u64
    );
    assert_eq!(store.upload_status(&id).await.unwrap().offset, first.len() as u64);
    // A stream append without Content-Range (offset None) continues at the end.
    let pieces: Vec<&[u8]> = rest.chunks(65536).collect();
    assert_eq!(store.append(&id, None, body(&pieces)).await.unwrap(), data.len() as u64);
    assert_eq!(store.stat(&digest).await.unwrap(), None, "nothing is visible before commit");
    assert_eq!(store.commit(&id, &digest).await.unwrap(), data.len() as u64);

    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(read_all(&store, &digest, None).await, data);
    assert_eq!(read_all(&store, &digest, Some(5..2_000_000)).await, &data[5..2_000_000]);
    assert_eq!(read_all(&store, &digest, Some(3_000_000..u64::MAX)).await, &data[3_000_000..]);
    let reader = store.get(&digest, Some(10..20)).await.unwrap();
    assert_eq!(
        (reader.size(), reader.range(), reader.content_length()),
        (data.len() as u64, 10..20, 10)
    );
    let out_of_range =
        store.get(&digest, Some(data.len() as u64..data.len() as u64 + 1)).await.unwrap_err();
    assert!(matches!(out_of_range, StorageError::RangeNotSatisfiable { .. }), "{out_of_range:?}");
    assert_eq!(out_of_range.code().http_status(), 416);
    // The upload is gone once committed.
    assert!(matches!(store.upload_status(&id).await, Err(StorageError::UploadUnknown(_))));
    assert!(matches!(store.commit(&id, &digest).await, Err(StorageError::UploadUnknown(_))));
}

async fn digest_mismatch_leaves_nothing(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(100_000, 2);
    let claimed = Digest::sha256_of(b"something else");
    let id = store.create_upload().await.unwrap();
    store.append(&id, Some(0), body(&[&data])).await.unwrap();
    let error = store.commit(&id, &claimed).await.unwrap_err();
    match &error {
        StorageError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &claimed);
            assert_eq!(actual, &Digest::sha256_of(&data));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert_eq!(error.code(), berth_oci::ErrorCode::DigestInvalid);
    assert_eq!(store.stat(&claimed).await.unwrap(), None);
    assert_eq!(store.stat(&Digest::sha256_of(&data)).await.unwrap(), None);
    assert!(store.list_blobs().try_collect::<Vec<_>>().await.unwrap().is_empty());
    assert!(matches!(store.upload_status(&id).await, Err(StorageError::UploadUnknown(_))));

    // The one-shot form cleans up after itself too.
    let error = store.put_stream(&claimed, body(&[&data])).await.unwrap_err();
    assert!(matches!(error, StorageError::DigestMismatch { .. }));
    assert_eq!(store.stat(&claimed).await.unwrap(), None);
    assert!(store.remove_stale_uploads(Duration::ZERO).await.unwrap().is_empty());
}

async fn offset_checks(harness: Harness) {
    let store = harness.open().await;
    let id = store.create_upload().await.unwrap();
    store.append(&id, Some(0), body(&[b"hello "])).await.unwrap();
    for wrong in [0, 5, 7, 100] {
        let error = store.append(&id, Some(wrong), body(&[b"world"])).await.unwrap_err();
        assert!(matches!(error, StorageError::OffsetMismatch { current: 6, .. }), "{error:?}");
        assert_eq!(error.code(), berth_oci::ErrorCode::RangeInvalid);
    }
    assert_eq!(store.upload_status(&id).await.unwrap().offset, 6);
    // Empty appends are accepted and change nothing.
    assert_eq!(store.append(&id, Some(6), body(&[])).await.unwrap(), 6);
    assert_eq!(store.append(&id, Some(6), body(&[b"world"])).await.unwrap(), 11);
    store.commit(&id, &Digest::sha256_of(b"hello world")).await.unwrap();
}

async fn resume_after_restart(harness: Harness) {
    let data = pattern(2 * 1024 * 1024 + 3, 3);
    let digest = Digest::sha256_of(&data);
    let (first, second) = data.split_at(700_001);
    let id = {
        let store = harness.open().await;
        let id = store.create_upload().await.unwrap();
        store.append(&id, Some(0), body(&[first])).await.unwrap();
        id
    };
    // A new process: no hash state in memory, only the stored bytes.
    let store = harness.open().await;
    let parsed = UploadId::parse(id.as_str()).unwrap();
    assert_eq!(store.upload_status(&parsed).await.unwrap().offset, first.len() as u64);
    store.append(&parsed, Some(first.len() as u64), body(&[second])).await.unwrap();
    assert_eq!(store.commit(&parsed, &digest).await.unwrap(), data.len() as u64);
    assert_eq!(read_all(&store, &digest, None).await, data);

    // Restart between the last append and the commit, committing with sha512 (always a re-hash).
    let sha512 = Digest::compute(Algorithm::Sha512, &data);
    let id = {
        let store = harness.open().await;
        let id = store.create_upload().await.unwrap();
        store.append(&id, Some(0), body(&[&data])).await.unwrap();
        id
    };
    let store = harness.open().await;
    assert!(matches!(
        store.commit(&id, &Digest::sha256_of(b"wrong")).await,
        Err(StorageError::DigestMismatch { .. })
    ));
    let id = store.create_upload_for(Algorithm::Sha512).await.unwrap();
    store.append(&id, Some(0), body(&[&data])).await.unwrap();
    let store = harness.open().await;
    assert_eq!(store.commit(&id, &sha512).await.unwrap(), data.len() as u64);
    assert_eq!(store.stat(&sha512).await.unwrap(), Some(data.len() as u64));
}

async fn concurrent_uploads_of_the_same_digest(harness: Harness) {
    let store = harness.open().await;
    let data = Bytes::from(pattern(1024 * 1024 + 123, 4));
    let digest = Digest::sha256_of(&data);
    let mut tasks = Vec::new();
    for task in 0..6 {
        let store = store.clone();
        let data = data.clone();
        let digest = digest.clone();
        tasks.push(tokio::spawn(async move {
            let id = store.create_upload().await?;
            let pieces: Vec<Result<Bytes, std::io::Error>> =
                data.chunks(10_000 + task * 997).map(|piece| Ok(data.slice_ref(piece))).collect();
            store.append(&id, Some(0), stream::iter(pieces)).await?;
            store.commit(&id, &digest).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), data.len() as u64);
    }
    assert_eq!(read_all(&store, &digest, None).await, data);
    let listed: Vec<_> = store.list_blobs().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0].digest, listed[0].size), (&digest, data.len() as u64));
}

async fn concurrent_appends_to_one_upload_serialize(harness: Harness) {
    let store = harness.open().await;
    let id = store.create_upload().await.unwrap();
    let chunk = pattern(200_000, 5);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let id = id.clone();
        let chunk = chunk.clone();
        tasks.push(tokio::spawn(async move { store.append(&id, None, body(&[&chunk])).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let whole = chunk.repeat(4);
    store.commit(&id, &Digest::sha256_of(&whole)).await.unwrap();
}

async fn delete_and_cancel(harness: Harness) {
    let store = harness.open().await;
    let digest = Digest::sha256_of(b"payload");
    store.put_stream(&digest, body(&[b"pay", b"load"])).await.unwrap();
    assert!(store.delete(&digest).await.unwrap());
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(!store.delete(&digest).await.unwrap());
    let error = store.get(&digest, None).await.unwrap_err();
    assert!(matches!(error, StorageError::BlobUnknown(_)));
    assert_eq!(error.code().http_status(), 404);

    let id = store.create_upload().await.unwrap();
    store.append(&id, Some(0), body(&[b"abc"])).await.unwrap();
    store.cancel(&id).await.unwrap();
    assert!(matches!(store.upload_status(&id).await, Err(StorageError::UploadUnknown(_))));
    assert!(matches!(
        store.append(&id, None, body(&[b"x"])).await,
        Err(StorageError::UploadUnknown(_))
    ));
    assert!(matches!(store.cancel(&id).await, Err(StorageError::UploadUnknown(_))));
    let never = UploadId::parse("never-issued").unwrap();
    assert!(matches!(store.upload_status(&never).await, Err(StorageError::UploadUnknown(_))));
}

async fn stale_uploads_are_removed(harness: Harness) {
    let store = harness.open().await;
    let old = store.create_upload().await.unwrap();
    store.append(&old, None, body(&[b"old"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = store.create_upload().await.unwrap();
    let removed = store.remove_stale_uploads(Duration::from_millis(1000)).await.unwrap();
    assert_eq!(removed, std::slice::from_ref(&old));
    assert!(matches!(store.upload_status(&old).await, Err(StorageError::UploadUnknown(_))));
    assert_eq!(store.upload_status(&fresh).await.unwrap().offset, 0);
    assert!(store.remove_stale_uploads(Duration::from_secs(3600)).await.unwrap().is_empty());
}

async fn failed_body_keeps_what_arrived(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(300_000, 6);
    let id = store.create_upload().await.unwrap();
    let broken = stream::iter(vec![
        Ok(Bytes::copy_from_slice(&data[..100_000])),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ]);
    let error = store.append(&id, Some(0), broken).await.unwrap_err();
    assert!(matches!(error, StorageError::Body(_)), "{error:?}");
    let offset = store.upload_status(&id).await.unwrap().offset;
    assert_eq!(offset, 100_000);
    store.append(&id, Some(offset), body(&[&data[100_000..]])).await.unwrap();
    store.commit(&id, &Digest::sha256_of(&data)).await.unwrap();
}

async fn dropped_append_does_not_corrupt(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(4 * 1024 * 1024, 7);
    let id = store.create_upload().await.unwrap();
    // A client that sends 3 MiB and then stalls forever; the server drops the request (timeout).
    let stalled = stream::iter(
        data[..3 * 1024 * 1024]
            .chunks(256 * 1024)
            .map(|piece| Ok(Bytes::copy_from_slice(piece)))
            .collect::<Vec<Result<Bytes, std::io::Error>>>(),
    )
    .chain(stream::pending());
    let outcome =
        tokio::time::timeout(Duration::from_millis(300), store.append(&id, Some(0), stalled)).await;
    assert!(outcome.is_err(), "the stalled append must still be running");
    // Whatever reached storage is consistent; resume from there.
    let offset = store.upload_status(&id).await.unwrap().offset;
    let resumed = store.append(&id, Some(offset), body(&[&data[offset as usize..]])).await.unwrap();
    assert_eq!(resumed, data.len() as u64);
    store.commit(&id, &Digest::sha256_of(&data)).await.unwrap();
}

async fn small_blobs_and_empty_blob(harness: Harness) {
    let store = harness.open().await;
    let manifest = Bytes::from_static(br#"{"schemaVersion":2}"#);
    let digest = Digest::sha256_of(&manifest);
    assert_eq!(store.put_bytes(&digest, manifest.clone()).await.unwrap(), manifest.len() as u64);
    assert_eq!(store.read_to_bytes(&digest, 1024).await.unwrap(), manifest);
    assert!(matches!(store.read_to_bytes(&digest, 4).await, Err(StorageError::TooLarge { .. })));
    let wrong = store.put_bytes(&Digest::sha256_of(b"x"), manifest.clone()).await.unwrap_err();
    assert!(matches!(wrong, StorageError::DigestMismatch { .. }));
    assert_eq!(store.stat(&Digest::sha256_of(b"x")).await.unwrap(), None);

    let empty = Digest::sha256_of(b"");
    let id = store.create_upload().await.unwrap();
    assert_eq!(store.commit(&id, &empty).await.unwrap(), 0);
    assert_eq!(store.stat(&empty).await.unwrap(), Some(0));
    assert!(store.read_to_bytes(&empty, 0).await.unwrap().is_empty());
    let reader = store.get(&empty, None).await.unwrap();
    assert_eq!(reader.content_length(), 0);
    assert!(reader.try_collect::<Vec<_>>().await.unwrap().concat().is_empty());
    let mut listed: Vec<_> =
        store.list_blobs().map_ok(|info| (info.digest, info.size)).try_collect().await.unwrap();
    listed.sort();
    let mut expected = vec![(digest, manifest.len() as u64), (empty, 0)];
    expected.sort();
    assert_eq!(listed, expected);
}

/// A final chunk held in memory, appended and committed in one step: fresh, after earlier chunks, after a
/// restart (hash state lost), with a wrong offset and with a wrong digest.
async fn append_and_commit_final_chunk(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(300_000, 7);
    let digest = Digest::sha256_of(&data);

    let id = store.create_upload().await.unwrap();
    let size = store.append_and_commit(&id, Some(0), Bytes::from(data.clone()), &digest).await;
    assert_eq!(size.unwrap(), data.len() as u64);
    assert_eq!(read_all(&store, &digest, None).await, data);
    assert!(matches!(store.upload_status(&id).await, Err(StorageError::UploadUnknown(_))));

    // Earlier chunks streamed, the last one in memory; then the same after a restart.
    let other = pattern(200_000, 9);
    let other_digest = Digest::sha256_of(&other);
    for restart in [false, true] {
        let mut store = harness.open().await;
        let id = store.create_upload().await.unwrap();
        store.append(&id, Some(0), body(&[&other[..150_000]])).await.unwrap();
        if restart {
            store = harness.open().await;
        }
        let wrong = store
            .append_and_commit(
                &id,
                Some(3),
                Bytes::copy_from_slice(&other[150_000..]),
                &other_digest,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(wrong, StorageError::OffsetMismatch { current: 150_000, .. }),
            "{wrong:?}"
        );
        let size = store
            .append_and_commit(&id, None, Bytes::copy_from_slice(&other[150_000..]), &other_digest)
            .await
            .unwrap();
        assert_eq!(size, other.len() as u64);
        assert_eq!(read_all(&store, &other_digest, None).await, other);
    }

    // A wrong digest publishes nothing and discards the upload.
    let id = store.create_upload().await.unwrap();
    let claimed = Digest::sha256_of(b"not these bytes");
    let error = store.append_and_commit(&id, Some(0), Bytes::from_static(b"bytes"), &claimed).await;
    assert!(matches!(error, Err(StorageError::DigestMismatch { .. })), "{error:?}");
    assert_eq!(store.stat(&claimed).await.unwrap(), None);
    assert_eq!(store.stat(&Digest::sha256_of(b"bytes")).await.unwrap(), None);
    assert!(matches!(store.upload_status(&id).await, Err(StorageError::UploadUnknown(_))));
}

/// Verification and publication apart (the registry locks the blob's metadata in between): nothing is visible
/// before `publish`, appends wait, stale-upload removal skips the upload, a dropped verification leaves the upload
/// to commit later, and published blobs are listed with a recent modification time.
async fn verify_then_publish(harness: Harness) {
    let store = harness.open().await;
    let data = pattern(200_000, 11);
    let digest = Digest::sha256_of(&data);
    let id = store.create_upload().await.unwrap();
    store.append(&id, Some(0), body(&[&data])).await.unwrap();
    let verified = store.verify(&id, &digest).await.unwrap();
    assert_eq!(
        (verified.size(), verified.digest(), verified.id()),
        (data.len() as u64, &digest, &id)
    );
    assert_eq!(store.stat(&digest).await.unwrap(), None, "verified is not visible yet");
    assert!(store.remove_stale_uploads(Duration::ZERO).await.unwrap().is_empty());
    let append = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move { store.append(&id, None, body(&[b"late"])).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!append.is_finished(), "an append waits while the upload is verified");
    let before = std::time::SystemTime::now() - Duration::from_secs(60);
    assert_eq!(store.publish(verified).await.unwrap(), data.len() as u64);
    assert!(matches!(append.await.unwrap(), Err(StorageError::UploadUnknown(_))));
    assert_eq!(read_all(&store, &digest, None).await, data);
    let listed: Vec<_> = store.list_blobs().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].modified > before, "{:?}", listed[0].modified);

    // Verified, then dropped: the upload is still there and commits later (hashing again).
    let other = pattern(50_000, 12);
    let other_digest = Digest::sha256_of(&other);
    let id = store.create_upload().await.unwrap();
    let verified = store.append_and_verify(&id, Some(0), Bytes::from(other.clone()), &other_digest);
    drop(verified.await.unwrap());
    assert_eq!(store.stat(&other_digest).await.unwrap(), None);
    assert_eq!(store.upload_status(&id).await.unwrap().offset, other.len() as u64);
    assert_eq!(store.commit(&id, &other_digest).await.unwrap(), other.len() as u64);
    assert_eq!(read_all(&store, &other_digest, None).await, other);

    // A one-shot upload verified but not published is discarded by its owner.
    let third = pattern(1000, 13);
    let third_digest = Digest::sha256_of(&third);
    let verified = store.put_stream_verified(&third_digest, body(&[&third])).await.unwrap();
    let id = verified.id().clone();
    drop(verified);
    store.cancel(&id).await.unwrap();
    assert_eq!(store.stat(&third_digest).await.unwrap(), None);
    let wrong = store.put_stream_verified(&Digest::sha256_of(b"x"), body(&[b"y"])).await;
    assert!(matches!(wrong, Err(StorageError::DigestMismatch { .. })), "{wrong:?}");
}

macro_rules! conformance {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn verify_then_publish() {
                super::verify_then_publish(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn write_verify_read() {
                super::write_verify_read(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn digest_mismatch_leaves_nothing() {
                super::digest_mismatch_leaves_nothing(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn offset_checks() {
                super::offset_checks(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn resume_after_restart() {
                super::resume_after_restart(Harness::new($kind)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_uploads_of_the_same_digest() {
                super::concurrent_uploads_of_the_same_digest(Harness::new($kind)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_appends_to_one_upload_serialize() {
                super::concurrent_appends_to_one_upload_serialize(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn delete_and_cancel() {
                super::delete_and_cancel(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn stale_uploads_are_removed() {
                super::stale_uploads_are_removed(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn failed_body_keeps_what_arrived() {
                super::failed_body_keeps_what_arrived(Harness::new($kind)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dropped_append_does_not_corrupt() {
                super::dropped_append_does_not_corrupt(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn append_and_commit_final_chunk() {
                super::append_and_commit_final_chunk(Harness::new($kind)).await;
            }
            #[tokio::test]
            async fn small_blobs_and_empty_blob() {
                super::small_blobs_and_empty_blob(Harness::new($kind)).await;
            }
        }
    };
}

conformance!(local, Kind::Local);
conformance!(memory, Kind::Memory);
conformance!(object_fs, Kind::ObjectFs);

#[tokio::test]
async fn open_locations() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("file://{}", directory.path().join("store").display());
    let store = BlobStore::open(&url).await.unwrap();
    assert!(store.is_local());
    assert!(directory.path().join("store/uploads").is_dir());
    assert!(!BlobStore::open("memory://").await.unwrap().is_local());
    for bad in ["", "file://relative", "s3://bucket/x"] {
        assert!(
            matches!(BlobStore::open(bad).await, Err(StorageError::InvalidLocation { .. })),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn local_layout_is_sharded_and_uploads_never_show_as_blobs() {
    let directory = tempfile::tempdir().unwrap();
    let store = BlobStore::open(directory.path().to_str().unwrap()).await.unwrap();
    let digest = Digest::sha256_of(b"layout");
    store.put_stream(&digest, body(&[b"layout"])).await.unwrap();
    let expected =
        directory.path().join(format!("blobs/sha256/{}/{}", &digest.hex()[..2], digest.hex()));
    assert_eq!(std::fs::read(expected).unwrap(), b"layout");
    let id = store.create_upload().await.unwrap();
    store.append(&id, None, body(&[b"partial"])).await.unwrap();
    assert_eq!(store.list_blobs().try_collect::<Vec<_>>().await.unwrap().len(), 1);
}

/// The local backend reserves disk space ahead of an upload's writes; an append that ends early (the client went
/// away) gives back what it reserved past the last byte, so a client cannot leave space held that it never sent.
#[tokio::test]
async fn local_uploads_give_back_the_space_they_reserved() {
    use std::os::unix::fs::MetadataExt;
    let directory = tempfile::tempdir().unwrap();
    let store = BlobStore::open(directory.path().to_str().unwrap()).await.unwrap();
    let data = pattern(3 * 1024 * 1024, 9);
    let id = store.create_upload().await.unwrap();
    let broken = stream::iter(vec![
        Ok(Bytes::copy_from_slice(&data[..100_000])),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ]);
    assert!(store.append(&id, Some(0), broken).await.is_err());
    let file = directory.path().join("uploads").join(id.as_str());
    let allocated = |path: &std::path::Path| std::fs::metadata(path).unwrap().blocks() * 512;
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 100_000);
    assert!(allocated(&file) < 1024 * 1024, "{} bytes still allocated", allocated(&file));

    store.append(&id, Some(100_000), body(&[&data[100_000..]])).await.unwrap();
    assert!(allocated(&file) < 4 * 1024 * 1024, "{} bytes allocated", allocated(&file));
    let digest = Digest::sha256_of(&data);
    store.commit(&id, &digest).await.unwrap();
    assert_eq!(read_all(&store, &digest, None).await, data);
}

/// An append cut short by a crash cannot give back the space it reserved; committing the upload does, whether the
/// last bytes come as a small final chunk or were all appended before.
#[tokio::test]
async fn a_committed_upload_keeps_no_space_reserved_by_a_crashed_append() {
    use std::os::unix::fs::MetadataExt;
    let directory = tempfile::tempdir().unwrap();
    let store = BlobStore::open(directory.path().to_str().unwrap()).await.unwrap();
    let allocated = |path: &std::path::Path| std::fs::metadata(path).unwrap().blocks() * 512;
    for final_chunk in [true, false] {
        let data = pattern(300_000, if final_chunk { 3 } else { 4 });
        let split = if final_chunk { 200_000 } else { data.len() };
        let id = store.create_upload().await.unwrap();
        store.append(&id, Some(0), body(&[&data[..split]])).await.unwrap();
        // What a crash in the middle of an append leaves: space reserved past the last byte written.
        let upload = directory.path().join("uploads").join(id.as_str());
        let file = std::fs::OpenOptions::new().write(true).open(&upload).unwrap();
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, split as u64, 8 << 20)
            .unwrap();
        drop(file);
        assert!(allocated(&upload) >= 8 << 20, "the simulated reservation did not take");

        let digest = Digest::sha256_of(&data);
        if final_chunk {
            let last = Bytes::copy_from_slice(&data[split..]);
            store.append_and_commit(&id, Some(split as u64), last, &digest).await.unwrap();
        } else {
            store.commit(&id, &digest).await.unwrap();
        }
        let blob =
            directory.path().join(format!("blobs/sha256/{}/{}", &digest.hex()[..2], digest.hex()));
        assert!(allocated(&blob) < 1 << 20, "{} bytes allocated to the blob", allocated(&blob));
        assert_eq!(read_all(&store, &digest, None).await, data);
    }
}
