//! The first source document's command sequence with `berth` in place of `az`: a web app pulls its image with its
//! system-assigned identity, refused (and told why) until `berth role assignment create` grants AcrPull on the
//! registry; then the plan and web-app commands around it (`webapp show|list|restart|log tail|config container`,
//! `appservice plan`), and their errors.

use std::time::{Duration, Instant};

use berth_server::host_agent::HostAgentConfig;
use berth_test_support::images::push_multi_platform;
use serde_json::Value;

use crate::common::{Harness, Run};

/// A server whose host agent polls and retries quickly, so the test sees its outcomes in milliseconds.
async fn fast_agent_harness() -> Harness {
    Harness::start_with(|config| {
        config.host_agent = Some(HostAgentConfig {
            poll_interval: Duration::from_millis(100),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_millis(800),
            oci_runtime: None,
        });
    })
    .await
}

/// Runs `berth webapp show` until `done` holds for the site's `imagePull` (30 s at most); returns it.
async fn wait_for_pull(harness: &Harness, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let run = harness
            .berth(&["webapp", "show", "-g", "rg1", "-n", "app1", "--query", "imagePull"])
            .await
            .success();
        let pull = run.json();
        if done(&pull) {
            return pull;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "waiting for {what}: {pull}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tsv(run: Run) -> String {
    run.success().stdout.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_one_with_berth_in_place_of_az() {
    let harness = fast_agent_harness().await;
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness
        .berth(&["acr", "create", "-g", "rg1", "-n", "acrweb", "--sku", "Standard"])
        .await
        .success();
    let (linux_digest, _) = push_multi_platform(&harness.server, "acrweb").await;
    let login_server = tsv(harness
        .berth(&["acr", "show", "-n", "acrweb", "--query", "loginServer", "-o", "tsv"])
        .await);
    let image = format!("{login_server}/app:v1");

    // az webapp create ... --assign-identity [system] --acr-use-identity --acr-identity [system]
    // (no --plan: a default plan is created, as az does).
    let created = harness
        .berth(&[
            "webapp",
            "create",
            "--resource-group",
            "rg1",
            "--name",
            "app1",
            "--container-image-name",
            &image,
            "--assign-identity",
            "[system]",
            "--acr-use-identity",
            "--acr-identity",
            "[system]",
        ])
        .await
        .success()
        .json();
    assert_eq!(created["identity"]["type"], "SystemAssigned");
    assert_eq!(created["siteConfig"]["acrUseManagedIdentityCreds"], true, "{created}");
    let plans = harness.berth(&["appservice", "plan", "list", "-g", "rg1"]).await.success().json();
    assert_eq!(plans.as_array().map(Vec::len), Some(1), "a default plan: {plans}");

    // Principal_Id=$(az webapp identity show -g <g> -n <app> --query principalId --output tsv)
    let principal = tsv(harness
        .berth(&[
            "webapp",
            "identity",
            "show",
            "-g",
            "rg1",
            "-n",
            "app1",
            "--query",
            "principalId",
            "--output",
            "tsv",
        ])
        .await);
    assert_eq!(principal.len(), 36, "{principal}");
    // Registry_Id=$(az acr show -g <g> -n <registry> --query id --output tsv)
    let registry_id = tsv(harness
        .berth(&["acr", "show", "-g", "rg1", "-n", "acrweb", "--query", "id", "--output", "tsv"])
        .await);

    // Before the assignment the pull fails, and says why.
    let pull = wait_for_pull(&harness, "the refused pull", |p| p["status"] == "Failed").await;
    let message = pull["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "unauthorized: identity {principal} has no pull permission on registry acrweb"
        )),
        "{pull}"
    );

    // az role assignment create --assignee $Principal_Id --scope $Registry_Id --role "AcrPull"
    let assignment = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--scope",
            &registry_id,
            "--role",
            "AcrPull",
        ])
        .await
        .success()
        .json();
    assert_eq!(assignment["principalId"], principal.as_str());
    assert_eq!(
        assignment["scope"].as_str().map(str::to_lowercase),
        Some(registry_id.to_lowercase())
    );

    // The next retry pulls the linux/amd64 image of the index, with no secret anywhere.
    let pull =
        wait_for_pull(&harness, "the pull after AcrPull", |p| p["status"] == "Succeeded").await;
    assert_eq!(pull["digest"], linux_digest.as_str());
    assert_eq!(pull["image"], format!("DOCKER|{image}"));

    // The registry's role assignments can be looked at: the portal's IAM view, for us the CLI.
    let assignments = harness
        .berth(&["role", "assignment", "list", "--scope", &registry_id, "-o", "json"])
        .await
        .success()
        .json();
    assert!(
        assignments.as_array().unwrap().iter().any(|a| a["principalId"] == principal.as_str()
            && a["roleDefinitionName"] == "AcrPull"),
        "{assignments}"
    );

    // The agent's log tells the story; a restart pulls again at once.
    let log = harness.berth(&["webapp", "log", "tail", "-g", "rg1", "-n", "app1"]).await.success();
    let messages: Vec<String> = log
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(messages.iter().any(|m| m.starts_with("pull failed: Unauthorized")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with(&format!("pulled DOCKER|{image}"))),
        "{messages:?}"
    );
    let before = pull["lastAttempt"].as_str().unwrap().to_owned();
    harness.berth(&["webapp", "restart", "-g", "rg1", "-n", "app1"]).await.success();
    wait_for_pull(&harness, "the pull after restart", |p| {
        p["status"] == "Succeeded" && p["lastAttempt"].as_str() != Some(before.as_str())
    })
    .await;

    // The container settings read back as az prints them.
    let container = harness
        .berth(&["webapp", "config", "container", "show", "-g", "rg1", "-n", "app1"])
        .await
        .success()
        .json();
    let settings = container.to_string();
    assert!(settings.contains(&format!("DOCKER|{image}")), "{settings}");

    // Listing and the table output.
    let table = harness.berth(&["webapp", "list", "-g", "rg1", "-o", "table"]).await.success();
    assert!(table.stdout.contains("app1"), "{table}");

    // Removing the assignment stops the next pull (a restart asks for one at once).
    harness
        .berth(&[
            "role",
            "assignment",
            "delete",
            "--assignee",
            &principal,
            "--scope",
            &registry_id,
            "--role",
            "AcrPull",
        ])
        .await
        .success();
    let before = tsv(harness
        .berth(&[
            "webapp",
            "show",
            "-g",
            "rg1",
            "-n",
            "app1",
            "--query",
            "imagePull.lastAttempt",
            "-o",
            "tsv",
        ])
        .await);
    harness.berth(&["webapp", "restart", "-g", "rg1", "-n", "app1"]).await.success();
    let pull = wait_for_pull(&harness, "the refused pull after the removal", |p| {
        p["status"] == "Failed" && p["lastAttempt"].as_str() != Some(before.as_str())
    })
    .await;
    assert_eq!(pull["error"]["code"], "Unauthorized", "{pull}");

    // Deleting the web app takes its identity along; the app is gone.
    harness.berth(&["webapp", "delete", "-g", "rg1", "-n", "app1"]).await.success();
    let gone = harness.berth(&["webapp", "show", "-g", "rg1", "-n", "app1"]).await;
    assert_ne!(gone.code, 0, "{gone}");
    assert!(gone.stderr.contains("ResourceNotFound"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_commands_refuse_bad_input_with_clear_errors() {
    let harness = fast_agent_harness().await;
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness
        .berth(&["appservice", "plan", "create", "-g", "rg1", "-n", "plan1", "--is-linux"])
        .await
        .success();

    // An image reference that is not one.
    let bad = harness
        .berth(&[
            "webapp",
            "create",
            "-g",
            "rg1",
            "-n",
            "app2",
            "--plan",
            "plan1",
            "--container-image-name",
            "UPPER CASE/not an image",
        ])
        .await;
    assert_ne!(bad.code, 0, "{bad}");
    assert!(!bad.stderr.is_empty(), "{bad}");

    // A plan that does not exist.
    let missing = harness
        .berth(&[
            "webapp",
            "create",
            "-g",
            "rg1",
            "-n",
            "app3",
            "--plan",
            "nosuchplan",
            "--container-image-name",
            "127.0.0.1:1/acr/app:v1",
        ])
        .await;
    assert_ne!(missing.code, 0, "{missing}");
    assert!(missing.stderr.contains("nosuchplan"), "{missing}");

    // A plan in use is not deleted.
    harness
        .berth(&[
            "webapp",
            "create",
            "-g",
            "rg1",
            "-n",
            "app4",
            "--plan",
            "plan1",
            "--container-image-name",
            "127.0.0.1:1/acr/app:v1",
        ])
        .await
        .success();
    let in_use =
        harness.berth(&["appservice", "plan", "delete", "-g", "rg1", "-n", "plan1", "--yes"]).await;
    assert_ne!(in_use.code, 0, "{in_use}");
    let shown = harness.berth(&["appservice", "plan", "show", "-g", "rg1", "-n", "plan1"]).await;
    assert_eq!(shown.success().json()["name"], "plan1");
}
