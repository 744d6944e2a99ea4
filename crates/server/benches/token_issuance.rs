//! Registry token issuance per second for a principal with ten inherited role assignments, against a real
//! berth (in-process, HTTPS, SQLite or PostgreSQL), compared in the same run with the server's HTTP ceiling
//! (`GET /metadata/endpoints`: same listener, TLS and middleware, no store, no crypto).
//!
//! Run: `cargo bench -p berth-server --bench token_issuance` (PostgreSQL too when `BERTH_TEST_POSTGRES_URL` is
//! set). Each measurement runs `CONCURRENCY` clients for `SECONDS` seconds over keep-alive connections.

use std::time::{Duration, Instant};

use berth_test_support::{Backend, TestServer};
use serde_json::{json, Value};

const CONCURRENCY: usize = 8;
const SECONDS: u64 = 5;
const ROLES: [&str; 5] = [
    "7f951dda-4ed3-4680-a7ca-43fe172d538d", // AcrPull
    "8311e382-0749-4cb8-b61a-304f252e45ec", // AcrPush
    "c2f4ef07-c644-48eb-af81-4b1b4947fb11", // AcrDelete
    "acdd72a7-3385-48ef-bd42-f606fba81ae7", // Reader
    "6cef56e8-d556-48e5-a04f-b8e64114680f", // AcrImageSigner
];

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

/// A service principal with ten assignments inherited by the registry (five roles at the subscription, five at
/// the group); returns its registry refresh token.
async fn setup(ts: &TestServer) -> String {
    let owner = ts.owner_token().await.expect("owner token");
    let sub = format!("/subscriptions/{}", ts.subscription_id);
    let group = format!("{sub}/resourceGroups/bench");
    call(
        ts,
        reqwest::Method::PUT,
        &format!("{group}?api-version=2024-11-01"),
        &owner,
        Some(json!({"location": "westeurope"})),
    )
    .await;
    call(
        ts,
        reqwest::Method::PUT,
        &format!("{group}/providers/Microsoft.ContainerRegistry/registries/acrbench?api-version=2026-09-01-preview"),
        &owner,
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
    )
    .await;
    let app = call(
        ts,
        reqwest::Method::POST,
        "/v1.0/applications",
        &owner,
        Some(json!({"displayName": "bench"})),
    )
    .await;
    let sp = call(
        ts,
        reqwest::Method::POST,
        "/v1.0/servicePrincipals",
        &owner,
        Some(json!({"appId": app["appId"]})),
    )
    .await;
    let password = call(
        ts,
        reqwest::Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        &owner,
        Some(json!({})),
    )
    .await;
    for scope in [&sub, &group] {
        for role in ROLES {
            call(
                ts,
                reqwest::Method::PUT,
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01", uuid_like()),
                &owner,
                Some(json!({"properties": {
                    "roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                    "principalId": sp["id"], "principalType": "ServicePrincipal"}})),
            )
            .await;
        }
    }
    let entra = ts
        .token_for(
            app["appId"].as_str().unwrap(),
            password["secretText"].as_str().unwrap(),
            "https://containerregistry.azure.net/.default",
        )
        .await
        .expect("entra token");
    let service = format!("{}/acrbench", ts.local_addr);
    let response = ts
        .http
        .post(ts.url("/oauth2/exchange"))
        .form(&[("grant_type", "access_token"), ("service", &service), ("access_token", &entra)])
        .send()
        .await
        .expect("exchange");
    let body: Value = response.json().await.expect("exchange body");
    body["refresh_token"].as_str().expect("refresh token").to_owned()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-4000-8000-{:012x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Requests per second of `CONCURRENCY` loops running `request` for `SECONDS`; every answer must be 200.
async fn measure<F, Fut>(request: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                assert!(request().await, "a request failed");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn run(backend: Backend) {
    let ts = TestServer::start_on(backend).await.expect("server");
    let refresh = setup(&ts).await;
    let service = format!("{}/acrbench", ts.local_addr);
    // Check the grant once: the ten assignments give pull, push and delete.
    let form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("service".to_owned(), service.clone()),
        ("scope".to_owned(), "repository:acrbench/app:pull,push,delete".to_owned()),
        ("refresh_token".to_owned(), refresh.clone()),
    ];
    let first: Value = ts
        .http
        .post(ts.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(first["access_token"].is_string(), "{first}");

    let http = ts.http.clone();
    let ceiling_url = ts.url("/metadata/endpoints?api-version=2022-09-01");
    let ceiling = measure(move || {
        let http = http.clone();
        let url = ceiling_url.clone();
        async move { http.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let http = ts.http.clone();
    let token_url = ts.url("/oauth2/token");
    let tokens = measure(move || {
        let http = http.clone();
        let url = token_url.clone();
        let form = form.clone();
        async move { http.post(url).form(&form).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    println!(
        "{backend:?}: registry access tokens {tokens:.0}/s (10 inherited assignments, pull+push+delete); \
         HTTP ceiling {ceiling:.0}/s; tokens reach {:.1}% of the ceiling ({CONCURRENCY} clients, {SECONDS} s each)",
        100.0 * tokens / ceiling
    );
    ts.shutdown().await.expect("shutdown");
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        run(Backend::Sqlite).await;
        if std::env::var("BERTH_TEST_POSTGRES_URL").is_ok() {
            run(Backend::Postgres).await;
        }
    });
}
