//! `berth group create|show|list|delete` and the output formats on real answers.

use serde_json::{json, Value};

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lifecycle() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    let group_id = format!("/subscriptions/{sub}/resourceGroups/rg1");

    let created = harness
        .berth(&["group", "create", "-n", "rg1", "-l", "westeurope", "--tags", "team=a", "env"])
        .await
        .success();
    let created = created.json();
    assert_eq!(created["id"], json!(group_id));
    assert_eq!(created["name"], json!("rg1"));
    assert_eq!(created["location"], json!("westeurope"));
    assert_eq!(created["tags"], json!({"team": "a", "env": ""}));
    assert_eq!(created["properties"]["provisioningState"], json!("Succeeded"));
    // A group has no `resourceGroup` added (its ID has too few parts), as in az.
    assert!(created.get("resourceGroup").is_none());

    let id = harness
        .berth(&["group", "show", "-n", "rg1", "--query", "id", "-o", "tsv"])
        .await
        .success();
    assert_eq!(id.stdout, format!("{group_id}\n"));

    // A top-level list is one row per item (knack), a multiselect hash is one row in query order.
    let lines = harness
        .berth(&[
            "group",
            "show",
            "-g",
            "rg1",
            "--query",
            "[name, location, tags.team]",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(lines.stdout, "rg1\nwesteurope\na\n");
    let row = harness
        .berth(&[
            "group",
            "show",
            "-g",
            "rg1",
            "--query",
            "{n:name, l:location, t:tags.team}",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(row.stdout, "rg1\twesteurope\ta\n");

    harness.berth(&["group", "create", "-n", "rg2", "-l", "northeurope"]).await.success();
    let names =
        harness.berth(&["group", "list", "--query", "sort([].name)", "-o", "tsv"]).await.success();
    assert_eq!(names.stdout, "rg1\nrg2\n");
    let listed = harness.berth(&["group", "list"]).await.success().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    let table = harness
        .berth(&[
            "group",
            "list",
            "--query",
            "[?name=='rg1'].{Name:name, Location:location}",
            "-o",
            "table",
        ])
        .await
        .success();
    assert_eq!(table.stdout, "Name    Location\n------  ----------\nrg1     westeurope\n");

    let yaml = harness
        .berth(&[
            "group",
            "show",
            "-n",
            "rg1",
            "--query",
            "{name:name, location:location}",
            "-o",
            "yaml",
        ])
        .await
        .success();
    assert_eq!(yaml.stdout, "location: westeurope\nname: rg1\n");

    let none = harness.berth(&["group", "show", "-n", "rg1", "-o", "none"]).await.success();
    assert_eq!(none.stdout, "");

    let deleted = harness.berth(&["group", "delete", "-n", "rg2", "--yes"]).await.success();
    assert_eq!(deleted.stdout, "");
    let gone = harness.berth(&["group", "show", "-n", "rg2"]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert!(gone.stderr.starts_with("ERROR: (ResourceGroupNotFound) "), "{gone}");
    let remaining: Value =
        harness.berth(&["group", "list", "--query", "[].name"]).await.success().json();
    assert_eq!(remaining, json!(["rg1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_requests_without_secrets() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    // Remove the cached token so the debug run also shows the token request.
    std::fs::remove_file(harness.config_dir.path().join("token.json")).expect("token cached");
    let run = harness.berth(&["group", "list", "--debug"]).await.success();
    assert!(run.stderr.contains("Request URL: '"), "{run}");
    assert!(run.stderr.contains("/resourcegroups?api-version=2024-11-01'"), "{run}");
    assert!(run.stderr.contains("'authorization': 'REDACTED'"), "{run}");
    assert!(run.stderr.contains("client_secret=REDACTED"), "{run}");
    assert!(!run.stderr.contains(&harness.server.client_secret), "the secret leaked:\n{run}");
    let token =
        std::fs::read_to_string(harness.config_dir.path().join("token.json")).expect("token");
    let token: Value = serde_json::from_str(&token).expect("json");
    let access_token = token["accessToken"].as_str().expect("access token");
    assert!(!run.stderr.contains(access_token), "the token leaked:\n{run}");
    // stdout stays clean JSON.
    assert_eq!(run.json(), json!([]));
}
