//! Garbage collection: the `garbageCollect` action (dry run, untagged manifests, ARM's checks), the grace period,
//! orphan files and stale uploads, the background collector, and pushes that race with collectors on two nodes
//! without ever losing a blob.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_oci::Digest;
use berth_server::gc::{self, GcOptions, GcReport};
use berth_server::state::AppState;
use berth_test_support::{backends, Configure, TestServer};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REGISTRY: &str = "acrgc";

/// Run a test on each backend, on a server with this grace period and background interval (zero: off).
async fn each_backend_with<F, Fut>(grace: Duration, interval: Duration, test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let configure: Configure = Arc::new(move |config| {
            config.gc_grace_period = grace;
            config.gc_interval = interval;
        });
        let server = TestServer::start_configured(backend, Some(configure))
            .await
            .unwrap_or_else(|e| panic!("starting a server on {backend:?}: {e:#}"));
        test(server).await;
    }
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("<no OCI error code>").to_string()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// One registry request; never a 5xx.
async fn send(
    ts: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let url = if path.starts_with("http") { path.to_string() } else { ts.url(path) };
    let mut request = ts.http.request(method.clone(), &url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    assert!(status < 500, "{method} {url} answered {status}: {}", String::from_utf8_lossy(&body));
    Resp { status, headers, body }
}

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// Deterministic pseudo-random bytes.
fn blob(seed: u32, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// An image: its config, layers and manifest bytes.
#[derive(Clone)]
struct Image {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(config: Vec<u8>, layers: Vec<Vec<u8>>, extra: Value) -> Image {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>(),
        });
        if let (Some(object), Value::Object(extra)) = (manifest.as_object_mut(), extra) {
            object.extend(extra);
        }
        Image { config, layers, manifest: serde_json::to_vec(&manifest).unwrap() }
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    fn blobs(&self) -> impl Iterator<Item = &Vec<u8>> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// Group `g` and registry [`REGISTRY`]; returns the owner's control-plane token.
async fn setup(ts: &TestServer) -> String {
    let owner = ts.owner_token().await.unwrap();
    let (status, _) = call(
        ts,
        Method::PUT,
        &group_path(ts, "g"),
        Some(&owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert!(status == 201 || status == 200);
    let body = json!({"location": "westeurope", "sku": {"name": "Standard"}});
    let (status, body) =
        call(ts, Method::PUT, &registry_path(ts, "g", REGISTRY), Some(&owner), Some(body)).await;
    assert_eq!(status, 201, "{body}");
    owner
}

/// A registry access token of the bootstrap owner for pull, push and delete on `repositories`.
async fn registry_token(ts: &TestServer, repositories: &[&str]) -> String {
    let mut url = format!("/oauth2/token?service={}/{REGISTRY}", ts.local_addr);
    for repository in repositories {
        url.push_str(&format!("&scope=repository:{REGISTRY}/{repository}:pull,push,delete"));
    }
    let response = ts
        .http
        .get(ts.url(&url))
        .basic_auth(&ts.client_id, Some(&ts.client_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn push_blob(ts: &TestServer, repository: &str, token: &str, bytes: &[u8]) -> Resp {
    send(
        ts,
        Method::POST,
        &format!("/v2/{REGISTRY}/{repository}/blobs/uploads/?digest={}", sha256(bytes)),
        token,
        &[("content-type", "application/octet-stream")],
        Some(bytes.to_vec()),
    )
    .await
}

async fn put_manifest(
    ts: &TestServer,
    repository: &str,
    reference: &str,
    token: &str,
    media_type: &str,
    bytes: &[u8],
) -> Resp {
    send(
        ts,
        Method::PUT,
        &format!("/v2/{REGISTRY}/{repository}/manifests/{reference}"),
        token,
        &[("content-type", media_type)],
        Some(bytes.to_vec()),
    )
    .await
}

async fn push_image(
    ts: &TestServer,
    repository: &str,
    reference: &str,
    token: &str,
    image: &Image,
) {
    for bytes in image.blobs() {
        let r = push_blob(ts, repository, token, bytes).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = put_manifest(ts, repository, reference, token, OCI_MANIFEST, &image.manifest).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

async fn delete_manifest(ts: &TestServer, repository: &str, digest: &str, token: &str) {
    let path = format!("/v2/{REGISTRY}/{repository}/manifests/{digest}");
    assert_eq!(send(ts, Method::DELETE, &path, token, &[], None).await.status, 202);
}

/// The image is pullable by `reference`, byte for byte, every blob matching its digest.
async fn assert_pullable(
    ts: &TestServer,
    repository: &str,
    reference: &str,
    token: &str,
    image: &Image,
) {
    let path = format!("/v2/{REGISTRY}/{repository}/manifests/{reference}");
    let r = send(ts, Method::GET, &path, token, &[("accept", OCI_MANIFEST)], None).await;
    assert_eq!(r.status, 200, "{repository}:{reference}: {}", r.code());
    assert_eq!(r.body, image.manifest, "{repository}:{reference}");
    for bytes in image.blobs() {
        let path = format!("/v2/{REGISTRY}/{repository}/blobs/{}", sha256(bytes));
        let r = send(ts, Method::GET, &path, token, &[], None).await;
        assert_eq!(r.status, 200, "{repository}:{reference} blob {}: {}", sha256(bytes), r.code());
        assert_eq!(sha256(&r.body), sha256(bytes), "{repository}:{reference}: bytes do not match");
    }
}

/// Where the blob store keeps a digest's bytes.
fn blob_file(ts: &TestServer, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    ts.data_dir.path().join("blobs").join("blobs").join("sha256").join(&hex[..2]).join(hex)
}

fn gc_path(ts: &TestServer, registry: &str) -> String {
    format!("{}/garbageCollect", registry_path(ts, "g", registry))
}

async fn gc_action(ts: &TestServer, owner: &str, body: Option<Value>) -> Value {
    let (status, report) = call(ts, Method::POST, &gc_path(ts, REGISTRY), Some(owner), body).await;
    assert_eq!(status, 200, "{report}");
    report
}

fn counts(manifests: u64, links: u64, blobs: u64, bytes: usize) -> Value {
    json!({"deletedManifests": manifests, "deletedBlobLinks": links, "deletedBlobs": blobs,
        "reclaimedBytes": bytes})
}

async fn collect_now(state: &AppState, grace: Duration, untagged: bool) -> GcReport {
    let options = GcOptions {
        dry_run: false,
        untagged,
        grace_period: grace,
        registry: untagged.then(|| REGISTRY.to_string()),
    };
    gc::collect(state, &options, None).await.unwrap()
}

#[tokio::test]
async fn deleting_a_manifest_frees_its_own_blobs_but_not_shared_ones() {
    each_backend_with(Duration::ZERO, Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let token = registry_token(&ts, &["app", "other"]).await;
        let shared = blob(1, 5000);
        let a = Image::new(b"{\"a\":1}".to_vec(), vec![blob(2, 3000), shared.clone()], json!({}));
        let b = Image::new(b"{\"b\":1}".to_vec(), vec![blob(3, 4000), shared.clone()], json!({}));
        let c = Image::new(b"{\"c\":1}".to_vec(), vec![blob(2, 3000)], json!({}));
        push_image(&ts, "app", "a", &token, &a).await;
        push_image(&ts, "app", "b", &token, &b).await;
        // The same layer as a's in another repository keeps its bytes, not a's link.
        push_image(&ts, "other", "c", &token, &c).await;
        assert_eq!(
            gc_action(&ts, &owner, None).await,
            counts(0, 0, 0, 0),
            "nothing is garbage yet"
        );

        delete_manifest(&ts, "app", &a.digest(), &token).await;
        // a's config and manifest go; its first layer loses its link in `app` but `other` still links it.
        let freed = a.config.len() + a.manifest.len();
        let dry = gc_action(&ts, &owner, Some(json!({"dryRun": true}))).await;
        assert_eq!(dry, counts(0, 2, 2, freed));
        for bytes in [&a.config, &a.manifest, &shared] {
            assert!(blob_file(&ts, &sha256(bytes)).exists(), "a dry run deletes nothing");
        }
        assert_eq!(gc_action(&ts, &owner, Some(json!({"dryRun": false}))).await, dry);
        for gone in [&a.config, &a.manifest] {
            assert!(!blob_file(&ts, &sha256(gone)).exists());
        }
        for kept in b.blobs().chain([&b.manifest, &c.manifest, &a.layers[0]]) {
            assert!(blob_file(&ts, &sha256(kept)).exists());
        }
        assert_pullable(&ts, "app", "b", &token, &b).await;
        assert_pullable(&ts, "other", "c", &token, &c).await;
        let path = format!("/v2/{REGISTRY}/app/blobs/{}", sha256(&a.layers[0]));
        let r = send(&ts, Method::GET, &path, &token, &[], None).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"), "the link in app is gone");
        assert_eq!(gc_action(&ts, &owner, None).await, counts(0, 0, 0, 0));

        // Pushed again, a's bytes come back.
        push_image(&ts, "app", "a", &token, &a).await;
        assert_pullable(&ts, "app", "a", &token, &a).await;
    })
    .await;
}

#[tokio::test]
async fn the_grace_period_keeps_a_push_in_progress() {
    each_backend_with(Duration::from_secs(3600), Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let image = Image::new(b"{\"grace\":1}".to_vec(), vec![blob(7, 2000)], json!({}));
        for bytes in image.blobs() {
            assert_eq!(push_blob(&ts, "app", &token, bytes).await.status, 201);
        }
        // The manifest is not there yet: the blobs are unreferenced, but younger than the grace period.
        assert_eq!(gc_action(&ts, &owner, None).await, counts(0, 0, 0, 0));
        let r = put_manifest(&ts, "app", "v1", &token, OCI_MANIFEST, &image.manifest).await;
        assert_eq!(r.status, 201);
        assert_pullable(&ts, "app", "v1", &token, &image).await;
        delete_manifest(&ts, "app", &image.digest(), &token).await;
        assert_eq!(gc_action(&ts, &owner, None).await, counts(0, 0, 0, 0), "still young");

        // Without a grace period the same push loses its blobs before its manifest arrives, and the put fails
        // (it never succeeds with blobs missing).
        let state = &ts.server().state;
        let report = collect_now(state, Duration::ZERO, false).await;
        assert_eq!((report.deleted_blob_links, report.deleted_blobs), (2, 3));
        let r = put_manifest(&ts, "app", "v1", &token, OCI_MANIFEST, &image.manifest).await;
        assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
        for bytes in image.blobs() {
            assert!(!blob_file(&ts, &sha256(bytes)).exists());
        }
    })
    .await;
}

#[tokio::test]
async fn orphan_files_and_stale_uploads_are_removed() {
    each_backend_with(Duration::from_secs(3600), Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let image = Image::new(b"{\"orphans\":1}".to_vec(), vec![blob(9, 1500)], json!({}));
        push_image(&ts, "app", "v1", &token, &image).await;
        // Bytes a crash left behind: a file at a content address that nothing records.
        let orphan = blob(10, 2500);
        let orphan_file = blob_file(&ts, &sha256(&orphan));
        std::fs::create_dir_all(orphan_file.parent().unwrap()).unwrap();
        std::fs::write(&orphan_file, &orphan).unwrap();
        // An upload session that received some bytes and was abandoned.
        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/{REGISTRY}/app/blobs/uploads/"),
            &token,
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 202);
        let location = r.header("location").to_string();
        let r = send(&ts, Method::PATCH, &location, &token, &[], Some(b"abandoned".to_vec())).await;
        assert_eq!(r.status, 202);

        assert_eq!(gc_action(&ts, &owner, None).await, counts(0, 0, 0, 0), "both are young");
        assert!(orphan_file.exists());
        let state = &ts.server().state;
        let report = collect_now(state, Duration::ZERO, false).await;
        assert_eq!(
            (report.deleted_blobs, report.reclaimed_bytes, report.deleted_uploads),
            (1, orphan.len() as u64, 1)
        );
        assert!(!orphan_file.exists());
        let r = send(&ts, Method::GET, &location, &token, &[], None).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
        assert_pullable(&ts, "app", "v1", &token, &image).await;
    })
    .await;
}

#[tokio::test]
async fn untagged_manifests_are_collected_only_when_asked() {
    each_backend_with(Duration::ZERO, Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let tagged = Image::new(b"{\"t\":1}".to_vec(), vec![blob(20, 1000)], json!({}));
        let untagged = Image::new(b"{\"u\":1}".to_vec(), vec![blob(21, 1000)], json!({}));
        let child = Image::new(b"{\"child\":1}".to_vec(), vec![blob(22, 1000)], json!({}));
        push_image(&ts, "app", "v1", &token, &tagged).await;
        push_image(&ts, "app", &untagged.digest(), &token, &untagged).await;
        push_image(&ts, "app", &child.digest(), &token, &child).await;
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, &child.manifest)],
        }))
        .unwrap();
        let r = put_manifest(&ts, "app", &sha256(&index), &token, OCI_INDEX, &index).await;
        assert_eq!(r.status, 201);
        // Referrers: one of the tagged image (kept with it), one of the untagged image (goes after it).
        let signature = |subject: &[u8], seed: u32| {
            Image::new(
                b"{}".to_vec(),
                vec![blob(seed, 100)],
                json!({"artifactType": "application/vnd.example.sig",
                    "subject": descriptor(OCI_MANIFEST, subject)}),
            )
        };
        let kept_signature = signature(&tagged.manifest, 23);
        let lost_signature = signature(&untagged.manifest, 24);
        for sig in [&kept_signature, &lost_signature] {
            push_image(&ts, "app", &sig.digest(), &token, sig).await;
        }

        assert_eq!(gc_action(&ts, &owner, None).await, counts(0, 0, 0, 0));
        let dry = gc_action(&ts, &owner, Some(json!({"untagged": true, "dryRun": true}))).await;
        assert_eq!(dry["deletedManifests"], 4, "{dry}");
        // The two signatures share their (empty) config, which the kept one still references.
        assert_eq!(dry["deletedBlobLinks"], 5, "{dry}");
        let done = gc_action(&ts, &owner, Some(json!({"untagged": true}))).await;
        assert_eq!(done, dry);
        for (digest, status) in [
            (tagged.digest(), 200),
            (kept_signature.digest(), 200),
            (untagged.digest(), 404),
            (child.digest(), 404),
            (sha256(&index), 404),
            (lost_signature.digest(), 404),
        ] {
            let path = format!("/v2/{REGISTRY}/app/manifests/{digest}");
            assert_eq!(send(&ts, Method::GET, &path, &token, &[], None).await.status, status);
        }
        for gone in untagged.blobs().chain(child.blobs()).chain(lost_signature.layers.iter()) {
            assert!(!blob_file(&ts, &sha256(gone)).exists());
        }
        assert_pullable(&ts, "app", "v1", &token, &tagged).await;
        assert_pullable(&ts, "app", &kept_signature.digest(), &token, &kept_signature).await;
        let r = send(
            &ts,
            Method::GET,
            &format!("/v2/{REGISTRY}/app/referrers/{}", tagged.digest()),
            &token,
            &[],
            None,
        )
        .await;
        assert_eq!(r.json()["manifests"].as_array().map(Vec::len), Some(1));
    })
    .await;
}

/// A service principal with no role anywhere, made through the Graph subset; its control-plane token.
async fn stranger(ts: &TestServer, owner: &str) -> String {
    let (status, app) = call(
        ts,
        Method::POST,
        "/v1.0/applications",
        Some(owner),
        Some(json!({"displayName": "gc-stranger"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (status, sp) = call(
        ts,
        Method::POST,
        "/v1.0/servicePrincipals",
        Some(owner),
        Some(json!({"appId": app["appId"]})),
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    let (status, password) = call(
        ts,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(owner),
        Some(json!({"passwordCredential": {"displayName": "gc"}})),
    )
    .await;
    assert_eq!(status, 200, "{password}");
    ts.token_for(
        app["appId"].as_str().unwrap(),
        password["secretText"].as_str().unwrap(),
        "https://management.azure.com/.default",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_action_follows_arm_rules() {
    each_backend_with(Duration::from_secs(3600), Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let path = gc_path(&ts, REGISTRY);
        let (status, _) = call(&ts, Method::POST, &path, None, None).await;
        assert_eq!(status, 401);
        let (status, body) = call(
            &ts,
            Method::POST,
            &path.replace(&ts.subscription_id, "00000000-0000-0000-0000-00000000dead"),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!((status, error_code(&body)), (404, "SubscriptionNotFound"));
        // Authorization comes before existence: a stranger cannot tell which registries exist.
        let stranger = stranger(&ts, &owner).await;
        for registry in [REGISTRY, "acrmissing"] {
            let (status, body) =
                call(&ts, Method::POST, &gc_path(&ts, registry), Some(&stranger), None).await;
            assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "{registry}");
        }
        let (status, body) =
            call(&ts, Method::POST, &gc_path(&ts, "acrmissing"), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));
        for bad in [json!({"dryRun": "yes"}), json!({"untagged": 1}), json!([true])] {
            let (status, body) = call(&ts, Method::POST, &path, Some(&owner), Some(bad)).await;
            assert_eq!((status, error_code(&body)), (400, "InvalidRequestContent"), "{body}");
        }
        let (status, body) = call(&ts, Method::GET, &path, Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (405, "MethodNotAllowed"));
        // The resource type's casing does not matter, as everywhere in ARM.
        let lower = path
            .replace("Microsoft.ContainerRegistry", "microsoft.containerregistry")
            .replace("garbageCollect", "GARBAGECOLLECT");
        let (status, body) = call(&ts, Method::POST, &lower, Some(&owner), None).await;
        assert_eq!((status, body), (200, counts(0, 0, 0, 0)));
    })
    .await;
}

#[tokio::test]
async fn the_background_collector_runs_and_stops_with_the_server() {
    each_backend_with(Duration::ZERO, Duration::from_millis(200), |ts| async move {
        setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let image = Image::new(b"{\"bg\":1}".to_vec(), vec![blob(30, 1000)], json!({}));
        // The collector may take the blobs before the manifest arrives (no grace period): retry until stored.
        let ts = Arc::new(ts);
        let pusher = Pusher::new(&ts, &token, "app", Style::Monolithic);
        pusher.push("v1", &image).await;
        delete_manifest(&ts, "app", &image.digest(), &token).await;
        let files: Vec<PathBuf> = image
            .blobs()
            .chain([&image.manifest])
            .map(|bytes| blob_file(&ts, &sha256(bytes)))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while files.iter().any(|f| f.exists()) {
            assert!(tokio::time::Instant::now() < deadline, "the background collector did not run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(pusher);
        let ts = Arc::into_inner(ts).expect("one owner");
        tokio::time::timeout(Duration::from_secs(10), ts.shutdown())
            .await
            .expect("shutdown waits for the collector, which stops")
            .unwrap();
    })
    .await;
}

/// How one image of the concurrency test is pushed.
#[derive(Clone, Copy)]
enum Style {
    /// `POST ?digest=` for every blob.
    Monolithic,
    /// `HEAD` first, upload only what the repository lacks (as docker does).
    HeadFirst,
    /// Shared layers mounted from another repository, the own layer in chunks (`POST`, `PATCH`, `PUT`).
    MountAndChunks,
}

/// Pushes images to one repository in one [`Style`], retrying refused attempts.
struct Pusher {
    ts: Arc<TestServer>,
    token: String,
    repository: &'static str,
    /// Where [`Style::MountAndChunks`] mounts shared layers from.
    mount_from: &'static str,
    style: Style,
    retries: Arc<AtomicU64>,
}

impl Pusher {
    fn new(ts: &Arc<TestServer>, token: &str, repository: &'static str, style: Style) -> Pusher {
        Pusher {
            ts: ts.clone(),
            token: token.to_string(),
            repository,
            mount_from: repository,
            style,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Push until the manifest put answers 201.
    async fn push(&self, tag: &str, image: &Image) {
        for _ in 0..200 {
            if self.try_push(tag, image).await {
                return;
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{}:{tag} could not be pushed in 200 attempts", self.repository);
    }

    /// One attempt; `false` when the registry refused a step because a collector took a blob that nothing
    /// referenced yet (allowed with no grace period: the client pushes again).
    async fn try_push(&self, tag: &str, image: &Image) -> bool {
        let (ts, token) = (&*self.ts, self.token.as_str());
        let base = format!("/v2/{REGISTRY}/{}", self.repository);
        for (index, bytes) in image.blobs().enumerate() {
            let digest = sha256(bytes);
            let stored = match self.style {
                Style::Monolithic => {
                    push_blob(ts, self.repository, token, bytes).await.status == 201
                }
                Style::HeadFirst => {
                    let path = format!("{base}/blobs/{digest}");
                    let head = send(ts, Method::HEAD, &path, token, &[], None).await;
                    head.status == 200
                        || push_blob(ts, self.repository, token, bytes).await.status == 201
                }
                Style::MountAndChunks if index >= 2 => {
                    let path = format!(
                        "{base}/blobs/uploads/?mount={digest}&from={REGISTRY}/{}",
                        self.mount_from
                    );
                    let r = send(ts, Method::POST, &path, token, &[], None).await;
                    match r.status {
                        201 => true,
                        202 => {
                            let location = format!("{}?digest={digest}", r.header("location"));
                            let r =
                                send(ts, Method::PUT, &location, token, &[], Some(bytes.clone()))
                                    .await;
                            r.status == 201
                        }
                        _ => false,
                    }
                }
                Style::MountAndChunks => {
                    let r =
                        send(ts, Method::POST, &format!("{base}/blobs/uploads/"), token, &[], None)
                            .await;
                    if r.status != 202 {
                        return false;
                    }
                    let location = r.header("location").to_string();
                    let half = bytes.len() / 2;
                    let range = format!("0-{}", half - 1);
                    let headers = [("content-range", range.as_str())];
                    let r = send(
                        ts,
                        Method::PATCH,
                        &location,
                        token,
                        &headers,
                        Some(bytes[..half].to_vec()),
                    )
                    .await;
                    if r.status != 202 {
                        return false;
                    }
                    let range = format!("{half}-{}", bytes.len() - 1);
                    let headers = [("content-range", range.as_str())];
                    let path = format!("{location}?digest={digest}");
                    let r =
                        send(ts, Method::PUT, &path, token, &headers, Some(bytes[half..].to_vec()))
                            .await;
                    r.status == 201
                }
            };
            if !stored {
                return false;
            }
        }
        let r = put_manifest(ts, self.repository, tag, token, OCI_MANIFEST, &image.manifest).await;
        match r.status {
            201 => true,
            400 if r.code() == "MANIFEST_BLOB_UNKNOWN" => false,
            other => panic!("manifest put answered {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
}

/// A second node: its own connections to the same metadata store and its own handle on the same blob directory,
/// with no knowledge of this node's upload sessions.
async fn second_node(ts: &TestServer) -> Arc<AppState> {
    let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
    let blobs = berth_storage::BlobStore::open(ts.data_dir.path().join("blobs").to_str().unwrap())
        .await
        .unwrap();
    let authorizer = Arc::new(berth_server::authorize::StoreAuthorizer { db: db.clone() });
    let state =
        AppState::new(db, blobs, ts.tenant_id.clone(), ts.endpoint.clone(), None, authorizer)
            .await
            .unwrap();
    Arc::new(state)
}

/// Pushes of images with shared and own layers, re-pushes and deletions, while two collectors (this node and a
/// second one) run without pause and without a grace period. Every image whose manifest put answered 201 and that
/// was not deleted afterwards must be pullable, every blob matching its digest; the collectors must have deleted
/// blobs meanwhile, so the race was real.
#[tokio::test]
async fn concurrent_pushes_never_lose_a_blob_to_the_collector() {
    each_backend_with(Duration::ZERO, Duration::ZERO, |ts| async move {
        setup(&ts).await;
        let repositories = ["r0", "r1", "r2"];
        let token = registry_token(&ts, &repositories).await;
        let ts = Arc::new(ts);
        let shared: Vec<Vec<u8>> = (0..5).map(|i| blob(100 + i, 2000 + 300 * i as usize)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut collectors = Vec::new();
        for state in [ts.server().state.clone(), second_node(&ts).await] {
            let stop = stop.clone();
            collectors.push(tokio::spawn(async move {
                let mut total = GcReport::default();
                let mut runs = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let report = collect_now(&state, Duration::ZERO, false).await;
                    total.deleted_blobs += report.deleted_blobs;
                    total.deleted_blob_links += report.deleted_blob_links;
                    runs += 1;
                    tokio::task::yield_now().await;
                }
                (runs, total)
            }));
        }

        let workers = 8u32;
        let per_worker = 9u32;
        let retries = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for worker in 0..workers {
            let style = [Style::Monolithic, Style::HeadFirst, Style::MountAndChunks][worker as usize % 3];
            let mut pusher = Pusher::new(&ts, &token, repositories[worker as usize % 3], style);
            pusher.mount_from = repositories[(worker as usize + 1) % 3];
            pusher.retries = retries.clone();
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                let image = |k: u32| {
                    Image::new(
                        format!("{{\"worker\":{worker},\"image\":{k}}}").into_bytes(),
                        vec![
                            blob(1000 + worker * 100 + k, 1500 + 17 * k as usize),
                            shared[((worker + k) % 5) as usize].clone(),
                            shared[((worker + 2 * k + 1) % 5) as usize].clone(),
                        ],
                        json!({}),
                    )
                };
                // (tag, image, deleted at the end)
                let mut outcome: Vec<(String, Image, bool)> = Vec::new();
                for k in 0..per_worker {
                    let tag = format!("w{worker}-i{k}");
                    let current = image(k);
                    pusher.push(&tag, &current).await;
                    outcome.push((tag, current.clone(), false));
                    if k % 3 == 1 {
                        delete_manifest(&pusher.ts, pusher.repository, &current.digest(), &pusher.token)
                            .await;
                        outcome.last_mut().unwrap().2 = true;
                    }
                    if k % 3 == 2 && worker % 2 == 0 {
                        // The deleted image again: the same digests, possibly being collected right now.
                        let (tag, again, deleted) = &mut outcome[k as usize - 1];
                        pusher.push(tag, again).await;
                        *deleted = false;
                    }
                }
                (pusher.repository, outcome)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let mut collected = GcReport::default();
        let mut runs = 0;
        for collector in collectors {
            let (r, total) = collector.await.unwrap();
            runs += r;
            collected.deleted_blobs += total.deleted_blobs;
            collected.deleted_blob_links += total.deleted_blob_links;
        }
        assert!(runs > 2, "the collectors ran {runs} times");
        assert!(
            collected.deleted_blobs > 0 && collected.deleted_blob_links > 0,
            "the collectors never deleted anything while pushes ran: {collected:?}"
        );
        collect_now(&ts.server().state, Duration::ZERO, false).await;

        let mut live_digests = HashSet::new();
        for (repository, outcome) in &results {
            for (tag, image, deleted) in outcome {
                if *deleted {
                    let path = format!("/v2/{REGISTRY}/{repository}/manifests/{}", image.digest());
                    assert_eq!(send(&ts, Method::GET, &path, &token, &[], None).await.status, 404);
                } else {
                    assert_pullable(&ts, repository, tag, &token, image).await;
                    live_digests.extend(image.blobs().chain([&image.manifest]).map(|b| sha256(b)));
                }
            }
        }
        // What only deleted images used is gone after the last run.
        for (_, outcome) in &results {
            for (_, image, deleted) in outcome {
                if *deleted {
                    for bytes in image.blobs().chain([&image.manifest]) {
                        let digest = sha256(bytes);
                        if !live_digests.contains(&digest) {
                            assert!(!blob_file(&ts, &digest).exists(), "{digest} should have been collected");
                        }
                    }
                }
            }
        }
        eprintln!(
            "{:?}: {runs} collector runs deleted {} links and {} blobs; {} push attempts were retried",
            ts.backend,
            collected.deleted_blob_links,
            collected.deleted_blobs,
            retries.load(Ordering::Relaxed)
        );
    })
    .await;
}

#[tokio::test]
async fn a_deleted_registry_takes_its_images_along_and_a_new_one_of_the_same_name_starts_empty() {
    each_backend_with(Duration::ZERO, Duration::ZERO, |ts| async move {
        let owner = setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let image = Image::new(b"{\"deleted\":1}".to_vec(), vec![blob(7, 6000)], json!({}));
        push_image(&ts, "app", "v1", &token, &image).await;
        assert_pullable(&ts, "app", "v1", &token, &image).await;

        let (status, body) =
            call(&ts, Method::DELETE, &registry_path(&ts, "g", REGISTRY), Some(&owner), None).await;
        assert_eq!(status, 200, "{body}");
        setup(&ts).await;
        let token = registry_token(&ts, &["app"]).await;
        let path = format!("/v2/{REGISTRY}/app/manifests/v1");
        let r = send(&ts, Method::GET, &path, &token, &[("accept", OCI_MANIFEST)], None).await;
        assert_eq!(r.status, 404, "the new registry must not serve the old one's image");
        let path = format!("/v2/{REGISTRY}/app/blobs/{}", sha256(&image.layers[0]));
        assert_eq!(send(&ts, Method::GET, &path, &token, &[], None).await.status, 404);
        let r = send(&ts, Method::GET, "/v2/_catalog", &token, &[], None).await;
        assert!(
            !String::from_utf8_lossy(&r.body).contains("app"),
            "{}",
            String::from_utf8_lossy(&r.body)
        );

        // Nothing references the old image's bytes any more: the collector frees them.
        let report = collect_now(&ts.server().state, Duration::ZERO, false).await;
        assert_eq!(report.deleted_blobs, 3, "{report:?}");
        for bytes in image.blobs().chain([&image.manifest]) {
            assert!(!blob_file(&ts, &sha256(bytes)).exists());
        }
    })
    .await;
}
