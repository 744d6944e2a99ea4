//! Storage-layer benchmark: 512 MiB uploads (1 MiB pieces; 64 × 8 MiB appends), 512 MiB reads, peak RSS.
//!
//! Run: `cargo run --release -p berth-storage --example blob_bench -- [DATA_DIR] [REPS]`
//! (default data dir `/work/perf-scratch/oci/bench`, 3 repetitions, medians printed). Keep the data dir outside
//! the repository. Also measures the single-core sha256 ceiling and, for comparison, object_store's own
//! `LocalFileSystem` on the same directory (the read path berth does not use).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_oci::{Algorithm, Digest, DigestHasher};
use berth_storage::{BlobStore, StoreOptions};
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use object_store::ObjectStore;

const MIB: usize = 1024 * 1024;
const BLOB_SIZE: usize = 512 * MIB;
const POOL_SIZE: usize = 8 * MIB + 4096;

/// Random-looking source data: each piece is copied out of a pool (as a socket read copies out of the kernel),
/// at a shifting offset so consecutive pieces differ. Memory stays at the pool size.
struct Source {
    pool: Vec<u8>,
}

impl Source {
    fn new() -> Source {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut pool = vec![0u8; POOL_SIZE];
        for word in pool.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        Source { pool }
    }

    fn piece(&self, index: usize, size: usize) -> Bytes {
        let start = (index * 4099) % (self.pool.len() - size);
        Bytes::copy_from_slice(&self.pool[start..start + size])
    }

    /// Pieces `first..first+count` of `size` bytes.
    fn stream(
        self: &Arc<Self>,
        first: usize,
        count: usize,
        size: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let source = self.clone();
        stream::iter(first..first + count).map(move |index| Ok(source.piece(index, size)))
    }

    fn digest(&self, count: usize, size: usize) -> Digest {
        let mut hasher = DigestHasher::new(Algorithm::Sha256);
        for index in 0..count {
            hasher.update(&self.piece(index, size));
        }
        hasher.finalize()
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak-RSS counter (VmHWM) so each phase reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") as f64 / 1024.0
}

/// `BENCH_PHASES=1,2` runs only those phase numbers (0-7, in the order printed); default all.
fn enabled(phase: usize) -> bool {
    match std::env::var("BENCH_PHASES") {
        Ok(list) => list.split(',').any(|item| item.trim().parse() == Ok(phase)),
        Err(_) => true,
    }
}

fn gib_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / elapsed.as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

struct Phase {
    name: &'static str,
    speeds: Vec<f64>,
    peak_rss: Vec<f64>,
}

impl Phase {
    fn new(name: &'static str) -> Phase {
        Phase { name, speeds: Vec::new(), peak_rss: Vec::new() }
    }

    fn record(&mut self, bytes: usize, elapsed: Duration) {
        let speed = gib_per_s(bytes, elapsed);
        let rss = peak_rss_mib();
        println!("  {:<44} {:>6.2} GiB/s   peak RSS {:>6.1} MiB", self.name, speed, rss);
        self.speeds.push(speed);
        self.peak_rss.push(rss);
    }
}

async fn upload(
    store: &BlobStore,
    source: &Arc<Source>,
    digest: &Digest,
    appends: usize,
    piece: usize,
) -> Result<()> {
    let per_append = BLOB_SIZE / appends / piece;
    let id = store.create_upload().await?;
    let mut offset = 0u64;
    for append in 0..appends {
        offset = store
            .append(&id, Some(offset), source.stream(append * per_append, per_append, piece))
            .await?;
    }
    anyhow::ensure!(offset == BLOB_SIZE as u64, "uploaded {offset} bytes");
    store.commit(&id, digest).await?;
    Ok(())
}

async fn drain(
    stream: impl Stream<Item = Result<Bytes, impl std::error::Error + Send + Sync + 'static>>,
) -> Result<usize> {
    futures::pin_mut!(stream);
    let mut total = 0;
    while let Some(chunk) = stream.try_next().await? {
        total += chunk.len();
    }
    Ok(total)
}

async fn run(data_dir: &str, reps: usize) -> Result<()> {
    let source = Arc::new(Source::new());
    println!("preparing digests of the test data (not timed)");
    let digest_1m = source.digest(BLOB_SIZE / MIB, MIB);
    let digest_64k = source.digest(BLOB_SIZE / (64 * 1024), 64 * 1024);

    let mut phases = [
        Phase::new("sha256 ceiling (DigestHasher, 1 MiB pieces)"),
        Phase::new("(a) upload 1 x 512 MiB, 1 MiB pieces + commit"),
        Phase::new("(b) upload 64 x 8 MiB appends + commit"),
        Phase::new("(a') upload 1 x 512 MiB, 64 KiB pieces"),
        Phase::new("(c) read 512 MiB (berth local reader)"),
        Phase::new("(c') read 512 MiB, 256 KiB chunks"),
        Phase::new("upload via object_store LocalFileSystem"),
        Phase::new("read via object_store LocalFileSystem"),
    ];
    for rep in 0..reps {
        println!(
            "repetition {} (RSS now {:.1} MiB)",
            rep + 1,
            status_kib("VmRSS:") as f64 / 1024.0
        );
        let root = std::path::Path::new(data_dir);
        if root.exists() {
            std::fs::remove_dir_all(root).with_context(|| format!("clearing {data_dir}"))?;
        }
        let store = BlobStore::open(data_dir).await?;

        if enabled(0) {
            reset_peak_rss();
            let started = Instant::now();
            let mut hasher = DigestHasher::new(Algorithm::Sha256);
            for index in 0..BLOB_SIZE / MIB {
                hasher.update(&source.piece(index, MIB));
            }
            anyhow::ensure!(hasher.finalize() == digest_1m);
            phases[0].record(BLOB_SIZE, started.elapsed());
        }
        if enabled(1) {
            reset_peak_rss();
            let started = Instant::now();
            upload(&store, &source, &digest_1m, 1, MIB).await?;
            phases[1].record(BLOB_SIZE, started.elapsed());
            store.delete(&digest_1m).await?;
        }
        if enabled(2) {
            reset_peak_rss();
            let started = Instant::now();
            upload(&store, &source, &digest_1m, 64, MIB).await?;
            phases[2].record(BLOB_SIZE, started.elapsed());
            store.delete(&digest_1m).await?;
        }
        if enabled(3) {
            reset_peak_rss();
            let started = Instant::now();
            upload(&store, &source, &digest_64k, 1, 64 * 1024).await?;
            phases[3].record(BLOB_SIZE, started.elapsed());
            store.delete(&digest_64k).await?;
        }
        if enabled(4) || enabled(5) {
            // Written untimed here so that the read phases can run on their own.
            upload(&store, &source, &digest_1m, 1, MIB).await?;
        }
        if enabled(4) {
            reset_peak_rss();
            let started = Instant::now();
            let read = drain(store.get(&digest_1m, None).await?).await?;
            phases[4].record(read, started.elapsed());
        }
        if enabled(5) {
            let options = StoreOptions::default().with_read_chunk_size(256 * 1024);
            let small_chunks = BlobStore::open_with(data_dir, options).await?;
            reset_peak_rss();
            let started = Instant::now();
            let read = drain(small_chunks.get(&digest_1m, None).await?).await?;
            phases[5].record(read, started.elapsed());
        }
        if enabled(6) || enabled(7) {
            // The generic object_store path on the same disk, for comparison.
            let object_dir = root.join("object");
            std::fs::create_dir_all(&object_dir)?;
            let local_fs: Arc<dyn ObjectStore> =
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&object_dir)?);
            let generic = BlobStore::with_object_store(local_fs, StoreOptions::default());
            reset_peak_rss();
            let started = Instant::now();
            upload(&generic, &source, &digest_1m, 1, MIB).await?;
            if enabled(6) {
                phases[6].record(BLOB_SIZE, started.elapsed());
            }
            if enabled(7) {
                reset_peak_rss();
                let started = Instant::now();
                let read = drain(generic.get(&digest_1m, None).await?).await?;
                phases[7].record(read, started.elapsed());
            }
        }
    }
    println!("\nmedians of {reps}:");
    for phase in phases.iter_mut().filter(|phase| !phase.speeds.is_empty()) {
        let speed = median(&mut phase.speeds);
        let rss = median(&mut phase.peak_rss);
        println!("  {:<44} {:>6.2} GiB/s   peak RSS {:>6.1} MiB", phase.name, speed, rss);
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "/work/perf-scratch/oci/bench".to_owned());
    let reps = args
        .next()
        .map(|text| text.parse())
        .transpose()
        .context("REPS must be a number")?
        .unwrap_or(3);
    // Two workers, as on the 2-vCPU reference machine.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(&data_dir, reps))
}
