//! The authorization interface every surface calls: may this principal perform this action at this scope?
//!
//! [`StoreAuthorizer`] loads the principal's role assignments from the metadata store on every call (so a change
//! is in force at the next request, on every node) and lets `berth-authz` decide. The RBAC engine with custom
//! roles and conditions replaces its insides, not this interface.

use async_trait::async_trait;
use berth_arm::ResourceId;
use berth_authz::{decide, ActionKind, Assignment, BuiltinCatalog, Decision, Request};
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
                Some(Assignment {
                    id: r.id,
                    principal_id: r.principal_id,
                    role_definition_id: r.role_definition_id,
                    scope,
                })
            })
            .collect();
        let decision =
            decide(&BuiltinCatalog, &assignments, &Request { principal_id, action, kind, scope });
        tracing::debug!(principal = principal_id, action, scope = %scope, allowed = decision.is_allowed(), "authorization decision");
        Ok(decision)
    }
}
