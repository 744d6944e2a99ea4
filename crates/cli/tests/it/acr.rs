//! `berth acr create|show|list|update|delete`.

use serde_json::json;

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lifecycle() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    let registry_id = format!("/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/myacr");
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();

    // Without -l the registry takes the group's location.
    let created = harness
        .berth(&["acr", "create", "-g", "rg1", "-n", "myacr", "--sku", "Basic"])
        .await
        .success()
        .json();
    assert_eq!(created["id"], json!(registry_id));
    assert_eq!(created["location"], json!("westeurope"));
    assert_eq!(created["sku"]["name"], json!("Basic"));
    assert_eq!(created["resourceGroup"], json!("rg1"));
    // Properties are flattened as az prints the SDK model.
    assert_eq!(created["adminUserEnabled"], json!(false));
    assert!(created["loginServer"].is_string(), "{created}");
    assert!(created.get("properties").is_none());

    // The scenario's line: Registry_Id=$(az acr show -g <g> -n <registry> --query id --output tsv)
    let id = harness
        .berth(&["acr", "show", "-g", "rg1", "-n", "myacr", "--query", "id", "--output", "tsv"])
        .await
        .success();
    assert_eq!(id.stdout, format!("{registry_id}\n"));

    // Without -g the group is found through the resource list, by name in any case.
    let found = harness
        .berth(&["acr", "show", "-n", "MYACR", "--query", "resourceGroup", "-o", "tsv"])
        .await
        .success();
    assert_eq!(found.stdout, "rg1\n");
    let admin = harness
        .berth(&["acr", "show", "-n", "myacr", "--query", "adminUserEnabled", "-o", "tsv"])
        .await
        .success();
    assert_eq!(admin.stdout, "false\n");

    harness.berth(&["group", "create", "-n", "rg2", "-l", "northeurope"]).await.success();
    harness
        .berth(&[
            "acr", "create", "-g", "rg2", "-n", "otheracr", "--sku", "premium", "-l", "eastus",
        ])
        .await
        .success();
    let all =
        harness.berth(&["acr", "list", "--query", "sort([].name)", "-o", "tsv"]).await.success();
    assert_eq!(all.stdout, "myacr\notheracr\n");
    let in_group = harness
        .berth(&[
            "acr",
            "list",
            "-g",
            "rg2",
            "--query",
            "[].[name, location, sku.name]",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(in_group.stdout, "otheracr\teastus\tPremium\n");

    let updated = harness
        .berth(&[
            "acr",
            "update",
            "-n",
            "myacr",
            "--anonymous-pull-enabled",
            "true",
            "--sku",
            "Standard",
            "--tags",
            "a=b",
        ])
        .await
        .success()
        .json();
    assert_eq!(updated["anonymousPullEnabled"], json!(true));
    assert_eq!(updated["sku"]["name"], json!("Standard"));
    assert_eq!(updated["tags"], json!({"a": "b"}));
    let shown = harness
        .berth(&[
            "acr",
            "show",
            "-g",
            "rg1",
            "-n",
            "myacr",
            "--query",
            "{sku:sku.name, anon:anonymousPullEnabled}",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(shown.stdout, "Standard\tTrue\n");

    harness.berth(&["acr", "delete", "-n", "myacr", "--yes"]).await.success();
    let gone = harness.berth(&["acr", "show", "-n", "myacr"]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert_eq!(
        gone.stderr,
        format!(
            "ERROR: The resource with name 'myacr' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription 'berth ({sub})'.\n"
        )
    );
    let gone_with_group = harness.berth(&["acr", "show", "-g", "rg1", "-n", "myacr"]).await;
    assert_eq!(gone_with_group.code, 1, "{gone_with_group}");
    assert!(gone_with_group.stderr.starts_with("ERROR: ("), "{gone_with_group}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_in_a_missing_group_reports_the_group() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let run =
        harness.berth(&["acr", "create", "-g", "nope", "-n", "myacr", "--sku", "Basic"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.starts_with("ERROR: (ResourceGroupNotFound) "), "{run}");
}
