//! What a deployment is evaluated against: its target scope, names, clock and the caller's view of live resources.

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The resource group a resource-group deployment targets.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceGroupInfo {
    pub name: String,
    pub location: String,
    pub tags: Map<String, Value>,
    pub managed_by: Option<String>,
}

/// `Incremental` keeps resources the template does not mention; `Complete` deletes them (the caller's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentMode {
    #[default]
    Incremental,
    Complete,
}

impl DeploymentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentMode::Incremental => "Incremental",
            DeploymentMode::Complete => "Complete",
        }
    }

    /// Parses ARM's mode names, case-insensitively.
    pub fn parse(text: &str) -> Option<DeploymentMode> {
        if text.eq_ignore_ascii_case("incremental") {
            Some(DeploymentMode::Incremental)
        } else if text.eq_ignore_ascii_case("complete") {
            Some(DeploymentMode::Complete)
        } else {
            None
        }
    }
}

/// The level a deployment targets, which decides what `resourceId()` and resource IDs look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetScope {
    Tenant,
    ManagementGroup(String),
    Subscription(String),
    ResourceGroup { subscription_id: String, resource_group: String },
}

/// Everything about a deployment that does not come from the template or its parameters.
#[derive(Debug, Clone)]
pub struct DeploymentContext {
    pub tenant_id: String,
    /// Set for subscription and resource-group deployments.
    pub subscription_id: Option<String>,
    pub subscription_display_name: String,
    /// Set for resource-group deployments.
    pub resource_group: Option<ResourceGroupInfo>,
    /// Set for management-group deployments.
    pub management_group: Option<String>,
    pub deployment_name: String,
    /// The deployment's own location (subscription, management-group and tenant deployments have one).
    pub location: Option<String>,
    pub mode: DeploymentMode,
    /// The caller's clock, for `utcNow()`.
    pub now: OffsetDateTime,
    /// Seed for `newGuid()`, so that a deployment's fresh GUIDs are the caller's choice (random in production).
    pub guid_seed: u64,
    /// What `environment()` returns (the cloud's endpoints and suffixes, e.g. `suffixes.acrLoginServer`), if set.
    pub environment: Option<Value>,
}

impl DeploymentContext {
    /// A resource-group deployment.
    pub fn resource_group(
        tenant_id: impl Into<String>,
        subscription_id: impl Into<String>,
        resource_group: ResourceGroupInfo,
        deployment_name: impl Into<String>,
        now: OffsetDateTime,
    ) -> DeploymentContext {
        DeploymentContext {
            tenant_id: tenant_id.into(),
            subscription_id: Some(subscription_id.into()),
            subscription_display_name: String::new(),
            resource_group: Some(resource_group),
            management_group: None,
            deployment_name: deployment_name.into(),
            location: None,
            mode: DeploymentMode::Incremental,
            now,
            guid_seed: 0,
            environment: None,
        }
    }

    pub fn scope(&self) -> TargetScope {
        match (&self.subscription_id, &self.resource_group, &self.management_group) {
            (Some(sub), Some(rg), _) => TargetScope::ResourceGroup {
                subscription_id: sub.clone(),
                resource_group: rg.name.clone(),
            },
            (Some(sub), None, _) => TargetScope::Subscription(sub.clone()),
            (None, _, Some(mg)) => TargetScope::ManagementGroup(mg.clone()),
            (None, _, None) => TargetScope::Tenant,
        }
    }

    /// The ID of the scope itself (`/subscriptions/s/resourceGroups/g`, `/subscriptions/s`, `/`).
    pub fn scope_id(&self) -> String {
        match self.scope() {
            TargetScope::ResourceGroup { subscription_id, resource_group } => {
                format!("/subscriptions/{subscription_id}/resourceGroups/{resource_group}")
            }
            TargetScope::Subscription(sub) => format!("/subscriptions/{sub}"),
            TargetScope::ManagementGroup(mg) => {
                format!("/providers/Microsoft.Management/managementGroups/{mg}")
            }
            TargetScope::Tenant => "/".to_string(),
        }
    }
}

/// The caller's view of deployed resources, for `reference()` and `list*()`.
pub trait ResourceReader {
    /// The resource's `properties` (`full == false`) or its whole body (`full == true`).
    fn reference(
        &self,
        resource_id: &str,
        api_version: Option<&str>,
        full: bool,
    ) -> Result<Value, String>;

    /// `listKeys(id, api)` and friends: the POST `.../{function}` action's answer.
    fn list(
        &self,
        function: &str,
        resource_id: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let _ = (api_version, body);
        Err(format!("'{function}' is not supported for '{resource_id}'"))
    }
}

/// A snapshot of resources by ID (compared case-insensitively): the simplest real [`ResourceReader`].
#[derive(Debug, Clone, Default)]
pub struct ResourceSnapshot {
    resources: std::collections::HashMap<String, Value>,
}

impl ResourceSnapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a resource's whole body (with `properties`).
    pub fn insert(&mut self, resource_id: &str, body: Value) {
        self.resources.insert(resource_id.to_ascii_lowercase(), body);
    }

    pub fn get(&self, resource_id: &str) -> Option<&Value> {
        self.resources.get(&resource_id.to_ascii_lowercase())
    }

    /// Forgets a resource, so that `reference()` to it is unknown (what-if: its state after a change).
    pub fn remove(&mut self, resource_id: &str) {
        self.resources.remove(&resource_id.to_ascii_lowercase());
    }
}

impl ResourceReader for ResourceSnapshot {
    fn reference(
        &self,
        resource_id: &str,
        _api_version: Option<&str>,
        full: bool,
    ) -> Result<Value, String> {
        let body = self
            .get(resource_id)
            .ok_or_else(|| format!("the resource '{resource_id}' was not found"))?;
        if full {
            Ok(body.clone())
        } else {
            Ok(body.get("properties").cloned().unwrap_or_else(|| Value::Object(Map::new())))
        }
    }
}
