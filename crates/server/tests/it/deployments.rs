//! Template deployments through the ARM API: the source document's corrected Bicep template (compiled) deploys a
//! user-assigned identity and an AcrPull assignment on the registry through the same handlers and authorization as
//! direct calls, idempotently; what-if; bad templates are 400s with ARM's errors; unserved types and missing
//! rights fail per resource; Complete mode; a run left behind by a dead node does not stay Running. Every test
//! runs on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::rbac::{service_principal, setup_group_and_registry, ACR_PULL, READER};

const DEPLOY_API: &str = "api-version=2025-04-01";
const RA_API: &str = "api-version=2022-04-01";
/// Managed Identity Contributor: identities and `Microsoft.Resources/deployments/*`, but no role assignments.
const MI_CONTRIBUTOR: &str = "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59";
/// The source document's corrected files, compiled by berth's Bicep compiler.
const SCENARIO: &str = include_str!("../../../bicep/tests/scenario/corrected/main.json");

fn deployment_path(ts: &TestServer, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/{name}",
        ts.subscription_id
    )
}

fn scenario_parameters(ts: &TestServer, identity: &str) -> Value {
    json!({
        "resourceGroupName": {"value": "rg1"},
        "subscriptionId": {"value": ts.subscription_id},
        "managedIdentityName": {"value": identity},
        "acrName": {"value": "myacr"},
        "acrpullRoleId": {"value": ACR_PULL},
    })
}

fn request(template: Value, parameters: Value) -> Value {
    json!({"properties": {"template": template, "parameters": parameters, "mode": "Incremental"}})
}

/// The body exactly as az sends it: the template file's text spliced after an unquoted `template:` key.
fn az_body(template_text: &str, parameters: &Value) -> String {
    format!(
        "{{\"properties\": {{\"parameters\": {parameters}, \"mode\": \"Incremental\", template:{template_text}}}}}"
    )
}

async fn raw(
    ts: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: String,
) -> reqwest::Response {
    ts.http
        .request(method, ts.url(&format!("{path}?{DEPLOY_API}")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Polls a deployment until its provisioning state is final; returns its last GET.
async fn wait(ts: &TestServer, token: &str, path: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) =
            call(ts, Method::GET, &format!("{path}?{DEPLOY_API}"), Some(token), None).await;
        assert_eq!(status, 200, "{body}");
        let state = body["properties"]["provisioningState"].as_str().unwrap().to_string();
        if ["Succeeded", "Failed", "Canceled"].contains(&state.as_str()) {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {state}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PUT a deployment and wait for it.
async fn deploy(
    ts: &TestServer,
    token: &str,
    group: &str,
    name: &str,
    body: Value,
) -> (u16, Value) {
    let path = deployment_path(ts, group, name);
    let (status, put) =
        call(ts, Method::PUT, &format!("{path}?{DEPLOY_API}"), Some(token), Some(body)).await;
    if status != 200 && status != 201 {
        return (status, put);
    }
    (status, wait(ts, token, &path).await)
}

async fn operations(ts: &TestServer, token: &str, group: &str, name: &str) -> Vec<Value> {
    let path = format!("{}/operations?{DEPLOY_API}", deployment_path(ts, group, name));
    let (status, body) = call(ts, Method::GET, &path, Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_array().unwrap().clone()
}

fn identity_path(ts: &TestServer, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        ts.subscription_id
    )
}

/// The role assignment the scenario makes: at the registry, named by guid(registry, principal, 'AcrPull').
async fn registry_assignments(ts: &TestServer, token: &str) -> Vec<Value> {
    let path = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()&{RA_API}",
        registry_path(ts, "rg1", "myacr")
    );
    let (status, body) = call(ts, Method::GET, &path, Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["properties"]["scope"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&registry_path(ts, "rg1", "myacr")))
        })
        .cloned()
        .collect()
}

async fn what_if(ts: &TestServer, token: &str, name: &str, body: Value) -> (u16, Value) {
    let path = format!("{}/whatIf?{DEPLOY_API}", deployment_path(ts, "rg1", name));
    call(ts, Method::POST, &path, Some(token), Some(body)).await
}

fn changes_of(result: &Value) -> Vec<(String, String)> {
    result["properties"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["changeType"].as_str().unwrap().to_string(),
                c["resourceId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_scenario_deploys_an_identity_and_an_acrpull_assignment_idempotently() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "rg1", "myacr", "LegacyRegistryPermissions").await;
        let path = deployment_path(&ts, "rg1", "main");
        let registry = registry_path(&ts, "rg1", "myacr");

        // az's wire form; the PUT answers at once with Accepted and an Azure-AsyncOperation URL to poll.
        let response = raw(
            &ts,
            Method::PUT,
            &path,
            &owner,
            az_body(SCENARIO, &scenario_parameters(&ts, "id1")),
        )
        .await;
        assert_eq!(response.status(), 201);
        let status_url = response.headers()["azure-asyncoperation"].to_str().unwrap().to_string();
        let accepted: Value = response.json().await.unwrap();
        assert_eq!(accepted["properties"]["provisioningState"], "Accepted", "{accepted}");
        let started = Instant::now();
        loop {
            let poll: Value = ts
                .http
                .get(&status_url)
                .bearer_auth(&owner)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match poll["status"].as_str().unwrap() {
                "Succeeded" => break,
                "Running" => {}
                other => panic!("the deployment ended {other}: {poll}"),
            }
            assert!(started.elapsed() < Duration::from_secs(60));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deployment = wait(&ts, &owner, &path).await;
        assert_eq!(deployment["properties"]["provisioningState"], "Succeeded", "{deployment}");
        assert_eq!(deployment["properties"]["mode"], "Incremental");
        assert_eq!(deployment["properties"]["parameters"]["managedIdentityName"]["value"], "id1");
        assert!(deployment["properties"]["duration"].as_str().unwrap().starts_with("PT"));

        // Both resources exist, made by the ordinary handlers.
        let (status, identity) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "id1"), Some(&owner), None).await;
        assert_eq!(status, 200, "{identity}");
        assert_eq!(identity["location"], "westeurope", "the group's location by default");
        let principal = identity["properties"]["principalId"].as_str().unwrap().to_string();
        let assignments = registry_assignments(&ts, &owner).await;
        assert_eq!(assignments.len(), 1, "{assignments:?}");
        let assignment = &assignments[0];
        assert_eq!(assignment["properties"]["principalId"], principal.as_str());
        assert!(assignment["properties"]["roleDefinitionId"].as_str().unwrap().ends_with(ACR_PULL));
        assert!(assignment["properties"]["scope"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&registry));
        let assignment_id = assignment["id"].as_str().unwrap().to_string();
        let (status, direct) =
            call(&ts, Method::GET, &format!("{assignment_id}?{RA_API}"), Some(&owner), None).await;
        assert_eq!(status, 200, "{direct}");
        let outputs: Vec<String> = deployment["properties"]["outputResources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_ascii_lowercase())
            .collect();
        assert!(
            outputs.contains(&identity_path(&ts, "rg1", "id1").to_ascii_lowercase()),
            "{outputs:?}"
        );
        assert!(outputs.contains(&assignment_id.to_ascii_lowercase()), "{outputs:?}");

        // The modules are deployments of their own, with outputs and operations.
        let nested =
            wait(&ts, &owner, &deployment_path(&ts, "rg1", "managedIdentityDeployment")).await;
        assert_eq!(nested["properties"]["outputs"]["principalId"]["value"], principal.as_str());
        let ops = operations(&ts, &owner, "rg1", "main").await;
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(ops.iter().all(|o| o["properties"]["provisioningState"] == "Succeeded"), "{ops:?}");
        let ops = operations(&ts, &owner, "rg1", "roleAssignmentDeployment").await;
        assert_eq!(ops[0]["properties"]["changeType"], "Create", "{ops:?}");
        let (_, list) = call(
            &ts,
            Method::GET,
            &format!("{}?{DEPLOY_API}", path.rsplit_once('/').unwrap().0),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(list["value"].as_array().unwrap().len(), 3, "{list}");

        // Deploying again changes nothing and keeps every ID.
        let (status, again) = deploy(
            &ts,
            &owner,
            "rg1",
            "main",
            request(serde_json::from_str(SCENARIO).unwrap(), scenario_parameters(&ts, "id1")),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(again["properties"]["provisioningState"], "Succeeded", "{again}");
        let (_, identity) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "id1"), Some(&owner), None).await;
        assert_eq!(identity["properties"]["principalId"], principal.as_str());
        let assignments = registry_assignments(&ts, &owner).await;
        assert_eq!(assignments.len(), 1);
        assert_eq!(assignments[0]["id"], assignment_id.as_str());
        for module in ["managedIdentityDeployment", "roleAssignmentDeployment"] {
            let ops = operations(&ts, &owner, "rg1", module).await;
            assert_eq!(ops.len(), 1, "{ops:?}");
            assert_eq!(ops[0]["properties"]["changeType"], "NoChange", "{module}: {ops:?}");
            assert_eq!(ops[0]["properties"]["statusCode"], "OK", "{module}: {ops:?}");
        }

        // What-if: the same parameters change nothing; another identity name shows exactly that change.
        let (status, same) = what_if(
            &ts,
            &owner,
            "main",
            request(serde_json::from_str(SCENARIO).unwrap(), scenario_parameters(&ts, "id1")),
        )
        .await;
        assert_eq!(status, 200, "{same}");
        assert_eq!(same["status"], "Succeeded");
        let changes = changes_of(&same);
        assert!(
            changes.iter().all(|(kind, _)| kind == "NoChange" || kind == "Ignore"),
            "{changes:?}"
        );
        assert_eq!(changes.iter().filter(|(kind, _)| kind == "NoChange").count(), 2, "{changes:?}");
        let (status, renamed) = what_if(
            &ts,
            &owner,
            "main",
            request(serde_json::from_str(SCENARIO).unwrap(), scenario_parameters(&ts, "id2")),
        )
        .await;
        assert_eq!(status, 200, "{renamed}");
        let changes = changes_of(&renamed);
        let changed: Vec<&(String, String)> =
            changes.iter().filter(|(kind, _)| kind != "NoChange" && kind != "Ignore").collect();
        // A new identity, and the AcrPull assignment for its principal, which nobody knows before the identity
        // exists: what-if shows it as its expression rather than the old identity's principal (ARM does the same).
        assert_eq!(changed.len(), 2, "{changes:?}");
        assert!(changed.iter().all(|(kind, _)| kind == "Create"), "{changes:?}");
        assert!(
            changed
                .iter()
                .any(|(_, id)| id.eq_ignore_ascii_case(&identity_path(&ts, "rg1", "id2"))),
            "{changes:?}"
        );
        let assignment = renamed["properties"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["changeType"] == "Create"
                    && c["resourceId"].as_str().is_some_and(|id| {
                        id.to_ascii_lowercase()
                            .contains("/providers/microsoft.authorization/roleassignments/")
                    })
            })
            .unwrap_or_else(|| panic!("the new identity's assignment: {renamed}"));
        let principal =
            assignment["after"]["properties"]["principalId"].as_str().unwrap_or_default();
        assert!(principal.starts_with('[') && principal.contains("outputs"), "{assignment}");
        // The old identity is left alone in Incremental mode; nothing was written.
        assert!(
            changes.iter().any(|(kind, id)| kind == "Ignore"
                && id.eq_ignore_ascii_case(&identity_path(&ts, "rg1", "id1"))),
            "{changes:?}"
        );
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "id2"), Some(&owner), None).await;
        assert_eq!(status, 404);

        // Validate answers like az expects.
        let (status, valid) = call(
            &ts,
            Method::POST,
            &format!("{path}/validate?{DEPLOY_API}"),
            Some(&owner),
            Some(request(serde_json::from_str(SCENARIO).unwrap(), scenario_parameters(&ts, "id1"))),
        )
        .await;
        assert_eq!(status, 200, "{valid}");
        assert_eq!(valid["properties"]["provisioningState"], "Succeeded");

        // Deleting the group deletes its deployments with it.
        let (status, _) =
            call(&ts, Method::DELETE, &group_path(&ts, "rg1"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg1"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        let (status, gone) =
            call(&ts, Method::GET, &format!("{path}?{DEPLOY_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&gone)), (404, "DeploymentNotFound"));
        let (_, list) = call(
            &ts,
            Method::GET,
            &format!("{}?{DEPLOY_API}", path.rsplit_once('/').unwrap().0),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(list["value"], json!([]));
    })
    .await;
}

fn identity_resource(name: &str) -> Value {
    json!({"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
           "name": name, "location": "[resourceGroup().location]"})
}

fn template(resources: Value, parameters: Value) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
        "resources": resources,
    })
}

#[tokio::test]
async fn bad_templates_are_400s_in_arms_shape_naming_the_problem() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let (status, _) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg1"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        let mut cycle_a = identity_resource("a");
        cycle_a["dependsOn"] = json!(["b"]);
        let mut cycle_b = identity_resource("b");
        cycle_b["dependsOn"] = json!(["a"]);
        let cases: Vec<(&str, Value, Value, &str, &str)> = vec![
            (
                "syntax",
                template(json!([identity_resource("[concat('a', ]")]), json!({})),
                json!({}),
                "InvalidTemplate",
                "resources[0].name",
            ),
            (
                "function",
                template(json!([identity_resource("[nosuchfunction('a')]")]), json!({})),
                json!({}),
                "InvalidTemplate",
                "nosuchfunction",
            ),
            (
                "cycle",
                template(json!([cycle_a, cycle_b]), json!({})),
                json!({}),
                "InvalidTemplate",
                "circular",
            ),
            (
                "missing",
                template(
                    json!([identity_resource("[parameters('name')]")]),
                    json!({"name": {"type": "string"}}),
                ),
                json!({}),
                "",
                "'name'",
            ),
            (
                "type",
                template(
                    json!([identity_resource("x[parameters('count')]")]),
                    json!({"count": {"type": "int"}}),
                ),
                json!({"count": {"value": "many"}}),
                "",
                "'count'",
            ),
        ];
        for (what, t, parameters, code, needle) in cases {
            let body = json!({"properties": {"template": t, "parameters": parameters}});
            for suffix in ["", "/validate", "/whatIf"] {
                let method = if suffix.is_empty() { Method::PUT } else { Method::POST };
                let path = format!("{}{suffix}?{DEPLOY_API}", deployment_path(&ts, "rg1", "bad"));
                let (status, error) =
                    call(&ts, method, &path, Some(&owner), Some(body.clone())).await;
                assert_eq!(status, 400, "{what}{suffix}: {error}");
                let got = error_code(&error);
                assert!(got.starts_with("InvalidTemplate"), "{what}{suffix}: {error}");
                if !code.is_empty() {
                    assert_eq!(got, code, "{what}{suffix}: {error}");
                }
                let message = error["error"]["message"].as_str().unwrap();
                assert!(message.contains(needle), "{what}{suffix}: {message}");
            }
        }
        // Not even lenient JSON; no template; nothing was recorded.
        let path = deployment_path(&ts, "rg1", "bad");
        let response =
            raw(&ts, Method::PUT, &path, &owner, "{\"properties\": {template: [}".into()).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error_code(&error), "InvalidRequestContent", "{error}");
        let (status, error) = call(
            &ts,
            Method::PUT,
            &format!("{path}?{DEPLOY_API}"),
            Some(&owner),
            Some(json!({"properties": {}})),
        )
        .await;
        assert_eq!((status, error_code(&error)), (400, "InvalidRequestContent"), "{error}");
        let (status, error) =
            call(&ts, Method::GET, &format!("{path}?{DEPLOY_API}"), Some(&owner), None).await;
        assert_eq!((status, error_code(&error)), (404, "DeploymentNotFound"), "{error}");
        // A missing group is ARM's 404.
        let (status, error) = call(
            &ts,
            Method::PUT,
            &format!("{}?{DEPLOY_API}", deployment_path(&ts, "nogroup", "d")),
            Some(&owner),
            Some(request(template(json!([]), json!({})), json!({}))),
        )
        .await;
        assert_eq!((status, error_code(&error)), (404, "ResourceGroupNotFound"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn an_unserved_type_fails_its_resource_and_skips_its_dependants_only() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let (status, _) = call(&ts, Method::PUT, &group_path(&ts, "rg1"), Some(&owner), Some(json!({"location": "westeurope"}))).await;
        assert_eq!(status, 201);
        let storage = json!({"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "store1",
                             "location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"});
        let mut dependant = identity_resource("after-store");
        dependant["dependsOn"] = json!(["store1"]);
        let t = template(json!([storage, dependant, identity_resource("independent")]), json!({}));
        let (_, deployment) = deploy(&ts, &owner, "rg1", "mixed", request(t, json!({}))).await;
        assert_eq!(deployment["properties"]["provisioningState"], "Failed", "{deployment}");
        let error = &deployment["properties"]["error"];
        assert_eq!(error["code"], "DeploymentFailed", "{error}");
        let details = error["details"].as_array().unwrap();
        assert_eq!(details.len(), 1, "{error}");
        assert_eq!(details[0]["code"], "InvalidResourceType", "{error}");
        assert!(details[0]["target"].as_str().unwrap().ends_with("/providers/Microsoft.Storage/storageAccounts/store1"));
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "rg1", "independent"), Some(&owner), None).await;
        assert_eq!(status, 200, "independent resources still deploy");
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "rg1", "after-store"), Some(&owner), None).await;
        assert_eq!(status, 404, "the dependant is skipped");
        let ops = operations(&ts, &owner, "rg1", "mixed").await;
        assert_eq!(ops.len(), 2, "{ops:?}");
        let failed: Vec<&Value> = ops.iter().filter(|o| o["properties"]["provisioningState"] == "Failed").collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["properties"]["statusCode"], "BadRequest");
        assert_eq!(failed[0]["properties"]["statusMessage"]["error"]["code"], "InvalidResourceType");
    })
    .await;
}

fn find_code<'a>(error: &'a Value, code: &str) -> Option<&'a Value> {
    if error["code"] == code {
        return Some(error);
    }
    error["details"].as_array().into_iter().flatten().find_map(|d| find_code(d, code))
}

#[tokio::test]
async fn missing_rights_refuse_the_deployment_or_fail_per_resource() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        setup_group_and_registry(&ts, &owner, "rg1", "myacr", "LegacyRegistryPermissions").await;
        let body =
            request(serde_json::from_str(SCENARIO).unwrap(), scenario_parameters(&ts, "id1"));
        let group = crate::rbac::rg_scope(&ts, "rg1");

        // Reader only: the deployment itself is refused; nothing is created or recorded.
        let reader = service_principal(&ts, &owner, "reader").await;
        let (status, _) =
            crate::rbac::assign(&ts, &owner, &group, &reader.object_id, READER, None).await;
        assert_eq!(status, 201);
        let token = reader.token(&ts).await;
        let path = format!("{}?{DEPLOY_API}", deployment_path(&ts, "rg1", "main"));
        let (status, error) = call(&ts, Method::PUT, &path, Some(&token), Some(body.clone())).await;
        assert_eq!((status, error_code(&error)), (403, "AuthorizationFailed"), "{error}");
        let (status, _) = call(&ts, Method::GET, &path, Some(&owner), None).await;
        assert_eq!(status, 404);
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "id1"), Some(&owner), None).await;
        assert_eq!(status, 404);
        // It may still read and what-if.
        let (status, _) = call(
            &ts,
            Method::GET,
            &format!(
                "{}?{DEPLOY_API}",
                deployment_path(&ts, "rg1", "main").rsplit_once('/').unwrap().0
            ),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 200);

        // Reader plus the right to run deployments: every resource is refused on its own (AuthorizationFailed),
        // the role assignment module is skipped because it needs the identity module's output; nothing exists.
        let deployer_role = "0b6a3c52-9f0e-4d1a-8c55-3e2f7a1d9b40";
        let role_body = json!({"properties": {
            "roleName": "Deployer", "description": "reads, and runs deployments", "type": "CustomRole",
            "assignableScopes": [crate::rbac::sub_scope(&ts)],
            "permissions": [{"actions": ["*/read", "Microsoft.Resources/deployments/*"], "notActions": [], "dataActions": [], "notDataActions": []}]
        }});
        let defs = format!("{}/providers/Microsoft.Authorization/roleDefinitions/{deployer_role}?api-version=2022-05-01-preview", crate::rbac::sub_scope(&ts));
        let (status, created) = call(&ts, Method::PUT, &defs, Some(&owner), Some(role_body)).await;
        assert_eq!(status, 201, "{created}");
        let deployer = service_principal(&ts, &owner, "deployer").await;
        let (status, _) = crate::rbac::assign(&ts, &owner, &group, &deployer.object_id, deployer_role, None).await;
        assert_eq!(status, 201);
        let token = deployer.token(&ts).await;
        let (_, deployment) = deploy(&ts, &token, "rg1", "main", body.clone()).await;
        assert_eq!(deployment["properties"]["provisioningState"], "Failed", "{deployment}");
        let refused = find_code(&deployment["properties"]["error"], "AuthorizationFailed").unwrap_or_else(|| panic!("{deployment}"));
        assert!(refused["message"].as_str().unwrap().contains("Microsoft.ManagedIdentity/userAssignedIdentities/write"), "{refused}");
        let ops = operations(&ts, &owner, "rg1", "main").await;
        assert_eq!(ops.len(), 1, "the role assignment module never started: {ops:?}");
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "rg1", "id1"), Some(&owner), None).await;
        assert_eq!(status, 404, "nothing half-created");
        assert!(registry_assignments(&ts, &owner).await.is_empty());

        // Managed Identity Contributor may deploy and create identities, not assign roles: the identity is
        // created (ARM keeps what was deployed), the assignment is refused with AuthorizationFailed.
        let operator = service_principal(&ts, &owner, "operator").await;
        let (status, _) =
            crate::rbac::assign(&ts, &owner, &group, &operator.object_id, MI_CONTRIBUTOR, None)
                .await;
        assert_eq!(status, 201);
        let token = operator.token(&ts).await;
        let (_, deployment) = deploy(&ts, &token, "rg1", "main", body.clone()).await;
        assert_eq!(deployment["properties"]["provisioningState"], "Failed", "{deployment}");
        let error = &deployment["properties"]["error"];
        let refused = find_code(error, "AuthorizationFailed").unwrap_or_else(|| panic!("{error}"));
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("Microsoft.Authorization/roleAssignments/write"),
            "{refused}"
        );
        assert!(
            refused["target"]
                .as_str()
                .unwrap()
                .contains("/providers/Microsoft.Authorization/roleAssignments/"),
            "{refused}"
        );
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "id1"), Some(&owner), None).await;
        assert_eq!(status, 200, "the identity deployed before the refusal stays");
        assert!(registry_assignments(&ts, &owner).await.is_empty());
        let nested =
            wait(&ts, &owner, &deployment_path(&ts, "rg1", "roleAssignmentDeployment")).await;
        assert_eq!(nested["properties"]["provisioningState"], "Failed");
        let ops = operations(&ts, &owner, "rg1", "roleAssignmentDeployment").await;
        assert_eq!(ops[0]["properties"]["statusCode"], "Forbidden", "{ops:?}");

        // The owner finishes it.
        let (_, deployment) = deploy(&ts, &owner, "rg1", "main", body).await;
        assert_eq!(deployment["properties"]["provisioningState"], "Succeeded", "{deployment}");
        assert_eq!(registry_assignments(&ts, &owner).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn complete_mode_deletes_what_the_template_does_not_name() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let (status, _) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg1"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        let (status, _) = call(
            &ts,
            Method::PUT,
            &identity_path(&ts, "rg1", "stray"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        let t = template(json!([identity_resource("kept")]), json!({}));
        let mut body = request(t.clone(), json!({}));
        let (_, d) = deploy(&ts, &owner, "rg1", "inc", body.clone()).await;
        assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "stray"), Some(&owner), None).await;
        assert_eq!(status, 200, "Incremental keeps it");
        body["properties"]["mode"] = json!("Complete");
        let (status, preview) = what_if(&ts, &owner, "full", body.clone()).await;
        assert_eq!(status, 200);
        let changes = changes_of(&preview);
        assert!(
            changes.iter().any(|(k, id)| k == "Delete" && id.ends_with("/stray")),
            "{changes:?}"
        );
        let (_, d) = deploy(&ts, &owner, "rg1", "full", body).await;
        assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
        assert_eq!(d["properties"]["mode"], "Complete");
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "stray"), Some(&owner), None).await;
        assert_eq!(status, 404, "Complete deletes it");
        let (status, _) =
            call(&ts, Method::GET, &identity_path(&ts, "rg1", "kept"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let ops = operations(&ts, &owner, "rg1", "full").await;
        assert!(
            ops.iter().any(|o| o["properties"]["provisioningOperation"] == "Delete"),
            "{ops:?}"
        );

        // Only the main template may be Complete (ARM's rule): a nested one fails, and deletes nothing.
        let nested = template(
            json!([{"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "nested-complete",
                    "properties": {"mode": "Complete", "expressionEvaluationOptions": {"scope": "inner"},
                                   "template": template(json!([]), json!({}))}}]),
            json!({}),
        );
        let (_, d) = deploy(&ts, &owner, "rg1", "outer", request(nested, json!({}))).await;
        assert_eq!(d["properties"]["provisioningState"], "Failed", "{d}");
        let detail = &d["properties"]["error"]["details"][0];
        assert_eq!(detail["code"], "InvalidTemplate", "{d}");
        assert!(detail["message"].as_str().unwrap().contains("can only be Incremental"), "{d}");
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "rg1", "kept"), Some(&owner), None).await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_run_whose_node_died_ends_failed_and_can_be_redeployed() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let (status, _) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg1"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!(status, 201);
        // A run as a crashed node leaves it: Running, its lease expired.
        let db = berth_db::Db::connect(&ts.database_url).await.unwrap();
        let id = format!(
            "/subscriptions/{}/resourceGroups/rg1/providers/Microsoft.Resources/deployments/orphan",
            ts.subscription_id
        );
        let record = berth_db::DeploymentRecord {
            id: id.clone(),
            scope_key: format!("/subscriptions/{}/resourcegroups/rg1", ts.subscription_id),
            group_key: Some(format!("/subscriptions/{}/resourcegroups/rg1", ts.subscription_id)),
            subscription_id: ts.subscription_id.clone(),
            name: "orphan".into(),
            location: None,
            template_hash: "1".into(),
            template: "{}".into(),
            parameters: "{}".into(),
            mode: "Incremental".into(),
            state: "Running".into(),
            outputs: None,
            output_resources: None,
            error: None,
            correlation_id: "c".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            started_ms: 1,
            duration_ms: 0,
            run_id: "dead".into(),
            lease_until: 2,
        };
        assert_eq!(
            db.start_deployment(&record, 1).await.unwrap(),
            berth_db::DeploymentStart::Started { created: true }
        );
        let (status, d) = call(
            &ts,
            Method::GET,
            &format!("{}?{DEPLOY_API}", deployment_path(&ts, "rg1", "orphan")),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(d["properties"]["provisioningState"], "Failed", "{d}");
        assert_eq!(d["properties"]["error"]["code"], "DeploymentInterrupted", "{d}");
        let (_, d) = deploy(
            &ts,
            &owner,
            "rg1",
            "orphan",
            request(template(json!([identity_resource("after-crash")]), json!({})), json!({})),
        )
        .await;
        assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_subscription_deployment_creates_a_group_and_deploys_into_it_keeping_secrets_out() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        let t = json!({
            "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "parameters": {"secret": {"type": "securestring"}, "groupName": {"type": "string"}},
            "resources": [
                {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2024-11-01", "name": "[parameters('groupName')]",
                 "location": "northeurope", "tags": {"made": "by-template"}},
                {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "inner",
                 "resourceGroup": "[parameters('groupName')]",
                 "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('groupName'))]"],
                 "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                                "template": {
                                    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                                    "contentVersion": "1.0.0.0",
                                    "resources": [identity_resource("sub-made")],
                                    "outputs": {"where": {"type": "string", "value": "[resourceGroup().location]"}}}}}
            ],
            "outputs": {
                "location": {"type": "string", "value": "[reference(resourceId(parameters('groupName'), 'Microsoft.Resources/deployments', 'inner'), '2025-04-01').outputs.where.value]"},
                "hidden": {"type": "securestring", "value": "[parameters('secret')]"}
            }
        });
        let path = format!("/subscriptions/{}/providers/Microsoft.Resources/deployments/subdeploy", ts.subscription_id);
        let body = json!({"location": "westeurope", "properties": {"template": t, "mode": "Incremental",
            "parameters": {"secret": {"value": "s3cr3t-value"}, "groupName": {"value": "made-rg"}}}});
        // A subscription deployment needs a location.
        let mut no_location = body.clone();
        no_location.as_object_mut().unwrap().remove("location");
        let (status, error) = call(&ts, Method::PUT, &format!("{path}?{DEPLOY_API}"), Some(&owner), Some(no_location)).await;
        assert_eq!((status, error_code(&error)), (400, "LocationRequired"), "{error}");

        let (status, put) = call(&ts, Method::PUT, &format!("{path}?{DEPLOY_API}"), Some(&owner), Some(body)).await;
        assert_eq!(status, 201, "{put}");
        let d = wait(&ts, &owner, &path).await;
        assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
        assert_eq!(d["location"], "westeurope");
        assert_eq!(d["properties"]["outputs"]["location"]["value"], "northeurope", "{d}");
        // Secure values are never shown: not in parameters, not in outputs, not anywhere in the record.
        assert_eq!(d["properties"]["parameters"]["secret"], json!({"type": "SecureString"}), "{d}");
        assert!(d["properties"]["outputs"]["hidden"].get("value").is_none(), "{d}");
        assert!(!d.to_string().contains("s3cr3t-value"));
        let (_, ops) = call(&ts, Method::GET, &format!("{path}/operations?{DEPLOY_API}"), Some(&owner), None).await;
        assert!(!ops.to_string().contains("s3cr3t-value"));
        // The group exists as the template made it, and the nested deployment ran in it.
        let (status, group) = call(&ts, Method::GET, &group_path(&ts, "made-rg"), Some(&owner), None).await;
        assert_eq!(status, 200, "{group}");
        assert_eq!(group["tags"]["made"], "by-template");
        let (status, _) = call(&ts, Method::GET, &identity_path(&ts, "made-rg", "sub-made"), Some(&owner), None).await;
        assert_eq!(status, 200);
        let inner = wait(&ts, &owner, &deployment_path(&ts, "made-rg", "inner")).await;
        assert_eq!(inner["properties"]["provisioningState"], "Succeeded");
        let (_, list) = call(&ts, Method::GET, &format!("/subscriptions/{}/providers/Microsoft.Resources/deployments?{DEPLOY_API}", ts.subscription_id), Some(&owner), None).await;
        let names: Vec<&str> = list["value"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["subdeploy"], "subscription-level deployments only");
    })
    .await;
}
