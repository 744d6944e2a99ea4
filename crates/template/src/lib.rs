//! berth's ARM template engine, as a pure library: lenient template parsing, the expression language with ARM's
//! functions (`guid()` and `uniqueString()` exactly as ARM computes them), deployment planning (parameters,
//! variables, copy loops, conditions, the dependency graph in waves, nested deployments, outputs) and what-if diffs.
//!
//! No IO, no async: the caller supplies the deployment's context (scope, clock) and, through
//! [`ResourceReader`], what `reference()` and `list*()` return once resources exist.
//!
//! ```
//! use berth_template::{DeploymentContext, ParameterValues, Plan, ResourceGroupInfo, ResourceSnapshot, Template};
//! let template = Template::parse(r#"{
//!   "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
//!   "contentVersion": "1.0.0.0",
//!   "parameters": { "name": { "type": "string" } },
//!   "resources": [ { "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
//!                    "name": "[parameters('name')]", "location": "[resourceGroup().location]" } ],
//!   "outputs": { "id": { "type": "string",
//!                "value": "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('name'))]" } }
//! }"#).unwrap();
//! let group = ResourceGroupInfo { name: "rg1".into(), location: "westeurope".into(), tags: Default::default(), managed_by: None };
//! let ctx = DeploymentContext::resource_group("tenant", "sub", group, "main", time::OffsetDateTime::UNIX_EPOCH);
//! let parameters = ParameterValues::from_values([("name".to_string(), serde_json::json!("id1"))]);
//! let plan = Plan::new(template, &parameters, ctx).unwrap();
//! let body = plan.evaluate_resource(0, &ResourceSnapshot::new()).unwrap();
//! assert_eq!(body["location"], "westeurope");
//! let outputs = plan.evaluate_outputs(&ResourceSnapshot::new()).unwrap();
//! assert_eq!(outputs["id"]["value"], "/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1");
//! ```

pub mod context;
pub mod diag;
pub mod eval;
pub mod expr;
pub mod hash;
pub mod json;
pub mod plan;
pub mod request;
pub mod template;
pub mod whatif;

pub use context::{
    DeploymentContext, DeploymentMode, ResourceGroupInfo, ResourceReader, ResourceSnapshot,
    TargetScope,
};
pub use diag::{Code, Diagnostic, Diagnostics};
pub use expr::{
    parse_expression, parse_template_string, Expr, ExprKind, Span, SyntaxError, TemplateString,
};
pub use hash::{arm_guid, unique_string};
pub use json::{parse_lenient, JsonError, Position, SourceMap};
pub use plan::{NestedDeployment, ParameterValues, Plan, PlannedResource, WhatIfEntry};
pub use request::{parse_deployment_request, DeploymentRequest};
pub use template::Template;
pub use whatif::{
    what_if, ChangeType, DiffOptions, PropertyChange, PropertyChangeType, ResourceChange,
};
