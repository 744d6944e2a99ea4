//! RBAC through the ARM API: role definitions (built-in and custom), role assignments at every scope with ARM's
//! errors, who may grant, inheritance, ABAC conditions deciding registry tokens in both `roleAssignmentMode`s,
//! `checkAccess` explanations and the audit log. Every test runs on SQLite and PostgreSQL.

use base64::Engine;
use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const RBAC_ADMIN: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
pub const REPO_WRITER: &str = "2a1e307c-b015-4ebd-883e-5b7698a07328";
pub const CATALOG_LISTER: &str = "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const RA_API: &str = "api-version=2022-04-01";
const RD_API: &str = "api-version=2022-05-01-preview";

/// ABAC: repository reads and writes only under `team-a/`.
pub const TEAM_A_CONDITION: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) \
AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'})) \
OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-a/'))";

/// A service principal made through the Graph subset, with no role.
pub struct Sp {
    pub object_id: String,
    pub app_id: String,
    pub secret: String,
}

impl Sp {
    pub async fn token(&self, ts: &TestServer) -> String {
        ts.token_for(&self.app_id, &self.secret, ARM_SCOPE).await.unwrap()
    }
}

pub async fn service_principal(ts: &TestServer, owner: &str, name: &str) -> Sp {
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
    Sp {
        object_id: sp["id"].as_str().unwrap().to_owned(),
        app_id: app["appId"].as_str().unwrap().to_owned(),
        secret: password["secretText"].as_str().unwrap().to_owned(),
    }
}

pub fn sub_scope(ts: &TestServer) -> String {
    format!("/subscriptions/{}", ts.subscription_id)
}

pub fn rg_scope(ts: &TestServer, group: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{group}", ts.subscription_id)
}

pub fn role_id(ts: &TestServer, guid: &str) -> String {
    format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        ts.subscription_id
    )
}

fn assignment_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?{RA_API}")
}

/// PUT a role assignment under a new name; returns status and body.
pub async fn assign(
    ts: &TestServer,
    token: &str,
    scope: &str,
    principal: &str,
    role: &str,
    condition: Option<&str>,
) -> (u16, Value) {
    let mut properties = json!({"roleDefinitionId": role_id(ts, role), "principalId": principal, "principalType": "ServicePrincipal"});
    if let Some(condition) = condition {
        properties["condition"] = json!(condition);
        properties["conditionVersion"] = json!("2.0");
    }
    let name = uuid::Uuid::new_v4().to_string();
    call(
        ts,
        Method::PUT,
        &assignment_path(scope, &name),
        Some(token),
        Some(json!({ "properties": properties })),
    )
    .await
}

pub async fn setup_group_and_registry(
    ts: &TestServer,
    owner: &str,
    group: &str,
    registry: &str,
    mode: &str,
) {
    let (status, body) = call(
        ts,
        Method::PUT,
        &group_path(ts, group),
        Some(owner),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert!(status == 201 || status == 200, "{body}");
    let (status, body) = call(
        ts,
        Method::PUT,
        &registry_path(ts, group, registry),
        Some(owner),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"roleAssignmentMode": mode}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}

/// The actions an access token grants for `scope` (path mode), asked with the principal's client credentials.
pub async fn granted(ts: &TestServer, sp: &Sp, registry: &str, scope: &str) -> Value {
    granted_on(ts, &ts.endpoint, sp, registry, scope).await
}

/// [`granted`], asked of the node at `endpoint` (which answers under `ts`'s URL).
async fn granted_on(
    ts: &TestServer,
    endpoint: &str,
    sp: &Sp,
    registry: &str,
    scope: &str,
) -> Value {
    let service = format!("{}/{registry}", ts.local_addr);
    let r = ts
        .http
        .get(format!("{endpoint}/oauth2/token?service={service}&scope={scope}"))
        .basic_auth(&sp.app_id, Some(&sp.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    claims_of(body["access_token"].as_str().unwrap())["access"][0]["actions"].clone()
}

#[tokio::test]
async fn role_definitions_builtin_and_custom() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let defs = format!("{}/providers/Microsoft.Authorization/roleDefinitions", sub_scope(&ts));
        // az's lookup: the filter's name in any case; ids carry the subscription.
        let (status, body) =
            call(&ts, Method::GET, &format!("{defs}?$filter=roleName%20eq%20%27acrpull%27&{RD_API}"), Some(&owner), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"].as_array().unwrap().len(), 1);
        assert_eq!(body["value"][0]["id"], role_id(&ts, ACR_PULL).as_str());
        assert_eq!(body["value"][0]["properties"]["roleName"], "AcrPull");
        assert_eq!(body["value"][0]["properties"]["type"], "BuiltInRole");
        let (_, all) = call(&ts, Method::GET, &format!("{defs}?{RD_API}"), Some(&owner), None).await;
        assert_eq!(all["value"].as_array().unwrap().len(), 25);
        let (status, one) = call(&ts, Method::GET, &format!("{defs}/{OWNER}?{RD_API}"), Some(&owner), None).await;
        assert_eq!((status, one["properties"]["roleName"].as_str()), (200, Some("Owner")));
        let (status, body) = call(&ts, Method::GET, &format!("{defs}/11111111-2222-3333-4444-555555555555?{RD_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (404, "RoleDefinitionDoesNotExist"));
        let (status, body) = call(&ts, Method::GET, &format!("{defs}?$filter=bogus&{RD_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidRequestFormat"));
        // Built-ins are read-only.
        let (status, body) = call(&ts, Method::DELETE, &format!("{defs}/{OWNER}?{RD_API}"), Some(&owner), None).await;
        assert_eq!(status, 400, "{body}");

        // A custom role: pull and group reads.
        let guid = "6f0b4a2e-1c1d-4a55-9b43-6a1f4c3e2d10";
        let role_body = json!({"properties": {
            "roleName": "Registry Puller", "description": "pull only", "type": "CustomRole",
            "assignableScopes": [sub_scope(&ts)],
            "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/pull/read", "Microsoft.Resources/subscriptions/resourceGroups/read"], "notActions": [], "dataActions": [], "notDataActions": []}]
        }});
        let (status, created) = call(&ts, Method::PUT, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), Some(role_body.clone())).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["properties"]["type"], "CustomRole");
        let (status, _) = call(&ts, Method::PUT, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), Some(role_body.clone())).await;
        assert_eq!(status, 200, "an identical PUT updates");
        let (_, custom) = call(&ts, Method::GET, &format!("{defs}?$filter=type%20eq%20%27CustomRole%27&{RD_API}"), Some(&owner), None).await;
        assert_eq!(custom["value"].as_array().unwrap().len(), 1);
        let (_, by_name) = call(&ts, Method::GET, &format!("{defs}?$filter=roleName%20eq%20%27registry%20PULLER%27&{RD_API}"), Some(&owner), None).await;
        assert_eq!(by_name["value"][0]["name"], guid);
        // The same name under another GUID, a built-in's name, bad bodies.
        let (status, body) = call(&ts, Method::PUT, &format!("{defs}/{}?{RD_API}", uuid::Uuid::new_v4()), Some(&owner), Some(role_body.clone())).await;
        assert_eq!((status, error_code(&body)), (409, "RoleDefinitionWithSameNameExists"));
        let mut as_builtin = role_body.clone();
        as_builtin["properties"]["roleName"] = json!("acrpull");
        let (status, body) = call(&ts, Method::PUT, &format!("{defs}/{}?{RD_API}", uuid::Uuid::new_v4()), Some(&owner), Some(as_builtin)).await;
        assert_eq!((status, error_code(&body)), (409, "RoleDefinitionWithSameNameExists"));
        for bad in [
            json!({"properties": {"roleName": "x", "assignableScopes": [], "permissions": [{"actions": ["a/b"]}]}}),
            json!({"properties": {"roleName": "x", "assignableScopes": ["not-a-scope"], "permissions": [{"actions": ["a/b"]}]}}),
            json!({"properties": {"roleName": "x", "assignableScopes": [sub_scope(&ts)], "permissions": []}}),
            json!({"properties": {"assignableScopes": [sub_scope(&ts)], "permissions": [{"actions": ["a/b"]}]}}),
            json!({"properties": {"roleName": "x", "assignableScopes": [sub_scope(&ts)], "permissions": [{"actions": [7]}]}}),
        ] {
            let (status, body) = call(&ts, Method::PUT, &format!("{defs}/{}?{RD_API}", uuid::Uuid::new_v4()), Some(&owner), Some(bad.clone())).await;
            assert_eq!((status, error_code(&body)), (400, "InvalidRequestContent"), "{bad}");
        }
        let (status, body) = call(&ts, Method::PUT, &format!("{defs}/not-a-guid?{RD_API}"), Some(&owner), Some(role_body.clone())).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidRoleDefinitionId"));

        // The custom role decides: a principal holding it may read groups, and loses that when the role changes.
        setup_group_and_registry(&ts, &owner, "g1", "acrcustom", "LegacyRegistryPermissions").await;
        let sp = service_principal(&ts, &owner, "custom-holder").await;
        let (status, body) = assign(&ts, &owner, &rg_scope(&ts, "g1"), &sp.object_id, guid, None).await;
        assert_eq!(status, 201, "{body}");
        let token = sp.token(&ts).await;
        let (status, _) = call(&ts, Method::GET, &group_path(&ts, "g1"), Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(granted(&ts, &sp, "acrcustom", "repository:acrcustom/app:pull,push").await, json!(["pull"]));
        let mut narrower = role_body.clone();
        narrower["properties"]["permissions"][0]["actions"] = json!(["Microsoft.ContainerRegistry/registries/pull/read"]);
        let (status, _) = call(&ts, Method::PUT, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), Some(narrower)).await;
        assert_eq!(status, 200);
        let (status, body) = call(&ts, Method::GET, &group_path(&ts, "g1"), Some(&token), None).await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "the change holds at the next request");

        // Not deletable while assigned; deletable after.
        let (status, body) = call(&ts, Method::DELETE, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&body)), (409, "RoleDefinitionHasAssignments"));
        let (_, list) = call(&ts, Method::GET, &format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20%27{}%27&{RA_API}", sub_scope(&ts), sp.object_id), Some(&owner), None).await;
        let id = list["value"][0]["id"].as_str().unwrap().to_owned();
        let (status, _) = call(&ts, Method::DELETE, &format!("{id}?{RA_API}"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(&ts, Method::DELETE, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(&ts, Method::DELETE, &format!("{defs}/{guid}?{RD_API}"), Some(&owner), None).await;
        assert_eq!(status, 204);
    })
    .await;
}

#[tokio::test]
async fn role_assignments_follow_arm_rules() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "g1", "acrrules", "LegacyRegistryPermissions").await;
        let sp = service_principal(&ts, &owner, "puller").await;
        let other = service_principal(&ts, &owner, "other").await;
        let group = rg_scope(&ts, "g1");
        let registry = registry_path(&ts, "g1", "acrrules");
        let name = uuid::Uuid::new_v4().to_string();
        let body = json!({"properties": {"roleDefinitionId": role_id(&ts, ACR_PULL), "principalId": sp.object_id, "principalType": "ServicePrincipal", "description": "pull"}});
        let (status, created) = call(&ts, Method::PUT, &assignment_path(&group, &name), Some(&owner), Some(body.clone())).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["name"], name.as_str());
        assert_eq!(created["type"], "Microsoft.Authorization/roleAssignments");
        assert_eq!(created["properties"]["scope"], group.as_str());
        assert_eq!(created["properties"]["roleDefinitionId"], role_id(&ts, ACR_PULL).as_str());
        // Idempotent re-PUT; the same grant under another name; another principal under the same name.
        let (status, _) = call(&ts, Method::PUT, &assignment_path(&group, &name), Some(&owner), Some(body.clone())).await;
        assert_eq!(status, 200);
        let (status, err) = call(&ts, Method::PUT, &assignment_path(&group, &uuid::Uuid::new_v4().to_string()), Some(&owner), Some(body.clone())).await;
        assert_eq!((status, error_code(&err)), (409, "RoleAssignmentExists"));
        let mut moved = body.clone();
        moved["properties"]["principalId"] = json!(other.object_id);
        let (status, err) = call(&ts, Method::PUT, &assignment_path(&group, &name), Some(&owner), Some(moved)).await;
        assert_eq!((status, error_code(&err)), (409, "RoleAssignmentUpdateNotPermitted"));
        let (status, err) = call(&ts, Method::PUT, &assignment_path(&registry, &name), Some(&owner), Some(body.clone())).await;
        assert_eq!(status, 201, "the same name at another scope is another assignment: {err}");

        // Bad input.
        let cases: Vec<(String, Value, u16, &str)> = vec![
            (assignment_path(&group, "not-a-guid"), body.clone(), 400, "InvalidRoleAssignmentId"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": role_id(&ts, ACR_PUSH), "principalId": uuid::Uuid::new_v4().to_string()}}), 400, "PrincipalNotFound"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": role_id(&ts, "11111111-2222-3333-4444-555555555555"), "principalId": sp.object_id}}), 404, "RoleDefinitionDoesNotExist"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": "AcrPull", "principalId": sp.object_id}}), 400, "InvalidRoleDefinitionId"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": role_id(&ts, ACR_PUSH), "principalId": sp.object_id, "condition": "@Request[x] StringEquals", "conditionVersion": "2.0"}}), 400, "InvalidCondition"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": role_id(&ts, ACR_PUSH), "principalId": sp.object_id, "condition": TEAM_A_CONDITION, "conditionVersion": "1.0"}}), 400, "InvalidCondition"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()),
             json!({"properties": {"roleDefinitionId": role_id(&ts, ACR_PUSH), "principalId": sp.object_id, "principalType": "Robot"}}), 400, "InvalidRequestContent"),
            (assignment_path(&group, &uuid::Uuid::new_v4().to_string()), json!({"properties": {"principalId": sp.object_id}}), 400, "InvalidRequestContent"),
            (assignment_path(&rg_scope(&ts, "ghost"), &uuid::Uuid::new_v4().to_string()), body.clone(), 404, "ResourceGroupNotFound"),
            (assignment_path(&registry_path(&ts, "g1", "ghost"), &uuid::Uuid::new_v4().to_string()), body.clone(), 404, "ResourceNotFound"),
        ];
        for (path, request, status, code) in cases {
            let (got, err) = call(&ts, Method::PUT, &path, Some(&owner), Some(request.clone())).await;
            assert_eq!((got, error_code(&err)), (status, code), "{path} {request} -> {err}");
        }
        let r = ts.http.put(ts.url(&assignment_path(&group, &uuid::Uuid::new_v4().to_string()))).bearer_auth(&owner).body("{nope").send().await.unwrap();
        assert_eq!(r.status(), 400);

        // Reads: by name, lists with ARM's filters; inheritance shows at the registry.
        let (status, got) = call(&ts, Method::GET, &assignment_path(&group, &name), Some(&owner), None).await;
        assert_eq!((status, got["properties"]["description"].as_str()), (200, Some("pull")));
        let list = |scope: String, filter: &str| {
            let ts = &ts;
            let owner = owner.clone();
            let filter = filter.to_owned();
            async move {
                let q = if filter.is_empty() { String::new() } else { format!("$filter={}&", filter.replace(' ', "%20").replace('\'', "%27")) };
                let (status, body) = call(ts, Method::GET, &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?{q}{RA_API}"), Some(&owner), None).await;
                assert_eq!(status, 200, "{body}");
                body["value"].as_array().unwrap().iter().map(|a| a["properties"]["scope"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        let at_registry = list(registry.clone(), "atScope()").await;
        assert!(at_registry.contains(&group) && at_registry.contains(&registry) && at_registry.contains(&sub_scope(&ts)), "{at_registry:?}");
        let at_group = list(group.clone(), "atScope()").await;
        assert!(!at_group.contains(&registry), "atScope() does not look below: {at_group:?}");
        let everything = list(group.clone(), "").await;
        assert!(everything.contains(&registry), "no filter: at, above and below");
        let mine = list(sub_scope(&ts), &format!("principalId eq '{}'", sp.object_id)).await;
        assert_eq!(mine.len(), 2, "{mine:?}");
        let mine = list(sub_scope(&ts), &format!("atScope() and assignedTo('{}')", sp.object_id)).await;
        assert!(mine.is_empty(), "{mine:?}");
        let (status, err) = call(&ts, Method::GET, &format!("{group}/providers/Microsoft.Authorization/roleAssignments?$filter=foo%20eq%20%27x%27&{RA_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&err)), (400, "InvalidRequestFormat"));

        // Delete: the body once, then 204.
        let (status, _) = call(&ts, Method::DELETE, &assignment_path(&registry, &name), Some(&owner), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(&ts, Method::DELETE, &assignment_path(&registry, &name), Some(&owner), None).await;
        assert_eq!(status, 204);
        let (status, err) = call(&ts, Method::GET, &assignment_path(&registry, &name), Some(&owner), None).await;
        assert_eq!((status, error_code(&err)), (404, "RoleAssignmentNotFound"));
    })
    .await;
}

#[tokio::test]
async fn only_owners_and_access_administrators_grant() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "g1", "acrgrant", "LegacyRegistryPermissions").await;
        let group = rg_scope(&ts, "g1");
        let contributor = service_principal(&ts, &owner, "contributor").await;
        let admin = service_principal(&ts, &owner, "rbac-admin").await;
        let target = service_principal(&ts, &owner, "target").await;
        assert_eq!(assign(&ts, &owner, &sub_scope(&ts), &contributor.object_id, CONTRIBUTOR, None).await.0, 201);
        // Contributor: may change resources, may not grant anything, not even to itself.
        let token = contributor.token(&ts).await;
        let (status, _) = call(&ts, Method::PATCH, &group_path(&ts, "g1"), Some(&token), Some(json!({"tags": {"a": "b"}}))).await;
        assert_eq!(status, 200);
        for (who, role) in [(&contributor.object_id, OWNER), (&target.object_id, ACR_PULL)] {
            let (status, err) = assign(&ts, &token, &group, who, role, None).await;
            assert_eq!((status, error_code(&err)), (403, "AuthorizationFailed"), "{err}");
            assert!(err["error"]["message"].as_str().unwrap().contains("Microsoft.Authorization/roleAssignments/write"));
        }
        // ...and cannot delete assignments either.
        let (_, list) = call(&ts, Method::GET, &format!("{}/providers/Microsoft.Authorization/roleAssignments?{RA_API}", sub_scope(&ts)), Some(&token), None).await;
        let existing = list["value"][0]["id"].as_str().unwrap().to_owned();
        let (status, err) = call(&ts, Method::DELETE, &format!("{existing}?{RA_API}"), Some(&token), None).await;
        assert_eq!((status, error_code(&err)), (403, "AuthorizationFailed"));

        // An RBAC Administrator whose assignment is narrowed to AcrPull/AcrPush for service principals.
        let delegation = format!(
            "((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})) OR \
             (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{ACR_PULL}, {ACR_PUSH}}} \
             AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{'ServicePrincipal'}})) \
             AND ((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/delete'}})) OR \
             (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{ACR_PULL}, {ACR_PUSH}}}))"
        );
        let (status, body) = assign(&ts, &owner, &group, &admin.object_id, RBAC_ADMIN, Some(&delegation)).await;
        assert_eq!(status, 201, "{body}");
        let token = admin.token(&ts).await;
        let (status, pull) = assign(&ts, &token, &group, &target.object_id, ACR_PULL, None).await;
        assert_eq!(status, 201, "{pull}");
        let (status, err) = assign(&ts, &token, &group, &target.object_id, OWNER, None).await;
        assert_eq!((status, error_code(&err)), (403, "AuthorizationFailed"), "the condition keeps Owner out");
        let (status, err) = assign(&ts, &token, &sub_scope(&ts), &target.object_id, ACR_PULL, None).await;
        assert_eq!((status, error_code(&err)), (403, "AuthorizationFailed"), "not above its own scope");
        // It may delete the AcrPull assignment, not the Contributor one at the subscription.
        let (status, _) = call(&ts, Method::DELETE, &format!("{}?{RA_API}", pull["id"].as_str().unwrap()), Some(&token), None).await;
        assert_eq!(status, 200);
        // A reader may list but not grant.
        let reader = service_principal(&ts, &owner, "reader").await;
        assert_eq!(assign(&ts, &owner, &group, &reader.object_id, READER, None).await.0, 201);
        let token = reader.token(&ts).await;
        let (status, _) = call(&ts, Method::GET, &format!("{group}/providers/Microsoft.Authorization/roleAssignments?{RA_API}"), Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(assign(&ts, &token, &group, &target.object_id, ACR_PULL, None).await.0, 403);
        // A stranger cannot even list.
        let stranger = service_principal(&ts, &owner, "stranger").await;
        let token = stranger.token(&ts).await;
        let (status, err) = call(&ts, Method::GET, &format!("{group}/providers/Microsoft.Authorization/roleAssignments?{RA_API}"), Some(&token), None).await;
        assert_eq!((status, error_code(&err)), (403, "AuthorizationFailed"));
    })
    .await;
}

#[tokio::test]
async fn registry_tokens_follow_the_role_assignment_mode_and_conditions() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "g1", "acrlegacy", "LegacyRegistryPermissions").await;
        setup_group_and_registry(&ts, &owner, "g1", "acrabac", "AbacRepositoryPermissions").await;
        let sp = service_principal(&ts, &owner, "workload").await;
        let group = rg_scope(&ts, "g1");
        let legacy = registry_path(&ts, "g1", "acrlegacy");
        // No role: nothing.
        assert_eq!(granted(&ts, &sp, "acrlegacy", "repository:acrlegacy/app:pull,push").await, json!([]));
        // AcrPull inherited from the group: pull in legacy mode, nothing in ABAC mode.
        assert_eq!(assign(&ts, &owner, &group, &sp.object_id, ACR_PULL, None).await.0, 201);
        assert_eq!(granted(&ts, &sp, "acrlegacy", "repository:acrlegacy/app:pull,push").await, json!(["pull"]));
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-a/app:pull").await, json!([]));
        // AcrPush on the registry itself adds push there.
        assert_eq!(assign(&ts, &owner, &legacy, &sp.object_id, ACR_PUSH, None).await.0, 201);
        assert_eq!(granted(&ts, &sp, "acrlegacy", "repository:acrlegacy/app:pull,push,delete").await, json!(["pull", "push"]));
        // ABAC: Repository Writer narrowed to team-a/.
        let (status, body) = assign(&ts, &owner, &group, &sp.object_id, REPO_WRITER, Some(TEAM_A_CONDITION)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-a/app:pull,push").await, json!(["pull", "push"]));
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/TEAM-A/x:pull").await, json!(["pull"]));
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-b/app:pull,push").await, json!([]));
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-a:pull").await, json!([]));
        // The writer's metadata actions are not targeted by the condition; the catalog needs the Catalog Lister.
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-b/app:metadata_read").await, json!(["metadata_read"]));
        assert_eq!(granted(&ts, &sp, "acrabac", "registry:catalog:*").await, json!([]));
        assert_eq!(assign(&ts, &owner, &registry_path(&ts, "g1", "acrabac"), &sp.object_id, CATALOG_LISTER, None).await.0, 201);
        assert_eq!(granted(&ts, &sp, "acrabac", "registry:catalog:*").await, json!(["*"]));

        // checkAccess explains; the audit log has the decisions.
        let (status, explained) = call(
            &ts,
            Method::POST,
            &format!("{}/checkAccess", registry_path(&ts, "g1", "acrabac")),
            Some(&owner),
            Some(json!({"principalId": sp.object_id, "repository": "team-b/app"})),
        )
        .await;
        assert_eq!(status, 200, "{explained}");
        assert_eq!(explained["roleAssignmentMode"], "AbacRepositoryPermissions");
        let decision = |action: &str| explained["decisions"].as_array().unwrap().iter().find(|d| d["action"] == action).unwrap().clone();
        assert_eq!(decision("pull")["allowed"], false);
        assert_eq!(decision("catalog")["roleDefinitionName"], "Container Registry Repository Catalog Lister");
        let (_, explained) = call(&ts, Method::POST, &format!("{}/checkAccess", registry_path(&ts, "g1", "acrabac")), Some(&owner),
            Some(json!({"principalId": sp.object_id, "repository": "team-a/app"}))).await;
        let pull = explained["decisions"].as_array().unwrap().iter().find(|d| d["action"] == "pull").unwrap().clone();
        assert_eq!(pull["allowed"], true);
        assert_eq!(pull["roleDefinitionName"], "Container Registry Repository Writer");
        assert!(pull["roleAssignmentId"].as_str().unwrap().starts_with(&group));
        assert_eq!(explained["assignments"].as_array().unwrap().len(), 3, "{explained}");
        let (status, err) = call(&ts, Method::POST, &format!("{}/checkAccess", registry_path(&ts, "g1", "acrabac")), Some(&owner),
            Some(json!({"principalId": uuid::Uuid::new_v4().to_string()}))).await;
        assert_eq!((status, error_code(&err)), (400, "PrincipalNotFound"));
        let stranger = service_principal(&ts, &owner, "nosy").await;
        let nosy = stranger.token(&ts).await;
        let (status, _) = call(&ts, Method::POST, &format!("{}/checkAccess", registry_path(&ts, "g1", "acrabac")), Some(&nosy),
            Some(json!({"principalId": sp.object_id}))).await;
        assert_eq!(status, 403);

        // The decisions are stored and can be searched, on either backend.
        let audit = format!(
            "{}/providers/Berth.Authorization/auditEvents?$filter=principalId%20eq%20%27{}%27%20and%20allowed%20eq%20false&$top=500&{RA_API}",
            registry_path(&ts, "g1", "acrabac"),
            sp.object_id
        );
        let mut denied = Vec::new();
        for _ in 0..50 {
            let (status, body) = call(&ts, Method::GET, &audit, Some(&owner), None).await;
            assert_eq!(status, 200, "{body}");
            denied = body["value"].as_array().unwrap().clone();
            if denied.iter().any(|e| e["properties"]["repository"] == "team-b/app") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let team_b = denied.iter().find(|e| e["properties"]["repository"] == "team-b/app" && e["properties"]["action"] == "push").expect("the denied push is audited");
        assert_eq!(team_b["properties"]["surface"], "registry");
        assert_eq!(team_b["properties"]["allowed"], false);
        assert!(team_b["properties"]["roleAssignmentId"].is_null());
        assert!(denied.iter().all(|e| e["properties"]["allowed"] == false));
        let (status, _) = call(&ts, Method::GET, &audit, Some(&nosy), None).await;
        assert_eq!(status, 403, "the audit log needs read access at the scope");

        // Removing the assignment stops the next token.
        let (_, list) = call(&ts, Method::GET, &format!("{group}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20%27{}%27&{RA_API}", sp.object_id), Some(&owner), None).await;
        for a in list["value"].as_array().unwrap() {
            let (status, _) = call(&ts, Method::DELETE, &format!("{}?{RA_API}", a["id"].as_str().unwrap()), Some(&owner), None).await;
            assert_eq!(status, 200);
        }
        assert_eq!(granted(&ts, &sp, "acrlegacy", "repository:acrlegacy/app:pull,push").await, json!([]));
        assert_eq!(granted(&ts, &sp, "acrabac", "repository:acrabac/team-a/app:pull").await, json!([]));
    })
    .await;
}

/// Two nodes on one store: an assignment made through one node is in force on the other at its next token request,
/// and a deletion through the other is in force on the first, with no propagation delay.
#[tokio::test]
async fn an_assignment_holds_on_every_node_at_the_next_token_request() {
    each_backend(|ts| async move {
        let node_b = ts.second_node().await.unwrap();
        // Node B answers under node A's URL (one load balancer in front of both); reach it at its own address.
        let node_b_url = format!("https://{}", node_b.local_addr);
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "g1", "acrnodes", "LegacyRegistryPermissions").await;
        let sp = service_principal(&ts, &owner, "puller").await;
        let scope = "repository:acrnodes/app:pull,push";
        let on_b = |sp| granted_on(&ts, &node_b_url, sp, "acrnodes", scope);
        assert_eq!(on_b(&sp).await, json!([]));

        // Granted through node A, in force on node B at once.
        let registry = registry_path(&ts, "g1", "acrnodes");
        let (status, assignment) =
            assign(&ts, &owner, &registry, &sp.object_id, ACR_PULL, None).await;
        assert_eq!(status, 201, "{assignment}");
        assert_eq!(on_b(&sp).await, json!(["pull"]));

        // Deleted through node B, gone on node A at once.
        let id = assignment["id"].as_str().unwrap();
        let response = ts
            .http
            .delete(format!("{node_b_url}{id}?{RA_API}"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(granted(&ts, &sp, "acrnodes", scope).await, json!([]));
        assert_eq!(on_b(&sp).await, json!([]));
        node_b.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_deleted_identity_leaves_its_assignments_orphaned() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "g1", "acrorphan", "LegacyRegistryPermissions").await;
        let identity = format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi1", rg_scope(&ts, "g1"));
        let (status, mi) = call(&ts, Method::PUT, &identity, Some(&owner), Some(json!({"location": "westeurope"}))).await;
        assert_eq!(status, 201, "{mi}");
        let principal = mi["properties"]["principalId"].as_str().unwrap().to_owned();
        // Assignments at the group and on the identity itself (a resource scope).
        assert_eq!(assign(&ts, &owner, &rg_scope(&ts, "g1"), &principal, ACR_PULL, None).await.0, 201);
        assert_eq!(assign(&ts, &owner, &identity, &principal, READER, None).await.0, 201);
        let (status, _) = call(&ts, Method::DELETE, &identity, Some(&owner), None).await;
        assert!(status == 200 || status == 204);
        // As in Azure: the group's assignment stays, naming a principal that no longer exists; the one on the
        // deleted resource went with it.
        let (_, list) = call(&ts, Method::GET, &format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20%27{principal}%27&{RA_API}", sub_scope(&ts)), Some(&owner), None).await;
        let scopes: Vec<&str> = list["value"].as_array().unwrap().iter().map(|a| a["properties"]["scope"].as_str().unwrap()).collect();
        assert_eq!(scopes, vec![rg_scope(&ts, "g1").as_str()]);
        // A new assignment for the vanished principal is refused.
        let (status, err) = assign(&ts, &owner, &rg_scope(&ts, "g1"), &principal, ACR_PUSH, None).await;
        assert_eq!((status, error_code(&err)), (400, "PrincipalNotFound"));
    })
    .await;
}
