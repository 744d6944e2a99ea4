//! Workload token endpoints: registering a resource as a workload, the App Service protocol (`X-IDENTITY-HEADER`)
//! and the IMDS protocol (the workload's own loopback listener), the tokens' claims and their acceptance by the
//! control plane and the registry's token exchange, header rotation, and above all that one workload can never
//! get another's token, nor one of an identity not assigned to its resource.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const ARM: &str = "https://management.azure.com/";
const ACR: &str = "https://containerregistry.azure.net";
/// A little more than the time a node trusts what it read about a workload.
const RESOLVE_WAIT: Duration = Duration::from_millis(1200);

pub(crate) fn identity_path(ts: &TestServer, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        ts.subscription_id
    )
}

fn endpoint_path(resource: &str) -> String {
    format!("{resource}/providers/Berth.ManagedIdentity/workloadEndpoints/default")
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn put(ts: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let (status, answer) = call(ts, Method::PUT, path, Some(token), Some(body)).await;
    assert!(status == 200 || status == 201, "PUT {path}: {status} {answer}");
    answer
}

async fn create_group(ts: &TestServer, token: &str, name: &str) {
    put(ts, token, &group_path(ts, name), json!({"location": "westeurope"})).await;
}

/// (principalId, clientId) of a new user-assigned identity.
pub(crate) async fn create_identity(
    ts: &TestServer,
    token: &str,
    group: &str,
    name: &str,
) -> (String, String) {
    let body =
        put(ts, token, &identity_path(ts, group, name), json!({"location": "westeurope"})).await;
    let field = |f: &str| body["properties"][f].as_str().unwrap().to_owned();
    (field("principalId"), field("clientId"))
}

/// A registry with a system-assigned identity and the given user-assigned ones; returns its system principal.
async fn create_registry(
    ts: &TestServer,
    token: &str,
    group: &str,
    name: &str,
    users: &[String],
) -> String {
    let identity = if users.is_empty() {
        json!({"type": "SystemAssigned"})
    } else {
        let map: serde_json::Map<String, Value> =
            users.iter().map(|u| (u.clone(), json!({}))).collect();
        json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": map})
    };
    let body = put(
        ts,
        token,
        &registry_path(ts, group, name),
        json!({"location": "westeurope", "sku": {"name": "Basic"}, "identity": identity}),
    )
    .await;
    body["identity"]["principalId"].as_str().unwrap().to_owned()
}

/// A refused App Service request: what, header, query, expected status.
type Attempt<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>, u16);

/// What registering a workload hands out.
pub(crate) struct Registered {
    pub header: String,
    pub identity_endpoint: String,
    pub imds_endpoint: String,
    pub remote_identity_endpoint: String,
}

pub(crate) async fn register(ts: &TestServer, token: &str, resource: &str) -> Registered {
    let (status, body) = call(ts, Method::PUT, &endpoint_path(resource), Some(token), None).await;
    assert_eq!(status, 201, "{body}");
    let text = |f: &str| {
        body["properties"][f].as_str().unwrap_or_else(|| panic!("{f} in {body}")).to_owned()
    };
    Registered {
        header: text("identityHeader"),
        identity_endpoint: text("identityEndpoint"),
        imds_endpoint: text("imdsEndpoint"),
        remote_identity_endpoint: text("remoteIdentityEndpoint"),
    }
}

/// A plain-HTTP client for the loopback listeners (and the server's CA for the main one).
fn client(ts: &TestServer) -> reqwest::Client {
    ts.http.clone()
}

async fn get_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// An App Service protocol request: `GET {endpoint}?api-version=2019-08-01&resource=...&extra`.
pub(crate) async fn app_service(
    ts: &TestServer,
    endpoint: &str,
    header: Option<&str>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client(ts).get(endpoint).query(&[("api-version", "2019-08-01")]).query(query);
    if let Some(header) = header {
        request = request.header("X-IDENTITY-HEADER", header);
    }
    get_json(request).await
}

/// An IMDS protocol request with `Metadata: true`.
async fn imds(ts: &TestServer, base: &str, query: &[(&str, &str)]) -> (u16, Value) {
    get_json(
        client(ts)
            .get(format!("{base}/metadata/identity/oauth2/token"))
            .query(&[("api-version", "2018-02-01")])
            .query(query)
            .header("Metadata", "true"),
    )
    .await
}

fn assert_imds_error(what: &str, answer: &(u16, Value), error: &str) {
    assert_eq!(answer.0, 400, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"], error, "{what}: {}", answer.1);
    assert!(answer.1["error_description"].is_string(), "{what}: {}", answer.1);
}

fn assert_app_service_error(what: &str, answer: &(u16, Value), status: u16) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["statusCode"], json!(status), "{what}: {}", answer.1);
    assert!(
        answer.1["message"].is_string() && answer.1["correlationId"].is_string(),
        "{what}: {}",
        answer.1
    );
}

/// The `oid` of the token an App Service answer carries.
fn oid(answer: &(u16, Value)) -> String {
    assert_eq!(answer.0, 200, "{}", answer.1);
    claims_of(answer.1["access_token"].as_str().unwrap())["oid"].as_str().unwrap().to_owned()
}

async fn assign_role(ts: &TestServer, principal_id: &str, scope: &str, role: &str) {
    let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
    let name = uuid::Uuid::new_v4().to_string();
    let now = "2026-01-01T00:00:00Z".to_owned();
    db.create_role_assignment(&berth_db::RoleAssignmentRecord {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        name,
        scope: scope.to_owned(),
        role_definition_id: format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            ts.subscription_id
        ),
        principal_id: principal_id.to_owned(),
        principal_type: "ServicePrincipal".into(),
        condition: None,
        condition_version: None,
        description: None,
        created_at: now.clone(),
        updated_at: now,
        created_by: None,
        updated_by: None,
    })
    .await
    .unwrap();
    db.close().await;
}

#[tokio::test]
async fn app_service_and_imds_protocols() {
    each_backend(|mut ts| async move {
        let owner = ts.owner_token().await.unwrap();
        create_group(&ts, &owner, "rg1").await;
        let (uami_principal, uami_client) = create_identity(&ts, &owner, "rg1", "id1").await;
        let (stranger_principal, stranger_client) =
            create_identity(&ts, &owner, "rg1", "unattached").await;
        let uami = identity_path(&ts, "rg1", "id1");
        let registry = registry_path(&ts, "rg1", "acrone");
        let system =
            create_registry(&ts, &owner, "rg1", "acrone", std::slice::from_ref(&uami)).await;

        let w = register(&ts, &owner, &registry).await;
        assert!(
            w.identity_endpoint.starts_with("http://127.0.0.1:")
                && w.identity_endpoint.ends_with("/msi/token")
        );
        assert_eq!(format!("{}/msi/token", w.imds_endpoint), w.identity_endpoint);
        assert_eq!(w.remote_identity_endpoint, ts.url("/msi/token"));
        let (status, shown) =
            call(&ts, Method::GET, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!(status, 200, "{shown}");
        assert!(
            shown["properties"].get("identityHeader").is_none(),
            "the secret is shown once: {shown}"
        );
        assert_eq!(shown["properties"]["imdsEndpoint"], json!(w.imds_endpoint));
        assert_eq!(shown["type"], "Berth.ManagedIdentity/workloadEndpoints");

        // App Service: the default identity is the system-assigned one, and the answer is the protocol's shape.
        let answer =
            app_service(&ts, &w.identity_endpoint, Some(&w.header), &[("resource", ARM)]).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        let keys: Vec<&str> = answer.1.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["access_token", "expires_on", "resource", "token_type", "client_id"]);
        assert_eq!(answer.1["resource"], ARM);
        assert_eq!(answer.1["token_type"], "Bearer");
        let expires_on: i64 = answer.1["expires_on"].as_str().unwrap().parse().unwrap();
        let claims = claims_of(answer.1["access_token"].as_str().unwrap());
        assert_eq!(claims["oid"], json!(system));
        assert_eq!(claims["sub"], json!(system));
        assert_eq!(claims["tid"], json!(ts.tenant_id));
        assert_eq!(claims["appid"], answer.1["client_id"]);
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(claims["aud"], ARM, "the audience as asked, trailing slash kept");
        assert_eq!(claims["exp"], json!(expires_on));
        assert_eq!(claims["xms_mirid"], json!(registry), "system-assigned: the resource's id");
        let system_token = answer.1["access_token"].as_str().unwrap().to_owned();

        // Each selector picks the attached user-assigned identity.
        for query in [
            ("client_id", uami_client.as_str()),
            ("principal_id", uami_principal.as_str()),
            ("object_id", uami_principal.as_str()),
            ("mi_res_id", uami.as_str()),
        ] {
            let answer = app_service(
                &ts,
                &w.identity_endpoint,
                Some(&w.header),
                &[("resource", ACR), query],
            )
            .await;
            assert_eq!(oid(&answer), uami_principal, "{query:?}");
            assert_eq!(answer.1["client_id"], json!(uami_client));
            assert_eq!(
                claims_of(answer.1["access_token"].as_str().unwrap())["xms_mirid"],
                json!(uami)
            );
        }
        // The same request on berth's main listener (TLS): the header alone names the workload.
        let answer =
            app_service(&ts, &w.remote_identity_endpoint, Some(&w.header), &[("resource", ARM)])
                .await;
        assert_eq!(oid(&answer), system);

        // Refusals, in the App Service shape.
        let attempts: Vec<Attempt<'_>> = vec![
            ("no header", None, vec![("resource", ARM)], 401),
            ("wrong header", Some("not-the-header"), vec![("resource", ARM)], 401),
            (
                "an identity not attached",
                Some(&w.header),
                vec![("resource", ARM), ("client_id", &stranger_client)],
                400,
            ),
            (
                "two selectors",
                Some(&w.header),
                vec![
                    ("resource", ARM),
                    ("client_id", &uami_client),
                    ("principal_id", &uami_principal),
                ],
                400,
            ),
            ("no resource", Some(&w.header), vec![], 400),
            (
                "unknown resource",
                Some(&w.header),
                vec![("resource", "https://vault.azure.net")],
                400,
            ),
        ];
        for (what, header, query, status) in attempts {
            let answer = app_service(&ts, &w.identity_endpoint, header, &query).await;
            assert_app_service_error(what, &answer, status);
        }
        let old_api = get_json(
            client(&ts)
                .get(&w.identity_endpoint)
                .query(&[("api-version", "2017-09-01"), ("resource", ARM)])
                .header("X-IDENTITY-HEADER", &w.header),
        )
        .await;
        assert_app_service_error("old api-version", &old_api, 400);

        // IMDS on the workload's listener: strings for numbers, the metadata header required exactly.
        let answer = imds(&ts, &w.imds_endpoint, &[("resource", ACR)]).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        for field in [
            "access_token",
            "expires_in",
            "expires_on",
            "ext_expires_in",
            "not_before",
            "resource",
            "token_type",
            "client_id",
        ] {
            assert!(answer.1[field].is_string(), "{field} is a string: {}", answer.1);
        }
        let expires_in: i64 = answer.1["expires_in"].as_str().unwrap().parse().unwrap();
        assert!((3000..=3600).contains(&expires_in), "{expires_in}");
        assert_eq!(answer.1["resource"], ACR);
        let imds_token = answer.1["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims_of(&imds_token)["oid"], json!(system));
        assert_eq!(claims_of(&imds_token)["aud"], ACR);
        for query in [
            ("client_id", uami_client.as_str()),
            ("object_id", uami_principal.as_str()),
            ("msi_res_id", uami.as_str()),
        ] {
            let answer = imds(&ts, &w.imds_endpoint, &[("resource", ARM), query]).await;
            assert_eq!(oid(&answer), uami_principal, "{query:?}");
        }
        let metadata_url = format!("{}/metadata/identity/oauth2/token", w.imds_endpoint);
        for metadata in [None, Some("True"), Some("false")] {
            let mut request = client(&ts)
                .get(&metadata_url)
                .query(&[("api-version", "2018-02-01"), ("resource", ARM)]);
            if let Some(value) = metadata {
                request = request.header("Metadata", value);
            }
            let answer = get_json(request).await;
            assert_imds_error("metadata header", &answer, "bad_request_102");
            assert_eq!(answer.1["error_description"], "Required metadata header not specified");
        }
        assert_imds_error(
            "not attached",
            &imds(&ts, &w.imds_endpoint, &[("resource", ARM), ("object_id", &stranger_principal)])
                .await,
            "invalid_request",
        );
        assert_eq!(
            imds(&ts, &w.imds_endpoint, &[("resource", ARM), ("client_id", &stranger_client)])
                .await
                .1["error_description"],
            "Identity not found"
        );
        assert_imds_error(
            "unknown resource",
            &imds(&ts, &w.imds_endpoint, &[("resource", "https://vault.azure.net")]).await,
            "invalid_resource",
        );
        assert_imds_error(
            "two selectors",
            &imds(
                &ts,
                &w.imds_endpoint,
                &[("resource", ARM), ("client_id", &uami_client), ("msi_res_id", &uami)],
            )
            .await,
            "invalid_request",
        );
        // berth's main listener is no workload's: IMDS there finds no identity.
        assert_imds_error(
            "main listener",
            &imds(&ts, &ts.endpoint, &[("resource", ARM)]).await,
            "invalid_request",
        );

        // The tokens are berth's: the control plane authenticates them (authorization then decides), and the
        // registry exchanges the ACR-audience one for a refresh token.
        let (status, body) = call(&ts, Method::GET, &registry, Some(&system_token), None).await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "{body}");
        assign_role(&ts, &system, &group_path(&ts, "rg1"), READER).await;
        let (status, body) = call(&ts, Method::GET, &registry, Some(&system_token), None).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = get_json(client(&ts).post(ts.url("/oauth2/exchange")).form(&[
            ("grant_type", "access_token"),
            ("service", &format!("{}/acrone", ts.local_addr)),
            ("tenant", &ts.tenant_id),
            ("access_token", &imds_token),
        ]))
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["refresh_token"].is_string(), "{body}");

        // Rotation: a new header works at once, the old one is refused at once.
        let (status, rotated) = call(
            &ts,
            Method::POST,
            &format!("{}/rotateHeader", endpoint_path(&registry)),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 200, "{rotated}");
        let new_header = rotated["properties"]["identityHeader"].as_str().unwrap().to_owned();
        assert_ne!(new_header, w.header);
        assert_eq!(
            rotated["properties"]["identityEndpoint"],
            json!(w.identity_endpoint),
            "the listener stays"
        );
        assert_app_service_error(
            "old header",
            &app_service(&ts, &w.identity_endpoint, Some(&w.header), &[("resource", ARM)]).await,
            401,
        );
        assert_eq!(
            oid(&app_service(&ts, &w.identity_endpoint, Some(&new_header), &[("resource", ARM)])
                .await),
            system
        );

        // A restart reopens the listener on the same port; the stored hash still knows the header.
        ts.restart().await.unwrap();
        assert_eq!(
            oid(&app_service(&ts, &w.identity_endpoint, Some(&new_header), &[("resource", ARM)])
                .await),
            system
        );
        assert_eq!(oid(&imds(&ts, &w.imds_endpoint, &[("resource", ARM)]).await), system);

        // Unregistering closes the listener and retires the header.
        let (status, _) =
            call(&ts, Method::DELETE, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!(status, 200);
        let imds_addr = w.imds_endpoint.trim_start_matches("http://").to_owned();
        assert!(
            tokio::net::TcpStream::connect(&imds_addr).await.is_err(),
            "the listener is closed"
        );
        let answer =
            app_service(&ts, &w.remote_identity_endpoint, Some(&new_header), &[("resource", ARM)])
                .await;
        assert_app_service_error("unregistered", &answer, 401);
        let (status, body) =
            call(&ts, Method::GET, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"), "{body}");
        let (status, _) =
            call(&ts, Method::DELETE, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!(status, 204);
    })
    .await;
}

#[tokio::test]
async fn one_workload_never_gets_anothers_token() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        create_group(&ts, &owner, "rg1").await;
        let (ua_principal, ua_client) = create_identity(&ts, &owner, "rg1", "ida").await;
        let (ub_principal, ub_client) = create_identity(&ts, &owner, "rg1", "idb").await;
        let (us_principal, us_client) = create_identity(&ts, &owner, "rg1", "standalone").await;
        let (ua, ub, us) = (identity_path(&ts, "rg1", "ida"), identity_path(&ts, "rg1", "idb"), identity_path(&ts, "rg1", "standalone"));
        let (reg_a, reg_b) = (registry_path(&ts, "rg1", "acrwla"), registry_path(&ts, "rg1", "acrwlb"));
        let sys_a = create_registry(&ts, &owner, "rg1", "acrwla", std::slice::from_ref(&ua)).await;
        let sys_b = create_registry(&ts, &owner, "rg1", "acrwlb", std::slice::from_ref(&ub)).await;
        let a = register(&ts, &owner, &reg_a).await;
        let b = register(&ts, &owner, &reg_b).await;
        let s = register(&ts, &owner, &us).await;
        assert_ne!(a.imds_endpoint, b.imds_endpoint);

        // Every way of naming another workload's identity, on A's listener, in both protocols, and with A's
        // header on the main listener: refused. A's own identities: granted.
        let foreign: Vec<(&str, &str)> = vec![
            ("object_id", &sys_b), ("object_id", &ub_principal), ("object_id", &us_principal),
            ("client_id", &ub_client), ("client_id", &us_client),
            ("msi_res_id", &ub), ("msi_res_id", &us), ("msi_res_id", &reg_b),
        ];
        for (name, value) in &foreign {
            let answer = imds(&ts, &a.imds_endpoint, &[("resource", ARM), (name, value)]).await;
            assert_imds_error(&format!("IMDS {name}={value}"), &answer, "invalid_request");
            let name = match *name { "msi_res_id" => "mi_res_id", other => other };
            for endpoint in [&a.identity_endpoint, &a.remote_identity_endpoint] {
                let answer = app_service(&ts, endpoint, Some(&a.header), &[("resource", ARM), (name, value)]).await;
                assert_app_service_error(&format!("App Service {endpoint} {name}={value}"), &answer, 400);
            }
        }
        assert_eq!(oid(&imds(&ts, &a.imds_endpoint, &[("resource", ARM)]).await), sys_a);
        assert_eq!(oid(&imds(&ts, &a.imds_endpoint, &[("resource", ARM), ("client_id", &ua_client)]).await), ua_principal);
        assert_eq!(oid(&imds(&ts, &b.imds_endpoint, &[("resource", ARM)]).await), sys_b);
        // A user-assigned identity registered as a workload gets its own token by default, and only its own.
        let own = imds(&ts, &s.imds_endpoint, &[("resource", ARM)]).await;
        assert_eq!(oid(&own), us_principal);
        assert_eq!(claims_of(own.1["access_token"].as_str().unwrap())["xms_mirid"], json!(us));
        assert_imds_error("standalone asks for A's", &imds(&ts, &s.imds_endpoint, &[("resource", ARM), ("object_id", &sys_a)]).await, "invalid_request");

        // A header is good only on its own workload's listener.
        assert_app_service_error("A's header on B's listener", &app_service(&ts, &b.identity_endpoint, Some(&a.header), &[("resource", ARM)]).await, 401);
        assert_app_service_error("B's header on A's listener", &app_service(&ts, &a.identity_endpoint, Some(&b.header), &[("resource", ARM)]).await, 401);
        assert_eq!(oid(&app_service(&ts, &a.remote_identity_endpoint, Some(&b.header), &[("resource", ARM)]).await), sys_b);

        // Detaching an identity from A takes it away from A's workload (after the node's short cache).
        let (status, body) = call(&ts, Method::PATCH, &reg_a, Some(&owner), Some(json!({"identity": {"type": "SystemAssigned"}}))).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(RESOLVE_WAIT).await;
        assert_imds_error("detached", &imds(&ts, &a.imds_endpoint, &[("resource", ARM), ("client_id", &ua_client)]).await, "invalid_request");
        // A new system identity replaces the old one in A's tokens.
        for identity in ["None", "SystemAssigned"] {
            let (status, body) = call(&ts, Method::PATCH, &reg_a, Some(&owner), Some(json!({"identity": {"type": identity}}))).await;
            assert_eq!(status, 200, "{body}");
        }
        tokio::time::sleep(RESOLVE_WAIT).await;
        let renewed = oid(&imds(&ts, &a.imds_endpoint, &[("resource", ARM)]).await);
        assert_ne!(renewed, sys_a);
        // Deleting the resource ends its workload: its listener finds no identity any more.
        let (status, _) = call(&ts, Method::DELETE, &reg_a, Some(&owner), None).await;
        assert_eq!(status, 200);
        tokio::time::sleep(RESOLVE_WAIT).await;
        assert_imds_error("deleted resource", &imds(&ts, &a.imds_endpoint, &[("resource", ARM)]).await, "invalid_request");
        assert_app_service_error("deleted resource", &app_service(&ts, &a.remote_identity_endpoint, Some(&a.header), &[("resource", ARM)]).await, 401);
        assert_eq!(oid(&imds(&ts, &b.imds_endpoint, &[("resource", ARM)]).await), sys_b, "B is untouched");
    })
    .await;
}

#[tokio::test]
async fn registering_a_workload_is_authorized_at_its_resource() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        create_group(&ts, &owner, "rg1").await;
        let registry = registry_path(&ts, "rg1", "acrauth");
        create_registry(&ts, &owner, "rg1", "acrauth", &[]).await;

        // The registry's own identity holds Reader: it may look, not register (which would hand out its tokens).
        let w = register(&ts, &owner, &registry).await;
        let system_token =
            app_service(&ts, &w.identity_endpoint, Some(&w.header), &[("resource", ARM)]).await.1
                ["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
        let system = claims_of(&system_token)["oid"].as_str().unwrap().to_owned();
        assign_role(&ts, &system, &group_path(&ts, "rg1"), READER).await;
        let (status, body) =
            call(&ts, Method::GET, &endpoint_path(&registry), Some(&system_token), None).await;
        assert_eq!(status, 200, "{body}");
        for (method, path) in [
            (Method::PUT, endpoint_path(&registry)),
            (Method::POST, format!("{}/rotateHeader", endpoint_path(&registry))),
            (Method::DELETE, endpoint_path(&registry)),
        ] {
            let (status, body) = call(&ts, method.clone(), &path, Some(&system_token), None).await;
            assert_eq!(
                (status, error_code(&body)),
                (403, "AuthorizationFailed"),
                "{method} {body}"
            );
        }

        // Bad requests: a resource that does not exist, another name, an unknown action.
        let missing = registry_path(&ts, "rg1", "nosuchacr");
        let (status, body) =
            call(&ts, Method::PUT, &endpoint_path(&missing), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (404, "ParentResourceNotFound"), "{body}");
        let other = endpoint_path(&registry).replace("/default", "/other");
        let (status, body) = call(&ts, Method::PUT, &other, Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (400, "BadRequest"), "{body}");
        let (status, body) = call(
            &ts,
            Method::POST,
            &format!("{}/explode", endpoint_path(&registry)),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (status, body) =
            call(&ts, Method::PATCH, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (405, "MethodNotAllowed"), "{body}");
        // Registering again rotates: 200, a new header, the same listener.
        let (status, again) =
            call(&ts, Method::PUT, &endpoint_path(&registry), Some(&owner), None).await;
        assert_eq!(status, 200, "{again}");
        assert_ne!(again["properties"]["identityHeader"], json!(w.header));
        assert_eq!(again["properties"]["imdsEndpoint"], json!(w.imds_endpoint));
    })
    .await;
}

// --- the Azure SDK's own ManagedIdentityCredential -------------------------------------------------------------

/// What the SDK is asked to do: one token for one scope, printed as JSON.
const SDK_SCRIPT: &str = r#"
import json, os, sys
from azure.identity import ManagedIdentityCredential
client_id = os.environ.pop("BERTH_TEST_CLIENT_ID", None)
credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
token = credential.get_token(sys.argv[1])
print(json.dumps({"token": token.token, "expires_on": token.expires_on}))
"#;

fn python() -> String {
    std::env::var("BERTH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether azure-identity can be imported; when not, the test fails if real clients are required, else skips.
fn azure_identity_available() -> bool {
    let found = std::process::Command::new(python())
        .args(["-c", "import azure.identity"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !std::env::var("BERTH_REQUIRE_REAL_CLIENTS").is_ok_and(|v| v == "1"),
            "azure-identity is required (BERTH_REQUIRE_REAL_CLIENTS=1) but {} cannot import it; scripts/test.sh installs it",
            python()
        );
        eprintln!(
            "SKIPPED: azure-identity is not importable by {}; scripts/test.sh installs it",
            python()
        );
    }
    found
}

/// Run the SDK in a clean environment (only `env`, plus what Python needs) and return its token.
async fn sdk_token(env: &[(&str, &str)], scope: &str) -> String {
    let mut command = tokio::process::Command::new(python());
    command.args(["-c", SDK_SCRIPT, scope]).env_clear().env("NO_PROXY", "127.0.0.1,localhost");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the SDK answers in time")
        .expect("python runs");
    assert!(
        output.status.success(),
        "ManagedIdentityCredential failed with {env:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    assert!(answer["expires_on"].as_i64().unwrap() > 0);
    answer["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn azure_sdk_managed_identity_credential() {
    if !azure_identity_available() {
        return;
    }
    let ts = TestServer::start().await.unwrap();
    let owner = ts.owner_token().await.unwrap();
    create_group(&ts, &owner, "rg1").await;
    let (uami_principal, uami_client) = create_identity(&ts, &owner, "rg1", "sdkid").await;
    let registry = registry_path(&ts, "rg1", "sdkacr");
    let system =
        create_registry(&ts, &owner, "rg1", "sdkacr", &[identity_path(&ts, "rg1", "sdkid")]).await;
    let w = register(&ts, &owner, &registry).await;
    let ca = ts.ca_pem_path.display().to_string();

    // App Service protocol on the workload's loopback listener (plain HTTP, as App Service's own endpoint is).
    let app = sdk_token(
        &[("IDENTITY_ENDPOINT", &w.identity_endpoint), ("IDENTITY_HEADER", &w.header)],
        "https://containerregistry.azure.net/.default",
    )
    .await;
    assert_eq!(claims_of(&app)["oid"], json!(system));
    // The same protocol on berth's main listener over TLS, trusting berth's CA.
    let remote = sdk_token(
        &[
            ("IDENTITY_ENDPOINT", &w.remote_identity_endpoint),
            ("IDENTITY_HEADER", &w.header),
            ("REQUESTS_CA_BUNDLE", &ca),
            ("SSL_CERT_FILE", &ca),
        ],
        "https://management.azure.com/.default",
    )
    .await;
    assert_eq!(claims_of(&remote)["aud"], "https://management.azure.com");
    // IMDS protocol through AZURE_POD_IDENTITY_AUTHORITY_HOST, system-assigned and by client id.
    let imds_system = sdk_token(
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &w.imds_endpoint)],
        "https://containerregistry.azure.net/.default",
    )
    .await;
    assert_eq!(claims_of(&imds_system)["oid"], json!(system));
    let imds_user = sdk_token(
        &[
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &w.imds_endpoint),
            ("BERTH_TEST_CLIENT_ID", &uami_client),
        ],
        "https://containerregistry.azure.net/.default",
    )
    .await;
    assert_eq!(claims_of(&imds_user)["oid"], json!(uami_principal));

    // berth accepts what the SDK got: the registry exchanges each for a refresh token, the control plane
    // authenticates the ARM one.
    for token in [&app, &imds_system, &imds_user] {
        let (status, body) = get_json(ts.http.post(ts.url("/oauth2/exchange")).form(&[
            ("grant_type", "access_token"),
            ("service", &format!("{}/sdkacr", ts.local_addr)),
            ("access_token", token),
        ]))
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["refresh_token"].is_string(), "{body}");
    }
    assign_role(&ts, &system, &registry, READER).await;
    let (status, body) = call(&ts, Method::GET, &registry, Some(&remote), None).await;
    assert_eq!(status, 200, "{body}");
}
