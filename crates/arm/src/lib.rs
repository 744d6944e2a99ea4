//! ARM model: resource IDs, scopes, resource envelopes and ARM error codes. No IO.
//!
//! Azure Resource Manager identifies everything by a path such as
//! `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`. Keywords are matched
//! case-insensitively (`resourcegroups` and `resourceGroups` both occur on the wire), names keep the casing
//! they were created with, and comparisons of whole IDs ignore case.

mod error;
mod id;
mod names;

pub use error::{ArmError, ArmErrorBody, ArmErrorCode};
pub use id::{ResourceId, ResourceIdError, ResourceType};
pub use names::{validate_registry_name, validate_resource_group_name, validate_resource_name};

/// Resource types berth serves, with ARM's canonical spelling.
pub mod types {
    pub const RESOURCE_GROUP: &str = "Microsoft.Resources/resourceGroups";
    pub const REGISTRY: &str = "Microsoft.ContainerRegistry/registries";
    pub const USER_ASSIGNED_IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
    pub const ROLE_ASSIGNMENT: &str = "Microsoft.Authorization/roleAssignments";
    pub const ROLE_DEFINITION: &str = "Microsoft.Authorization/roleDefinitions";
    pub const SERVER_FARM: &str = "Microsoft.Web/serverfarms";
    pub const SITE: &str = "Microsoft.Web/sites";
    pub const DEPLOYMENT: &str = "Microsoft.Resources/deployments";
}
