//! A real kill -9 in the middle of an upload: the test re-runs its own binary as a child process that streams an
//! endless upload into a local store, SIGKILLs it, and checks that the upload resumes and no blob appeared.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_oci::{Digest, DigestHasher};
use berth_storage::{BlobStore, UploadId};
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};

const CHILD_ENV: &str = "BERTH_STORAGE_CRASH_CHILD_DIR";
const TEST_NAME: &str = "crash::kill_9_mid_upload_leaves_no_blob";
const CHUNK: usize = 1024 * 1024;

/// Chunk `index` of the child's endless upload; deterministic so the parent can recompute any prefix.
fn chunk(index: usize) -> Vec<u8> {
    (0..CHUNK).map(|position| ((position * 7 + index * 13) % 251) as u8).collect()
}

/// The first `length` bytes of the endless upload.
fn prefix(length: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(length as usize);
    let mut index = 0;
    while (data.len() as u64) < length {
        let missing = length as usize - data.len();
        data.extend_from_slice(&chunk(index)[..missing.min(CHUNK)]);
        index += 1;
    }
    data
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_child(directory: &Path) {
    let store = BlobStore::open(directory.join("store").to_str().unwrap()).await.unwrap();
    let id = store.create_upload().await.unwrap();
    std::fs::write(directory.join("upload-id"), id.as_str()).unwrap();
    let endless = stream::iter(0..).then(|index| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, std::io::Error>(Bytes::from(chunk(index)))
    });
    store.append(&id, Some(0), endless).await.unwrap();
    unreachable!("the endless upload only ends by SIGKILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_upload_leaves_no_blob() {
    if let Some(directory) = std::env::var_os(CHILD_ENV) {
        return run_child(Path::new(&directory)).await;
    }
    let directory = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, directory.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);

    // Wait until the child has streamed a few MiB, then kill it mid-append.
    let store_path = directory.path().join("store");
    let id_path = directory.path().join("upload-id");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "child made no progress");
        assert!(child.0.try_wait().unwrap().is_none(), "child exited early");
        if let Ok(id) = std::fs::read_to_string(&id_path) {
            let upload = store_path.join("uploads").join(id.trim());
            if std::fs::metadata(upload).map(|metadata| metadata.len()).unwrap_or(0)
                >= 6 * CHUNK as u64
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().unwrap(); // SIGKILL on unix
    child.0.wait().unwrap();

    let store = BlobStore::open(store_path.to_str().unwrap()).await.unwrap();
    assert!(
        store.list_blobs().try_collect::<Vec<_>>().await.unwrap().is_empty(),
        "no blob may be visible"
    );
    let id = UploadId::parse(std::fs::read_to_string(&id_path).unwrap().trim()).unwrap();
    let offset = store.upload_status(&id).await.unwrap().offset;
    assert!(offset >= 6 * CHUNK as u64);

    // The stored bytes must be exactly the prefix the child sent: resume with a tail and verify the digest.
    let stored = prefix(offset);
    let tail = b"tail after restart".to_vec();
    let mut hasher = DigestHasher::new(berth_oci::Algorithm::Sha256);
    hasher.update(&stored);
    hasher.update(&tail);
    let digest: Digest = hasher.finalize();
    store
        .append(&id, Some(offset), stream::iter([Ok::<_, std::io::Error>(Bytes::from(tail))]))
        .await
        .unwrap();
    assert_eq!(store.commit(&id, &digest).await.unwrap(), offset + 18);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(offset + 18));
}
