//! First start, restart and shutdown.

use std::os::unix::fs::PermissionsExt;

use berth_test_support::{backends, TestServer};
use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn first_start_writes_private_bootstrap_and_restart_reuses_everything() {
    for backend in backends() {
        let mut ts = TestServer::start_on(backend).await.unwrap();
        let path = ts.data_dir.path().join("bootstrap.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "bootstrap.json must be private");
        assert!(ts.data_dir.path().join("tls/ca.pem").exists());
        let key_mode =
            std::fs::metadata(ts.data_dir.path().join("tls/ca.key")).unwrap().permissions().mode()
                & 0o777;
        assert_eq!(key_mode, 0o600);
        let bootstrap = std::fs::read_to_string(&path).unwrap();

        let token = ts.owner_token().await.unwrap();
        let (status, _) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "keep"),
            Some(&token),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        let ca_before = ts.ca_pem.clone();

        ts.restart().await.unwrap();
        // Same tenant, subscription, owner secret, CA and data; bootstrap.json untouched.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), bootstrap);
        assert_eq!(std::fs::read_to_string(&ts.ca_pem_path).unwrap(), ca_before);
        let (status, body) =
            call(&ts, Method::GET, &group_path(&ts, "keep"), Some(&token), None).await;
        assert_eq!(status, 200, "a token from before the restart still verifies: {body}");
        let fresh = ts.owner_token().await.unwrap();
        let (status, body) = call(&ts, Method::GET, "/subscriptions", Some(&fresh), None).await;
        assert_eq!(status, 200);
        assert_eq!(body["value"][0]["subscriptionId"], ts.subscription_id.as_str());
        ts.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid_and_jwks_lists_both() {
    let ts = TestServer::start().await.unwrap();
    let old = ts.owner_token().await.unwrap();
    let state = &ts.server().state;
    berth_server::bootstrap::rotate_signing_key(&state.db).await.unwrap();
    state.reload_keys().await.unwrap();
    let new = ts.owner_token().await.unwrap();
    let kid = |t: &str| berth_identity::decode_unverified_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&old), kid(&new));
    let jwks: serde_json::Value = ts
        .http
        .get(ts.url(&format!("/{}/discovery/v2.0/keys", ts.tenant_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&kid(&old).as_str()) && kids.contains(&kid(&new).as_str()), "{kids:?}");
    for token in [&old, &new] {
        let (status, body) = call(&ts, Method::GET, "/subscriptions", Some(token), None).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let ts = TestServer::start().await.unwrap();
    let token = ts.owner_token().await.unwrap();
    // Start a batch of writes, then shut down while they run: each either completes or was never accepted,
    // and everything that answered 201 is there after a restart.
    let mut handles = Vec::new();
    for i in 0..20 {
        let http = ts.http.clone();
        let url = ts.url(&format!("{}?{API}", group_path(&ts, &format!("g{i}"))));
        let token = token.clone();
        handles.push(tokio::spawn(async move {
            http.put(url)
                .bearer_auth(token)
                .json(&json!({"location": "westeurope"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut ts = ts;
    ts.restart().await.unwrap();
    let mut created = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        if let Ok(Ok(201)) = h.await {
            created.push(i);
        }
    }
    for i in created {
        let (status, _) =
            call(&ts, Method::GET, &group_path(&ts, &format!("g{i}")), Some(&token), None).await;
        assert_eq!(status, 200, "group g{i} answered 201 before shutdown and must exist");
    }
}
