//! Garbage collection in the metadata store, on SQLite and PostgreSQL: the `blobs` backfill of migration 0003, the
//! writes that make a digest reachable, and the lock that keeps a collector and a writer of the same digest apart
//! (each test holds one side inside its transaction and watches the other wait).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_db::testing::{backends, scratch_database};
use berth_db::*;
use tokio::sync::oneshot;

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let url = scratch_database(backend, dir.path()).await.unwrap_or_else(|e| {
            panic!("cannot create a {backend:?} test database ({e}); start PostgreSQL or set BERTH_TEST_POSTGRES_URL")
        });
        let db = Db::connect(&url).await.unwrap();
        test(db.clone()).await;
        db.close().await;
    }
}

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";

fn link<'a>(repository: &'a str, digest: &'a str, now: &'a str) -> BlobLink<'a> {
    BlobLink { registry: "acr", repository, digest, size: 10, now }
}

fn at(repository: &str, digest: &str) -> RepositoryDigest {
    RepositoryDigest {
        registry: "acr".into(),
        repository: repository.into(),
        digest: digest.into(),
    }
}

fn manifest(digest: &str, subject: Option<&str>) -> ManifestRecord {
    ManifestRecord {
        registry: "acr".into(),
        repository: "app".into(),
        digest: digest.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 100,
        artifact_type: None,
        subject: subject.map(str::to_string),
        annotations: None,
        created_at: T1.into(),
    }
}

/// An upload session in `acr/app`.
fn upload(id: &str) -> UploadRecord {
    UploadRecord {
        id: id.into(),
        registry: "acr".into(),
        repository: "app".into(),
        created_at: T0.into(),
    }
}

fn ok() -> std::future::Ready<Result<(), ()>> {
    std::future::ready(Ok(()))
}

async fn blob_row(db: &Db, digest: &str) -> Option<GcBlob> {
    db.gc_blobs().await.unwrap().into_iter().find(|b| b.digest == digest)
}

/// A future that tells `held` it is running, then waits for `release`: one side of a race, stopped inside its
/// transaction.
async fn hold(
    held: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
) -> Result<&'static str, ()> {
    let _ = held.send(());
    let _ = release.await;
    Ok("done")
}

#[tokio::test]
async fn migration_0003_backfills_blobs_from_links_and_manifests() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let url = scratch_database(backend, dir.path()).await.unwrap();
        let url = match backend {
            Backend::Sqlite => format!("{url}?mode=rwc"),
            Backend::Postgres => url,
        };
        // The schema as it was before garbage collection: migrations 0001 and 0002 only.
        let old = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for name in ["0001_initial.sql", "0002_registry.sql"] {
            std::fs::copy(source.join(name), old.path().join(name)).unwrap();
        }
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO repository_blobs (registry, repository, digest, size, created_at) VALUES \
             ('acr', 'a', 'sha256:layer', 7, '2026-01-01T00:00:00Z'), \
             ('acr', 'b', 'sha256:layer', 7, '2026-01-02T00:00:00Z'), \
             ('acr', 'a', 'sha256:config', 3, '2026-01-01T00:00:00Z')",
            "INSERT INTO manifests (registry, repository, digest, media_type, size, created_at) VALUES \
             ('acr', 'a', 'sha256:manifest', 'application/vnd.oci.image.manifest.v1+json', 500, \
             '2026-01-03T00:00:00Z')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let db = Db::connect(&url).await.unwrap();
        let mut blobs = db.gc_blobs().await.unwrap();
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        let expected = [
            ("sha256:config", 3, "2026-01-01T00:00:00Z", 1, 0),
            ("sha256:layer", 7, "2026-01-02T00:00:00Z", 2, 0),
            ("sha256:manifest", 500, "2026-01-03T00:00:00Z", 0, 1),
        ];
        let got: Vec<_> = blobs
            .iter()
            .map(|b| (b.digest.as_str(), b.size, b.last_linked_at.as_str(), b.links, b.manifests))
            .collect();
        assert_eq!(got, expected, "{backend:?}");
        let links = db.gc_links(Some("acr")).await.unwrap();
        assert_eq!(links.len(), 3);
        assert!(links.iter().all(|l| l.linked_at.starts_with("2026-01-0")), "{links:?}");
        db.close().await;
    }
}

#[tokio::test]
async fn every_link_and_manifest_put_records_the_blob() {
    each_backend(|db| async move {
        db.link_blob("acr", "app", "sha256:l1", 10, T0).await.unwrap();
        let row = blob_row(&db, "sha256:l1").await.unwrap();
        assert_eq!((row.size, row.last_linked_at.as_str(), row.links), (10, T0, 1));

        // Linking again (a second upload of the same blob) refreshes the link's and the blob's time.
        db.link_blob("acr", "app", "sha256:l1", 10, T1).await.unwrap();
        assert_eq!(blob_row(&db, "sha256:l1").await.unwrap().last_linked_at, T1);
        let links = db.gc_links(None).await.unwrap();
        assert_eq!((links.len(), links[0].linked_at.as_str()), (1, T1));

        // A mount needs the source's link; it links and refreshes.
        assert_eq!(db.mount_blob("acr", "nowhere", "copy", "sha256:l1", T2).await.unwrap(), None);
        assert_eq!(db.mount_blob("acr", "app", "copy", "sha256:nope", T2).await.unwrap(), None);
        assert_eq!(db.mount_blob("acr", "app", "copy", "sha256:l1", T2).await.unwrap(), Some(10));
        assert_eq!(db.linked_blob("acr", "copy", "sha256:l1").await.unwrap(), Some(10));
        assert_eq!(blob_row(&db, "sha256:l1").await.unwrap().links, 2);

        // A manifest put checks its references inside its transaction and records its own bytes.
        let refs = vec![
            ("sha256:l1".to_string(), ReferenceKind::Blob),
            ("sha256:missing".to_string(), ReferenceKind::Blob),
        ];
        let outcome = db.store_manifest(&manifest("sha256:m1", None), &refs, Some("v1"), ok()).await;
        assert!(
            matches!(outcome.unwrap(), ManifestStore::Missing { ref digest, kind: ReferenceKind::Blob } if digest == "sha256:missing")
        );
        let child = vec![("sha256:child".to_string(), ReferenceKind::Manifest)];
        let outcome = db.store_manifest(&manifest("sha256:m1", None), &child, None, ok()).await;
        assert!(matches!(outcome.unwrap(), ManifestStore::Missing { kind: ReferenceKind::Manifest, .. }));
        let failed = std::future::ready(Err::<(), _>("disk full"));
        let outcome = db.store_manifest(&manifest("sha256:m1", None), &refs[..1], None, failed).await;
        assert!(matches!(outcome.unwrap(), ManifestStore::NotPublished("disk full")));
        assert_eq!(db.get_manifest("acr", "app", "sha256:m1").await.unwrap(), None);
        assert!(blob_row(&db, "sha256:m1").await.is_none(), "nothing is recorded when the put fails");

        let outcome = db.store_manifest(&manifest("sha256:m1", None), &refs[..1], Some("v1"), ok()).await;
        assert!(matches!(outcome.unwrap(), ManifestStore::Stored));
        let row = blob_row(&db, "sha256:m1").await.unwrap();
        assert_eq!((row.size, row.links, row.manifests), (100, 0, 1));
        assert_eq!(db.resolve_tag("acr", "app", "v1").await.unwrap().as_deref(), Some("sha256:m1"));

        // An upload's end links and drops the session in the transaction that holds the blob's row.
        db.create_upload(&upload("u1")).await.unwrap();
        let result = db.link_blob_publishing(&link("app", "sha256:l2", T2), Some("u1"), ok()).await;
        assert_eq!(result.unwrap(), Ok(()));
        assert_eq!(db.get_upload("u1").await.unwrap(), None);
        assert!(blob_row(&db, "sha256:l2").await.is_some());
        // A failed publish writes nothing.
        db.create_upload(&upload("u2")).await.unwrap();
        let failed = std::future::ready(Err::<(), _>("gone"));
        let result = db.link_blob_publishing(&link("app", "sha256:l3", T2), Some("u2"), failed).await;
        assert_eq!(result.unwrap(), Err("gone"));
        assert!(db.get_upload("u2").await.unwrap().is_some());
        assert!(blob_row(&db, "sha256:l3").await.is_none());
        assert_eq!(db.linked_blob("acr", "app", "sha256:l3").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn collector_deletions_check_again_before_deleting() {
    each_backend(|db| async move {
        // Untagged manifests: tagged ones, children of an index and referrers of a present subject stay.
        db.link_blob("acr", "app", "sha256:layer", 10, T0).await.unwrap();
        let layer = vec![("sha256:layer".to_string(), ReferenceKind::Blob)];
        db.put_manifest(&manifest("sha256:tagged", None), &layer, Some("v1")).await.unwrap();
        db.put_manifest(&manifest("sha256:child", None), &layer, None).await.unwrap();
        let children = vec![("sha256:child".to_string(), ReferenceKind::Manifest)];
        db.put_manifest(&manifest("sha256:index", None), &children, None).await.unwrap();
        let subject = vec![("sha256:index".to_string(), ReferenceKind::Subject)];
        db.put_manifest(&manifest("sha256:sig", Some("sha256:index")), &subject, None)
            .await
            .unwrap();
        for kept in ["sha256:tagged", "sha256:child", "sha256:sig"] {
            assert!(!db.gc_delete_untagged_manifest(&at("app", kept)).await.unwrap(), "{kept}");
        }
        assert!(db.gc_delete_untagged_manifest(&at("app", "sha256:index")).await.unwrap());
        assert!(db.gc_delete_untagged_manifest(&at("app", "sha256:child")).await.unwrap());
        assert!(db.gc_delete_untagged_manifest(&at("app", "sha256:sig")).await.unwrap());
        assert!(!db.gc_delete_untagged_manifest(&at("app", "sha256:sig")).await.unwrap());
        let references = db.gc_references(Some("acr")).await.unwrap();
        assert!(references.iter().all(|r| r.manifest == "sha256:tagged"), "{references:?}");

        // Links: one a manifest references stays; one made again since it was read stays.
        assert!(!db.gc_delete_link(&at("app", "sha256:layer"), T0).await.unwrap());
        db.link_blob("acr", "app", "sha256:fresh", 10, T0).await.unwrap();
        db.link_blob("acr", "app", "sha256:fresh", 10, T1).await.unwrap();
        assert!(!db.gc_delete_link(&at("app", "sha256:fresh"), T0).await.unwrap());
        assert!(db.gc_delete_link(&at("app", "sha256:fresh"), T1).await.unwrap());
        assert_eq!(db.linked_blob("acr", "app", "sha256:fresh").await.unwrap(), None);

        // Blobs: one still linked stays, one linked again since it was read stays, the rest goes with its file.
        let removed = || std::future::ready(Ok::<_, ()>("removed"));
        assert_eq!(db.gc_delete_blob("sha256:layer", T0, removed()).await.unwrap(), Ok(None));
        let fresh = blob_row(&db, "sha256:fresh").await.unwrap();
        assert_eq!((fresh.links, fresh.last_linked_at.as_str()), (0, T1));
        assert_eq!(db.gc_delete_blob("sha256:fresh", T0, removed()).await.unwrap(), Ok(None));
        let failed = std::future::ready(Err::<(), _>("io error"));
        assert_eq!(db.gc_delete_blob("sha256:fresh", T1, failed).await.unwrap(), Err("io error"));
        assert!(
            blob_row(&db, "sha256:fresh").await.is_some(),
            "a failed file deletion keeps the row"
        );
        assert_eq!(
            db.gc_delete_blob("sha256:fresh", T1, removed()).await.unwrap(),
            Ok(Some("removed"))
        );
        assert!(blob_row(&db, "sha256:fresh").await.is_none());
        // A deleted manifest's own bytes go the same way.
        assert!(db.delete_manifest("acr", "app", "sha256:tagged").await.unwrap());
        let row = blob_row(&db, "sha256:tagged").await.unwrap();
        assert_eq!(row.manifests, 0);
        let outcome = db.gc_delete_blob("sha256:tagged", &row.last_linked_at, removed()).await;
        assert_eq!(outcome.unwrap(), Ok(Some("removed")));

        // Files without a row: a digest with a row is not an orphan; one without is claimed and released.
        assert_eq!(db.gc_delete_orphan("sha256:layer", 10, T2, removed()).await.unwrap(), Ok(None));
        let outcome = db.gc_delete_orphan("sha256:crash", 10, T2, removed()).await;
        assert_eq!(outcome.unwrap(), Ok(Some("removed")));
        assert!(blob_row(&db, "sha256:crash").await.is_none());
    })
    .await;
}

/// The collector is deleting D's file (inside its transaction) when a push of D arrives: the push waits, then
/// records D again and writes the bytes after the deletion.
#[tokio::test]
async fn a_push_waits_for_the_collector_and_writes_the_bytes_again() {
    each_backend(|db| async move {
        db.link_blob("acr", "app", "sha256:d", 10, T0).await.unwrap();
        assert!(db.unlink_blob("acr", "app", "sha256:d").await.unwrap());

        let (held_tx, held_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let collector = tokio::spawn({
            let db = db.clone();
            async move { db.gc_delete_blob("sha256:d", T0, hold(held_tx, release_rx)).await }
        });
        held_rx.await.unwrap();

        let published = Arc::new(AtomicBool::new(false));
        let push = tokio::spawn({
            let db = db.clone();
            let published = published.clone();
            async move {
                let publish = async move {
                    published.store(true, Ordering::SeqCst);
                    Ok::<_, ()>(())
                };
                db.link_blob_publishing(&link("app", "sha256:d", T1), None, publish).await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !published.load(Ordering::SeqCst),
            "the push must not write while the collector deletes"
        );
        assert!(!push.is_finished());
        release_tx.send(()).unwrap();
        assert_eq!(collector.await.unwrap().unwrap(), Ok(Some("done")));
        assert_eq!(push.await.unwrap().unwrap(), Ok(()));
        assert!(published.load(Ordering::SeqCst));
        let row = blob_row(&db, "sha256:d").await.unwrap();
        assert_eq!((row.links, row.last_linked_at.as_str()), (1, T1));
    })
    .await;
}

/// A push of D holds D's row while it writes the bytes: a collector that read D as garbage before waits, then
/// keeps it; the same for a file the collector took for an orphan.
#[tokio::test]
async fn the_collector_waits_for_a_push_and_keeps_its_blob() {
    each_backend(|db| async move {
        db.link_blob("acr", "app", "sha256:d", 10, T0).await.unwrap();
        assert!(db.unlink_blob("acr", "app", "sha256:d").await.unwrap());

        for (digest, orphan) in [("sha256:d", false), ("sha256:new", true)] {
            let (held_tx, held_rx) = oneshot::channel();
            let (release_tx, release_rx) = oneshot::channel();
            let push = tokio::spawn({
                let db = db.clone();
                async move {
                    db.link_blob_publishing(
                        &link("app", digest, T1),
                        None,
                        hold(held_tx, release_rx),
                    )
                    .await
                }
            });
            held_rx.await.unwrap();
            let removed = Arc::new(AtomicBool::new(false));
            let collector = tokio::spawn({
                let db = db.clone();
                let removed = removed.clone();
                async move {
                    let remove = async move {
                        removed.store(true, Ordering::SeqCst);
                        Ok::<_, ()>(())
                    };
                    if orphan {
                        db.gc_delete_orphan(digest, 10, T2, remove).await
                    } else {
                        db.gc_delete_blob(digest, T0, remove).await
                    }
                }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!collector.is_finished(), "{digest}: the collector must wait for the push");
            release_tx.send(()).unwrap();
            assert_eq!(push.await.unwrap().unwrap(), Ok("done"));
            assert_eq!(collector.await.unwrap().unwrap(), Ok(None), "{digest}");
            assert!(!removed.load(Ordering::SeqCst), "{digest}: the pushed bytes were deleted");
            assert_eq!(blob_row(&db, digest).await.unwrap().links, 1);
        }
    })
    .await;
}

/// A manifest put that references D waits for a collector removing D's last link, then finds it missing (and
/// fails) instead of referencing bytes that are gone; the other way round the collector keeps the link.
#[tokio::test]
async fn a_manifest_put_and_link_collection_never_interleave() {
    each_backend(|db| async move {
        db.link_blob("acr", "app", "sha256:layer", 10, T0).await.unwrap();
        let refs = vec![("sha256:layer".to_string(), ReferenceKind::Blob)];

        let (held_tx, held_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let put = tokio::spawn({
            let db = db.clone();
            let refs = refs.clone();
            async move {
                db.store_manifest(
                    &manifest("sha256:m", None),
                    &refs,
                    Some("v1"),
                    hold(held_tx, release_rx),
                )
                .await
            }
        });
        held_rx.await.unwrap();
        let collector = tokio::spawn({
            let db = db.clone();
            async move { db.gc_delete_link(&at("app", "sha256:layer"), T0).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!collector.is_finished());
        release_tx.send(()).unwrap();
        assert!(matches!(put.await.unwrap().unwrap(), ManifestStore::Stored));
        assert!(!collector.await.unwrap().unwrap(), "a referenced link must stay");

        // The other way round: the link's deletion is under way when the put arrives.
        assert!(db.delete_manifest("acr", "app", "sha256:m").await.unwrap());
        let collector = db.gc_delete_link(&at("app", "sha256:layer"), T0).await.unwrap();
        assert!(collector);
        let outcome =
            db.store_manifest(&manifest("sha256:m", None), &refs, None, ok()).await.unwrap();
        assert!(matches!(outcome, ManifestStore::Missing { .. }));
    })
    .await;
}

/// A push whose request goes away while its transaction is open (here: while its bytes are being written) leaves
/// no record behind and does not keep the database locked: other writers, through the pool or as pushes, go on at
/// once instead of waiting out the busy timeout.
#[tokio::test]
async fn a_push_dropped_inside_its_transaction_is_rolled_back_at_once() {
    each_backend(|db| async move {
        db.create_upload(&upload("u1")).await.unwrap();
        let never = std::future::pending::<Result<(), ()>>();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(200),
            db.link_blob_publishing(&link("app", "sha256:a", T1), Some("u1"), never),
        )
        .await;
        assert!(abandoned.is_err(), "the publish never finishes, so the push is dropped");

        let started = std::time::Instant::now();
        assert!(
            db.delete_upload("u1").await.unwrap(),
            "the abandoned push must not have ended the session"
        );
        db.link_blob_publishing(&link("app", "sha256:b", T2), None, ok()).await.unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writers waited {:?} for the abandoned transaction",
            started.elapsed()
        );
        assert!(blob_row(&db, "sha256:a").await.is_none());
        assert_eq!(blob_row(&db, "sha256:b").await.unwrap().links, 1);
    })
    .await;
}
