//! Authorization decisions: who may do which action at which scope. Pure, no IO.
//!
//! The model is Azure RBAC's: a role definition lists `actions`/`notActions` (control plane) and
//! `dataActions`/`notDataActions` (data plane); a role assignment gives a role to a principal at a scope, and applies
//! at that scope and everything below it. A request is allowed when some assignment of the principal, at a scope
//! containing the target, has a role whose permissions grant the action. The caller (the server) loads the
//! principal's assignments and calls [`decide`]; this crate never touches storage.
//!
//! Still to come (the RBAC/ABAC issue): conditions, deny assignments, the registry's `roleAssignmentMode`.

mod roles;

pub use roles::{builtin_roles, find_builtin_role, Permission, RoleDefinition};

use berth_arm::ResourceId;

/// Well-known built-in role GUIDs.
pub mod role_ids {
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
    pub const ACR_DELETE: &str = "c2f4ef07-c644-48eb-af81-4b1b4947fb11";
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

/// Resolves role definitions by GUID. Built-ins today; custom roles join through the same trait.
pub trait RoleCatalog {
    fn role(&self, guid: &str) -> Option<&RoleDefinition>;
}

/// The catalog of built-in roles only.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinCatalog;

impl RoleCatalog for BuiltinCatalog {
    fn role(&self, guid: &str) -> Option<&RoleDefinition> {
        find_builtin_role(guid)
    }
}

/// Decide a request against the principal's assignments. Deny by default.
pub fn decide(
    catalog: &dyn RoleCatalog,
    assignments: &[Assignment],
    request: &Request<'_>,
) -> Decision {
    for assignment in assignments {
        if !assignment.principal_id.eq_ignore_ascii_case(request.principal_id) {
            continue;
        }
        if !request.scope.is_within(&assignment.scope) {
            continue;
        }
        let guid = assignment.role_definition_id.rsplit('/').next().unwrap_or_default();
        let Some(role) = catalog.role(guid) else { continue };
        if role.grants(request.action, request.kind) {
            return Decision::Allowed {
                assignment_id: assignment.id.clone(),
                role_name: role.role_name.clone(),
            };
        }
    }
    Decision::Denied
}

/// ARM's action matching: case-insensitive, `*` matches any run of characters (including `/`), and a `/*/`
/// segment also matches a single `/` (so Managed Identity Operator's `…/userAssignedIdentities/*/assign/action`
/// grants `…/userAssignedIdentities/assign/action`, as Azure documents).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    glob_match(pattern.as_bytes(), action.as_bytes())
        || (pattern.contains("/*/")
            && glob_match(pattern.replace("/*/", "/").as_bytes(), action.as_bytes()))
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(principal: &str, role: &str, scope: &str) -> Assignment {
        Assignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/x"),
            principal_id: principal.into(),
            role_definition_id: format!(
                "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}"
            ),
            scope: ResourceId::parse(scope).unwrap(),
        }
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
