//! Bicep modules in a berth registry, end to end with the real `berth` binary: one principal (AcrPush) publishes
//! with `berth bicep publish`, the manifest carries the real Bicep's media types; another (AcrPull) restores and
//! builds (`br:` by tag and by digest, `br/<alias>:` from bicepconfig.json) into the nested deployment with the
//! module's template; a principal without AcrPull is refused with BCP192 in the registry's words; the cache is
//! keyed by digest and a second build works with the server stopped. On SQLite and PostgreSQL.

use std::path::Path;

use berth_db::testing::backends;
use berth_oci::Digest;
use serde_json::{json, Value};

use crate::common::{run_berth, run_berth_with_env, Harness, Run};

const MODULE: &str = "metadata description = 'A storage account, the organisation way'\n\
param name string\n\
param location string = resourceGroup().location\n\
resource stg 'Microsoft.Storage/storageAccounts@2023-01-01' = {\n\
  name: name\n\
  location: location\n\
  sku: {\n\
    name: 'Standard_LRS'\n\
  }\n\
  kind: 'StorageV2'\n\
}\n\
output id string = stg.id\n";

/// A principal with its own config directory, logged in.
struct Principal {
    app_id: String,
    password: String,
    dir: tempfile::TempDir,
}

impl Principal {
    async fn berth(&self, args: &[&str]) -> Run {
        run_berth(self.dir.path(), args).await
    }
}

async fn principal(harness: &Harness, name: &str, role: Option<(&str, &str)>) -> Principal {
    let created =
        harness.berth(&["ad", "sp", "create-for-rbac", "-n", name]).await.success().json();
    let app_id = created["appId"].as_str().unwrap().to_owned();
    let password = created["password"].as_str().unwrap().to_owned();
    if let Some((role, scope)) = role {
        harness
            .berth(&[
                "role",
                "assignment",
                "create",
                "--assignee",
                &app_id,
                "--role",
                role,
                "--scope",
                scope,
            ])
            .await
            .success();
    }
    let dir = tempfile::tempdir().unwrap();
    let server = &harness.server;
    let ca = server.ca_pem_path.to_string_lossy().into_owned();
    let login = [
        "login",
        "--server",
        &server.endpoint,
        "--service-principal",
        "-u",
        &app_id,
        "-p",
        &password,
        "--tenant",
        &server.tenant_id,
        "--ca-file",
        &ca,
        "--allow-no-subscriptions",
    ];
    run_berth(dir.path(), &login).await.success();
    Principal { app_id, password, dir }
}

/// `GET /v2/<repository>/manifests|blobs/<reference>` as the bootstrap owner: status and bytes.
async fn fetch(
    harness: &Harness,
    login_server: &str,
    repository: &str,
    kind: &str,
    reference: &str,
) -> (u16, Vec<u8>, Option<String>) {
    let server = &harness.server;
    let url = server.url(&format!(
        "/oauth2/token?service={login_server}&scope=repository:myacr/{repository}:pull"
    ));
    let response = server
        .http
        .get(url)
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let response = server
        .http
        .get(server.url(&format!("/v2/myacr/{repository}/{kind}/{reference}")))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, response.bytes().await.unwrap().to_vec(), content_type)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn caller(reference: &str) -> String {
    format!(
        "module stg '{reference}' = {{\n  name: 'stg'\n  params: {{\n    name: 'acct1'\n  }}\n}}\noutput id string = stg.outputs.id\n"
    )
}

async fn scenario(backend: berth_db::Backend) {
    let harness = Harness::start_on(backend).await;
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    let registry = harness
        .berth(&["acr", "create", "-g", "rg1", "-n", "myacr", "--sku", "Standard"])
        .await
        .success()
        .json();
    let registry_id = registry["id"].as_str().unwrap().to_owned();
    let login_server = registry["loginServer"].as_str().unwrap().to_owned();
    let host = harness.server.local_addr.to_string();
    assert_eq!(login_server, format!("{host}/myacr"));

    let publisher = principal(&harness, "publisher", Some(("AcrPush", &registry_id))).await;
    let consumer = principal(&harness, "consumer", Some(("AcrPull", &registry_id))).await;
    let outsider = principal(&harness, "outsider", None).await;

    // ---- publish -------------------------------------------------------------------------------------------
    let sources = tempfile::tempdir().unwrap();
    let module = write(sources.path(), "storage.bicep", MODULE);
    let target = format!("br:{login_server}/modules/storage:v1");
    publisher
        .berth(&[
            "bicep",
            "publish",
            "--file",
            &module,
            "--target",
            &target,
            "--documentation-uri",
            "https://example.org/storage",
        ])
        .await
        .success();
    let compiled = publisher.berth(&["bicep", "build", &module, "--stdout"]).await.success().json();

    let (status, manifest_bytes, content_type) =
        fetch(&harness, &login_server, "modules/storage", "manifests", "v1").await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("application/vnd.oci.image.manifest.v1+json"));
    let manifest_digest = Digest::sha256_of(&manifest_bytes).to_string();
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["artifactType"], "application/vnd.ms.bicep.module.artifact");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.ms.bicep.module.config.v1+json");
    assert_eq!(manifest["config"]["size"], 2);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.ms.bicep.module.layer.v1+json");
    assert_eq!(layers[0]["annotations"]["org.opencontainers.image.title"], "Compiled ARM template");
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.description"],
        "A storage account, the organisation way"
    );
    assert_eq!(
        annotations["org.opencontainers.image.documentation"],
        "https://example.org/storage"
    );
    let created = annotations["org.opencontainers.image.created"].as_str().unwrap();
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("created is RFC 3339 ({e}): {created}"));
    let (status, config, _) = fetch(
        &harness,
        &login_server,
        "modules/storage",
        "blobs",
        manifest["config"]["digest"].as_str().unwrap(),
    )
    .await;
    assert_eq!((status, config.as_slice()), (200, b"{}".as_slice()));
    let (status, layer, _) = fetch(
        &harness,
        &login_server,
        "modules/storage",
        "blobs",
        layers[0]["digest"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let published: Value = serde_json::from_slice(&layer).unwrap();
    assert_eq!(published, compiled, "the layer is the module's compiled template");

    // The tag exists: no overwrite without --force; a principal with AcrPull only may not publish.
    let again = publisher.berth(&["bicep", "publish", &module, "--target", &target]).await;
    assert_eq!(again.code, 1, "{again}");
    assert!(
        again.stderr.contains(&format!(
            "The module \"{target}\" already exists in registry. Use --force to overwrite the existing module."
        )),
        "{again}"
    );
    publisher.berth(&["bicep", "publish", &module, "--target", &target, "--force"]).await.success();
    let (_, republished, _) =
        fetch(&harness, &login_server, "modules/storage", "manifests", "v1").await;
    let manifest_digest_v1 = Digest::sha256_of(&republished).to_string();
    let pull_only = consumer
        .berth(&[
            "bicep",
            "publish",
            &module,
            "--target",
            &format!("br:{login_server}/modules/storage:v9"),
        ])
        .await;
    assert_eq!(pull_only.code, 1, "{pull_only}");
    assert!(
        pull_only.stderr.contains(&format!(
            "Unable to publish module \"br:{login_server}/modules/storage:v9\": "
        )) && pull_only.stderr.contains("401 (Unauthorized)"),
        "{pull_only}"
    );
    // A file with errors is not published.
    let broken = write(sources.path(), "broken.bicep", "param x strin\n");
    let refused = publisher
        .berth(&[
            "bicep",
            "publish",
            &broken,
            "--target",
            &format!("br:{login_server}/modules/broken:v1"),
        ])
        .await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("BCP"), "{refused}");
    let (status, _, _) = fetch(&harness, &login_server, "modules/broken", "manifests", "v1").await;
    assert_eq!(status, 404);

    // With its sources: a second layer holding the real Bicep's source archive.
    let target_v2 = format!("br:{login_server}/modules/storage:v2");
    publisher
        .berth(&["bicep", "publish", &module, "--target", &target_v2, "--with-source"])
        .await
        .success();
    let (_, v2_bytes, _) =
        fetch(&harness, &login_server, "modules/storage", "manifests", "v2").await;
    let v2: Value = serde_json::from_slice(&v2_bytes).unwrap();
    let source_layer = &v2["layers"][1];
    assert_eq!(source_layer["mediaType"], "application/vnd.ms.bicep.module.source.v1.tar+gzip");
    assert_eq!(source_layer["annotations"]["org.opencontainers.image.title"], "Source files");
    let (_, archive, _) = fetch(
        &harness,
        &login_server,
        "modules/storage",
        "blobs",
        source_layer["digest"].as_str().unwrap(),
    )
    .await;
    let mut entries = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        entries.insert(name, text);
    }
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["__metadata.json", "files/storage.bicep"]);
    assert_eq!(entries["files/storage.bicep"], MODULE);
    let metadata: Value = serde_json::from_str(&entries["__metadata.json"]).unwrap();
    assert_eq!(metadata["entryPoint"], "storage.bicep");
    assert_eq!(
        metadata["sourceFiles"],
        json!([{"path": "storage.bicep", "archivePath": "files/storage.bicep", "kind": "bicep"}])
    );
    let json_with_source = publisher
        .berth(&[
            "bicep",
            "publish",
            &write(sources.path(), "t.json", "{}"),
            "--target",
            &target_v2,
            "--with-source",
            "--force",
        ])
        .await;
    assert_eq!(json_with_source.code, 1);
    assert!(
        json_with_source
            .stderr
            .contains("Cannot publish with source when the target is an ARM template file."),
        "{json_with_source}"
    );

    // ---- consume with AcrPull --------------------------------------------------------------------------------
    let work = tempfile::tempdir().unwrap();
    let main = write(work.path(), "app/main.bicep", &caller(&target));
    let built = consumer.berth(&["bicep", "build", &main, "--stdout"]).await.success().json();
    let nested = &built["resources"][0];
    assert_eq!(nested["type"], "Microsoft.Resources/deployments");
    assert_eq!(nested["properties"]["parameters"], json!({"name": {"value": "acct1"}}));
    assert_eq!(nested["properties"]["template"], compiled);

    // Cached as the real Bicep lays it out, keyed by the manifest's digest too.
    let cache = consumer.dir.path().join("bicep/br").join(host.replace(':', "$"));
    let tag_dir = cache.join("myacr$modules$storage/v1$");
    let digest_dir =
        cache.join(format!("myacr$modules$storage/{}", manifest_digest_v1.replace(':', "#")));
    for dir in [&tag_dir, &digest_dir] {
        let metadata: Value =
            serde_json::from_slice(&std::fs::read(dir.join("metadata")).unwrap()).unwrap();
        assert_eq!(metadata, json!({"manifestDigest": manifest_digest_v1}), "{}", dir.display());
        assert_eq!(std::fs::read(dir.join("manifest")).unwrap(), republished);
        assert_eq!(std::fs::read(dir.join("main.json")).unwrap(), layer);
    }
    assert_ne!(manifest_digest, String::new());

    let with_source = write(work.path(), "v2/main.bicep", &caller(&target_v2));
    consumer.berth(&["bicep", "restore", &with_source]).await.success();
    assert_eq!(std::fs::read(cache.join("myacr$modules$storage/v2$/source.tgz")).unwrap(), archive);

    // By digest, and through an alias of the nearest bicepconfig.json.
    let by_digest = write(
        work.path(),
        "digest/main.bicep",
        &caller(&format!("br:{login_server}/modules/storage@{manifest_digest_v1}")),
    );
    let built_by_digest =
        consumer.berth(&["bicep", "build", &by_digest, "--stdout"]).await.success().json();
    assert_eq!(built_by_digest["resources"], built["resources"]);
    write(
        work.path(),
        "aliased/bicepconfig.json",
        &format!(
            "{{\n  // the organisation's modules\n  \"moduleAliases\": {{ \"br\": {{ \"corp\": {{ \"registry\": \"{host}\", \"modulePath\": \"myacr/modules\" }} }} }}\n}}\n"
        ),
    );
    let aliased = write(work.path(), "aliased/deep/main.bicep", &caller("br/corp:storage:v1"));
    consumer.berth(&["bicep", "restore", &aliased]).await.success();
    let built_aliased =
        consumer.berth(&["bicep", "build", &aliased, "--stdout"]).await.success().json();
    assert_eq!(built_aliased["resources"], built["resources"]);
    // The cache can live elsewhere (BERTH_BICEP_CACHE_DIR).
    let elsewhere = tempfile::tempdir().unwrap();
    let env = [("BERTH_BICEP_CACHE_DIR", Some(elsewhere.path()))];
    let relocated =
        run_berth_with_env(consumer.dir.path(), &["bicep", "restore", &main, "--force"], &env)
            .await;
    relocated.success();
    let relocated_dir =
        elsewhere.path().join("br").join(host.replace(':', "$")).join("myacr$modules$storage/v1$");
    assert_eq!(std::fs::read(relocated_dir.join("main.json")).unwrap(), layer);

    let unknown_tag = write(
        work.path(),
        "v404/main.bicep",
        &caller(&format!("br:{login_server}/modules/storage:v404")),
    );
    let missing = consumer
        .berth(&["bicep", "build", &unknown_tag, "--stdout", "--diagnostics-format", "brief"])
        .await;
    assert_eq!(missing.code, 1, "{missing}");
    assert!(
        missing.stderr.contains(&format!(
            "Error BCP192: Unable to restore the artifact with reference \"br:{login_server}/modules/storage:v404\": The artifact does not exist in the registry."
        )),
        "{missing}"
    );

    // ---- interoperability ----------------------------------------------------------------------------------
    // A module as the real Bicep publishes it (System.Text.Json's compact form, `annotations: {}` on the config,
    // no description), pushed by another client: berth consumes it.
    let real_template = serde_json::to_vec_pretty(&compiled).unwrap();
    let real_manifest =
        push_as_real_bicep(&harness, &login_server, "modules/fromreal", "1.0.0", &real_template)
            .await;
    let from_real = write(
        work.path(),
        "real/main.bicep",
        &caller(&format!("br:{login_server}/modules/fromreal:1.0.0")),
    );
    let built_from_real =
        consumer.berth(&["bicep", "build", &from_real, "--stdout"]).await.success().json();
    assert_eq!(built_from_real["resources"][0]["properties"]["template"], compiled);
    let real_dir = consumer
        .dir
        .path()
        .join("bicep/br")
        .join(host.replace(':', "$"))
        .join("myacr$modules$fromreal/1.0.0$");
    assert_eq!(std::fs::read(real_dir.join("manifest")).unwrap(), real_manifest);
    // An ARM template is published as it is.
    let arm_template = r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "parameters": {"name": {"type": "string"}}, "resources": [], "outputs": {"id": {"type": "string", "value": "[parameters('name')]"}}}"#;
    let arm_file = write(sources.path(), "plain.json", arm_template);
    let arm_target = format!("br:{login_server}/modules/plain:1.0");
    publisher.berth(&["bicep", "publish", &arm_file, "--target", &arm_target]).await.success();
    let from_arm = write(work.path(), "arm/main.bicep", &caller(&arm_target));
    let built_from_arm =
        consumer.berth(&["bicep", "build", &from_arm, "--stdout"]).await.success().json();
    assert_eq!(
        built_from_arm["resources"][0]["properties"]["template"],
        serde_json::from_str::<Value>(arm_template).unwrap()
    );
    // Something that is not a Bicep module (an image) is refused in the real Bicep's words.
    let image_config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    push_image(&harness, &login_server, "modules/image", "v1", &image_config).await;
    let from_image = write(
        work.path(),
        "image/main.bicep",
        &caller(&format!("br:{login_server}/modules/image:v1")),
    );
    let not_a_module = consumer
        .berth(&["bicep", "build", &from_image, "--stdout", "--diagnostics-format", "brief"])
        .await;
    assert_eq!(not_a_module.code, 1, "{not_a_module}");
    assert!(
        not_a_module.stderr.contains("Error BCP192: Unable to restore the artifact with reference \"")
            && not_a_module.stderr.contains(": Did not expect config media type \"application/vnd.oci.image.config.v1+json\". A newer version of Bicep might be required to reference this artifact."),
        "{not_a_module}"
    );

    // A generic registry client reads what berth published, byte for byte, with the consumer's credentials.
    skopeo_reads(&harness, &consumer, &format!("{login_server}/modules/storage:v1"), &republished)
        .await;

    // ---- refused without AcrPull ---------------------------------------------------------------------------
    let denied = outsider
        .berth(&["bicep", "build", &main, "--stdout", "--diagnostics-format", "brief"])
        .await;
    assert_eq!(denied.code, 1, "{denied}");
    assert_eq!(denied.stdout, "");
    assert!(
        denied.stderr.contains(&format!(
            "Error BCP192: Unable to restore the artifact with reference \"{target}\": Service request failed. Status: 401 (Unauthorized) UNAUTHORIZED: authentication required, visit https://aka.ms/acr/authorization for more information."
        )),
        "{denied}"
    );
    let restore = outsider.berth(&["bicep", "restore", &main]).await;
    assert_eq!(restore.code, 1, "{restore}");
    assert!(restore.stderr.contains("BCP192"), "{restore}");
    assert!(!outsider
        .dir
        .path()
        .join("bicep/br")
        .join(host.replace(':', "$"))
        .join("myacr$modules$storage/v1$")
        .exists());
    // Nobody logged in: berth's registry is not one the real Bicep trusts (BCP446) until BICEP_TRUSTED_REGISTRIES
    // names it; then an anonymous pull, refused, and no credentials are sent anywhere.
    let anonymous = tempfile::tempdir().unwrap();
    let ca = harness.server.ca_pem_path.clone();
    let untrusted = [("REQUESTS_CA_BUNDLE", Some(ca.as_path()))];
    let build = ["bicep", "build", main.as_str(), "--stdout", "--diagnostics-format", "brief"];
    let blocked = run_berth_with_env(anonymous.path(), &build, &untrusted).await;
    assert_eq!(blocked.code, 1, "{blocked}");
    assert!(
        blocked.stderr.contains(&format!("Error BCP446: Restore from registry \"{host}\" is blocked because it is not in the trusted registries list. See https://aka.ms/bicep/registry-trust for details.")),
        "{blocked}"
    );
    let trusted = [
        ("REQUESTS_CA_BUNDLE", Some(ca.as_path())),
        ("BICEP_TRUSTED_REGISTRIES", Some(Path::new("example.org,127.0.0.1"))),
    ];
    let nobody = run_berth_with_env(anonymous.path(), &build, &trusted).await;
    assert_eq!(nobody.code, 1, "{nobody}");
    assert!(
        nobody.stderr.contains(&format!("Error BCP192: Unable to restore the artifact with reference \"{target}\": the registry asks for credentials and nobody is logged in; run `berth login`")),
        "{nobody}"
    );
    // ... unless the registry allows anonymous pulls.
    harness
        .berth(&["acr", "update", "-n", "myacr", "--anonymous-pull-enabled", "true"])
        .await
        .success();
    let anonymous_build = run_berth_with_env(anonymous.path(), &build, &trusted).await;
    assert_eq!(anonymous_build.success().json(), built);
    harness
        .berth(&["acr", "update", "-n", "myacr", "--anonymous-pull-enabled", "false"])
        .await
        .success();
    // --no-restore compiles with the cache as it is.
    let offline_flag = outsider
        .berth(&[
            "bicep",
            "build",
            &main,
            "--stdout",
            "--no-restore",
            "--diagnostics-format",
            "brief",
        ])
        .await;
    assert_eq!(offline_flag.code, 1, "{offline_flag}");
    assert!(
        offline_flag.stderr.contains(&format!(
            "Error BCP190: The artifact with reference \"{target}\" has not been restored."
        )),
        "{offline_flag}"
    );

    // ---- offline: the cache serves a second build with the server stopped ----------------------------------
    let Harness { server, config_dir: _owner } = harness;
    server.shutdown().await.unwrap();
    let offline = consumer.berth(&["bicep", "build", &main, "--stdout"]).await.success().json();
    assert_eq!(offline, built);
    let offline_digest =
        consumer.berth(&["bicep", "build", &by_digest, "--stdout"]).await.success().json();
    assert_eq!(offline_digest["resources"], built["resources"]);
    // A tampered cache entry is not trusted: restored again, which now fails (the server is gone).
    std::fs::write(tag_dir.join("main.json"), b"{\"tampered\": true}").unwrap();
    let tampered = consumer.berth(&["bicep", "build", &main, "--stdout"]).await;
    assert_eq!(tampered.code, 1, "{tampered}");
    assert!(tampered.stderr.contains("BCP192"), "{tampered}");
}

/// Pushes `template` as the real Bicep CLI does (`OciArtifactRegistry.PublishModule`), as the bootstrap owner over
/// `/v2`; returns the manifest's bytes.
async fn push_as_real_bicep(
    harness: &Harness,
    login_server: &str,
    repository: &str,
    tag: &str,
    template: &[u8],
) -> Vec<u8> {
    let server = &harness.server;
    let url = server.url(&format!(
        "/oauth2/token?service={login_server}&scope=repository:myacr/{repository}:pull,push"
    ));
    let response = server
        .http
        .get(url)
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .send()
        .await
        .unwrap();
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let config = b"{}".to_vec();
    for blob in [&config, &template.to_vec()] {
        let digest = Digest::sha256_of(blob).to_string();
        let response = server
            .http
            .post(server.url(&format!("/v2/myacr/{repository}/blobs/uploads/?digest={digest}")))
            .bearer_auth(&token)
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""artifactType":"application/vnd.ms.bicep.module.artifact","#,
            r#""config":{{"mediaType":"application/vnd.ms.bicep.module.config.v1+json","digest":"{}","size":2,"annotations":{{}}}},"#,
            r#""layers":[{{"mediaType":"application/vnd.ms.bicep.module.layer.v1+json","digest":"{}","size":{},"#,
            r#""annotations":{{"org.opencontainers.image.title":"Compiled ARM template"}}}}],"#,
            r#""annotations":{{"org.opencontainers.image.created":"2026-12-02T06:00:00Z"}}}}"#
        ),
        Digest::sha256_of(&config),
        Digest::sha256_of(template),
        template.len()
    )
    .into_bytes();
    let response = server
        .http
        .put(server.url(&format!("/v2/myacr/{repository}/manifests/{tag}")))
        .bearer_auth(&token)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    manifest
}

/// Pushes a one-layer container image as the bootstrap owner.
async fn push_image(
    harness: &Harness,
    login_server: &str,
    repository: &str,
    tag: &str,
    config: &[u8],
) {
    let server = &harness.server;
    let url = server.url(&format!(
        "/oauth2/token?service={login_server}&scope=repository:myacr/{repository}:pull,push"
    ));
    let response = server
        .http
        .get(url)
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .send()
        .await
        .unwrap();
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let layer = b"not a template".to_vec();
    for blob in [config.to_vec(), layer.clone()] {
        let digest = Digest::sha256_of(&blob).to_string();
        let response = server
            .http
            .post(server.url(&format!("/v2/myacr/{repository}/blobs/uploads/?digest={digest}")))
            .bearer_auth(&token)
            .body(blob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256_of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::sha256_of(&layer).to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let response = server
        .http
        .put(server.url(&format!("/v2/myacr/{repository}/manifests/{tag}")))
        .bearer_auth(&token)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

/// `skopeo inspect --raw` of `reference` with the principal's credentials equals `expected` (skipped, saying so,
/// when skopeo is not installed; `BERTH_REQUIRE_REAL_CLIENTS=1` makes that a failure).
async fn skopeo_reads(harness: &Harness, principal: &Principal, reference: &str, expected: &[u8]) {
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(&harness.server.ca_pem_path, certs.path().join("ca.crt")).unwrap();
    let login = format!("{}:{}", principal.app_id, principal.password);
    let output = tokio::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--cert-dir",
            &certs.path().to_string_lossy(),
            "--creds",
            &login,
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .await;
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("BERTH_REQUIRE_REAL_CLIENTS").map_or(true, |v| v != "1"),
                "skopeo is required (BERTH_REQUIRE_REAL_CLIENTS=1) but not installed"
            );
            eprintln!("SKIPPED: skopeo is not installed; scripts/test.sh installs it");
        }
        Err(e) => panic!("skopeo: {e}"),
        Ok(output) => {
            assert!(output.status.success(), "skopeo: {}", String::from_utf8_lossy(&output.stderr));
            assert_eq!(output.stdout, expected, "skopeo inspect --raw");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_published_with_acrpush_are_consumed_with_acrpull_only() {
    for backend in backends() {
        scenario(backend).await;
    }
}
