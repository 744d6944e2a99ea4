//! ARM JSON emission, following the real compiler's non-symbolic code generation
//! (bicep `Emit/TemplateWriter.cs`, `ExpressionConverter.cs`): literals stay JSON, everything else
//! becomes a `[...]` template expression; resources get inferred `dependsOn`; modules become nested
//! `Microsoft.Resources/deployments` with the called template inlined.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::ast::*;
use crate::model::*;

/// The compiler version reported in `_generator` and by `--version`.
pub const BICEP_VERSION: &str = "0.37.4";

// ---- ARM expressions ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    Str(String),
    Int(i64),
    Call { name: String, args: Vec<Arm>, access: Vec<Access> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Prop(String),
    Index(Arm),
}

fn call(name: &str, args: Vec<Arm>) -> Arm {
    Arm::Call { name: name.to_owned(), args, access: Vec::new() }
}

fn s(text: &str) -> Arm {
    Arm::Str(text.to_owned())
}

impl Arm {
    /// Appends property/index access; literals are wrapped (`string('x')`) because ARM cannot index them.
    fn with_access(self, access: Access) -> Arm {
        match self {
            Arm::Call { name, args, access: mut list } => {
                list.push(access);
                Arm::Call { name, args, access: list }
            }
            Arm::Str(_) => call("string", vec![self]).with_access(access),
            Arm::Int(_) => call("int", vec![self]).with_access(access),
        }
    }

    fn prop(self, name: &str) -> Arm {
        self.with_access(Access::Prop(name.to_owned()))
    }

    pub fn write(&self, out: &mut String) {
        match self {
            Arm::Str(text) => {
                out.push('\'');
                out.push_str(&text.replace('\'', "''"));
                out.push('\'');
            }
            Arm::Int(value) => {
                let _ = write!(out, "{value}");
            }
            Arm::Call { name, args, access } => {
                out.push_str(name);
                out.push('(');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    arg.write(out);
                }
                out.push(')');
                for item in access {
                    match item {
                        Access::Prop(p) if is_plain_property(p) => {
                            out.push('.');
                            out.push_str(p);
                        }
                        Access::Prop(p) => {
                            out.push('[');
                            Arm::Str(p.clone()).write(out);
                            out.push(']');
                        }
                        Access::Index(index) => {
                            out.push('[');
                            index.write(out);
                            out.push(']');
                        }
                    }
                }
            }
        }
    }

    pub fn to_template_string(&self) -> String {
        let mut out = String::from("[");
        self.write(&mut out);
        out.push(']');
        out
    }
}

fn is_plain_property(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

// ---- lowered values -----------------------------------------------------------------------------

/// A Bicep value lowered for ARM: JSON where it is a literal, an ARM expression otherwise.
#[derive(Debug, Clone)]
pub enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    Array(Vec<Val>),
    Object(Vec<(Val, Val)>, Vec<CopyLoop>),
    Expr(Arm),
}

#[derive(Debug, Clone)]
pub struct CopyLoop {
    pub name: String,
    pub count: Arm,
    pub input: Box<Val>,
}

impl Val {
    fn into_arm(self) -> Arm {
        match self {
            Val::Str(text) => Arm::Str(text),
            Val::Int(v) if v > i64::from(i32::MAX) || v < i64::from(i32::MIN) => {
                call("json", vec![Arm::Str(v.to_string())])
            }
            Val::Int(v) => Arm::Int(v),
            Val::Bool(b) => call(if b { "true" } else { "false" }, Vec::new()),
            Val::Null => call("null", Vec::new()),
            Val::Array(items) => {
                call("createArray", items.into_iter().map(Val::into_arm).collect())
            }
            Val::Object(props, _) => call(
                "createObject",
                props.into_iter().flat_map(|(k, v)| [k.into_arm(), v.into_arm()]).collect(),
            ),
            Val::Expr(arm) => arm,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Val::Str(text) => Value::String(escape_literal(text)),
            Val::Int(v) => Value::from(*v),
            Val::Bool(b) => Value::Bool(*b),
            Val::Null => Value::Null,
            Val::Array(items) => Value::Array(items.iter().map(Val::to_json).collect()),
            Val::Object(props, copies) => {
                let mut map = Map::new();
                for (key, value) in props {
                    map.insert(key_text(key), value.to_json());
                }
                if !copies.is_empty() {
                    map.insert(
                        "copy".into(),
                        Value::Array(
                            copies
                                .iter()
                                .map(|c| copy_json(Some(&c.name), &c.count, Some(&c.input)))
                                .collect(),
                        ),
                    );
                }
                Value::Object(map)
            }
            Val::Expr(arm) => Value::String(arm.to_template_string()),
        }
    }
}

fn key_text(key: &Val) -> String {
    match key {
        Val::Str(text) => text.clone(),
        other => match other.to_json() {
            Value::String(s) => s,
            v => v.to_string(),
        },
    }
}

/// A literal that looks like an expression gets ARM's `[[` escape.
fn escape_literal(text: &str) -> String {
    if text.starts_with('[') && text.ends_with(']') {
        format!("[{text}")
    } else {
        text.to_owned()
    }
}

fn copy_json(name: Option<&str>, count: &Arm, input: Option<&Val>) -> Value {
    let mut map = Map::new();
    if let Some(name) = name {
        map.insert("name".into(), Value::String(name.to_owned()));
    }
    map.insert("count".into(), Value::String(count.to_template_string()));
    if let Some(input) = input {
        map.insert("input".into(), input.to_json());
    }
    Value::Object(map)
}

// ---- the emitter --------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Local {
    /// A loop's item: `<array>[copyIndex(name)]`, or a fixed replacement.
    Item(Arm),
    Index(Arm),
    Lambda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Target {
    Resource(usize),
    Module(usize),
}

pub struct Emitter<'m, 'a> {
    model: &'m FileModel<'a>,
    locals: Vec<(String, Local)>,
    inline_vars: HashMap<usize, bool>,
    resource_context: Option<usize>,
}

pub fn emit_template(model: &FileModel<'_>) -> Value {
    let mut emitter =
        Emitter { model, locals: Vec::new(), inline_vars: HashMap::new(), resource_context: None };
    emitter.template()
}

impl<'a> Emitter<'_, 'a> {
    fn template(&mut self) -> Value {
        let model = self.model;
        let mut root = Map::new();
        root.insert("$schema".into(), model.target_scope.schema().into());
        root.insert("contentVersion".into(), "1.0.0.0".into());
        let mut metadata = Map::new();
        let mut generator = Map::new();
        generator.insert("name".into(), "bicep".into());
        generator.insert("version".into(), BICEP_VERSION.into());
        metadata.insert("_generator".into(), Value::Object(generator));
        for decl in &model.metadata {
            if let DeclKind::Metadata { name, value } = &decl.kind {
                let value = self.lower(value).to_json();
                metadata.insert(name.name.clone(), value);
            }
        }
        root.insert("metadata".into(), Value::Object(metadata));

        if !model.params.is_empty() {
            let mut params = Map::new();
            for decl in &model.params {
                if let Some(name) = decl.name() {
                    let value = self.param(decl);
                    params.insert(name.name.clone(), value);
                }
            }
            root.insert("parameters".into(), Value::Object(params));
        }

        let mut variables = Map::new();
        let mut copies = Vec::new();
        for (i, decl) in model.vars.iter().enumerate() {
            if self.var_is_inlined(i) {
                continue;
            }
            let (Some(name), Some(value)) = (decl.name(), decl_value(decl)) else { continue };
            match &value.kind {
                ExprKind::For(f) => {
                    copies.push(self.copy_loop(f, Some(&name.name), Some(&name.name)))
                }
                _ => {
                    let value = self.lower(value).to_json();
                    variables.insert(name.name.clone(), value);
                }
            }
        }
        if !copies.is_empty() || !variables.is_empty() {
            let mut section = Map::new();
            if !copies.is_empty() {
                section.insert(
                    "copy".into(),
                    Value::Array(
                        copies
                            .iter()
                            .map(|c| copy_json(Some(&c.name), &c.count, Some(&c.input)))
                            .collect(),
                    ),
                );
            }
            section.extend(variables);
            root.insert("variables".into(), Value::Object(section));
        }

        let mut resources = Vec::new();
        for index in 0..model.resources.len() {
            if !model.resources[index].existing {
                resources.push(self.resource(index));
            }
        }
        for index in 0..model.modules.len() {
            resources.push(self.module(index));
        }
        root.insert("resources".into(), Value::Array(resources));

        if !model.outputs.is_empty() {
            let mut outputs = Map::new();
            for decl in &model.outputs {
                if let DeclKind::Output { name, ty, value } = &decl.kind {
                    let mut output = Map::new();
                    output.insert(
                        "type".into(),
                        Value::String(type_keyword(
                            ty.as_ref(),
                            decl.decorator("secure").is_some(),
                        )),
                    );
                    self.apply_decorators(decl, &mut output);
                    match &value.kind {
                        ExprKind::For(f) => {
                            let copy = self.copy_loop(f, None, None);
                            output.insert(
                                "copy".into(),
                                copy_json(None, &copy.count, Some(&copy.input)),
                            );
                        }
                        _ => {
                            let value = self.lower(value).to_json();
                            output.insert("value".into(), value);
                        }
                    }
                    outputs.insert(name.name.clone(), Value::Object(output));
                }
            }
            root.insert("outputs".into(), Value::Object(outputs));
        }
        let mut template = Value::Object(root);
        let hash = template_hash(&template);
        if let Some(generator) =
            template.pointer_mut("/metadata/_generator").and_then(Value::as_object_mut)
        {
            generator.insert("templateHash".into(), Value::String(hash));
        }
        template
    }

    fn param(&mut self, decl: &'a Decl) -> Value {
        let DeclKind::Param { ty, default, .. } = &decl.kind else { return Value::Null };
        let mut object = Map::new();
        object.insert(
            "type".into(),
            Value::String(type_keyword(ty.as_ref(), decl.decorator("secure").is_some())),
        );
        if let Some(default) = default {
            let value = self.lower(default).to_json();
            object.insert("defaultValue".into(), value);
        }
        self.apply_decorators(decl, &mut object);
        Value::Object(object)
    }

    /// Decorator-derived keys, in reverse source order of the decorators (as the real compiler emits them).
    fn apply_decorators(&mut self, decl: &'a Decl, object: &mut Map<String, Value>) {
        for decorator in decl.decorators.iter().rev() {
            let Some(arg) = decorator.args.first() else { continue };
            match decorator.name.name.as_str() {
                "description" => {
                    let value = self.lower(arg).to_json();
                    merge_metadata(object, "description", value);
                }
                "metadata" => {
                    if let Value::Object(extra) = self.lower(arg).to_json() {
                        for (k, v) in extra {
                            merge_metadata(object, &k, v);
                        }
                    }
                }
                "allowed" => {
                    let value = self.lower(arg).to_json();
                    object.insert("allowedValues".into(), value);
                }
                key @ ("minLength" | "maxLength" | "minValue" | "maxValue") => {
                    let value = self.lower(arg).to_json();
                    object.insert(key.into(), value);
                }
                _ => {}
            }
        }
    }

    // ---- resources ----------------------------------------------------------------------------

    fn resource(&mut self, index: usize) -> Value {
        let model = self.model;
        let info = &model.resources[index];
        let mut object = Map::new();
        self.resource_context = Some(index);
        // Loops and conditions of enclosing resources apply to nested ones too.
        let mut chain = vec![index];
        let mut up = info.nested_in;
        while let Some(p) = up {
            chain.push(p);
            up = model.resources[p].nested_in;
        }
        chain.reverse();
        let mut bound = 0;
        let mut condition: Option<Val> = None;
        for &r in &chain {
            let resource = &model.resources[r];
            if let Some(f) = resource.for_loop {
                let count = call("length", vec![self.lower(&f.iterable).into_arm()]);
                object
                    .insert("copy".into(), copy_json(Some(&resource.qualified_name), &count, None));
                bound += self.bind_loop(f, None);
            }
            if let Some(c) = resource.condition {
                let own = self.lower(c);
                condition = Some(match condition {
                    Some(previous) => {
                        Val::Expr(call("and", vec![previous.into_arm(), own.into_arm()]))
                    }
                    None => own,
                });
            }
        }
        if let Some(condition) = condition {
            object.insert("condition".into(), condition.to_json());
        }
        object.insert("type".into(), Value::String(info.full_type.clone()));
        object.insert("apiVersion".into(), Value::String(info.api_version.clone()));
        if let ScopeRef::Resource(scope) = info.scope {
            let id = self.resource_id(scope);
            object.insert("scope".into(), Value::String(id.to_template_string()));
        }
        let name = self.full_name(index);
        object.insert("name".into(), name.to_json());
        if let Some(body) = info.object {
            let (props, copies) =
                self.object_parts(body, &["name", "scope", "parent", "dependsOn"]);
            for (k, v) in props {
                object.insert(key_text(&k), v.to_json());
            }
            if !copies.is_empty() {
                object.insert(
                    "copy".into(),
                    Value::Array(
                        copies
                            .iter()
                            .map(|c| copy_json(Some(&c.name), &c.count, Some(&c.input)))
                            .collect(),
                    ),
                );
            }
        }
        let dependencies = self.dependencies(Target::Resource(index));
        if !dependencies.is_empty() {
            object.insert("dependsOn".into(), Value::Array(dependencies));
        }
        if let Some(description) = info.decl.decorator("description").and_then(|d| d.args.first()) {
            let value = self.lower(description).to_json();
            merge_metadata(&mut object, "description", value);
        }
        self.locals.truncate(self.locals.len() - bound);
        self.resource_context = None;
        Value::Object(object)
    }

    /// Name segments of a resource (parents first), each an ARM expression.
    fn name_segments(&mut self, index: usize) -> Vec<Arm> {
        let model = self.model;
        let info = &model.resources[index];
        let mut segments = match info.parent {
            Some(parent) => self.name_segments(parent),
            None => Vec::new(),
        };
        let type_segments = info.full_type.split('/').count().saturating_sub(1);
        let own = info.name_expr.map_or(Val::Str(String::new()), |e| self.lower(e));
        let wanted = type_segments.saturating_sub(segments.len());
        if wanted <= 1 {
            segments.push(own.into_arm());
        } else if let Val::Str(text) = &own {
            segments.extend(text.split('/').map(s));
        } else {
            let name = own.into_arm();
            for i in 0..wanted {
                segments.push(
                    call("split", vec![name.clone(), s("/")])
                        .with_access(Access::Index(Arm::Int(i as i64))),
                );
            }
        }
        segments
    }

    /// The `name` property: the segments joined with `/`.
    fn full_name(&mut self, index: usize) -> Val {
        let info = &self.model.resources[index];
        if info.parent.is_none() {
            return info.name_expr.map_or(Val::Str(String::new()), |e| self.lower(e));
        }
        let segments = self.name_segments(index);
        if segments.len() == 1 {
            return Val::Expr(segments.into_iter().next().unwrap_or(Arm::Str(String::new())));
        }
        let format_string =
            (0..segments.len()).map(|i| format!("{{{i}}}")).collect::<Vec<_>>().join("/");
        let mut args = vec![Arm::Str(format_string)];
        args.extend(segments);
        Val::Expr(call("format", args))
    }

    fn resource_id(&mut self, index: usize) -> Arm {
        let model = self.model;
        let info = &model.resources[index];
        let segments = self.name_segments(index);
        let ty = info.full_type.clone();
        let mut args = vec![Arm::Str(ty)];
        args.extend(segments);
        match info.scope.clone() {
            ScopeRef::Resource(scope) => {
                let scope_id = self.resource_id(scope);
                args.insert(0, scope_id);
                call("extensionResourceId", args)
            }
            ScopeRef::ResourceGroup { subscription: None, name: None } => self.default_id(args),
            ScopeRef::ResourceGroup { subscription, name } => {
                let scope = self.resource_group_scope(subscription, name);
                args.insert(0, scope);
                call("extensionResourceId", args)
            }
            ScopeRef::Subscription { id } => {
                if let Some(id) = id {
                    args.insert(0, self.lower(id).into_arm());
                }
                call("subscriptionResourceId", args)
            }
            ScopeRef::Tenant => call("tenantResourceId", args),
            ScopeRef::ManagementGroup { name } => {
                let scope = match name {
                    Some(name) => call(
                        "tenantResourceId",
                        vec![
                            s("Microsoft.Management/managementGroups"),
                            self.lower(name).into_arm(),
                        ],
                    ),
                    None => call("managementGroup", Vec::new()).prop("id"),
                };
                args.insert(0, scope);
                call("extensionResourceId", args)
            }
            ScopeRef::Default | ScopeRef::Invalid => self.default_id(args),
        }
    }

    fn default_id(&self, args: Vec<Arm>) -> Arm {
        match self.model.target_scope {
            TargetScope::ResourceGroup => call("resourceId", args),
            TargetScope::Subscription => call("subscriptionResourceId", args),
            TargetScope::Tenant => call("tenantResourceId", args),
            TargetScope::ManagementGroup => {
                let mut args = args;
                args.insert(0, call("managementGroup", Vec::new()).prop("id"));
                call("extensionResourceId", args)
            }
        }
    }

    fn resource_group_scope(&mut self, subscription: Option<&Expr>, name: Option<&Expr>) -> Arm {
        let subscription = match subscription {
            Some(sub) => self.lower(sub).into_arm(),
            None => call("subscription", Vec::new()).prop("subscriptionId"),
        };
        let name = match name {
            Some(name) => self.lower(name).into_arm(),
            None => call("resourceGroup", Vec::new()).prop("name"),
        };
        call("format", vec![s("/subscriptions/{0}/resourceGroups/{1}"), subscription, name])
    }

    // ---- modules ------------------------------------------------------------------------------

    fn module_name(&mut self, index: usize) -> Val {
        match self.model.modules[index].name_expr() {
            Some(name) => self.lower(name),
            None => Val::Str(self.model.modules[index].name.name.clone()),
        }
    }

    fn module_id(&mut self, index: usize) -> Arm {
        let name = self.module_name(index).into_arm();
        let args = vec![s(NESTED_DEPLOYMENT_TYPE), name];
        match self.model.modules[index].scope.clone() {
            ScopeRef::ResourceGroup { subscription: None, name: None }
            | ScopeRef::Default
            | ScopeRef::Invalid => self.default_id(args),
            ScopeRef::ResourceGroup { subscription, name } => {
                let mut args = args;
                args.insert(0, self.resource_group_scope(subscription, name));
                call("extensionResourceId", args)
            }
            ScopeRef::Resource(rg) => {
                let rg_name = self.model.resources[rg].name_expr;
                let mut args = args;
                args.insert(0, self.resource_group_scope(None, rg_name));
                call("extensionResourceId", args)
            }
            ScopeRef::Subscription { id } => {
                let mut args = args;
                if let Some(id) = id {
                    args.insert(0, self.lower(id).into_arm());
                }
                call("subscriptionResourceId", args)
            }
            ScopeRef::Tenant => call("tenantResourceId", args),
            ScopeRef::ManagementGroup { name } => {
                let scope = match name {
                    Some(name) => call(
                        "tenantResourceId",
                        vec![
                            s("Microsoft.Management/managementGroups"),
                            self.lower(name).into_arm(),
                        ],
                    ),
                    None => call("managementGroup", Vec::new()).prop("id"),
                };
                let mut args = args;
                args.insert(0, scope);
                call("extensionResourceId", args)
            }
        }
    }

    fn module(&mut self, index: usize) -> Value {
        let model = self.model;
        let info = &model.modules[index];
        let mut object = Map::new();
        let mut bound = 0;
        if let Some(f) = info.for_loop {
            let count = call("length", vec![self.lower(&f.iterable).into_arm()]);
            object.insert("copy".into(), copy_json(Some(&info.name.name), &count, None));
            bound += self.bind_loop(f, None);
        }
        if let Some(c) = info.condition {
            let condition = self.lower(c).to_json();
            object.insert("condition".into(), condition);
        }
        object.insert("type".into(), NESTED_DEPLOYMENT_TYPE.into());
        object.insert("apiVersion".into(), NESTED_DEPLOYMENT_API_VERSION.into());
        if let Some(body) = info.object {
            let (props, _) = self.object_parts(body, &["name", "params", "scope", "dependsOn"]);
            for (k, v) in props {
                object.insert(key_text(&k), v.to_json());
            }
        }
        let name = self.module_name(index).to_json();
        object.insert("name".into(), name);
        let requested = match &info.scope {
            ScopeRef::Subscription { .. } => TargetScope::Subscription,
            ScopeRef::Tenant => TargetScope::Tenant,
            ScopeRef::ManagementGroup { .. } => TargetScope::ManagementGroup,
            ScopeRef::ResourceGroup { .. } | ScopeRef::Resource(_) => TargetScope::ResourceGroup,
            ScopeRef::Default | ScopeRef::Invalid => {
                info.interface.as_ref().map_or(model.target_scope, |i| i.target_scope)
            }
        };
        match info.scope.clone() {
            ScopeRef::ResourceGroup { subscription, name } => {
                if let Some(sub) = subscription {
                    let value = self.lower(sub).to_json();
                    object.insert("subscriptionId".into(), value);
                }
                if let Some(name) = name {
                    let value = self.lower(name).to_json();
                    object.insert("resourceGroup".into(), value);
                }
            }
            ScopeRef::Resource(rg) => {
                if let Some(name) = model.resources[rg].name_expr {
                    let value = self.lower(name).to_json();
                    object.insert("resourceGroup".into(), value);
                }
            }
            ScopeRef::Subscription { id: Some(id) } => {
                let value = self.lower(id).to_json();
                object.insert("subscriptionId".into(), value);
            }
            ScopeRef::Tenant => {
                object.insert("scope".into(), "/".into());
            }
            ScopeRef::ManagementGroup { name: Some(name) } => {
                let name = self.lower(name).into_arm();
                object.insert(
                    "scope".into(),
                    Value::String(
                        call("format", vec![s("Microsoft.Management/managementGroups/{0}"), name])
                            .to_template_string(),
                    ),
                );
            }
            _ => {}
        }
        if requested != TargetScope::ResourceGroup {
            let location = if model.target_scope == TargetScope::ResourceGroup {
                call("resourceGroup", Vec::new())
            } else {
                call("deployment", Vec::new())
            };
            object.insert(
                "location".into(),
                Value::String(location.prop("location").to_template_string()),
            );
        }
        let mut properties = Map::new();
        let mut options = Map::new();
        options.insert("scope".into(), "inner".into());
        properties.insert("expressionEvaluationOptions".into(), Value::Object(options));
        properties.insert("mode".into(), "Incremental".into());
        if let Some(params) = info.object.and_then(|o| o.property("params")) {
            let mut parameters = Map::new();
            for member in params.value.object_members().unwrap_or_default() {
                let ObjectMember::Property(p) = member else { continue };
                let Some(key) = p.key.text() else { continue };
                let mut entry = Map::new();
                match &p.value.kind {
                    ExprKind::For(f) => {
                        let copy = self.copy_loop(f, Some("value"), Some("value"));
                        entry.insert(
                            "copy".into(),
                            Value::Array(vec![copy_json(
                                Some(&copy.name),
                                &copy.count,
                                Some(&copy.input),
                            )]),
                        );
                    }
                    _ => {
                        let value = self.lower(&p.value).to_json();
                        entry.insert("value".into(), value);
                    }
                }
                parameters.insert(key.to_owned(), Value::Object(entry));
            }
            properties.insert("parameters".into(), Value::Object(parameters));
        }
        let template =
            info.interface.as_ref().and_then(|i| i.template.clone()).unwrap_or(Value::Null);
        properties.insert("template".into(), template);
        object.insert("properties".into(), Value::Object(properties));
        let dependencies = self.dependencies(Target::Module(index));
        if !dependencies.is_empty() {
            object.insert("dependsOn".into(), Value::Array(dependencies));
        }
        if let Some(description) = info.decl.decorator("description").and_then(|d| d.args.first()) {
            let value = self.lower(description).to_json();
            merge_metadata(&mut object, "description", value);
        }
        self.locals.truncate(self.locals.len() - bound);
        Value::Object(object)
    }

    // ---- dependencies -------------------------------------------------------------------------

    fn dependencies(&mut self, target: Target) -> Vec<Value> {
        let model = self.model;
        let (body, own_context) = match target {
            Target::Resource(i) => (model.resources[i].body, Some(i)),
            Target::Module(i) => (model.modules[i].body, None),
        };
        let mut found = BTreeSet::new();
        let mut visited_vars = HashSet::new();
        collect_dependencies(
            model,
            body,
            own_context,
            &mut found,
            &mut visited_vars,
            &mut Vec::new(),
            0,
        );
        if let Target::Resource(i) = target {
            // A nested resource depends on its enclosing resource.
            if let Some(parent) = model.resources[i].nested_in {
                add_target(model, Target::Resource(parent), &mut found, &mut visited_vars, 0);
            }
        }
        found.remove(&target);
        let mut keyed: Vec<(String, Target)> = found
            .into_iter()
            .map(|t| {
                let key = match t {
                    Target::Resource(r) => model.resources[r].qualified_name.clone(),
                    Target::Module(m) => model.modules[m].name.name.clone(),
                };
                (key, t)
            })
            .collect();
        keyed.sort_by(|a, b| culture_compare(&a.0, &b.0));
        let saved = std::mem::take(&mut self.locals);
        let result = keyed
            .into_iter()
            .map(|(_, t)| match t {
                Target::Resource(r) if model.resources[r].for_loop.is_some() => {
                    Value::String(model.resources[r].qualified_name.clone())
                }
                Target::Resource(r) => Value::String(self.resource_id(r).to_template_string()),
                Target::Module(m) if model.modules[m].for_loop.is_some() => {
                    Value::String(model.modules[m].name.name.clone())
                }
                Target::Module(m) => Value::String(self.module_id(m).to_template_string()),
            })
            .collect();
        self.locals = saved;
        result
    }

    // ---- expressions --------------------------------------------------------------------------

    fn var_is_inlined(&mut self, index: usize) -> bool {
        if let Some(&known) = self.inline_vars.get(&index) {
            return known;
        }
        self.inline_vars.insert(index, false);
        let result = decl_value(self.model.vars[index]).is_some_and(|v| self.is_runtime(v));
        self.inline_vars.insert(index, result);
        result
    }

    /// Whether an expression needs values only known during the deployment (then variables using it are inlined).
    fn is_runtime(&mut self, expr: &Expr) -> bool {
        let model = self.model;
        match &expr.kind {
            ExprKind::Variable(ident) => match model.symbols.get(&ident.name) {
                Some(Symbol::Var(v)) => self.var_is_inlined(*v),
                Some(Symbol::Resource(_) | Symbol::Module(_)) => true,
                _ => false,
            },
            ExprKind::Property { base, name, .. } => {
                if model.resource_symbol(base, None).is_some() {
                    return !matches!(name.name.as_str(), "id" | "name" | "type" | "apiVersion");
                }
                if let ExprKind::Variable(ident) = &base.unparen().kind {
                    if matches!(model.symbols.get(&ident.name), Some(Symbol::Module(_))) {
                        return name.name != "name";
                    }
                }
                self.is_runtime(base)
            }
            ExprKind::Call { name, args } => {
                name.name == "reference"
                    || functions_list(&name.name)
                    || args.iter().any(|a| self.is_runtime(a))
            }
            ExprKind::MethodCall { base, name, args } => {
                functions_list(&name.name)
                    || name.name == "reference"
                    || self.is_runtime(base)
                    || args.iter().any(|a| self.is_runtime(a))
            }
            ExprKind::String(s) => s.exprs.iter().any(|e| self.is_runtime(e)),
            ExprKind::Array(items) => items.iter().any(|e| self.is_runtime(e)),
            ExprKind::Object(members) => members.iter().any(|m| match m {
                ObjectMember::Property(p) => self.is_runtime(&p.value),
                ObjectMember::Spread(e) => self.is_runtime(e),
                ObjectMember::Resource(_) => false,
            }),
            ExprKind::Index { base, index, .. } => self.is_runtime(base) || self.is_runtime(index),
            ExprKind::ResourceAccess { .. } => true,
            ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => self.is_runtime(expr),
            ExprKind::Binary { left, right, .. } => self.is_runtime(left) || self.is_runtime(right),
            ExprKind::Ternary { condition, when_true, when_false } => {
                self.is_runtime(condition)
                    || self.is_runtime(when_true)
                    || self.is_runtime(when_false)
            }
            ExprKind::For(f) => self.is_runtime(&f.iterable) || self.is_runtime(&f.body),
            ExprKind::Lambda { body, .. } => self.is_runtime(body),
            _ => false,
        }
    }

    /// Binds a loop's variables for its body; returns how many locals were pushed.
    fn bind_loop(&mut self, f: &ForExpr, copy_name: Option<&str>) -> usize {
        let array = self.lower(&f.iterable).into_arm();
        let index = match copy_name {
            Some(name) => call("copyIndex", vec![s(name)]),
            None => call("copyIndex", Vec::new()),
        };
        let mut count = 0;
        if let Some(item) = &f.item {
            self.locals.push((
                item.name.clone(),
                Local::Item(array.with_access(Access::Index(index.clone()))),
            ));
            count += 1;
        }
        if let Some(i) = &f.index {
            self.locals.push((i.name.clone(), Local::Index(index)));
            count += 1;
        }
        count
    }

    fn copy_loop(
        &mut self,
        f: &ForExpr,
        name: Option<&str>,
        copy_index_name: Option<&str>,
    ) -> CopyLoop {
        let count = call("length", vec![self.lower(&f.iterable).into_arm()]);
        let bound = self.bind_loop(f, copy_index_name);
        let input = self.lower(&f.body);
        self.locals.truncate(self.locals.len() - bound);
        CopyLoop { name: name.unwrap_or_default().to_owned(), count, input: Box::new(input) }
    }

    fn object_parts(&mut self, object: &Expr, omit: &[&str]) -> (Vec<(Val, Val)>, Vec<CopyLoop>) {
        let mut props = Vec::new();
        let mut copies = Vec::new();
        for member in object.object_members().unwrap_or_default() {
            let ObjectMember::Property(p) = member else { continue };
            if p.key.text().is_some_and(|k| omit.contains(&k)) {
                continue;
            }
            let key = match &p.key {
                PropertyKey::Ident(i) => Val::Str(i.name.clone()),
                PropertyKey::String(s, _) => self.lower_string(s),
            };
            match (&p.value.kind, p.key.text()) {
                (ExprKind::For(f), Some(name)) => {
                    copies.push(self.copy_loop(f, Some(name), Some(name)))
                }
                _ => {
                    let value = self.lower(&p.value);
                    props.push((key, value));
                }
            }
        }
        (props, copies)
    }

    fn lower_string(&mut self, string: &StringLit) -> Val {
        if let Some(literal) = string.literal() {
            return Val::Str(literal.to_owned());
        }
        if string.exprs.len() == 1 && string.segments.iter().all(String::is_empty) {
            return Val::Expr(self.lower(&string.exprs[0]).into_arm());
        }
        let mut format_string = String::new();
        for (i, segment) in string.segments.iter().enumerate() {
            format_string.push_str(&segment.replace('{', "{{").replace('}', "}}"));
            if i < string.exprs.len() {
                let _ = write!(format_string, "{{{i}}}");
            }
        }
        let mut args = vec![Arm::Str(format_string)];
        for expr in &string.exprs {
            args.push(self.lower(expr).into_arm());
        }
        Val::Expr(call("format", args))
    }

    pub fn lower(&mut self, expr: &Expr) -> Val {
        match &expr.kind {
            ExprKind::String(string) => self.lower_string(string),
            ExprKind::Int(v) => Val::Int(*v),
            ExprKind::Bool(b) => Val::Bool(*b),
            ExprKind::Null => Val::Null,
            ExprKind::Array(items) => Val::Array(items.iter().map(|e| self.lower(e)).collect()),
            ExprKind::Object(_) => {
                let (props, copies) = self.object_parts(expr, &[]);
                Val::Object(props, copies)
            }
            ExprKind::Paren(inner) => self.lower(inner),
            ExprKind::Variable(ident) => self.lower_variable(ident),
            ExprKind::Call { name, args } => self.lower_call(&name.name, args),
            ExprKind::MethodCall { base, name, args } => {
                if let ExprKind::Variable(ns) = &base.kind {
                    if (ns.name == "az" || ns.name == "sys")
                        && !self.model.symbols.contains_key(&ns.name)
                    {
                        return self.lower_call(&name.name, args);
                    }
                }
                match self.model.resource_symbol(base, self.resource_context) {
                    Some(r) => {
                        let id = self.resource_id(r);
                        let mut call_args = vec![id];
                        if args.is_empty() {
                            call_args.push(Arm::Str(self.model.resources[r].api_version.clone()));
                        } else {
                            call_args.extend(args.iter().map(|a| self.lower(a).into_arm()));
                        }
                        Val::Expr(call(&name.name, call_args))
                    }
                    None => {
                        let base = self.lower(base).into_arm();
                        Val::Expr(base.prop(&name.name))
                    }
                }
            }
            ExprKind::Property { base, name, safe } => self.lower_property(base, &name.name, *safe),
            ExprKind::Index { base, index, safe } => {
                let index = self.lower(index).into_arm();
                // `res[i].prop` and `mod[i]` need the loop variable of the collection replaced by `i`.
                if let Some(r) = self.collection_resource(base) {
                    return Val::Expr(
                        self.with_resource_index(r, index, |this| this.full_reference(r)),
                    );
                }
                let base = self.lower(base).into_arm();
                if *safe {
                    Val::Expr(call("tryGet", vec![base, index]))
                } else {
                    Val::Expr(base.with_access(Access::Index(index)))
                }
            }
            ExprKind::ResourceAccess { .. } => {
                match self.model.resource_symbol(expr, self.resource_context) {
                    Some(r) => Val::Expr(self.full_reference(r)),
                    None => Val::Null,
                }
            }
            ExprKind::Unary { op: UnaryOp::Not, expr } => {
                Val::Expr(call("not", vec![self.lower(expr).into_arm()]))
            }
            ExprKind::Unary { op: UnaryOp::Minus, expr } => match self.lower(expr) {
                Val::Int(v) => Val::Int(-v),
                other => Val::Expr(call("sub", vec![Arm::Int(0), other.into_arm()])),
            },
            ExprKind::Binary { op, left, right } => {
                let l = self.lower(left).into_arm();
                let r = self.lower(right).into_arm();
                let lower_both =
                    |l: Arm, r: Arm| (call("toLower", vec![l]), call("toLower", vec![r]));
                Val::Expr(match op {
                    BinaryOp::Or => call("or", vec![l, r]),
                    BinaryOp::And => call("and", vec![l, r]),
                    BinaryOp::Equals => call("equals", vec![l, r]),
                    BinaryOp::NotEquals => call("not", vec![call("equals", vec![l, r])]),
                    BinaryOp::EqualsInsensitive => {
                        let (l, r) = lower_both(l, r);
                        call("equals", vec![l, r])
                    }
                    BinaryOp::NotEqualsInsensitive => {
                        let (l, r) = lower_both(l, r);
                        call("not", vec![call("equals", vec![l, r])])
                    }
                    BinaryOp::Less => call("less", vec![l, r]),
                    BinaryOp::LessOrEquals => call("lessOrEquals", vec![l, r]),
                    BinaryOp::Greater => call("greater", vec![l, r]),
                    BinaryOp::GreaterOrEquals => call("greaterOrEquals", vec![l, r]),
                    BinaryOp::Add => call("add", vec![l, r]),
                    BinaryOp::Subtract => call("sub", vec![l, r]),
                    BinaryOp::Multiply => call("mul", vec![l, r]),
                    BinaryOp::Divide => call("div", vec![l, r]),
                    BinaryOp::Modulo => call("mod", vec![l, r]),
                    BinaryOp::Coalesce => call("coalesce", vec![l, r]),
                })
            }
            ExprKind::Ternary { condition, when_true, when_false } => {
                let c = self.lower(condition).into_arm();
                let t = self.lower(when_true).into_arm();
                let f = self.lower(when_false).into_arm();
                Val::Expr(call("if", vec![c, t, f]))
            }
            ExprKind::Lambda { params, body } => {
                let before = self.locals.len();
                for p in params {
                    self.locals.push((p.name.clone(), Local::Lambda));
                }
                let body = self.lower(body).into_arm();
                self.locals.truncate(before);
                let mut args: Vec<Arm> = params.iter().map(|p| s(&p.name)).collect();
                args.push(body);
                Val::Expr(call("lambda", args))
            }
            ExprKind::For(f) => {
                // Only reachable in positions the checker refuses; emit the array the loop would build.
                let copy = self.copy_loop(f, None, None);
                Val::Expr(call("createArray", vec![copy.input.into_arm()]))
            }
            ExprKind::If { body, .. } => self.lower(body),
            ExprKind::Error => Val::Null,
        }
    }

    fn lower_variable(&mut self, ident: &Ident) -> Val {
        if let Some((_, local)) = self.locals.iter().rev().find(|(n, _)| *n == ident.name) {
            return Val::Expr(match local.clone() {
                Local::Item(arm) | Local::Index(arm) => arm,
                Local::Lambda => call("lambdaVariables", vec![s(&ident.name)]),
            });
        }
        if let Some(r) = self.model.lookup_resource(&ident.name, self.resource_context) {
            return Val::Expr(self.full_reference(r));
        }
        match self.model.symbols.get(&ident.name).copied() {
            Some(Symbol::Param(_)) => Val::Expr(call("parameters", vec![s(&ident.name)])),
            Some(Symbol::Var(v)) => {
                if self.var_is_inlined(v) {
                    let value = decl_value(self.model.vars[v]).expect("variables have values");
                    let saved = std::mem::take(&mut self.locals);
                    let context = self.resource_context.take();
                    let result = self.lower(value);
                    self.locals = saved;
                    self.resource_context = context;
                    result
                } else {
                    Val::Expr(call("variables", vec![s(&ident.name)]))
                }
            }
            Some(Symbol::Module(m)) => Val::Expr(
                call("reference", vec![self.module_id(m), s(NESTED_DEPLOYMENT_API_VERSION)])
                    .prop("outputs"),
            ),
            Some(Symbol::Resource(r)) => Val::Expr(self.full_reference(r)),
            None => Val::Null,
        }
    }

    fn full_reference(&mut self, r: usize) -> Arm {
        let id = self.resource_id(r);
        let api = self.model.resources[r].api_version.clone();
        call("reference", vec![id, Arm::Str(api), s("full")])
    }

    fn lower_call(&mut self, name: &str, args: &[Expr]) -> Val {
        if name == "any" && args.len() == 1 {
            return self.lower(&args[0]);
        }
        let args = args.iter().map(|a| self.lower(a).into_arm()).collect();
        Val::Expr(call(name, args))
    }

    fn collection_resource(&self, expr: &Expr) -> Option<usize> {
        let r = self.model.resource_symbol(expr, self.resource_context)?;
        self.model.resources[r].for_loop.is_some().then_some(r)
    }

    /// Runs `f` with the loop variables of resource `r`'s collection bound to element `index`.
    fn with_resource_index<T>(
        &mut self,
        r: usize,
        index: Arm,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let Some(for_loop) = self.model.resources[r].for_loop else { return f(self) };
        let array = self.lower(&for_loop.iterable).into_arm();
        let before = self.locals.len();
        if let Some(item) = &for_loop.item {
            self.locals.push((
                item.name.clone(),
                Local::Item(array.with_access(Access::Index(index.clone()))),
            ));
        }
        if let Some(i) = &for_loop.index {
            self.locals.push((i.name.clone(), Local::Index(index)));
        }
        let result = f(self);
        self.locals.truncate(before);
        result
    }

    /// Runs `f` with a module loop's item and index bound to element `index` of the loop.
    fn with_module_index<T>(&mut self, m: usize, index: Arm, f: impl FnOnce(&mut Self) -> T) -> T {
        let Some(for_loop) = self.model.modules[m].for_loop else { return f(self) };
        let array = self.lower(&for_loop.iterable).into_arm();
        let before = self.locals.len();
        if let Some(item) = &for_loop.item {
            self.locals.push((
                item.name.clone(),
                Local::Item(array.with_access(Access::Index(index.clone()))),
            ));
        }
        if let Some(i) = &for_loop.index {
            self.locals.push((i.name.clone(), Local::Index(index)));
        }
        let result = f(self);
        self.locals.truncate(before);
        result
    }

    fn lower_property(&mut self, base: &Expr, name: &str, safe: bool) -> Val {
        let model = self.model;
        // Resource properties: `res.x` or `res[i].x`.
        let (resource, index) = match &base.unparen().kind {
            ExprKind::Index { base: inner, index, .. } => match self.collection_resource(inner) {
                Some(r) => (Some(r), Some(index)),
                None => (None, None),
            },
            _ => (
                model.resource_symbol(base, self.resource_context).filter(|_| !self.is_local(base)),
                None,
            ),
        };
        if let Some(r) = resource {
            let index = index.map(|i| self.lower(i).into_arm());
            let run = |this: &mut Self| -> Val {
                let info = &this.model.resources[r];
                match name {
                    "id" => Val::Expr(this.resource_id(r)),
                    "name" => info.name_expr.map_or(Val::Null, |e| this.lower(e)),
                    "type" => Val::Str(info.full_type.clone()),
                    "apiVersion" => Val::Str(info.api_version.clone()),
                    "properties" => {
                        let api = info.api_version.clone();
                        Val::Expr(call("reference", vec![this.resource_id(r), Arm::Str(api)]))
                    }
                    other => Val::Expr(this.full_reference(r).prop(other)),
                }
            };
            return match index {
                Some(index) => self.with_resource_index(r, index, run),
                None => run(self),
            };
        }
        // Module outputs: `mod.outputs.x` (or `mod[i].outputs.x` of a module loop) →
        // `reference(<deployment id>, api).outputs.x.value`.
        if let ExprKind::Property { base: inner, name: outputs, .. } = &base.unparen().kind {
            if outputs.name == "outputs" {
                let (module, index) = match &inner.unparen().kind {
                    ExprKind::Index { base: collection, index, .. } => {
                        match self.module_symbol(collection) {
                            Some(m) if self.model.modules[m].for_loop.is_some() => {
                                (Some(m), Some(index))
                            }
                            _ => (None, None),
                        }
                    }
                    _ => (self.module_symbol(inner), None),
                };
                if let Some(m) = module {
                    let index = index.map(|i| self.lower(i).into_arm());
                    let run = |this: &mut Self| {
                        let id = this.module_id(m);
                        Val::Expr(
                            call("reference", vec![id, s(NESTED_DEPLOYMENT_API_VERSION)])
                                .prop("outputs")
                                .prop(name)
                                .prop("value"),
                        )
                    };
                    return match index {
                        Some(index) => self.with_module_index(m, index, run),
                        None => run(self),
                    };
                }
            }
        }
        if name == "name" {
            if let Some(m) = self.module_symbol(base) {
                return self.module_name(m);
            }
        }
        let base = self.lower(base).into_arm();
        if safe {
            Val::Expr(call("tryGet", vec![base, s(name)]))
        } else {
            Val::Expr(base.prop(name))
        }
    }

    fn is_local(&self, expr: &Expr) -> bool {
        matches!(&expr.unparen().kind, ExprKind::Variable(i) if self.locals.iter().any(|(n, _)| *n == i.name))
    }

    fn module_symbol(&self, expr: &Expr) -> Option<usize> {
        match &expr.unparen().kind {
            ExprKind::Variable(ident) if !self.locals.iter().any(|(n, _)| *n == ident.name) => {
                match self.model.symbols.get(&ident.name) {
                    Some(Symbol::Module(m)) => Some(*m),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn functions_list(name: &str) -> bool {
    crate::functions::is_list_function(name)
}

fn add_target(
    model: &FileModel<'_>,
    target: Target,
    found: &mut BTreeSet<Target>,
    visited: &mut HashSet<usize>,
    depth: u32,
) {
    match target {
        // An `existing` resource is not deployed: depend on what it depends on instead.
        Target::Resource(r) if model.resources[r].existing => {
            if depth < 16 && !found.contains(&target) {
                collect_dependencies(
                    model,
                    model.resources[r].body,
                    Some(r),
                    found,
                    visited,
                    &mut Vec::new(),
                    depth + 1,
                );
            }
        }
        _ => {
            found.insert(target);
        }
    }
}

fn collect_dependencies(
    model: &FileModel<'_>,
    expr: &Expr,
    context: Option<usize>,
    found: &mut BTreeSet<Target>,
    visited_vars: &mut HashSet<usize>,
    locals: &mut Vec<String>,
    depth: u32,
) {
    match &expr.kind {
        ExprKind::Variable(ident) => {
            if locals.contains(&ident.name) {
                return;
            }
            if let Some(r) = model.lookup_resource(&ident.name, context) {
                add_target(model, Target::Resource(r), found, visited_vars, depth);
                return;
            }
            match model.symbols.get(&ident.name) {
                Some(Symbol::Module(m)) => {
                    found.insert(Target::Module(*m));
                }
                Some(Symbol::Var(v)) if visited_vars.insert(*v) => {
                    if let Some(value) = decl_value(model.vars[*v]) {
                        collect_dependencies(
                            model,
                            value,
                            None,
                            found,
                            visited_vars,
                            &mut Vec::new(),
                            depth,
                        );
                    }
                }
                _ => {}
            }
        }
        ExprKind::ResourceAccess { .. } => {
            if let Some(r) = model.resource_symbol(expr, context) {
                add_target(model, Target::Resource(r), found, visited_vars, depth);
            }
        }
        ExprKind::String(s) => s.exprs.iter().for_each(|e| {
            collect_dependencies(model, e, context, found, visited_vars, locals, depth)
        }),
        ExprKind::Array(items) => items.iter().for_each(|e| {
            collect_dependencies(model, e, context, found, visited_vars, locals, depth)
        }),
        ExprKind::Object(members) => {
            for member in members {
                match member {
                    ObjectMember::Property(p) => {
                        if let PropertyKey::String(s, _) = &p.key {
                            s.exprs.iter().for_each(|e| {
                                collect_dependencies(
                                    model,
                                    e,
                                    context,
                                    found,
                                    visited_vars,
                                    locals,
                                    depth,
                                )
                            });
                        }
                        collect_dependencies(
                            model,
                            &p.value,
                            context,
                            found,
                            visited_vars,
                            locals,
                            depth,
                        );
                    }
                    ObjectMember::Spread(e) => {
                        collect_dependencies(model, e, context, found, visited_vars, locals, depth)
                    }
                    ObjectMember::Resource(_) => {}
                }
            }
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|e| {
            collect_dependencies(model, e, context, found, visited_vars, locals, depth)
        }),
        ExprKind::MethodCall { base, args, .. } => {
            collect_dependencies(model, base, context, found, visited_vars, locals, depth);
            args.iter().for_each(|e| {
                collect_dependencies(model, e, context, found, visited_vars, locals, depth)
            });
        }
        ExprKind::Property { base, .. } => {
            collect_dependencies(model, base, context, found, visited_vars, locals, depth)
        }
        ExprKind::Index { base, index, .. } => {
            collect_dependencies(model, base, context, found, visited_vars, locals, depth);
            collect_dependencies(model, index, context, found, visited_vars, locals, depth);
        }
        ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => {
            collect_dependencies(model, expr, context, found, visited_vars, locals, depth)
        }
        ExprKind::Binary { left, right, .. } => {
            collect_dependencies(model, left, context, found, visited_vars, locals, depth);
            collect_dependencies(model, right, context, found, visited_vars, locals, depth);
        }
        ExprKind::Ternary { condition, when_true, when_false } => {
            for e in [condition, when_true, when_false] {
                collect_dependencies(model, e, context, found, visited_vars, locals, depth);
            }
        }
        ExprKind::For(f) => {
            collect_dependencies(model, &f.iterable, context, found, visited_vars, locals, depth);
            let before = locals.len();
            locals.extend(f.item.iter().chain(f.index.iter()).map(|i| i.name.clone()));
            collect_dependencies(model, &f.body, context, found, visited_vars, locals, depth);
            locals.truncate(before);
        }
        ExprKind::If { condition, body } => {
            collect_dependencies(model, condition, context, found, visited_vars, locals, depth);
            collect_dependencies(model, body, context, found, visited_vars, locals, depth);
        }
        ExprKind::Lambda { params, body } => {
            let before = locals.len();
            locals.extend(params.iter().map(|p| p.name.clone()));
            collect_dependencies(model, body, context, found, visited_vars, locals, depth);
            locals.truncate(before);
        }
        ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Error => {}
    }
}

/// .NET's default (culture-aware) string order for identifiers: case-insensitive first, then lower before upper.
fn culture_compare(a: &str, b: &str) -> std::cmp::Ordering {
    a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| {
        let swap = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect::<String>()
        };
        swap(a).cmp(&swap(b))
    })
}

fn merge_metadata(object: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(map) = entry {
        map.insert(key.to_owned(), value);
    }
}

fn type_keyword(ty: Option<&TypeRef>, secure: bool) -> String {
    match (ty.and_then(TypeRef::name), secure) {
        (Some("string"), true) => "securestring".into(),
        (Some("object"), true) => "secureObject".into(),
        (Some(name), _) => name.to_owned(),
        (None, _) => match ty {
            Some(TypeRef::Resource(..)) => "string".into(),
            _ => "object".into(),
        },
    }
}

/// A stable 64-bit FNV-1a hash of the template, in the decimal form of Bicep's `templateHash` (the
/// real value comes from a closed-source algorithm and cannot be reproduced).
fn template_hash(template: &Value) -> String {
    let text = template.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.to_string()
}
