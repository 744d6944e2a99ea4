//! The registry data plane (`/v2/`): challenges, pushes and pulls byte for byte, uploads (monolithic, chunked,
//! resumed after a restart), mounts, manifests and indexes, tags, catalog, referrers, deletes, scoped tokens,
//! anonymous pulls, host-mode addressing and bad input.

use berth_oci::Digest;
use berth_test_support::{backends, client_trusting, TestServer};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

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

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("<no OCI error code>").to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One registry request. Every answer must be well formed: never a 5xx, always the API version header.
async fn send_to(
    http: &reqwest::Client,
    url: String,
    method: Method,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let mut request = http.request(method.clone(), &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
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
    assert_eq!(
        headers.get("docker-distribution-api-version").map(|v| v.to_str().unwrap()),
        Some("registry/2.0"),
        "{method} {url}"
    );
    Resp { status, headers, body }
}

async fn send(
    ts: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    send_to(&ts.http, ts.url(path), method, token, headers, body).await
}

async fn get(ts: &TestServer, path: &str, token: Option<&str>) -> Resp {
    send(ts, Method::GET, path, token, &[], None).await
}

fn host(ts: &TestServer) -> String {
    ts.local_addr.to_string()
}

/// Registries `acrone` (private) and `acrtwo` (anonymous pull) in group `g`.
async fn setup(ts: &TestServer) {
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
    for (name, anonymous) in [("acrone", false), ("acrtwo", true)] {
        let body = json!({"location": "westeurope", "sku": {"name": "Standard"},
            "properties": {"anonymousPullEnabled": anonymous}});
        let (status, body) =
            call(ts, Method::PUT, &registry_path(ts, "g", name), Some(&owner), Some(body)).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// An access token of the bootstrap owner for `scopes`, from the token endpoint with Basic credentials.
async fn access_token(ts: &TestServer, registry: &str, scopes: &[&str]) -> String {
    let mut url = format!("/oauth2/token?service={}/{registry}", host(ts));
    for scope in scopes {
        url.push_str(&format!("&scope={scope}"));
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

/// The `key="value"` parameters of a `WWW-Authenticate: Bearer ...` challenge.
fn challenge_params(value: &str) -> Vec<(String, String)> {
    let rest = value.strip_prefix("Bearer ").expect("a Bearer challenge");
    rest.split("\",")
        .map(|part| {
            let (key, value) = part.split_once("=\"").expect("key=\"value\"");
            (key.trim().to_string(), value.trim_end_matches('"').to_string())
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// Deterministic pseudo-random bytes.
fn blob(seed: u8, len: usize) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
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

/// An image manifest (pretty-printed, so byte-for-byte storage shows) over a config and layers.
fn image_manifest(config: &[u8], layers: &[&[u8]], extra: Value) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>(),
    });
    if let (Some(object), Value::Object(extra)) = (manifest.as_object_mut(), extra) {
        object.extend(extra);
    }
    serde_json::to_vec_pretty(&manifest).unwrap()
}

/// Monolithic upload: `POST ?digest=` with the body.
async fn push_blob(ts: &TestServer, name: &str, token: &str, bytes: &[u8]) {
    let r = send(
        ts,
        Method::POST,
        &format!("/v2/{name}/blobs/uploads/?digest={}", sha256(bytes)),
        Some(token),
        &[("content-type", "application/octet-stream")],
        Some(bytes.to_vec()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), format!("/v2/{name}/blobs/{}", sha256(bytes)));
    assert_eq!(r.header("docker-content-digest"), sha256(bytes));
}

async fn put_manifest(
    ts: &TestServer,
    name: &str,
    reference: &str,
    token: &str,
    media_type: &str,
    bytes: &[u8],
) -> Resp {
    send(
        ts,
        Method::PUT,
        &format!("/v2/{name}/manifests/{reference}"),
        Some(token),
        &[("content-type", media_type)],
        Some(bytes.to_vec()),
    )
    .await
}

/// Push a small one-layer image and tag it; returns the manifest bytes.
async fn push_image(ts: &TestServer, name: &str, tag: &str, token: &str, seed: u8) -> Vec<u8> {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = blob(seed, 1000 + usize::from(seed));
    push_blob(ts, name, token, &config).await;
    push_blob(ts, name, token, &layer).await;
    let manifest = image_manifest(&config, &[&layer], json!({}));
    let r = put_manifest(ts, name, tag, token, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status, 201, "{}", r.text());
    manifest
}

#[tokio::test]
async fn challenges_lead_to_tokens_that_work() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let realm = format!("{}/oauth2/token", ts.endpoint);

        // The base check: a challenge without a scope, for the server host.
        let r = get(&ts, "/v2/", None).await;
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "realm"), Some(realm.as_str()));
        assert_eq!(param(&params, "service"), Some(host(&ts).as_str()));
        assert_eq!(param(&params, "scope"), None);
        let r = send(&ts, Method::HEAD, "/v2/", None, &[], None).await;
        assert_eq!(r.status, 401);

        // A repository: the scope names the full name and the action.
        let r = get(&ts, "/v2/acrone/team/app/tags/list", None).await;
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
        let params = challenge_params(r.header("www-authenticate"));
        let service = format!("{}/acrone", host(&ts));
        assert_eq!(param(&params, "service"), Some(service.as_str()));
        assert_eq!(param(&params, "scope"), Some("repository:acrone/team/app:pull"));
        assert_eq!(r.json()["errors"][0]["detail"][0]["Name"], "acrone/team/app");
        // A push asks for pull and push.
        let r =
            send(&ts, Method::POST, "/v2/acrone/team/app/blobs/uploads/", None, &[], None).await;
        assert_eq!(r.status, 401);
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "scope"), Some("repository:acrone/team/app:pull,push"));
        // An unknown registry is not revealed without credentials.
        let r = get(&ts, "/v2/nosuchacr/app/tags/list", None).await;
        assert_eq!(r.status, 401);

        // Follow the challenge like a client: the token endpoint with the challenge's service and scope.
        let response = ts
            .http
            .get(format!("{realm}?service={service}&scope=repository:acrone/team/app:pull,push"))
            .basic_auth(&ts.client_id, Some(&ts.client_secret))
            .send()
            .await
            .unwrap();
        let access =
            response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
        let r = get(&ts, "/v2/acrone/team/app/tags/list", Some(&access)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"), "nothing pushed yet");
        push_image(&ts, "acrone/team/app", "v1", &access, 1).await;
        let r = get(&ts, "/v2/acrone/team/app/tags/list", Some(&access)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"name": "acrone/team/app", "tags": ["v1"]}));

        // The base check with a token from its own challenge (service = server host).
        let base_token = {
            let url = format!("{realm}?service={}", host(&ts));
            let response = ts
                .http
                .get(url)
                .basic_auth(&ts.client_id, Some(&ts.client_secret))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        };
        let r = get(&ts, "/v2/", Some(&base_token)).await;
        assert_eq!((r.status, r.json()), (200, json!({})));
        let r = get(&ts, "/v2", Some(&base_token)).await;
        assert_eq!(r.status, 200);

        // `/<registry>/v2/`: where `az acr login` probes a path-mode login server.
        let r = get(&ts, "/acrone/v2/", None).await;
        assert_eq!(r.status, 401);
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "service"), Some(service.as_str()));
        assert_eq!(param(&params, "scope"), None);
        let r = get(&ts, "/acrone/v2/", Some(&access)).await;
        assert_eq!((r.status, r.json()), (200, json!({})));
        // Valid credentials learn that a registry does not exist.
        let r = get(&ts, "/nosuchacr/v2/", Some(&base_token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        let r = get(&ts, "/v2/nosuchacr/app/tags/list", Some(&base_token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));

        // Basic credentials straight on /v2: a client id and secret, or the null GUID and a refresh token.
        let r = ts
            .http
            .get(ts.url("/v2/acrone/team/app/tags/list"))
            .basic_auth(&ts.client_id, Some(&ts.client_secret))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = ts
            .http
            .get(ts.url("/v2/acrone/team/app/tags/list"))
            .basic_auth(&ts.client_id, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let refresh = {
            let url = format!("{realm}?service={service}&offline_token=true");
            let response = ts
                .http
                .get(url)
                .basic_auth(&ts.client_id, Some(&ts.client_secret))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string()
        };
        let r = ts
            .http
            .get(ts.url("/v2/acrone/team/app/manifests/v1"))
            .basic_auth("00000000-0000-0000-0000-000000000000", Some(&refresh))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = ts
            .http
            .get(ts.url("/v2/"))
            .basic_auth("00000000-0000-0000-0000-000000000000", Some(&refresh))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    })
    .await;
}

#[tokio::test]
async fn push_and_pull_a_multi_layer_image_byte_for_byte() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/library/app";
        let token = access_token(&ts, "acrone", &[&format!("repository:{name}:pull,push")]).await;
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let small = blob(1, 4096);
        let chunked = blob(2, 3 * 1024 * 1024 + 17);
        let last_chunk = blob(3, 100_000);

        // Monolithic.
        push_blob(&ts, name, &token, &config).await;
        push_blob(&ts, name, &token, &small).await;

        // Chunked: POST, PATCHes with Content-Range, status, PUT with the last chunk.
        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.header("range"), "0-0");
        let mut location = r.header("location").to_string();
        assert!(location.starts_with(&format!("/v2/{name}/blobs/uploads/")), "{location}");
        assert_eq!(location.rsplit('/').next().unwrap(), r.header("docker-upload-uuid"));
        let mut offset = 0usize;
        for piece in chunked.chunks(1024 * 1024 + 3) {
            let range = format!("{}-{}", offset, offset + piece.len() - 1);
            let r = send(
                &ts,
                Method::PATCH,
                &location,
                Some(&token),
                &[("content-range", &range), ("content-type", "application/octet-stream")],
                Some(piece.to_vec()),
            )
            .await;
            assert_eq!(r.status, 202, "{}", r.text());
            offset += piece.len();
            assert_eq!(r.header("range"), format!("0-{}", offset - 1));
            location = r.header("location").to_string();
        }
        // A chunk out of order is refused with where the upload really stands.
        let r = send(
            &ts,
            Method::PATCH,
            &location,
            Some(&token),
            &[("content-range", "5-9")],
            Some(vec![0; 5]),
        )
        .await;
        assert_eq!((r.status, r.code().as_str()), (416, "RANGE_INVALID"));
        assert_eq!(r.header("range"), format!("0-{}", offset - 1));
        let r = get(&ts, &location, Some(&token)).await;
        assert_eq!(r.status, 204);
        assert_eq!(r.header("range"), format!("0-{}", offset - 1));
        // The blob is not visible before the PUT.
        let whole: Vec<u8> = chunked.iter().chain(&last_chunk).copied().collect();
        let r = send(
            &ts,
            Method::HEAD,
            &format!("/v2/{name}/blobs/{}", sha256(&whole)),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 404);
        let r = send(
            &ts,
            Method::PUT,
            &format!("{location}?digest={}", sha256(&whole)),
            Some(&token),
            &[("content-type", "application/octet-stream")],
            Some(last_chunk.clone()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("location"), format!("/v2/{name}/blobs/{}", sha256(&whole)));
        assert_eq!(r.header("docker-content-digest"), sha256(&whole));
        // The finished session is gone.
        let r = get(&ts, &location, Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));

        // POST then one PUT with the whole body.
        let third = blob(4, 70_000);
        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        let r = send(
            &ts,
            Method::PUT,
            &format!("{}?digest={}", r.header("location"), sha256(&third)),
            Some(&token),
            &[],
            Some(third.clone()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());

        let manifest = image_manifest(
            &config,
            &[&small, &whole, &third],
            json!({"annotations": {"org.example": "x"}}),
        );
        let r = put_manifest(&ts, name, "v1", &token, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let digest = sha256(&manifest);
        assert_eq!(r.header("docker-content-digest"), digest);
        assert_eq!(r.header("location"), format!("/v2/{name}/manifests/{digest}"));
        assert_eq!(r.header("oci-subject"), "");

        // Pull it back: by tag and by digest, HEAD and GET, exactly the pushed bytes.
        for reference in ["v1", digest.as_str()] {
            let r = get(&ts, &format!("/v2/{name}/manifests/{reference}"), Some(&token)).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.body, manifest, "manifest bytes as pushed");
            assert_eq!(r.header("content-type"), OCI_MANIFEST);
            assert_eq!(r.header("docker-content-digest"), digest);
            let r = send(
                &ts,
                Method::HEAD,
                &format!("/v2/{name}/manifests/{reference}"),
                Some(&token),
                &[],
                None,
            )
            .await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-length"), manifest.len().to_string());
            assert_eq!(r.header("docker-content-digest"), digest);
            assert!(r.body.is_empty());
        }
        for layer in [&config, &small, &whole, &third] {
            let path = format!("/v2/{name}/blobs/{}", sha256(layer));
            let r = get(&ts, &path, Some(&token)).await;
            assert_eq!(r.status, 200);
            assert_eq!(&r.body, layer);
            assert_eq!(r.header("docker-content-digest"), sha256(layer));
            assert_eq!(r.header("content-type"), "application/octet-stream");
            let r = send(&ts, Method::HEAD, &path, Some(&token), &[], None).await;
            assert_eq!(
                (r.status, r.header("content-length")),
                (200, layer.len().to_string().as_str())
            );
        }

        // Ranges.
        let path = format!("/v2/{name}/blobs/{}", sha256(&whole));
        let r =
            send(&ts, Method::GET, &path, Some(&token), &[("range", "bytes=100-199")], None).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, whole[100..200]);
        assert_eq!(r.header("content-range"), format!("bytes 100-199/{}", whole.len()));
        let r = send(&ts, Method::GET, &path, Some(&token), &[("range", "bytes=-10")], None).await;
        assert_eq!((r.status, &r.body[..]), (206, &whole[whole.len() - 10..]));
        let r = send(
            &ts,
            Method::GET,
            &path,
            Some(&token),
            &[("range", &format!("bytes={}-", whole.len()))],
            None,
        )
        .await;
        assert_eq!((r.status, r.code().as_str()), (416, "RANGE_INVALID"));
        assert_eq!(r.header("content-range"), format!("bytes */{}", whole.len()));

        // An empty blob works too.
        push_blob(&ts, name, &token, b"").await;
        let r = get(&ts, &format!("/v2/{name}/blobs/{}", sha256(b"")), Some(&token)).await;
        assert_eq!((r.status, r.body.len()), (200, 0));
        // A manifest is also content: readable through the blob endpoint.
        let r = get(&ts, &format!("/v2/{name}/blobs/{digest}"), Some(&token)).await;
        assert_eq!((r.status, &r.body), (200, &manifest));
    })
    .await;
}

#[tokio::test]
async fn multi_platform_index_and_docker_media_types() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/multi";
        let token = access_token(&ts, "acrone", &[&format!("repository:{name}:pull,push")]).await;
        let amd64 = push_image(&ts, name, "amd64", &token, 11).await;
        let windows = push_image(&ts, name, "windows", &token, 12).await;
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": sha256(&amd64), "size": amd64.len(), "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": sha256(&windows), "size": windows.len(),
                 "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1234"}},
            ],
        })).unwrap();
        let r = put_manifest(&ts, name, "latest", &token, OCI_INDEX, &index).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = get(&ts, &format!("/v2/{name}/manifests/latest"), Some(&token)).await;
        assert_eq!((r.status, r.header("content-type")), (200, OCI_INDEX));
        assert_eq!(r.body, index);

        // A child that is not in the repository refuses the index.
        let missing = sha256(b"not a manifest here");
        let bad_index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}]})).unwrap();
        let r = put_manifest(&ts, name, "bad", &token, OCI_INDEX, &bad_index).await;
        assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));

        // Docker schema 2 manifest and manifest list.
        let config = br#"{"docker":true}"#;
        let layer = blob(13, 2000);
        push_blob(&ts, name, &token, config).await;
        push_blob(&ts, name, &token, &layer).await;
        let docker_type = "application/vnd.docker.distribution.manifest.v2+json";
        let docker = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": docker_type,
            "config": descriptor("application/vnd.docker.container.image.v1+json", config),
            "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer)]})).unwrap();
        let r = put_manifest(&ts, name, "docker", &token, docker_type, &docker).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let list_type = "application/vnd.docker.distribution.manifest.list.v2+json";
        let list = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": list_type,
            "manifests": [{"mediaType": docker_type, "digest": sha256(&docker), "size": docker.len(),
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]})).unwrap();
        let r = put_manifest(&ts, name, "docker-list", &token, list_type, &list).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = get(&ts, &format!("/v2/{name}/manifests/docker-list"), Some(&token)).await;
        assert_eq!((r.header("content-type"), &r.body), (list_type, &list));
    })
    .await;
}

#[tokio::test]
async fn a_digest_mismatch_leaves_nothing_visible() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/app";
        let token = access_token(&ts, "acrone", &[&format!("repository:{name}:pull,push")]).await;
        let content = blob(5, 50_000);
        let wrong = sha256(b"something else");

        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/{name}/blobs/uploads/?digest={wrong}"),
            Some(&token),
            &[],
            Some(content.clone()),
        )
        .await;
        assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));

        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        let location = r.header("location").to_string();
        let r = send(&ts, Method::PATCH, &location, Some(&token), &[], Some(content.clone())).await;
        assert_eq!(r.status, 202);
        let r =
            send(&ts, Method::PUT, &format!("{location}?digest={wrong}"), Some(&token), &[], None)
                .await;
        assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
        // The upload is discarded and neither digest names a blob.
        let r = get(&ts, &location, Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
        for digest in [wrong.as_str(), sha256(&content).as_str()] {
            let r = get(&ts, &format!("/v2/{name}/blobs/{digest}"), Some(&token)).await;
            assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
        }
        // PUT without a digest.
        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        let r = send(&ts, Method::PUT, r.header("location"), Some(&token), &[], None).await;
        assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
    })
    .await;
}

#[tokio::test]
async fn manifests_are_validated_and_bad_input_is_a_4xx() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/app";
        let token = access_token(&ts, "acrone", &[&format!("repository:{name}:pull,push,delete")]).await;
        let config = b"{}".to_vec();
        let layer = blob(6, 3000);
        push_blob(&ts, name, &token, &config).await;

        // A layer the repository does not have.
        let manifest = image_manifest(&config, &[&layer], json!({}));
        let r = put_manifest(&ts, name, "v1", &token, OCI_MANIFEST, &manifest).await;
        assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"), "{}", r.text());
        assert_eq!(r.json()["errors"][0]["detail"]["digest"], sha256(&layer));
        // ... nor does a blob of another repository count.
        push_blob(&ts, "acrone/other", &access_token(&ts, "acrone", &["repository:acrone/other:push"]).await, &layer).await;
        let r = put_manifest(&ts, name, "v1", &token, OCI_MANIFEST, &manifest).await;
        assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
        let r = get(&ts, &format!("/v2/{name}/blobs/{}", sha256(&layer)), Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
        let r = get(&ts, &format!("/v2/{name}/manifests/v1"), Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));

        // A foreign layer with urls need not be pushed.
        let foreign = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "digest": sha256(&layer), "size": layer.len(), "urls": ["https://example.com/layer"]}]})).unwrap();
        let r = put_manifest(&ts, name, "foreign", &token, OCI_MANIFEST, &foreign).await;
        assert_eq!(r.status, 201, "{}", r.text());

        // Garbage manifests.
        for (content_type, body) in [
            (OCI_MANIFEST, b"not json".to_vec()),
            (OCI_MANIFEST, b"[]".to_vec()),
            (OCI_MANIFEST, b"{}".to_vec()),
            (OCI_MANIFEST, br#"{"schemaVersion":1}"#.to_vec()),
            (OCI_MANIFEST, br#"{"schemaVersion":2,"config":{"mediaType":"x/y","digest":"sha256:nope","size":1},"layers":[]}"#.to_vec()),
            ("text/plain", foreign.clone()),
            (OCI_INDEX, foreign.clone()),
            ("", Vec::new()),
        ] {
            let r = put_manifest(&ts, name, "bad", &token, content_type, &body).await;
            assert_eq!(r.status, 400, "{content_type} {}: {}", String::from_utf8_lossy(&body), r.text());
            assert_eq!(r.code(), "MANIFEST_INVALID", "{}", String::from_utf8_lossy(&body));
        }
        // PUT by a digest that is not the body's.
        let r = put_manifest(&ts, name, &sha256(b"x"), &token, OCI_MANIFEST, &foreign).await;
        assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
        let r = put_manifest(&ts, name, &sha256(&foreign), &token, OCI_MANIFEST, &foreign).await;
        assert_eq!(r.status, 201);
        // Too large.
        let huge = vec![b' '; berth_oci::MANIFEST_SIZE_LIMIT + 1];
        let r = put_manifest(&ts, name, "huge", &token, OCI_MANIFEST, &huge).await;
        assert_eq!((r.status, r.code().as_str()), (413, "SIZE_INVALID"));

        // Bad names, digests, tags, upload ids, paths and methods.
        let cases: Vec<(Method, String, u16, &str)> = vec![
            (Method::GET, "/v2/acrone/App/tags/list".into(), 400, "NAME_INVALID"),
            (Method::GET, "/v2/acrone/a..b/manifests/latest".into(), 400, "NAME_INVALID"),
            (Method::GET, "/v2/acrone//x/manifests/latest".into(), 400, "NAME_INVALID"),
            (Method::GET, "/v2/acrone/manifests/latest".into(), 400, "NAME_INVALID"),
            (Method::GET, format!("/v2/{name}/blobs/sha256:short"), 400, "DIGEST_INVALID"),
            (Method::GET, format!("/v2/{name}/blobs/md5:{}", "a".repeat(32)), 400, "DIGEST_INVALID"),
            (Method::GET, format!("/v2/{name}/blobs/notadigest"), 400, "DIGEST_INVALID"),
            (Method::HEAD, format!("/v2/{name}/blobs/sha256:{}", "A".repeat(64)), 400, ""),
            (Method::GET, format!("/v2/{name}/blobs/{}", sha256(b"unknown")), 404, "BLOB_UNKNOWN"),
            // An unparsable reference names nothing that can exist (the conformance suite wants 404).
            (Method::GET, format!("/v2/{name}/manifests/-bad-tag"), 404, "MANIFEST_UNKNOWN"),
            (Method::PUT, format!("/v2/{name}/manifests/-bad-tag"), 400, "TAG_INVALID"),
            (Method::GET, format!("/v2/{name}/manifests/sha256:123"), 404, "MANIFEST_UNKNOWN"),
            (Method::DELETE, format!("/v2/{name}/manifests/sha256:123"), 400, "DIGEST_INVALID"),
            (Method::GET, format!("/v2/{name}/manifests/nosuchtag"), 404, "MANIFEST_UNKNOWN"),
            (Method::GET, format!("/v2/{name}/manifests/{}", sha256(b"unknown")), 404, "MANIFEST_UNKNOWN"),
            (Method::GET, format!("/v2/{name}/blobs/uploads/nosuchupload"), 404, "BLOB_UPLOAD_UNKNOWN"),
            (Method::PATCH, format!("/v2/{name}/blobs/uploads/../../x"), 404, ""),
            (Method::PUT, format!("/v2/{name}/blobs/uploads/{}?digest={}", "a".repeat(65), sha256(b"")), 404, "BLOB_UPLOAD_UNKNOWN"),
            (Method::DELETE, format!("/v2/{name}/blobs/uploads/nosuchupload"), 404, "BLOB_UPLOAD_UNKNOWN"),
            (Method::GET, format!("/v2/{name}/referrers/notadigest"), 400, "DIGEST_INVALID"),
            (Method::GET, format!("/v2/{name}/tags/list?n=minus"), 400, "PAGINATION_NUMBER_INVALID"),
            (Method::GET, format!("/v2/{name}/whatever/else"), 404, "NAME_UNKNOWN"),
            (Method::POST, format!("/v2/{name}/manifests/latest"), 405, "UNSUPPORTED"),
            (Method::PATCH, format!("/v2/{name}/blobs/{}", sha256(b"")), 405, "UNSUPPORTED"),
            (Method::GET, format!("/v2/{name}/blobs/uploads/?digest=sha256:x"), 405, "UNSUPPORTED"),
            (Method::POST, format!("/v2/{name}/blobs/uploads/?digest=sha256:bad"), 400, "DIGEST_INVALID"),
            (Method::POST, format!("/v2/{name}/blobs/uploads/?mount=bad&from=acrone/other"), 400, "DIGEST_INVALID"),
            (Method::DELETE, format!("/v2/{name}/manifests/nosuchtag"), 404, "MANIFEST_UNKNOWN"),
            (Method::DELETE, format!("/v2/{name}/blobs/{}", sha256(b"unknown")), 404, "BLOB_UNKNOWN"),
        ];
        for (method, path, status, code) in cases {
            let r = send(&ts, method.clone(), &path, Some(&token), &[], None).await;
            assert_eq!(r.status, status, "{method} {path}: {}", r.text());
            if !code.is_empty() {
                assert_eq!(r.code(), code, "{method} {path}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_link_headers() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/pages";
        let token = access_token(
            &ts,
            "acrone",
            &[&format!("repository:{name}:pull,push"), "registry:catalog:*"],
        )
        .await;
        let manifest = push_image(&ts, name, "v1", &token, 20).await;
        for tag in ["b", "A", "a", "v2", "latest"] {
            let r = put_manifest(&ts, name, tag, &token, OCI_MANIFEST, &manifest).await;
            assert_eq!(r.status, 201);
        }
        let all = ["A", "a", "b", "latest", "v1", "v2"];
        let r = get(&ts, &format!("/v2/{name}/tags/list"), Some(&token)).await;
        assert_eq!(r.json(), json!({"name": name, "tags": all}));
        assert_eq!(r.header("link"), "");

        let mut seen = Vec::new();
        let mut next = Some(format!("/v2/{name}/tags/list?n=4"));
        while let Some(path) = next.take() {
            let r = get(&ts, &path, Some(&token)).await;
            assert_eq!(r.status, 200);
            let page: Vec<String> = serde_json::from_value(r.json()["tags"].clone()).unwrap();
            assert!(page.len() <= 4);
            seen.extend(page);
            if !r.header("link").is_empty() {
                let link = r.header("link");
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                next = Some(link.trim_start_matches('<').split('>').next().unwrap().to_string());
            }
        }
        assert_eq!(seen, all);
        let r = get(&ts, &format!("/v2/{name}/tags/list?n=2&last=b"), Some(&token)).await;
        assert_eq!(r.json()["tags"], json!(["latest", "v1"]));
        assert_eq!(r.header("link"), format!("</v2/{name}/tags/list?n=2&last=v1>; rel=\"next\""));
        let r = get(&ts, &format!("/v2/{name}/tags/list?n=0"), Some(&token)).await;
        assert_eq!(r.json()["tags"], json!([]));

        // The catalog: names as the client sees them, paginated the same way.
        let mut names = vec![name.to_string()];
        for repo in ["acrone/c1", "acrone/z/deep", "acrone/b2"] {
            let t = token_for_push(&ts, repo).await;
            push_blob(&ts, repo, &t, b"x").await;
            names.push(repo.to_string());
        }
        names.sort();
        let r = get(&ts, "/v2/acrone/_catalog", Some(&token)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"repositories": names}));
        let r = get(&ts, "/v2/acrone/_catalog?n=2", Some(&token)).await;
        assert_eq!(r.json()["repositories"], json!(names[..2]));
        assert_eq!(
            r.header("link"),
            format!("</v2/acrone/_catalog?n=2&last={}>; rel=\"next\"", names[1])
        );
        let r = get(&ts, &format!("/v2/acrone/_catalog?n=2&last={}", names[1]), Some(&token)).await;
        assert_eq!(r.json()["repositories"], json!(names[2..4]));
        let r = get(&ts, &format!("/v2/acrone/_catalog?n=2&last={}", names[3]), Some(&token)).await;
        assert_eq!(r.json()["repositories"], json!(names[4..]));
        assert_eq!(r.header("link"), "");
        // The catalog needs `registry:catalog:*`; a repository token gets a challenge for it.
        let repo_token = token_for_push(&ts, name).await;
        let r = get(&ts, "/v2/acrone/_catalog", Some(&repo_token)).await;
        assert_eq!(r.status, 401);
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "scope"), Some("registry:catalog:*"));
        // In path mode the bare `/v2/_catalog` names no registry.
        let r = get(&ts, "/v2/_catalog", Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
    })
    .await;
}

async fn token_for_push(ts: &TestServer, name: &str) -> String {
    let registry = name.split('/').next().unwrap();
    access_token(ts, registry, &[&format!("repository:{name}:pull,push")]).await
}

#[tokio::test]
async fn referrers_with_artifact_type_filter_and_oci_subject() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/signed";
        let token = token_for_push(&ts, name).await;
        let subject = push_image(&ts, name, "v1", &token, 30).await;
        let subject_digest = sha256(&subject);
        let empty = b"{}".to_vec();
        push_blob(&ts, name, &token, &empty).await;
        let mut pushed = Vec::new();
        for (artifact_type, payload) in [("application/vnd.example.sbom", b"sbom".to_vec()), ("application/vnd.example.signature", b"sig".to_vec())] {
            push_blob(&ts, name, &token, &payload).await;
            let artifact = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&empty), "size": 2},
                "layers": [descriptor("application/octet-stream", &payload)],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len()},
                "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
            })).unwrap();
            let r = put_manifest(&ts, name, &sha256(&artifact), &token, OCI_MANIFEST, &artifact).await;
            assert_eq!(r.status, 201, "{}", r.text());
            assert_eq!(r.header("oci-subject"), subject_digest);
            pushed.push((artifact_type, artifact));
        }
        let r = get(&ts, &format!("/v2/{name}/referrers/{subject_digest}"), Some(&token)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), OCI_INDEX);
        assert_eq!(r.header("oci-filters-applied"), "");
        let index = r.json();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], OCI_INDEX);
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        for (artifact_type, artifact) in &pushed {
            let entry = manifests.iter().find(|m| m["digest"] == sha256(artifact)).expect("listed");
            assert_eq!(entry["artifactType"], *artifact_type);
            assert_eq!(entry["mediaType"], OCI_MANIFEST);
            assert_eq!(entry["size"], artifact.len());
            assert_eq!(entry["annotations"]["org.opencontainers.image.created"], "2026-01-01T00:00:00Z");
        }
        let r = get(&ts, &format!("/v2/{name}/referrers/{subject_digest}?artifactType=application/vnd.example.sbom"), Some(&token)).await;
        assert_eq!(r.header("oci-filters-applied"), "artifactType");
        let manifests = r.json()["manifests"].as_array().unwrap().clone();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0]["digest"], sha256(&pushed[0].1));
        // An unknown digest has no referrers.
        let r = get(&ts, &format!("/v2/{name}/referrers/{}", sha256(b"nothing")), Some(&token)).await;
        assert_eq!((r.status, r.json()["manifests"].clone()), (200, json!([])));
    })
    .await;
}

#[tokio::test]
async fn mounts_need_pull_on_the_source() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let layer = blob(40, 10_000);
        let digest = sha256(&layer);
        let source = token_for_push(&ts, "acrone/source").await;
        push_blob(&ts, "acrone/source", &source, &layer).await;
        // Not linked to the target yet.
        let both = access_token(
            &ts,
            "acrone",
            &["repository:acrone/target:pull,push", "repository:acrone/source:pull"],
        )
        .await;
        let r = send(
            &ts,
            Method::HEAD,
            &format!("/v2/acrone/target/blobs/{digest}"),
            Some(&both),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 404);

        // Without pull on the source: an ordinary upload session instead.
        let target_only = token_for_push(&ts, "acrone/target").await;
        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/acrone/target/blobs/uploads/?mount={digest}&from=acrone/source"),
            Some(&target_only),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 202);
        assert!(r.header("location").contains("/blobs/uploads/"));
        // A blob the source does not have: also a session.
        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/acrone/target/blobs/uploads/?mount={}&from=acrone/source", sha256(b"no")),
            Some(&both),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 202);
        // Another registry's repository cannot be a source.
        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/acrone/target/blobs/uploads/?mount={digest}&from=acrtwo/source"),
            Some(&both),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 202);

        let r = send(
            &ts,
            Method::POST,
            &format!("/v2/acrone/target/blobs/uploads/?mount={digest}&from=acrone/source"),
            Some(&both),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("location"), format!("/v2/acrone/target/blobs/{digest}"));
        assert_eq!(r.header("docker-content-digest"), digest);
        let r = get(&ts, &format!("/v2/acrone/target/blobs/{digest}"), Some(&both)).await;
        assert_eq!((r.status, &r.body), (200, &layer));
    })
    .await;
}

#[tokio::test]
async fn an_upload_resumes_after_a_restart() {
    each_backend(|mut ts| async move {
        setup(&ts).await;
        let name = "acrone/resume";
        let token = token_for_push(&ts, name).await;
        let content = blob(50, 2 * 1024 * 1024 + 5);
        let (first, second) = content.split_at(1024 * 1024);
        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        let location = r.header("location").to_string();
        let r = send(&ts, Method::PATCH, &location, Some(&token), &[], Some(first.to_vec())).await;
        assert_eq!(r.status, 202);

        ts.restart().await.unwrap();

        let r = get(&ts, &location, Some(&token)).await;
        assert_eq!((r.status, r.header("range")), (204, format!("0-{}", first.len() - 1).as_str()));
        let range = format!("{}-{}", first.len(), content.len() - 1);
        let r = send(
            &ts,
            Method::PATCH,
            &location,
            Some(&token),
            &[("content-range", &range)],
            Some(second.to_vec()),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let r = send(
            &ts,
            Method::PUT,
            &format!("{location}?digest={}", sha256(&content)),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = get(&ts, &format!("/v2/{name}/blobs/{}", sha256(&content)), Some(&token)).await;
        assert_eq!((r.status, r.body == content), (200, true));

        // A session belongs to its repository, and cancelling one ends it.
        let other = token_for_push(&ts, "acrone/other").await;
        let r =
            send(&ts, Method::POST, &format!("/v2/{name}/blobs/uploads/"), Some(&token), &[], None)
                .await;
        let location = r.header("location").to_string();
        let id = location.rsplit('/').next().unwrap();
        let r = get(&ts, &format!("/v2/acrone/other/blobs/uploads/{id}"), Some(&other)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
        let r = send(&ts, Method::DELETE, &location, Some(&token), &[], None).await;
        assert_eq!(r.status, 204);
        let r = get(&ts, &location, Some(&token)).await;
        assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
    })
    .await;
}

#[tokio::test]
async fn deleting_manifests_tags_and_blobs() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let name = "acrone/del";
        let token =
            access_token(&ts, "acrone", &[&format!("repository:{name}:pull,push,delete")]).await;
        let manifest = push_image(&ts, name, "a", &token, 60).await;
        let digest = sha256(&manifest);
        let r = put_manifest(&ts, name, "b", &token, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status, 201);

        let r =
            send(&ts, Method::DELETE, &format!("/v2/{name}/manifests/a"), Some(&token), &[], None)
                .await;
        assert_eq!(r.status, 202);
        assert_eq!(get(&ts, &format!("/v2/{name}/manifests/a"), Some(&token)).await.status, 404);
        assert_eq!(get(&ts, &format!("/v2/{name}/manifests/b"), Some(&token)).await.status, 200);

        let r = send(
            &ts,
            Method::DELETE,
            &format!("/v2/{name}/manifests/{digest}"),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 202);
        for reference in ["b", digest.as_str()] {
            let r = get(&ts, &format!("/v2/{name}/manifests/{reference}"), Some(&token)).await;
            assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
        }
        let r = get(&ts, &format!("/v2/{name}/tags/list"), Some(&token)).await;
        assert_eq!(r.json()["tags"], json!([]));
        let r = send(
            &ts,
            Method::DELETE,
            &format!("/v2/{name}/manifests/{digest}"),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 404);

        let layer = blob(60, 1060);
        let path = format!("/v2/{name}/blobs/{}", sha256(&layer));
        let r = send(&ts, Method::DELETE, &path, Some(&token), &[], None).await;
        assert_eq!(r.status, 202);
        assert_eq!(send(&ts, Method::HEAD, &path, Some(&token), &[], None).await.status, 404);
    })
    .await;
}

#[tokio::test]
async fn tokens_grant_only_what_they_name() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let pusher = access_token(
            &ts,
            "acrone",
            &["repository:acrone/a:pull,push", "repository:acrone/b:pull,push"],
        )
        .await;
        push_image(&ts, "acrone/a", "v1", &pusher, 70).await;
        push_image(&ts, "acrone/b", "v1", &pusher, 71).await;

        let pull_a = access_token(&ts, "acrone", &["repository:acrone/a:pull"]).await;
        assert_eq!(get(&ts, "/v2/acrone/a/manifests/v1", Some(&pull_a)).await.status, 200);
        // Another repository: 401 and a challenge for it.
        let r = get(&ts, "/v2/acrone/b/manifests/v1", Some(&pull_a)).await;
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "scope"), Some("repository:acrone/b:pull"));
        // Pull-only cannot push or delete.
        let r =
            send(&ts, Method::POST, "/v2/acrone/a/blobs/uploads/", Some(&pull_a), &[], None).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            param(&challenge_params(r.header("www-authenticate")), "scope"),
            Some("repository:acrone/a:pull,push")
        );
        let r = put_manifest(&ts, "acrone/a", "v2", &pull_a, OCI_MANIFEST, b"{}").await;
        assert_eq!(r.status, 401);
        let r =
            send(&ts, Method::DELETE, "/v2/acrone/a/manifests/v1", Some(&pull_a), &[], None).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            param(&challenge_params(r.header("www-authenticate")), "scope"),
            Some("repository:acrone/a:delete")
        );
        // Push without delete cannot delete.
        let r =
            send(&ts, Method::DELETE, "/v2/acrone/a/manifests/v1", Some(&pusher), &[], None).await;
        assert_eq!(r.status, 401);
        // A token for one registry is not valid on another; nor is garbage, nor a refresh token.
        let other = access_token(&ts, "acrtwo", &["repository:acrone/a:pull"]).await;
        assert_eq!(get(&ts, "/v2/acrone/a/manifests/v1", Some(&other)).await.status, 401);
        assert_eq!(get(&ts, "/v2/acrone/a/manifests/v1", Some("x.y.z")).await.status, 401);
        let refresh = {
            let url = format!("/oauth2/token?service={}/acrone&offline_token=true", host(&ts));
            let r = ts
                .http
                .get(ts.url(&url))
                .basic_auth(&ts.client_id, Some(&ts.client_secret))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string()
        };
        assert_eq!(get(&ts, "/v2/acrone/a/manifests/v1", Some(&refresh)).await.status, 401);
        let r = send(
            &ts,
            Method::GET,
            "/v2/acrone/a/manifests/v1",
            None,
            &[("authorization", "Weird abc")],
            None,
        )
        .await;
        assert_eq!(r.status, 401);
    })
    .await;
}

#[tokio::test]
async fn anonymous_pull_serves_pulls_without_a_token() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let token = token_for_push(&ts, "acrtwo/public").await;
        let manifest = push_image(&ts, "acrtwo/public", "v1", &token, 80).await;
        let r = get(&ts, "/v2/acrtwo/public/manifests/v1", None).await;
        assert_eq!((r.status, &r.body), (200, &manifest));
        let r = get(&ts, "/v2/acrtwo/public/tags/list", None).await;
        assert_eq!(r.json()["tags"], json!(["v1"]));
        // Pushes still need a token; so does a private registry's pull.
        let r = send(&ts, Method::POST, "/v2/acrtwo/public/blobs/uploads/", None, &[], None).await;
        assert_eq!(r.status, 401);
        let r = get(&ts, "/v2/acrone/anything/manifests/v1", None).await;
        assert_eq!(r.status, 401);
    })
    .await;
}

#[tokio::test]
async fn host_mode_addresses_registries_by_host_name() {
    for backend in backends() {
        let data = tempfile::tempdir().unwrap();
        let database_url = berth_db::testing::scratch_database(backend, data.path()).await.unwrap();
        let mut config = berth_server::Config::with_data_dir(data.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = Some(database_url);
        config.registry_domain = Some("reg.test".into());
        let server = berth_server::start(config).await.unwrap();
        let port = server.local_addr.port();
        let bootstrap: Value =
            serde_json::from_slice(&std::fs::read(data.path().join("bootstrap.json")).unwrap())
                .unwrap();
        let (client_id, secret) =
            (bootstrap["clientId"].as_str().unwrap(), bootstrap["clientSecret"].as_str().unwrap());
        let ca = std::fs::read_to_string(server.ca_path.as_ref().unwrap()).unwrap();
        let plain = client_trusting(&ca).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .resolve("hostacr.reg.test", server.local_addr)
            .build()
            .unwrap();

        // Create the registry on the control plane.
        let endpoint = server.endpoint.clone();
        let owner: Value = plain
            .post(format!(
                "{endpoint}/{}/oauth2/v2.0/token",
                bootstrap["tenantId"].as_str().unwrap()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let owner = owner["access_token"].as_str().unwrap();
        let sub = bootstrap["subscriptionId"].as_str().unwrap();
        let api = "api-version=2024-11-01";
        let r = plain
            .put(format!("{endpoint}/subscriptions/{sub}/resourcegroups/g?{api}"))
            .bearer_auth(owner)
            .json(&json!({"location": "westeurope"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let r = plain.put(format!("{endpoint}/subscriptions/{sub}/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/hostacr?{api}"))
            .bearer_auth(owner).json(&json!({"location": "westeurope", "sku": {"name": "Basic"}})).send().await.unwrap();
        assert_eq!(r.status(), 201);

        let base = format!("https://hostacr.reg.test:{port}");
        let r = send_to(&http, format!("{base}/v2/"), Method::GET, None, &[], None).await;
        assert_eq!(r.status, 401);
        let params = challenge_params(r.header("www-authenticate"));
        assert_eq!(param(&params, "service"), Some("hostacr.reg.test"));
        let r =
            send_to(&http, format!("{base}/v2/team/app/tags/list"), Method::GET, None, &[], None)
                .await;
        assert_eq!(
            param(&challenge_params(r.header("www-authenticate")), "scope"),
            Some("repository:team/app:pull")
        );

        let token: Value = http
            .get(format!("{base}/oauth2/token?service=hostacr.reg.test&scope=repository:team/app:pull,push&scope=registry:catalog:*"))
            .basic_auth(client_id, Some(secret)).send().await.unwrap().json().await.unwrap();
        let token = token["access_token"].as_str().unwrap();
        let config = b"{\"host\":true}".to_vec();
        let r = send_to(
            &http,
            format!("{base}/v2/team/app/blobs/uploads/?digest={}", sha256(&config)),
            Method::POST,
            Some(token),
            &[],
            Some(config.clone()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("location"), format!("/v2/team/app/blobs/{}", sha256(&config)));
        let manifest = image_manifest(&config, &[], json!({}));
        let r = send_to(
            &http,
            format!("{base}/v2/team/app/manifests/v1"),
            Method::PUT,
            Some(token),
            &[("content-type", OCI_MANIFEST)],
            Some(manifest.clone()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = send_to(
            &http,
            format!("{base}/v2/team/app/manifests/v1"),
            Method::GET,
            Some(token),
            &[],
            None,
        )
        .await;
        assert_eq!((r.status, &r.body), (200, &manifest));
        let r = send_to(&http, format!("{base}/v2/_catalog"), Method::GET, Some(token), &[], None)
            .await;
        assert_eq!(r.json(), json!({"repositories": ["team/app"]}));
        let r = send_to(&http, format!("{base}/v2/"), Method::GET, Some(token), &[], None).await;
        assert_eq!(r.status, 200);
        // The server's own address names no registry in host mode.
        let r = send_to(
            &plain,
            format!("{endpoint}/v2/team/app/tags/list"),
            Method::GET,
            Some(token),
            &[],
            None,
        )
        .await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        server.shutdown().await.unwrap();
    }
}
