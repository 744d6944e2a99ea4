//! `berth role definition|assignment|audit ...`, `berth acr check-access` and `--role-assignment-mode`, including
//! the second source document's command sequence with `berth` in place of `az`.

use serde_json::json;

use crate::common::Harness;

const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_two_and_role_commands() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    let rg_scope = format!("/subscriptions/{sub}/resourceGroups/rg1");

    // The scenario, line by line.
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness
        .berth(&["acr", "create", "-g", "rg1", "-n", "acrscenario", "--sku", "Standard"])
        .await
        .success();
    harness
        .berth(&["identity", "create", "--resource-group", "rg1", "--name", "mi1"])
        .await
        .success();
    harness
        .berth(&[
            "acr",
            "identity",
            "assign",
            "--name",
            "acrscenario",
            "--identities",
            "mi1",
            "--resource-group",
            "rg1",
        ])
        .await
        .success();
    let principal = harness
        .berth(&[
            "identity",
            "show",
            "--resource-group",
            "rg1",
            "--name",
            "mi1",
            "--query",
            "principalId",
            "--output",
            "tsv",
        ])
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let created = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--role",
            "AcrPull",
            "--scope",
            &rg_scope,
        ])
        .await
        .success()
        .json();
    assert_eq!(created["principalId"], principal.as_str());
    assert_eq!(created["scope"], rg_scope.as_str());
    assert_eq!(created["roleDefinitionName"], "AcrPull");
    assert_eq!(created["principalType"], "ServicePrincipal");
    assert_eq!(created["principalName"], "mi1");
    let role = harness
        .berth(&[
            "role",
            "definition",
            "list",
            "--name",
            "AcrPull",
            "--query",
            "[0].id",
            "--output",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(
        role.stdout,
        format!(
            "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}\n"
        )
    );
    // The first document spells it `acrpull`: berth matches role names case-insensitively.
    let role = harness
        .berth(&[
            "role",
            "definition",
            "list",
            "--name",
            "acrpull",
            "--query",
            "[0].roleName",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(role.stdout, "AcrPull\n");
    // Creating it again is not an error: az returns the existing assignment.
    let again = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee-object-id",
            &principal,
            "--assignee-principal-type",
            "ServicePrincipal",
            "--role",
            "acrpull",
            "--scope",
            &rg_scope,
        ])
        .await
        .success()
        .json();
    assert_eq!(again["name"], created["name"]);

    // Listing: only the subscription scope by default, the group with --scope, everything with --all.
    let at_sub = harness
        .berth(&["role", "assignment", "list", "--query", "[].scope", "-o", "tsv"])
        .await
        .success();
    assert!(!at_sub.stdout.contains("rg1"), "{at_sub}");
    let mine = harness
        .berth(&[
            "role",
            "assignment",
            "list",
            "--assignee",
            &principal,
            "--all",
            "--query",
            "[].roleDefinitionName",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(mine.stdout, "AcrPull\n");
    let inherited = harness
        .berth(&[
            "role",
            "assignment",
            "list",
            "--scope",
            &format!("{rg_scope}/providers/Microsoft.ContainerRegistry/registries/acrscenario"),
            "--include-inherited",
            "--query",
            "sort([].roleDefinitionName)",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(inherited.stdout, "AcrPull\nOwner\n");

    // Explanations: the identity may pull (AcrPull at the group), not push.
    let explained = harness
        .berth(&[
            "acr",
            "check-access",
            "-n",
            "acrscenario",
            "--assignee",
            &principal,
            "--repository",
            "app",
        ])
        .await
        .success()
        .json();
    let pull = explained["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["action"] == "pull")
        .unwrap()
        .clone();
    assert_eq!(pull["allowed"], true);
    assert_eq!(pull["roleDefinitionName"], "AcrPull");
    assert_eq!(pull["roleAssignmentId"], created["id"]);
    let push = explained["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["action"] == "push")
        .unwrap()
        .clone();
    assert_eq!(push["allowed"], false);

    // The mode flags.
    let updated = harness
        .berth(&["acr", "update", "-n", "acrscenario", "--role-assignment-mode", "rbac-abac"])
        .await
        .success()
        .json();
    assert_eq!(updated["roleAssignmentMode"], "AbacRepositoryPermissions");
    let explained = harness
        .berth(&[
            "acr",
            "check-access",
            "-n",
            "acrscenario",
            "--assignee",
            &principal,
            "--repository",
            "app",
            "--query",
            "decisions[?action=='pull'].allowed | [0]",
        ])
        .await
        .success();
    assert_eq!(explained.stdout.trim(), "false", "AcrPull is not honoured in ABAC mode");

    // Custom roles from a file in az's shape.
    let file = harness.config_dir.path().join("role.json");
    std::fs::write(
        &file,
        json!({"Name": "Registry Reader Custom", "IsCustom": true, "Description": "pull", "Actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
               "NotActions": [], "DataActions": [], "NotDataActions": [], "AssignableScopes": [format!("/subscriptions/{sub}")]}).to_string(),
    )
    .unwrap();
    let definition = harness
        .berth(&[
            "role",
            "definition",
            "create",
            "--role-definition",
            &format!("@{}", file.display()),
        ])
        .await
        .success()
        .json();
    assert_eq!(definition["roleType"], "CustomRole");
    assert_eq!(definition["roleName"], "Registry Reader Custom");
    let custom = harness
        .berth(&[
            "role",
            "definition",
            "list",
            "--custom-role-only",
            "--query",
            "[].roleName",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(custom.stdout, "Registry Reader Custom\n");
    std::fs::write(
        &file,
        json!({"Name": "Registry Reader Custom", "Description": "pull and read", "Actions": ["Microsoft.ContainerRegistry/registries/pull/read", "Microsoft.ContainerRegistry/registries/read"],
               "AssignableScopes": [format!("/subscriptions/{sub}")]}).to_string(),
    )
    .unwrap();
    let updated = harness
        .berth(&[
            "role",
            "definition",
            "update",
            "--role-definition",
            &format!("@{}", file.display()),
        ])
        .await
        .success()
        .json();
    assert_eq!(updated["name"], definition["name"]);
    assert_eq!(updated["description"], "pull and read");
    harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--role",
            "registry reader custom",
            "-g",
            "rg1",
        ])
        .await
        .success();
    let refused =
        harness.berth(&["role", "definition", "delete", "--name", "Registry Reader Custom"]).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("RoleDefinitionHasAssignments"), "{refused}");
    harness
        .berth(&[
            "role",
            "assignment",
            "delete",
            "--assignee",
            &principal,
            "--role",
            "Registry Reader Custom",
            "--scope",
            &rg_scope,
        ])
        .await
        .success();
    harness
        .berth(&["role", "definition", "delete", "--name", "Registry Reader Custom"])
        .await
        .success();
    let custom =
        harness.berth(&["role", "definition", "list", "--custom-role-only"]).await.success().json();
    assert_eq!(custom, json!([]));

    // Errors in az's words.
    let missing = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--role",
            "NoSuchRole",
            "--scope",
            &rg_scope,
        ])
        .await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("Role 'NoSuchRole' doesn't exist."), "{missing}");
    let nobody = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            "00000000-1111-2222-3333-444444444444",
            "--role",
            "AcrPull",
            "--scope",
            &rg_scope,
        ])
        .await;
    assert!(nobody.stderr.contains("Cannot find user or service principal"), "{nobody}");
    let bad = harness
        .berth(&[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--role",
            "AcrPush",
            "--scope",
            &rg_scope,
            "--condition",
            "@Request[x] StringEquals",
        ])
        .await;
    assert!(bad.stderr.contains("InvalidCondition"), "{bad}");

    // The audit log has the decisions made so far (written in the background, so it may take a moment).
    let mut events = serde_json::Value::Null;
    for _ in 0..50 {
        events = harness.berth(&["role", "audit", "list", "--top", "5"]).await.success().json();
        if events.as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events = events.as_array().expect("a list of decisions");
    assert!(!events.is_empty() && events.len() <= 5, "{events:?}");
    assert!(events.iter().all(|e| e.to_string().contains("allowed")), "{events:?}");

    // Delete by id.
    harness
        .berth(&["role", "assignment", "delete", "--ids", created["id"].as_str().unwrap()])
        .await
        .success();
    let mine = harness
        .berth(&["role", "assignment", "list", "--assignee", &principal, "--all"])
        .await
        .success()
        .json();
    assert_eq!(mine, json!([]));
}
