//! The authorization interface every surface calls: may this principal perform this action at this scope?
//!
//! [`StoreAuthorizer`] loads the principal's role assignments from the metadata store on every call (so a change
//! is in force at the next request, on every node) and lets `berth-authz` decide. The RBAC engine with custom
//! roles and conditions replaces its insides, not this interface.

use async_trait::async_trait;
use berth_arm::ResourceId;
use berth_authz::{decide, ActionKind, Assignment, BuiltinCatalog, Condition, Decision, Request};
use berth_db::Db;

use crate::error::ApiError;

#[async_trait]
pub trait Authorizer: Send + Sync {
    async fn check(
        &self,
        principal_id: &str,
        action: &str,
        kind: ActionKind,
        scope: &ResourceId,
    ) -> Result<Decision, ApiError>;
}

pub struct StoreAuthorizer {
    pub db: Db,
}

#[async_trait]
impl Authorizer for StoreAuthorizer {
    async fn check(
        &self,
        principal_id: &str,
        action: &str,
        kind: ActionKind,
        scope: &ResourceId,
    ) -> Result<Decision, ApiError> {
        let records = self.db.role_assignments_of(principal_id).await?;
        let assignments: Vec<Assignment> = records
            .into_iter()
            .filter_map(|r| {
                let scope = ResourceId::parse(&r.scope).ok()?;
                // A stored condition that no longer parses makes its assignment grant nothing (fail closed).
                let condition = match r.condition.as_deref().filter(|c| !c.trim().is_empty()) {
                    Some(text) => Some(std::sync::Arc::new(
                        Condition::parse_versioned(text, r.condition_version.as_deref()).ok()?,
                    )),
                    None => None,
                };
                Some(Assignment {
                    id: r.id,
                    principal_id: r.principal_id,
                    role_definition_id: r.role_definition_id,
                    scope,
                    condition,
                })
            })
            .collect();
        let decision =
            decide(&BuiltinCatalog, &assignments, &Request { principal_id, action, kind, scope });
        tracing::debug!(principal = principal_id, action, scope = %scope, allowed = decision.is_allowed(), "authorization decision");
        Ok(decision)
    }
}
