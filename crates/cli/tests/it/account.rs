//! `berth login`, `account show|list|set`, `logout`, and the stored profile.

use serde_json::json;

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_accounts_and_account_commands_read_them() {
    let harness = Harness::start().await;
    let server = &harness.server;

    let login = harness.login_owner().await.success().json();
    assert_eq!(
        login,
        json!([{
            "cloudName": "berth",
            "homeTenantId": server.tenant_id,
            "id": server.subscription_id,
            "isDefault": true,
            "managedByTenants": [],
            "name": "berth",
            "state": "Enabled",
            "tenantId": server.tenant_id,
            "user": {"name": server.client_id, "type": "servicePrincipal"}
        }])
    );

    let show = harness.berth(&["account", "show"]).await.success();
    assert_eq!(
        show.json(),
        json!({
            "environmentName": "berth",
            "homeTenantId": server.tenant_id,
            "id": server.subscription_id,
            "isDefault": true,
            "managedByTenants": [],
            "name": "berth",
            "state": "Enabled",
            "tenantId": server.tenant_id,
            "user": {"name": server.client_id, "type": "servicePrincipal"}
        })
    );
    // az's json output: sorted keys, two-space indent, trailing newline.
    assert!(
        show.stdout.starts_with("{\n  \"environmentName\": \"berth\",\n  \"homeTenantId\": "),
        "{show}"
    );
    assert!(show.stdout.ends_with("}\n"));

    let list = harness.berth(&["account", "list", "--query", "[].id", "-o", "tsv"]).await.success();
    assert_eq!(list.stdout, format!("{}\n", server.subscription_id));

    harness.berth(&["account", "set", "--subscription", "berth"]).await.success();
    harness.berth(&["account", "set", "-s", &server.subscription_id]).await.success();
    let unknown = harness.berth(&["account", "set", "--subscription", "nope"]).await;
    assert_eq!(unknown.code, 1, "{unknown}");
    assert_eq!(
        unknown.stderr,
        "ERROR: The subscription of 'nope' doesn't exist in cloud 'berth'.\n"
    );
    let missing = harness.berth(&["account", "set"]).await;
    assert_eq!(missing.code, 2, "{missing}");

    harness.berth(&["logout"]).await.success();
    let after = harness.berth(&["account", "show"]).await;
    assert_eq!(after.code, 1, "{after}");
    assert_eq!(after.stderr, "ERROR: Please run 'berth login' to setup account.\n");
    let again = harness.berth(&["logout"]).await;
    assert_eq!((again.code, again.stderr.as_str()), (1, "ERROR: There are no active accounts.\n"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    // A later command reuses the cached token.
    harness.berth(&["group", "list"]).await.success();
    let mode = |name: &str| {
        let path = harness.config_dir.path().join(name);
        std::fs::metadata(&path).expect("exists").permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("profile.json"), 0o600);
    assert_eq!(mode("token.json"), 0o600);
    let profile =
        std::fs::read_to_string(harness.config_dir.path().join("profile.json")).expect("profile");
    assert!(profile.contains("BEGIN CERTIFICATE"), "the CA is stored with the login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_and_nothing_is_stored() {
    let harness = Harness::start().await;
    let server = &harness.server;
    let ca = server.ca_pem_path.to_string_lossy().into_owned();
    let login = harness.login_as(&server.client_id, "not-the-secret", &ca, &[]).await;
    assert_eq!(login.code, 1, "{login}");
    assert!(login.stderr.starts_with("ERROR: "), "{login}");
    assert!(!harness.config_dir.path().join("profile.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_server_certificate_fails_and_env_bundle_is_honoured() {
    let harness = Harness::start().await;
    let server = &harness.server;
    // Without --ca-file and without a bundle in the environment the generated CA is not trusted.
    let args = [
        "login",
        "--server",
        server.endpoint.as_str(),
        "--service-principal",
        "-u",
        server.client_id.as_str(),
        "-p",
        server.client_secret.as_str(),
        "--tenant",
        server.tenant_id.as_str(),
    ];
    let untrusted = harness.berth(&args).await;
    assert_eq!(untrusted.code, 1, "{untrusted}");
    assert!(untrusted.stderr.contains("request to"), "{untrusted}");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_CONFIG_DIR", harness.config_dir.path())
        .env("REQUESTS_CA_BUNDLE", &server.ca_pem_path)
        .env_remove("SSL_CERT_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("berth runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
