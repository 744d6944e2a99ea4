//! `berth acr login`, `acr repository list|show-tags|show|delete`, `acr manifest list-metadata` and `acr gc`
//! against a real server, with images pushed through `/v2` by the test; outputs, paging, and the errors.

use std::path::Path;

use base64::Engine as _;
use berth_oci::Digest;
use serde_json::{json, Value};

use crate::common::{run_berth, run_berth_with_env, Harness};

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// A logged-in owner, group `rg1` and registry `myacr`; returns the registry's login server.
async fn setup(harness: &Harness) -> String {
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness.berth(&["acr", "create", "-g", "rg1", "-n", "myacr", "--sku", "Basic"]).await.success();
    let shown =
        harness.berth(&["acr", "show", "-n", "myacr", "--query", "loginServer", "-o", "tsv"]).await;
    let login_server = shown.success().stdout.trim().to_owned();
    assert_eq!(login_server, format!("{}/myacr", harness.server.local_addr));
    login_server
}

/// Pushes images through `/v2` as the bootstrap owner, with a token from `/oauth2/token`.
struct Pusher<'a> {
    harness: &'a Harness,
    token: String,
}

impl<'a> Pusher<'a> {
    async fn new(harness: &'a Harness, login_server: &str, repositories: &[&str]) -> Pusher<'a> {
        let server = &harness.server;
        let mut url = server.url(&format!("/oauth2/token?service={login_server}"));
        for repository in repositories {
            url.push_str(&format!("&scope=repository:myacr/{repository}:pull,push"));
        }
        let response = server
            .http
            .get(url)
            .basic_auth(&server.client_id, Some(&server.client_secret))
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("token JSON");
        Pusher { harness, token: body["access_token"].as_str().expect("token").to_owned() }
    }

    async fn blob(&self, repository: &str, bytes: &[u8]) {
        let server = &self.harness.server;
        let url =
            server.url(&format!("/v2/myacr/{repository}/blobs/uploads/?digest={}", sha256(bytes)));
        let response = server
            .http
            .post(url)
            .bearer_auth(&self.token)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status().as_u16(), 201);
    }

    async fn manifest(&self, repository: &str, tag: &str, bytes: &[u8]) {
        let server = &self.harness.server;
        let response = server
            .http
            .put(server.url(&format!("/v2/myacr/{repository}/manifests/{tag}")))
            .bearer_auth(&self.token)
            .header("content-type", OCI_MANIFEST)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("manifest push");
        assert_eq!(response.status().as_u16(), 201);
    }

    /// A one-layer linux image for `architecture`; returns the manifest's bytes.
    async fn image(&self, repository: &str, tag: &str, architecture: &str, seed: u8) -> Vec<u8> {
        let config =
            serde_json::to_vec(&json!({"architecture": architecture, "os": "linux", "seed": seed}))
                .unwrap();
        let layer: Vec<u8> = (0..300 + usize::from(seed)).map(|i| (i as u8) ^ seed).collect();
        self.blob(repository, &config).await;
        self.blob(repository, &layer).await;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
        }))
        .unwrap();
        self.manifest(repository, tag, &manifest).await;
        manifest
    }
}

/// `GET <login server>/v2/` with the null-GUID user and `token` as password: 200 only for a valid registry token.
async fn registry_accepts(harness: &Harness, login_server: &str, token: &str) -> bool {
    let base = login_server.split_once('/').map(|(_, registry)| registry).unwrap_or_default();
    let response = harness
        .server
        .http
        .get(harness.server.url(&format!("/{base}/v2/")))
        .basic_auth(NULL_GUID, Some(token))
        .send()
        .await
        .expect("base check");
    response.status().as_u16() == 200
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("file exists").permissions().mode() & 0o777
}

fn auth_of(config: &Path, login_server: &str) -> (String, String) {
    let config: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    let encoded = config["auths"][login_server]["auth"].as_str().expect("an auth entry");
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let text = String::from_utf8(decoded).unwrap();
    let (user, password) = text.split_once(':').expect("user:password");
    (user.to_owned(), password.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_exposes_a_token_or_stores_it_for_container_tools() {
    let harness = Harness::start().await;
    let login_server = setup(&harness).await;
    let config_dir = harness.config_dir.path();

    let exposed = harness.berth(&["acr", "login", "-n", "myacr", "--expose-token"]).await.success();
    assert!(exposed.stderr.starts_with("WARNING: You can perform manual login"), "{exposed}");
    let exposed = exposed.json();
    let mut keys: Vec<&str> = exposed.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["accessToken", "loginServer", "refreshToken", "username"]);
    assert_eq!(exposed["loginServer"], json!(login_server));
    assert_eq!(exposed["username"], json!(NULL_GUID));
    assert_eq!(exposed["accessToken"], exposed["refreshToken"]);
    let token = exposed["refreshToken"].as_str().unwrap();
    assert!(registry_accepts(&harness, &login_server, token).await, "the token is a refresh token");
    assert!(!registry_accepts(&harness, &login_server, "not-a-token").await);
    let tsv = harness
        .berth(&["acr", "login", "-n", "MYACR", "-t", "--query", "loginServer", "-o", "tsv"])
        .await
        .success();
    assert_eq!(tsv.stdout, format!("{login_server}\n"));

    // Without --expose-token: into $DOCKER_CONFIG/config.json, keeping what is there.
    let docker = tempfile::tempdir().unwrap();
    let config = docker.path().join("config.json");
    std::fs::write(&config, r#"{"auths":{"other.example":{"auth":"eDp5"}},"detachKeys":"ctrl-e"}"#)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", Some(docker.path())), ("HOME", Some(home.path()))];
    let run = run_berth_with_env(config_dir, &["acr", "login", "-n", "myacr"], &env).await;
    let run = run.success();
    assert_eq!(run.stdout, "Login Succeeded\n");
    let stored: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(stored["auths"]["other.example"], json!({"auth": "eDp5"}));
    assert_eq!(stored["detachKeys"], json!("ctrl-e"));
    let (user, password) = auth_of(&config, &login_server);
    assert_eq!(user, NULL_GUID);
    assert!(registry_accepts(&harness, &login_server, &password).await);
    assert_eq!(mode(&config), 0o600);
    assert!(!home.path().join(".docker").exists(), "DOCKER_CONFIG wins over HOME");

    // Without DOCKER_CONFIG: ~/.docker/config.json, created.
    let env = [("DOCKER_CONFIG", None), ("HOME", Some(home.path()))];
    run_berth_with_env(config_dir, &["acr", "login", "-n", "myacr"], &env).await.success();
    let created = home.path().join(".docker").join("config.json");
    assert_eq!(auth_of(&created, &login_server).0, NULL_GUID);
    assert_eq!(mode(&created), 0o600);

    let missing = run_berth_with_env(config_dir, &["acr", "login", "-n", "nosuchacr"], &env).await;
    assert_eq!(missing.code, 1, "{missing}");
    assert!(
        missing.stderr.contains("'nosuchacr'") && missing.stderr.contains("could not be found"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_and_manifest_commands_show_what_was_pushed() {
    let harness = Harness::start().await;
    let login_server = setup(&harness).await;
    let pusher = Pusher::new(&harness, &login_server, &["team/app", "base", "many"]).await;
    let v1 = sha256(&pusher.image("team/app", "v1", "amd64", 1).await);
    let v2 = sha256(&pusher.image("team/app", "v2", "arm64", 2).await);
    pusher.image("base", "latest", "amd64", 3).await;
    // More tags than one page (az asks for 100 at a time).
    let many = pusher.image("many", "t000", "amd64", 4).await;
    for i in 1..105 {
        pusher.manifest("many", &format!("t{i:03}"), &many).await;
    }

    let repositories = harness.berth(&["acr", "repository", "list", "-n", "myacr"]).await;
    assert_eq!(repositories.success().json(), json!(["base", "many", "team/app"]));
    let top = harness
        .berth(&["acr", "repository", "list", "-n", "myacr", "--top", "2", "-o", "tsv"])
        .await;
    assert_eq!(top.success().stdout, "base\nmany\n");

    let tags = |extra: &'static [&'static str]| {
        let mut args =
            vec!["acr", "repository", "show-tags", "-n", "myacr", "--repository", "team/app"];
        args.extend_from_slice(extra);
        let harness = &harness;
        async move { harness.berth(&args).await.success() }
    };
    assert_eq!(tags(&[]).await.json(), json!(["v1", "v2"]));
    assert_eq!(tags(&["--orderby", "time_desc"]).await.json(), json!(["v2", "v1"]));
    assert_eq!(tags(&["--orderby", "time_asc", "--top", "1"]).await.json(), json!(["v1"]));
    let digest = tags(&["--detail", "--query", "[?name=='v1'].digest", "-o", "tsv"]).await;
    assert_eq!(digest.stdout, format!("{v1}\n"));
    let detail = tags(&["--detail"]).await.json();
    assert_eq!(detail[1]["name"], json!("v2"));
    assert_eq!(detail[1]["digest"], json!(v2));
    assert_eq!(detail[1]["signed"], json!(false));
    assert!(detail[1]["lastUpdateTime"].is_string(), "{detail}");

    let all_many = harness
        .berth(&["acr", "repository", "show-tags", "-n", "myacr", "--repository", "many"])
        .await
        .success()
        .json();
    let expected: Vec<String> = (0..105).map(|i| format!("t{i:03}")).collect();
    assert_eq!(all_many, json!(expected));
    let some_many = harness
        .berth(&[
            "acr",
            "repository",
            "show-tags",
            "-n",
            "myacr",
            "--repository",
            "many",
            "--top",
            "102",
        ])
        .await
        .success()
        .json();
    assert_eq!(some_many, json!(expected[..102]));

    let shown = harness
        .berth(&["acr", "repository", "show", "-n", "myacr", "--repository", "team/app"])
        .await
        .success()
        .json();
    assert_eq!(shown["imageName"], json!("team/app"));
    assert_eq!(shown["registry"], json!(login_server));
    assert_eq!((shown["manifestCount"].clone(), shown["tagCount"].clone()), (json!(2), json!(2)));
    let counts = harness
        .berth(&[
            "acr",
            "repository",
            "show",
            "-n",
            "myacr",
            "--repository",
            "team/app",
            "--query",
            "{m:manifestCount, t:tagCount}",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(counts.stdout, "2\t2\n");

    let manifests = harness
        .berth(&[
            "acr",
            "manifest",
            "list-metadata",
            "-r",
            "myacr",
            "-n",
            "team/app",
            "--orderby",
            "time_asc",
        ])
        .await
        .success()
        .json();
    assert_eq!(manifests.as_array().map(Vec::len), Some(2), "{manifests}");
    assert_eq!(
        (
            manifests[0]["digest"].clone(),
            manifests[0]["architecture"].clone(),
            manifests[0]["tags"].clone()
        ),
        (json!(v1), json!("amd64"), json!(["v1"]))
    );
    assert_eq!(
        (
            manifests[1]["digest"].clone(),
            manifests[1]["architecture"].clone(),
            manifests[1]["os"].clone()
        ),
        (json!(v2), json!("arm64"), json!("linux"))
    );
    assert!(manifests[0]["imageSize"].as_u64().is_some_and(|size| size > 300), "{manifests}");
    let newest = harness
        .berth(&[
            "acr",
            "manifest",
            "list-metadata",
            "--registry",
            "myacr",
            "--name",
            "team/app",
            "--orderby",
            "time_desc",
            "--top",
            "1",
            "--query",
            "[].digest",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(newest.stdout, format!("{v2}\n"));
    let many_tags = harness
        .berth(&[
            "acr",
            "manifest",
            "list-metadata",
            "-r",
            "myacr",
            "-n",
            "many",
            "--query",
            "[0].tags | length(@)",
        ])
        .await
        .success();
    assert_eq!(many_tags.stdout, "105\n");

    // Deleting asks first; without a terminal it needs --yes.
    let delete = ["acr", "repository", "delete", "-n", "myacr", "--repository", "team/app"];
    let refused = harness.berth(&delete).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert_eq!(
        refused.stderr,
        "ERROR: Unable to prompt for confirmation as no tty available. Use --yes.\n"
    );
    let mut with_yes = delete.to_vec();
    with_yes.push("--yes");
    let mut deleted_manifests = vec![v1.clone(), v2.clone()];
    deleted_manifests.sort();
    let deleted = harness.berth(&with_yes).await.success().json();
    assert_eq!(
        deleted,
        json!({"manifestsDeleted": deleted_manifests, "tagsDeleted": ["v1", "v2"]})
    );
    let remaining = harness.berth(&["acr", "repository", "list", "-n", "myacr"]).await;
    assert_eq!(remaining.success().json(), json!(["base", "many"]));
    let again = harness.berth(&with_yes).await;
    assert_eq!(again.code, 1, "{again}");
    assert_eq!(
        again.stderr,
        "ERROR: (NAME_UNKNOWN) repository name not known to registry: team/app\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_errors_are_reported_with_code_and_message() {
    let harness = Harness::start().await;
    let login_server = setup(&harness).await;
    let pusher = Pusher::new(&harness, &login_server, &["team/app"]).await;
    pusher.image("team/app", "v1", "amd64", 5).await;

    let not_found = "ERROR: (NAME_UNKNOWN) repository name not known to registry: nope\n";
    for args in [
        &["acr", "repository", "show", "-n", "myacr", "--repository", "nope"][..],
        &["acr", "repository", "show-tags", "-n", "myacr", "--repository", "nope"],
        &["acr", "manifest", "list-metadata", "-r", "myacr", "-n", "nope"],
        &["acr", "repository", "delete", "-n", "myacr", "--repository", "nope", "--yes"],
    ] {
        let run = harness.berth(args).await;
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (1, "", not_found),
            "{args:?}"
        );
    }
    let invalid = harness
        .berth(&["acr", "repository", "show", "-n", "myacr", "--repository", "Bad/Name"])
        .await;
    assert_eq!(invalid.code, 1, "{invalid}");
    assert!(invalid.stderr.starts_with("ERROR: (NAME_INVALID) "), "{invalid}");
    let unknown = harness.berth(&["acr", "repository", "list", "-n", "nosuchacr"]).await;
    assert_eq!(unknown.code, 1, "{unknown}");
    assert!(unknown.stderr.contains("could not be found"), "{unknown}");
    let usage = harness.berth(&["acr", "repository", "show-tags", "-n", "myacr"]).await;
    assert_eq!(usage.code, 2, "{usage}");
    let usage = harness.berth(&["acr", "manifest", "list-metadata", "-n", "team/app"]).await;
    assert_eq!(usage.code, 2, "{usage}");

    // A principal with Reader reads metadata but may not delete: the registry's 401 reaches the user.
    // (The role-assignment API does not exist yet, so the assignment goes into the store directly.)
    let created =
        harness.berth(&["ad", "sp", "create-for-rbac", "-n", "reader"]).await.success().json();
    let app_id = created["appId"].as_str().unwrap().to_owned();
    let password = created["password"].as_str().unwrap().to_owned();
    let db = berth_db::Db::connect(&harness.server.database_url).await.unwrap();
    let principal = db.get_principal_by_app_id(&app_id).await.unwrap().expect("the new principal");
    let scope = format!("/subscriptions/{}", harness.server.subscription_id);
    let now = "2026-01-01T00:00:00Z".to_owned();
    db.create_role_assignment(&berth_db::RoleAssignmentRecord {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/reader-1"),
        name: "reader-1".into(),
        scope: scope.clone(),
        role_definition_id: format!(
            "{scope}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
        ),
        principal_id: principal.id.clone(),
        principal_type: "ServicePrincipal".into(),
        condition: None,
        condition_version: None,
        description: None,
        created_at: now.clone(),
        updated_at: now,
        created_by: None,
        updated_by: None,
    })
    .await
    .unwrap();
    db.close().await;
    let reader_dir = tempfile::tempdir().unwrap();
    let ca = harness.server.ca_pem_path.to_string_lossy().into_owned();
    let login = [
        "login",
        "--server",
        &harness.server.endpoint,
        "--service-principal",
        "-u",
        &app_id,
        "-p",
        &password,
        "--tenant",
        &harness.server.tenant_id,
        "--ca-file",
        &ca,
    ];
    run_berth(reader_dir.path(), &login).await.success();
    let read = run_berth(
        reader_dir.path(),
        &["acr", "repository", "show-tags", "-n", "myacr", "--repository", "team/app"],
    )
    .await;
    assert_eq!(read.success().json(), json!(["v1"]));
    let denied = run_berth(
        reader_dir.path(),
        &["acr", "repository", "delete", "-n", "myacr", "--repository", "team/app", "--yes"],
    )
    .await;
    assert_eq!(denied.code, 1, "{denied}");
    assert_eq!(
        denied.stderr,
        "ERROR: (UNAUTHORIZED) authentication required, visit https://aka.ms/acr/authorization for more information.\n"
    );
    let still_there = harness
        .berth(&["acr", "repository", "show-tags", "-n", "myacr", "--repository", "team/app"])
        .await;
    assert_eq!(still_there.success().json(), json!(["v1"]));
}

/// `berth acr gc --untagged` against the server's `garbageCollect` action (grace period 0, so nothing is too new).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_reports_what_it_deleted() {
    let harness =
        Harness::start_with(|config| config.gc_grace_period = std::time::Duration::ZERO).await;
    let login_server = setup(&harness).await;
    let pusher = Pusher::new(&harness, &login_server, &["team/app"]).await;
    pusher.image("team/app", "v1", "amd64", 6).await;
    pusher.image("team/app", "v1", "arm64", 7).await; // the amd64 manifest is now untagged
    let dry = harness
        .berth(&["acr", "gc", "-n", "myacr", "--dry-run", "--untagged"])
        .await
        .success()
        .json();
    for key in ["deletedManifests", "deletedBlobLinks", "deletedBlobs", "reclaimedBytes"] {
        assert!(dry[key].is_u64(), "{key} in {dry}");
    }
    assert_eq!(dry["deletedManifests"], json!(1), "{dry}");
    let after_dry = harness
        .berth(&[
            "acr",
            "manifest",
            "list-metadata",
            "-r",
            "myacr",
            "-n",
            "team/app",
            "--query",
            "length(@)",
        ])
        .await
        .success();
    assert_eq!(after_dry.stdout, "2\n", "a dry run deletes nothing");
    let done = harness.berth(&["acr", "gc", "-n", "myacr", "--untagged"]).await.success().json();
    assert_eq!(done["deletedManifests"], json!(1), "{done}");
    assert!(done["reclaimedBytes"].as_u64().is_some_and(|bytes| bytes > 0), "{done}");
    let after = harness
        .berth(&[
            "acr",
            "manifest",
            "list-metadata",
            "-r",
            "myacr",
            "-n",
            "team/app",
            "--query",
            "length(@)",
        ])
        .await
        .success();
    assert_eq!(after.stdout, "1\n");
}
