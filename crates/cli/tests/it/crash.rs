//! Crash safety over HTTP: `berth serve` is killed with SIGKILL in the middle of 100 concurrent pushes and started
//! again on the same data. Every push that got its 201 is still pullable with the same digests, no partial blob or
//! manifest is visible, the tag lists and the catalog hold nothing half-written, and the same content can be pushed
//! again. Runs on SQLite and on PostgreSQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::Digest;
use berth_test_support::{backends, Backend};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

const REGISTRY: &str = "crashacr";
const PUSHES: usize = 100;
const CHUNK: usize = 128 * 1024;
/// A pause between chunks, as a client on a slower link would make: it keeps uploads open long enough to be cut.
const CHUNK_PAUSE: Duration = Duration::from_millis(3);
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
const API: &str = "api-version=2024-11-01";

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// Deterministic incompressible bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

// --- the server process --------------------------------------------------------------------------------------

/// One installation: a data directory (and database) that outlives the processes serving it.
struct Installation {
    data_dir: tempfile::TempDir,
    logs: tempfile::TempDir,
    database_url: Option<String>,
    listen: String,
    endpoint: String,
    starts: usize,
}

impl Installation {
    async fn new(backend: Backend) -> Installation {
        let data_dir = tempfile::tempdir().expect("data dir");
        let database_url = match backend {
            // The default: SQLite in the data directory.
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                berth_db::testing::scratch_database(backend, data_dir.path())
                    .await
                    .expect("a scratch PostgreSQL database (BERTH_TEST_POSTGRES_URL)"),
            ),
        };
        // A free port, kept across restarts (the short race on loopback is acceptable).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        Installation {
            data_dir,
            logs: tempfile::tempdir().expect("log dir"),
            database_url,
            endpoint: format!("https://{listen}"),
            listen,
            starts: 0,
        }
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.logs.path().join(format!("serve-{start}.log"))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `berth serve` on this data; returns once it answers HTTPS, with a client that trusts its CA.
    async fn start(&mut self) -> (tokio::process::Child, reqwest::Client) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .arg("serve")
            .env("BERTH_DATA_DIR", self.data_dir.path())
            .env("BERTH_LISTEN", &self.listen)
            .env("RUST_LOG", "warn");
        for name in [
            "BERTH_DATABASE_URL",
            "BERTH_PUBLIC_URL",
            "BERTH_BLOB_STORE",
            "BERTH_REGISTRY_DOMAIN",
            "BERTH_INSECURE_HTTP",
            "BERTH_TLS_CERT",
            "BERTH_TLS_KEY",
        ] {
            command.env_remove(name);
        }
        if let Some(url) = &self.database_url {
            command.env("BERTH_DATABASE_URL", url);
        }
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("berth serve starts");
        let ca_path = self.data_dir.path().join("tls/ca.pem");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("berth serve exited with {status}:\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "berth serve did not come up:\n{}", self.log_tail());
            if let Ok(pem) = std::fs::read_to_string(&ca_path) {
                if let Ok(http) = client(&pem) {
                    if http.get(format!("{}/v2/", self.endpoint)).send().await.is_ok() {
                        return (child, http);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn bootstrap(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.data_dir.path().join("bootstrap.json")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        value[key].as_str().unwrap_or_else(|| panic!("bootstrap.json lacks {key}")).to_string()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoint)
        }
    }
}

/// A client trusting exactly berth's CA; each push gets its own (its own connections, like separate clients).
fn client(ca_pem: &str) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .timeout(Duration::from_secs(120))
        .build()
}

/// A response, read whole.
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request; a transport error (the server died) is an `Err`.
async fn send(
    http: &reqwest::Client,
    url: String,
    method: Method,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> reqwest::Result<Resp> {
    let mut request = http.request(method, url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(Resp { status, headers, body })
}

// --- setup ---------------------------------------------------------------------------------------------------

/// Resource group, registry, and one pull/push access token per repository plus a catalog token.
async fn setup(inst: &Installation, http: &reqwest::Client) -> (Vec<String>, String) {
    let tenant = inst.bootstrap("tenantId");
    let subscription = inst.bootstrap("subscriptionId");
    let (client_id, secret) = (inst.bootstrap("clientId"), inst.bootstrap("clientSecret"));
    let entra = |scope: &'static str| {
        let (http, url) = (http.clone(), inst.url(&format!("/{tenant}/oauth2/v2.0/token")));
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", secret.clone()),
            ("scope", scope.to_string()),
        ];
        async move {
            let body: Value =
                http.post(url).form(&form).send().await.unwrap().json().await.unwrap();
            body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
        }
    };
    let owner = entra("https://management.azure.com/.default").await;
    let group = format!("/subscriptions/{subscription}/resourcegroups/g");
    for (path, body) in [
        (format!("{group}?{API}"), json!({"location": "westeurope"})),
        (
            format!("{group}/providers/Microsoft.ContainerRegistry/registries/{REGISTRY}?{API}"),
            json!({"location": "westeurope", "sku": {"name": "Standard"}}),
        ),
    ] {
        let r = http.put(inst.url(&path)).bearer_auth(&owner).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap_or_default());
    }
    let service = format!("{}/{REGISTRY}", inst.listen);
    let registry_entra = entra("https://containerregistry.azure.net/.default").await;
    let body: Value = http
        .post(inst.url("/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", service.as_str()),
            ("tenant", tenant.as_str()),
            ("access_token", registry_entra.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = body["refresh_token"].as_str().expect("a refresh token").to_string();
    let access = |scope: String| {
        let http = http.clone();
        let url = inst.url(&format!("/oauth2/token?service={service}&scope={scope}"));
        let refresh = refresh.clone();
        async move {
            let body: Value = http
                .get(url)
                .basic_auth(NULL_GUID, Some(refresh))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
        }
    };
    let mut tokens = Vec::new();
    for i in 0..PUSHES {
        tokens.push(access(format!("repository:{}:pull,push", repository(i))).await);
    }
    (tokens, access("registry:catalog:*".to_string()).await)
}

// --- the pushes ----------------------------------------------------------------------------------------------

fn repository(i: usize) -> String {
    format!("{REGISTRY}/img-{i:03}")
}

/// One image: a config and two layers of a few hundred KiB to about 1.5 MiB.
struct Planned {
    name: String,
    config: Vec<u8>,
    /// Monolithic: one `POST ?digest=` (even pushes) or `POST` then `PUT ?digest=` (odd pushes).
    layer_a: Vec<u8>,
    /// Chunked: `POST`, `PATCH`es of 128 KiB with `Content-Range`, `PUT ?digest=`.
    layer_b: Vec<u8>,
    manifest: Vec<u8>,
}

impl Planned {
    fn new(i: usize) -> Planned {
        let layer_a = noise(2 * i as u64 + 1, 128 * 1024 + (i * 37 % 512) * 1024);
        let layer_b = noise(2 * i as u64 + 2, 256 * 1024 + (i * 53 % 1280) * 1024 + i);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_a), sha256(&layer_b)]},
            "config": {"Labels": {"push": i.to_string()}},
        }))
        .unwrap();
        let descriptor = |media_type: &str, bytes: &[u8]| json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()});
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": [
                descriptor("application/vnd.oci.image.layer.v1.tar", &layer_a),
                descriptor("application/vnd.oci.image.layer.v1.tar", &layer_b),
            ],
        }))
        .unwrap();
        Planned { name: repository(i), config, layer_a, layer_b, manifest }
    }

    fn blobs(&self) -> [&[u8]; 3] {
        [&self.config, &self.layer_a, &self.layer_b]
    }
}

/// What a push saw before the crash.
#[derive(Default, Clone, Debug)]
struct Progress {
    /// The push sent its first request.
    started: bool,
    /// Blobs whose upload answered 201.
    blobs_acked: Vec<String>,
    /// The manifest PUT was sent (its answer may have been lost).
    manifest_sent: bool,
    /// The manifest PUT answered 201 with this digest.
    manifest_acked: Option<String>,
    /// A straggler's open chunked upload: its location and the bytes acknowledged so far.
    open_upload: Option<(String, usize)>,
    /// A response with a status the protocol does not allow here (a bug, unlike a dropped connection).
    unexpected: Option<String>,
}

/// Shared between the pushes and the test.
struct Shared {
    progress: Mutex<Vec<Progress>>,
    manifests_acked: AtomicUsize,
    stragglers_waiting: AtomicUsize,
    /// Pushes that ended, by success or error.
    done: AtomicUsize,
    /// Set just before the SIGKILL: pushes not yet started stay unstarted.
    killed: AtomicBool,
    go: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    fn update(&self, i: usize, change: impl FnOnce(&mut Progress)) {
        change(&mut self.progress.lock().unwrap()[i]);
    }
}

/// A response that must have one status; anything else is recorded as unexpected.
fn expect(shared: &Shared, i: usize, what: &str, r: Resp, status: u16) -> Result<Resp, ()> {
    if r.status == status {
        return Ok(r);
    }
    let message = format!("{what}: expected {status}, got {} {}", r.status, r.text());
    shared.update(i, |p| p.unexpected = Some(message));
    Err(())
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Pushes image `i`; stops at the first transport error (the crash). Stragglers stop after their first chunk until
/// the test says go, so they are mid-upload when the server dies.
async fn push(
    inst: &Installation,
    http: reqwest::Client,
    token: &str,
    i: usize,
    plan: &Planned,
    straggler: bool,
    shared: &Shared,
) -> Result<(), ()> {
    let name = &plan.name;
    let octets = [("content-type", "application/octet-stream")];
    let uploads = inst.url(&format!("/v2/{name}/blobs/uploads/"));
    let go = |r: reqwest::Result<Resp>| r.map_err(|_| ());
    if shared.killed.load(Ordering::SeqCst) {
        return Err(());
    }
    shared.update(i, |p| p.started = true);

    // The config and layer A: monolithic.
    for (n, bytes) in [&plan.config, &plan.layer_a].into_iter().enumerate() {
        let digest = sha256(bytes);
        if (i + n) % 2 == 0 {
            let r = go(send(
                &http,
                with_digest(&uploads, &digest),
                Method::POST,
                token,
                &octets,
                Some(bytes.clone()),
            )
            .await)?;
            expect(shared, i, "monolithic POST", r, 201)?;
        } else {
            let r = go(send(&http, uploads.clone(), Method::POST, token, &[], None).await)?;
            let r = expect(shared, i, "POST", r, 202)?;
            let location = inst.url(r.header("location"));
            let r = go(send(
                &http,
                with_digest(&location, &digest),
                Method::PUT,
                token,
                &octets,
                Some(bytes.clone()),
            )
            .await)?;
            expect(shared, i, "monolithic PUT", r, 201)?;
        }
        shared.update(i, |p| p.blobs_acked.push(digest));
    }

    // Layer B: chunked.
    let digest = sha256(&plan.layer_b);
    let r = go(send(&http, uploads.clone(), Method::POST, token, &[], None).await)?;
    let mut location = inst.url(expect(shared, i, "POST", r, 202)?.header("location"));
    for (n, chunk) in plan.layer_b.chunks(CHUNK).enumerate() {
        let start = n * CHUNK;
        let range = format!("{start}-{}", start + chunk.len() - 1);
        let headers =
            [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
        let r = go(send(
            &http,
            location.clone(),
            Method::PATCH,
            token,
            &headers,
            Some(chunk.to_vec()),
        )
        .await)?;
        location = inst.url(expect(shared, i, "PATCH", r, 202)?.header("location"));
        tokio::time::sleep(CHUNK_PAUSE).await;
        if straggler && n == 0 {
            let sent = chunk.len();
            shared.update(i, |p| p.open_upload = Some((location.clone(), sent)));
            shared.stragglers_waiting.fetch_add(1, Ordering::SeqCst);
            let mut go_rx = shared.go.clone();
            let _ = go_rx.wait_for(|go| *go).await;
        } else if straggler {
            let sent = start + chunk.len();
            shared.update(i, |p| p.open_upload = Some((location.clone(), sent)));
        }
    }
    let r = go(send(&http, with_digest(&location, &digest), Method::PUT, token, &[], None).await)?;
    expect(shared, i, "closing PUT", r, 201)?;
    shared.update(i, |p| {
        p.blobs_acked.push(digest);
        p.open_upload = None;
    });

    // The manifest.
    shared.update(i, |p| p.manifest_sent = true);
    let url = inst.url(&format!("/v2/{name}/manifests/v1"));
    let r = go(send(
        &http,
        url,
        Method::PUT,
        token,
        &[("content-type", OCI_MANIFEST)],
        Some(plan.manifest.clone()),
    )
    .await)?;
    let r = expect(shared, i, "manifest PUT", r, 201)?;
    let digest = r.header("docker-content-digest").to_string();
    shared.update(i, |p| p.manifest_acked = Some(digest));
    shared.manifests_acked.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

// --- checks after the restart --------------------------------------------------------------------------------

/// Whether image `plan` is fully there: the manifest by tag and by digest, byte for byte, and every blob.
/// `None` when its manifest is not visible (404 by tag and by digest).
async fn image_state(
    inst: &Installation,
    http: &reqwest::Client,
    token: &str,
    plan: &Planned,
) -> Option<()> {
    let name = &plan.name;
    let digest = sha256(&plan.manifest);
    let accept = [("accept", OCI_MANIFEST)];
    let by_tag = send(
        http,
        inst.url(&format!("/v2/{name}/manifests/v1")),
        Method::GET,
        token,
        &accept,
        None,
    )
    .await
    .unwrap();
    let by_digest = send(
        http,
        inst.url(&format!("/v2/{name}/manifests/{digest}")),
        Method::GET,
        token,
        &accept,
        None,
    )
    .await
    .unwrap();
    if by_tag.status == 404 && by_digest.status == 404 {
        return None;
    }
    assert_eq!(
        (by_tag.status, by_digest.status),
        (200, 200),
        "{name}: a manifest visible by tag must be by digest too"
    );
    for r in [&by_tag, &by_digest] {
        assert!(r.body == plan.manifest, "{name}: the manifest's bytes are the pushed bytes");
        assert_eq!(r.header("docker-content-digest"), digest, "{name}");
    }
    for blob in plan.blobs() {
        let d = sha256(blob);
        let r =
            send(http, inst.url(&format!("/v2/{name}/blobs/{d}")), Method::GET, token, &[], None)
                .await
                .unwrap();
        assert_eq!(r.status, 200, "{name}: blob {d} of a visible manifest");
        assert!(r.body == blob, "{name}: blob {d} has the pushed bytes");
    }
    Some(())
}

async fn crash_and_recover(backend: Backend) {
    let mut inst = Installation::new(backend).await;
    let (mut server, http) = inst.start().await;
    let (tokens, catalog_token) = setup(&inst, &http).await;
    let plans: Vec<Planned> = (0..PUSHES).map(Planned::new).collect();
    let ca_pem = std::fs::read_to_string(inst.data_dir.path().join("tls/ca.pem")).unwrap();

    // 100 concurrent pushes; one in five is a straggler that stops mid-upload until the crash.
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        progress: Mutex::new(vec![Progress::default(); PUSHES]),
        manifests_acked: AtomicUsize::new(0),
        stragglers_waiting: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        killed: AtomicBool::new(false),
        go: go_rx,
    });
    let stragglers = (0..PUSHES).filter(|i| i % 5 == 4).count();
    let started = Instant::now();
    let inst = Arc::new(inst);
    let plans = Arc::new(plans);
    let tokens = Arc::new(tokens);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PUSHES {
        let (inst, plans, tokens, shared) =
            (inst.clone(), plans.clone(), tokens.clone(), shared.clone());
        let http = client(&ca_pem).unwrap();
        tasks.spawn(async move {
            // Regular pushes start staggered, so the crash finds them in every phase; stragglers start at once.
            if i % 5 != 4 {
                tokio::time::sleep(Duration::from_millis(i as u64 * 8)).await;
            }
            let _ = push(&inst, http, &tokens[i], i, &plans[i], i % 5 == 4, &shared).await;
            shared.done.fetch_add(1, Ordering::SeqCst);
        });
    }
    // Crash once 40 of the 80 regular pushes have their 201 and every straggler is mid-upload: the stragglers are
    // let go just before, so the kill lands among PATCHes, closing PUTs and manifest PUTs.
    let deadline = Instant::now() + Duration::from_secs(600);
    while shared.manifests_acked.load(Ordering::SeqCst) < 40
        || shared.stragglers_waiting.load(Ordering::SeqCst) < stragglers
    {
        assert!(Instant::now() < deadline, "the pushes made no progress:\n{}", inst.log_tail());
        if shared.done.load(Ordering::SeqCst) >= PUSHES - stragglers {
            panic!("the pushes ended before the crash: {:?}", shared.progress.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    go_tx.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    shared.killed.store(true, Ordering::SeqCst);
    server.start_kill().expect("SIGKILL");
    let status = server.wait().await.unwrap();
    let acked_at_kill = shared.manifests_acked.load(Ordering::SeqCst);
    eprintln!("{backend:?}: killed ({status}) after {:?} with {acked_at_kill} of {PUSHES} manifests acknowledged", started.elapsed());
    while tasks.join_next().await.is_some() {}
    let progress = shared.progress.lock().unwrap().clone();
    for (i, p) in progress.iter().enumerate() {
        assert!(
            p.unexpected.is_none(),
            "push {i} before the crash: {}",
            p.unexpected.as_deref().unwrap_or("")
        );
    }
    let acked: Vec<usize> = (0..PUSHES).filter(|&i| progress[i].manifest_acked.is_some()).collect();
    assert!(
        acked.len() >= 40 && acked.len() < PUSHES,
        "the crash came mid-way ({} acknowledged)",
        acked.len()
    );

    // Restart on the same data and address.
    let mut inst = Arc::into_inner(inst).expect("the pushes are over");
    let (mut server, http) = inst.start().await;

    // Every acknowledged push is intact; an unfinished one is invisible (or, when its manifest PUT was on the wire,
    // complete); every visible blob has the bytes of its digest; every acknowledged blob is still there.
    let (mut in_flight_visible, mut in_flight_gone, mut blobs_visible) = (0, 0, 0);
    let cut_mid_blob = (0..PUSHES)
        .filter(|&i| i % 5 != 4 && progress[i].started && !progress[i].manifest_sent)
        .count();
    let not_started = (0..PUSHES).filter(|&i| !progress[i].started).count();
    for (i, (plan, p)) in plans.iter().zip(&progress).enumerate() {
        let token = &tokens[i];
        let visible = image_state(&inst, &http, token, plan).await.is_some();
        if let Some(digest) = &p.manifest_acked {
            assert!(visible, "push {i} got its 201 but is gone after the crash");
            assert_eq!(digest, &sha256(&plan.manifest));
        } else if p.manifest_sent {
            if visible {
                in_flight_visible += 1
            } else {
                in_flight_gone += 1
            }
        } else {
            assert!(!visible, "push {i} never sent its manifest, yet a manifest is visible");
        }
        for blob in plan.blobs() {
            let d = sha256(blob);
            let url = inst.url(&format!("/v2/{}/blobs/{d}", plan.name));
            let head = send(&http, url.clone(), Method::HEAD, token, &[], None).await.unwrap();
            match head.status {
                200 => {
                    assert_eq!(head.header("content-length"), blob.len().to_string(), "{url}");
                    let r = send(&http, url.clone(), Method::GET, token, &[], None).await.unwrap();
                    assert_eq!(
                        sha256(&r.body),
                        d,
                        "{url}: a visible blob's bytes match its digest"
                    );
                    blobs_visible += 1;
                }
                404 => assert!(
                    !p.blobs_acked.contains(&d),
                    "{url} got its 201 but is gone after the crash"
                ),
                other => panic!("{url}: HEAD answered {other}"),
            }
        }
        // The tag list names v1 exactly when the manifest is visible.
        let r = send(
            &http,
            inst.url(&format!("/v2/{}/tags/list", plan.name)),
            Method::GET,
            token,
            &[],
            None,
        )
        .await
        .unwrap();
        let tags = if r.status == 200 {
            serde_json::from_slice::<Value>(&r.body).unwrap()["tags"].clone()
        } else {
            Value::Null
        };
        assert!(
            r.status == 200 || r.status == 404,
            "tags/list of {}: {} {}",
            plan.name,
            r.status,
            r.text()
        );
        let expected = if visible { json!(["v1"]) } else { json!([]) };
        assert!(tags == expected || (!visible && tags.is_null()), "tags of {}: {tags}", plan.name);
    }
    // The catalog holds only these repositories, each with an image visible or none tagged (checked above), and
    // every repository with a visible image.
    let r = send(
        &http,
        inst.url(&format!("/v2/{REGISTRY}/_catalog?n=1000")),
        Method::GET,
        &catalog_token,
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let listed: Vec<String> = serde_json::from_value(
        serde_json::from_slice::<Value>(&r.body).unwrap()["repositories"].clone(),
    )
    .unwrap();
    for name in &listed {
        assert!(
            plans.iter().any(|p| &p.name == name),
            "the catalog lists {name}, which no push named"
        );
    }
    for i in &acked {
        assert!(listed.contains(&plans[*i].name), "the catalog lacks {}", plans[*i].name);
    }

    // The stragglers' open uploads: either forgotten (404) or resumable from an offset no larger than what was
    // acknowledged, and then completing to the right digest.
    let (mut resumed, mut committed, mut forgotten) = (0, 0, 0);
    for (i, p) in progress.iter().enumerate() {
        let Some((location, acked_bytes)) = &p.open_upload else { continue };
        let layer = &plans[i].layer_b;
        let r = send(&http, location.clone(), Method::GET, &tokens[i], &[], None).await.unwrap();
        if r.status == 404 {
            // Gone: committed by a closing PUT the crash cut off (the blob is there), or dropped with it (never
            // acknowledged, so the client starts that blob again).
            let url = inst.url(&format!("/v2/{}/blobs/{}", plans[i].name, sha256(layer)));
            let head = send(&http, url, Method::HEAD, &tokens[i], &[], None).await.unwrap();
            if head.status == 200 {
                committed += 1
            } else {
                forgotten += 1
            }
            continue;
        }
        assert_eq!(r.status, 204, "upload status of push {i}: {}", r.text());
        let offset = match r.header("range").split_once('-') {
            Some((_, end)) => end.parse::<usize>().unwrap() + 1,
            None => 0,
        };
        // SIGKILL loses no written byte: the upload holds at least every acknowledged chunk.
        assert!(
            *acked_bytes <= offset && offset <= layer.len(),
            "push {i}: the upload resumes at {offset}, but {acked_bytes} bytes were acknowledged"
        );
        let mut location = inst.url(r.header("location"));
        if offset < layer.len() {
            let range = format!("{offset}-{}", layer.len() - 1);
            let headers =
                [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
            let r = send(
                &http,
                location,
                Method::PATCH,
                &tokens[i],
                &headers,
                Some(layer[offset..].to_vec()),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 202, "resuming push {i} at {offset}: {}", r.text());
            location = inst.url(r.header("location"));
        }
        let r =
            send(&http, with_digest(&location, &sha256(layer)), Method::PUT, &tokens[i], &[], None)
                .await
                .unwrap();
        assert_eq!(r.status, 201, "completing push {i}'s resumed upload: {}", r.text());
        resumed += 1;
    }

    // The same content pushes again (fresh uploads over whatever survived), and then every image is complete.
    let shared = Arc::new(Shared {
        progress: Mutex::new(vec![Progress::default(); PUSHES]),
        manifests_acked: AtomicUsize::new(0),
        stragglers_waiting: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        killed: AtomicBool::new(false),
        go: tokio::sync::watch::channel(true).1,
    });
    let inst = Arc::new(inst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PUSHES {
        let (inst, plans, tokens, shared) =
            (inst.clone(), plans.clone(), tokens.clone(), shared.clone());
        let http = client(&ca_pem).unwrap();
        tasks.spawn(async move {
            push(&inst, http, &tokens[i], i, &plans[i], false, &shared).await.is_ok()
        });
    }
    while let Some(ok) = tasks.join_next().await {
        assert!(ok.unwrap(), "a push after the restart failed");
    }
    for (i, p) in shared.progress.lock().unwrap().iter().enumerate() {
        assert!(p.unexpected.is_none(), "push {i} after the restart: {:?}", p.unexpected);
        assert_eq!(p.manifest_acked.as_deref(), Some(sha256(&plans[i].manifest).as_str()));
    }
    for (i, plan) in plans.iter().enumerate() {
        assert!(
            image_state(&inst, &http, &tokens[i], plan).await.is_some(),
            "push {i} after the restart"
        );
    }
    eprintln!(
        "{backend:?}: {} acknowledged and intact; manifest PUTs cut by the crash: {in_flight_visible} visible, \
         {in_flight_gone} not; {cut_mid_blob} regular pushes cut mid-blob, {not_started} not started; {blobs_visible} \
         blobs visible and verified; stragglers' open uploads: {resumed} resumed, {committed} committed by the cut \
         PUT, {forgotten} gone; all {PUSHES} pushed again",
        acked.len()
    );
    server.start_kill().unwrap();
    server.wait().await.unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_100_concurrent_pushes_loses_nothing_acknowledged() {
    for backend in backends() {
        crash_and_recover(backend).await;
    }
}
