//! Web apps: App Service plans and sites on the control plane, and the host agent that pulls a site's image with
//! the site's managed identity from a berth registry (scenario 1): refused with an actionable message without
//! AcrPull, pulled after the assignment, the platform's manifest chosen from an index, layers unpacked with
//! whiteouts applied and path escapes refused; user-assigned identities through `acrUserManagedIdentityID`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_server::host_agent::{site_directory, HostAgentConfig};
use berth_test_support::images::{
    push_image, push_multi_platform, push_token, sha256, tar_gz, Item,
};
use berth_test_support::{backends, Configure, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const WEB_API: &str = "api-version=2025-05-01";

fn web_path(ts: &TestServer, group: &str, kind: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Web/{kind}/{name}?{WEB_API}",
        ts.subscription_id
    )
}

fn site_path(ts: &TestServer, group: &str, name: &str) -> String {
    web_path(ts, group, "sites", name)
}

/// `site_path` with a child path before the query.
fn site_child(ts: &TestServer, group: &str, name: &str, child: &str) -> String {
    site_path(ts, group, name).replace(&format!("?{WEB_API}"), &format!("/{child}?{WEB_API}"))
}

fn site_id(ts: &TestServer, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Web/sites/{name}",
        ts.subscription_id
    )
}

/// A server whose host agent polls and retries quickly.
async fn fast_agent_server(backend: berth_test_support::Backend) -> TestServer {
    let configure: Configure = Arc::new(|config| {
        config.host_agent = Some(HostAgentConfig {
            poll_interval: Duration::from_millis(100),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_millis(800),
            oci_runtime: None,
        });
    });
    TestServer::start_configured(backend, Some(configure)).await.expect("server")
}

async fn put_ok(ts: &TestServer, token: &str, path: &str, body: Value, expected: u16) -> Value {
    let (status, answer) = call(ts, Method::PUT, path, Some(token), Some(body)).await;
    assert_eq!(status, expected, "PUT {path}: {answer}");
    answer
}

async fn setup_group_and_plan(ts: &TestServer, token: &str) {
    put_ok(ts, token, &group_path(ts, "g"), json!({"location": "westeurope"}), 201).await;
    // az appservice plan create --is-linux sends this body and needs 200, not 201.
    let plan = put_ok(
        ts,
        token,
        &web_path(ts, "g", "serverfarms", "plan1"),
        json!({"location": "westeurope", "properties": {"perSiteScaling": false, "reserved": true},
               "sku": {"capacity": 1, "name": "P0V3", "tier": "PREMIUM0V3"}}),
        200,
    )
    .await;
    assert_eq!(
        (plan["kind"].as_str(), plan["sku"]["tier"].as_str()),
        (Some("linux"), Some("Premium0V3"))
    );
    put_ok(
        ts,
        token,
        &web_path(ts, "g", "serverfarms", "winplan"),
        json!({"location": "westeurope", "sku": {"name": "P1V3"}}),
        200,
    )
    .await;
}

fn plan_id(ts: &TestServer, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/g/providers/Microsoft.Web/serverfarms/{name}",
        ts.subscription_id
    )
}

// ---- images -----------------------------------------------------------------------------------------------------

async fn create_registry(ts: &TestServer, token: &str, name: &str) -> String {
    let path = registry_path(ts, "g", name);
    let body = put_ok(
        ts,
        token,
        &path,
        json!({"location": "westeurope", "sku": {"name": "Standard"}}),
        201,
    )
    .await;
    body["id"].as_str().unwrap().to_string()
}

/// `az role assignment create --assignee <principal> --scope <scope> --role <role>`: through the role-assignment
/// API as the bootstrap owner, as the first source document does.
async fn assign_role(ts: &TestServer, principal_id: &str, scope: &str, role: &str) {
    let owner = ts.owner_token().await.unwrap();
    let path = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let role_definition_id = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        ts.subscription_id
    );
    let body = json!({"properties": {"roleDefinitionId": role_definition_id, "principalId": principal_id,
                                     "principalType": "ServicePrincipal"}});
    let (status, answer) = call(ts, Method::PUT, &path, Some(&owner), Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["properties"]["scope"].as_str().map(str::to_lowercase),
        Some(scope.to_lowercase())
    );
}

/// Polls the site until `done` holds for its `imagePull` (or fails after 30 s); returns the site.
async fn wait_for_pull(
    ts: &TestServer,
    token: &str,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, site) =
            call(ts, Method::GET, &site_path(ts, "g", name), Some(token), None).await;
        assert_eq!(status, 200, "{site}");
        if done(&site["properties"]["imagePull"]) {
            return site;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waiting for {what}: {}",
            site["properties"]["imagePull"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rootfs(ts: &TestServer, id: &str) -> PathBuf {
    site_directory(&ts.server().data_dir, id).join("rootfs")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- tests ------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn plans_and_sites_on_the_control_plane() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_plan(&ts, &owner).await;
        let image = format!("DOCKER|{}/acrone/app:v1", ts.local_addr);
        let path = site_path(&ts, "g", "app1");
        // The body az webapp create sends first (no identity yet); Web PUTs answer 200.
        let body = json!({"location": "westeurope", "properties": {"serverFarmId": plan_id(&ts, "plan1"), "httpsOnly": false,
            "siteConfig": {"appSettings": [{"name": "WEBSITES_ENABLE_APP_SERVICE_STORAGE", "value": "false"}],
                "alwaysOn": true, "acrUseManagedIdentityCreds": true, "linuxFxVersion": image}}});
        let site = put_ok(&ts, &owner, &path, body.clone(), 200).await;
        assert_eq!(site["kind"], "app,linux,container");
        assert_eq!(site["properties"]["sku"], "Premium0V3", "az needs properties.sku");
        assert_eq!(site["properties"]["siteConfig"]["linuxFxVersion"], image);
        assert!(site.get("identity").is_none());

        // Bad input: a clear 400 each, nothing written.
        for (bad, why) in [
            (json!({"location": "westeurope", "properties": {"siteConfig": {"linuxFxVersion": image}}}), "serverFarmId"),
            (json!({"location": "westeurope", "properties": {"serverFarmId": plan_id(&ts, "plan1"),
                "siteConfig": {"linuxFxVersion": "DOCKER|nginx"}}}), "registry"),
            (json!({"location": "westeurope", "properties": {"serverFarmId": plan_id(&ts, "plan1"),
                "siteConfig": {"acrUserManagedIdentityID": "/subscriptions/x/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"}}}), "clientId"),
            (json!({"location": "westeurope", "properties": {"serverFarmId": plan_id(&ts, "nope")}}), "was not found"),
            (json!({"location": "westeurope", "identity": {"type": "Sideways"}, "properties": {"serverFarmId": plan_id(&ts, "plan1")}}), "identity type"),
        ] {
            let (status, answer) = call(&ts, Method::PUT, &site_path(&ts, "g", "bad1"), Some(&owner), Some(bad)).await;
            assert!(status == 400 || status == 404, "{why}: {status} {answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(why), "{why}: {answer}");
        }
        let (status, _) = call(&ts, Method::GET, &site_path(&ts, "g", "bad1"), Some(&owner), None).await;
        assert_eq!(status, 404);

        // Identity as az assigns it: the whole site echoed back with the identity; the principal is stable.
        let mut echoed = site.clone();
        echoed["identity"] = json!({"type": "SystemAssigned"});
        let site = put_ok(&ts, &owner, &path, echoed.clone(), 200).await;
        let principal = site["identity"]["principalId"].as_str().unwrap().to_string();
        assert_eq!(site["identity"]["tenantId"], ts.tenant_id.as_str());
        let again = put_ok(&ts, &owner, &path, echoed, 200).await;
        assert_eq!(again["identity"]["principalId"], principal.as_str());

        // Name availability, config/web, app settings, slot config names.
        let check = format!("/subscriptions/{}/providers/Microsoft.Web/checknameavailability?{WEB_API}", ts.subscription_id);
        let (status, answer) = call(&ts, Method::POST, &check, Some(&owner), Some(json!({"name": "APP1", "type": "Site"}))).await;
        assert_eq!((status, answer["nameAvailable"].as_bool()), (200, Some(false)), "{answer}");
        let (_, answer) = call(&ts, Method::POST, &check, Some(&owner), Some(json!({"name": "free-name", "type": "Site"}))).await;
        assert_eq!(answer["nameAvailable"], true);
        let (status, config) = call(&ts, Method::PATCH, &site_child(&ts, "g", "app1", "config/web"), Some(&owner),
            Some(json!({"location": "westeurope", "properties": {"AcrUserManagedIdentityID": ""}}))).await;
        assert_eq!(status, 200, "{config}");
        assert_eq!(config["name"], "app1");
        assert_eq!(config["properties"]["acrUserManagedIdentityID"], Value::Null);
        assert_eq!(config["properties"]["linuxFxVersion"], image);
        let (status, settings) = call(&ts, Method::POST, &site_child(&ts, "g", "app1", "config/appsettings/list"), Some(&owner), None).await;
        assert_eq!((status, &settings["properties"]), (200, &json!({"WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false"})));
        let (status, _) = call(&ts, Method::GET, &site_child(&ts, "g", "app1", "config/slotConfigNames"), Some(&owner), None).await;
        assert_eq!(status, 200);

        // Lists, and the plan counts its sites and cannot go while it has one.
        let list = format!("/subscriptions/{}/resourceGroups/g/providers/Microsoft.Web/sites?{WEB_API}", ts.subscription_id);
        let (_, listed) = call(&ts, Method::GET, &list, Some(&owner), None).await;
        assert_eq!(listed["value"].as_array().unwrap().len(), 1);
        assert!(listed["value"][0]["properties"]["imagePull"].is_object());
        let (_, plan) = call(&ts, Method::GET, &web_path(&ts, "g", "serverfarms", "plan1"), Some(&owner), None).await;
        assert_eq!(plan["properties"]["numberOfSites"], 1);
        let (status, answer) = call(&ts, Method::DELETE, &web_path(&ts, "g", "serverfarms", "plan1"), Some(&owner), None).await;
        assert_eq!((status, error_code(&answer)), (409, "Conflict"), "{answer}");

        // A principal with Reader may look but not write or restart.
        let (reader, reader_token) = reader_principal(&ts, &owner).await;
        assign_role(&ts, &reader, &group_path(&ts, "g").replace("resourcegroups", "resourceGroups"), READER).await;
        let (status, _) = call(&ts, Method::GET, &path, Some(&reader_token), None).await;
        assert_eq!(status, 200);
        for (method, target) in [
            (Method::PUT, path.clone()),
            (Method::POST, site_child(&ts, "g", "app1", "restart")),
            (Method::DELETE, path.clone()),
            (Method::PATCH, site_child(&ts, "g", "app1", "config/web")),
        ] {
            let (status, answer) = call(&ts, method.clone(), &target, Some(&reader_token), Some(body.clone())).await;
            assert_eq!((status, error_code(&answer)), (403, "AuthorizationFailed"), "{method} {target}: {answer}");
        }

        // Deleting the site deletes its system identity with it.
        let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
        assert!(db.get_principal(&principal).await.unwrap().is_some());
        let (status, _) = call(&ts, Method::DELETE, &path, Some(&owner), None).await;
        assert_eq!(status, 200);
        assert!(db.get_principal(&principal).await.unwrap().is_none(), "the system identity goes with its site");
        assert!(db.site_state(&site_id(&ts, "g", "app1")).await.unwrap().is_none());
        db.close().await;
        let (status, _) = call(&ts, Method::DELETE, &web_path(&ts, "g", "serverfarms", "plan1"), Some(&owner), None).await;
        assert_eq!(status, 200);
    })
    .await;
}

/// A service principal (through the Graph subset) and its ARM token; it has no role yet.
async fn reader_principal(ts: &TestServer, owner: &str) -> (String, String) {
    let (_, app) = call(
        ts,
        Method::POST,
        "/v1.0/applications",
        Some(owner),
        Some(json!({"displayName": "reader"})),
    )
    .await;
    let (_, sp) = call(
        ts,
        Method::POST,
        "/v1.0/servicePrincipals",
        Some(owner),
        Some(json!({"appId": app["appId"]})),
    )
    .await;
    let (_, password) = call(
        ts,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(owner),
        Some(json!({"passwordCredential": {"displayName": "t"}})),
    )
    .await;
    let token = ts
        .token_for(
            app["appId"].as_str().unwrap(),
            password["secretText"].as_str().unwrap(),
            "https://management.azure.com/.default",
        )
        .await
        .unwrap();
    (sp["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn scenario_1_a_site_pulls_with_its_system_identity() {
    for backend in backends() {
        let ts = fast_agent_server(backend).await;
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_plan(&ts, &owner).await;
        let registry_id = create_registry(&ts, &owner, "acrone").await;
        let (linux_digest, _) = push_multi_platform(&ts, "acrone").await;

        // az webapp create ... --assign-identity [system] --acr-use-identity --acr-identity [system]
        let image = format!("{}/acrone/app:v1", ts.local_addr);
        let site = put_ok(
            &ts,
            &owner,
            &site_path(&ts, "g", "app1"),
            json!({"location": "westeurope", "identity": {"type": "SystemAssigned"},
                   "properties": {"serverFarmId": plan_id(&ts, "plan1"),
                     "siteConfig": {"linuxFxVersion": format!("DOCKER|{image}"), "acrUseManagedIdentityCreds": true,
                                    "acrUserManagedIdentityID": ""}}}),
            200,
        )
        .await;
        let principal = site["identity"]["principalId"].as_str().unwrap().to_string();

        // Without AcrPull the pull fails and says why, in words a user can act on.
        let site =
            wait_for_pull(&ts, &owner, "app1", "the refused pull", |p| p["status"] == "Failed")
                .await;
        let pull = &site["properties"]["imagePull"];
        assert_eq!(pull["error"]["code"], "Unauthorized");
        let message = pull["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "unauthorized: identity {principal} has no pull permission on registry acrone"
            )),
            "{message}"
        );
        assert_eq!(pull["image"], format!("DOCKER|{image}"));
        assert!(pull["lastAttempt"].is_string());
        let id = site_id(&ts, "g", "app1");
        assert!(!rootfs(&ts, &id).exists());
        // It keeps retrying with backoff.
        wait_for_pull(&ts, &owner, "app1", "a retry", |p| p["attempts"].as_i64() >= Some(2)).await;

        // az role assignment create --assignee <principalId> --scope <registry id> --role AcrPull
        assign_role(&ts, &principal, &registry_id, ACR_PULL).await;
        let site = wait_for_pull(&ts, &owner, "app1", "the pull after AcrPull", |p| {
            p["status"] == "Succeeded"
        })
        .await;
        let pull = &site["properties"]["imagePull"];
        assert_eq!(pull["digest"], linux_digest.as_str(), "the linux/amd64 manifest of the index");
        assert_eq!(pull["error"], Value::Null);
        assert_eq!(
            pull["runState"], "Pulled",
            "no OCI runtime is configured: the site stops at pulled"
        );

        // The root filesystem: both layers, whiteouts applied, the symlink kept as a link.
        let root = rootfs(&ts, &id);
        assert_eq!(read(&root.join("etc/motd")), "welcome");
        assert_eq!(read(&root.join("srv/index.html")), "<h1>berth</h1>");
        assert!(!root.join("etc/secret").exists(), "a whiteout removes the lower layer's file");
        assert!(!root.join("var/cache/old").exists(), "an opaque whiteout empties the directory");
        assert_eq!(read(&root.join("var/cache/fresh")), "new");
        assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
        assert!(!root.join("etc/.wh.secret").exists());
        let bundle: Value =
            serde_json::from_str(&read(&root.parent().unwrap().join("config.json"))).unwrap();
        assert_eq!(bundle["process"]["args"], json!(["/bin/app", "--serve"]));
        assert_eq!(bundle["process"]["cwd"], "/srv");
        assert_eq!(bundle["root"]["path"], "rootfs");

        // The log tells the story.
        let (status, log) =
            call(&ts, Method::GET, &site_child(&ts, "g", "app1", "log"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let lines: Vec<&str> = log["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert!(lines.iter().any(|l| l.starts_with("pull failed: Unauthorized")), "{lines:?}");
        assert!(
            lines.last().unwrap().starts_with(&format!("pulled DOCKER|{image} ({linux_digest}")),
            "{lines:?}"
        );

        // A restart pulls again at once.
        let before = pull["lastAttempt"].as_str().unwrap().to_string();
        std::fs::remove_file(root.join("etc/motd")).unwrap();
        let (status, _) =
            call(&ts, Method::POST, &site_child(&ts, "g", "app1", "restart"), Some(&owner), None)
                .await;
        assert_eq!(status, 200);
        wait_for_pull(&ts, &owner, "app1", "the pull after restart", |p| {
            p["status"] == "Succeeded" && p["lastAttempt"].as_str() != Some(before.as_str())
        })
        .await;
        assert_eq!(
            read(&root.join("etc/motd")),
            "welcome",
            "the restart unpacked a fresh root filesystem"
        );

        // Deleting the site removes its identity: the principal is gone, and so is its access.
        let (status, _) =
            call(&ts, Method::DELETE, &site_path(&ts, "g", "app1"), Some(&owner), None).await;
        assert_eq!(status, 200);
        // ... and the agent removes its files.
        let site_dir = root.parent().unwrap().to_path_buf();
        let started = Instant::now();
        while site_dir.exists() {
            assert!(started.elapsed() < Duration::from_secs(10), "{} stays", site_dir.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ts.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn user_assigned_identities_platforms_and_unsafe_layers() {
    for backend in backends() {
        let ts = fast_agent_server(backend).await;
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_plan(&ts, &owner).await;
        create_registry(&ts, &owner, "acrone").await;
        let (linux_digest, windows_digest) = push_multi_platform(&ts, "acrone").await;

        // A user-assigned identity with AcrPull on the whole group, named by its clientId.
        let identity_path = format!(
            "/subscriptions/{}/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/puller",
            ts.subscription_id
        );
        let identity =
            put_ok(&ts, &owner, &identity_path, json!({"location": "westeurope"}), 201).await;
        let client_id = identity["properties"]["clientId"].as_str().unwrap().to_string();
        let principal = identity["properties"]["principalId"].as_str().unwrap().to_string();
        assign_role(
            &ts,
            &principal,
            &format!("/subscriptions/{}/resourceGroups/g", ts.subscription_id),
            ACR_PULL,
        )
        .await;
        let image = format!("{}/acrone/app:v1", ts.local_addr);
        let site_body = |fx_key: &str, plan: &str, client: &str| {
            json!({"location": "westeurope",
                   "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_path.clone(): {}}},
                   "properties": {"serverFarmId": plan_id(&ts, plan),
                     "siteConfig": {fx_key: format!("DOCKER|{image}"), "acrUseManagedIdentityCreds": true,
                                    "acrUserManagedIdentityID": client}}})
        };
        let site = put_ok(
            &ts,
            &owner,
            &site_path(&ts, "g", "uami"),
            site_body("linuxFxVersion", "plan1", &client_id),
            200,
        )
        .await;
        assert_eq!(
            site["identity"]["userAssignedIdentities"][&identity_path]["clientId"],
            client_id.as_str()
        );
        let site = wait_for_pull(&ts, &owner, "uami", "the user-assigned pull", |p| {
            p["status"] == "Succeeded"
        })
        .await;
        assert_eq!(site["properties"]["imagePull"]["digest"], linux_digest.as_str());

        // A Windows site gets the index's windows manifest.
        let site = put_ok(
            &ts,
            &owner,
            &site_path(&ts, "g", "win"),
            site_body("windowsFxVersion", "winplan", &client_id),
            200,
        )
        .await;
        assert_eq!(site["kind"], "app,container,windows");
        let site =
            wait_for_pull(&ts, &owner, "win", "the windows pull", |p| p["status"] == "Succeeded")
                .await;
        assert_eq!(site["properties"]["imagePull"]["digest"], windows_digest.as_str());
        assert_eq!(read(&rootfs(&ts, &site_id(&ts, "g", "win")).join("Files/app.exe")), "MZ");

        // A clientId that is not one of the site's identities is named as such.
        let stranger = uuid::Uuid::new_v4().to_string();
        put_ok(
            &ts,
            &owner,
            &site_path(&ts, "g", "uami"),
            site_body("linuxFxVersion", "plan1", &stranger),
            200,
        )
        .await;
        let site =
            wait_for_pull(&ts, &owner, "uami", "the stranger's pull", |p| p["status"] == "Failed")
                .await;
        assert_eq!(site["properties"]["imagePull"]["error"]["code"], "IdentityNotAssigned");
        assert!(site["properties"]["imagePull"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&stranger));

        // Layers that try to leave the root filesystem are refused; nothing lands outside.
        let repository = "acrone/evil";
        let token = push_token(&ts, "acrone", repository).await;
        // Both layers aim at the site's own directory, just above the root filesystem being unpacked.
        let site_dir = site_directory(&ts.server().data_dir, &site_id(&ts, "g", "uami"));
        let escape_target = site_dir.join("escaped");
        let dotdot = push_image(
            &ts,
            repository,
            &token,
            &[tar_gz(&[Item::Raw("../escaped", b"owned")])],
            &["/x"],
        )
        .await;
        let via_link = push_image(
            &ts,
            repository,
            &token,
            &[tar_gz(&[
                Item::Symlink("up", site_dir.to_str().unwrap()),
                Item::File("up/escaped", b"owned"),
            ])],
            &["/x"],
        )
        .await;
        for (manifest, expected) in [(dotdot, "'..'"), (via_link, "symbolic link 'up'")] {
            let reference = format!("{}/{repository}@{}", ts.local_addr, sha256(&manifest));
            let mut body = site_body("linuxFxVersion", "plan1", &client_id);
            body["properties"]["siteConfig"]["linuxFxVersion"] =
                json!(format!("DOCKER|{reference}"));
            put_ok(&ts, &owner, &site_path(&ts, "g", "uami"), body, 200).await;
            let site = wait_for_pull(&ts, &owner, "uami", "the unsafe pull", |p| {
                p["status"] == "Failed"
                    && p["image"].as_str().is_some_and(|i| i.ends_with(&sha256(&manifest)))
            })
            .await;
            let error = &site["properties"]["imagePull"]["error"];
            assert_eq!(error["code"], "LayerRejected", "{error}");
            assert!(error["message"].as_str().unwrap().contains(expected), "{error}");
            assert!(!escape_target.exists(), "nothing was written outside the root filesystem");
        }
        // The last good root filesystem stays in place.
        assert_eq!(read(&rootfs(&ts, &site_id(&ts, "g", "uami")).join("etc/motd")), "welcome");
        ts.shutdown().await.unwrap();
    }
}
