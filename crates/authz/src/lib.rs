//! Authorization decisions: who may do which action at which scope. Pure, no IO.
//!
//! The model is Azure RBAC's: a role definition lists `actions`/`notActions` (control plane) and
//! `dataActions`/`notDataActions` (data plane); a role assignment gives a role to a principal at a scope, and applies
//! at that scope and everything below it, narrowed by its condition if it has one. A request is allowed when some
//! assignment of the principal, at a scope containing the target, has a role whose permissions grant the action and
//! a condition (if any) that holds for the request. The caller (the server) loads the assignments and custom roles
//! and calls [`decide`] / [`decide_with`] or, for many assignments, builds an [`AssignmentIndex`]; this crate never
//! touches storage.
//!
//! - [`condition`]: the ABAC condition language (parse once, evaluate per request).
//! - [`acr`]: a registry's `roleAssignmentMode` and what it means for pull/push/delete/catalog.
//!
//! Not modelled: deny assignments, group membership (the caller passes the principal whose assignments count).

pub mod acr;
pub mod condition;
mod index;
mod matching;
mod roles;

use std::sync::Arc;

pub use condition::{
    AttributeSource, Attributes, Condition, ConditionContext, ConditionError, DateTime, Value,
};
pub use index::AssignmentIndex;
pub use matching::action_matches;
pub use roles::{
    builtin_roles, find_builtin_role, find_builtin_role_by_name, BuiltinCatalog, Catalog,
    CatalogError, Permission, RoleCatalog, RoleDefinition, BUILTIN_ROLE_TYPE, CUSTOM_ROLE_TYPE,
};

use berth_arm::ResourceId;

/// Well-known built-in role GUIDs.
pub mod role_ids {
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
    pub const RBAC_ADMINISTRATOR: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
    pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
    pub const ACR_DELETE: &str = "c2f4ef07-c644-48eb-af81-4b1b4947fb11";
    pub const ACR_IMAGE_SIGNER: &str = "6cef56e8-d556-48e5-a04f-b8e64114680f";
    pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
    pub const REPOSITORY_WRITER: &str = "2a1e307c-b015-4ebd-883e-5b7698a07328";
    pub const REPOSITORY_CONTRIBUTOR: &str = "2efddaa5-3f1f-4df3-97df-af3f13818f4c";
    pub const REPOSITORY_CATALOG_LISTER: &str = "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7";
    pub const DATA_IMPORTER_AND_DATA_READER: &str = "577a9874-89fd-4f24-9dbd-b5034d0ad23a";
}

/// A role assignment as the decision needs it.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The assignment's resource ID (or name); reported back to explain a decision.
    pub id: String,
    pub principal_id: String,
    /// The role definition's GUID or full resource ID; only the last segment is compared.
    pub role_definition_id: String,
    pub scope: ResourceId,
    /// The assignment's condition, parsed once when the assignment was loaded (shared, so clones are cheap).
    pub condition: Option<Arc<Condition>>,
}

impl Assignment {
    /// An assignment without a condition.
    pub fn new(
        id: impl Into<String>,
        principal_id: impl Into<String>,
        role_definition_id: impl Into<String>,
        scope: ResourceId,
    ) -> Assignment {
        Assignment {
            id: id.into(),
            principal_id: principal_id.into(),
            role_definition_id: role_definition_id.into(),
            scope,
            condition: None,
        }
    }

    pub fn with_condition(mut self, condition: Condition) -> Assignment {
        self.condition = Some(Arc::new(condition));
        self
    }

    /// The role definition's GUID (the last segment of `role_definition_id`).
    pub fn role_guid(&self) -> &str {
        self.role_definition_id.rsplit('/').next().unwrap_or_default()
    }
}

/// Whether an action is a control-plane action (`actions`) or a data action (`dataActions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Control,
    Data,
}

/// What a caller asks to do.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal_id: &'a str,
    /// e.g. `Microsoft.ContainerRegistry/registries/write`.
    pub action: &'a str,
    pub kind: ActionKind,
    pub scope: &'a ResourceId,
}

/// The outcome, with the assignment that allowed it so the decision can be explained and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed { assignment_id: String, role_name: String },
    Denied,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// A set of assignments a decision can be made against: a slice (scanned) or an [`AssignmentIndex`].
pub trait AssignmentSet {
    /// Decide `request` with these attributes (conditions see them). Deny by default.
    fn decide_with(
        &self,
        catalog: &dyn RoleCatalog,
        request: &Request<'_>,
        attributes: &Attributes,
    ) -> Decision;
}

impl AssignmentSet for [Assignment] {
    fn decide_with(
        &self,
        catalog: &dyn RoleCatalog,
        request: &Request<'_>,
        attributes: &Attributes,
    ) -> Decision {
        decide_with(catalog, self, request, attributes)
    }
}

impl AssignmentSet for Vec<Assignment> {
    fn decide_with(
        &self,
        catalog: &dyn RoleCatalog,
        request: &Request<'_>,
        attributes: &Attributes,
    ) -> Decision {
        decide_with(catalog, self, request, attributes)
    }
}

static NO_ATTRIBUTES: Attributes = Attributes::new();

/// Decide a request against assignments, with no request attributes (a condition that tests an attribute is then
/// false for the actions it targets). Deny by default.
pub fn decide(
    catalog: &dyn RoleCatalog,
    assignments: &[Assignment],
    request: &Request<'_>,
) -> Decision {
    decide_with(catalog, assignments, request, &NO_ATTRIBUTES)
}

/// Decide a request against assignments (scanning them all), with the request's attributes for conditions.
/// Deny by default. For large sets use an [`AssignmentIndex`], which decides identically.
pub fn decide_with(
    catalog: &dyn RoleCatalog,
    assignments: &[Assignment],
    request: &Request<'_>,
    attributes: &Attributes,
) -> Decision {
    let target = request.scope.key();
    for assignment in assignments {
        if !assignment.principal_id.eq_ignore_ascii_case(request.principal_id) {
            continue;
        }
        if !scope_contains(&assignment.scope.key(), &target) {
            continue;
        }
        if let Some(decision) = grant_by(catalog, assignment, request, attributes) {
            return decision;
        }
    }
    Decision::Denied
}

/// Whether the scope with key `outer` contains the scope with key `inner` (keys are lower-cased canonical IDs).
pub(crate) fn scope_contains(outer: &str, inner: &str) -> bool {
    outer == "/"
        || inner == outer
        || (inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/')
}

/// The decision one applicable assignment gives: allowed when its role grants the action (actions − notActions or
/// dataActions − notDataActions, per role) and its condition, if any, holds; `None` otherwise.
pub(crate) fn grant_by(
    catalog: &dyn RoleCatalog,
    assignment: &Assignment,
    request: &Request<'_>,
    attributes: &Attributes,
) -> Option<Decision> {
    let role = catalog.role(assignment.role_guid())?;
    if !role.grants(request.action, request.kind) {
        return None;
    }
    if let Some(condition) = &assignment.condition {
        if !condition.evaluate(&ConditionContext { action: request.action, attributes }) {
            return None;
        }
    }
    Some(Decision::Allowed {
        assignment_id: assignment.id.clone(),
        role_name: role.role_name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(principal: &str, role: &str, scope: &str) -> Assignment {
        Assignment::new(
            format!("{scope}/providers/Microsoft.Authorization/roleAssignments/x"),
            principal,
            format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            ResourceId::parse(scope).unwrap(),
        )
    }

    fn check(assignments: &[Assignment], principal: &str, action: &str, scope: &str) -> bool {
        let scope = ResourceId::parse(scope).unwrap();
        decide(
            &BuiltinCatalog,
            assignments,
            &Request { principal_id: principal, action, kind: ActionKind::Control, scope: &scope },
        )
        .is_allowed()
    }

    const REGISTRY: &str =
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r";

    #[test]
    fn wildcards_match_as_arm_does() {
        assert!(action_matches("*", "Microsoft.ContainerRegistry/registries/write"));
        assert!(action_matches("*/read", "Microsoft.ContainerRegistry/registries/read"));
        assert!(!action_matches("*/read", "Microsoft.ContainerRegistry/registries/write"));
        assert!(action_matches(
            "Microsoft.Authorization/*/Write",
            "microsoft.authorization/roleAssignments/write"
        ));
        assert!(action_matches(
            "Microsoft.ContainerRegistry/*",
            "Microsoft.ContainerRegistry/registries/pull/read"
        ));
        assert!(!action_matches("Microsoft.Web/*", "Microsoft.WebX/sites/read"));
        let operator = "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action";
        assert!(action_matches(
            operator,
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
        ));
        assert!(action_matches(
            operator,
            "Microsoft.ManagedIdentity/userAssignedIdentities/x/assign/action"
        ));
        assert!(!action_matches(
            operator,
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/other"
        ));
    }

    #[test]
    fn owner_at_subscription_inherits_down() {
        let a = [assignment("p", role_ids::OWNER, "/subscriptions/s")];
        assert!(check(&a, "p", "Microsoft.ContainerRegistry/registries/write", REGISTRY));
        assert!(check(&a, "p", "Microsoft.Authorization/roleAssignments/write", REGISTRY));
        assert!(!check(&a, "other", "Microsoft.ContainerRegistry/registries/read", REGISTRY));
        assert!(!check(
            &a,
            "p",
            "Microsoft.ContainerRegistry/registries/read",
            "/subscriptions/s2"
        ));
    }

    #[test]
    fn contributor_cannot_grant_access() {
        let a = [assignment("p", role_ids::CONTRIBUTOR, "/subscriptions/s")];
        assert!(check(&a, "p", "Microsoft.ContainerRegistry/registries/write", REGISTRY));
        assert!(!check(&a, "p", "Microsoft.Authorization/roleAssignments/write", REGISTRY));
    }

    #[test]
    fn reader_reads_only_and_assignment_below_does_not_apply_above() {
        let a = [assignment("p", role_ids::READER, REGISTRY)];
        assert!(check(&a, "p", "Microsoft.ContainerRegistry/registries/read", REGISTRY));
        assert!(!check(&a, "p", "Microsoft.ContainerRegistry/registries/write", REGISTRY));
        assert!(!check(
            &a,
            "p",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "/subscriptions/s/resourceGroups/g"
        ));
    }

    #[test]
    fn star_actions_do_not_grant_data_actions() {
        let a = [assignment("p", role_ids::OWNER, "/subscriptions/s")];
        let scope = ResourceId::parse(REGISTRY).unwrap();
        let d = decide(
            &BuiltinCatalog,
            &a,
            &Request {
                principal_id: "p",
                action: "Microsoft.ContainerRegistry/registries/repositories/content/read",
                kind: ActionKind::Data,
                scope: &scope,
            },
        );
        assert_eq!(d, Decision::Denied);
    }

    #[test]
    fn unknown_role_grants_nothing() {
        let a = [assignment("p", "00000000-0000-0000-0000-000000000000", "/subscriptions/s")];
        assert!(!check(&a, "p", "Microsoft.ContainerRegistry/registries/read", REGISTRY));
    }

    fn data(
        assignments: &[Assignment],
        catalog: &dyn RoleCatalog,
        action: &str,
        repository: Option<&str>,
    ) -> Decision {
        let scope = ResourceId::parse(REGISTRY).unwrap();
        let attributes = match repository {
            Some(r) => Attributes::new().with(
                AttributeSource::Request,
                condition::REPOSITORY_NAME_ATTRIBUTE,
                r,
            ),
            None => Attributes::new(),
        };
        let request = Request { principal_id: "p", action, kind: ActionKind::Data, scope: &scope };
        let linear = decide_with(catalog, assignments, &request, &attributes);
        let index: AssignmentIndex = assignments.iter().cloned().collect();
        assert_eq!(index.decide_with(catalog, &request, &attributes), linear);
        linear
    }

    const READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
    const WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";
    const META_WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/metadata/write";
    const TEAM_A_WRITES: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team-a/'))";

    #[test]
    fn a_condition_narrows_only_the_actions_it_targets() {
        let writer = assignment("p", role_ids::REPOSITORY_WRITER, REGISTRY)
            .with_condition(Condition::parse(TEAM_A_WRITES).unwrap());
        let a = [writer];
        assert!(data(&a, &BuiltinCatalog, WRITE, Some("team-a/app")).is_allowed());
        assert_eq!(data(&a, &BuiltinCatalog, WRITE, Some("team-b/app")), Decision::Denied);
        assert_eq!(
            data(&a, &BuiltinCatalog, WRITE, None),
            Decision::Denied,
            "no repository: the test is false"
        );
        // Untargeted actions of the same role are unconditional.
        assert!(data(&a, &BuiltinCatalog, READ, Some("team-b/app")).is_allowed());
        assert!(data(&a, &BuiltinCatalog, META_WRITE, Some("team-b/app")).is_allowed());
        // A condition never adds: the writer still cannot delete.
        let delete = "Microsoft.ContainerRegistry/registries/repositories/content/delete";
        assert_eq!(data(&a, &BuiltinCatalog, delete, Some("team-a/app")), Decision::Denied);
    }

    #[test]
    fn another_assignment_without_the_condition_still_allows() {
        let narrowed = assignment("p", role_ids::REPOSITORY_WRITER, REGISTRY)
            .with_condition(Condition::parse(TEAM_A_WRITES).unwrap());
        let mut broad = assignment("p", role_ids::REPOSITORY_CONTRIBUTOR, "/subscriptions/s");
        broad.id = "broad".into();
        let a = [narrowed, broad];
        assert_eq!(
            data(&a, &BuiltinCatalog, WRITE, Some("team-b/app")),
            Decision::Allowed {
                assignment_id: "broad".into(),
                role_name: "Container Registry Repository Contributor".into()
            }
        );
    }

    #[test]
    fn conditions_apply_to_control_actions_too() {
        // The delegation condition of Role Based Access Control Administrator (reference 3.5).
        let condition = Condition::parse(
            "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d}))",
        )
        .unwrap();
        let a = [assignment("p", role_ids::RBAC_ADMINISTRATOR, "/subscriptions/s")
            .with_condition(condition)];
        let scope = ResourceId::parse(REGISTRY).unwrap();
        let write = "Microsoft.Authorization/roleAssignments/write";
        let request =
            Request { principal_id: "p", action: write, kind: ActionKind::Control, scope: &scope };
        let role = |guid: &str| {
            Attributes::new().with(
                AttributeSource::Request,
                "Microsoft.Authorization/roleAssignments:RoleDefinitionId",
                format!(
                    "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"
                ),
            )
        };
        assert!(decide_with(&BuiltinCatalog, &a, &request, &role(role_ids::ACR_PULL)).is_allowed());
        assert!(!decide_with(&BuiltinCatalog, &a, &request, &role(role_ids::OWNER)).is_allowed());
        assert!(!decide(&BuiltinCatalog, &a, &request).is_allowed());
        // Reads are untouched by it.
        assert!(check(&a, "p", "Microsoft.ContainerRegistry/registries/read", REGISTRY));
    }

    #[test]
    fn custom_roles_subtract_not_actions_per_role() {
        let custom = RoleDefinition::custom(
            "00000000-0000-0000-0000-00000000c0de",
            "Everything but delete",
            "",
            vec!["/".into()],
            vec![Permission::new(
                ["Microsoft.ContainerRegistry/*"],
                ["Microsoft.ContainerRegistry/registries/delete"],
                ["Microsoft.ContainerRegistry/registries/repositories/*"],
                ["Microsoft.ContainerRegistry/registries/repositories/*/delete"],
            )],
        );
        let catalog = Catalog::with_custom_roles([custom]).unwrap();
        let a = vec![assignment("p", "00000000-0000-0000-0000-00000000c0de", REGISTRY)];
        let scope = ResourceId::parse(REGISTRY).unwrap();
        let control = |action| {
            decide(
                &catalog,
                &a,
                &Request { principal_id: "p", action, kind: ActionKind::Control, scope: &scope },
            )
            .is_allowed()
        };
        assert!(control("Microsoft.ContainerRegistry/registries/write"));
        assert!(!control("Microsoft.ContainerRegistry/registries/delete"));
        assert!(data(&a, &catalog, WRITE, None).is_allowed());
        assert!(!data(
            &a,
            &catalog,
            "Microsoft.ContainerRegistry/registries/repositories/content/delete",
            None
        )
        .is_allowed());
        // NotActions is not a deny: another role granting the action still allows it.
        let mut both = a.clone();
        both.push(assignment("p", role_ids::OWNER, "/subscriptions/s"));
        let d = decide(
            &catalog,
            &both,
            &Request {
                principal_id: "p",
                action: "Microsoft.ContainerRegistry/registries/delete",
                kind: ActionKind::Control,
                scope: &scope,
            },
        );
        assert_eq!(
            d,
            Decision::Allowed { assignment_id: both[1].id.clone(), role_name: "Owner".into() }
        );
        // Built-ins only: the custom role is unknown and grants nothing.
        assert!(!decide(
            &BuiltinCatalog,
            &a,
            &Request {
                principal_id: "p",
                action: "Microsoft.ContainerRegistry/registries/write",
                kind: ActionKind::Control,
                scope: &scope
            }
        )
        .is_allowed());
    }

    #[test]
    fn the_index_finds_inherited_assignments_only() {
        let mut index: AssignmentIndex = [
            assignment("P", role_ids::READER, "/subscriptions/s"),
            {
                let mut a = assignment("p", role_ids::ACR_PULL, "/subscriptions/s/resourceGroups/G");
                a.id = "pull".into();
                a
            },
            {
                let mut a = assignment("p", role_ids::OWNER, "/subscriptions/s/resourceGroups/g2");
                a.id = "owner-elsewhere".into();
                a
            },
            {
                let mut a = assignment("p", role_ids::OWNER, "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r2");
                a.id = "owner-other-registry".into();
                a
            },
        ]
        .into_iter()
        .collect();
        assert_eq!(index.len(), 4);
        let registry = ResourceId::parse(REGISTRY).unwrap();
        let ids: Vec<&str> =
            index.applicable("p", &registry).iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            ["/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/x", "pull"]
        );
        let write = Request {
            principal_id: "P",
            action: "Microsoft.ContainerRegistry/registries/write",
            kind: ActionKind::Control,
            scope: &registry,
        };
        assert_eq!(
            index.decide_with(&BuiltinCatalog, &write, &Attributes::new()),
            Decision::Denied
        );
        let root_owner = {
            let mut a = assignment("p", role_ids::OWNER, "/");
            a.id = "root".into();
            a
        };
        index.insert(root_owner);
        assert!(index.decide_with(&BuiltinCatalog, &write, &Attributes::new()).is_allowed());
        assert_eq!(index.remove("ROOT").map(|a| a.id), Some("root".into()));
        assert_eq!(
            index.decide_with(&BuiltinCatalog, &write, &Attributes::new()),
            Decision::Denied
        );
        assert!(index.get("pull").is_some());
        assert_eq!(index.of_principal("p").count(), 4);
        assert_eq!(index.len(), 4);
        // Re-inserting an id replaces.
        let mut owner = assignment("p", role_ids::OWNER, REGISTRY);
        owner.id = "PULL".into();
        assert_eq!(index.insert(owner).map(|a| a.id), Some("pull".into()));
        assert_eq!(index.len(), 4);
        assert!(index.decide_with(&BuiltinCatalog, &write, &Attributes::new()).is_allowed());
    }

    proptest::proptest! {
        #[test]
        fn adding_an_assignment_never_removes_a_right(
            roles in proptest::collection::vec(0usize..3, 0..4),
            extra in 0usize..3,
            action in proptest::sample::select(vec![
                "Microsoft.ContainerRegistry/registries/read",
                "Microsoft.ContainerRegistry/registries/write",
                "Microsoft.Authorization/roleAssignments/write",
            ]),
        ) {
            let ids = [role_ids::OWNER, role_ids::CONTRIBUTOR, role_ids::READER];
            let scopes = ["/subscriptions/s", "/subscriptions/s/resourceGroups/g", REGISTRY];
            let mut a: Vec<Assignment> = roles.iter().enumerate()
                .map(|(i, r)| assignment("p", ids[*r], scopes[i % 3])).collect();
            let before = check(&a, "p", action, REGISTRY);
            a.push(assignment("p", ids[extra], scopes[extra]));
            let after = check(&a, "p", action, REGISTRY);
            proptest::prop_assert!(!before || after);
        }
    }
}
