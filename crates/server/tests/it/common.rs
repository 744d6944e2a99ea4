//! Helpers shared by the integration tests.

use berth_test_support::{backends, TestServer};
use reqwest::Method;
use serde_json::Value;

/// Run a test body once per backend, each on a fresh server.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let server = TestServer::start_on(backend)
            .await
            .unwrap_or_else(|e| panic!("starting a server on {backend:?}: {e:#}"));
        test(server).await;
    }
}

pub const API: &str = "api-version=2024-11-01";

/// One ARM request; returns the status and the JSON body (Null when empty).
pub async fn call(
    ts: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = if path.contains("api-version=") {
        ts.url(path)
    } else {
        ts.url(&format!("{path}{sep}{API}"))
    };
    let mut request = ts.http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    assert!(
        response.headers().contains_key("x-ms-request-id"),
        "every response carries x-ms-request-id"
    );
    let bytes = response.bytes().await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, json)
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no ARM error code>")
}

pub fn group_path(ts: &TestServer, group: &str) -> String {
    format!("/subscriptions/{}/resourcegroups/{group}", ts.subscription_id)
}

pub fn registry_path(ts: &TestServer, group: &str, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}", ts.subscription_id)
}
