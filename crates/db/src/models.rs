//! Rows of the metadata store, as plain structs.

/// Kinds of principals. Stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    ServicePrincipal,
    SystemAssignedIdentity,
    UserAssignedIdentity,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::ServicePrincipal => "ServicePrincipal",
            PrincipalKind::SystemAssignedIdentity => "SystemAssignedIdentity",
            PrincipalKind::UserAssignedIdentity => "UserAssignedIdentity",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ServicePrincipal" => Some(PrincipalKind::ServicePrincipal),
            "SystemAssignedIdentity" => Some(PrincipalKind::SystemAssignedIdentity),
            "UserAssignedIdentity" => Some(PrincipalKind::UserAssignedIdentity),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub state: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Object id (principalId).
    pub id: String,
    pub tenant_id: String,
    /// Client id (appId).
    pub app_id: String,
    pub kind: PrincipalKind,
    pub display_name: String,
    /// For managed identities: the resource the identity belongs to.
    pub resource_id: Option<String>,
    /// For service principals: the Graph application object's id.
    pub application_object_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSecret {
    pub id: String,
    pub principal_id: String,
    pub secret_hash: String,
    /// The first three characters, shown in listings (as Entra's `hint`).
    pub hint: String,
    pub display_name: Option<String>,
    pub created_at: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub private_pem: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// A resource group or any other ARM resource: its canonical ID and its JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// As created (canonical keywords, original name casing).
    pub id: String,
    pub subscription_id: String,
    /// Lower-cased ID of the resource group holding it (for groups: their own key).
    pub group_key: String,
    /// Lower-cased `Namespace/type`.
    pub type_key: String,
    pub name: String,
    /// Set when the name must be unique across the server (e.g. `registry:myacr`).
    pub unique_name: Option<String>,
    /// The JSON envelope as served.
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ResourceRecord {
    pub fn key(&self) -> String {
        self.id.to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentRecord {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub condition: Option<String>,
    pub condition_version: Option<String>,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}
