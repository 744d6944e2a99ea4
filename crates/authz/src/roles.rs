//! Role definitions: Azure's built-in roles (the reference JSON embedded at build time), custom roles built from
//! data, and the catalog that resolves both by GUID.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::{action_matches, ActionKind};

/// One `permissions` entry of a role definition.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
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

/// A role definition as Azure publishes it (`name` is the GUID). Built-ins come from [`builtin_roles`]; custom
/// roles are built with [`RoleDefinition::custom`] or deserialized from ARM's JSON shape.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
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

/// `roleType` of the built-in roles.
pub const BUILTIN_ROLE_TYPE: &str = "BuiltInRole";
/// `roleType` of custom roles.
pub const CUSTOM_ROLE_TYPE: &str = "CustomRole";

impl Permission {
    /// A permissions entry from its four lists.
    pub fn new<S: Into<String>>(
        actions: impl IntoIterator<Item = S>,
        not_actions: impl IntoIterator<Item = S>,
        data_actions: impl IntoIterator<Item = S>,
        not_data_actions: impl IntoIterator<Item = S>,
    ) -> Permission {
        Permission {
            actions: actions.into_iter().map(Into::into).collect(),
            not_actions: not_actions.into_iter().map(Into::into).collect(),
            data_actions: data_actions.into_iter().map(Into::into).collect(),
            not_data_actions: not_data_actions.into_iter().map(Into::into).collect(),
        }
    }
}

impl RoleDefinition {
    /// A custom role (`roleType` "CustomRole"); `name` is its GUID.
    pub fn custom(
        name: impl Into<String>,
        role_name: impl Into<String>,
        description: impl Into<String>,
        assignable_scopes: Vec<String>,
        permissions: Vec<Permission>,
    ) -> RoleDefinition {
        RoleDefinition {
            name: name.into(),
            role_name: role_name.into(),
            description: description.into(),
            role_type: CUSTOM_ROLE_TYPE.to_string(),
            assignable_scopes,
            permissions,
        }
    }

    pub fn is_builtin(&self) -> bool {
        self.role_type.eq_ignore_ascii_case(BUILTIN_ROLE_TYPE)
    }

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

fn builtin_index() -> &'static HashMap<String, usize> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        builtin_roles().iter().enumerate().map(|(i, r)| (r.name.to_ascii_lowercase(), i)).collect()
    })
}

/// Look a GUID up in a map keyed by lower-case GUIDs, without allocating when it is already lower-case.
fn lookup_lowercase<'m, V>(map: &'m HashMap<String, V>, guid: &str) -> Option<&'m V> {
    if guid.bytes().any(|b| b.is_ascii_uppercase()) {
        map.get(&guid.to_ascii_lowercase())
    } else {
        map.get(guid)
    }
}

/// A built-in role by GUID (case-insensitive).
pub fn find_builtin_role(guid: &str) -> Option<&'static RoleDefinition> {
    lookup_lowercase(builtin_index(), guid).map(|&i| &builtin_roles()[i])
}

/// A built-in role by `roleName`, case-insensitively (`acrpull` finds AcrPull, as `az role definition list --name`
/// does).
pub fn find_builtin_role_by_name(role_name: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|r| r.role_name.eq_ignore_ascii_case(role_name))
}

/// Resolves role definitions by GUID.
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

/// Why a custom role cannot join a [`Catalog`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("role definition '{0}' is a built-in role and cannot be replaced")]
    BuiltinGuid(String),
}

/// The built-in roles plus the caller's custom roles (loaded from the store by the caller: this crate never loads).
/// Built-ins cannot be shadowed: a custom role with a built-in's GUID is refused.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    custom: HashMap<String, RoleDefinition>,
}

impl Catalog {
    /// Built-ins only.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Built-ins and these custom roles.
    pub fn with_custom_roles(
        roles: impl IntoIterator<Item = RoleDefinition>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::new();
        for role in roles {
            catalog.insert(role)?;
        }
        Ok(catalog)
    }

    /// Add or replace a custom role; returns the one it replaced.
    pub fn insert(&mut self, role: RoleDefinition) -> Result<Option<RoleDefinition>, CatalogError> {
        if find_builtin_role(&role.name).is_some() {
            return Err(CatalogError::BuiltinGuid(role.name));
        }
        Ok(self.custom.insert(role.name.to_ascii_lowercase(), role))
    }

    /// Remove a custom role by GUID.
    pub fn remove(&mut self, guid: &str) -> Option<RoleDefinition> {
        self.custom.remove(&guid.to_ascii_lowercase())
    }

    /// A role by `roleName`, case-insensitively: built-ins first, then custom roles.
    pub fn find_by_name(&self, role_name: &str) -> Option<&RoleDefinition> {
        find_builtin_role_by_name(role_name)
            .or_else(|| self.custom.values().find(|r| r.role_name.eq_ignore_ascii_case(role_name)))
    }

    /// Every role: built-ins, then custom roles (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &RoleDefinition> {
        builtin_roles().iter().chain(self.custom.values())
    }

    pub fn custom_roles(&self) -> impl Iterator<Item = &RoleDefinition> {
        self.custom.values()
    }
}

impl RoleCatalog for Catalog {
    fn role(&self, guid: &str) -> Option<&RoleDefinition> {
        find_builtin_role(guid).or_else(|| lookup_lowercase(&self.custom, guid))
    }
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
        assert_eq!(
            find_builtin_role_by_name("acrpull").unwrap().name,
            "7f951dda-4ed3-4680-a7ca-43fe172d538d"
        );
        assert!(roles.iter().all(|r| find_builtin_role(&r.name) == Some(r)));
    }

    #[test]
    fn custom_roles_join_the_catalog_but_cannot_shadow_builtins() {
        let role = RoleDefinition::custom(
            "11111111-2222-3333-4444-555555555555",
            "Registry Puller",
            "pull only",
            vec!["/subscriptions/s".into()],
            vec![Permission::new(["Microsoft.ContainerRegistry/registries/pull/read"], [], [], [])],
        );
        let mut catalog = Catalog::with_custom_roles([role.clone()]).unwrap();
        assert_eq!(catalog.role("11111111-2222-3333-4444-555555555555"), Some(&role));
        assert_eq!(
            catalog.role("11111111-2222-3333-4444-555555555555".to_uppercase().as_str()),
            Some(&role)
        );
        assert_eq!(catalog.find_by_name("registry PULLER"), Some(&role));
        assert_eq!(catalog.role(crate::role_ids::OWNER).unwrap().role_name, "Owner");
        assert_eq!(catalog.iter().count(), 26);
        let mut fake_owner = role.clone();
        fake_owner.name = crate::role_ids::OWNER.to_uppercase();
        assert!(matches!(catalog.insert(fake_owner), Err(CatalogError::BuiltinGuid(_))));
        assert_eq!(catalog.remove("11111111-2222-3333-4444-555555555555"), Some(role));
        assert!(catalog.role("11111111-2222-3333-4444-555555555555").is_none());
    }

    #[test]
    fn custom_roles_deserialize_from_arm_json() {
        let role: RoleDefinition = serde_json::from_value(serde_json::json!({
            "name": "11111111-2222-3333-4444-555555555555",
            "roleName": "Pusher",
            "roleType": "CustomRole",
            "assignableScopes": ["/subscriptions/s"],
            "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/push/write"], "dataActions": []}]
        }))
        .unwrap();
        assert!(!role.is_builtin());
        assert!(
            role.grants("microsoft.containerregistry/registries/PUSH/write", ActionKind::Control)
        );
        assert!(!role.grants("Microsoft.ContainerRegistry/registries/push/write", ActionKind::Data));
    }
}
