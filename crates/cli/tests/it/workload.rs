//! `berth identity endpoint create|show|rotate|delete`: a registry registered as a workload, its header used with
//! the App Service protocol, rotated, and unregistered.

use serde_json::Value;

use crate::common::Harness;

async fn token(harness: &Harness, endpoint: &str, header: &str) -> (u16, Value) {
    let response = harness
        .server
        .http
        .get(endpoint)
        .query(&[("api-version", "2019-08-01"), ("resource", "https://management.azure.com/")])
        .header("X-IDENTITY-HEADER", header)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_endpoint_commands() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    let registry = harness
        .berth(&[
            "acr",
            "create",
            "-g",
            "rg1",
            "-n",
            "wlacr",
            "--sku",
            "Basic",
            "--assign-identity",
        ])
        .await
        .success()
        .json();
    let id = registry["id"].as_str().unwrap().to_owned();

    let created = harness
        .berth(&["identity", "endpoint", "create", "--resource", &id])
        .await
        .success()
        .json();
    let header = created["identityHeader"].as_str().expect("flattened identityHeader").to_owned();
    let endpoint = created["identityEndpoint"].as_str().unwrap().to_owned();
    assert!(
        created["imdsEndpoint"].as_str().unwrap().starts_with("http://127.0.0.1:"),
        "{created}"
    );
    let (status, answer) = token(&harness, &endpoint, &header).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["access_token"].is_string());

    // show never prints the header; --query works as in az.
    let shown = harness
        .berth(&[
            "identity",
            "endpoint",
            "show",
            "--ids",
            &id,
            "--query",
            "identityEndpoint",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(shown.stdout.trim(), endpoint);
    let shown =
        harness.berth(&["identity", "endpoint", "show", "--resource", &id]).await.success().json();
    assert!(shown.get("identityHeader").is_none(), "{shown}");

    let rotated = harness
        .berth(&[
            "identity",
            "endpoint",
            "rotate",
            "--resource",
            &id,
            "--query",
            "identityHeader",
            "-o",
            "tsv",
        ])
        .await
        .success();
    let new_header = rotated.stdout.trim().to_owned();
    assert_ne!(new_header, header);
    assert_eq!(token(&harness, &endpoint, &header).await.0, 401);
    let (status, answer) = token(&harness, &endpoint, &new_header).await;
    assert_eq!(status, 200, "{answer}");

    harness.berth(&["identity", "endpoint", "delete", "--resource", &id, "--yes"]).await.success();
    let gone = harness.berth(&["identity", "endpoint", "show", "--resource", &id]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert!(gone.stderr.starts_with("ERROR: (ResourceNotFound) "), "{gone}");
    let bad = harness.berth(&["identity", "endpoint", "show", "--resource", "myacr"]).await;
    assert_eq!(bad.code, 1, "{bad}");
}
