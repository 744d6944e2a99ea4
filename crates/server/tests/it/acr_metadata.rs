//! ACR's metadata API (`/acr/v1`): catalog, repository properties, tag and manifest details with paging and
//! ordering, deletions, and refusals (no token, another registry's token, missing rights), in path mode and host
//! mode, on every backend. Images are pushed through `/v2` first.

use berth_oci::Digest;
use berth_test_support::{backends, client_trusting, TestServer};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

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

    /// The OCI/ACR error body's first code.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("<no error code>").to_string()
    }

    /// The `key="value"` parameters of the `WWW-Authenticate: Bearer ...` challenge.
    fn challenge(&self, key: &str) -> Option<String> {
        let rest = self.header("www-authenticate").strip_prefix("Bearer ")?;
        rest.split("\",").find_map(|part| {
            let (k, v) = part.split_once("=\"")?;
            (k.trim() == key).then(|| v.trim_end_matches('"').to_string())
        })
    }
}

/// One request; never a 5xx.
async fn send_to(
    http: &reqwest::Client,
    url: String,
    method: Method,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Resp {
    let mut request = http.request(method.clone(), &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
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

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// A pushed image: its manifest digest and the bytes the manifest and its blobs take.
struct Pushed {
    digest: String,
    manifest_len: usize,
    total: usize,
}

/// Pushes through `/v2` at `base` (the server, or a registry host in host mode).
struct Pusher<'a> {
    http: &'a reqwest::Client,
    base: String,
    token: String,
}

impl Pusher<'_> {
    async fn blob(&self, name: &str, bytes: &[u8]) {
        let url = format!("{}/v2/{name}/blobs/uploads/?digest={}", self.base, sha256(bytes));
        let r =
            send_to(self.http, url, Method::POST, Some(&self.token), None, Some(bytes.to_vec()))
                .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }

    async fn manifest(&self, name: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let url = format!("{}/v2/{name}/manifests/{reference}", self.base);
        let r = send_to(
            self.http,
            url,
            Method::PUT,
            Some(&self.token),
            Some(media_type),
            Some(bytes.to_vec()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }

    /// A one-layer image for `architecture`/linux, tagged `tag`.
    async fn image(&self, name: &str, tag: &str, architecture: &str, seed: u8) -> Pushed {
        let config = serde_json::to_vec(&json!({
            "architecture": architecture, "os": "linux", "seed": seed,
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        let layer: Vec<u8> = (0..500 + usize::from(seed)).map(|i| (i as u8) ^ seed).collect();
        self.blob(name, &config).await;
        self.blob(name, &layer).await;
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": [descriptor(OCI_LAYER, &layer)],
        }))
        .unwrap();
        self.manifest(name, tag, OCI_MANIFEST, &manifest).await;
        Pushed {
            digest: sha256(&manifest),
            manifest_len: manifest.len(),
            total: manifest.len() + config.len() + layer.len(),
        }
    }
}

async fn create_registries(ts: &TestServer, names: &[&str]) {
    let owner = ts.owner_token().await.unwrap();
    let (status, _) = call(
        ts,
        Method::PUT,
        &group_path(ts, "g"),
        Some(&owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert!(status == 200 || status == 201);
    for name in names {
        let body = json!({"location": "westeurope", "sku": {"name": "Standard"}});
        let (status, body) =
            call(ts, Method::PUT, &registry_path(ts, "g", name), Some(&owner), Some(body)).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// An access token of the bootstrap owner for `scopes` at `service`, with Basic credentials.
async fn basic_token(ts: &TestServer, service: &str, scopes: &[&str]) -> String {
    let mut url = format!("/oauth2/token?service={service}");
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
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

/// The flow az and the SDK use: Entra token → `/oauth2/exchange` → refresh token → `POST /oauth2/token`.
async fn exchanged_token(ts: &TestServer, service: &str, scopes: &[&str]) -> String {
    let entra = ts
        .token_for(&ts.client_id, &ts.client_secret, "https://containerregistry.azure.net/.default")
        .await
        .unwrap();
    let exchanged: Value = ts
        .http
        .post(ts.url("/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", service),
            ("tenant", &ts.tenant_id),
            ("access_token", &entra),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = exchanged["refresh_token"].as_str().expect("a refresh token");
    let mut form =
        vec![("grant_type", "refresh_token"), ("service", service), ("refresh_token", refresh)];
    form.extend(scopes.iter().map(|scope| ("scope", *scope)));
    let token: Value = ts
        .http
        .post(ts.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().expect("an access token").to_string()
}

fn tag_names(body: &Value) -> Vec<String> {
    body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn digests(body: &Value) -> Vec<String> {
    body["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The path of a `Link: <...>; rel="next"` header, under the registry's prefix.
fn next_link(r: &Resp, prefix: &str) -> Option<String> {
    let link = r.header("link");
    let target = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    assert!(target.starts_with("/acr/v1/"), "links are relative to the login server: {link}");
    Some(format!("{prefix}{target}"))
}

#[tokio::test]
async fn metadata_api_in_path_mode() {
    each_backend(|ts| async move {
        create_registries(&ts, &["acrmeta", "acrother"]).await;
        let host = ts.local_addr.to_string();
        let service = format!("{host}/acrmeta");
        let pusher = Pusher {
            http: &ts.http,
            base: ts.endpoint.clone(),
            token: basic_token(
                &ts,
                &service,
                &["repository:acrmeta/team/app:pull,push", "repository:acrmeta/base:pull,push"],
            )
            .await,
        };
        let v1 = pusher.image("acrmeta/team/app", "v1", "amd64", 1).await;
        let v2 = pusher.image("acrmeta/team/app", "v2", "arm64", 2).await;
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": v1.digest, "size": v1.manifest_len,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": v2.digest, "size": v2.manifest_len,
                 "platform": {"architecture": "arm64", "os": "linux"}},
            ],
        }))
        .unwrap();
        pusher.manifest("acrmeta/team/app", "multi", OCI_INDEX, &index).await;
        let index_digest = sha256(&index);
        pusher.image("acrmeta/base", "latest", "amd64", 3).await;

        // Reading needs pull (what az's metadata_read grants); the SDK's refresh-token flow works.
        let reader = exchanged_token(
            &ts,
            &service,
            &["registry:catalog:*", "repository:acrmeta/team/app:metadata_read"],
        )
        .await;
        let get = |path: String, token: Option<String>| {
            let http = ts.http.clone();
            let url = ts.url(&path);
            async move { send_to(&http, url, Method::GET, token.as_deref(), None, None).await }
        };
        let r = get("/acrmeta/acr/v1/_catalog".into(), Some(reader.clone())).await;
        assert_eq!((r.status, r.json()), (200, json!({"repositories": ["base", "team/app"]})));
        assert_eq!(r.header("link"), "");
        let r = get("/acrmeta/acr/v1/_catalog?n=1".into(), Some(reader.clone())).await;
        assert_eq!(r.json(), json!({"repositories": ["base"]}));
        let next = next_link(&r, "/acrmeta").expect("a next page");
        assert_eq!(next, "/acrmeta/acr/v1/_catalog?last=base&n=1");
        let r = get(next, Some(reader.clone())).await;
        assert_eq!(r.json(), json!({"repositories": ["team/app"]}));
        assert_eq!(next_link(&r, "/acrmeta"), None);

        // Repository properties; the SDK percent-encodes the `/` of names.
        let r = get("/acrmeta/acr/v1/team%2Fapp".into(), Some(reader.clone())).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let props = r.json();
        assert_eq!(props["registry"], json!(service));
        assert_eq!(props["imageName"], json!("team/app"));
        assert_eq!((props["manifestCount"].clone(), props["tagCount"].clone()), (json!(3), json!(3)));
        assert_eq!(
            props["changeableAttributes"],
            json!({"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true})
        );
        let (created, updated) =
            (props["createdTime"].as_str().unwrap(), props["lastUpdateTime"].as_str().unwrap());
        assert!(created.ends_with('Z') && updated.ends_with('Z') && updated >= created, "{props}");

        // Tags: details, paging, ordering by time, filtering by digest.
        let r = get("/acrmeta/acr/v1/team/app/_tags".into(), Some(reader.clone())).await;
        let body = r.json();
        assert_eq!((body["registry"].clone(), body["imageName"].clone()), (json!(service), json!("team/app")));
        assert_eq!(tag_names(&body), ["multi", "v1", "v2"]);
        let v1_tag = &body["tags"][1];
        assert_eq!(v1_tag["digest"], json!(v1.digest));
        assert_eq!(v1_tag["signed"], json!(false));
        assert_eq!(v1_tag["changeableAttributes"]["deleteEnabled"], json!(true));
        assert!(v1_tag["createdTime"].is_string() && v1_tag["lastUpdateTime"].is_string());
        let r = get("/acrmeta/acr/v1/team%2Fapp/_tags?n=2".into(), Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["multi", "v1"]);
        let next = next_link(&r, "/acrmeta").expect("a next page");
        assert_eq!(next, "/acrmeta/acr/v1/team/app/_tags?last=v1&n=2");
        let r = get(next, Some(reader.clone())).await;
        assert_eq!((tag_names(&r.json()), next_link(&r, "/acrmeta")), (vec!["v2".to_string()], None));
        let r = get("/acrmeta/acr/v1/team/app/_tags?orderby=timedesc".into(), Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["multi", "v2", "v1"]);
        let r = get("/acrmeta/acr/v1/team/app/_tags?orderby=timeasc&n=1".into(), Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["v1"]);
        let next = next_link(&r, "/acrmeta").expect("a next page");
        assert_eq!(next, "/acrmeta/acr/v1/team/app/_tags?last=v1&n=1&orderby=timeasc");
        let r = get(next, Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["v2"]);
        let r = get(format!("/acrmeta/acr/v1/team/app/_tags?digest={}", v2.digest), Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["v2"]);
        let r = get("/acrmeta/acr/v1/team/app/_tags/v1".into(), Some(reader.clone())).await;
        assert_eq!(r.status, 200);
        let body = r.json();
        assert_eq!((body["imageName"].clone(), body["tag"].clone()), (json!("team/app"), v1_tag.clone()));

        // Manifests: size, platform, tags, media types; paging by digest; time order.
        let r = get("/acrmeta/acr/v1/team/app/_manifests".into(), Some(reader.clone())).await;
        let body = r.json();
        let mut expected = vec![v1.digest.clone(), v2.digest.clone(), index_digest.clone()];
        expected.sort();
        assert_eq!(digests(&body), expected);
        let find = |digest: &str| {
            body["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == json!(digest)).unwrap().clone()
        };
        let image = find(&v1.digest);
        assert_eq!(image["imageSize"], json!(v1.total));
        assert_eq!((image["architecture"].clone(), image["os"].clone()), (json!("amd64"), json!("linux")));
        assert_eq!(image["mediaType"], json!(OCI_MANIFEST));
        assert_eq!(image["configMediaType"], json!(OCI_CONFIG));
        assert_eq!(image["tags"], json!(["v1"]));
        assert_eq!(image["createdTime"], image["lastUpdateTime"]);
        assert_eq!(find(&v2.digest)["architecture"], json!("arm64"));
        let multi = find(&index_digest);
        assert_eq!((multi["mediaType"].clone(), multi["tags"].clone()), (json!(OCI_INDEX), json!(["multi"])));
        assert_eq!(multi["imageSize"], json!(index.len()));
        assert!(multi.get("architecture").is_none(), "{multi}");
        let r = get("/acrmeta/acr/v1/team/app/_manifests?n=2".into(), Some(reader.clone())).await;
        assert_eq!(digests(&r.json()), expected[..2]);
        let next = next_link(&r, "/acrmeta").expect("a next page");
        assert_eq!(next, format!("/acrmeta/acr/v1/team/app/_manifests?last={}&n=2", expected[1].replace(':', "%3A")));
        assert_eq!(digests(&get(next, Some(reader.clone())).await.json()), expected[2..]);
        let r = get("/acrmeta/acr/v1/team/app/_manifests?orderby=timeasc".into(), Some(reader.clone())).await;
        assert_eq!(digests(&r.json()), [v1.digest.clone(), v2.digest.clone(), index_digest.clone()]);
        let r = get(format!("/acrmeta/acr/v1/team/app/_manifests/{index_digest}"), Some(reader.clone())).await;
        assert_eq!(r.status, 200);
        let body = r.json();
        assert_eq!(body["imageName"], json!("team/app"));
        assert_eq!(body["manifest"]["digest"], json!(index_digest));
        assert_eq!(
            body["manifest"]["references"],
            json!([
                {"digest": v1.digest, "architecture": "amd64", "os": "linux"},
                {"digest": v2.digest, "architecture": "arm64", "os": "linux"},
            ])
        );
        let r = get(format!("/acrmeta/acr/v1/team/app/_manifests/{}", v1.digest.replace(':', "%3A")), Some(reader.clone())).await;
        assert_eq!(r.json()["manifest"], image);

        // What does not exist, and bad input.
        let missing = format!("sha256:{}", "0".repeat(64));
        for (path, status, code) in [
            (format!("/acrmeta/acr/v1/team/app/_manifests/{missing}"), 404, "MANIFEST_UNKNOWN"),
            ("/acrmeta/acr/v1/team/app/_manifests/latest".to_string(), 400, "DIGEST_INVALID"),
            ("/acrmeta/acr/v1/team/app/_tags/nope".to_string(), 404, "MANIFEST_UNKNOWN"),
            ("/acrmeta/acr/v1/team/app/_tags?n=x".to_string(), 400, "PAGINATION_NUMBER_INVALID"),
            ("/acrmeta/acr/v1/team/app/_tags?orderby=sideways".to_string(), 400, "UNSUPPORTED"),
            ("/acrmeta/acr/v1/Team/App".to_string(), 400, "NAME_INVALID"),
            ("/acrmeta/acr/v1/_catalog?n=-1".to_string(), 400, "PAGINATION_NUMBER_INVALID"),
        ] {
            let r = get(path.clone(), Some(reader.clone())).await;
            assert_eq!((r.status, r.code().as_str()), (status, code), "{path}");
            assert!(r.json()["errors"][0]["message"].is_string(), "{path}");
        }
        let everything = basic_token(&ts, &service, &["repository:acrmeta/gone:*"]).await;
        for path in ["/acrmeta/acr/v1/gone", "/acrmeta/acr/v1/gone/_tags", "/acrmeta/acr/v1/gone/_manifests"] {
            let r = get(path.to_string(), Some(everything.clone())).await;
            assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"), "{path}");
        }
        let r = send_to(&ts.http, ts.url("/acrmeta/acr/v1/team/app"), Method::PATCH, Some(&reader), None, None).await;
        assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
        // The metadata API of a registry is under its name on this server.
        let r = get("/acr/v1/_catalog".into(), Some(reader.clone())).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));

        // Refusals: no token, another registry's token, a token without the right.
        let r = get("/acrmeta/acr/v1/_catalog".into(), None).await;
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
        assert_eq!(r.challenge("realm"), Some(format!("{}/oauth2/token", ts.endpoint)));
        assert_eq!(r.challenge("service"), Some(service.clone()));
        assert_eq!(r.challenge("scope").as_deref(), Some("registry:catalog:*"));
        let r = get("/acrmeta/acr/v1/team/app/_tags".into(), None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.challenge("scope").as_deref(), Some("repository:acrmeta/team/app:pull"));
        let other = basic_token(
            &ts,
            &format!("{host}/acrother"),
            &["registry:catalog:*", "repository:acrmeta/team/app:pull,delete"],
        )
        .await;
        for path in ["/acrmeta/acr/v1/_catalog", "/acrmeta/acr/v1/team/app/_tags", "/acrmeta/acr/v1/team/app"] {
            let r = get(path.to_string(), Some(other.clone())).await;
            assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"), "{path}");
        }
        let r = get("/acrother/acr/v1/_catalog".into(), Some(other.clone())).await;
        assert_eq!((r.status, r.json()), (200, json!({"repositories": []})), "its own registry answers");
        let base_only = basic_token(&ts, &service, &["repository:acrmeta/base:pull"]).await;
        let r = get("/acrmeta/acr/v1/_catalog".into(), Some(base_only.clone())).await;
        assert_eq!(r.status, 401, "no catalog right");
        let r = get("/acrmeta/acr/v1/team/app/_manifests".into(), Some(base_only.clone())).await;
        assert_eq!(r.status, 401, "another repository");
        assert_eq!(get("/acrmeta/acr/v1/base/_tags".into(), Some(base_only)).await.status, 200);
        for path in ["/acrmeta/acr/v1/team/app/_tags/v2", "/acrmeta/acr/v1/team/app"] {
            let r = send_to(&ts.http, ts.url(path), Method::DELETE, Some(&reader), None, None).await;
            assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"), "{path}: read is not delete");
            assert_eq!(r.challenge("scope").as_deref(), Some("repository:acrmeta/team/app:delete"));
        }
        let r = get("/nosuchreg/acr/v1/_catalog".into(), Some(reader.clone())).await;
        assert_eq!(r.status, 401, "a token names its registry");
        let r = get("/nosuchreg/acr/v1/_catalog".into(), None).await;
        assert_eq!(r.status, 401, "nothing is learnt without credentials");

        // Deleting a tag keeps its manifest; deleting the repository reports what it held.
        let deleter = basic_token(&ts, &service, &["repository:acrmeta/team/app:delete,pull"]).await;
        let delete = |path: &'static str| {
            let (http, url, token) = (ts.http.clone(), ts.url(path), deleter.clone());
            async move { send_to(&http, url, Method::DELETE, Some(&token), None, None).await }
        };
        let r = delete("/acrmeta/acr/v1/team/app/_tags/v2").await;
        assert_eq!((r.status, r.body.len()), (202, 0));
        let r = delete("/acrmeta/acr/v1/team/app/_tags/v2").await;
        assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
        let r = get("/acrmeta/acr/v1/team/app/_tags".into(), Some(reader.clone())).await;
        assert_eq!(tag_names(&r.json()), ["multi", "v1"]);
        let r = get(format!("/acrmeta/acr/v1/team/app/_manifests/{}", v2.digest), Some(reader.clone())).await;
        assert_eq!((r.status, r.json()["manifest"]["tags"].clone()), (200, json!([])));
        let r = delete("/acrmeta/acr/v1/team/app").await;
        assert_eq!(r.status, 202);
        assert_eq!(r.json(), json!({"manifestsDeleted": expected, "tagsDeleted": ["multi", "v1"]}));
        let r = delete("/acrmeta/acr/v1/team/app").await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        let r = get("/acrmeta/acr/v1/team/app".into(), Some(reader.clone())).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        let r = get("/acrmeta/acr/v1/_catalog".into(), Some(reader.clone())).await;
        assert_eq!(r.json(), json!({"repositories": ["base"]}));
        let puller = basic_token(&ts, &service, &["repository:acrmeta/team/app:pull"]).await;
        let r = get("/v2/acrmeta/team/app/manifests/v1".into(), Some(puller)).await;
        assert_eq!(r.status, 404, "the image is gone from /v2 too");
    })
    .await;
}

#[tokio::test]
async fn metadata_api_in_host_mode() {
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
        let text = |key: &str| bootstrap[key].as_str().unwrap().to_string();
        let (client_id, secret) = (text("clientId"), text("clientSecret"));
        let ca = std::fs::read_to_string(server.ca_path.as_ref().unwrap()).unwrap();
        let plain = client_trusting(&ca).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .resolve("hostmeta.reg.test", server.local_addr)
            .build()
            .unwrap();
        let endpoint = server.endpoint.clone();
        let owner: Value = plain
            .post(format!("{endpoint}/{}/oauth2/v2.0/token", text("tenantId")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let owner = owner["access_token"].as_str().unwrap();
        let sub = text("subscriptionId");
        let api = "api-version=2024-11-01";
        let r = plain
            .put(format!("{endpoint}/subscriptions/{sub}/resourcegroups/g?{api}"))
            .bearer_auth(owner)
            .json(&json!({"location": "westeurope"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let r = plain
            .put(format!("{endpoint}/subscriptions/{sub}/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/hostmeta?{api}"))
            .bearer_auth(owner)
            .json(&json!({"location": "westeurope", "sku": {"name": "Basic"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        let base = format!("https://hostmeta.reg.test:{port}");
        let token: Value = http
            .get(format!("{base}/oauth2/token?service=hostmeta.reg.test&scope=repository:team/app:pull,push,delete&scope=registry:catalog:*"))
            .basic_auth(&client_id, Some(&secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap().to_string();
        let pusher = Pusher { http: &http, base: base.clone(), token: token.clone() };
        let pushed = pusher.image("team/app", "v1", "amd64", 9).await;

        let get = |url: String, token: Option<String>| {
            let http = http.clone();
            async move { send_to(&http, url, Method::GET, token.as_deref(), None, None).await }
        };
        let r = get(format!("{base}/acr/v1/_catalog"), Some(token.clone())).await;
        assert_eq!((r.status, r.json()), (200, json!({"repositories": ["team/app"]})));
        let r = get(format!("{base}/acr/v1/team/app/_tags"), Some(token.clone())).await;
        let body = r.json();
        assert_eq!(body["registry"], json!("hostmeta.reg.test"));
        assert_eq!(tag_names(&body), ["v1"]);
        assert_eq!(body["tags"][0]["digest"], json!(pushed.digest));
        let r = get(format!("{base}/acr/v1/team/app/_manifests"), Some(token.clone())).await;
        assert_eq!(r.json()["manifests"][0]["imageSize"], json!(pushed.total));
        let r = get(format!("{base}/acr/v1/team/app"), None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.challenge("service").as_deref(), Some("hostmeta.reg.test"));
        assert_eq!(r.challenge("scope").as_deref(), Some("repository:team/app:pull"));
        // Path-mode addresses and the server's own host name no registry here.
        let r = get(format!("{base}/hostmeta/acr/v1/_catalog"), Some(token.clone())).await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        let r = send_to(
            &plain,
            format!("{endpoint}/acr/v1/_catalog"),
            Method::GET,
            Some(&token),
            None,
            None,
        )
        .await;
        assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
        let r = send_to(
            &http,
            format!("{base}/acr/v1/team/app"),
            Method::DELETE,
            Some(&token),
            None,
            None,
        )
        .await;
        assert_eq!((r.status, r.json()["tagsDeleted"].clone()), (202, json!(["v1"])));
        let r = get(format!("{base}/acr/v1/_catalog"), Some(token.clone())).await;
        assert_eq!(r.json(), json!({"repositories": []}));
        server.shutdown().await.unwrap();
    }
}
