//! Deployment time of the source document's template end to end: the corrected `main.bicep` compiled in-process,
//! then `PUT .../deployments/main` against a real berth (in-process, HTTPS, SQLite) until the deployment GET says
//! `Succeeded` (two modules as nested deployments: a user-assigned identity, then an AcrPull assignment on the
//! registry). The first run creates; the following ones re-deploy the same template (nothing changes).
//!
//! Run: `cargo bench -p berth-server --bench deploy_time` (`BERTH_BENCH_RUNS`, default 10).

use std::path::Path;
use std::time::{Duration, Instant};

use berth_test_support::{Backend, TestServer};
use serde_json::{json, Value};

const API: &str = "api-version=2025-04-01";
const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

async fn call(
    ts: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut request = ts.http.request(method, ts.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// Compile, PUT, poll until final; returns the time taken.
async fn deploy_once(ts: &TestServer, token: &str, main: &Path, parameters: &Value) -> Duration {
    let started = Instant::now();
    let compilation = berth_bicep::compile_path(main);
    let template: Value =
        serde_json::from_str(&compilation.template_text().expect("compiles")).unwrap();
    let path = format!(
        "/subscriptions/{}/resourcegroups/bench/providers/Microsoft.Resources/deployments/main?{API}",
        ts.subscription_id
    );
    let body = json!({"properties": {"template": template, "parameters": parameters, "mode": "Incremental"}});
    call(ts, reqwest::Method::PUT, &path, token, Some(body)).await;
    loop {
        let d = call(ts, reqwest::Method::GET, &path, token, None).await;
        match d["properties"]["provisioningState"].as_str().unwrap() {
            "Succeeded" => return started.elapsed(),
            "Failed" | "Canceled" => panic!("deployment failed: {d}"),
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

fn main() {
    let runs: usize =
        std::env::var("BERTH_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ts = TestServer::start_on(Backend::Sqlite).await.expect("server starts");
        let owner = ts.owner_token().await.expect("owner token");
        let group = format!("/subscriptions/{}/resourceGroups/bench", ts.subscription_id);
        call(&ts, reqwest::Method::PUT, &format!("{group}?api-version=2024-11-01"), &owner, Some(json!({"location": "westeurope"}))).await;
        call(
            &ts,
            reqwest::Method::PUT,
            &format!("{group}/providers/Microsoft.ContainerRegistry/registries/acrbench?api-version=2026-09-01-preview"),
            &owner,
            Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
        )
        .await;
        let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bicep/tests/scenario/corrected/main.bicep");
        let parameters = json!({
            "resourceGroupName": {"value": "bench"},
            "subscriptionId": {"value": ts.subscription_id},
            "managedIdentityName": {"value": "benchid"},
            "acrName": {"value": "acrbench"},
            "acrpullRoleId": {"value": ACR_PULL},
        });
        let first = deploy_once(&ts, &owner, &main, &parameters).await;
        let mut again: Vec<Duration> = Vec::new();
        for _ in 1..runs.max(2) {
            again.push(deploy_once(&ts, &owner, &main, &parameters).await);
        }
        again.sort_unstable();
        let median = again[again.len() / 2];
        println!("deploy_time (SQLite, scenario main.bicep: compile + 2 nested deployments, identity + AcrPull assignment)");
        println!("  first deployment (creates):   {:>8.1} ms", first.as_secs_f64() * 1000.0);
        println!("  re-deployment (no change):    {:>8.1} ms median of {} (min {:.1}, max {:.1})",
            median.as_secs_f64() * 1000.0, again.len(),
            again[0].as_secs_f64() * 1000.0, again[again.len() - 1].as_secs_f64() * 1000.0);
        ts.shutdown().await.ok();
    });
}
