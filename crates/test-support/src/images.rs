//! Test images: gzip tar layers built in memory and pushed to a test server's registry through `/v2` as the
//! bootstrap owner (a single-platform image and an index of a linux and a windows image).

use std::io::Write as _;

use berth_oci::Digest;
use serde_json::{json, Value};

use crate::TestServer;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

pub enum Item<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A name written raw into the header (the tar builder refuses `..`; an attacker's tool does not).
    Raw(&'a str, &'a [u8]),
}

pub fn tar_gz(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        match item {
            Item::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
            Item::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            Item::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
            Item::Raw(name, data) => {
                let mut header = tar::Header::new_old();
                header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, *data).unwrap();
            }
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// An access token of the bootstrap owner to push to `registry`.
pub async fn push_token(ts: &TestServer, registry: &str, repository: &str) -> String {
    let url = format!(
        "/oauth2/token?service={}/{registry}&scope=repository:{repository}:pull,push",
        ts.local_addr
    );
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

pub async fn push_blob(ts: &TestServer, repository: &str, token: &str, bytes: &[u8]) {
    let response = ts
        .http
        .post(ts.url(&format!("/v2/{repository}/blobs/uploads/?digest={}", sha256(bytes))))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

pub async fn put_manifest(
    ts: &TestServer,
    repository: &str,
    reference: &str,
    token: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let response = ts
        .http
        .put(ts.url(&format!("/v2/{repository}/manifests/{reference}")))
        .bearer_auth(token)
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// Push an image of `layers` with a config running `args`; returns the manifest bytes.
pub async fn push_image(
    ts: &TestServer,
    repository: &str,
    token: &str,
    layers: &[Vec<u8>],
    args: &[&str],
) -> Vec<u8> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": args, "Env": ["GREETING=hello"], "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    push_blob(ts, repository, token, &config).await;
    for layer in layers {
        push_blob(ts, repository, token, layer).await;
    }
    let descriptor = |media_type: &str, bytes: &[u8]| json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>(),
    }))
    .unwrap();
    put_manifest(ts, repository, &sha256(&manifest), token, OCI_MANIFEST, &manifest).await;
    manifest
}

/// `<registry>/app:v1`: an index of a linux/amd64 image (two layers, the second with whiteouts) and a windows
/// one. Returns (linux manifest digest, windows manifest digest).
pub async fn push_multi_platform(ts: &TestServer, registry: &str) -> (String, String) {
    let repository = format!("{registry}/app");
    let repository = repository.as_str();
    let token = push_token(ts, registry, repository).await;
    let base = tar_gz(&[
        Item::Dir("etc/"),
        Item::File("etc/motd", b"welcome"),
        Item::File("etc/secret", b"to be removed"),
        Item::Dir("var/cache/"),
        Item::File("var/cache/old", b"stale"),
        Item::File("bin/app", b"#!/bin/sh\necho app\n"),
        Item::Symlink("bin/sh", "/bin/busybox"),
    ]);
    let top = tar_gz(&[
        Item::File("etc/.wh.secret", b""),
        Item::File("var/cache/.wh..wh..opq", b""),
        Item::File("var/cache/fresh", b"new"),
        Item::File("srv/index.html", b"<h1>berth</h1>"),
    ]);
    let linux = push_image(ts, repository, &token, &[base, top], &["/bin/app", "--serve"]).await;
    let windows_layer = tar_gz(&[Item::File("Files/app.exe", b"MZ")]);
    let windows = push_image(ts, repository, &token, &[windows_layer], &["C:\\app.exe"]).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256(&windows), "size": windows.len(),
             "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2000"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(&linux), "size": linux.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .unwrap();
    put_manifest(ts, repository, "v1", &token, OCI_INDEX, &index).await;
    (sha256(&linux), sha256(&windows))
}
