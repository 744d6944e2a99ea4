//! The authorization interface every surface calls: may this principal perform this action at this scope?
//!
//! [`StoreAuthorizer`] loads the principal's role assignments from the metadata store on every call, with the
//! custom roles they name (built-in roles are compiled in), so a change to an assignment or a custom role is in
//! force at the next request, on every node: nothing is cached between requests. `berth-authz` decides.

use std::sync::Arc;

use async_trait::async_trait;
use berth_arm::ResourceId;
use berth_authz::{
    decide_with, ActionKind, Assignment, Attributes, Catalog, Condition, Decision, Request,
    RoleDefinition,
};
use berth_db::{CustomRoleRecord, Db};

use crate::error::ApiError;

#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Everything a decision about `principal_id` needs, read now.
    async fn grants_of(&self, principal_id: &str) -> Result<PrincipalGrants, ApiError>;

    async fn check(
        &self,
        principal_id: &str,
        action: &str,
        kind: ActionKind,
        scope: &ResourceId,
    ) -> Result<Decision, ApiError> {
        self.check_with(principal_id, action, kind, scope, &Attributes::new()).await
    }

    /// [`Authorizer::check`] with request attributes that conditions see (e.g. the role a role assignment
    /// write would grant, which the RBAC Administrator's delegation condition tests).
    async fn check_with(
        &self,
        principal_id: &str,
        action: &str,
        kind: ActionKind,
        scope: &ResourceId,
        attributes: &Attributes,
    ) -> Result<Decision, ApiError> {
        let grants = self.grants_of(principal_id).await?;
        let decision = grants.decide(action, kind, scope, attributes);
        tracing::debug!(principal = principal_id, action, scope = %scope, allowed = decision.is_allowed(), "authorization decision");
        Ok(decision)
    }
}

/// One principal's role assignments and the roles they name.
#[derive(Debug, Clone, Default)]
pub struct PrincipalGrants {
    pub principal_id: String,
    pub catalog: Catalog,
    pub assignments: Vec<Assignment>,
}

impl PrincipalGrants {
    pub fn decide(
        &self,
        action: &str,
        kind: ActionKind,
        scope: &ResourceId,
        attributes: &Attributes,
    ) -> Decision {
        decide_with(
            &self.catalog,
            &self.assignments,
            &Request { principal_id: &self.principal_id, action, kind, scope },
            attributes,
        )
    }
}

/// A custom role's stored definition, as the engine reads it.
pub fn custom_role_definition(record: &CustomRoleRecord) -> Option<RoleDefinition> {
    let mut role: RoleDefinition = serde_json::from_str(&record.body).ok()?;
    role.name = record.name.clone();
    role.role_type = berth_authz::CUSTOM_ROLE_TYPE.to_string();
    Some(role)
}

/// The engine's view of a stored assignment; `None` for one that cannot take part in decisions (an unparsable
/// scope or a stored condition that no longer parses: such an assignment grants nothing, failing closed).
pub fn assignment_of(record: berth_db::RoleAssignmentRecord) -> Option<Assignment> {
    let scope = ResourceId::parse(&record.scope).ok()?;
    let condition = match record.condition.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(text) => Some(Arc::new(
            Condition::parse_versioned(text, record.condition_version.as_deref()).ok()?,
        )),
        None => None,
    };
    Some(Assignment {
        id: record.id,
        principal_id: record.principal_id,
        role_definition_id: record.role_definition_id,
        scope,
        condition,
    })
}

pub struct StoreAuthorizer {
    pub db: Db,
}

/// Load `principal_id`'s grants from the store: its assignments, and the custom roles among their roles.
pub async fn load_grants(db: &Db, principal_id: &str) -> Result<PrincipalGrants, ApiError> {
    let records = db.role_assignments_of(principal_id).await?;
    let assignments: Vec<Assignment> = records.into_iter().filter_map(assignment_of).collect();
    let custom: Vec<String> = assignments
        .iter()
        .map(|a| a.role_guid().to_ascii_lowercase())
        .filter(|guid| berth_authz::find_builtin_role(guid).is_none())
        .collect();
    let mut catalog = Catalog::new();
    if !custom.is_empty() {
        for record in db.custom_roles_by_guids(&custom).await? {
            if let Some(role) = custom_role_definition(&record) {
                // A stored custom role never carries a built-in GUID (refused on write), so this cannot fail.
                let _ = catalog.insert(role);
            }
        }
    }
    Ok(PrincipalGrants { principal_id: principal_id.to_string(), catalog, assignments })
}

#[async_trait]
impl Authorizer for StoreAuthorizer {
    async fn grants_of(&self, principal_id: &str) -> Result<PrincipalGrants, ApiError> {
        load_grants(&self.db, principal_id).await
    }
}
