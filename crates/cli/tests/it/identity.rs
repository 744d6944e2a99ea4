//! `berth identity ...`, `berth identity federated-credential ...` and `berth acr identity ...`.

use serde_json::json;

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_federated_credential_commands() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    harness.berth(&["group", "create", "-n", "rg2", "-l", "northeurope"]).await.success();

    // The scenario's lines: az identity create, then PRINCIPAL_ID=$(az identity show ... --query principalId -o tsv).
    let created =
        harness.berth(&["identity", "create", "-g", "rg1", "-n", "id1"]).await.success().json();
    let id = format!(
        "/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    );
    assert_eq!(created["id"], json!(id));
    assert_eq!(created["type"], "Microsoft.ManagedIdentity/userAssignedIdentities");
    assert_eq!(created["location"], "westeurope");
    assert_eq!(created["resourceGroup"], "rg1");
    assert_eq!(created["tenantId"], harness.server.tenant_id.as_str());
    let principal_id = created["principalId"].as_str().expect("flattened principalId").to_owned();
    assert!(created["clientId"].is_string() && created.get("properties").is_none(), "{created}");
    let shown = harness
        .berth(&[
            "identity",
            "show",
            "--resource-group",
            "rg1",
            "--name",
            "id1",
            "--query",
            "principalId",
            "--output",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(shown.stdout, format!("{principal_id}\n"));

    harness
        .berth(&["identity", "create", "-g", "rg2", "-n", "id2", "-l", "eastus", "--tags", "a=b"])
        .await
        .success();
    let in_group = harness
        .berth(&[
            "identity",
            "list",
            "-g",
            "rg2",
            "--query",
            "[].[name, location, tags.a]",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(in_group.stdout, "id2\teastus\tb\n");
    let all = harness
        .berth(&["identity", "list", "--query", "sort([].name)", "-o", "tsv"])
        .await
        .success();
    assert_eq!(all.stdout, "id1\nid2\n");

    // Federated credentials, with az's default audience.
    let credential = harness
        .berth(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "kubernetes",
            "--issuer",
            "https://oidc.cluster.example",
            "--subject",
            "system:serviceaccount:ns:app",
        ])
        .await
        .success()
        .json();
    assert_eq!(credential["issuer"], "https://oidc.cluster.example");
    assert_eq!(credential["subject"], "system:serviceaccount:ns:app");
    assert_eq!(credential["audiences"], json!(["api://AzureADTokenExchange"]));
    assert_eq!(credential["id"], json!(format!("{id}/federatedIdentityCredentials/kubernetes")));
    harness
        .berth(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "github",
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--subject",
            "repo:team/app:ref:refs/heads/main",
            "--audiences",
            "api://AzureADTokenExchange",
            "api://Other",
        ])
        .await
        .success();
    let listed = harness
        .berth(&[
            "identity",
            "federated-credential",
            "list",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "--query",
            "[].[name, length(audiences)]",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(listed.stdout, "github\t2\nkubernetes\t1\n");
    let subject = harness
        .berth(&[
            "identity",
            "federated-credential",
            "show",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "kubernetes",
            "--query",
            "subject",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(subject.stdout, "system:serviceaccount:ns:app\n");
    let duplicate = harness
        .berth(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "again",
            "--issuer",
            "https://oidc.cluster.example",
            "--subject",
            "system:serviceaccount:ns:app",
        ])
        .await;
    assert_eq!(duplicate.code, 1, "{duplicate}");
    assert!(duplicate.stderr.starts_with("ERROR: (Conflict) "), "{duplicate}");
    let unconfirmed = harness
        .berth(&[
            "identity",
            "federated-credential",
            "delete",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "github",
        ])
        .await;
    assert_eq!(unconfirmed.code, 1, "no tty to confirm on: {unconfirmed}");
    harness
        .berth(&[
            "identity",
            "federated-credential",
            "delete",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "github",
            "--yes",
        ])
        .await
        .success();
    let names = harness
        .berth(&[
            "identity",
            "federated-credential",
            "list",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "--query",
            "[].name",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(names.stdout, "kubernetes\n");

    // Delete: the identity is gone, and so is its principal.
    let deleted = harness.berth(&["identity", "delete", "-g", "rg1", "-n", "id1"]).await.success();
    assert_eq!(deleted.stdout, "");
    let gone = harness.berth(&["identity", "show", "-g", "rg1", "-n", "id1"]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert!(gone.stderr.starts_with("ERROR: (ResourceNotFound) "), "{gone}");
    let db = berth_db::Db::connect(&harness.server.database_url).await.unwrap();
    assert!(db.get_principal(&principal_id).await.unwrap().is_none());
    db.close().await;
    let missing_group = harness.berth(&["identity", "create", "-g", "nope", "-n", "id3"]).await;
    assert_eq!(missing_group.code, 1, "{missing_group}");
    assert!(missing_group.stderr.starts_with("ERROR: (ResourceGroupNotFound) "), "{missing_group}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_identity_commands() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let sub = harness.server.subscription_id.clone();
    harness.berth(&["group", "create", "-n", "rg1", "-l", "westeurope"]).await.success();
    let uami =
        harness.berth(&["identity", "create", "-g", "rg1", "-n", "id1"]).await.success().json();
    let uami_id = uami["id"].as_str().unwrap().to_owned();

    // --assign-identity with no value: the system identity.
    let created = harness
        .berth(&[
            "acr",
            "create",
            "-g",
            "rg1",
            "-n",
            "myacr",
            "--sku",
            "Basic",
            "--assign-identity",
        ])
        .await
        .success()
        .json();
    assert_eq!(created["identity"]["type"], "SystemAssigned");
    let system = created["identity"]["principalId"].as_str().unwrap().to_owned();

    // The scenario's line: az acr identity assign --name $ACR --identities $MI --resource-group $RG (here also
    // without -g: the registry's group is looked up).
    let assigned = harness
        .berth(&["acr", "identity", "assign", "--name", "myacr", "--identities", "id1"])
        .await
        .success()
        .json();
    assert_eq!(assigned["type"], "SystemAssigned, UserAssigned");
    assert_eq!(assigned["principalId"], json!(system));
    assert_eq!(
        assigned["userAssignedIdentities"],
        json!({uami_id.clone(): {"principalId": uami["principalId"], "clientId": uami["clientId"]}})
    );
    let shown = harness
        .berth(&[
            "acr",
            "identity",
            "show",
            "-n",
            "myacr",
            "-g",
            "rg1",
            "--query",
            "principalId",
            "-o",
            "tsv",
        ])
        .await
        .success();
    assert_eq!(shown.stdout, format!("{system}\n"));
    let unknown = harness
        .berth(&["acr", "identity", "assign", "-n", "myacr", "--identities", "nosuch"])
        .await;
    assert_eq!(unknown.code, 1, "{unknown}");
    assert!(unknown.stderr.starts_with("ERROR: (FailedIdentityOperation) "), "{unknown}");

    // Remove the system identity, then the user-assigned one by ID: nothing is left to print.
    let removed = harness
        .berth(&[
            "acr",
            "identity",
            "remove",
            "-n",
            "myacr",
            "-g",
            "rg1",
            "--identities",
            "[system]",
        ])
        .await
        .success()
        .json();
    assert_eq!(removed["type"], "UserAssigned");
    assert!(removed.get("principalId").is_none(), "{removed}");
    let not_assigned =
        harness.berth(&["acr", "identity", "remove", "-n", "myacr", "--identities", "other"]).await;
    assert_eq!(not_assigned.code, 1, "{not_assigned}");
    let empty = harness
        .berth(&["acr", "identity", "remove", "-n", "myacr", "--identities", &uami_id])
        .await
        .success();
    assert_eq!(empty.stdout, "");
    let none = harness
        .berth(&["acr", "show", "-n", "myacr", "--query", "identity", "-o", "json"])
        .await
        .success();
    assert_eq!(none.stdout, "");

    // acr update --assign-identity adds, and turning the system identity on again gives a new principal.
    let updated = harness
        .berth(&[
            "acr",
            "update",
            "-n",
            "myacr",
            "--assign-identity",
            "[system]",
            &format!("/subscriptions/{sub}/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"),
        ])
        .await
        .success()
        .json();
    assert_eq!(updated["identity"]["type"], "SystemAssigned, UserAssigned");
    assert_ne!(updated["identity"]["principalId"], json!(system));
    assert!(updated["identity"]["userAssignedIdentities"][&uami_id].is_object(), "{updated}");
}
