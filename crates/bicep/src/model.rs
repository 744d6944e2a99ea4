//! The semantic model of one file: its declarations bound to symbols, resources with their full
//! types, parents and scopes, modules with the interface of the file they call. `check` walks it and
//! reports Bicep's semantic diagnostics with the real compiler's codes and words.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diagnostics::Diagnostic;
use crate::functions;

pub const NESTED_DEPLOYMENT_TYPE: &str = "Microsoft.Resources/deployments";
pub const NESTED_DEPLOYMENT_API_VERSION: &str = "2025-04-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetScope {
    ResourceGroup,
    Subscription,
    ManagementGroup,
    Tenant,
}

impl TargetScope {
    pub fn schema(self) -> &'static str {
        match self {
            TargetScope::ResourceGroup => "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            TargetScope::Subscription => "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
            TargetScope::ManagementGroup => "https://schema.management.azure.com/schemas/2019-08-01/managementGroupDeploymentTemplate.json#",
            TargetScope::Tenant => "https://schema.management.azure.com/schemas/2019-08-01/tenantDeploymentTemplate.json#",
        }
    }
}

/// What another file offers to a module declaration that calls it.
#[derive(Debug, Clone)]
pub struct ModuleInterface {
    /// `(name, required)` in declaration order.
    pub params: Vec<(String, bool)>,
    pub outputs: Vec<String>,
    pub target_scope: TargetScope,
    /// The compiled template; `None` when the file has errors.
    pub template: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbol {
    Param(usize),
    Var(usize),
    Resource(usize),
    Module(usize),
}

/// Where a resource or module is deployed, as written in its `scope:` property.
#[derive(Debug, Clone)]
pub enum ScopeRef<'a> {
    /// The file's own target scope.
    Default,
    /// An extension resource on another resource (`scope: acr`).
    Resource(usize),
    ResourceGroup {
        subscription: Option<&'a Expr>,
        name: Option<&'a Expr>,
    },
    Subscription {
        id: Option<&'a Expr>,
    },
    ManagementGroup {
        name: Option<&'a Expr>,
    },
    Tenant,
    /// Anything else (already reported).
    Invalid,
}

#[derive(Debug, Clone)]
pub struct ResourceInfo<'a> {
    pub decl: &'a Decl,
    pub name: &'a Ident,
    /// `parent::child` for nested resources (the dependency sort key and copy name).
    pub qualified_name: String,
    pub full_type: String,
    pub api_version: String,
    pub existing: bool,
    pub body: &'a Expr,
    pub object: Option<&'a Expr>,
    pub condition: Option<&'a Expr>,
    pub for_loop: Option<&'a ForExpr>,
    pub parent: Option<usize>,
    /// Declared inside another resource's body.
    pub nested_in: Option<usize>,
    pub scope: ScopeRef<'a>,
    pub name_expr: Option<&'a Expr>,
}

#[derive(Debug, Clone)]
pub struct ModuleInfo<'a> {
    pub decl: &'a Decl,
    pub name: &'a Ident,
    pub body: &'a Expr,
    pub object: Option<&'a Expr>,
    pub condition: Option<&'a Expr>,
    pub for_loop: Option<&'a ForExpr>,
    pub scope: ScopeRef<'a>,
    pub interface: Option<ModuleInterface>,
}

impl ModuleInfo<'_> {
    pub fn name_expr(&self) -> Option<&Expr> {
        self.object.and_then(|o| o.property("name")).map(|p| &p.value)
    }
}

pub struct FileModel<'a> {
    pub program: &'a Program,
    pub target_scope: TargetScope,
    pub params: Vec<&'a Decl>,
    pub vars: Vec<&'a Decl>,
    pub outputs: Vec<&'a Decl>,
    pub metadata: Vec<&'a Decl>,
    pub resources: Vec<ResourceInfo<'a>>,
    pub modules: Vec<ModuleInfo<'a>>,
    pub symbols: HashMap<String, Symbol>,
    /// Nested resources by (parent, name).
    pub children: HashMap<(usize, String), usize>,
    pub diagnostics: Vec<Diagnostic>,
    /// Which symbols are referenced anywhere (for the unused-symbol linter rules).
    pub referenced: HashSet<Symbol>,
}

pub fn decl_value(decl: &Decl) -> Option<&Expr> {
    match &decl.kind {
        DeclKind::Var { value, .. } | DeclKind::Output { value, .. } => Some(value),
        DeclKind::Param { default, .. } => default.as_ref(),
        _ => None,
    }
}

/// Splits a resource body into (condition, loop, object).
pub fn unwrap_body(body: &Expr) -> (Option<&Expr>, Option<&ForExpr>, Option<&Expr>) {
    let mut condition = None;
    let mut for_loop = None;
    let mut current = body;
    if let ExprKind::For(f) = &current.kind {
        for_loop = Some(&**f);
        current = &f.body;
    }
    if let ExprKind::If { condition: c, body } = &current.kind {
        condition = Some(&**c);
        current = body;
    }
    let object = matches!(current.kind, ExprKind::Object(_)).then_some(current);
    (condition, for_loop, object)
}

impl<'a> FileModel<'a> {
    /// Binds the program; `interfaces` holds, per module declaration (by its symbol name), what the
    /// called file offers (`None` when it could not be loaded: already reported).
    pub fn build(
        program: &'a Program,
        interfaces: &HashMap<String, Option<ModuleInterface>>,
    ) -> Self {
        let mut model = FileModel {
            program,
            target_scope: TargetScope::ResourceGroup,
            params: Vec::new(),
            vars: Vec::new(),
            outputs: Vec::new(),
            metadata: Vec::new(),
            resources: Vec::new(),
            modules: Vec::new(),
            symbols: HashMap::new(),
            children: HashMap::new(),
            diagnostics: Vec::new(),
            referenced: HashSet::new(),
        };
        let mut target_scope_seen = false;
        let mut output_names = HashSet::new();
        for decl in &program.decls {
            match &decl.kind {
                DeclKind::TargetScope { value } => {
                    if target_scope_seen {
                        model.diagnostics.push(Diagnostic::error(
                            "BCP112",
                            "The \"targetScope\" cannot be declared multiple times in one file.",
                            decl.span,
                        ));
                    }
                    target_scope_seen = true;
                    model.target_scope = match value.string_literal() {
                        Some("resourceGroup") => TargetScope::ResourceGroup,
                        Some("subscription") => TargetScope::Subscription,
                        Some("managementGroup") => TargetScope::ManagementGroup,
                        Some("tenant") => TargetScope::Tenant,
                        _ => {
                            model.diagnostics.push(Diagnostic::error(
                                "BCP033",
                                format!(
                                    "Expected a value of type \"'managementGroup' | 'resourceGroup' | 'subscription' | 'tenant'\" but the provided value is of type \"{}\".",
                                    literal_type_name(value).unwrap_or_else(|| "string".into())
                                ),
                                value.span,
                            ));
                            TargetScope::ResourceGroup
                        }
                    };
                }
                DeclKind::Metadata { .. } => model.metadata.push(decl),
                DeclKind::Param { name, .. } => {
                    let index = model.params.len();
                    model.params.push(decl);
                    model.declare(name, Symbol::Param(index));
                }
                DeclKind::Var { name, .. } => {
                    let index = model.vars.len();
                    model.vars.push(decl);
                    model.declare(name, Symbol::Var(index));
                }
                DeclKind::Output { name, .. } => {
                    if !output_names.insert(name.name.clone()) {
                        model.diagnostics.push(Diagnostic::error(
                            "BCP145",
                            format!("Output \"{}\" is declared multiple times. Remove or rename the duplicates.", name.name),
                            name.span,
                        ));
                    }
                    model.outputs.push(decl);
                }
                DeclKind::Resource { .. } => {
                    model.add_resource(decl, None);
                }
                DeclKind::Module { name, body, .. } => {
                    let (condition, for_loop, object) = unwrap_body(body);
                    let index = model.modules.len();
                    let interface = interfaces.get(&name.name).cloned().flatten();
                    model.modules.push(ModuleInfo {
                        decl,
                        name,
                        body,
                        object,
                        condition,
                        for_loop,
                        scope: ScopeRef::Default,
                        interface,
                    });
                    model.declare(name, Symbol::Module(index));
                }
                DeclKind::Using { .. } | DeclKind::Error => {}
            }
        }
        model.resolve_resources();
        model
    }

    fn declare(&mut self, name: &Ident, symbol: Symbol) {
        if self.symbols.contains_key(&name.name) {
            self.diagnostics.push(Diagnostic::error(
                "BCP028",
                format!("Identifier \"{}\" is declared multiple times. Remove or rename the duplicates.", name.name),
                name.span,
            ));
        } else {
            self.symbols.insert(name.name.clone(), symbol);
        }
    }

    fn add_resource(&mut self, decl: &'a Decl, nested_in: Option<usize>) {
        let DeclKind::Resource { name, type_string, existing, body } = &decl.kind else { return };
        let (condition, for_loop, object) = unwrap_body(body);
        let (mut full_type, mut api_version) = (String::new(), String::new());
        match type_string.string_literal() {
            Some(text) => match text.split_once('@') {
                Some((ty, api)) if !ty.is_empty() && !api.is_empty() => {
                    full_type = ty.to_owned();
                    api_version = api.to_owned();
                }
                None if nested_in.is_some() && !text.is_empty() && !text.contains('/') => full_type = text.to_owned(),
                _ => self.diagnostics.push(Diagnostic::error(
                    "BCP029",
                    "The resource type is not valid. Specify a valid resource type of format \"<type-name>@<apiVersion>\".",
                    type_string.span,
                )),
            },
            None => self.diagnostics.push(Diagnostic::error("BCP047", "String interpolation is unsupported for specifying the resource type.", type_string.span)),
        }
        let index = self.resources.len();
        let qualified_name = match nested_in {
            Some(parent) => format!("{}::{}", self.resources[parent].qualified_name, name.name),
            None => name.name.clone(),
        };
        if let Some(parent) = nested_in {
            // A nested type is relative to its parent's unless it names a provider namespace.
            if !full_type.is_empty() && !full_type.contains('/') {
                full_type = format!("{}/{}", self.resources[parent].full_type, full_type);
            }
            if api_version.is_empty() {
                api_version = self.resources[parent].api_version.clone();
            }
        }
        let name_expr = object.and_then(|o| o.property("name")).map(|p| &p.value);
        self.resources.push(ResourceInfo {
            decl,
            name,
            qualified_name,
            full_type,
            api_version,
            existing: *existing,
            body,
            object,
            condition,
            for_loop,
            parent: nested_in,
            nested_in,
            scope: ScopeRef::Default,
            name_expr,
        });
        match nested_in {
            None => self.declare(name, Symbol::Resource(index)),
            Some(parent) => {
                if self.children.insert((parent, name.name.clone()), index).is_some() {
                    self.diagnostics.push(Diagnostic::error(
                        "BCP028",
                        format!("Identifier \"{}\" is declared multiple times. Remove or rename the duplicates.", name.name),
                        name.span,
                    ));
                }
            }
        }
        if let Some(object) = object {
            for member in object.object_members().unwrap_or_default() {
                if let ObjectMember::Resource(child) = member {
                    self.add_resource(child, Some(index));
                }
            }
        }
    }

    /// `parent:` and `scope:` need every resource symbol declared first.
    fn resolve_resources(&mut self) {
        for index in 0..self.resources.len() {
            let Some(object) = self.resources[index].object else { continue };
            if let Some(parent) = object.property("parent") {
                match self.resource_symbol(&parent.value, self.resources[index].nested_in) {
                    Some(parent_index) => {
                        self.resources[index].parent = Some(parent_index);
                        let parent_type = self.resources[parent_index].full_type.clone();
                        let own = self.resources[index].full_type.clone();
                        if !own.is_empty() && !parent_type.is_empty() && !own.to_lowercase().starts_with(&format!("{}/", parent_type.to_lowercase())) {
                            self.diagnostics.push(Diagnostic::error(
                                "BCP171",
                                format!("Resource type \"{own}\" is not a valid child resource of parent \"{parent_type}\"."),
                                self.resources[index].decl.span,
                            ));
                        }
                    }
                    None => self.diagnostics.push(Diagnostic::error(
                        "BCP036",
                        format!("The property \"parent\" expected a value of type \"resource\" but the provided value is of type \"{}\".", self.type_name(&parent.value)),
                        parent.value.span,
                    )),
                }
            }
            if let Some(scope) = object.property("scope") {
                let scope_ref = self.scope_ref(&scope.value, self.resources[index].nested_in);
                if matches!(scope_ref, ScopeRef::Invalid) {
                    self.diagnostics.push(Diagnostic::error(
                        "BCP036",
                        format!(
                            "The property \"scope\" expected a value of type \"resource | tenant\" but the provided value is of type \"{}\".",
                            self.type_name(&scope.value)
                        ),
                        scope.value.span,
                    ));
                }
                self.resources[index].scope = scope_ref;
            }
        }
        for index in 0..self.modules.len() {
            let Some(object) = self.modules[index].object else { continue };
            if let Some(scope) = object.property("scope") {
                let scope_ref = self.scope_ref(&scope.value, None);
                let valid = match scope_ref {
                    ScopeRef::Resource(r) => self.resources[r]
                        .full_type
                        .eq_ignore_ascii_case("Microsoft.Resources/resourceGroups"),
                    ScopeRef::Invalid => false,
                    _ => true,
                };
                if !valid {
                    let target = match self.target_scope {
                        TargetScope::ResourceGroup => ("BCP116", "resourceGroup", "current resource group: resourceGroup(), named resource group in same subscription: resourceGroup(<name>), named resource group in a different subscription: resourceGroup(<subId>, <name>), current subscription: subscription(), named subscription: subscription(<subId>) or tenant: tenant()"),
                        TargetScope::Subscription => ("BCP115", "subscription", "current subscription: subscription(), named subscription: subscription(<subId>), named resource group in same subscription: resourceGroup(<name>), named resource group in different subscription: resourceGroup(<subId>, <name>), or tenant: tenant()"),
                        TargetScope::ManagementGroup => ("BCP114", "managementGroup", "current management group: managementGroup(), named management group: managementGroup(<name>), named subscription: subscription(<subId>), tenant: tenant(), or named resource group in a named subscription: resourceGroup(<subId>, <name>)"),
                        TargetScope::Tenant => ("BCP113", "tenant", "tenant: tenant(), named management group: managementGroup(<name>), named subscription: subscription(<subId>), or named resource group in a named subscription: resourceGroup(<subId>, <name>)"),
                    };
                    let message = format!(
                        "Unsupported scope for module deployment in a \"{}\" target scope. Omit this property to inherit the current scope, or specify a valid scope. Permissible scopes include {}.",
                        target.1, target.2
                    );
                    self.diagnostics.push(Diagnostic::error(target.0, message, scope.value.span));
                }
                self.modules[index].scope = scope_ref;
            }
        }
    }

    /// The resource a symbol expression names (`acr`, `vnet::subnet`), seen from inside `context`.
    pub fn resource_symbol(&self, expr: &Expr, context: Option<usize>) -> Option<usize> {
        match &expr.unparen().kind {
            ExprKind::Variable(ident) => self.lookup_resource(&ident.name, context),
            ExprKind::ResourceAccess { base, name } => {
                let parent = self.resource_symbol(base, context)?;
                self.children.get(&(parent, name.name.clone())).copied()
            }
            _ => None,
        }
    }

    /// A resource name visible from inside resource `context` (nested siblings and ancestors first).
    pub fn lookup_resource(&self, name: &str, mut context: Option<usize>) -> Option<usize> {
        while let Some(c) = context {
            if let Some(&child) = self.children.get(&(c, name.to_owned())) {
                return Some(child);
            }
            if self.resources[c].name.name == name && self.resources[c].nested_in.is_some() {
                return Some(c);
            }
            context = self.resources[c].nested_in;
        }
        match self.symbols.get(name) {
            Some(Symbol::Resource(index)) => Some(*index),
            _ => None,
        }
    }

    fn scope_ref(&self, expr: &'a Expr, context: Option<usize>) -> ScopeRef<'a> {
        if let Some(resource) = self.resource_symbol(expr, context) {
            return ScopeRef::Resource(resource);
        }
        let (name, args) = match &expr.unparen().kind {
            ExprKind::Call { name, args } => (name.name.as_str(), args),
            ExprKind::MethodCall { base, name, args } if matches!(&base.kind, ExprKind::Variable(ns) if ns.name == "az") => {
                (name.name.as_str(), args)
            }
            _ => return ScopeRef::Invalid,
        };
        match (name, args.len()) {
            ("resourceGroup", 0) => ScopeRef::ResourceGroup { subscription: None, name: None },
            ("resourceGroup", 1) => {
                ScopeRef::ResourceGroup { subscription: None, name: Some(&args[0]) }
            }
            ("resourceGroup", 2) => {
                ScopeRef::ResourceGroup { subscription: Some(&args[0]), name: Some(&args[1]) }
            }
            ("subscription", 0) => ScopeRef::Subscription { id: None },
            ("subscription", 1) => ScopeRef::Subscription { id: Some(&args[0]) },
            ("managementGroup", 0) => ScopeRef::ManagementGroup { name: None },
            ("managementGroup", 1) => ScopeRef::ManagementGroup { name: Some(&args[0]) },
            ("tenant", 0) => ScopeRef::Tenant,
            _ => ScopeRef::Invalid,
        }
    }

    pub fn param_type(&self, index: usize) -> Option<&'a str> {
        match &self.params[index].kind {
            DeclKind::Param { ty: Some(ty), .. } => ty.name(),
            _ => None,
        }
    }

    /// The type name Bicep would print for an expression, as far as this compiler infers types.
    pub fn type_name(&self, expr: &Expr) -> String {
        self.infer(expr, 0).unwrap_or_else(|| "any".to_owned())
    }

    fn infer(&self, expr: &Expr, depth: u32) -> Option<String> {
        if depth > 32 {
            return None;
        }
        if let Some(literal) = literal_type_name(expr) {
            return Some(literal);
        }
        Some(match &expr.unparen().kind {
            ExprKind::String(_) => "string".into(),
            ExprKind::Object(_) => "object".into(),
            ExprKind::Array(_) | ExprKind::For(_) => "array".into(),
            ExprKind::Variable(ident) => match self.symbols.get(&ident.name)? {
                Symbol::Param(i) => self.param_type(*i)?.to_owned(),
                Symbol::Var(i) => self.infer(decl_value(self.vars[*i])?, depth + 1)?,
                Symbol::Resource(_) => "resource".into(),
                Symbol::Module(_) => "module".into(),
            },
            ExprKind::Call { name, .. } => {
                functions::lookup(&name.name).map(|f| f.result).filter(|r| *r != "any")?.to_owned()
            }
            ExprKind::MethodCall { name, .. } => {
                functions::lookup(&name.name).map(|f| f.result).filter(|r| *r != "any")?.to_owned()
            }
            ExprKind::Binary { op, .. } => match op {
                BinaryOp::Add
                | BinaryOp::Subtract
                | BinaryOp::Multiply
                | BinaryOp::Divide
                | BinaryOp::Modulo => "int".into(),
                BinaryOp::Coalesce => return None,
                _ => "bool".into(),
            },
            ExprKind::Unary { op: UnaryOp::Not, .. } => "bool".into(),
            ExprKind::Unary { op: UnaryOp::Minus, .. } => "int".into(),
            _ => return None,
        })
    }
}

/// Bicep's literal types: `'abc'`, `5`, `true`, `null`.
pub fn literal_type_name(expr: &Expr) -> Option<String> {
    match &expr.unparen().kind {
        ExprKind::String(s) => {
            s.literal().map(|v| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        }
        ExprKind::Int(v) => Some(v.to_string()),
        ExprKind::Unary { op: UnaryOp::Minus, expr } => match expr.kind {
            ExprKind::Int(v) => Some((-v).to_string()),
            _ => None,
        },
        ExprKind::Bool(b) => Some(b.to_string()),
        ExprKind::Null => Some("null".into()),
        _ => None,
    }
}

/// The closest name for a "did you mean" hint, as Bicep's spell checker would offer.
pub fn suggestion<'n>(
    name: &str,
    candidates: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    let lower = name.to_lowercase();
    let max_distance = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            levenshtein(&lower, &candidate.to_lowercase())
        };
        if distance <= max_distance && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push((previous[j] + cost).min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Facts about the properties of resource types of this domain, for BCP037/BCP073.
pub struct PropertiesType {
    pub type_name: &'static str,
    pub writable: &'static [&'static str],
    pub read_only: &'static [&'static str],
}

/// The `properties` object type of a resource type, when berth knows it.
pub fn properties_type(full_type: &str) -> Option<PropertiesType> {
    if full_type.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments") {
        return Some(PropertiesType {
            type_name: "RoleAssignmentProperties",
            writable: &[
                "canDelegate",
                "condition",
                "conditionVersion",
                "delegatedManagedIdentityResourceId",
                "description",
                "principalId",
                "principalType",
                "roleDefinitionId",
            ],
            read_only: &["createdBy", "createdOn", "scope", "updatedBy", "updatedOn"],
        });
    }
    None
}
