//! Arguments of `berth role definition ...`, `berth role assignment ...` and `berth role audit ...`, with the
//! Azure CLI's words, and of `berth acr check-access`. Parsing only.

use clap::{Args, Subcommand};

use super::AcrNameArgs;

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Manage role definitions (built-in and custom roles).
    Definition {
        #[command(subcommand)]
        command: RoleDefinitionCommand,
    },
    /// Manage role assignments.
    Assignment {
        #[command(subcommand)]
        command: RoleAssignmentCommand,
    },
    /// Read the audit log of authorization decisions.
    Audit {
        #[command(subcommand)]
        command: RoleAuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleDefinitionCommand {
    /// List role definitions.
    List(RoleDefinitionListArgs),
    /// Show one role definition, by name or GUID.
    Show(RoleDefinitionNameArgs),
    /// Create a custom role.
    Create(RoleDefinitionFileArgs),
    /// Update a custom role.
    Update(RoleDefinitionFileArgs),
    /// Delete a custom role.
    Delete(RoleDefinitionNameArgs),
}

#[derive(Debug, Args)]
pub struct RoleDefinitionListArgs {
    /// A role's name (matched case-insensitively) or GUID.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Scope at which the role definitions are listed (default: the subscription).
    #[arg(long)]
    pub scope: Option<String>,
    /// Only custom roles.
    #[arg(long)]
    pub custom_role_only: bool,
}

#[derive(Debug, Args)]
pub struct RoleDefinitionNameArgs {
    /// The role's name (case-insensitive) or GUID.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Scope of the role definition (default: the subscription).
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Debug, Args)]
pub struct RoleDefinitionFileArgs {
    /// The role definition as JSON, or `@file.json` (az's shape: Name, Description, Actions, NotActions,
    /// DataActions, NotDataActions, AssignableScopes).
    #[arg(long, value_name = "JSON")]
    pub role_definition: String,
}

#[derive(Debug, Subcommand)]
pub enum RoleAssignmentCommand {
    /// Create a role assignment.
    Create(RoleAssignmentCreateArgs),
    /// List role assignments.
    List(RoleAssignmentListArgs),
    /// Delete role assignments.
    Delete(RoleAssignmentDeleteArgs),
}

#[derive(Debug, Args)]
pub struct RoleAssignmentCreateArgs {
    /// The principal: an object id, a client (application) id or a service principal's name.
    #[arg(long, conflicts_with = "assignee_object_id")]
    pub assignee: Option<String>,
    /// The principal's object id, used as it is (no directory lookup when the type is given too).
    #[arg(long)]
    pub assignee_object_id: Option<String>,
    /// The principal's type: User, Group, ServicePrincipal or ForeignGroup.
    #[arg(long)]
    pub assignee_principal_type: Option<String>,
    /// Role name (case-insensitive), GUID or role definition ID.
    #[arg(long)]
    pub role: String,
    /// Scope of the assignment: a subscription, group or resource ID.
    #[arg(long)]
    pub scope: Option<String>,
    /// Resource group the assignment is scoped to (instead of --scope).
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
    /// An ABAC condition that narrows the assignment.
    #[arg(long)]
    pub condition: Option<String>,
    /// The condition language's version (only 2.0).
    #[arg(long)]
    pub condition_version: Option<String>,
    /// Description of the assignment.
    #[arg(long)]
    pub description: Option<String>,
    /// The assignment's name (a GUID; a new one by default).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RoleAssignmentListArgs {
    /// Only assignments of this principal (object id, client id or service principal name).
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only assignments of this role (name or GUID).
    #[arg(long)]
    pub role: Option<String>,
    /// Scope to list at (default: the subscription).
    #[arg(long)]
    pub scope: Option<String>,
    /// Resource group to list at.
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
    /// Show assignments at every scope of the subscription, not only at the given one.
    #[arg(long)]
    pub all: bool,
    /// Include assignments inherited from scopes above.
    #[arg(long)]
    pub include_inherited: bool,
}

#[derive(Debug, Args)]
pub struct RoleAssignmentDeleteArgs {
    /// Assignment IDs to delete.
    #[arg(long, num_args = 1..)]
    pub ids: Option<Vec<String>>,
    /// Only assignments of this principal.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only assignments of this role.
    #[arg(long)]
    pub role: Option<String>,
    /// Scope of the assignments (default: the subscription).
    #[arg(long)]
    pub scope: Option<String>,
    /// Resource group of the assignments.
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
    /// Delete even when more than one assignment matches, and inherited ones when --include-inherited.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum RoleAuditCommand {
    /// List audited authorization decisions, newest first.
    List(RoleAuditListArgs),
}

#[derive(Debug, Args)]
pub struct RoleAuditListArgs {
    /// Scope whose decisions (at it and below) are listed (default: the subscription).
    #[arg(long)]
    pub scope: Option<String>,
    /// Only decisions about this principal (object id, client id or service principal name).
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only denied decisions.
    #[arg(long, conflicts_with = "allowed_only")]
    pub denied_only: bool,
    /// Only allowed decisions.
    #[arg(long)]
    pub allowed_only: bool,
    /// At most this many decisions.
    #[arg(long, default_value_t = 100)]
    pub top: u32,
}

/// `berth acr check-access -n R --assignee X [--repository Y]`.
#[derive(Debug, Args)]
pub struct AcrCheckAccessArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// The principal: an object id, a client id or a service principal's name.
    #[arg(long)]
    pub assignee: String,
    /// The repository (within the registry) to check; registry-wide without it.
    #[arg(long)]
    pub repository: Option<String>,
}
