//! Deployment planning: parameters bound and checked, variables evaluated, `copy` loops and conditions expanded,
//! the dependency graph (explicit `dependsOn` and implicit `reference()`/`list*()`) ordered into waves, then each
//! resource's body and the outputs evaluated on demand once the caller knows what `reference()` returns.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::context::{
    DeploymentContext, DeploymentMode, ResourceGroupInfo, ResourceReader, ResourceSnapshot,
    TargetScope,
};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::eval::{
    get_property, provider_path, type_name, Env, EvalError, LoopFrame, Resolve, ResolvedResource,
    Site,
};
use crate::expr::{Expr, ExprKind};
use crate::json::child_path;
use crate::template::{
    is_deployment_type, Key, Node, OutputValue, ParamType, SchemaScope, Template, VariableValue,
};

/// How deep variables may refer to variables (each level is a nested evaluation).
const MAX_VARIABLE_DEPTH: usize = 64;

/// ARM's limit on copy loops.
const MAX_COPY_COUNT: i64 = 800;

/// Parameter values as a deployment request carries them: `{"name": {"value": ...}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParameterValues(pub Map<String, Value>);

impl ParameterValues {
    /// Reads `{"a": {"value": 1}}` or a whole parameters file (`{"$schema": ..., "parameters": {...}}`).
    pub fn from_json(value: &Value) -> Result<ParameterValues, Diagnostics> {
        let bad = |message: String| {
            Diagnostics::one(Diagnostic::new(Code::InvalidParameter, "parameters", message))
        };
        let Some(map) = value.as_object() else {
            return Err(bad(format!("parameters must be an object, not {}", type_name(value))));
        };
        let map = match map.get("parameters") {
            Some(Value::Object(inner))
                if map.contains_key("$schema") || map.contains_key("contentVersion") =>
            {
                inner
            }
            _ => map,
        };
        for (name, entry) in map {
            let ok = entry
                .as_object()
                .is_some_and(|e| e.contains_key("value") || e.contains_key("reference"));
            if !ok {
                return Err(bad(format!(
                    "the parameter '{name}' must be given as {{\"value\": ...}}"
                )));
            }
        }
        Ok(ParameterValues(map.clone()))
    }

    /// Plain values by name.
    pub fn from_values(values: impl IntoIterator<Item = (String, Value)>) -> ParameterValues {
        let mut map = Map::new();
        for (name, value) in values {
            let mut entry = Map::new();
            entry.insert("value".into(), value);
            map.insert(name, Value::Object(entry));
        }
        ParameterValues(map)
    }
}

/// One resource instance of the plan (a `copy` loop gives one per index).
#[derive(Debug, Clone)]
pub struct PlannedResource {
    /// Index of its definition in [`Template::resources`].
    pub definition: usize,
    /// JSON path of the definition.
    pub path: String,
    pub symbolic_name: Option<String>,
    pub resource_type: String,
    pub api_version: Option<String>,
    pub name: String,
    pub id: String,
    /// The copy loop name and index, for looped resources.
    pub copy: Option<(String, i64)>,
    /// Whether the resource is deployed: false when its `condition` is false or it is an `existing` reference.
    pub deploy: bool,
    /// Indices (in [`Plan::resources`]) of the resources that must be deployed first.
    pub depends_on: Vec<usize>,
    /// IDs of the resources whose `reference()`/`list*()` the body reads, as far as they are known before
    /// deployment: what an asynchronous caller must fetch into its [`ResourceReader`] before
    /// [`Plan::evaluate_resource`]. (A target computed from another `reference()` is not known in advance.)
    pub references: Vec<String>,
    loops: Vec<LoopFrame>,
}

impl PlannedResource {
    pub fn is_nested_deployment(&self) -> bool {
        is_deployment_type(&self.resource_type)
    }

    /// A readable label: the symbolic name, or the name with its copy index.
    pub fn label(&self) -> String {
        match (&self.symbolic_name, &self.copy) {
            (Some(symbol), Some((_, i))) => format!("{symbol}[{i}]"),
            (Some(symbol), None) => symbol.clone(),
            _ => format!("{} '{}'", self.resource_type, self.name),
        }
    }
}

/// One resource's predicted change (see [`Plan::what_if`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIfEntry {
    pub resource_id: String,
    pub change: crate::whatif::ResourceChange,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl WhatIfEntry {
    /// ARM's `WhatIfChange` JSON.
    pub fn to_json(&self) -> Value {
        let mut value = self.change.to_json(self.before.as_ref(), self.after.as_ref());
        if let Value::Object(map) = &mut value {
            map.insert("resourceId".into(), Value::String(self.resource_id.clone()));
        }
        value
    }
}

/// A nested `Microsoft.Resources/deployments` resource, ready to be planned as a deployment of its own.
#[derive(Debug, Clone)]
pub struct NestedDeployment {
    pub name: String,
    pub template: Template,
    pub parameters: ParameterValues,
    pub mode: DeploymentMode,
    /// `expressionEvaluationOptions.scope == inner`: the template saw none of the parent's parameters and variables.
    pub inner_scope: bool,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub location: Option<String>,
}

impl NestedDeployment {
    /// The child's context: the parent's, moved to the nested deployment's target. The caller supplies the
    /// target resource group (it knows its location and tags), or `None` for a subscription-level target.
    pub fn context(
        &self,
        parent: &DeploymentContext,
        resource_group: Option<ResourceGroupInfo>,
    ) -> DeploymentContext {
        let mut ctx = parent.clone();
        ctx.deployment_name = self.name.clone();
        ctx.mode = self.mode;
        if let Some(sub) = &self.subscription_id {
            ctx.subscription_id = Some(sub.clone());
        }
        ctx.resource_group = resource_group;
        if self.location.is_some() {
            ctx.location = self.location.clone();
        }
        ctx.guid_seed = parent.guid_seed.wrapping_add(1);
        ctx
    }

    /// The resource group the child deploys to: its own `resourceGroup`, else the parent's (for RG deployments).
    pub fn target_resource_group<'a>(&'a self, parent: &'a DeploymentContext) -> Option<&'a str> {
        match &self.resource_group {
            Some(rg) => Some(rg.as_str()),
            None if self.subscription_id.is_some() && parent.resource_group.is_none() => None,
            None => parent.resource_group.as_ref().map(|rg| rg.name.as_str()),
        }
    }
}

/// A deployment's plan.
pub struct Plan {
    template: Arc<Template>,
    ctx: DeploymentContext,
    parameters: Map<String, Value>,
    secure_parameters: Vec<String>,
    variables: Map<String, Value>,
    deployment: Value,
    resources: Vec<PlannedResource>,
    waves: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Plan {
    // Parameter values stay out: secure ones must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("deployment", &self.ctx.deployment_name)
            .field("resources", &self.resources)
            .field("waves", &self.waves)
            .finish_non_exhaustive()
    }
}

fn eval_error(path: &str, code: Code, error: EvalError) -> Diagnostic {
    Diagnostic::new(code, path, error.message).with_span(error.span)
}

impl Env<'_> {
    fn nested<'b>(&'b self, loops: &'b [LoopFrame]) -> Env<'b> {
        Env {
            ctx: self.ctx,
            parameters: self.parameters,
            resolve: self.resolve,
            loops,
            reader: self.reader,
            site: self.site,
            deployment: self.deployment,
            functions: self.functions,
            guid_counter: self.guid_counter,
            lambda_variables: self.lambda_variables.clone(),
            unknown: self.unknown,
        }
    }
}

/// Evaluates a compiled JSON node.
fn eval_node(node: &Node, env: &mut Env<'_>, code: Code) -> Result<Value, Diagnostic> {
    match node {
        Node::Literal(v) => Ok(v.clone()),
        Node::Expr { expr, path, text } => match env.eval(expr) {
            Ok(value) => Ok(value),
            // What-if: a value that needs a resource not deployed yet is shown as written, as ARM's what-if does.
            Err(_) if env.unknown.is_some_and(Cell::take) => Ok(Value::String(text.to_string())),
            Err(e) => Err(eval_error(path, code, e)),
        },
        Node::Array(items) => Ok(Value::Array(
            items.iter().map(|n| eval_node(n, env, code)).collect::<Result<_, _>>()?,
        )),
        Node::Object { entries, copies } => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Key::Literal(k) => k.clone(),
                    Key::Expr { expr, path } => {
                        match env.eval(expr).map_err(|e| eval_error(path, code, e))? {
                            Value::String(s) => s,
                            other => {
                                return Err(Diagnostic::new(
                                    code,
                                    path.as_ref(),
                                    format!(
                                        "a property name must evaluate to a String, got '{}'",
                                        type_name(&other)
                                    ),
                                ))
                            }
                        }
                    }
                };
                let value = eval_node(value, env, code)?;
                map.insert(key, value);
            }
            for copy in copies {
                let count = eval_count(&copy.count, env, &format!("{}.count", copy.path), code)?;
                let mut items = Vec::with_capacity(count as usize);
                for index in 0..count {
                    let mut loops = env.loops.to_vec();
                    loops.push(LoopFrame { name: Some(copy.name.clone()), index });
                    let mut inner = env.nested(&loops);
                    items.push(eval_node(&copy.input, &mut inner, code)?);
                }
                map.insert(copy.name.clone(), Value::Array(items));
            }
            Ok(Value::Object(map))
        }
    }
}

fn eval_count(node: &Node, env: &mut Env<'_>, path: &str, code: Code) -> Result<i64, Diagnostic> {
    match eval_node(node, env, code)? {
        Value::Number(n) if n.as_i64().is_some_and(|c| (0..=MAX_COPY_COUNT).contains(&c)) => {
            Ok(n.as_i64().unwrap_or(0))
        }
        other => Err(Diagnostic::new(
            Code::InvalidTemplate,
            path,
            format!(
                "the copy count must be an integer from 0 to {MAX_COPY_COUNT}, got {}",
                crate::eval::to_text(&other)
            ),
        )),
    }
}

/// Variables evaluated on first use, so they may refer to each other in any order (cycles are reported).
struct VariableTable<'a> {
    template: &'a Template,
    ctx: &'a DeploymentContext,
    parameters: &'a Map<String, Value>,
    deployment: &'a Value,
    state: RefCell<HashMap<String, Option<Result<Value, String>>>>,
    depth: Cell<usize>,
}

impl Resolve for VariableTable<'_> {
    fn variable(&self, name: &str) -> Option<Result<Value, String>> {
        let def = self.template.variables.iter().find(|v| v.name.eq_ignore_ascii_case(name))?;
        let key = def.name.to_ascii_lowercase();
        match self.state.borrow().get(&key) {
            Some(Some(done)) => return Some(done.clone()),
            Some(None) => {
                return Some(Err(format!(
                    "the variable '{}' refers to itself (through variables())",
                    def.name
                )))
            }
            None => {}
        }
        // Variables referring to variables recurse; a bounded chain keeps the stack safe.
        if self.depth.get() >= MAX_VARIABLE_DEPTH {
            return Some(Err(format!(
                "the variable '{}' is nested more than {MAX_VARIABLE_DEPTH} variables deep",
                def.name
            )));
        }
        self.depth.set(self.depth.get() + 1);
        self.state.borrow_mut().insert(key.clone(), None);
        let counter = Cell::new(0);
        let mut env = Env {
            ctx: self.ctx,
            parameters: self.parameters,
            resolve: self,
            loops: &[],
            reader: None,
            site: Site::Variable,
            deployment: self.deployment,
            functions: &self.template.functions,
            guid_counter: &counter,
            lambda_variables: Vec::new(),
            unknown: None,
        };
        let result = match &def.value {
            VariableValue::Plain(node) => eval_node(node, &mut env, Code::InvalidTemplate),
            VariableValue::Copy { count, input } => {
                eval_count(count, &mut env, &format!("{}.count", def.path), Code::InvalidTemplate)
                    .and_then(|count| {
                        (0..count)
                            .map(|index| {
                                let loops = [LoopFrame { name: Some(def.name.clone()), index }];
                                let mut inner = env.nested(&loops);
                                eval_node(input, &mut inner, Code::InvalidTemplate)
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(Value::Array)
                    })
            }
        };
        let result = result
            .map_err(|d| format!("in the variable '{}' ({}): {}", def.name, d.path, d.message));
        self.depth.set(self.depth.get() - 1);
        self.state.borrow_mut().insert(key, Some(result.clone()));
        Some(result)
    }

    fn resource(&self, _: &str) -> Option<ResolvedResource> {
        None
    }

    fn api_version_of(&self, _: &str) -> Option<String> {
        None
    }
}

/// What expressions see once variables are known.
struct PlanResolver<'a> {
    template: &'a Template,
    variables: &'a Map<String, Value>,
    resources: &'a [PlannedResource],
}

impl Resolve for PlanResolver<'_> {
    fn variable(&self, name: &str) -> Option<Result<Value, String>> {
        get_property(self.variables, name).cloned().map(Ok)
    }

    fn resource(&self, name_or_symbol: &str) -> Option<ResolvedResource> {
        let symbolic = self.template.uses_symbolic_names();
        let found = self.resources.iter().find(|r| {
            if symbolic {
                r.symbolic_name.as_deref().is_some_and(|s| s == name_or_symbol)
            } else {
                r.name.eq_ignore_ascii_case(name_or_symbol)
            }
        })?;
        Some(ResolvedResource { id: found.id.clone(), api_version: found.api_version.clone() })
    }

    fn api_version_of(&self, resource_id: &str) -> Option<String> {
        self.resources
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(resource_id))
            .and_then(|r| r.api_version.clone())
    }
}

impl Plan {
    /// Binds the parameters, evaluates variables, expands loops and conditions and orders the resources.
    pub fn new(
        template: impl Into<Arc<Template>>,
        parameters: &ParameterValues,
        ctx: DeploymentContext,
    ) -> Result<Plan, Diagnostics> {
        let template: Arc<Template> = template.into();
        let secrets = secret_strings(&template, parameters);
        let locate = |d: Diagnostics| d.locate(&template.source_map).redact(&secrets);
        check_schema_scope(&template, &ctx).map_err(locate)?;
        let guid_counter = Cell::new(0);
        let mut deployment = deployment_object(&template, &ctx, &Map::new());
        let (bound, secure_parameters) =
            bind_parameters(&template, parameters, &ctx, &deployment, &guid_counter)
                .map_err(locate)?;
        deployment = deployment_object(&template, &ctx, &redacted(&bound, &secure_parameters));

        let table = VariableTable {
            template: &template,
            ctx: &ctx,
            parameters: &bound,
            deployment: &deployment,
            state: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
        };
        let mut diagnostics = Vec::new();
        let mut variables = Map::new();
        for def in &template.variables {
            match table.variable(&def.name) {
                Some(Ok(value)) => {
                    variables.insert(def.name.clone(), value);
                }
                Some(Err(message)) => {
                    diagnostics.push(Diagnostic::new(Code::InvalidTemplate, &def.path, message))
                }
                None => {}
            }
        }
        if !diagnostics.is_empty() {
            return Err(locate(Diagnostics(diagnostics)));
        }

        let mut plan = Plan {
            template: template.clone(),
            ctx,
            parameters: bound,
            secure_parameters,
            variables,
            deployment,
            resources: Vec::new(),
            waves: Vec::new(),
        };
        plan.expand_resources().map_err(locate)?;
        plan.link_dependencies().map_err(locate)?;
        plan.order().map_err(locate)?;
        Ok(plan)
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    pub fn context(&self) -> &DeploymentContext {
        &self.ctx
    }

    /// The bound parameter values (defaults applied), secure ones included.
    pub fn parameters(&self) -> &Map<String, Value> {
        &self.parameters
    }

    /// The parameters as a deployment record shows them: `{"name": {"type": "String", "value": ...}}`, with secure
    /// values left out.
    pub fn parameters_for_record(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for def in &self.template.parameters {
            let mut entry = Map::new();
            entry.insert("type".into(), Value::String(def.param_type.display().into()));
            if !def.param_type.is_secure() {
                if let Some(v) = self.parameters.get(&def.name) {
                    entry.insert("value".into(), v.clone());
                }
            }
            out.insert(def.name.clone(), Value::Object(entry));
        }
        out
    }

    /// Names of the parameters of secure types, whose values must not be shown or logged.
    pub fn secure_parameters(&self) -> &[String] {
        &self.secure_parameters
    }

    pub fn variables(&self) -> &Map<String, Value> {
        &self.variables
    }

    /// Every resource instance, deployed or not (see [`PlannedResource::deploy`]).
    pub fn resources(&self) -> &[PlannedResource] {
        &self.resources
    }

    /// Resources to deploy, in waves: every resource of a wave depends only on resources of earlier waves, so a
    /// wave's resources may be deployed concurrently.
    pub fn waves(&self) -> &[Vec<usize>] {
        &self.waves
    }

    fn env<'a>(
        &'a self,
        resolver: &'a dyn Resolve,
        loops: &'a [LoopFrame],
        reader: Option<&'a dyn ResourceReader>,
        site: Site,
        counter: &'a Cell<u64>,
    ) -> Env<'a> {
        Env {
            ctx: &self.ctx,
            parameters: &self.parameters,
            resolve: resolver,
            loops,
            reader,
            site,
            deployment: &self.deployment,
            functions: &self.template.functions,
            guid_counter: counter,
            lambda_variables: Vec::new(),
            unknown: None,
        }
    }

    fn expand_resources(&mut self) -> Result<(), Diagnostics> {
        let template = self.template.clone();
        let mut diagnostics = Vec::new();
        let counter = Cell::new(0);
        // Parents come before their children in `template.resources`, so a child finds its parent's instance.
        let mut first_instance_of: Vec<Option<usize>> = vec![None; template.resources.len()];
        for (index, def) in template.resources.iter().enumerate() {
            let resolver = PlanResolver {
                template: &template,
                variables: &self.variables,
                resources: &self.resources,
            };
            let count = match &def.copy {
                None => None,
                Some(copy) => {
                    let mut env = self.env(&resolver, &[], None, Site::Planning, &counter);
                    match eval_count(
                        &copy.count,
                        &mut env,
                        &format!("{}.copy.count", def.path),
                        Code::InvalidTemplate,
                    ) {
                        Ok(c) => Some(c),
                        Err(d) => {
                            diagnostics.push(d);
                            continue;
                        }
                    }
                }
            };
            let instances: Vec<Vec<LoopFrame>> = match (&def.copy, count) {
                (Some(copy), Some(count)) => (0..count)
                    .map(|i| vec![LoopFrame { name: Some(copy.name.clone()), index: i }])
                    .collect(),
                _ => vec![Vec::new()],
            };
            let mut planned = Vec::new();
            for loops in instances {
                let mut env = self.env(&resolver, &loops, None, Site::Planning, &counter);
                let deploy = match &def.condition {
                    None => !def.existing,
                    Some(node) => match eval_node(node, &mut env, Code::InvalidTemplate) {
                        Ok(Value::Bool(b)) => b && !def.existing,
                        Ok(other) => {
                            diagnostics.push(Diagnostic::new(
                                Code::InvalidTemplate,
                                child_path(&def.path, "condition"),
                                format!(
                                    "the condition must be a Boolean, got '{}'",
                                    type_name(&other)
                                ),
                            ));
                            continue;
                        }
                        Err(d) => {
                            diagnostics.push(d);
                            continue;
                        }
                    },
                };
                let own_name = match eval_node(&def.name, &mut env, Code::InvalidTemplate) {
                    Ok(Value::String(s)) => s,
                    Ok(other) => {
                        diagnostics.push(Diagnostic::new(
                            Code::InvalidTemplate,
                            child_path(&def.path, "name"),
                            format!(
                                "the resource name must be a String, got '{}'",
                                type_name(&other)
                            ),
                        ));
                        continue;
                    }
                    Err(d) => {
                        diagnostics.push(d);
                        continue;
                    }
                };
                let type_segments = def.resource_type.split('/').count().saturating_sub(1);
                let name = match def.parent.and_then(|p| first_instance_of[p]) {
                    Some(parent) if own_name.split('/').count() < type_segments => {
                        format!("{}/{}", self.resources[parent].name, own_name)
                    }
                    _ => own_name,
                };
                let id = match self.resource_id(def, &name, &mut env) {
                    Ok(id) => id,
                    Err(d) => {
                        diagnostics.push(d);
                        continue;
                    }
                };
                planned.push(PlannedResource {
                    definition: index,
                    path: def.path.clone(),
                    symbolic_name: def.symbolic_name.clone(),
                    resource_type: def.resource_type.clone(),
                    // Usually a literal; evaluated in case it is an expression such as `[variables('api')]`.
                    api_version: match def
                        .body
                        .get("apiVersion")
                        .map(|n| eval_node(n, &mut env, Code::InvalidTemplate))
                    {
                        Some(Ok(Value::String(api))) => Some(api),
                        _ => def.api_version.clone(),
                    },
                    name,
                    id,
                    copy: loops.first().map(|f| (f.name.clone().unwrap_or_default(), f.index)),
                    deploy,
                    depends_on: Vec::new(),
                    references: Vec::new(),
                    loops,
                });
            }
            first_instance_of[index] = (!planned.is_empty()).then_some(self.resources.len());
            self.resources.extend(planned);
        }
        // The same resource twice is a template error in ARM too.
        let mut seen: HashMap<String, &PlannedResource> = HashMap::new();
        for r in self.resources.iter().filter(|r| r.deploy) {
            if let Some(first) = seen.insert(r.id.to_ascii_lowercase(), r) {
                diagnostics.push(Diagnostic::new(
                    Code::InvalidTemplate,
                    &r.path,
                    format!(
                        "the resource '{}' is defined multiple times in the template (also at {})",
                        r.id, first.path
                    ),
                ));
            }
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(diagnostics))
        }
    }

    /// The full ID of a template resource, from the deployment's scope, an extension `scope` or a nested
    /// deployment's `resourceGroup`/`subscriptionId`.
    fn resource_id(
        &self,
        def: &crate::template::ResourceDef,
        name: &str,
        env: &mut Env<'_>,
    ) -> Result<String, Diagnostic> {
        let literal = |key: &str, env: &mut Env<'_>| -> Result<Option<String>, Diagnostic> {
            match def.body.get(key) {
                None => Ok(None),
                Some(node) => match eval_node(node, env, Code::InvalidTemplate)? {
                    Value::String(s) => Ok(Some(s)),
                    Value::Null => Ok(None),
                    other => Err(Diagnostic::new(
                        Code::InvalidTemplate,
                        child_path(&def.path, key),
                        format!("'{key}' must be a String, got '{}'", type_name(&other)),
                    )),
                },
            }
        };
        let names = [name];
        let provider =
            provider_path(Default::default(), &def.resource_type, &names).map_err(|e| {
                Diagnostic::new(Code::InvalidTemplate, child_path(&def.path, "name"), e.message)
            })?;
        if let Some(scope) = literal("scope", env)? {
            if !def.resource_type.eq_ignore_ascii_case("Microsoft.Resources/deployments")
                || scope.starts_with('/')
            {
                let scope = scope.trim_end_matches('/');
                return Ok(format!("{scope}{provider}"));
            }
        }
        let subscription = literal("subscriptionId", env)?;
        let resource_group = literal("resourceGroup", env)?;
        if def.resource_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups") {
            let sub = subscription.or_else(|| self.ctx.subscription_id.clone()).unwrap_or_default();
            return Ok(format!("/subscriptions/{sub}/resourceGroups/{name}"));
        }
        if is_deployment_type(&def.resource_type)
            && (subscription.is_some() || resource_group.is_some())
        {
            let sub = subscription.or_else(|| self.ctx.subscription_id.clone()).unwrap_or_default();
            let rg = resource_group.or_else(|| {
                match (&self.ctx.resource_group, def.body.get("subscriptionId")) {
                    (Some(rg), None) => Some(rg.name.clone()),
                    _ => None,
                }
            });
            return Ok(match rg {
                Some(rg) => format!("/subscriptions/{sub}/resourceGroups/{rg}{provider}"),
                None => format!("/subscriptions/{sub}{provider}"),
            });
        }
        Ok(match self.ctx.scope() {
            TargetScope::ResourceGroup { .. }
            | TargetScope::Subscription(_)
            | TargetScope::ManagementGroup(_) => {
                format!("{}{provider}", self.ctx.scope_id())
            }
            TargetScope::Tenant => provider,
        })
    }

    /// Resources a `dependsOn` entry or a `reference()` target names.
    fn targets(&self, reference: &str) -> Vec<usize> {
        let matches = |pred: &dyn Fn(&PlannedResource) -> bool| -> Vec<usize> {
            self.resources.iter().enumerate().filter(|(_, r)| pred(r)).map(|(i, _)| i).collect()
        };
        if reference.starts_with('/') {
            return matches(&|r| r.id.eq_ignore_ascii_case(reference));
        }
        if self.template.uses_symbolic_names() {
            let found = matches(&|r| r.symbolic_name.as_deref() == Some(reference));
            if !found.is_empty() {
                return found;
            }
        }
        let by_loop = matches(&|r| {
            r.copy.as_ref().is_some_and(|(loop_name, _)| loop_name.eq_ignore_ascii_case(reference))
        });
        if !by_loop.is_empty() {
            return by_loop;
        }
        let by_name = matches(&|r| r.name.eq_ignore_ascii_case(reference));
        if !by_name.is_empty() {
            return by_name;
        }
        // The `Namespace/type/name` form.
        matches(&|r| format!("{}/{}", r.resource_type, r.name).eq_ignore_ascii_case(reference))
    }

    fn link_dependencies(&mut self) -> Result<(), Diagnostics> {
        let template = self.template.clone();
        let mut diagnostics = Vec::new();
        let counter = Cell::new(0);
        let mut all_edges: Vec<(Vec<usize>, Vec<String>)> =
            Vec::with_capacity(self.resources.len());
        for (index, resource) in self.resources.iter().enumerate() {
            let def = &template.resources[resource.definition];
            let resolver = PlanResolver {
                template: &template,
                variables: &self.variables,
                resources: &self.resources,
            };
            let mut env = self.env(&resolver, &resource.loops, None, Site::Planning, &counter);
            let mut edges = Vec::new();
            for (position, node) in def.depends_on.iter().enumerate() {
                let path = crate::json::index_path(&child_path(&def.path, "dependsOn"), position);
                match eval_node(node, &mut env, Code::InvalidTemplate) {
                    Ok(Value::String(target)) => {
                        let found = self.targets(&target);
                        // A copy loop of zero instances is a valid dependency on nothing.
                        let empty_loop = template.resources.iter().any(|d| {
                            d.copy.as_ref().is_some_and(|c| c.name.eq_ignore_ascii_case(&target))
                                || d.symbolic_name.as_deref() == Some(target.as_str())
                        });
                        if found.is_empty() && !empty_loop {
                            diagnostics.push(Diagnostic::new(
                                Code::InvalidTemplate,
                                path,
                                format!("the resource '{target}' in 'dependsOn' is not defined in the template"),
                            ));
                        }
                        edges.extend(found);
                    }
                    Ok(other) => diagnostics.push(Diagnostic::new(
                        Code::InvalidTemplate,
                        path,
                        format!(
                            "a 'dependsOn' entry must be a String, got '{}'",
                            type_name(&other)
                        ),
                    )),
                    Err(d) => diagnostics.push(d),
                }
            }
            // Implicit dependencies: reference() and list*() of resources in this template.
            let mut targets: Vec<(&Expr, String)> = Vec::new();
            def.body.walk_exprs(&mut |expr, path| {
                expr.walk(&mut |e| {
                    if let ExprKind::Call { namespace: None, name, args, .. } = &e.kind {
                        let lower = name.to_ascii_lowercase();
                        if (lower == "reference" || lower.starts_with("list")) && !args.is_empty() {
                            targets.push((&args[0], path.to_string()));
                        }
                    }
                });
            });
            let mut references = Vec::new();
            for (arg, path) in targets {
                let Ok(Value::String(target)) = env.eval(arg) else { continue };
                let found = self.targets(&target);
                if target.starts_with('/') {
                    references.push(target.clone());
                } else {
                    references.extend(found.iter().map(|&i| self.resources[i].id.clone()));
                }
                if found.is_empty() && !target.starts_with('/') {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::InvalidTemplate,
                            path,
                            format!("the resource '{target}' is not defined in the template (reference() by name needs a resource of this template; use a resource ID otherwise)"),
                        )
                        .with_span(arg.span),
                    );
                }
                edges.extend(found);
            }
            // An extension resource after the resource it extends, a nested deployment after the resource group it
            // deploys into, when the template deploys those (ARM needs a dependsOn for these; nothing else is possible).
            if let Some(Ok(Value::String(scope))) =
                def.body.get("scope").map(|n| eval_node(n, &mut env, Code::InvalidTemplate))
            {
                if scope.starts_with('/') {
                    edges.extend(self.targets(scope.trim_end_matches('/')));
                }
            }
            if resource.is_nested_deployment() {
                if let Some(Ok(Value::String(group))) = def
                    .body
                    .get("resourceGroup")
                    .map(|n| eval_node(n, &mut env, Code::InvalidTemplate))
                {
                    let sub = match def
                        .body
                        .get("subscriptionId")
                        .map(|n| eval_node(n, &mut env, Code::InvalidTemplate))
                    {
                        Some(Ok(Value::String(sub))) => Some(sub),
                        _ => self.ctx.subscription_id.clone(),
                    };
                    if let Some(sub) = sub {
                        edges.extend(
                            self.targets(&format!("/subscriptions/{sub}/resourceGroups/{group}")),
                        );
                    }
                }
            }
            // A nested child after its parent.
            if let Some(parent) = def.parent {
                edges.extend(
                    self.resources
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.definition == parent)
                        .map(|(i, _)| i),
                );
            }
            // Serial copy loops: each batch after the previous one.
            if let (Some(copy), Some((_, position))) = (&def.copy, &resource.copy) {
                if copy.serial {
                    let batch = match &copy.batch_size {
                        None => 1,
                        Some(node) => match eval_node(node, &mut env, Code::InvalidTemplate) {
                            Ok(v) => v.as_i64().filter(|b| *b >= 1).unwrap_or(1),
                            Err(d) => {
                                diagnostics.push(d);
                                1
                            }
                        },
                    };
                    let my_batch = position / batch;
                    if my_batch > 0 {
                        edges.extend(self.resources.iter().enumerate().filter_map(|(i, r)| {
                            let (_, p) = r.copy.as_ref()?;
                            (r.definition == resource.definition && p / batch == my_batch - 1)
                                .then_some(i)
                        }));
                    }
                }
            }
            edges.retain(|&e| e != index);
            edges.sort_unstable();
            edges.dedup();
            references.sort_unstable();
            references.dedup();
            all_edges.push((edges, references));
        }
        if !diagnostics.is_empty() {
            return Err(Diagnostics(diagnostics));
        }
        for (resource, (edges, references)) in self.resources.iter_mut().zip(all_edges) {
            resource.depends_on = edges;
            resource.references = references;
        }
        Ok(())
    }

    fn order(&mut self) -> Result<(), Diagnostics> {
        let n = self.resources.len();
        // Skipped resources (false conditions, `existing`) are neither waited for nor deployed.
        let active: Vec<bool> = self.resources.iter().map(|r| r.deploy).collect();
        let mut remaining: Vec<usize> = vec![0; n];
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, r) in self.resources.iter().enumerate() {
            if !active[i] {
                continue;
            }
            for &d in &r.depends_on {
                if active[d] {
                    remaining[i] += 1;
                    dependants[d].push(i);
                }
            }
        }
        let mut wave: Vec<usize> = (0..n).filter(|&i| active[i] && remaining[i] == 0).collect();
        let mut placed = wave.len();
        while !wave.is_empty() {
            let mut next = Vec::new();
            for &i in &wave {
                for &j in &dependants[i] {
                    remaining[j] -= 1;
                    if remaining[j] == 0 {
                        next.push(j);
                    }
                }
            }
            next.sort_unstable();
            placed += next.len();
            self.waves.push(std::mem::replace(&mut wave, next));
        }
        let total = active.iter().filter(|a| **a).count();
        if placed == total {
            return Ok(());
        }
        // Some resources wait on each other: find one cycle among them to name it.
        let stuck: Vec<bool> = (0..n).map(|i| active[i] && remaining[i] > 0).collect();
        let cycle = find_cycle(&self.resources, &stuck);
        let names: Vec<String> = cycle.iter().map(|&i| self.resources[i].label()).collect();
        let first = cycle.first().copied().unwrap_or(0);
        Err(Diagnostics::one(Diagnostic::new(
            Code::InvalidTemplate,
            &self.resources[first].path,
            format!("circular dependency detected: {}", names.join(" -> ")),
        )))
    }

    /// Evaluates a resource's body for its PUT: `reader` answers `reference()`/`list*()` of resources already
    /// deployed. `name` and `type` are the planned full ones; `condition`, `copy`, `dependsOn` and child
    /// `resources` are left out.
    pub fn evaluate_resource(
        &self,
        index: usize,
        reader: &dyn ResourceReader,
    ) -> Result<Value, Diagnostics> {
        let resource = self.resources.get(index).ok_or_else(|| {
            Diagnostics::one(Diagnostic::new(
                Code::InvalidTemplate,
                "resources",
                format!("no planned resource {index}"),
            ))
        })?;
        let def = &self.template.resources[resource.definition];
        let resolver = PlanResolver {
            template: &self.template,
            variables: &self.variables,
            resources: &self.resources,
        };
        let counter = Cell::new(0);
        let mut env = self.env(&resolver, &resource.loops, Some(reader), Site::Resource, &counter);
        let mut body = eval_node(&def.body, &mut env, Code::DeploymentFailed).map_err(|d| {
            Diagnostics::one(d).locate(&self.template.source_map).redact(&self.secrets())
        })?;
        if let Value::Object(map) = &mut body {
            map.insert("name".into(), Value::String(resource.name.clone()));
            map.insert("type".into(), Value::String(resource.resource_type.clone()));
        }
        Ok(body)
    }

    /// Like [`Plan::evaluate_resource`], for what-if: values that need a resource the reader does not have yet
    /// are shown as their expression text instead of failing.
    pub fn evaluate_resource_what_if(
        &self,
        index: usize,
        reader: &dyn ResourceReader,
    ) -> Result<Value, Diagnostics> {
        let resource = self.resources.get(index).ok_or_else(|| {
            Diagnostics::one(Diagnostic::new(
                Code::InvalidTemplate,
                "resources",
                format!("no planned resource {index}"),
            ))
        })?;
        let def = &self.template.resources[resource.definition];
        let resolver = PlanResolver {
            template: &self.template,
            variables: &self.variables,
            resources: &self.resources,
        };
        let counter = Cell::new(0);
        let unknown = Cell::new(false);
        let mut env = self.env(&resolver, &resource.loops, Some(reader), Site::Resource, &counter);
        env.unknown = Some(&unknown);
        let mut body = eval_node(&def.body, &mut env, Code::DeploymentFailed).map_err(|d| {
            Diagnostics::one(d).locate(&self.template.source_map).redact(&self.secrets())
        })?;
        if let Value::Object(map) = &mut body {
            map.insert("name".into(), Value::String(resource.name.clone()));
            map.insert("type".into(), Value::String(resource.resource_type.clone()));
        }
        Ok(body)
    }

    /// What deploying this plan would change, resource by resource, nested deployments included: `current` holds
    /// the resources as they are (whole bodies by ID; it also answers `reference()`), `resource_group` gives the
    /// resource groups nested deployments target. Properties the template does not state are not compared.
    pub fn what_if(
        &self,
        current: &ResourceSnapshot,
        resource_group: &dyn Fn(&str) -> Option<ResourceGroupInfo>,
    ) -> Result<Vec<WhatIfEntry>, Diagnostics> {
        let mut out = Vec::new();
        // What later resources may read: a nested deployment that would change something has outputs nobody knows
        // before it runs, so references to it are shown as their expressions, not as its last run's outputs.
        let mut known = current.clone();
        for &index in self.waves.iter().flatten() {
            let resource = &self.resources[index];
            let after = self.evaluate_resource_what_if(index, &known)?;
            if resource.is_nested_deployment() {
                let nested = self.nested_deployment(index, &after)?;
                let group = match nested.target_resource_group(&self.ctx) {
                    Some(name) => Some(resource_group(name).ok_or_else(|| {
                        Diagnostics::one(Diagnostic::new(
                            Code::DeploymentFailed,
                            &resource.path,
                            format!("the resource group '{name}' of the nested deployment '{}' was not found", resource.name),
                        ))
                    })?),
                    None => None,
                };
                let child = Plan::new(
                    nested.template.clone(),
                    &nested.parameters,
                    nested.context(&self.ctx, group),
                )?;
                let changes = child.what_if(&known, resource_group)?;
                if changes
                    .iter()
                    .any(|c| c.change.change_type != crate::whatif::ChangeType::NoChange)
                {
                    known.remove(&resource.id);
                }
                out.extend(changes);
                continue;
            }
            let before = current.get(&resource.id).cloned();
            // Identity is the ID: name, type, API version and scope are not compared (a GET spells them differently).
            let comparable = |body: &Value| -> Value {
                let mut body = body.clone();
                if let Value::Object(map) = &mut body {
                    for key in ["id", "name", "type", "apiVersion", "scope"] {
                        map.remove(key);
                    }
                }
                body
            };
            let change = crate::whatif::what_if(
                before.as_ref().map(comparable).as_ref(),
                Some(&comparable(&after)),
                crate::whatif::DiffOptions { ignore_missing_in_after: true },
            );
            out.push(WhatIfEntry {
                resource_id: resource.id.clone(),
                change,
                before,
                after: Some(after),
            });
        }
        Ok(out)
    }

    /// The nested template of a `Microsoft.Resources/deployments` resource, from its evaluated body.
    pub fn nested_deployment(
        &self,
        index: usize,
        body: &Value,
    ) -> Result<NestedDeployment, Diagnostics> {
        let resource = &self.resources[index];
        let path = &resource.path;
        let bad = |message: String| {
            Diagnostics::one(Diagnostic::new(Code::InvalidTemplate, path, message))
        };
        if !resource.is_nested_deployment() {
            return Err(bad(format!("'{}' is not a nested deployment", resource.name)));
        }
        let properties = body
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("a nested deployment needs 'properties'".into()))?;
        let template_value =
            match (properties.get("template"), properties.get("templateLink")) {
                (Some(t), _) => t.clone(),
                (None, Some(_)) => return Err(bad(
                    "'templateLink' is not supported: embed the template in 'properties.template'"
                        .into(),
                )),
                (None, None) => {
                    return Err(bad("a nested deployment needs 'properties.template'".into()))
                }
            };
        let template = Template::from_value(template_value).map_err(|d| {
            Diagnostics(
                d.0.into_iter()
                    .map(|mut x| {
                        x.path = format!(
                            "{path}.properties.template{}{}",
                            if x.path.is_empty() { "" } else { "." },
                            x.path
                        );
                        x
                    })
                    .collect(),
            )
            .locate(&self.template.source_map)
        })?;
        let parameters = match properties.get("parameters") {
            None => ParameterValues::default(),
            Some(p) => ParameterValues::from_json(p)?,
        };
        let mode = match properties.get("mode").and_then(Value::as_str) {
            None => DeploymentMode::Incremental,
            Some(m) => DeploymentMode::parse(m).ok_or_else(|| {
                bad(format!("the mode '{m}' is neither 'Incremental' nor 'Complete'"))
            })?,
        };
        let inner_scope =
            self.template.resources[resource.definition].nested_inner_scope == Some(true);
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
        Ok(NestedDeployment {
            name: resource.name.clone(),
            template,
            parameters,
            mode,
            inner_scope,
            subscription_id: text("subscriptionId"),
            resource_group: text("resourceGroup"),
            location: text("location"),
        })
    }

    /// IDs of the resources whose `reference()`/`list*()` the outputs read (see [`PlannedResource::references`]).
    pub fn output_references(&self) -> Vec<String> {
        let resolver = PlanResolver {
            template: &self.template,
            variables: &self.variables,
            resources: &self.resources,
        };
        let counter = Cell::new(0);
        let mut env = self.env(&resolver, &[], None, Site::Planning, &counter);
        let mut args: Vec<&Expr> = Vec::new();
        for def in &self.template.outputs {
            match &def.value {
                OutputValue::Value(node) => reference_arguments(node, &mut args),
                OutputValue::Copy { count, input } => {
                    reference_arguments(count, &mut args);
                    reference_arguments(input, &mut args);
                }
            }
        }
        let mut out = Vec::new();
        for arg in args {
            let Ok(Value::String(target)) = env.eval(arg) else { continue };
            if target.starts_with('/') {
                out.push(target);
            } else {
                out.extend(self.targets(&target).into_iter().map(|i| self.resources[i].id.clone()));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Evaluates the outputs once every resource is deployed: `{"name": {"type": "String", "value": ...}}`.
    /// Outputs of secure types carry no value.
    pub fn evaluate_outputs(
        &self,
        reader: &dyn ResourceReader,
    ) -> Result<Map<String, Value>, Diagnostics> {
        let resolver = PlanResolver {
            template: &self.template,
            variables: &self.variables,
            resources: &self.resources,
        };
        let counter = Cell::new(0);
        let mut out = Map::new();
        let mut diagnostics = Vec::new();
        for def in &self.template.outputs {
            let mut env = self.env(&resolver, &[], Some(reader), Site::Output, &counter);
            if let Some(condition) = &def.condition {
                match eval_node(condition, &mut env, Code::DeploymentFailed) {
                    Ok(Value::Bool(true)) => {}
                    Ok(Value::Bool(false)) => continue,
                    Ok(other) => {
                        diagnostics.push(Diagnostic::new(
                            Code::InvalidTemplate,
                            child_path(&def.path, "condition"),
                            format!("the condition must be a Boolean, got '{}'", type_name(&other)),
                        ));
                        continue;
                    }
                    Err(d) => {
                        diagnostics.push(d);
                        continue;
                    }
                }
            }
            let value = match &def.value {
                OutputValue::Value(node) => eval_node(node, &mut env, Code::DeploymentFailed),
                OutputValue::Copy { count, input } => eval_count(
                    count,
                    &mut env,
                    &format!("{}.copy.count", def.path),
                    Code::DeploymentFailed,
                )
                .and_then(|count| {
                    (0..count)
                        .map(|index| {
                            let loops = [LoopFrame { name: None, index }];
                            let mut inner = env.nested(&loops);
                            eval_node(input, &mut inner, Code::DeploymentFailed)
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array)
                }),
            };
            match value {
                Ok(value) if def.output_type.accepts(&value) => {
                    let mut entry = Map::new();
                    entry.insert("type".into(), Value::String(def.output_type.display().into()));
                    if !def.output_type.is_secure() {
                        entry.insert("value".into(), value);
                    }
                    out.insert(def.name.clone(), Value::Object(entry));
                }
                Ok(value) => diagnostics.push(Diagnostic::new(
                    Code::DeploymentFailed,
                    &def.path,
                    format!(
                        "the output '{}' is declared '{}' but its value is of type '{}'",
                        def.name,
                        def.output_type.display(),
                        type_name(&value)
                    ),
                )),
                Err(d) => diagnostics.push(d),
            }
        }
        if diagnostics.is_empty() {
            Ok(out)
        } else {
            Err(Diagnostics(diagnostics).locate(&self.template.source_map).redact(&self.secrets()))
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for name in &self.secure_parameters {
            if let Some(value) = self.parameters.get(name) {
                collect_strings(value, &mut out);
            }
        }
        out
    }
}

/// The string values of the secure parameters given to a deployment.
fn secret_strings(template: &Template, given: &ParameterValues) -> Vec<String> {
    let mut out = Vec::new();
    for def in template.parameters.iter().filter(|p| p.param_type.is_secure()) {
        if let Some(value) = given
            .0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&def.name))
            .and_then(|(_, v)| v.get("value"))
        {
            collect_strings(value, &mut out);
        }
    }
    out
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// The first arguments of the `reference()` and `list*()` calls in a node.
fn reference_arguments<'a>(node: &'a Node, args: &mut Vec<&'a Expr>) {
    node.walk_exprs(&mut |expr, _| {
        expr.walk(&mut |e| {
            if let ExprKind::Call { namespace: None, name, args: call_args, .. } = &e.kind {
                let lower = name.to_ascii_lowercase();
                if (lower == "reference" || lower.starts_with("list")) && !call_args.is_empty() {
                    args.push(&call_args[0]);
                }
            }
        })
    });
}

/// A template's `$schema` names the level it deploys at; deploying it elsewhere is refused as ARM does.
fn check_schema_scope(template: &Template, ctx: &DeploymentContext) -> Result<(), Diagnostics> {
    if template.schema.is_none() {
        return Ok(());
    }
    let (wanted, actual) = match (template.schema_scope(), ctx.scope()) {
        (SchemaScope::ResourceGroup, TargetScope::ResourceGroup { .. })
        | (SchemaScope::Subscription, TargetScope::Subscription(_))
        | (SchemaScope::ManagementGroup, TargetScope::ManagementGroup(_))
        | (SchemaScope::Tenant, TargetScope::Tenant) => return Ok(()),
        (wanted, actual) => (wanted, actual),
    };
    let level = |scope: &TargetScope| match scope {
        TargetScope::ResourceGroup { .. } => "a resource group",
        TargetScope::Subscription(_) => "a subscription",
        TargetScope::ManagementGroup(_) => "a management group",
        TargetScope::Tenant => "a tenant",
    };
    let wanted = match wanted {
        SchemaScope::ResourceGroup => "resource group",
        SchemaScope::Subscription => "subscription",
        SchemaScope::ManagementGroup => "management group",
        SchemaScope::Tenant => "tenant",
    };
    Err(Diagnostics::one(Diagnostic::new(
        Code::InvalidTemplate,
        "$schema",
        format!(
            "the template's $schema is for {wanted} deployments, but this deployment targets {}",
            level(&actual)
        ),
    )))
}

fn find_cycle(resources: &[PlannedResource], stuck: &[bool]) -> Vec<usize> {
    // Walk dependencies from a stuck resource until one repeats: every stuck resource waits on a stuck one.
    let Some(start) = stuck.iter().position(|s| *s) else { return Vec::new() };
    let mut path = vec![start];
    let mut seen_at: HashMap<usize, usize> = HashMap::from([(start, 0)]);
    let mut current = start;
    loop {
        let Some(&next) = resources[current].depends_on.iter().find(|&&d| stuck[d]) else {
            return path;
        };
        if let Some(&at) = seen_at.get(&next) {
            let mut cycle = path[at..].to_vec();
            cycle.push(next);
            return cycle;
        }
        seen_at.insert(next, path.len());
        path.push(next);
        current = next;
    }
}

fn redacted(parameters: &Map<String, Value>, secure: &[String]) -> Map<String, Value> {
    parameters
        .iter()
        .filter(|(k, _)| !secure.contains(k))
        .map(|(k, v)| {
            let mut entry = Map::new();
            entry.insert("value".into(), v.clone());
            (k.clone(), Value::Object(entry))
        })
        .collect()
}

fn deployment_object(
    template: &Template,
    ctx: &DeploymentContext,
    parameters: &Map<String, Value>,
) -> Value {
    let mut template_info = Map::new();
    for key in ["$schema", "contentVersion", "metadata"] {
        if let Some(v) = template.raw.get(key) {
            template_info.insert(key.into(), v.clone());
        }
    }
    let mut properties = Map::new();
    properties.insert("template".into(), Value::Object(template_info));
    properties.insert("parameters".into(), Value::Object(parameters.clone()));
    properties.insert("mode".into(), Value::String(ctx.mode.as_str().into()));
    properties.insert("provisioningState".into(), Value::String("Accepted".into()));
    let mut object = Map::new();
    object.insert("name".into(), Value::String(ctx.deployment_name.clone()));
    object.insert("properties".into(), Value::Object(properties));
    if let Some(location) = &ctx.location {
        object.insert("location".into(), Value::String(location.clone()));
    }
    Value::Object(object)
}

fn bind_parameters(
    template: &Template,
    given: &ParameterValues,
    ctx: &DeploymentContext,
    deployment: &Value,
    guid_counter: &Cell<u64>,
) -> Result<(Map<String, Value>, Vec<String>), Diagnostics> {
    let mut diagnostics = Vec::new();
    let unknown: Vec<&String> = given
        .0
        .keys()
        .filter(|k| !template.parameters.iter().any(|p| p.name.eq_ignore_ascii_case(k)))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        diagnostics.push(Diagnostic::new(
            Code::InvalidParameter,
            "parameters",
            format!(
                "the template parameters '{}' are not valid; they are not present in the template (it declares: '{}')",
                names.join(", "),
                template.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut bound = Map::new();
    let mut secure = Vec::new();
    struct NoVariables;
    impl Resolve for NoVariables {
        fn variable(&self, _: &str) -> Option<Result<Value, String>> {
            Some(Err("variables() can't be used in parameter default values".into()))
        }
        fn resource(&self, _: &str) -> Option<ResolvedResource> {
            None
        }
        fn api_version_of(&self, _: &str) -> Option<String> {
            None
        }
    }
    for def in &template.parameters {
        if def.param_type.is_secure() {
            secure.push(def.name.clone());
        }
        let supplied =
            given.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(&def.name)).map(|(_, v)| v);
        let value = match supplied {
            Some(entry) if entry.get("reference").is_some() => {
                diagnostics.push(Diagnostic::new(
                    Code::InvalidParameter,
                    &def.path,
                    format!("the parameter '{}' is a Key Vault reference, which this engine does not resolve; pass a value", def.name),
                ));
                continue;
            }
            Some(entry) => entry.get("value").cloned().unwrap_or(Value::Null),
            None => match &def.default {
                Some(default) => {
                    let mut env = Env {
                        ctx,
                        parameters: &bound,
                        resolve: &NoVariables,
                        loops: &[],
                        reader: None,
                        site: Site::ParameterDefault,
                        deployment,
                        functions: &template.functions,
                        guid_counter,
                        lambda_variables: Vec::new(),
                        unknown: None,
                    };
                    match eval_node(default, &mut env, Code::InvalidTemplate) {
                        Ok(v) => v,
                        Err(d) => {
                            diagnostics.push(d);
                            continue;
                        }
                    }
                }
                None if def.nullable => Value::Null,
                None => {
                    diagnostics.push(Diagnostic::new(
                        Code::InvalidParameter,
                        &def.path,
                        format!(
                            "the value for the template parameter '{}' is not provided",
                            def.name
                        ),
                    ));
                    continue;
                }
            },
        };
        if let Err(message) = check_parameter(def, &value) {
            diagnostics.push(Diagnostic::new(Code::InvalidParameter, &def.path, message));
            continue;
        }
        bound.insert(def.name.clone(), value);
    }
    if diagnostics.is_empty() {
        Ok((bound, secure))
    } else {
        Err(Diagnostics(diagnostics))
    }
}

fn check_parameter(def: &crate::template::ParameterDef, value: &Value) -> Result<(), String> {
    let name = &def.name;
    if value.is_null() && def.nullable {
        return Ok(());
    }
    if !def.param_type.accepts(value) {
        let shown = if def.param_type.is_secure() {
            String::new()
        } else {
            format!(" '{}'", crate::eval::to_text(value))
        };
        return Err(format!(
            "the template parameter '{name}' has type '{}' but the value{shown} is of type '{}'",
            def.param_type.display(),
            type_name(value)
        ));
    }
    if let Some(allowed) = &def.allowed_values {
        // An array parameter's values must each be allowed; other values must be allowed themselves.
        let ok = match (def.param_type, value) {
            (ParamType::Array, Value::Array(items)) => {
                items.iter().all(|i| allowed.iter().any(|a| crate::eval::values_equal(a, i)))
            }
            _ => allowed.iter().any(|a| crate::eval::values_equal(a, value)),
        };
        if !ok {
            if def.param_type.is_secure() {
                return Err(format!(
                    "the provided value for the secure template parameter '{name}' is not one of its allowed values"
                ));
            }
            let list: Vec<String> = allowed.iter().map(crate::eval::to_text).collect();
            return Err(format!(
                "the provided value for the template parameter '{name}' is not valid: '{}' is not part of the allowed values '{}'",
                crate::eval::to_text(value),
                list.join(", ")
            ));
        }
    }
    if let Some(n) = value.as_i64() {
        if let Some(min) = def.min_value.filter(|min| n < *min) {
            return Err(format!(
                "the value {n} of the template parameter '{name}' is below the minimum value {min}"
            ));
        }
        if let Some(max) = def.max_value.filter(|max| n > *max) {
            return Err(format!(
                "the value {n} of the template parameter '{name}' is above the maximum value {max}"
            ));
        }
    }
    let length = match value {
        Value::String(s) => Some(s.encode_utf16().count() as i64),
        Value::Array(items) => Some(items.len() as i64),
        _ => None,
    };
    if let Some(length) = length {
        if let Some(min) = def.min_length.filter(|min| length < *min) {
            return Err(format!("the template parameter '{name}' has length {length}, below the minimum length {min}"));
        }
        if let Some(max) = def.max_length.filter(|max| length > *max) {
            return Err(format!("the template parameter '{name}' has length {length}, above the maximum length {max}"));
        }
    }
    Ok(())
}
