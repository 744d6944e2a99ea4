//! Property tests of the decision: monotonicity (adding an assignment never removes a right, removing one never adds
//! one, with random conditions), and the index deciding exactly as a scan of the same assignments.

use berth_arm::ResourceId;
use berth_authz::acr::{self, RegistryQuery, RoleAssignmentMode};
use berth_authz::condition::REPOSITORY_NAME_ATTRIBUTE;
use berth_authz::{
    decide_with, role_ids, ActionKind, Assignment, AssignmentIndex, AssignmentSet, AttributeSource,
    Attributes, Catalog, Condition, Permission, Request, RoleDefinition,
};
use proptest::prelude::*;
use proptest::sample::select;

const SCOPES: [&str; 6] = [
    "/",
    "/subscriptions/s",
    "/subscriptions/s/resourceGroups/g",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/other",
    "/subscriptions/s/resourceGroups/g2",
];
const PRINCIPALS: [&str; 2] = ["p", "q"];
const CUSTOM: &str = "00000000-0000-0000-0000-0000000000c1";

fn roles() -> Vec<&'static str> {
    vec![
        role_ids::OWNER,
        role_ids::CONTRIBUTOR,
        role_ids::READER,
        role_ids::ACR_PULL,
        role_ids::ACR_PUSH,
        role_ids::ACR_DELETE,
        role_ids::REPOSITORY_READER,
        role_ids::REPOSITORY_WRITER,
        role_ids::REPOSITORY_CONTRIBUTOR,
        role_ids::REPOSITORY_CATALOG_LISTER,
        role_ids::RBAC_ADMINISTRATOR,
        role_ids::USER_ACCESS_ADMINISTRATOR,
        CUSTOM,
        "00000000-0000-0000-0000-00000000dead",
    ]
}

fn catalog() -> Catalog {
    Catalog::with_custom_roles([RoleDefinition::custom(
        CUSTOM,
        "Registry data but no deletes",
        "",
        vec!["/".into()],
        vec![Permission::new(
            ["Microsoft.ContainerRegistry/registries/*"],
            ["Microsoft.ContainerRegistry/registries/*/delete"],
            ["Microsoft.ContainerRegistry/*"],
            ["Microsoft.ContainerRegistry/registries/repositories/content/delete"],
        )],
    )])
    .unwrap()
}

const ACTIONS: [(&str, ActionKind); 10] = [
    ("Microsoft.ContainerRegistry/registries/read", ActionKind::Control),
    ("Microsoft.ContainerRegistry/registries/write", ActionKind::Control),
    ("Microsoft.ContainerRegistry/registries/pull/read", ActionKind::Control),
    ("Microsoft.ContainerRegistry/registries/push/write", ActionKind::Control),
    ("Microsoft.ContainerRegistry/registries/artifacts/delete", ActionKind::Control),
    ("Microsoft.Authorization/roleAssignments/write", ActionKind::Control),
    ("Microsoft.ContainerRegistry/registries/repositories/content/read", ActionKind::Data),
    ("Microsoft.ContainerRegistry/registries/repositories/content/write", ActionKind::Data),
    ("Microsoft.ContainerRegistry/registries/repositories/content/delete", ActionKind::Data),
    ("Microsoft.ContainerRegistry/registries/catalog/read", ActionKind::Data),
];

/// Random conditions over the repository attribute, action targeting and the connectives (always parenthesized, so
/// they parse).
fn condition() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        select(vec![
            "Microsoft.ContainerRegistry/registries/repositories/content/read",
            "Microsoft.ContainerRegistry/registries/repositories/content/write",
            "Microsoft.ContainerRegistry/registries/repositories/*",
            "Microsoft.ContainerRegistry/registries/pull/read",
            "*/read",
        ])
        .prop_map(|p| format!("ActionMatches{{'{p}'}}")),
        (
            select(vec![
                "StringEquals",
                "StringEqualsIgnoreCase",
                "StringNotEquals",
                "StringStartsWith",
                "StringNotStartsWithIgnoreCase",
                "StringLike",
                "StringNotLike",
            ]),
            select(vec!["team-a/", "team-a/app", "Team-B/app", "team-*", "*"]),
        )
            .prop_map(|(op, v)| format!("@Request[{REPOSITORY_NAME_ATTRIBUTE}] {op} '{v}'")),
        select(vec!["team-a/app", "team-b/app"]).prop_map(|v| format!(
            "@Request[{REPOSITORY_NAME_ATTRIBUTE}] ForAnyOfAnyValues:StringEqualsIgnoreCase {{'{v}', 'x'}}"
        )),
        Just(format!("Exists @Request[{REPOSITORY_NAME_ATTRIBUTE}]")),
    ];
    atom.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v
                .iter()
                .map(|e| format!("({e})"))
                .collect::<Vec<_>>()
                .join(" AND ")),
            prop::collection::vec(inner, 2..4).prop_map(|v| v
                .iter()
                .map(|e| format!("({e})"))
                .collect::<Vec<_>>()
                .join(" OR ")),
        ]
    })
}

fn assignment() -> impl Strategy<Value = Assignment> {
    (
        select(PRINCIPALS.to_vec()),
        select(roles()),
        select(SCOPES.to_vec()),
        proptest::option::of(condition()),
        any::<u64>(),
    )
        .prop_map(|(principal, role, scope, condition, n)| {
            let mut a = Assignment::new(
                format!("a-{n:x}"),
                principal,
                format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                ResourceId::parse(scope).unwrap(),
            );
            if let Some(c) = condition {
                a = a.with_condition(Condition::parse(&c).unwrap_or_else(|e| panic!("{c}: {e}")));
            }
            a
        })
}

#[derive(Debug, Clone)]
struct Ask {
    principal: &'static str,
    action: (&'static str, ActionKind),
    scope: &'static str,
    repository: Option<&'static str>,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        select(PRINCIPALS.to_vec()),
        select(ACTIONS.to_vec()),
        select(SCOPES.to_vec()),
        proptest::option::of(select(vec!["team-a/app", "team-b/app", "Team-A/x"])),
    )
        .prop_map(|(principal, action, scope, repository)| Ask {
            principal,
            action,
            scope,
            repository,
        })
}

fn allowed(set: &(impl AssignmentSet + ?Sized), ask: &Ask) -> bool {
    let scope = ResourceId::parse(ask.scope).unwrap();
    let attributes = match ask.repository {
        Some(r) => Attributes::new().with(AttributeSource::Request, REPOSITORY_NAME_ATTRIBUTE, r),
        None => Attributes::new(),
    };
    let request = Request {
        principal_id: ask.principal,
        action: ask.action.0,
        kind: ask.action.1,
        scope: &scope,
    };
    set.decide_with(&catalog(), &request, &attributes).is_allowed()
}

fn registry_rights(
    set: &(impl AssignmentSet + ?Sized),
    ask: &Ask,
    mode: RoleAssignmentMode,
) -> Vec<String> {
    let registry = ResourceId::parse(SCOPES[3]).unwrap();
    let query = RegistryQuery {
        principal_id: ask.principal,
        registry: &registry,
        mode,
        repository: ask.repository,
    };
    acr::access(&catalog(), set, &query).granted().iter().map(|a| a.as_str().to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn adding_an_assignment_never_removes_a_right(
        set in prop::collection::vec(assignment(), 0..8),
        extra in assignment(),
        ask in ask(),
    ) {
        let before = allowed(set.as_slice(), &ask);
        let mut more = set.clone();
        more.push(extra);
        prop_assert!(!before || allowed(more.as_slice(), &ask));
        for mode in RoleAssignmentMode::ALL {
            let (before, after) = (registry_rights(set.as_slice(), &ask, mode), registry_rights(more.as_slice(), &ask, mode));
            prop_assert!(before.iter().all(|r| after.contains(r)), "{mode:?}: {before:?} then {after:?}");
        }
    }

    #[test]
    fn removing_an_assignment_never_adds_a_right(
        set in prop::collection::vec(assignment(), 1..8),
        which in any::<prop::sample::Index>(),
        ask in ask(),
    ) {
        let mut fewer = set.clone();
        fewer.remove(which.index(set.len()));
        prop_assert!(!allowed(fewer.as_slice(), &ask) || allowed(set.as_slice(), &ask));
        // Through the index, removing by id.
        let mut index: AssignmentIndex = set.iter().cloned().collect();
        let full = allowed(&index, &ask);
        index.remove(&set[which.index(set.len())].id);
        prop_assert!(!allowed(&index, &ask) || full);
    }

    #[test]
    fn the_index_allows_exactly_what_a_scan_allows(
        set in prop::collection::vec(assignment(), 0..12),
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        asks in prop::collection::vec(ask(), 1..8),
    ) {
        let mut set = set;
        let mut index: AssignmentIndex = set.iter().cloned().collect();
        for r in removed {
            if set.is_empty() {
                break;
            }
            let gone = set.remove(r.index(set.len()));
            // Ids are random; a duplicate id was replaced on insert, so keep the scan in step with the index.
            set.retain(|a| !a.id.eq_ignore_ascii_case(&gone.id));
            index.remove(&gone.id);
        }
        let mut deduped: Vec<Assignment> = Vec::new();
        for a in set.iter().rev() {
            if !deduped.iter().any(|d| d.id.eq_ignore_ascii_case(&a.id)) {
                deduped.push(a.clone());
            }
        }
        prop_assert_eq!(index.len(), deduped.len());
        for ask in &asks {
            let scope = ResourceId::parse(ask.scope).unwrap();
            let attributes = Attributes::new();
            let request = Request { principal_id: ask.principal, action: ask.action.0, kind: ask.action.1, scope: &scope };
            prop_assert_eq!(
                decide_with(&catalog(), &deduped, &request, &attributes).is_allowed(),
                index.decide_with(&catalog(), &request, &attributes).is_allowed()
            );
            prop_assert_eq!(allowed(deduped.as_slice(), ask), allowed(&index, ask));
            for mode in RoleAssignmentMode::ALL {
                prop_assert_eq!(registry_rights(deduped.as_slice(), ask, mode), registry_rights(&index, ask, mode));
            }
        }
    }
}
