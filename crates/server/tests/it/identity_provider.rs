//! The identity provider: discovery, token issue, and the control plane's rejection of every bad token.

use base64::Engine;
use berth_identity::{EntraClaims, KeyRing, SigningKey};
use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const ARM_SCOPE: &str = "https://management.azure.com/.default";

async fn token_request(ts: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = ts.http.post(ts.url(path)).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn discovery_documents_and_jwks() {
    let ts = TestServer::start().await.unwrap();
    let config: Value = ts
        .http
        .get(ts.url(&format!("/{}/v2.0/.well-known/openid-configuration", ts.tenant_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], format!("{}/{}/v2.0", ts.endpoint, ts.tenant_id));
    assert_eq!(
        config["token_endpoint"],
        format!("{}/{}/oauth2/v2.0/token", ts.endpoint, ts.tenant_id)
    );
    let jwks: Value = ts
        .http
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    // Unknown tenant: Entra's error shape.
    let response = ts
        .http
        .get(ts.url("/00000000-0000-0000-0000-00000000dead/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS90002"));
}

#[tokio::test]
async fn client_credentials_tokens_carry_entra_claims() {
    let ts = TestServer::start().await.unwrap();
    let path = format!("/{}/oauth2/v2.0/token", ts.tenant_id);
    let (status, body) = token_request(
        &ts,
        &path,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ts.client_id),
            ("client_secret", &ts.client_secret),
            ("scope", "https://127.0.0.1:8443//.default"),
        ],
    )
    .await;
    // An audience berth does not serve is refused, as Entra refuses unknown resources.
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_resource");

    let own = format!("{}//.default", ts.endpoint);
    let (status, body) = token_request(
        &ts,
        &path,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ts.client_id),
            ("client_secret", &ts.client_secret),
            ("scope", &own),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 3000);
    let token = body["access_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for claim in ["aud", "iss", "iat", "nbf", "exp", "oid", "tid", "sub", "appid", "idtyp"] {
        assert!(payload.get(claim).is_some(), "claim {claim} missing from {payload}");
    }
    assert_eq!(payload["tid"], ts.tenant_id.as_str());
    assert_eq!(payload["appid"], ts.client_id.as_str());
    assert_eq!(payload["idtyp"], "app");
    let (status, _) = call(&ts, Method::GET, "/subscriptions", Some(token), None).await;
    assert_eq!(status, 200, "a token for the server's own URL is a control-plane token");

    // v1 form with `resource`, numbers as strings.
    let (status, body) = token_request(
        &ts,
        &format!("/{}/oauth2/token", ts.tenant_id),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ts.client_id),
            ("client_secret", &ts.client_secret),
            ("resource", "https://management.azure.com/"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["expires_in"].is_string() && body["expires_on"].is_string());
    assert_eq!(body["resource"], "https://management.azure.com/");

    // client_secret_basic.
    let response = ts
        .http
        .post(ts.url(&path))
        .basic_auth(&ts.client_id, Some(&ts.client_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", ARM_SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn token_endpoint_refuses_bad_requests_with_entra_errors() {
    let ts = TestServer::start().await.unwrap();
    let path = format!("/{}/oauth2/v2.0/token", ts.tenant_id);
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &ts.client_id),
                ("client_secret", "wrong"),
                ("scope", ARM_SCOPE),
            ],
            401,
            "invalid_client",
            "AADSTS7000215",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "11111111-1111-1111-1111-111111111111"),
                ("client_secret", "x"),
                ("scope", ARM_SCOPE),
            ],
            400,
            "unauthorized_client",
            "AADSTS700016",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &ts.client_id),
                ("client_secret", &ts.client_secret),
            ],
            400,
            "invalid_request",
            "AADSTS900144",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &ts.client_id),
                ("client_secret", &ts.client_secret),
                ("scope", "https://management.azure.com/user_impersonation"),
            ],
            400,
            "invalid_scope",
            "AADSTS1002012",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &ts.client_id),
                ("client_secret", &ts.client_secret),
                ("scope", "https://vault.azure.net/.default"),
            ],
            400,
            "invalid_resource",
            "AADSTS500011",
        ),
        (
            vec![("grant_type", "password"), ("client_id", &ts.client_id), ("scope", ARM_SCOPE)],
            400,
            "unsupported_grant_type",
            "AADSTS70003",
        ),
        (vec![("client_id", &ts.client_id)], 400, "invalid_request", "AADSTS900144"),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &ts.client_id),
                ("scope", ARM_SCOPE),
            ],
            401,
            "invalid_client",
            "AADSTS7000218",
        ),
    ];
    for (form, status, error, code) in cases {
        let (got, body) = token_request(&ts, &path, &form).await;
        assert_eq!((got, body["error"].as_str().unwrap()), (status, error), "{form:?} -> {body}");
        assert!(body["error_description"].as_str().unwrap().starts_with(code), "{body}");
        assert!(body["error_codes"].is_array());
    }
    // Not a form at all.
    let response = ts
        .http
        .post(ts.url(&path))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Oversized form.
    let big = "x".repeat(100_000);
    let (status, _) =
        token_request(&ts, &path, &[("grant_type", "client_credentials"), ("client_id", &big)])
            .await;
    assert_eq!(status, 400);
}

/// Tokens that must never open the control plane.
#[tokio::test]
async fn control_plane_rejects_forged_expired_misaddressed_and_unsigned_tokens() {
    let ts = TestServer::start().await.unwrap();
    let state = &ts.server().state;
    let good = ts.owner_token().await.unwrap();
    let now = berth_server::time::now_unix();
    let base_claims = |aud: &str, iat: i64, exp: i64| EntraClaims {
        aud: aud.into(),
        iss: state.issuer(),
        iat,
        nbf: iat,
        exp,
        oid: String::new(),
        tid: ts.tenant_id.clone(),
        sub: String::new(),
        appid: Some(ts.client_id.clone()),
        azp: None,
        idtyp: "app".into(),
        ver: "2.0".into(),
        uti: "x".into(),
        xms_mirid: None,
        roles: vec![],
    };
    let owner_oid = {
        let payload: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(good.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        payload["oid"].as_str().unwrap().to_string()
    };
    let claims = |aud: &str, iat: i64, exp: i64| {
        let mut c = base_claims(aud, iat, exp);
        c.oid = owner_oid.clone();
        c.sub = owner_oid.clone();
        c
    };

    let expired = state
        .keys()
        .sign(&claims("https://management.azure.com/", now - 7200, now - 3600))
        .unwrap();
    let not_yet = {
        let mut c = claims("https://management.azure.com/", now + 3600, now + 7200);
        c.nbf = now + 3600;
        state.keys().sign(&c).unwrap()
    };
    let wrong_audience = ts
        .token_for(&ts.client_id, &ts.client_secret, "https://containerregistry.azure.net/.default")
        .await
        .unwrap();
    let wrong_issuer = {
        let mut c = claims("https://management.azure.com/", now, now + 3600);
        c.iss = "https://login.microsoftonline.com/x/v2.0".into();
        state.keys().sign(&c).unwrap()
    };
    let other_key = SigningKey::generate(now).unwrap();
    let forged_other_key = KeyRing::new(vec![other_key])
        .unwrap()
        .sign(&claims("https://management.azure.com/", now, now + 3600))
        .unwrap();
    // Same kid as the real key, signed by another key.
    let forged_same_kid = {
        let other = KeyRing::new(vec![SigningKey::generate(now).unwrap()]).unwrap();
        let t = other.sign(&claims("https://management.azure.com/", now, now + 3600)).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let header = b64(json!({"typ":"JWT","alg":"RS256","kid": state.keys().active_kid()})
            .to_string()
            .as_bytes());
        format!("{header}.{}.{}", parts[1], parts[2])
    };
    let payload =
        b64(serde_json::to_string(&claims("https://management.azure.com/", now, now + 3600))
            .unwrap()
            .as_bytes());
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    let hs256 = format!("{}.{payload}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(b"sig"));
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut p: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
        )
        .unwrap();
        p["oid"] = json!("00000000-0000-0000-0000-000000000001");
        format!("{}.{}.{}", parts[0], b64(p.to_string().as_bytes()), parts[2])
    };

    let cases = [
        ("expired", expired.as_str(), "ExpiredAuthenticationToken"),
        ("not yet valid", not_yet.as_str(), "InvalidAuthenticationToken"),
        ("wrong audience", wrong_audience.as_str(), "InvalidAuthenticationTokenAudience"),
        ("wrong issuer", wrong_issuer.as_str(), "InvalidAuthenticationToken"),
        ("unknown key", forged_other_key.as_str(), "InvalidAuthenticationToken"),
        ("forged with the real kid", forged_same_kid.as_str(), "InvalidAuthenticationToken"),
        ("alg none", alg_none.as_str(), "InvalidAuthenticationToken"),
        ("alg HS256", hs256.as_str(), "InvalidAuthenticationToken"),
        ("tampered payload", tampered.as_str(), "InvalidAuthenticationToken"),
        ("garbage", "not-a-token", "InvalidAuthenticationToken"),
    ];
    for (what, token, code) in cases {
        let (status, body) = call(&ts, Method::GET, "/subscriptions", Some(token), None).await;
        assert_eq!((status, error_code(&body)), (401, code), "{what}: {body}");
    }
    let (status, body) = call(&ts, Method::GET, "/subscriptions", None, None).await;
    assert_eq!((status, error_code(&body)), (401, "AuthenticationFailed"));
    let response = ts
        .http
        .get(ts.url(&format!("/subscriptions?{API}")))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = call(&ts, Method::GET, "/subscriptions", Some(&good), None).await;
    assert_eq!(status, 200);
}
