//! The exhaustive role × action × scope × roleAssignmentMode matrix for a registry, snapshotted with insta.
//!
//! How it was checked against the reference (`../shared/reference/rbac-arm-bicep.md`):
//! - Every row is a built-in role of `builtin-roles.json` (all 25: the ACR roles of §1 and the generic ones), plus
//!   one Container Registry Repository Writer assignment whose condition limits writes to `team-a/` (§4.1's
//!   "writer scoped to a namespace prefix" form), shown for the repositories `team-a/app` and `team-b/app`.
//! - Part 1 (RBAC decisions) follows §2.3: actions − notActions and dataActions − notDataActions per role,
//!   case-insensitive wildcards, `*` never granting data actions; inheritance from subscription and resource group
//!   (§3.2); nothing from an assignment on another registry.
//! - Part 2 (what the registry's token service grants) follows §2.4: legacy mode checks the actions
//!   `pull/read`, `push/write`, `artifacts/delete` (so Reader's `*/read` pulls and Owner's/Contributor's `*` push);
//!   ABAC mode checks the repository dataActions and `catalog/read`, so AcrPull/AcrPush/AcrDelete and
//!   Owner/Contributor/Reader give no data-plane access there, and conditions narrow by repository.
//! - The table was read against §1's permission table row by row; the rows below marked "hand-checked" are also
//!   asserted directly in `hand_checked_rows`, from the reference's words rather than from the engine's output, so
//!   the snapshot is not merely self-consistent.

use berth_arm::ResourceId;
use berth_authz::acr::{self, RegistryAction, RegistryQuery, RoleAssignmentMode};
use berth_authz::condition::REPOSITORY_NAME_ATTRIBUTE;
use berth_authz::{
    builtin_roles, decide_with, role_ids, ActionKind, Assignment, AttributeSource, Attributes,
    BuiltinCatalog, Condition, Request,
};

const REGISTRY: &str =
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r";
const SCOPES: [(&str, &str); 4] = [
    ("subscription", "/subscriptions/s"),
    ("resource group", "/subscriptions/s/resourceGroups/g"),
    ("the registry", REGISTRY),
    (
        "another registry",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/other",
    ),
];

const TEAM_A_WRITES: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team-a/'))";

/// (column, action, kind)
const ACTIONS: &[(&str, &str, ActionKind)] = &[
    ("r.read", "Microsoft.ContainerRegistry/registries/read", ActionKind::Control),
    ("r.write", "Microsoft.ContainerRegistry/registries/write", ActionKind::Control),
    ("r.del", "Microsoft.ContainerRegistry/registries/delete", ActionKind::Control),
    ("pull", "Microsoft.ContainerRegistry/registries/pull/read", ActionKind::Control),
    ("push", "Microsoft.ContainerRegistry/registries/push/write", ActionKind::Control),
    ("art.del", "Microsoft.ContainerRegistry/registries/artifacts/delete", ActionKind::Control),
    ("ra.write", "Microsoft.Authorization/roleAssignments/write", ActionKind::Control),
    ("c.r", "Microsoft.ContainerRegistry/registries/repositories/content/read", ActionKind::Data),
    ("c.w", "Microsoft.ContainerRegistry/registries/repositories/content/write", ActionKind::Data),
    ("c.d", "Microsoft.ContainerRegistry/registries/repositories/content/delete", ActionKind::Data),
    ("m.r", "Microsoft.ContainerRegistry/registries/repositories/metadata/read", ActionKind::Data),
    ("m.w", "Microsoft.ContainerRegistry/registries/repositories/metadata/write", ActionKind::Data),
    (
        "m.d",
        "Microsoft.ContainerRegistry/registries/repositories/metadata/delete",
        ActionKind::Data,
    ),
    ("cat", "Microsoft.ContainerRegistry/registries/catalog/read", ActionKind::Data),
    ("q.r", "Microsoft.ContainerRegistry/registries/quarantinedArtifacts/read", ActionKind::Data),
    ("q.w", "Microsoft.ContainerRegistry/registries/quarantinedArtifacts/write", ActionKind::Data),
    ("tc.w", "Microsoft.ContainerRegistry/registries/trustedCollections/write", ActionKind::Data),
];

const TOKEN_COLUMNS: [(&str, RegistryAction); 7] = [
    ("pull", RegistryAction::Pull),
    ("push", RegistryAction::Push),
    ("del", RegistryAction::Delete),
    ("m.r", RegistryAction::MetadataRead),
    ("m.w", RegistryAction::MetadataWrite),
    ("m.d", RegistryAction::MetadataDelete),
    ("cat", RegistryAction::Catalog),
];

/// A row: a label, the assignment (at a scope given later), the repository the request names.
struct Row {
    label: String,
    role: String,
    condition: Option<&'static str>,
    repository: &'static str,
}

fn rows() -> Vec<Row> {
    let mut rows: Vec<Row> = builtin_roles()
        .iter()
        .map(|r| Row {
            label: r.role_name.clone(),
            role: r.name.clone(),
            condition: None,
            repository: "team-a/app",
        })
        .collect();
    for repository in ["team-a/app", "team-b/app"] {
        rows.push(Row {
            label: format!("Repository Writer, writes if team-a/* ({repository})"),
            role: role_ids::REPOSITORY_WRITER.into(),
            condition: Some(TEAM_A_WRITES),
            repository,
        });
    }
    rows
}

fn assignment(role: &str, scope: &str, condition: Option<&str>) -> Vec<Assignment> {
    let mut a = Assignment::new(
        "ra",
        "p",
        format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        ResourceId::parse(scope).unwrap(),
    );
    if let Some(c) = condition {
        a = a.with_condition(Condition::parse(c).unwrap());
    }
    vec![a]
}

fn rbac(assignments: &[Assignment], action: &str, kind: ActionKind, repository: &str) -> bool {
    let registry = ResourceId::parse(REGISTRY).unwrap();
    let attributes =
        Attributes::new().with(AttributeSource::Request, REPOSITORY_NAME_ATTRIBUTE, repository);
    let request = Request { principal_id: "p", action, kind, scope: &registry };
    decide_with(&BuiltinCatalog, assignments, &request, &attributes).is_allowed()
}

fn token(
    assignments: &[Assignment],
    mode: RoleAssignmentMode,
    repository: &str,
) -> acr::RegistryAccess {
    let registry = ResourceId::parse(REGISTRY).unwrap();
    let query = RegistryQuery {
        principal_id: "p",
        registry: &registry,
        mode,
        repository: Some(repository),
    };
    acr::access(&BuiltinCatalog, assignments, &query)
}

fn mark(b: bool) -> &'static str {
    if b {
        "✓"
    } else {
        "·"
    }
}

fn render() -> String {
    let rows = rows();
    let width = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let pad = |s: &str| format!("{s}{}", " ".repeat(width - s.chars().count()));
    let mut out = String::new();
    out.push_str("Registry r = /subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r\n");
    out.push_str("One assignment to principal p of the row's role at the section's scope; ✓ allowed, · denied.\n\n");
    out.push_str("Part 1: RBAC decisions at r (the same in both roleAssignmentModes).\n");
    out.push_str(
        "  r.read/r.write/r.del = registries/read|write|delete; pull = registries/pull/read;\n",
    );
    out.push_str("  push = registries/push/write; art.del = registries/artifacts/delete;\n");
    out.push_str("  ra.write = Microsoft.Authorization/roleAssignments/write (control actions);\n");
    out.push_str("  c.r/c.w/c.d, m.r/m.w/m.d = repositories/content|metadata/read|write|delete; cat = catalog/read;\n");
    out.push_str("  q.r/q.w = quarantinedArtifacts/read|write; tc.w = trustedCollections/write (data actions).\n");
    for (scope_name, scope) in SCOPES {
        out.push_str(&format!("\n## assigned at {scope_name} ({scope})\n"));
        out.push_str(&pad("role"));
        for (col, _, _) in ACTIONS {
            out.push_str(&format!(" | {col}"));
        }
        out.push('\n');
        for row in &rows {
            let a = assignment(&row.role, scope, row.condition);
            out.push_str(&pad(&row.label));
            for (col, action, kind) in ACTIONS {
                let cell = mark(rbac(&a, action, *kind, row.repository));
                out.push_str(&format!(" | {cell}{}", " ".repeat(col.chars().count() - 1)));
            }
            out.push('\n');
        }
    }
    out.push_str("\nPart 2: what the registry's token service grants (acr::access), by roleAssignmentMode.\n");
    out.push_str(
        "  pull/push/del = content; m.r/m.w/m.d = tags and metadata; cat = repository catalog.\n",
    );
    for (scope_name, scope) in SCOPES {
        out.push_str(&format!("\n## assigned at {scope_name}\n"));
        out.push_str(&pad(""));
        out.push_str(" | LegacyRegistryPermissions           | AbacRepositoryPermissions\n");
        out.push_str(&pad("role"));
        for _ in RoleAssignmentMode::ALL {
            out.push_str(" |");
            for (col, _) in TOKEN_COLUMNS {
                out.push_str(&format!(" {col:<4}"));
            }
        }
        out.push('\n');
        for row in &rows {
            let a = assignment(&row.role, scope, row.condition);
            out.push_str(&pad(&row.label));
            for mode in RoleAssignmentMode::ALL {
                let access = token(&a, mode, row.repository);
                out.push_str(" |");
                for (_, action) in TOKEN_COLUMNS {
                    out.push_str(&format!(" {:<4}", mark(access.allows(action))));
                }
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn matrix() {
    let table = render();
    let trimmed: Vec<&str> = table.lines().map(str::trim_end).collect();
    insta::assert_snapshot!("registry_matrix", trimmed.join("\n"));
}

/// Rows checked by hand against the reference's words (the comment on each says which).
#[test]
fn hand_checked_rows() {
    use RegistryAction::*;
    use RoleAssignmentMode::{
        AbacRepositoryPermissions as Abac, LegacyRegistryPermissions as Legacy,
    };
    let granted = |role: &str, scope: &str, mode, repo: &str, condition: Option<&str>| {
        token(&assignment(role, scope, condition), mode, repo).granted()
    };
    let (sub, rg, reg, other) = (SCOPES[0].1, SCOPES[1].1, SCOPES[2].1, SCOPES[3].1);
    let repo = "team-a/app";

    // §1: AcrPull = registries/pull/read; §2.4 legacy checks pull/read; ABAC does not honor AcrPull.
    assert_eq!(granted(role_ids::ACR_PULL, reg, Legacy, repo, None), [Pull, MetadataRead, Catalog]);
    assert_eq!(granted(role_ids::ACR_PULL, reg, Abac, repo, None), []);
    // §1: AcrPush = pull/read + push/write, inherited from the resource group (§3.2).
    assert_eq!(
        granted(role_ids::ACR_PUSH, rg, Legacy, repo, None),
        [Pull, Push, MetadataRead, MetadataWrite, Catalog]
    );
    assert_eq!(granted(role_ids::ACR_PUSH, rg, Abac, repo, None), []);
    // §1: AcrDelete = artifacts/delete only.
    assert_eq!(granted(role_ids::ACR_DELETE, sub, Legacy, repo, None), [Delete, MetadataDelete]);
    // §2.4: Reader's */read pulls in legacy mode; in ABAC mode Reader gives control plane only.
    assert_eq!(granted(role_ids::READER, sub, Legacy, repo, None), [Pull, MetadataRead, Catalog]);
    assert_eq!(granted(role_ids::READER, sub, Abac, repo, None), []);
    // §2.4: Owner/Contributor's * pull and push (and delete) in legacy mode, nothing in ABAC mode.
    let all_legacy = [Pull, Push, Delete, MetadataRead, MetadataWrite, MetadataDelete, Catalog];
    assert_eq!(granted(role_ids::OWNER, rg, Legacy, repo, None), all_legacy);
    assert_eq!(granted(role_ids::OWNER, rg, Abac, repo, None), []);
    assert_eq!(granted(role_ids::CONTRIBUTOR, reg, Legacy, repo, None), all_legacy);
    assert_eq!(granted(role_ids::CONTRIBUTOR, reg, Abac, repo, None), []);
    // §1 + §2.4: the repository roles act only in ABAC mode; the reader reads, excluding catalog listing.
    assert_eq!(granted(role_ids::REPOSITORY_READER, reg, Abac, repo, None), [Pull, MetadataRead]);
    assert_eq!(granted(role_ids::REPOSITORY_READER, reg, Legacy, repo, None), []);
    assert_eq!(
        granted(role_ids::REPOSITORY_WRITER, sub, Abac, repo, None),
        [Pull, Push, MetadataRead, MetadataWrite]
    );
    assert_eq!(
        granted(role_ids::REPOSITORY_CONTRIBUTOR, rg, Abac, repo, None),
        [Pull, Push, Delete, MetadataRead, MetadataWrite, MetadataDelete]
    );
    // §2.4: catalog listing needs catalog/read (Catalog Lister), registry-wide.
    assert_eq!(granted(role_ids::REPOSITORY_CATALOG_LISTER, reg, Abac, repo, None), [Catalog]);
    assert_eq!(granted(role_ids::REPOSITORY_CATALOG_LISTER, reg, Legacy, repo, None), []);
    // §1: Data Importer and Data Reader has pull/read (legacy) and content/metadata/catalog read (ABAC).
    assert_eq!(
        granted(role_ids::DATA_IMPORTER_AND_DATA_READER, rg, Abac, repo, None),
        [Pull, MetadataRead, Catalog]
    );
    assert_eq!(
        granted(role_ids::DATA_IMPORTER_AND_DATA_READER, rg, Legacy, repo, None),
        [Pull, MetadataRead, Catalog]
    );
    // §3.2/§2.4: a repository is not a scope, and another registry's assignments never apply.
    for role in builtin_roles() {
        for mode in RoleAssignmentMode::ALL {
            assert_eq!(granted(&role.name, other, mode, repo, None), [], "{}", role.role_name);
        }
    }
    // §4.1: the namespace-prefix writer: writes only under team-a/, reads unconditional.
    assert_eq!(
        granted(role_ids::REPOSITORY_WRITER, reg, Abac, "team-a/app", Some(TEAM_A_WRITES)),
        [Pull, Push, MetadataRead, MetadataWrite]
    );
    assert_eq!(
        granted(role_ids::REPOSITORY_WRITER, reg, Abac, "team-b/app", Some(TEAM_A_WRITES)),
        [Pull, MetadataRead]
    );

    // Part 1 rows. §3.4: Owner, User Access Administrator and RBAC Administrator write role assignments; Contributor
    // is excluded by notActions Microsoft.Authorization/*/Write.
    let control = |role: &str, scope: &str, action: &str| {
        rbac(&assignment(role, scope, None), action, ActionKind::Control, repo)
    };
    let ra_write = "Microsoft.Authorization/roleAssignments/write";
    assert!(control(role_ids::OWNER, sub, ra_write));
    assert!(control(role_ids::USER_ACCESS_ADMINISTRATOR, rg, ra_write));
    assert!(control(role_ids::RBAC_ADMINISTRATOR, reg, ra_write));
    assert!(!control(role_ids::CONTRIBUTOR, sub, ra_write));
    assert!(!control(role_ids::OWNER, other, ra_write));
    // §2.3: Owner's * grants no data action.
    assert!(!rbac(
        &assignment(role_ids::OWNER, sub, None),
        "Microsoft.ContainerRegistry/registries/repositories/content/read",
        ActionKind::Data,
        repo
    ));
    // §1: AcrImageSigner's dataAction is trustedCollections/write; AcrQuarantineReader's is quarantinedArtifacts/read.
    assert!(rbac(
        &assignment(role_ids::ACR_IMAGE_SIGNER, reg, None),
        "Microsoft.ContainerRegistry/registries/trustedCollections/write",
        ActionKind::Data,
        repo
    ));
    assert!(rbac(
        &assignment("cdda3590-29a3-44f6-95f2-9f980659eb04", reg, None),
        "Microsoft.ContainerRegistry/registries/quarantinedArtifacts/read",
        ActionKind::Data,
        repo
    ));
    // §1: Reader (*/read) reads the registry but cannot write it.
    assert!(control(role_ids::READER, sub, "Microsoft.ContainerRegistry/registries/read"));
    assert!(!control(role_ids::READER, sub, "Microsoft.ContainerRegistry/registries/write"));
    // §1 (JSON): Container Registry Contributor and Data Access Configuration Administrator writes and deletes
    // registries but has no pull/read.
    let cr_admin = "3bc748fc-213d-45c1-8d91-9da5725539b9";
    assert!(control(cr_admin, rg, "Microsoft.ContainerRegistry/registries/write"));
    assert!(control(cr_admin, rg, "Microsoft.ContainerRegistry/registries/delete"));
    assert!(!control(cr_admin, rg, "Microsoft.ContainerRegistry/registries/pull/read"));
    assert_eq!(granted(cr_admin, rg, Legacy, repo, None), []);
}
