//! Real registry clients against berth over HTTPS with berth's CA: skopeo and podman push and pull a multi-layer
//! image and a multi-platform index, oras-py pushes and pulls an artifact, each with a principal's credentials and
//! with the `00000000-0000-0000-0000-000000000000` refresh-token login.
//!
//! The clients run in a sandbox of their own (private registries.conf, policy.json, auth file, HOME and storage) and
//! only ever see full `127.0.0.1:PORT/...` references, so nothing reaches beyond loopback. A missing client skips
//! its test with the reason, or fails it when `BERTH_REQUIRE_REAL_CLIENTS=1` (set by `scripts/test.sh`, which
//! installs skopeo, podman and a venv with oras-py and names its python in `BERTH_TEST_PYTHON`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_oci::Digest;
use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
const REGISTRY: &str = "realacr";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

// --- availability --------------------------------------------------------------------------------------------

fn clients_required() -> bool {
    std::env::var("BERTH_REQUIRE_REAL_CLIENTS").is_ok_and(|v| v == "1")
}

/// A client that is not there: fail when the run requires real clients, else say why the test is skipped.
fn unavailable(client: &str, reason: &str) {
    assert!(
        !clients_required(),
        "{client} is required (BERTH_REQUIRE_REAL_CLIENTS=1) but {reason}; scripts/test.sh installs it"
    );
    eprintln!("SKIPPED: {client} {reason}; scripts/test.sh installs it (set BERTH_REQUIRE_REAL_CLIENTS=1 to fail instead)");
}

/// The python with oras-py: `BERTH_TEST_PYTHON`, else `python3` from PATH.
fn python() -> String {
    std::env::var("BERTH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

// --- the clients' sandbox ------------------------------------------------------------------------------------

/// One test's private client configuration: CA, policy, registries.conf, auth file, HOME, podman storage.
struct Sandbox {
    dir: tempfile::TempDir,
    /// podman's runroot: a separate short path under /tmp (podman refuses one longer than 50 characters).
    runroot: tempfile::TempDir,
    /// `host:port` of the server, the start of every reference.
    host: String,
}

/// A command line as run, with secrets masked, for failure messages and the log.
struct Cmd {
    program: String,
    args: Vec<String>,
    secrets: Vec<String>,
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        for secret in &self.secrets {
            line = line.replace(secret.as_str(), "***");
        }
        f.write_str(&line)
    }
}

impl Sandbox {
    fn new(ts: &TestServer) -> Sandbox {
        // Lowercase only: podman names an image loaded from `oci:<path>` after the path.
        let dir = tempfile::Builder::new()
            .prefix(&format!("bc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
            .rand_bytes(0)
            .tempdir()
            .expect("sandbox dir");
        let root = dir.path();
        let runroot = tempfile::Builder::new().prefix("bp").tempdir_in("/tmp").expect("runroot");
        for sub in ["certs", "home", "runtime", "config", "tmp", "podman/root", "podman/tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        // containers/image reads `*.crt` in a cert dir as CAs.
        std::fs::copy(&ts.ca_pem_path, root.join("certs/ca.crt")).unwrap();
        std::fs::write(
            root.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        std::fs::write(root.join("registries.conf"), "unqualified-search-registries = []\n")
            .unwrap();
        std::fs::write(root.join("auth.json"), r#"{"auths":{}}"#).unwrap();
        let podman = root.join("podman");
        std::fs::write(
            root.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                podman.join("root").display(),
                runroot.path().display()
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("containers.conf"),
            format!(
                "[engine]\nevents_logger = \"none\"\ntmp_dir = \"{}\"\n",
                podman.join("tmp").display()
            ),
        )
        .unwrap();
        Sandbox { dir, runroot, host: ts.local_addr.to_string() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `host:port/<registry>/<repository>`.
    fn reference(&self, repository: &str) -> String {
        format!("{}/{REGISTRY}/{repository}", self.host)
    }

    fn cmd(&self, program: &str, args: &[&str], secrets: &[&str]) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            secrets: secrets.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()).collect(),
        }
    }

    /// A command from one line of space-separated words (the sandbox's paths and the credentials have no spaces).
    fn line(&self, program: &str, line: &str, secrets: &[&str]) -> Cmd {
        self.cmd(program, &line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>(), secrets)
    }

    /// Runs a command with only this sandbox's configuration in its environment.
    async fn run(&self, cmd: &Cmd, extra_env: &[(&str, &str)]) -> std::io::Result<Output> {
        let mut command = tokio::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("TMPDIR", self.path("tmp"))
            .env("DOCKER_CONFIG", self.path("home/.docker"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("NO_PROXY", "*")
            .env("no_proxy", "*")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        command.output().await
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, cmd: Cmd, extra_env: &[(&str, &str)]) -> String {
        let output = self.run(&cmd, extra_env).await.unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{cmd} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("PASSED: {cmd}");
        stdout
    }

    /// Whether `program args` runs and exits 0; the reason when it does not.
    async fn probe(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let cmd = self.cmd(program, args, &[]);
        match self.run(&cmd, &[]).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("is not installed (`{program}` not found)"))
            }
            Err(e) => Err(format!("cannot be started ({cmd}: {e})")),
            Ok(output) if !output.status.success() => Err(format!(
                "does not run here ({cmd} exited with {}: {})",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Ok(output) => Ok(String::from_utf8_lossy(&output.stdout).trim().to_string()),
        }
    }
}

// --- credentials ---------------------------------------------------------------------------------------------

/// A username and password a client logs in with.
#[derive(Clone)]
struct Creds {
    kind: &'static str,
    username: String,
    password: String,
}

impl Creds {
    fn joined(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

/// Group `g` and registry `realacr`; the bootstrap owner's client credentials and its refresh-token login.
async fn setup(ts: &TestServer) -> [Creds; 2] {
    let owner = ts.owner_token().await.unwrap();
    let (status, body) = call(
        ts,
        Method::PUT,
        &group_path(ts, "g"),
        Some(&owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        ts,
        Method::PUT,
        &registry_path(ts, "g", REGISTRY),
        Some(&owner),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["loginServer"], format!("{}/{REGISTRY}", ts.local_addr));

    let entra = ts
        .token_for(&ts.client_id, &ts.client_secret, "https://containerregistry.azure.net/.default")
        .await
        .unwrap();
    let refresh = exchange(ts, &entra).await;
    [
        Creds {
            kind: "principal",
            username: ts.client_id.clone(),
            password: ts.client_secret.clone(),
        },
        Creds { kind: "refresh-token", username: NULL_GUID.to_string(), password: refresh },
    ]
}

/// `POST /oauth2/exchange`: an Entra access token for the registry becomes a registry refresh token.
async fn exchange(ts: &TestServer, entra: &str) -> String {
    let response = ts
        .http
        .post(ts.url("/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &format!("{}/{REGISTRY}", ts.local_addr)),
            ("tenant", &ts.tenant_id),
            ("access_token", entra),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["refresh_token"].as_str().expect("a refresh token").to_string()
}

/// A manifest or blob as berth serves it, read with the owner's Basic credentials.
async fn fetch(ts: &TestServer, repository: &str, kind: &str, reference: &str) -> (u16, Vec<u8>) {
    let response = ts
        .http
        .get(ts.url(&format!("/v2/{REGISTRY}/{repository}/{kind}/{reference}")))
        .basic_auth(&ts.client_id, Some(&ts.client_secret))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

// --- test images ---------------------------------------------------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// Deterministic incompressible bytes.
fn noise(seed: u32, len: usize) -> Vec<u8> {
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

/// A gzip'd tar layer; returns the compressed bytes and the diff id (digest of the tar).
fn layer(entries: &[(&str, Vec<u8>)]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_767_225_600);
        header.set_uid(0);
        header.set_gid(0);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, path, std::io::empty()).unwrap();
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, path, bytes.as_slice()).unwrap();
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), sha256(&tar))
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("a gzip stream");
    out
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// One image: config, layers (with diff ids) and manifest.
struct Image {
    arch: &'static str,
    config: Vec<u8>,
    layers: Vec<(Vec<u8>, String)>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(arch: &'static str, name: &str, big: usize) -> Image {
        let layers = vec![
            layer(&[
                ("etc/", Vec::new()),
                ("etc/berth-release", b"NAME=berth-test\nVERSION=1\n".to_vec()),
                ("bin/", Vec::new()),
                ("bin/hello.sh", b"#!/bin/sh\necho hello from berth\n".to_vec()),
            ]),
            layer(&[
                ("data/", Vec::new()),
                (&format!("data/{name}-{arch}.bin"), noise(big as u32 ^ arch.len() as u32, big)),
            ]),
            layer(&[
                ("usr/", Vec::new()),
                ("usr/share/", Vec::new()),
                ("usr/share/doc/", Vec::new()),
                ("usr/share/doc/berth/", Vec::new()),
                (
                    &format!("usr/share/doc/berth/{name}.txt"),
                    format!("{name} for {arch}\n").repeat(2000).into_bytes(),
                ),
            ]),
        ];
        let mut config = json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/hello.sh"], "Labels": {"name": name}},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()},
        });
        if arch == "arm64" {
            config["variant"] = json!("v8");
        }
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layers.iter().map(|(l, _)| descriptor(OCI_LAYER_GZIP, l)).collect::<Vec<_>>(),
            "annotations": {"org.opencontainers.image.title": name},
        }))
        .unwrap();
        Image { arch, config, layers, manifest }
    }

    fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|(_, d)| d.clone()).collect()
    }

    fn blobs(&self) -> Vec<&[u8]> {
        let mut blobs = vec![self.config.as_slice(), self.manifest.as_slice()];
        blobs.extend(self.layers.iter().map(|(l, _)| l.as_slice()));
        blobs
    }
}

/// The test content: tag `v1` (a three-layer amd64 image) and tag `multi` (an index of amd64 and arm64 images).
struct Content {
    single: Image,
    platforms: Vec<Image>,
    index: Vec<u8>,
}

impl Content {
    fn new() -> Content {
        let single = Image::new("amd64", "single", 700 * 1024);
        let platforms = vec![
            Image::new("amd64", "multi", 300 * 1024),
            Image::new("arm64", "multi", 400 * 1024),
        ];
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": platforms.iter().map(|image| {
                let mut d = descriptor(OCI_MANIFEST, &image.manifest);
                d["platform"] = if image.arch == "arm64" {
                    json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
                } else {
                    json!({"architecture": image.arch, "os": "linux"})
                };
                d
            }).collect::<Vec<_>>(),
        }))
        .unwrap();
        Content { single, platforms, index }
    }

    fn platform(&self, arch: &str) -> &Image {
        self.platforms.iter().find(|i| i.arch == arch).unwrap()
    }

    /// Every blob of tag `v1` or of tag `multi`, keyed by digest.
    fn blobs(&self, tag: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let images: Vec<&Image> =
            if tag == "v1" { vec![&self.single] } else { self.platforms.iter().collect() };
        for image in images {
            for blob in image.blobs() {
                out.insert(sha256(blob), blob.to_vec());
            }
        }
        if tag == "multi" {
            out.insert(sha256(&self.index), self.index.clone());
        }
        out
    }

    /// An OCI image layout holding both tags.
    fn write_layout(&self, dir: &Path) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for tag in ["v1", "multi"] {
            for (digest, bytes) in self.blobs(tag) {
                let hex = digest.strip_prefix("sha256:").unwrap();
                std::fs::write(dir.join("blobs/sha256").join(hex), bytes).unwrap();
            }
        }
        let mut single = descriptor(OCI_MANIFEST, &self.single.manifest);
        single["annotations"] = json!({REF_NAME: "v1"});
        let mut multi = descriptor(OCI_INDEX, &self.index);
        multi["annotations"] = json!({REF_NAME: "multi"});
        let index =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [single, multi]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// Reads a layout a client wrote: the digest each tag names, and every blob (each checked against its name).
fn read_layout(dir: &Path) -> (BTreeMap<String, String>, BTreeMap<String, Vec<u8>>) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut tags = BTreeMap::new();
    for entry in index["manifests"].as_array().unwrap() {
        if let Some(tag) = entry["annotations"][REF_NAME].as_str() {
            tags.insert(tag.to_string(), entry["digest"].as_str().unwrap().to_string());
        }
    }
    let mut blobs = BTreeMap::new();
    for file in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let file = file.unwrap();
        let digest = format!("sha256:{}", file.file_name().to_string_lossy());
        let bytes = std::fs::read(file.path()).unwrap();
        assert_eq!(sha256(&bytes), digest, "a pulled blob's bytes match its name");
        blobs.insert(digest, bytes);
    }
    (tags, blobs)
}

// --- skopeo --------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_images_and_indexes() {
    let ts = TestServer::start().await.unwrap();
    let sandbox = Sandbox::new(&ts);
    match sandbox.probe("skopeo", &["--version"]).await {
        Ok(version) => eprintln!("using {version}"),
        Err(reason) => return unavailable("skopeo", &reason),
    }
    let creds = setup(&ts).await;
    let content = Content::new();
    let layout = sandbox.arg("layout");
    content.write_layout(Path::new(&layout));
    let (policy, certs) = (sandbox.arg("policy.json"), sandbox.arg("certs"));

    for creds in &creds {
        let repository = format!("{}/app", creds.kind);
        let image = format!("docker://{}", sandbox.reference(&repository));
        let (login, secret) = (creds.joined(), [creds.password.as_str()]);
        let skopeo = |line: String| sandbox.line("skopeo", &line, &secret);

        // Push the three-layer image, then the index with both platforms; digests unchanged.
        let push = format!("--policy {policy} copy --preserve-digests --dest-cert-dir {certs} --dest-creds {login}");
        sandbox.ok(skopeo(format!("{push} oci:{layout}:v1 {image}:v1")), &[]).await;
        sandbox.ok(skopeo(format!("{push} --all oci:{layout}:multi {image}:multi")), &[]).await;

        // What berth stores is what was pushed, byte for byte.
        let read = format!("--cert-dir {certs} --creds {login}");
        for (tag, bytes) in [("v1", &content.single.manifest), ("multi", &content.index)] {
            let raw = sandbox.ok(skopeo(format!("inspect --raw {read} {image}:{tag}")), &[]).await;
            assert_eq!(raw.as_bytes(), bytes.as_slice(), "skopeo inspect --raw {tag}");
            for (digest, bytes) in content.blobs(tag) {
                let is_manifest =
                    serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v["schemaVersion"] == 2);
                let kind = if is_manifest { "manifests" } else { "blobs" };
                let (status, served) = fetch(&ts, &repository, kind, &digest).await;
                assert_eq!((status, served == bytes), (200, true), "{kind}/{digest} of {tag}");
            }
        }
        let config =
            sandbox.ok(skopeo(format!("inspect --config --raw {read} {image}:v1")), &[]).await;
        assert_eq!(config.as_bytes(), content.single.config.as_slice());
        // Platform selection through the index.
        let arm =
            format!("--override-arch arm64 --override-variant v8 inspect {read} {image}:multi");
        let arm: Value = serde_json::from_str(&sandbox.ok(skopeo(arm), &[]).await).unwrap();
        let arm64 = content.platform("arm64");
        assert_eq!(arm["Architecture"], "arm64");
        let layers: Vec<String> = arm64.layers.iter().map(|(l, _)| sha256(l)).collect();
        assert_eq!(arm["Layers"], json!(layers), "{arm}");

        let tags = sandbox.ok(skopeo(format!("list-tags {read} {image}")), &[]).await;
        let tags: Value = serde_json::from_str(&tags).unwrap();
        assert_eq!(tags["Tags"], json!(["multi", "v1"]), "{tags}");

        // Pull both back into a fresh layout: same manifest digests, every blob present and intact.
        let out = sandbox.arg(&format!("pulled-{}", creds.kind));
        let pull = format!(
            "--policy {policy} copy --preserve-digests --src-cert-dir {certs} --src-creds {login}"
        );
        sandbox.ok(skopeo(format!("{pull} {image}:v1 oci:{out}:v1")), &[]).await;
        sandbox.ok(skopeo(format!("{pull} --all {image}:multi oci:{out}:multi")), &[]).await;
        let (tags, blobs) = read_layout(Path::new(&out));
        assert_eq!(tags["v1"], sha256(&content.single.manifest));
        assert_eq!(tags["multi"], sha256(&content.index));
        for tag in ["v1", "multi"] {
            for digest in content.blobs(tag).keys() {
                assert!(blobs.contains_key(digest), "{digest} of {tag} was pulled");
            }
        }
    }

    // Wrong credentials are refused, and without the CA the server's certificate is not trusted.
    let image = format!("docker://{}:v1", sandbox.reference("principal/app"));
    let bad = sandbox.line(
        "skopeo",
        &format!("inspect --raw --cert-dir {certs} --creds {}:wrong {image}", ts.client_id),
        &[],
    );
    let output = sandbox.run(&bad, &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("unauthorized"), "{bad}: {stderr}");
    let untrusted = sandbox.line(
        "skopeo",
        &format!("inspect --raw --creds {} {image}", creds[0].joined()),
        &[&creds[0].password],
    );
    let output = sandbox.run(&untrusted, &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("certificate"), "{untrusted}: {stderr}");
    ts.shutdown().await.unwrap();
}

// --- podman --------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pushes_and_pulls_images_and_platforms() {
    let ts = TestServer::start().await.unwrap();
    let sandbox = Sandbox::new(&ts);
    let global = format!(
        "--root {} --runroot {} --storage-driver vfs --tmpdir {} --events-backend none",
        sandbox.arg("podman/root"),
        sandbox.runroot.path().display(),
        sandbox.arg("podman/tmp")
    );
    match sandbox.probe("podman", &["--version"]).await {
        Ok(version) => eprintln!("using {version}"),
        Err(reason) => return unavailable("podman", &reason),
    }
    // podman is installed; whether it can run in this sandbox (storage, namespaces) is a property of the machine.
    let info = format!("{global} info --format {{{{.Store.GraphDriverName}}}}");
    if let Err(reason) = sandbox.probe("podman", &info.split(' ').collect::<Vec<_>>()).await {
        eprintln!("SKIPPED: podman is installed but cannot run in this sandbox: {reason}");
        return;
    }
    // The index is pushed with skopeo (podman cannot push an index from an OCI layout).
    if let Err(reason) = sandbox.probe("skopeo", &["--version"]).await {
        return unavailable("skopeo", &reason);
    }
    let creds = setup(&ts).await;
    let content = Content::new();
    let layout = sandbox.arg("layout");
    content.write_layout(Path::new(&layout));
    let (policy, certs) = (sandbox.arg("policy.json"), sandbox.arg("certs"));

    for creds in &creds {
        let (login, secret) = (creds.joined(), [creds.password.as_str()]);
        let podman = |line: String| sandbox.line("podman", &format!("{global} {line}"), &secret);
        let remote = format!("--signature-policy {policy} --cert-dir {certs} --creds {login}");
        let pushed = sandbox.reference(&format!("{}/podman", creds.kind));
        let config_hex = sha256(&content.single.config).trim_start_matches("sha256:").to_string();

        // Load the three-layer image from the layout, push it, forget it, pull it back through berth.
        let loaded = podman(format!("pull --signature-policy {policy} oci:{layout}:v1"));
        let loaded = sandbox.ok(loaded, &[]).await;
        assert_eq!(
            loaded.trim().lines().last(),
            Some(config_hex.as_str()),
            "the image id is the config digest"
        );
        let push = format!("push {remote} --format oci {config_hex} docker://{pushed}:v1");
        sandbox.ok(podman(push), &[]).await;
        sandbox.ok(podman(format!("rmi --force {config_hex}")), &[]).await;
        let pulled = sandbox.ok(podman(format!("pull {remote} {pushed}:v1")), &[]).await;
        assert_eq!(pulled.trim().lines().last(), Some(config_hex.as_str()));
        let layers = podman(format!("image inspect --format {{{{.RootFS.Layers}}}} {pushed}:v1"));
        let layers = sandbox.ok(layers, &[]).await;
        assert_eq!(layers.trim(), format!("[{}]", content.single.diff_ids().join(" ")));

        // podman compressed the layers itself: what berth holds must unpack to the same diff ids.
        let repository = format!("{}/podman", creds.kind);
        let (status, manifest) = fetch(&ts, &repository, "manifests", "v1").await;
        assert_eq!(status, 200);
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], sha256(&content.single.config));
        let pushed_layers = manifest["layers"].as_array().unwrap();
        assert_eq!(pushed_layers.len(), 3);
        for (descriptor, diff_id) in pushed_layers.iter().zip(content.single.diff_ids()) {
            let digest = descriptor["digest"].as_str().unwrap();
            let (status, bytes) = fetch(&ts, &repository, "blobs", digest).await;
            assert_eq!((status, sha256(&bytes).as_str()), (200, digest));
            let gzipped = descriptor["mediaType"].as_str().unwrap().ends_with("gzip");
            assert_eq!(sha256(&if gzipped { gunzip(&bytes) } else { bytes }), diff_id);
        }

        // The multi-platform index: each platform pulls its own image.
        let index = sandbox.reference(&format!("{}/app", creds.kind));
        let copy = format!("--policy {policy} copy --all --preserve-digests --dest-cert-dir {certs} --dest-creds {login} oci:{layout}:multi docker://{index}:multi");
        sandbox.ok(sandbox.line("skopeo", &copy, &secret), &[]).await;
        for (arch, platform) in [("arm64", "linux/arm64/v8"), ("amd64", "linux/amd64")] {
            let image = content.platform(arch);
            let id = sandbox
                .ok(podman(format!("pull {remote} --platform {platform} {index}:multi")), &[])
                .await;
            let config_hex = sha256(&image.config).trim_start_matches("sha256:").to_string();
            assert_eq!(id.trim().lines().last(), Some(config_hex.as_str()), "{platform}");
            let inspect = format!(
                "image inspect --format {{{{.Architecture}}}}/{{{{.RootFS.Layers}}}} {config_hex}"
            );
            let inspected = sandbox.ok(podman(inspect), &[]).await;
            assert_eq!(inspected.trim(), format!("{arch}/[{}]", image.diff_ids().join(" ")));
        }
        sandbox.ok(podman("rmi --all --force".to_string()), &[]).await;
    }
    ts.shutdown().await.unwrap();
}

// --- oras-py -------------------------------------------------------------------------------------------------

/// Pushes two files as an artifact, pulls them into `out/`, lists the tags; prints what it saw as JSON.
///
/// oras-py's default token backend keeps the first token it was given and answers every later 401 with it again
/// (it asks anew only on 403). A push starts with a HEAD, whose challenge asks for `pull` only, so its next POST
/// fails on every registry that grants exactly the scope asked for (ACR, distribution's token auth, berth). The
/// push therefore uses oras-py's Basic backend, which sends every request without credentials first and again with
/// them after the 401 (so a 401 to a 1.5 MiB blob PUT must reach the client, not a reset connection); pulls and tags
/// use the token backend, i.e. the challenge and the token service.
const ORAS_SCRIPT: &str = r#"
import json, os, sys
import oras.client

host, target, username, password, work = sys.argv[1:6]
os.chdir(work)
config = os.path.join(work, "docker-config.json")
pusher = oras.client.OrasClient(hostname=host, insecure=False, auth_backend="basic")
pusher.login(username=username, password=password, hostname=host, config_path=config)
pushed = pusher.push(target=target + ":v1", files=["hello.txt", "data.bin"])
second = pusher.push(target=target + ":v2", files=["hello.txt"])
client = oras.client.OrasClient(hostname=host, insecure=False)
client.login(username=username, password=password, hostname=host, config_path=config)
pulled = client.pull(target=target + ":v1", outdir="out")
tags = client.get_tags(target)
print(json.dumps({
    "push_status": [pushed.status_code, second.status_code],
    "digest": pushed.headers.get("Docker-Content-Digest"),
    "pulled": sorted(os.path.relpath(p, work) for p in pulled),
    "tags": tags,
}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_py_pushes_and_pulls_artifacts() {
    let ts = TestServer::start().await.unwrap();
    let sandbox = Sandbox::new(&ts);
    let python = python();
    match sandbox
        .probe(
            &python,
            &["-c", "import oras.client, oras.version; print('oras-py', oras.version.__version__)"],
        )
        .await
    {
        Ok(version) => eprintln!("using {version}"),
        Err(reason) => {
            return unavailable(
                "oras-py (PyPI `oras`)",
                &format!("{reason} (python: {python}, from BERTH_TEST_PYTHON)"),
            )
        }
    }
    let creds = setup(&ts).await;
    let script = sandbox.path("oras_round_trip.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let hello = b"hello from oras-py\n".to_vec();
    let data = noise(7, 1536 * 1024);
    let ca = ts.ca_pem_path.display().to_string();

    for creds in &creds {
        let work = sandbox.path(&format!("oras-{}", creds.kind));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("hello.txt"), &hello).unwrap();
        std::fs::write(work.join("data.bin"), &data).unwrap();
        let repository = format!("{}/artifact", creds.kind);
        let target = sandbox.reference(&repository);
        let out = sandbox
            .ok(
                sandbox.cmd(
                    &python,
                    &[
                        &script.display().to_string(),
                        &sandbox.host,
                        &target,
                        &creds.username,
                        &creds.password,
                        &work.display().to_string(),
                    ],
                    &[&creds.password],
                ),
                &[("REQUESTS_CA_BUNDLE", &ca)],
            )
            .await;
        let report: Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("oras script output is not JSON ({e}): {out}"));
        assert_eq!(report["push_status"], json!([201, 201]), "{report}");
        assert_eq!(report["pulled"], json!(["out/data.bin", "out/hello.txt"]), "{report}");
        let mut tags: Vec<String> = serde_json::from_value(report["tags"].clone()).unwrap();
        tags.sort();
        assert_eq!(tags, ["v1", "v2"]);
        assert_eq!(std::fs::read(work.join("out/hello.txt")).unwrap(), hello);
        assert_eq!(std::fs::read(work.join("out/data.bin")).unwrap(), data);

        // berth holds the artifact as pushed: the files are its layers, byte for byte.
        let (status, manifest_bytes) = fetch(&ts, &repository, "manifests", "v1").await;
        assert_eq!(status, 200);
        if let Some(digest) = report["digest"].as_str() {
            assert_eq!(digest, sha256(&manifest_bytes));
        }
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        let mut titles = BTreeMap::new();
        for layer in layers {
            titles.insert(
                layer["annotations"]["org.opencontainers.image.title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                layer["digest"].as_str().unwrap().to_string(),
            );
        }
        assert_eq!(titles["hello.txt"], sha256(&hello));
        assert_eq!(titles["data.bin"], sha256(&data));
        let (status, served) = fetch(&ts, &repository, "blobs", &sha256(&data)).await;
        assert_eq!((status, served == data), (200, true));
    }
    ts.shutdown().await.unwrap();
}

// --- ABAC with skopeo ----------------------------------------------------------------------------------------

/// An ABAC-mode registry: a principal holding Container Registry Repository Writer with a condition on the
/// `team-a/` prefix pushes and pulls `team-a/app` with skopeo, and is refused `team-b/app` both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_abac_condition_on_repository_prefix() {
    use crate::rbac::{assign, rg_scope, service_principal, REPO_WRITER, TEAM_A_CONDITION};
    const REPO_CONTRIBUTOR: &str = "2efddaa5-3f1f-4df3-97df-af3f13818f4c";
    let ts = TestServer::start().await.unwrap();
    let sandbox = Sandbox::new(&ts);
    match sandbox.probe("skopeo", &["--version"]).await {
        Ok(version) => eprintln!("using {version}"),
        Err(reason) => return unavailable("skopeo", &reason),
    }
    let owner = ts.owner_token().await.unwrap();
    let (status, body) = call(
        &ts,
        Method::PUT,
        &group_path(&ts, "g"),
        Some(&owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &ts,
        Method::PUT,
        &registry_path(&ts, "g", REGISTRY),
        Some(&owner),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"roleAssignmentMode": "AbacRepositoryPermissions"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let team_a = service_principal(&ts, &owner, "team-a-ci").await;
    let admin = service_principal(&ts, &owner, "registry-admin").await;
    assert_eq!(
        assign(
            &ts,
            &owner,
            &rg_scope(&ts, "g"),
            &team_a.object_id,
            REPO_WRITER,
            Some(TEAM_A_CONDITION)
        )
        .await
        .0,
        201
    );
    assert_eq!(
        assign(
            &ts,
            &owner,
            &registry_path(&ts, "g", REGISTRY),
            &admin.object_id,
            REPO_CONTRIBUTOR,
            None
        )
        .await
        .0,
        201
    );

    let content = Content::new();
    let layout = sandbox.arg("layout");
    content.write_layout(Path::new(&layout));
    let (policy, certs) = (sandbox.arg("policy.json"), sandbox.arg("certs"));
    let team_login = format!("{}:{}", team_a.app_id, team_a.secret);
    let admin_login = format!("{}:{}", admin.app_id, admin.secret);
    let secrets = [team_a.secret.as_str(), admin.secret.as_str()];
    let skopeo = |line: String| sandbox.line("skopeo", &line, &secrets);
    let push = |login: &str, repository: &str| {
        format!(
            "--policy {policy} copy --preserve-digests --dest-cert-dir {certs} --dest-creds {login} oci:{layout}:v1 docker://{}:v1",
            sandbox.reference(repository)
        )
    };
    let pull = |login: &str, repository: &str, out: &str| {
        format!(
            "--policy {policy} copy --preserve-digests --src-cert-dir {certs} --src-creds {login} docker://{}:v1 oci:{}:v1",
            sandbox.reference(repository),
            sandbox.arg(out)
        )
    };

    // Allowed: team-a/app, both ways, byte for byte.
    sandbox.ok(skopeo(push(&team_login, "team-a/app")), &[]).await;
    sandbox.ok(skopeo(pull(&team_login, "team-a/app", "pulled-a")), &[]).await;
    let (tags, _) = read_layout(&sandbox.path("pulled-a"));
    assert_eq!(tags["v1"], sha256(&content.single.manifest));

    // Denied: pushing team-b/app; pulling team-b/app that someone else pushed.
    let denied = skopeo(push(&team_login, "team-b/app"));
    let output = sandbox.run(&denied, &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(!output.status.success(), "{denied} must fail");
    assert!(
        stderr.contains("unauthorized")
            || stderr.contains("denied")
            || stderr.contains("authentication required"),
        "{denied}: {stderr}"
    );
    sandbox.ok(skopeo(push(&admin_login, "team-b/app")), &[]).await;
    let denied = skopeo(pull(&team_login, "team-b/app", "pulled-b"));
    let output = sandbox.run(&denied, &[]).await.unwrap();
    assert!(
        !output.status.success(),
        "{denied} must fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The owner (Owner at the subscription) gets no data-plane access in ABAC mode.
    let owner_login = format!("{}:{}", ts.client_id, ts.client_secret);
    let denied = sandbox.line(
        "skopeo",
        &pull(&owner_login, "team-a/app", "pulled-owner"),
        &[&ts.client_secret],
    );
    let output = sandbox.run(&denied, &[]).await.unwrap();
    assert!(!output.status.success(), "{denied} must fail");
    ts.shutdown().await.unwrap();
}

// --- Scenario 2 with skopeo -----------------------------------------------------------------------------------

/// The second source document: a user-assigned identity, assigned to the registry (`az acr identity assign`), with
/// AcrPull at resource-group scope. Its token comes from the registry's workload endpoint (no secret of its own),
/// is exchanged for a refresh token, and logs skopeo in as `00000000-…`: it pulls and cannot push; with AcrPush
/// it pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_scenario_two_user_assigned_identity_pulls_then_pushes_with_acr_push() {
    use crate::rbac::{assign, rg_scope, ACR_PULL, ACR_PUSH};
    use crate::workloads::{app_service, create_identity, identity_path, register};
    let ts = TestServer::start().await.unwrap();
    let sandbox = Sandbox::new(&ts);
    match sandbox.probe("skopeo", &["--version"]).await {
        Ok(version) => eprintln!("using {version}"),
        Err(reason) => return unavailable("skopeo", &reason),
    }
    let [owner_creds, _] = setup(&ts).await;
    let owner = ts.owner_token().await.unwrap();

    // az identity create --resource-group $RG --name $MI
    let (principal, client_id) = create_identity(&ts, &owner, "g", "mi1").await;
    // az acr identity assign --name $ACR --identities $MI --resource-group $RG
    let registry = registry_path(&ts, "g", REGISTRY);
    let (status, body) = call(
        &ts,
        Method::PATCH,
        &registry,
        Some(&owner),
        Some(json!({"identity": {"type": "UserAssigned",
                                 "userAssignedIdentities": {identity_path(&ts, "g", "mi1"): {}}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // az role assignment create --assignee $PRINCIPAL_ID --role AcrPull --scope /subscriptions/$SUB/resourceGroups/$RG
    let (status, body) = assign(&ts, &owner, &rg_scope(&ts, "g"), &principal, ACR_PULL, None).await;
    assert_eq!(status, 201, "{body}");

    // The identity's token, as the registry's workload asks for it, then the refresh token.
    let workload = register(&ts, &owner, &registry).await;
    let (status, token) = app_service(
        &ts,
        &workload.remote_identity_endpoint,
        Some(&workload.header),
        &[("resource", "https://containerregistry.azure.net"), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let refresh = exchange(&ts, token["access_token"].as_str().unwrap()).await;
    let identity_login = format!("{NULL_GUID}:{refresh}");

    let content = Content::new();
    let layout = sandbox.arg("layout");
    content.write_layout(Path::new(&layout));
    let (policy, certs) = (sandbox.arg("policy.json"), sandbox.arg("certs"));
    let secrets = [refresh.as_str(), owner_creds.password.as_str()];
    let skopeo = |line: String| sandbox.line("skopeo", &line, &secrets);
    let push = |login: &str, tag: &str| {
        format!(
            "--policy {policy} copy --preserve-digests --dest-cert-dir {certs} --dest-creds {login} oci:{layout}:v1 docker://{}:{tag}",
            sandbox.reference("team/app")
        )
    };
    let pull = |login: &str, out: &str| {
        format!(
            "--policy {policy} copy --preserve-digests --src-cert-dir {certs} --src-creds {login} docker://{}:v1 oci:{}:v1",
            sandbox.reference("team/app"),
            sandbox.arg(out)
        )
    };

    // The owner publishes; the identity pulls it byte for byte.
    sandbox.ok(skopeo(push(&owner_creds.joined(), "v1")), &[]).await;
    sandbox.ok(skopeo(pull(&identity_login, "pulled")), &[]).await;
    let (tags, _) = read_layout(&sandbox.path("pulled"));
    assert_eq!(tags["v1"], sha256(&content.single.manifest));

    // AcrPull does not push.
    let denied = skopeo(push(&identity_login, "v2"));
    let output = sandbox.run(&denied, &[]).await.unwrap();
    assert!(!output.status.success(), "{denied} must fail");
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(
        stderr.contains("unauthorized")
            || stderr.contains("denied")
            || stderr.contains("authentication required"),
        "{denied}: {stderr}"
    );
    assert_eq!(fetch(&ts, "team/app", "manifests", "v2").await.0, 404, "nothing was pushed");

    // With AcrPush at the group the same login pushes: refresh tokens carry no rights, each access token is
    // granted afresh.
    let (status, body) = assign(&ts, &owner, &rg_scope(&ts, "g"), &principal, ACR_PUSH, None).await;
    assert_eq!(status, 201, "{body}");
    sandbox.ok(skopeo(push(&identity_login, "v2")), &[]).await;
    let (status, manifest) = fetch(&ts, "team/app", "manifests", "v2").await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&manifest), sha256(&content.single.manifest));
    ts.shutdown().await.unwrap();
}
