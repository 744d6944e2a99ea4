//! Azure Container Registry's authorization semantics (reference §2.4): what a registry's `roleAssignmentMode`
//! means for the data plane (pull, push, delete, metadata, catalog), with repository conditions in ABAC mode.
//!
//! - `LegacyRegistryPermissions` (az `rbac`, the default): the data plane checks the *actions*
//!   `registries/pull/read`, `registries/push/write` and `registries/artifacts/delete` at the registry's scope, so
//!   AcrPull/AcrPush/AcrDelete work, and so do Reader's `*/read` (pull) and Owner's/Contributor's `*` (pull, push,
//!   delete). The repository roles' *dataActions* are not consulted, and no repository attribute exists: a condition
//!   is evaluated like any ARM check, without a repository name.
//! - `AbacRepositoryPermissions` (az `rbac-abac`): the data plane checks the *dataActions*
//!   `registries/repositories/{content,metadata}/{read,write,delete}` and `registries/catalog/read`, so
//!   AcrPull/AcrPush/AcrDelete and Owner/Contributor/Reader give no data-plane access (actions never grant data
//!   actions), and a condition on the assignment sees the repository as
//!   `@Request[Microsoft.ContainerRegistry/registries/repositories:name]`. Catalog listing is registry-wide: it is
//!   evaluated without a repository name (the documented conditions target only repository actions, so they leave
//!   `catalog/read` alone; a condition that targets `catalog/read` and tests the repository name denies it).
//!
//! Only the scope chain matters for where an assignment applies: a repository is not a scope, so assignments at the
//! root, subscription, resource group or registry apply, and assignments on another registry never do.

use berth_arm::ResourceId;

use crate::condition::{AttributeSource, Attributes, REPOSITORY_NAME_ATTRIBUTE};
use crate::{ActionKind, AssignmentSet, Decision, Request, RoleCatalog};

/// A registry's `properties.roleAssignmentMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoleAssignmentMode {
    /// "RBAC Registry Permissions" (az `--role-assignment-mode rbac`), the default.
    #[default]
    LegacyRegistryPermissions,
    /// "RBAC Registry + ABAC Repository Permissions" (az `--role-assignment-mode rbac-abac`).
    AbacRepositoryPermissions,
}

impl RoleAssignmentMode {
    pub const ALL: [RoleAssignmentMode; 2] = [
        RoleAssignmentMode::LegacyRegistryPermissions,
        RoleAssignmentMode::AbacRepositoryPermissions,
    ];

    /// The ARM property value.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleAssignmentMode::LegacyRegistryPermissions => "LegacyRegistryPermissions",
            RoleAssignmentMode::AbacRepositoryPermissions => "AbacRepositoryPermissions",
        }
    }

    /// az's word for the mode.
    pub fn cli_word(self) -> &'static str {
        match self {
            RoleAssignmentMode::LegacyRegistryPermissions => "rbac",
            RoleAssignmentMode::AbacRepositoryPermissions => "rbac-abac",
        }
    }

    /// The ARM property value, case-insensitively.
    pub fn parse(value: &str) -> Option<RoleAssignmentMode> {
        RoleAssignmentMode::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(value.trim()))
    }

    /// az's word (`rbac`, `rbac-abac`), case-insensitively.
    pub fn from_cli_word(word: &str) -> Option<RoleAssignmentMode> {
        RoleAssignmentMode::ALL.into_iter().find(|m| m.cli_word().eq_ignore_ascii_case(word.trim()))
    }
}

/// One thing a registry client may do, as the token service grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryAction {
    /// Read manifests and blobs (`pull`).
    Pull,
    /// Write manifests and blobs (`push`).
    Push,
    /// Delete manifests (`delete`).
    Delete,
    /// Read tags and repository metadata (`metadata_read`).
    MetadataRead,
    /// Change tags and repository metadata (`metadata_write`).
    MetadataWrite,
    /// Delete tags and repositories.
    MetadataDelete,
    /// List the registry's repositories (`registry:catalog:*`).
    Catalog,
}

const PULL_READ: &str = "Microsoft.ContainerRegistry/registries/pull/read";
const PUSH_WRITE: &str = "Microsoft.ContainerRegistry/registries/push/write";
const ARTIFACTS_DELETE: &str = "Microsoft.ContainerRegistry/registries/artifacts/delete";
const METADATA_READ: &str = "Microsoft.ContainerRegistry/registries/metadata/read";
const METADATA_WRITE: &str = "Microsoft.ContainerRegistry/registries/metadata/write";

impl RegistryAction {
    pub const ALL: [RegistryAction; 7] = [
        RegistryAction::Pull,
        RegistryAction::Push,
        RegistryAction::Delete,
        RegistryAction::MetadataRead,
        RegistryAction::MetadataWrite,
        RegistryAction::MetadataDelete,
        RegistryAction::Catalog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistryAction::Pull => "pull",
            RegistryAction::Push => "push",
            RegistryAction::Delete => "delete",
            RegistryAction::MetadataRead => "metadata_read",
            RegistryAction::MetadataWrite => "metadata_write",
            RegistryAction::MetadataDelete => "metadata_delete",
            RegistryAction::Catalog => "catalog",
        }
    }

    /// Whether the action is about one repository (all but [`Catalog`](RegistryAction::Catalog)).
    pub fn is_repository_action(self) -> bool {
        self != RegistryAction::Catalog
    }

    /// The RBAC actions a registry in `mode` checks for this action; any one of them suffices.
    ///
    /// Legacy mode: `pull/read` (pull, catalog, metadata reads), `push/write` (push, metadata writes),
    /// `artifacts/delete` (deletes); metadata reads and writes are also granted by the legacy
    /// `registries/metadata/read` and `registries/metadata/write` actions. ABAC mode: the repository data action
    /// of the same name, and `catalog/read` for the catalog.
    pub fn rbac_actions(self, mode: RoleAssignmentMode) -> &'static [(&'static str, ActionKind)] {
        use ActionKind::{Control, Data};
        match mode {
            RoleAssignmentMode::LegacyRegistryPermissions => match self {
                RegistryAction::Pull | RegistryAction::Catalog => &[(PULL_READ, Control)],
                RegistryAction::MetadataRead => &[(PULL_READ, Control), (METADATA_READ, Control)],
                RegistryAction::Push => &[(PUSH_WRITE, Control)],
                RegistryAction::MetadataWrite => {
                    &[(PUSH_WRITE, Control), (METADATA_WRITE, Control)]
                }
                RegistryAction::Delete | RegistryAction::MetadataDelete => {
                    &[(ARTIFACTS_DELETE, Control)]
                }
            },
            RoleAssignmentMode::AbacRepositoryPermissions => match self {
                RegistryAction::Pull => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/content/read", Data)]
                }
                RegistryAction::Push => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/content/write", Data)]
                }
                RegistryAction::Delete => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/content/delete", Data)]
                }
                RegistryAction::MetadataRead => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/metadata/read", Data)]
                }
                RegistryAction::MetadataWrite => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/metadata/write", Data)]
                }
                RegistryAction::MetadataDelete => {
                    &[("Microsoft.ContainerRegistry/registries/repositories/metadata/delete", Data)]
                }
                RegistryAction::Catalog => {
                    &[("Microsoft.ContainerRegistry/registries/catalog/read", Data)]
                }
            },
        }
    }
}

/// Who asks what of which registry.
#[derive(Debug, Clone, Copy)]
pub struct RegistryQuery<'a> {
    pub principal_id: &'a str,
    /// The registry's resource ID: assignments at it or above it apply.
    pub registry: &'a ResourceId,
    pub mode: RoleAssignmentMode,
    /// The repository within the registry (without the registry's name in path mode), for repository actions.
    pub repository: Option<&'a str>,
}

impl RegistryQuery<'_> {
    /// The attributes conditions see for `action`: in ABAC mode, the repository name for repository actions.
    pub fn attributes(&self, action: RegistryAction) -> Attributes {
        match (self.mode, self.repository) {
            (RoleAssignmentMode::AbacRepositoryPermissions, Some(repository))
                if action.is_repository_action() =>
            {
                Attributes::new().with(
                    AttributeSource::Request,
                    REPOSITORY_NAME_ATTRIBUTE,
                    repository,
                )
            }
            _ => Attributes::new(),
        }
    }
}

/// Whether the principal may perform `action` in the registry, and which assignment allows it.
pub fn check(
    catalog: &dyn RoleCatalog,
    assignments: &(impl AssignmentSet + ?Sized),
    query: &RegistryQuery<'_>,
    action: RegistryAction,
) -> Decision {
    let attributes = query.attributes(action);
    for &(rbac_action, kind) in action.rbac_actions(query.mode) {
        let request = Request {
            principal_id: query.principal_id,
            action: rbac_action,
            kind,
            scope: query.registry,
        };
        let decision = assignments.decide_with(catalog, &request, &attributes);
        if decision.is_allowed() {
            return decision;
        }
    }
    Decision::Denied
}

/// Every [`RegistryAction`]'s decision for one principal, registry and repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAccess {
    decisions: Vec<(RegistryAction, Decision)>,
}

impl RegistryAccess {
    pub fn allows(&self, action: RegistryAction) -> bool {
        self.decision(action).is_allowed()
    }

    pub fn decision(&self, action: RegistryAction) -> &Decision {
        self.decisions
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, d)| d)
            .unwrap_or(&Decision::Denied)
    }

    /// The allowed actions, in [`RegistryAction::ALL`] order.
    pub fn granted(&self) -> Vec<RegistryAction> {
        self.decisions.iter().filter(|(_, d)| d.is_allowed()).map(|(a, _)| *a).collect()
    }
}

/// The decisions for all of [`RegistryAction::ALL`] at once (what a token for `repository:<name>:*` needs).
pub fn access(
    catalog: &dyn RoleCatalog,
    assignments: &(impl AssignmentSet + ?Sized),
    query: &RegistryQuery<'_>,
) -> RegistryAccess {
    RegistryAccess {
        decisions: RegistryAction::ALL
            .into_iter()
            .map(|action| (action, check(catalog, assignments, query, action)))
            .collect(),
    }
}
