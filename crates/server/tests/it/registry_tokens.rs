//! The registry token service: exchange, refresh, Basic credentials, anonymous pulls, and every bad token.

use base64::Engine;
use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}

async fn setup(ts: &TestServer) -> String {
    let owner = ts.owner_token().await.unwrap();
    call(
        ts,
        Method::PUT,
        &group_path(ts, "g"),
        Some(&owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    for (name, sku, anonymous) in [("acrone", "Basic", false), ("acrtwo", "Standard", true)] {
        let (status, body) = call(ts, Method::PUT, &registry_path(ts, "g", name), Some(&owner), Some(json!({"location": "westeurope", "sku": {"name": sku}, "properties": {"anonymousPullEnabled": anonymous}}))).await;
        assert_eq!(status, 201, "{body}");
    }
    owner
}

async fn form(ts: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = ts.http.post(ts.url(path)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn exchange(ts: &TestServer, service: &str, entra: &str) -> (u16, Value) {
    form(
        ts,
        "/oauth2/exchange",
        &[
            ("grant_type", "access_token"),
            ("service", service),
            ("tenant", &ts.tenant_id),
            ("access_token", entra),
        ],
    )
    .await
}

fn host(ts: &TestServer) -> String {
    ts.local_addr.to_string()
}

async fn access_via_refresh(
    ts: &TestServer,
    service: &str,
    refresh: &str,
    scope: &str,
) -> (u16, Value) {
    form(
        ts,
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("service", service),
            ("scope", scope),
            ("refresh_token", refresh),
        ],
    )
    .await
}

#[tokio::test]
async fn exchange_then_scoped_access_tokens() {
    each_backend(|ts| async move {
        setup(&ts).await;
        let entra = ts.token_for(&ts.client_id, &ts.client_secret, "https://containerregistry.azure.net/.default").await.unwrap();
        let service = format!("{}/acrone", host(&ts));
        let (status, body) = exchange(&ts, &service, &entra).await;
        assert_eq!(status, 200, "{body}");
        let refresh = body["refresh_token"].as_str().unwrap().to_string();
        assert_eq!(claims_of(&refresh)["grant_type"], "refresh_token");
        assert_eq!(claims_of(&refresh)["aud"], service.as_str());

        let (status, body) = access_via_refresh(&ts, &service, &refresh, "repository:acrone/team/app:pull,push repository:acrone/other:delete").await;
        assert_eq!(status, 200, "{body}");
        let access = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(access["grant_type"], "access_token");
        assert_eq!(access["iss"], "Azure Container Registry");
        assert_eq!(access["access"], json!([
            {"type": "repository", "name": "acrone/team/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "acrone/other", "actions": ["delete"]},
        ]));
        assert_eq!(body["token"], body["access_token"]);
        assert_eq!(body["expires_in"], 4500);

        // The same refresh token through Basic auth with the null GUID, GET form, repeated scope parameters.
        let r = ts.http.get(ts.url(&format!("/oauth2/token?service={service}&scope=repository:acrone/app:pull&scope=registry:catalog:*")))
            .basic_auth(NULL_GUID, Some(&refresh)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let access = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(access["access"][0]["actions"], json!(["pull"]));
        assert_eq!(access["access"][1], json!({"type": "registry", "name": "catalog", "actions": ["*"]}));

        // A service principal's own credentials, with the bare server host as service (the `/v2/` challenge's).
        let r = ts.http.get(ts.url(&format!("/oauth2/token?service={}&scope=repository:acrone/app:push&offline_token=true", host(&ts))))
            .basic_auth(&ts.client_id, Some(&ts.client_secret)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"], json!(["push"]));
        assert!(body["refresh_token"].is_string(), "offline_token=true returns a refresh token");
    })
    .await;
}

#[tokio::test]
async fn grants_follow_role_assignments_and_anonymous_pull() {
    let ts = TestServer::start().await.unwrap();
    let owner = setup(&ts).await;
    // A principal with no role: its tokens carry no actions.
    let (_, app) = call(
        &ts,
        Method::POST,
        "/v1.0/applications",
        Some(&owner),
        Some(json!({"displayName": "nobody"})),
    )
    .await;
    let (_, pw) = call(
        &ts,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(&owner),
        Some(json!({})),
    )
    .await;
    let (app_id, secret) = (app["appId"].as_str().unwrap(), pw["secretText"].as_str().unwrap());
    let service = format!("{}/acrone", host(&ts));
    let r = ts
        .http
        .get(ts.url(&format!(
            "/oauth2/token?service={service}&scope=repository:acrone/app:pull,push,delete"
        )))
        .basic_auth(app_id, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"],
        json!([])
    );

    // Anonymous: nothing on a private registry, pull only on an anonymous-pull registry.
    let anon = |scope: String| {
        let http = ts.http.clone();
        let url = ts.url(&format!("/oauth2/token?scope={scope}"));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let body = anon("repository:acrone/app:pull".into()).await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"],
        json!([])
    );
    let body = anon("repository:acrtwo/app:pull,push".into()).await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"],
        json!(["pull"])
    );
    // A scope on a registry that does not exist grants nothing.
    let body = anon("repository:ghost/app:pull".into()).await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"],
        json!([])
    );
}

#[tokio::test]
async fn bad_tokens_and_credentials_are_refused() {
    let ts = TestServer::start().await.unwrap();
    setup(&ts).await;
    let service_one = format!("{}/acrone", host(&ts));
    let service_two = format!("{}/acrtwo", host(&ts));
    let registry_entra = ts
        .token_for(&ts.client_id, &ts.client_secret, "https://containerregistry.azure.net/.default")
        .await
        .unwrap();
    let graph_entra = ts
        .token_for(&ts.client_id, &ts.client_secret, "https://graph.microsoft.com/.default")
        .await
        .unwrap();

    // Exchange: wrong audience, garbage, a registry token instead of an Entra token, unknown registry, wrong tenant.
    let (_, good) = exchange(&ts, &service_one, &registry_entra).await;
    let refresh_one = good["refresh_token"].as_str().unwrap().to_string();
    for (what, service, token) in [
        ("graph audience", service_one.as_str(), graph_entra.as_str()),
        ("garbage", service_one.as_str(), "x.y.z"),
        ("registry refresh token", service_one.as_str(), refresh_one.as_str()),
    ] {
        let (status, body) = exchange(&ts, service, token).await;
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{what}: {body}"
        );
    }
    let (status, _) = exchange(&ts, &format!("{}/nosuchacr", host(&ts)), &registry_entra).await;
    assert_eq!(status, 401);
    let (status, _) = form(
        &ts,
        "/oauth2/exchange",
        &[
            ("grant_type", "access_token"),
            ("service", &service_one),
            ("tenant", "someone-else"),
            ("access_token", &registry_entra),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) =
        form(&ts, "/oauth2/exchange", &[("grant_type", "password"), ("service", &service_one)])
            .await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (400, Some("UNSUPPORTED")), "{body}");

    // Token: another registry's refresh token, an access token as refresh token, an Entra token, a tampered one.
    let (_, ok) =
        access_via_refresh(&ts, &service_one, &refresh_one, "repository:acrone/app:pull").await;
    let access_one = ok["access_token"].as_str().unwrap().to_string();
    let tampered = {
        let parts: Vec<&str> = refresh_one.split('.').collect();
        let mut claims = claims_of(&refresh_one);
        claims["sub"] = json!("00000000-0000-0000-0000-0000000000ff");
        claims["oid"] = json!("00000000-0000-0000-0000-0000000000ff");
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let expired = {
        let state = &ts.server().state;
        let mut claims: berth_identity::RegistryClaims =
            serde_json::from_value(claims_of(&refresh_one)).unwrap();
        claims.exp = claims.iat - 3600;
        claims.nbf = claims.iat - 7200;
        state.keys().sign(&claims).unwrap()
    };
    for (what, service, token) in [
        ("another registry's refresh token", service_two.as_str(), refresh_one.as_str()),
        ("an access token", service_one.as_str(), access_one.as_str()),
        ("an Entra token", service_one.as_str(), registry_entra.as_str()),
        ("a tampered token", service_one.as_str(), tampered.as_str()),
        ("an expired token", service_one.as_str(), expired.as_str()),
    ] {
        let (status, body) =
            access_via_refresh(&ts, service, token, "repository:acrone/app:pull").await;
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{what}: {body}"
        );
    }
    // Wrong secret, unknown client.
    for (user, pass) in [
        (ts.client_id.as_str(), "wrong"),
        ("11111111-1111-1111-1111-111111111111", "x"),
        (NULL_GUID, "not-a-token"),
    ] {
        let r = ts
            .http
            .get(ts.url(&format!(
                "/oauth2/token?service={service_one}&scope=repository:acrone/app:pull"
            )))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{user}");
    }
    // Malformed scope and non-form bodies.
    let (status, body) = access_via_refresh(&ts, &service_one, &refresh_one, "repository").await;
    assert_eq!(status, 400, "{body}");
    let r = ts
        .http
        .post(ts.url("/oauth2/token"))
        .json(&json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
