//! The metadata store's behaviour, run against every backend (SQLite and PostgreSQL).

use berth_db::testing::{backends, scratch_database};
use berth_db::*;

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let url = scratch_database(backend, dir.path()).await.unwrap_or_else(|e| {
            panic!("cannot create a {backend:?} test database ({e}); start PostgreSQL or set BERTH_TEST_POSTGRES_URL")
        });
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.backend(), backend);
        test(db.clone()).await;
        db.close().await;
    }
}

fn principal(id: &str, app: &str, name: &str) -> Principal {
    Principal {
        id: id.into(),
        tenant_id: "t".into(),
        app_id: app.into(),
        kind: PrincipalKind::ServicePrincipal,
        display_name: name.into(),
        resource_id: None,
        application_object_id: None,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn assignment(name: &str, scope: &str, principal: &str) -> RoleAssignmentRecord {
    RoleAssignmentRecord {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        name: name.into(),
        scope: scope.into(),
        role_definition_id: "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/r"
            .into(),
        principal_id: principal.into(),
        principal_type: "ServicePrincipal".into(),
        condition: None,
        condition_version: None,
        description: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        created_by: None,
        updated_by: None,
    }
}

async fn bootstrap(db: &Db) {
    let sub = Subscription {
        id: "s".into(),
        tenant_id: "t".into(),
        display_name: "sub".into(),
        state: "Enabled".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    let owner = principal("p1", "a1", "owner");
    let secret = PrincipalSecret {
        id: "k1".into(),
        principal_id: "p1".into(),
        secret_hash: "$argon2id$...".into(),
        hint: "abc".into(),
        display_name: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        expires_at: 4_000_000_000,
    };
    db.bootstrap("t", &sub, &owner, &secret, &assignment("a0", "/subscriptions/s", "p1"))
        .await
        .unwrap();
}

fn group(name: &str) -> ResourceRecord {
    ResourceRecord {
        id: format!("/subscriptions/s/resourceGroups/{name}"),
        subscription_id: "s".into(),
        group_key: format!("/subscriptions/s/resourcegroups/{}", name.to_lowercase()),
        type_key: "microsoft.resources/resourcegroups".into(),
        name: name.into(),
        unique_name: None,
        body: "{}".into(),
        created_at: "c".into(),
        updated_at: "u".into(),
    }
}

fn registry(group: &str, name: &str) -> ResourceRecord {
    let id = format!("/subscriptions/s/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}");
    ResourceRecord {
        id,
        subscription_id: "s".into(),
        group_key: format!("/subscriptions/s/resourcegroups/{}", group.to_lowercase()),
        type_key: "microsoft.containerregistry/registries".into(),
        name: name.into(),
        unique_name: Some(format!("registry:{}", name.to_lowercase())),
        body: format!("{{\"name\":\"{name}\"}}"),
        created_at: "c".into(),
        updated_at: "u".into(),
    }
}

#[tokio::test]
async fn bootstrap_is_atomic_and_readable() {
    each_backend(|db| async move {
        assert_eq!(db.tenant_id().await.unwrap(), None);
        bootstrap(&db).await;
        assert_eq!(db.tenant_id().await.unwrap().as_deref(), Some("t"));
        assert_eq!(db.list_subscriptions().await.unwrap().len(), 1);
        assert_eq!(db.get_subscription("S").await.unwrap().unwrap().id, "s");
        let p = db.get_principal_by_app_id("A1").await.unwrap().unwrap();
        assert_eq!(p.id, "p1");
        assert_eq!(db.secrets_of("p1").await.unwrap().len(), 1);
        assert_eq!(db.role_assignments_of("P1").await.unwrap().len(), 1);
        // A second bootstrap must fail as a whole and change nothing.
        let sub = db.list_subscriptions().await.unwrap().remove(0);
        let again = db
            .bootstrap(
                "t2",
                &sub,
                &principal("p9", "a9", "x"),
                &db.secrets_of("p1").await.unwrap()[0],
                &assignment("a9", "/subscriptions/s", "p9"),
            )
            .await;
        assert!(again.is_err());
        assert!(db.get_principal("p9").await.unwrap().is_none());
        assert_eq!(db.tenant_id().await.unwrap().as_deref(), Some("t"));
    })
    .await;
}

#[tokio::test]
async fn principals_are_unique_by_app_id() {
    each_backend(|db| async move {
        bootstrap(&db).await;
        db.create_principal(&principal("p2", "a2", "two"), None).await.unwrap();
        let dup = db.create_principal(&principal("p3", "A2", "three"), None).await;
        assert!(matches!(dup, Err(DbError::Conflict(_))), "{dup:?}");
        assert_eq!(db.list_principals_by_display_name("two").await.unwrap().len(), 1);
        assert!(db.delete_principal("p2").await.unwrap());
        assert!(!db.delete_principal("p2").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn resource_groups_and_resources_round_trip() {
    each_backend(|db| async move {
        bootstrap(&db).await;
        assert!(db.put_resource_group(&group("G1")).await.unwrap());
        assert!(!db.put_resource_group(&group("g1")).await.unwrap(), "same group, other casing, is an update");
        assert!(db.put_resource_group(&group("g2")).await.unwrap());
        assert_eq!(db.list_resource_groups("s").await.unwrap().len(), 2);
        assert_eq!(db.get_resource_group("/SUBSCRIPTIONS/s/resourceGroups/G1").await.unwrap().unwrap().name, "G1");

        assert!(db.put_resource(&registry("G1", "myacr")).await.unwrap());
        assert!(!db.put_resource(&registry("G1", "MyAcr")).await.unwrap());
        // Registry names are unique across groups.
        let clash = db.put_resource(&registry("g2", "MYACR")).await;
        assert!(matches!(clash, Err(DbError::Conflict(_))), "{clash:?}");
        assert!(db.put_resource(&registry("g2", "other1")).await.unwrap());

        let regs = db.list_resources("s", None, Some("Microsoft.ContainerRegistry/registries")).await.unwrap();
        assert_eq!(regs.len(), 2);
        let in_g1 = db.list_resources("s", Some("/subscriptions/s/resourcegroups/g1"), None).await.unwrap();
        assert_eq!(in_g1.len(), 1);
        assert_eq!(
            db.get_resource_by_unique_name("registry:myacr").await.unwrap().unwrap().id,
            "/subscriptions/s/resourceGroups/G1/providers/Microsoft.ContainerRegistry/registries/myacr"
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_a_group_removes_its_resources_and_assignments() {
    each_backend(|db| async move {
        bootstrap(&db).await;
        db.put_resource_group(&group("g1")).await.unwrap();
        db.put_resource_group(&group("g1_x")).await.unwrap();
        let reg = registry("g1", "myacr");
        db.put_resource(&reg).await.unwrap();
        db.put_resource(&registry("g1_x", "keepme")).await.unwrap();
        db.create_role_assignment(&assignment("a1", &reg.id, "p1")).await.unwrap();
        db.create_role_assignment(&assignment("a2", "/subscriptions/s/resourceGroups/g1", "p1"))
            .await
            .unwrap();
        // `_` must not act as a LIKE wildcard: g1_x is not below g1.
        db.create_role_assignment(&assignment("a3", "/subscriptions/s/resourceGroups/g1_x", "p1"))
            .await
            .unwrap();

        let removed =
            db.delete_resource_group("/subscriptions/s/resourceGroups/G1").await.unwrap().unwrap();
        assert_eq!(removed.len(), 1);
        assert!(db.get_resource(&reg.id).await.unwrap().is_none());
        assert!(db.get_resource_by_unique_name("registry:keepme").await.unwrap().is_some());
        let left: Vec<String> =
            db.role_assignments_of("p1").await.unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(left, ["a0", "a3"]);
        assert!(db
            .delete_resource_group("/subscriptions/s/resourceGroups/g1")
            .await
            .unwrap()
            .is_none());
        // The registry name is free again.
        db.put_resource_group(&group("g3")).await.unwrap();
        assert!(db.put_resource(&registry("g3", "myacr")).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn signing_keys_rotate() {
    each_backend(|db| async move {
        let k1 = StoredSigningKey {
            kid: "k1".into(),
            private_pem: "pem1".into(),
            created_at: 10,
            retired_at: None,
        };
        let k2 = StoredSigningKey {
            kid: "k2".into(),
            private_pem: "pem2".into(),
            created_at: 20,
            retired_at: None,
        };
        db.rotate_signing_key(&k1, 10).await.unwrap();
        db.rotate_signing_key(&k2, 20).await.unwrap();
        let keys = db.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].retired_at, Some(20));
        assert_eq!(keys[1].retired_at, None);
        assert_eq!(db.prune_signing_keys(21).await.unwrap(), 1);
        assert_eq!(db.signing_keys().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_everything() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let url = scratch_database(backend, dir.path()).await.unwrap();
        let db = Db::connect(&url).await.unwrap();
        bootstrap(&db).await;
        db.close().await;
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.tenant_id().await.unwrap().as_deref(), Some("t"));
        db.close().await;
    }
}

fn manifest(digest: &str, subject: Option<&str>, artifact_type: Option<&str>) -> ManifestRecord {
    ManifestRecord {
        registry: "acr".into(),
        repository: "team/app".into(),
        digest: digest.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 100,
        artifact_type: artifact_type.map(str::to_string),
        subject: subject.map(str::to_string),
        annotations: None,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test]
async fn registry_metadata_round_trips() {
    each_backend(|db| async move {
        db.link_blob("acr", "team/app", "sha256:l1", 10, "t").await.unwrap();
        db.link_blob("acr", "team/app", "sha256:l1", 10, "t").await.unwrap();
        assert_eq!(db.linked_blob("acr", "team/app", "sha256:l1").await.unwrap(), Some(10));
        assert_eq!(
            db.linked_blob("acr", "other", "sha256:l1").await.unwrap(),
            None,
            "links are per repository"
        );

        let refs = vec![("sha256:l1".to_string(), ReferenceKind::Blob)];
        db.put_manifest(&manifest("sha256:m1", None, None), &refs, Some("v1")).await.unwrap();
        db.put_manifest(&manifest("sha256:m1", None, None), &refs, Some("latest")).await.unwrap();
        db.put_manifest(&manifest("sha256:m2", None, None), &[], Some("v1")).await.unwrap();
        assert_eq!(
            db.resolve_tag("acr", "team/app", "v1").await.unwrap().as_deref(),
            Some("sha256:m2"),
            "tags move"
        );
        assert_eq!(db.list_tags("acr", "team/app", None, None).await.unwrap(), ["latest", "v1"]);
        let by_tag = db.manifest_by_tag("acr", "team/app", "v1").await.unwrap().unwrap();
        assert_eq!(by_tag, manifest("sha256:m2", None, None));
        assert_eq!(
            db.manifest_by_tag("acr", "team/app", "latest").await.unwrap().unwrap().digest,
            "sha256:m1"
        );
        assert_eq!(db.manifest_by_tag("acr", "team/app", "nope").await.unwrap(), None);
        assert_eq!(db.manifest_by_tag("acr", "other", "v1").await.unwrap(), None);
        assert_eq!(
            db.list_tags("acr", "team/app", Some("latest"), Some(10)).await.unwrap(),
            ["v1"]
        );
        assert_eq!(db.tags_of("acr", "team/app", "sha256:m1").await.unwrap(), ["latest"]);
        assert!(db.repository_exists("acr", "team/app").await.unwrap());
        db.link_blob("acr", "a-first", "sha256:x", 1, "t").await.unwrap();
        assert_eq!(db.list_repositories("acr", None, Some(1)).await.unwrap(), ["a-first"]);
        assert_eq!(db.list_repositories("acr", Some("a-first"), None).await.unwrap(), ["team/app"]);

        db.put_manifest(
            &manifest("sha256:sig", Some("sha256:m1"), Some("application/vnd.example.sig")),
            &[],
            None,
        )
        .await
        .unwrap();
        db.put_manifest(
            &manifest("sha256:sbom", Some("sha256:m1"), Some("application/spdx+json")),
            &[],
            None,
        )
        .await
        .unwrap();
        assert_eq!(db.referrers("acr", "team/app", "sha256:m1", None).await.unwrap().len(), 2);
        let sigs = db
            .referrers("acr", "team/app", "sha256:m1", Some("application/vnd.example.sig"))
            .await
            .unwrap();
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].digest, "sha256:sig");

        assert!(db.delete_manifest("acr", "team/app", "sha256:m1").await.unwrap());
        assert!(!db.delete_manifest("acr", "team/app", "sha256:m1").await.unwrap());
        assert_eq!(
            db.resolve_tag("acr", "team/app", "latest").await.unwrap(),
            None,
            "tags go with their manifest"
        );
        assert!(db.delete_tag("acr", "team/app", "v1").await.unwrap());
        assert_eq!(db.manifest_by_tag("acr", "team/app", "v1").await.unwrap(), None);
        assert!(
            db.get_manifest("acr", "team/app", "sha256:m2").await.unwrap().is_some(),
            "deleting a tag keeps the manifest"
        );

        let live = db.live_digests().await.unwrap();
        assert!(
            live.contains("sha256:l1") && live.contains("sha256:m2") && !live.contains("sha256:m1")
        );
        assert!(db.delete_repository("acr", "team/app").await.unwrap());
        assert!(!db.live_digests().await.unwrap().contains("sha256:l1"));

        let upload = UploadRecord {
            id: "u1".into(),
            registry: "acr".into(),
            repository: "r".into(),
            created_at: "t".into(),
        };
        db.create_upload(&upload).await.unwrap();
        assert_eq!(db.get_upload("u1").await.unwrap(), Some(upload));
        assert!(db.delete_upload("u1").await.unwrap());
        assert_eq!(db.get_upload("u1").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn acr_metadata_queries() {
    each_backend(|db| async move {
        let at = |n: u32| format!("2026-01-01T00:00:{n:02}Z");
        let record = |digest: &str, time: String| ManifestRecord {
            created_at: time,
            ..manifest(digest, None, None)
        };
        assert_eq!(db.repository_summary("acr", "team/app").await.unwrap(), None);
        db.link_blob("acr", "team/app", "sha256:l1", 10, &at(1)).await.unwrap();
        db.link_blob("acr", "team/app", "sha256:l2", 32, &at(1)).await.unwrap();
        let summary = db.repository_summary("acr", "team/app").await.unwrap().unwrap();
        assert_eq!((summary.manifest_count, summary.tag_count), (0, 0));
        assert_eq!(summary.last_updated, summary.created_at);

        let refs = vec![
            ("sha256:l1".to_string(), ReferenceKind::Blob),
            ("sha256:l2".to_string(), ReferenceKind::Blob),
        ];
        db.put_manifest(&record("sha256:m2", at(2)), &refs, Some("v2")).await.unwrap();
        // Fractions of seconds sort as times, not as text.
        db.put_manifest(
            &record("sha256:m1", "2026-01-01T00:00:03.1Z".into()),
            &refs[..1],
            Some("v1"),
        )
        .await
        .unwrap();
        db.put_manifest(
            &record("sha256:m3", "2026-01-01T00:00:03.15Z".into()),
            &[],
            Some("a-latest"),
        )
        .await
        .unwrap();
        db.put_manifest(&record("sha256:m1", at(4)), &refs[..1], Some("also-m1")).await.unwrap();

        let summary = db.repository_summary("acr", "team/app").await.unwrap().unwrap();
        assert_eq!((summary.manifest_count, summary.tag_count), (3, 4));
        assert_eq!(summary.created_at, at(1));
        assert_eq!(summary.last_updated, at(4));

        let names = |tags: Vec<TagRecord>| tags.into_iter().map(|t| t.tag).collect::<Vec<_>>();
        let all =
            db.tag_records("acr", "team/app", None, ListOrder::Key, None, None).await.unwrap();
        assert_eq!(names(all.clone()), ["a-latest", "also-m1", "v1", "v2"]);
        assert_eq!(
            all[1],
            TagRecord { tag: "also-m1".into(), digest: "sha256:m1".into(), updated_at: at(4) }
        );
        let newest_first = db
            .tag_records("acr", "team/app", None, ListOrder::TimeDescending, None, Some(2))
            .await
            .unwrap();
        assert_eq!(names(newest_first), ["also-m1", "a-latest"]);
        let next = db
            .tag_records(
                "acr",
                "team/app",
                None,
                ListOrder::TimeDescending,
                Some("a-latest"),
                Some(2),
            )
            .await
            .unwrap();
        assert_eq!(names(next), ["v1", "v2"]);
        let oldest_first = db
            .tag_records("acr", "team/app", None, ListOrder::TimeAscending, None, None)
            .await
            .unwrap();
        assert_eq!(names(oldest_first), ["v2", "v1", "a-latest", "also-m1"]);
        let of_m1 = db
            .tag_records("acr", "team/app", Some("sha256:m1"), ListOrder::Key, Some("a"), None)
            .await
            .unwrap();
        assert_eq!(names(of_m1), ["also-m1", "v1"]);
        assert_eq!(
            db.tag_record("acr", "team/app", "v2").await.unwrap().map(|t| t.digest),
            Some("sha256:m2".to_string())
        );
        assert_eq!(db.tag_record("acr", "team/app", "nope").await.unwrap(), None);
        assert_eq!(db.tag_record("acr", "other", "v2").await.unwrap(), None);

        let digests = |m: Vec<ManifestRecord>| m.into_iter().map(|m| m.digest).collect::<Vec<_>>();
        let by_digest =
            db.manifest_records("acr", "team/app", ListOrder::Key, None, None).await.unwrap();
        assert_eq!(digests(by_digest), ["sha256:m1", "sha256:m2", "sha256:m3"]);
        let paged = db
            .manifest_records("acr", "team/app", ListOrder::Key, Some("sha256:m1"), Some(1))
            .await
            .unwrap();
        assert_eq!(digests(paged), ["sha256:m2"]);
        let newest = db
            .manifest_records("acr", "team/app", ListOrder::TimeDescending, None, None)
            .await
            .unwrap();
        assert_eq!(digests(newest), ["sha256:m3", "sha256:m1", "sha256:m2"]);

        let sizes = db.manifest_blob_sizes("acr", "team/app").await.unwrap();
        assert_eq!(sizes.get("sha256:m2"), Some(&42));
        assert_eq!(sizes.get("sha256:m1"), Some(&10));
        assert_eq!(sizes.get("sha256:m3"), None);

        db.link_blob("acr", "keep", "sha256:l1", 10, &at(1)).await.unwrap();
        let deleted = db.delete_repository_reporting("acr", "team/app").await.unwrap().unwrap();
        assert_eq!(deleted.manifests, ["sha256:m1", "sha256:m2", "sha256:m3"]);
        assert_eq!(deleted.tags, ["a-latest", "also-m1", "v1", "v2"]);
        assert_eq!(db.delete_repository_reporting("acr", "team/app").await.unwrap(), None);
        assert_eq!(db.repository_summary("acr", "team/app").await.unwrap(), None);
        assert!(db
            .tag_records("acr", "team/app", None, ListOrder::Key, None, None)
            .await
            .unwrap()
            .is_empty());
        assert!(db.repository_exists("acr", "keep").await.unwrap(), "other repositories stay");
    })
    .await;
}

const SUB: &str = "s";

fn deployment(group: &str, name: &str, run: &str, lease_until: i64) -> berth_db::DeploymentRecord {
    let group_key = format!("/subscriptions/{SUB}/resourcegroups/{group}");
    berth_db::DeploymentRecord {
        id: format!("/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}"),
        scope_key: group_key.clone(),
        group_key: Some(group_key),
        subscription_id: SUB.into(),
        name: name.into(),
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
        started_ms: 0,
        duration_ms: 0,
        run_id: run.into(),
        lease_until,
    }
}

#[tokio::test]
async fn deployments_have_one_run_at_a_time_and_go_with_their_group() {
    use berth_db::{DeploymentDelete, DeploymentOutcome, DeploymentStart};
    each_backend(|db| async move {
        bootstrap(&db).await;
        let rg = group("rg1");
        db.put_resource_group(&rg).await.unwrap();
        let first = deployment("rg1", "main", "run1", 1_000);
        assert_eq!(
            db.start_deployment(&first, 0).await.unwrap(),
            DeploymentStart::Started { created: true }
        );
        // A second run while the first one's lease holds is refused; so is deleting it.
        let second = deployment("rg1", "MAIN", "run2", 2_000);
        assert_eq!(db.start_deployment(&second, 500).await.unwrap(), DeploymentStart::Active);
        assert_eq!(db.delete_deployment(&first.id, 500).await.unwrap(), DeploymentDelete::Active);
        assert!(db
            .put_deployment_operation(&first.id, "run1", "op1", 0, "{\"a\":1}")
            .await
            .unwrap());
        assert!(
            !db.put_deployment_operation(&first.id, "run2", "op2", 1, "{}").await.unwrap(),
            "not its run"
        );
        assert_eq!(db.deployment_operations(&first.id).await.unwrap(), ["{\"a\":1}"]);
        let outcome = DeploymentOutcome {
            state: "Succeeded".into(),
            outputs: Some("{}".into()),
            output_resources: Some("[]".into()),
            error: None,
            updated_at: "2026-01-01T00:00:01Z".into(),
            duration_ms: 10,
        };
        assert!(!db.finish_deployment(&first.id, "run2", &outcome).await.unwrap());
        assert!(db.finish_deployment(&first.id, "run1", &outcome).await.unwrap());
        assert!(
            !db.finish_deployment(&first.id, "run1", &outcome).await.unwrap(),
            "final states are final"
        );
        // A finished deployment is replaced by the next run; its operations go, its name's casing stays.
        assert_eq!(
            db.start_deployment(&second, 600).await.unwrap(),
            DeploymentStart::Started { created: false }
        );
        let stored = db.get_deployment(&first.id).await.unwrap().unwrap();
        assert_eq!((stored.run_id.as_str(), stored.name.as_str()), ("run2", "main"));
        assert!(db.deployment_operations(&first.id).await.unwrap().is_empty());
        // An expired lease can be failed by anyone who sees it, and replaced.
        let failed = DeploymentOutcome { state: "Failed".into(), ..outcome.clone() };
        assert!(
            !db.fail_stale_deployment(&first.id, "run2", 1_999, &failed).await.unwrap(),
            "lease holds"
        );
        assert!(db.fail_stale_deployment(&first.id, "run2", 2_001, &failed).await.unwrap());
        assert_eq!(db.list_deployments(&second.scope_key).await.unwrap().len(), 1);
        // A deployment into a missing group is refused; deleting the group deletes its deployments.
        assert_eq!(
            db.start_deployment(&deployment("nogroup", "x", "r", 9), 0).await.unwrap(),
            DeploymentStart::GroupMissing
        );
        assert!(db.put_deployment_operation(&first.id, "run2", "op3", 0, "{}").await.unwrap());
        db.delete_resource_group(&rg.id).await.unwrap().unwrap();
        assert!(db.get_deployment(&first.id).await.unwrap().is_none());
        assert!(db.deployment_operations(&first.id).await.unwrap().is_empty());
        assert_eq!(db.delete_deployment(&first.id, 0).await.unwrap(), DeploymentDelete::Missing);
    })
    .await;
}

#[tokio::test]
async fn audit_events_older_than_the_retention_are_deleted() {
    each_backend(|db| async move {
        let event = |id: &str, at: i64| AuditEvent {
            id: id.into(),
            at,
            principal_id: "p".into(),
            surface: "registry".into(),
            action: "pull".into(),
            scope: "/subscriptions/s".into(),
            repository: None,
            allowed: true,
            assignment_id: None,
            role_name: None,
        };
        let old: Vec<AuditEvent> =
            (0..12_000).map(|i| event(&format!("old-{i}"), 1_000 + i)).collect();
        db.insert_audit_events(&old).await.unwrap();
        db.insert_audit_events(&[event("new", 50_000)]).await.unwrap();
        assert_eq!(db.delete_audit_events_before(50_000).await.unwrap(), 12_000);
        let left = db
            .list_audit_events(&AuditQuery { limit: 100, ..AuditQuery::default() })
            .await
            .unwrap();
        assert_eq!(left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["new"]);
        assert_eq!(db.delete_audit_events_before(50_000).await.unwrap(), 0);
    })
    .await;
}
