//! `berth deployment group ...`: the source document's corrected Bicep files, compiled in-process, deploy an
//! identity and an AcrPull assignment on the registry; the printed files are refused with the compiler's
//! diagnostics before any request; what-if prints az's diff; show, list, validate and delete.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::Harness;

const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bicep/tests/scenario").join(name)
}

fn arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_group_commands_deploy_the_scenario() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness.berth(&["group", "create", "-n", "rg2", "-l", "westeurope"]).await.success();
    harness
        .berth(&["acr", "create", "-g", "rg1", "-n", "myacr", "--sku", "Standard"])
        .await
        .success();
    let corrected = arg(&scenario("corrected").join("main.bicep"));
    let params = |identity: &str| -> Vec<String> {
        vec![
            "--parameters".into(),
            "resourceGroupName=rg1".into(),
            format!("subscriptionId={sub}"),
            format!("managedIdentityName={identity}"),
            "acrName=myacr".into(),
            format!("acrpullRoleId={ACR_PULL}"),
        ]
    };
    let with = |head: &[&str], identity: &str| -> Vec<String> {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        args.extend(params(identity));
        args
    };
    let refs = |args: &Vec<String>| -> Vec<String> { args.clone() };

    // The printed files are refused by the compiler, before anything is sent.
    let printed = arg(&scenario("printed").join("main.bicep"));
    let args =
        with(&["deployment", "group", "create", "-g", "rg2", "--template-file", &printed], "id1");
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = harness.berth(&argv).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(
        refused.stderr.contains(
            "error[BCP052]: The type \"outputs\" does not contain property \"principalId\"."
        ),
        "{refused}"
    );
    assert!(refused.stdout.is_empty(), "{refused}");
    let none = harness.berth(&["deployment", "group", "list", "-g", "rg2"]).await.success();
    assert_eq!(none.json(), serde_json::json!([]));

    // The corrected files deploy; the name is the file's stem, as az's.
    let args = refs(&with(
        &["deployment", "group", "create", "-g", "rg1", "--template-file", &corrected],
        "id1",
    ));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let created = harness.berth(&argv).await.success();
    let deployment = created.json();
    assert_eq!(deployment["name"], "main");
    assert_eq!(deployment["resourceGroup"], "rg1");
    assert_eq!(deployment["properties"]["provisioningState"], "Succeeded", "{created}");
    assert!(!created.stderr.contains('\r'), "no spinner without a terminal: {created}");
    let principal = harness
        .berth(&[
            "identity",
            "show",
            "-g",
            "rg1",
            "-n",
            "id1",
            "--query",
            "principalId",
            "-o",
            "tsv",
        ])
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let assignments = harness
        .berth(&["role", "assignment", "list", "--scope", &format!("/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/myacr")])
        .await
        .success()
        .json();
    let matching: Vec<&Value> = assignments
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["principalId"] == principal.as_str()
                && a["roleDefinitionId"].as_str().unwrap().ends_with(ACR_PULL)
        })
        .collect();
    assert_eq!(matching.len(), 1, "{assignments}");
    assert!(matching[0]["scope"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase()
        .ends_with("/registries/myacr"));

    // show and list.
    let shown =
        harness.berth(&["deployment", "group", "show", "-g", "rg1", "-n", "main"]).await.success();
    assert_eq!(
        shown.json()["properties"]["correlationId"],
        deployment["properties"]["correlationId"]
    );
    let listed = harness
        .berth(&["deployment", "group", "list", "-g", "rg1", "--query", "[].name", "-o", "tsv"])
        .await
        .success();
    let mut names: Vec<&str> = listed.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["main", "managedIdentityDeployment", "roleAssignmentDeployment"]);

    // what-if: no change with the same parameters; a new identity name is exactly one Create.
    let args = refs(&with(
        &["deployment", "group", "what-if", "-g", "rg1", "--template-file", &corrected],
        "id1",
    ));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let same = harness.berth(&argv).await.success();
    assert!(same.stdout.contains("Resource changes: 2 no change, 1 to ignore."), "{same}");
    let args = refs(&with(
        &["deployment", "group", "what-if", "-g", "rg1", "--template-file", &corrected],
        "id2",
    ));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let renamed = harness.berth(&argv).await.success();
    assert!(
        renamed.stdout.contains(
            "Resource and property changes are indicated with these symbols:\n  + Create\n"
        ),
        "{renamed}"
    );
    assert!(
        renamed.stdout.contains(&format!("Scope: /subscriptions/{sub}/resourceGroups/rg1\n")),
        "{renamed}"
    );
    assert!(
        renamed
            .stdout
            .contains("  + Microsoft.ManagedIdentity/userAssignedIdentities/id2 [2018-11-30]\n"),
        "{renamed}"
    );
    // The new identity's AcrPull assignment too: its principal is only known once the identity exists.
    assert!(
        renamed.stdout.contains(
            "properties.principalId: \"[reference(resourceId('Microsoft.Resources/deployments', 'managedIdentityDeployment'), '2025-04-01').outputs.principalId.value]\""
        ),
        "{renamed}"
    );
    assert!(renamed.stdout.contains("Resource changes: 2 to create, 2 to ignore."), "{renamed}");
    assert!(!renamed.stdout.contains('\x1b'), "no colour without a terminal");

    // validate; a JSON template with a parameters file; a bad parameter is the server's 400.
    let args = refs(&with(
        &["deployment", "group", "validate", "-g", "rg1", "--template-file", &corrected],
        "id1",
    ));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let valid = harness.berth(&argv).await.success();
    assert_eq!(valid.json()["properties"]["provisioningState"], "Succeeded");
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("identity.json");
    std::fs::write(&template, r#"{
      // comments are fine, as in az
      "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
      "contentVersion": "1.0.0.0",
      "parameters": {"name": {"type": "string"}, "count": {"type": "int"}},
      "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                     "name": "[parameters('name')]", "location": "[resourceGroup().location]"}],
      "outputs": {"doubled": {"type": "int", "value": "[mul(parameters('count'), 2)]"}}
    }"#).unwrap();
    let parameters = dir.path().join("params.json");
    std::fs::write(&parameters, r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": {"name": {"value": "fromfile"}}}"#).unwrap();
    let json_deploy = harness
        .berth(&[
            "deployment",
            "group",
            "create",
            "-g",
            "rg2",
            "-f",
            &arg(&template),
            "-p",
            &format!("@{}", arg(&parameters)),
            "-p",
            "count=21",
        ])
        .await
        .success()
        .json();
    assert_eq!(json_deploy["name"], "identity");
    assert_eq!(json_deploy["properties"]["outputs"]["doubled"]["value"], 42);
    let bad = harness
        .berth(&[
            "deployment",
            "group",
            "create",
            "-g",
            "rg2",
            "-f",
            &arg(&template),
            "-p",
            "name=x1",
            "-p",
            "count=many",
        ])
        .await;
    assert_eq!(bad.code, 1, "{bad}");
    assert!(bad.stderr.contains("InvalidTemplate") && bad.stderr.contains("count"), "{bad}");

    // delete removes the record, not the resources.
    harness.berth(&["deployment", "group", "delete", "-g", "rg1", "-n", "main"]).await.success();
    let gone = harness.berth(&["deployment", "group", "show", "-g", "rg1", "-n", "main"]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert!(gone.stderr.contains("DeploymentNotFound"), "{gone}");
    harness.berth(&["identity", "show", "-g", "rg1", "-n", "id1"]).await.success();
}
