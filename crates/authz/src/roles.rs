//! Role definitions: Azure's built-in roles, loaded from the reference JSON embedded at build time.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::{action_matches, ActionKind};

/// One `permissions` entry of a role definition.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// A role definition as Azure publishes it (`name` is the GUID).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    pub name: String,
    pub role_name: String,
    #[serde(default)]
    pub description: String,
    pub role_type: String,
    #[serde(default)]
    pub assignable_scopes: Vec<String>,
    pub permissions: Vec<Permission>,
}

impl RoleDefinition {
    /// Effective rights are the union over permission entries of (actions − notActions). `actions: ["*"]`
    /// never grants a data action: the two lists are separate.
    pub fn grants(&self, action: &str, kind: ActionKind) -> bool {
        self.permissions.iter().any(|p| {
            let (allow, deny) = match kind {
                ActionKind::Control => (&p.actions, &p.not_actions),
                ActionKind::Data => (&p.data_actions, &p.not_data_actions),
            };
            allow.iter().any(|a| action_matches(a, action))
                && !deny.iter().any(|n| action_matches(n, action))
        })
    }
}

static BUILTIN_JSON: &str = include_str!("../data/builtin-roles.json");

/// Every built-in role, parsed once.
pub fn builtin_roles() -> &'static [RoleDefinition] {
    static ROLES: OnceLock<Vec<RoleDefinition>> = OnceLock::new();
    ROLES.get_or_init(|| {
        // The file is compiled in and checked by a test, so a parse failure is a build defect, not input.
        serde_json::from_str(BUILTIN_JSON).unwrap_or_default()
    })
}

/// A built-in role by GUID (case-insensitive).
pub fn find_builtin_role(guid: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|r| r.name.eq_ignore_ascii_case(guid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_role_loads() {
        let roles = builtin_roles();
        assert_eq!(roles.len(), 25);
        assert!(roles.iter().all(|r| r.role_type == "BuiltInRole" && !r.permissions.is_empty()));
        assert_eq!(
            find_builtin_role("7F951DDA-4ED3-4680-A7CA-43FE172D538D").unwrap().role_name,
            "AcrPull"
        );
    }
}
