//! Managed identities: user-assigned identities as ARM resources and principals, system-assigned identities on
//! registries, federated identity credentials, and the exchange of an external OIDC token for an identity's token.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_identity::{KeyRing, SigningKey};
use berth_test_support::{backends, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const ISSUER: &str = "https://oidc.cluster.example/issuer";
const URL_ISSUER: &str = "https://ci.example";
const SUBJECT: &str = "system:serviceaccount:ns:app";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn identity_path(ts: &TestServer, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        ts.subscription_id
    )
}

fn credential_path(ts: &TestServer, group: &str, identity: &str, name: &str) -> String {
    format!("{}/federatedIdentityCredentials/{name}", identity_path(ts, group, identity))
}

async fn create_group(ts: &TestServer, token: &str, name: &str) {
    let (status, body) = call(
        ts,
        Method::PUT,
        &group_path(ts, name),
        Some(token),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn create_identity(ts: &TestServer, token: &str, group: &str, name: &str) -> Value {
    let (status, body) = call(
        ts,
        Method::PUT,
        &identity_path(ts, group, name),
        Some(token),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Graph's view of a principal (as `az role assignment create` looks it up), if it exists.
async fn directory_object(ts: &TestServer, token: &str, id: &str) -> Option<Value> {
    let (status, body) = call(
        ts,
        Method::POST,
        "/v1.0/directoryObjects/getByIds",
        Some(token),
        Some(json!({"ids": [id], "types": ["servicePrincipal"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_array().unwrap().first().cloned()
}

/// A role assignment written into the store, as the tests do until the role-assignment API exists.
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

/// A service principal with no role, made through the Graph subset; returns (object id, ARM token).
async fn service_principal(ts: &TestServer, owner: &str, name: &str) -> (String, String) {
    let (status, app) = call(
        ts,
        Method::POST,
        "/v1.0/applications",
        Some(owner),
        Some(json!({"displayName": name})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (status, sp) = call(
        ts,
        Method::POST,
        "/v1.0/servicePrincipals",
        Some(owner),
        Some(json!({"appId": app["appId"]})),
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    let (status, password) = call(
        ts,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(owner),
        Some(json!({"passwordCredential": {"displayName": "t"}})),
    )
    .await;
    assert_eq!(status, 200, "{password}");
    let token = ts
        .token_for(
            app["appId"].as_str().unwrap(),
            password["secretText"].as_str().unwrap(),
            ARM_SCOPE,
        )
        .await
        .unwrap();
    (sp["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn user_assigned_identity_lifecycle() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let t = Some(owner.as_str());
        create_group(&ts, &owner, "rg1").await;
        create_group(&ts, &owner, "rg2").await;

        let created = create_identity(&ts, &owner, "rg1", "Id-One").await;
        let id = identity_path(&ts, "rg1", "Id-One");
        assert_eq!(created["id"], json!(id));
        assert_eq!(created["name"], "Id-One");
        assert_eq!(created["type"], "Microsoft.ManagedIdentity/userAssignedIdentities");
        assert_eq!(created["location"], "westeurope");
        assert_eq!(created["properties"]["tenantId"], ts.tenant_id.as_str());
        let principal_id = created["properties"]["principalId"].as_str().unwrap().to_owned();
        let client_id = created["properties"]["clientId"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&principal_id).is_ok() && uuid::Uuid::parse_str(&client_id).is_ok());
        assert_ne!(principal_id, client_id);

        // The identity is a principal at once, of the managed-identity kind, and has no secret to get a token with.
        let object = directory_object(&ts, &owner, &principal_id).await.expect("the principal exists");
        assert_eq!(object["appId"], json!(client_id));
        assert_eq!(object["servicePrincipalType"], "ManagedIdentity");
        assert_eq!(object["displayName"], "Id-One");
        let refused = ts.token_for(&client_id, "any-secret", ARM_SCOPE).await.unwrap_err();
        assert!(refused.to_string().contains("7000215"), "{refused}");

        // Reads are stable; the path's casing does not matter and the name keeps its creation casing.
        let (status, shown) = call(&ts, Method::GET, &id.to_ascii_lowercase(), t, None).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["id"], json!(id));
        assert_eq!(shown["properties"]["principalId"], json!(principal_id));

        // PUT again: an update keeping the principal; another location is refused.
        let (status, again) = call(
            &ts,
            Method::PUT,
            &id,
            t,
            Some(json!({"location": "WestEurope", "tags": {"team": "a"}})),
        )
        .await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["properties"]["principalId"], json!(principal_id));
        assert_eq!(again["tags"], json!({"team": "a"}));
        let (status, body) =
            call(&ts, Method::PUT, &id, t, Some(json!({"location": "eastus"}))).await;
        assert_eq!((status, error_code(&body)), (409, "InvalidResourceLocation"), "{body}");
        let (status, body) = call(&ts, Method::PATCH, &id, t, Some(json!({"tags": {"b": "c"}}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["tags"].clone(), body["properties"]["clientId"].clone()), (json!({"b": "c"}), json!(client_id)));

        // Lists: by group and by subscription, and in the generic resource list.
        create_identity(&ts, &owner, "rg2", "other").await;
        let base = format!("/subscriptions/{}", ts.subscription_id);
        let (status, in_group) = call(
            &ts,
            Method::GET,
            &format!("{base}/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
            t,
            None,
        )
        .await;
        assert_eq!(status, 200, "{in_group}");
        let names = |v: &Value| -> Vec<String> {
            v["value"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(names(&in_group), vec!["Id-One"]);
        let (_, all) = call(
            &ts,
            Method::GET,
            &format!("{base}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
            t,
            None,
        )
        .await;
        assert_eq!(names(&all), vec!["Id-One", "other"]);
        let (_, generic) = call(
            &ts,
            Method::GET,
            &format!("{base}/resources?$filter=resourceType eq 'Microsoft.ManagedIdentity/userAssignedIdentities'"),
            t,
            None,
        )
        .await;
        assert_eq!(names(&generic), vec!["Id-One", "other"]);

        // Bad input and missing things, in ARM's words.
        for (path, code, status) in [
            (identity_path(&ts, "rg1", "a"), "InvalidResourceName", 400),
            (identity_path(&ts, "rg1", "bad.name"), "InvalidResourceName", 400),
            (identity_path(&ts, "nope", "id1"), "ResourceGroupNotFound", 404),
        ] {
            let (got, body) =
                call(&ts, Method::PUT, &path, t, Some(json!({"location": "westeurope"}))).await;
            assert_eq!((got, error_code(&body)), (status, code), "{path}: {body}");
        }
        let (status, body) = call(&ts, Method::PUT, &identity_path(&ts, "rg1", "id9"), t, Some(json!({}))).await;
        assert_eq!((status, error_code(&body)), (400, "LocationRequired"));
        let (status, body) = call(&ts, Method::GET, &identity_path(&ts, "rg1", "missing"), t, None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));

        // A caller without rights learns nothing, whether or not the identity exists.
        let (stranger_id, stranger) = service_principal(&ts, &owner, "stranger").await;
        for path in [id.clone(), identity_path(&ts, "rg1", "missing")] {
            let (status, body) = call(&ts, Method::GET, &path, Some(&stranger), None).await;
            assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("userAssignedIdentities/read"));
        }
        let (status, body) = call(&ts, Method::DELETE, &id, Some(&stranger), None).await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"));
        assign_role(&ts, &stranger_id, &group_path(&ts, "rg2"), READER).await;
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "rg2", "other"), Some(&stranger), None).await;
        assert_eq!(status, 200);
        let (status, body) = call(&ts, Method::DELETE, &identity_path(&ts, "rg2", "other"), Some(&stranger), None).await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"));

        // Delete: the principal goes with the resource.
        let (status, _) = call(&ts, Method::DELETE, &id, t, None).await;
        assert_eq!(status, 200);
        assert!(directory_object(&ts, &owner, &principal_id).await.is_none());
        let (status, _) = call(&ts, Method::GET, &id, t, None).await;
        assert_eq!(status, 404);
        let (status, _) = call(&ts, Method::DELETE, &id, t, None).await;
        assert_eq!(status, 204);

        // A group's deletion takes its identities, their principals and their federated credentials.
        let other = create_identity(&ts, &owner, "rg2", "second").await;
        let (status, body) = call(
            &ts,
            Method::PUT,
            &credential_path(&ts, "rg2", "second", "fic1"),
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT}})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let other_principal = other["properties"]["principalId"].as_str().unwrap().to_owned();
        assert!(directory_object(&ts, &owner, &other_principal).await.is_some());
        let (status, _) = call(&ts, Method::DELETE, &group_path(&ts, "rg2"), t, None).await;
        assert_eq!(status, 200);
        assert!(directory_object(&ts, &owner, &other_principal).await.is_none());
        let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
        let second = identity_path(&ts, "rg2", "second");
        assert!(db.federated_credentials_of(&second).await.unwrap().is_empty());
        assert!(db.identity_principal(&second, berth_db::PrincipalKind::UserAssignedIdentity).await.unwrap().is_none());
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn federated_credentials_are_child_resources() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let t = Some(owner.as_str());
        create_group(&ts, &owner, "rg1").await;
        create_identity(&ts, &owner, "rg1", "id1").await;
        let path = credential_path(&ts, "rg1", "id1", "Fic-1");

        let (status, created) = call(
            &ts,
            Method::PUT,
            &path,
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT}})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["id"], json!(path));
        assert_eq!(created["name"], "Fic-1");
        assert_eq!(created["type"], "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials");
        assert_eq!(
            created["properties"],
            json!({"issuer": ISSUER, "subject": SUBJECT, "audiences": ["api://AzureADTokenExchange"]})
        );
        let (status, shown) = call(&ts, Method::GET, &path.to_ascii_lowercase(), t, None).await;
        assert_eq!((status, shown["id"].clone()), (200, json!(path)));

        // Update in place, then a second credential; (issuer, subject) is unique per identity.
        let (status, updated) = call(
            &ts,
            Method::PUT,
            &path,
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT, "audiences": ["api://custom"]}})),
        )
        .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["properties"]["audiences"], json!(["api://custom"]));
        let second = credential_path(&ts, "rg1", "id1", "fic2");
        let (status, body) = call(
            &ts,
            Method::PUT,
            &second,
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT}})),
        )
        .await;
        assert_eq!((status, error_code(&body)), (409, "Conflict"), "{body}");
        let (status, _) = call(
            &ts,
            Method::PUT,
            &second,
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": "system:serviceaccount:ns:other"}})),
        )
        .await;
        assert_eq!(status, 201);
        let (status, list) = call(
            &ts,
            Method::GET,
            &format!("{}/federatedIdentityCredentials", identity_path(&ts, "rg1", "id1")),
            t,
            None,
        )
        .await;
        assert_eq!(status, 200, "{list}");
        let names: Vec<&str> = list["value"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["Fic-1", "fic2"]);

        // Bad input.
        for props in [
            json!({"issuer": "http://plain.example", "subject": SUBJECT}),
            json!({"issuer": ISSUER}),
            json!({"issuer": ISSUER, "subject": SUBJECT, "audiences": []}),
        ] {
            let (status, body) = call(
                &ts,
                Method::PUT,
                &credential_path(&ts, "rg1", "id1", "bad"),
                t,
                Some(json!({"properties": props})),
            )
            .await;
            assert_eq!((status, error_code(&body)), (400, "BadRequest"), "{body}");
        }
        let (status, body) = call(
            &ts,
            Method::PUT,
            &credential_path(&ts, "rg1", "id1", "x"),
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT}})),
        )
        .await;
        assert_eq!((status, error_code(&body)), (400, "InvalidResourceName"));
        let (status, body) = call(
            &ts,
            Method::PUT,
            &credential_path(&ts, "rg1", "nosuchid", "fic1"),
            t,
            Some(json!({"properties": {"issuer": ISSUER, "subject": SUBJECT}})),
        )
        .await;
        assert_eq!((status, error_code(&body)), (404, "ParentResourceNotFound"), "{body}");
        let (status, body) =
            call(&ts, Method::GET, &credential_path(&ts, "rg1", "id1", "missing"), t, None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));

        let (status, _) = call(&ts, Method::DELETE, &path, t, None).await;
        assert_eq!(status, 200);
        let (status, _) = call(&ts, Method::DELETE, &path, t, None).await;
        assert_eq!(status, 204);
        // Deleting the identity deletes its credentials.
        let (status, _) = call(&ts, Method::DELETE, &identity_path(&ts, "rg1", "id1"), t, None).await;
        assert_eq!(status, 200);
        create_identity(&ts, &owner, "rg1", "id1").await;
        let (status, list) = call(
            &ts,
            Method::GET,
            &format!("{}/federatedIdentityCredentials", identity_path(&ts, "rg1", "id1")),
            t,
            None,
        )
        .await;
        assert_eq!((status, list["value"].clone()), (200, json!([])));
    })
    .await;
}

#[tokio::test]
async fn registry_identities() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let t = Some(owner.as_str());
        create_group(&ts, &owner, "rg1").await;
        let registry = registry_path(&ts, "rg1", "myacr");

        let (status, created) = call(
            &ts,
            Method::PUT,
            &registry,
            t,
            Some(json!({"location": "westeurope", "sku": {"name": "Basic"}, "identity": {"type": "systemassigned"}})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let identity = &created["identity"];
        assert_eq!(identity["type"], "SystemAssigned");
        assert_eq!(identity["tenantId"], ts.tenant_id.as_str());
        assert!(identity.get("userAssignedIdentities").is_none());
        let first = identity["principalId"].as_str().unwrap().to_owned();
        let object = directory_object(&ts, &owner, &first).await.expect("system identity principal");
        assert_eq!((object["displayName"].clone(), object["servicePrincipalType"].clone()), (json!("myacr"), json!("ManagedIdentity")));

        // Other changes keep it; reads show it.
        let (status, patched) = call(&ts, Method::PATCH, &registry, t, Some(json!({"tags": {"a": "b"}}))).await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["identity"]["principalId"], json!(first));
        let (_, shown) = call(&ts, Method::GET, &registry, t, None).await;
        assert_eq!(shown["identity"], created["identity"]);

        // Off removes the principal; on again gives a new one.
        let (status, off) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "None"}}))).await;
        assert_eq!(status, 200, "{off}");
        assert!(off.get("identity").is_none(), "{off}");
        assert!(directory_object(&ts, &owner, &first).await.is_none());
        let (status, on) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "SystemAssigned"}}))).await;
        assert_eq!(status, 200, "{on}");
        let second = on["identity"]["principalId"].as_str().unwrap().to_owned();
        assert_ne!(second, first);
        assert!(directory_object(&ts, &owner, &second).await.is_some());

        // User-assigned identities: looked up by ID in any casing, answered with their principalId and clientId.
        let uami = create_identity(&ts, &owner, "rg1", "id1").await;
        let uami_id = identity_path(&ts, "rg1", "id1");
        let (status, both) = call(
            &ts,
            Method::PATCH,
            &registry,
            t,
            Some(json!({"identity": {"type": "SystemAssigned, UserAssigned",
                                     "userAssignedIdentities": {uami_id.to_ascii_lowercase(): {}}}})),
        )
        .await;
        assert_eq!(status, 200, "{both}");
        assert_eq!(both["identity"]["type"], "SystemAssigned, UserAssigned");
        assert_eq!(both["identity"]["principalId"], json!(second));
        assert_eq!(
            both["identity"]["userAssignedIdentities"],
            json!({uami_id.clone(): {"principalId": uami["properties"]["principalId"], "clientId": uami["properties"]["clientId"]}})
        );

        // Refusals: an unknown identity, a bad type, user-assigned entries with a system-only type.
        let missing = identity_path(&ts, "rg1", "nosuchidentity");
        for (body, code) in [
            (json!({"type": "UserAssigned", "userAssignedIdentities": {missing.clone(): {}}}), "FailedIdentityOperation"),
            (json!({"type": "Both"}), "BadRequest"),
            (json!({"type": "SystemAssigned", "userAssignedIdentities": {uami_id.clone(): {}}}), "BadRequest"),
            (json!({"type": "UserAssigned", "userAssignedIdentities": {"not-an-id": {}}}), "BadRequest"),
        ] {
            let (status, answer) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": body}))).await;
            assert_eq!((status, error_code(&answer)), (400, code), "{answer}");
        }
        let (status, answer) = call(
            &ts,
            Method::PATCH,
            &registry,
            t,
            Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {missing.clone(): {}}}})),
        )
        .await;
        assert!(answer["error"]["message"].as_str().unwrap().contains(&missing), "{answer}");
        assert_eq!(status, 400);
        // Nothing changed by the refused requests.
        let (_, shown) = call(&ts, Method::GET, &registry, t, None).await;
        assert_eq!(shown["identity"], both["identity"]);

        // Dropping the system identity keeps the user-assigned one (PATCH merges the map).
        let (status, user_only) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "UserAssigned"}}))).await;
        assert_eq!(status, 200, "{user_only}");
        assert_eq!(user_only["identity"]["type"], "UserAssigned");
        assert!(user_only["identity"].get("principalId").is_none());
        assert_eq!(user_only["identity"]["userAssignedIdentities"], both["identity"]["userAssignedIdentities"]);
        assert!(directory_object(&ts, &owner, &second).await.is_none());

        // Attaching someone else's identity needs its assign action (ARM's linked authorization).
        create_group(&ts, &owner, "rg2").await;
        let theirs = identity_path(&ts, "rg2", "theirs");
        create_identity(&ts, &owner, "rg2", "theirs").await;
        let (contributor_id, contributor) = service_principal(&ts, &owner, "contributor").await;
        assign_role(&ts, &contributor_id, &group_path(&ts, "rg1"), CONTRIBUTOR).await;
        let attach = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {theirs.clone(): {}}}});
        let (status, answer) = call(&ts, Method::PATCH, &registry, Some(&contributor), Some(attach.clone())).await;
        assert_eq!((status, error_code(&answer)), (403, "LinkedAuthorizationFailed"), "{answer}");
        let missing_theirs = identity_path(&ts, "rg2", "nothere");
        let (status, answer) = call(
            &ts,
            Method::PATCH,
            &registry,
            Some(&contributor),
            Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {missing_theirs: {}}}})),
        )
        .await;
        assert_eq!((status, error_code(&answer)), (403, "LinkedAuthorizationFailed"), "{answer}");
        assign_role(&ts, &contributor_id, &group_path(&ts, "rg2"), CONTRIBUTOR).await;
        let (status, answer) = call(&ts, Method::PATCH, &registry, Some(&contributor), Some(attach)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["identity"]["userAssignedIdentities"].as_object().unwrap().len(), 2);

        // null removes one entry.
        let (status, answer) = call(
            &ts,
            Method::PATCH,
            &registry,
            t,
            Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {theirs.to_ascii_lowercase(): null}}})),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["identity"]["userAssignedIdentities"].as_object().unwrap().keys().collect::<Vec<_>>(),
            vec![&uami_id]
        );

        // Concurrent requests turning the system identity on create exactly one principal; the others are told
        // to retry.
        let (status, _) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "UserAssigned"}}))).await;
        assert_eq!(status, 200);
        let racers = (0..6).map(|_| {
            call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "SystemAssigned, UserAssigned"}})))
        });
        let answers = futures::future::join_all(racers).await;
        assert!(answers.iter().all(|(s, b)| *s == 200 || (*s == 409 && error_code(b) == "Conflict")), "{answers:?}");
        assert!(answers.iter().any(|(s, _)| *s == 200));
        let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
        let principals = db.identity_principals(&registry).await.unwrap();
        db.close().await;
        let (_, shown) = call(&ts, Method::GET, &registry, t, None).await;
        assert_eq!(principals.len(), 1, "{principals:?}");
        assert_eq!(shown["identity"]["principalId"], json!(principals[0].id));

        // A registry created with a system identity and then deleted takes the principal with it.
        let (status, again) = call(&ts, Method::PATCH, &registry, t, Some(json!({"identity": {"type": "SystemAssigned,UserAssigned"}}))).await;
        assert_eq!(status, 200, "{again}");
        let third = again["identity"]["principalId"].as_str().unwrap().to_owned();
        assert!(directory_object(&ts, &owner, &third).await.is_some());
        let (status, _) = call(&ts, Method::DELETE, &registry, t, None).await;
        assert_eq!(status, 200);
        assert!(directory_object(&ts, &owner, &third).await.is_none());
        // The user-assigned identity lives on: it is a resource of its own.
        assert!(directory_object(&ts, &owner, uami["properties"]["principalId"].as_str().unwrap()).await.is_some());
    })
    .await;
}

// ---- federation -------------------------------------------------------------------------------------------

/// An external OIDC issuer: its signing key ring (a fresh RSA key) and its JWKS.
struct Issuer {
    ring: KeyRing,
}

impl Issuer {
    fn new() -> Issuer {
        Issuer { ring: KeyRing::new(vec![SigningKey::generate(0).unwrap()]).unwrap() }
    }

    fn jwks(&self) -> String {
        self.ring.jwks().to_string()
    }

    fn token(&self, claims: &Value) -> String {
        self.ring.sign(claims).unwrap()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn external_claims(issuer: &str, subject: &str, audience: &str) -> Value {
    let now = now();
    json!({"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now, "exp": now + 600})
}

/// Serves `body` with status 200 to every request on a loopback port; returns the URL.
async fn serve_once_per_request(body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}/openid/v1/jwks")
}

/// The token endpoint with a client assertion; (status, body).
async fn exchange(ts: &TestServer, client_id: &str, assertion: &str) -> (u16, Value) {
    let response = ts
        .http
        .post(ts.url(&format!("/{}/oauth2/v2.0/token", ts.tenant_id)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", ARM_SCOPE),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_aadsts(what: &str, answer: &(u16, Value), status: u16, error: &str, code: u64) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{what}: {body}");
    assert_eq!(body["error"], error, "{what}: {body}");
    assert_eq!(body["error_codes"], json!([code]), "{what}: {body}");
    assert!(
        body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}: ")),
        "{what}: {body}"
    );
}

async fn federated_server(backend: Backend, jwks_file: String, jwks_url: String) -> TestServer {
    let configure: berth_test_support::Configure = Arc::new(move |config| {
        config.federation_jwks =
            vec![(ISSUER.to_owned(), jwks_file.clone()), (URL_ISSUER.to_owned(), jwks_url.clone())];
    });
    TestServer::start_configured(backend, Some(configure)).await.unwrap()
}

#[tokio::test]
async fn federated_credential_exchange() {
    for backend in backends() {
        let issuer = Issuer::new();
        let url_issuer = Issuer::new();
        let stranger = Issuer::new();
        let dir = tempfile::tempdir().unwrap();
        let jwks_file = dir.path().join("jwks.json");
        std::fs::write(&jwks_file, issuer.jwks()).unwrap();
        let jwks_url = serve_once_per_request(url_issuer.jwks()).await;
        let ts =
            federated_server(backend, jwks_file.to_string_lossy().into_owned(), jwks_url).await;
        let owner = ts.owner_token().await.unwrap();
        let t = Some(owner.as_str());
        create_group(&ts, &owner, "rg1").await;
        let id1 = create_identity(&ts, &owner, "rg1", "id1").await;
        let id2 = create_identity(&ts, &owner, "rg1", "id2").await;
        let client1 = id1["properties"]["clientId"].as_str().unwrap().to_owned();
        let principal1 = id1["properties"]["principalId"].as_str().unwrap().to_owned();
        let client2 = id2["properties"]["clientId"].as_str().unwrap().to_owned();
        for (identity, name, issuer_url, subject) in [
            ("id1", "k8s", ISSUER, SUBJECT),
            ("id1", "github", URL_ISSUER, "repo:team/app:ref:refs/heads/main"),
            ("id1", "unconfigured", "https://unconfigured.example", SUBJECT),
            ("id2", "k8s", ISSUER, "system:serviceaccount:ns:other"),
        ] {
            let (status, body) = call(
                &ts,
                Method::PUT,
                &credential_path(&ts, "rg1", identity, name),
                t,
                Some(json!({"properties": {"issuer": issuer_url, "subject": subject}})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }

        // The happy path: the workload's own token buys the identity's token.
        let good = issuer.token(&external_claims(ISSUER, SUBJECT, "api://AzureADTokenExchange"));
        let (status, body) = exchange(&ts, &client1, &good).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let claims = claims_of(&access);
        assert_eq!(claims["oid"], json!(principal1));
        assert_eq!(claims["sub"], json!(principal1));
        assert_eq!(claims["tid"], ts.tenant_id.as_str());
        assert_eq!(claims["appid"], json!(client1));
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["aud"], "https://management.azure.com");
        assert_eq!(claims["xms_mirid"], json!(identity_path(&ts, "rg1", "id1")));

        // The identity may do what its role assignments allow: nothing, then read.
        let target = identity_path(&ts, "rg1", "id2");
        let (status, body) = call(&ts, Method::GET, &target, Some(&access), None).await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "{body}");
        assign_role(&ts, &principal1, &group_path(&ts, "rg1"), READER).await;
        let (status, body) = call(&ts, Method::GET, &target, Some(&access), None).await;
        assert_eq!(status, 200, "{body}");

        // The issuer configured by loopback URL works the same way; so does the v1 endpoint.
        let ci = url_issuer.token(&external_claims(
            URL_ISSUER,
            "repo:team/app:ref:refs/heads/main",
            "api://AzureADTokenExchange",
        ));
        let (status, body) = exchange(&ts, &client1, &ci).await;
        assert_eq!(status, 200, "{body}");
        let v1 = ts
            .http
            .post(ts.url(&format!("/{}/oauth2/token", ts.tenant_id)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client1.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", good.as_str()),
                ("resource", "https://containerregistry.azure.net"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(v1.status().as_u16(), 200);
        let v1: Value = v1.json().await.unwrap();
        assert_eq!(
            claims_of(v1["access_token"].as_str().unwrap())["aud"],
            "https://containerregistry.azure.net"
        );

        // Every refusal, with Entra's codes.
        let now = now();
        let mut expired = external_claims(ISSUER, SUBJECT, "api://AzureADTokenExchange");
        expired["nbf"] = json!(now - 7200);
        expired["exp"] = json!(now - 3600);
        let mut early = external_claims(ISSUER, SUBJECT, "api://AzureADTokenExchange");
        early["nbf"] = json!(now + 3600);
        early["exp"] = json!(now + 7200);
        // The signed token with another subject put in: the signature no longer matches.
        let tampered = {
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            let claims = external_claims(
                ISSUER,
                "system:serviceaccount:ns:admin",
                "api://AzureADTokenExchange",
            );
            parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
            parts.join(".")
        };
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD
                .encode(external_claims(ISSUER, SUBJECT, "api://AzureADTokenExchange").to_string())
        );
        let cases: Vec<(&str, String, String, u16, &str, u64)> = vec![
            (
                "wrong issuer",
                client1.clone(),
                issuer.token(&external_claims(
                    "https://evil.example",
                    SUBJECT,
                    "api://AzureADTokenExchange",
                )),
                400,
                "invalid_request",
                70021,
            ),
            (
                "wrong subject",
                client1.clone(),
                issuer.token(&external_claims(
                    ISSUER,
                    "system:serviceaccount:ns:admin",
                    "api://AzureADTokenExchange",
                )),
                400,
                "invalid_request",
                70021,
            ),
            (
                "wrong audience",
                client1.clone(),
                issuer.token(&external_claims(ISSUER, SUBJECT, "api://Other")),
                400,
                "invalid_request",
                70021,
            ),
            (
                "audience differs in case",
                client1.clone(),
                issuer.token(&external_claims(ISSUER, SUBJECT, "API://AzureADTokenExchange")),
                400,
                "invalid_request",
                70021,
            ),
            ("expired", client1.clone(), issuer.token(&expired), 400, "invalid_client", 700024),
            ("not yet valid", client1.clone(), issuer.token(&early), 400, "invalid_client", 700024),
            (
                "signed by another key",
                client1.clone(),
                stranger.token(&external_claims(ISSUER, SUBJECT, "api://AzureADTokenExchange")),
                400,
                "invalid_request",
                50027,
            ),
            ("tampered payload", client1.clone(), tampered, 400, "invalid_request", 50027),
            ("alg none", client1.clone(), unsigned, 400, "invalid_request", 50027),
            ("not a jwt", client1.clone(), "not-a-jwt".to_owned(), 400, "invalid_request", 50027),
            (
                "unknown client id",
                uuid::Uuid::new_v4().to_string(),
                good.clone(),
                400,
                "unauthorized_client",
                700016,
            ),
            (
                "another identity's credential",
                client1.clone(),
                issuer.token(&external_claims(
                    ISSUER,
                    "system:serviceaccount:ns:other",
                    "api://AzureADTokenExchange",
                )),
                400,
                "invalid_request",
                70021,
            ),
            (
                "this identity's token for another",
                client2.clone(),
                good.clone(),
                400,
                "invalid_request",
                70021,
            ),
            (
                "a service principal",
                ts.client_id.clone(),
                good.clone(),
                400,
                "invalid_request",
                70021,
            ),
            (
                "issuer without keys",
                client1.clone(),
                issuer.token(&external_claims(
                    "https://unconfigured.example",
                    SUBJECT,
                    "api://AzureADTokenExchange",
                )),
                400,
                "invalid_request",
                50166,
            ),
        ];
        for (what, client_id, assertion, status, error, code) in cases {
            let answer = exchange(&ts, &client_id, &assertion).await;
            assert_aadsts(what, &answer, status, error, code);
        }
        let answer = exchange(&ts, &client1, &issuer.token(&expired)).await;
        let description = answer.1["error_description"].as_str().unwrap().to_owned();
        assert!(
            description
                .contains("Client assertion is not within its valid time range. Current time: "),
            "{description}"
        );
        let answer = exchange(
            &ts,
            &client1,
            &issuer.token(&external_claims(
                ISSUER,
                "system:serviceaccount:ns:admin",
                "api://AzureADTokenExchange",
            )),
        )
        .await;
        assert!(
            answer.1["error_description"]
                .as_str()
                .unwrap()
                .contains("Assertion Subject: 'system:serviceaccount:ns:admin'"),
            "{}",
            answer.1
        );
        // A wrong assertion type is refused before anything else.
        let response = ts
            .http
            .post(ts.url(&format!("/{}/oauth2/v2.0/token", ts.tenant_id)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client1.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", good.as_str()),
                ("scope", ARM_SCOPE),
            ])
            .send()
            .await
            .unwrap();
        let answer = (response.status().as_u16(), response.json::<Value>().await.unwrap());
        assert_aadsts("assertion type", &answer, 400, "invalid_request", 90011);

        // Deleting the identity stops its token at the next request and its federation at once.
        let (status, _) =
            call(&ts, Method::DELETE, &identity_path(&ts, "rg1", "id1"), t, None).await;
        assert_eq!(status, 200);
        let (status, body) = call(&ts, Method::GET, &target, Some(&access), None).await;
        assert_eq!((status, error_code(&body)), (401, "InvalidAuthenticationToken"), "{body}");
        assert_aadsts(
            "deleted identity",
            &exchange(&ts, &client1, &good).await,
            400,
            "unauthorized_client",
            700016,
        );
        ts.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn unusable_federation_configuration_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"keys\": []}").unwrap();
    for source in [
        bad.to_string_lossy().into_owned(),
        dir.path().join("missing.json").to_string_lossy().into_owned(),
    ] {
        let configure: berth_test_support::Configure = Arc::new(move |config| {
            config.federation_jwks = vec![(ISSUER.to_owned(), source.clone())];
        });
        let error = TestServer::start_configured(Backend::Sqlite, Some(configure))
            .await
            .err()
            .expect("refused");
        assert!(format!("{error:#}").contains(ISSUER), "{error:#}");
    }
}
