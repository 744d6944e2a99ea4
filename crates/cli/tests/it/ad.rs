//! `berth ad sp create-for-rbac`, then using the new principal, which has no role yet.

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_service_principal_can_log_in_but_is_not_authorized() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let run =
        harness.berth(&["ad", "sp", "create-for-rbac", "--name", "ci-pipeline"]).await.success();
    assert!(run.stderr.starts_with("WARNING: The output includes credentials"), "{run}");
    let created = run.json();
    let mut keys: Vec<&str> =
        created.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["appId", "displayName", "password", "tenant"]);
    assert_eq!(created["displayName"], "ci-pipeline");
    assert_eq!(created["tenant"], harness.server.tenant_id.as_str());
    let app_id = created["appId"].as_str().expect("appId").to_owned();
    let password = created["password"].as_str().expect("password").to_owned();

    let quiet = harness
        .berth(&["ad", "sp", "create-for-rbac", "-n", "quiet", "--only-show-errors"])
        .await
        .success();
    assert_eq!(quiet.stderr, "");

    harness.berth(&["logout"]).await.success();
    let ca = harness.server.ca_pem_path.to_string_lossy().into_owned();
    // With no role the principal sees no subscription.
    let refused = harness.login_as(&app_id, &password, &ca, &[]).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert_eq!(refused.stderr, format!("ERROR: No subscriptions found for {app_id}.\n"));
    let login =
        harness.login_as(&app_id, &password, &ca, &["--allow-no-subscriptions"]).await.success();
    assert_eq!(login.json(), serde_json::json!([]));

    let sub = harness.server.subscription_id.clone();
    let denied = harness
        .berth(&["group", "create", "-n", "rg1", "-l", "westeurope", "--subscription", &sub])
        .await;
    assert_eq!(denied.code, 1, "{denied}");
    assert!(denied.stderr.starts_with("ERROR: (AuthorizationFailed) "), "{denied}");
    assert!(denied.stderr.contains("\nCode: AuthorizationFailed\nMessage: "), "{denied}");

    let no_default = harness.berth(&["group", "list"]).await;
    assert_eq!(no_default.code, 1, "{no_default}");
    assert!(no_default.stderr.contains("No subscription found"), "{no_default}");
}
