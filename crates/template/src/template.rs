//! The template document: its sections read into typed definitions, with every expression parsed once up front
//! (so syntax errors, unknown functions and wrong argument counts are reported before anything is evaluated).

use std::sync::Arc;

use serde_json::Value;

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::eval::{check_call, UserFunction, UserFunctions};
use crate::expr::{parse_template_string, Expr, ExprKind, TemplateString};
use crate::json::{child_path, index_path, parse_lenient, SourceMap};

/// A JSON value whose strings may be expressions, parsed.
#[derive(Debug, Clone)]
pub enum Node {
    Literal(Value),
    /// `text` is the template string as written (what-if shows it for values not known before deployment).
    Expr {
        expr: Arc<Expr>,
        path: Arc<str>,
        text: Arc<str>,
    },
    Array(Vec<Node>),
    Object {
        entries: Vec<(Key, Node)>,
        copies: Vec<PropertyCopy>,
    },
}

/// An object key: usually plain, but ARM evaluates keys written as expressions too.
#[derive(Debug, Clone)]
pub enum Key {
    Literal(String),
    Expr { expr: Arc<Expr>, path: Arc<str> },
}

/// A `copy` entry inside resource properties: the property `name` becomes an array of `count` evaluated `input`s.
#[derive(Debug, Clone)]
pub struct PropertyCopy {
    pub name: String,
    pub count: Node,
    pub input: Node,
    pub path: Arc<str>,
}

impl Node {
    /// Visits every expression in the node (not descending into literals).
    pub fn walk_exprs<'a>(&'a self, visit: &mut dyn FnMut(&'a Expr, &'a str)) {
        match self {
            Node::Literal(_) => {}
            Node::Expr { expr, path, .. } => visit(expr, path),
            Node::Array(items) => items.iter().for_each(|n| n.walk_exprs(visit)),
            Node::Object { entries, copies } => {
                for (key, node) in entries {
                    if let Key::Expr { expr, path } = key {
                        visit(expr, path);
                    }
                    node.walk_exprs(visit);
                }
                for copy in copies {
                    copy.count.walk_exprs(visit);
                    copy.input.walk_exprs(visit);
                }
            }
        }
    }

    /// The object entry with this literal key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object { entries, .. } => entries.iter().find_map(|(k, v)| match k {
                Key::Literal(k) if k.eq_ignore_ascii_case(key) => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// Parameter types, case-insensitive in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    SecureString,
    Int,
    Bool,
    Object,
    SecureObject,
    Array,
}

impl ParamType {
    pub fn parse(text: &str) -> Option<ParamType> {
        Some(match text.to_ascii_lowercase().as_str() {
            "string" => ParamType::String,
            "securestring" => ParamType::SecureString,
            "int" => ParamType::Int,
            "bool" => ParamType::Bool,
            "object" => ParamType::Object,
            "secureobject" => ParamType::SecureObject,
            "array" => ParamType::Array,
            _ => return None,
        })
    }

    /// ARM's display name (as in deployment outputs: `String`, `Int`, ...).
    pub fn display(self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::SecureString => "SecureString",
            ParamType::Int => "Int",
            ParamType::Bool => "Bool",
            ParamType::Object => "Object",
            ParamType::SecureObject => "SecureObject",
            ParamType::Array => "Array",
        }
    }

    pub fn is_secure(self) -> bool {
        matches!(self, ParamType::SecureString | ParamType::SecureObject)
    }

    /// Whether a value has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            ParamType::String | ParamType::SecureString => value.is_string(),
            ParamType::Int => value.as_i64().is_some(),
            ParamType::Bool => value.is_boolean(),
            ParamType::Object | ParamType::SecureObject => value.is_object(),
            ParamType::Array => value.is_array(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParameterDef {
    pub name: String,
    pub param_type: ParamType,
    pub default: Option<Node>,
    pub allowed_values: Option<Vec<Value>>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
    pub nullable: bool,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct VariableDef {
    pub name: String,
    pub value: VariableValue,
    pub path: String,
}

#[derive(Debug, Clone)]
pub enum VariableValue {
    Plain(Node),
    /// From `variables.copy`: an array of `count` evaluated `input`s, with `copyIndex(name)`.
    Copy {
        count: Node,
        input: Node,
    },
}

/// A resource `copy` loop.
#[derive(Debug, Clone)]
pub struct CopySpec {
    pub name: String,
    pub count: Node,
    pub serial: bool,
    pub batch_size: Option<Node>,
}

#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// JSON path of the definition (`resources[1]`, `resources.identity`, `resources[0].resources[2]`).
    pub path: String,
    /// The key in a `languageVersion: 2.0` resources object.
    pub symbolic_name: Option<String>,
    pub resource_type: String,
    pub api_version: Option<String>,
    pub name: Node,
    pub condition: Option<Node>,
    pub copy: Option<CopySpec>,
    pub depends_on: Vec<Node>,
    /// Everything that goes to the resource provider (without condition, copy, dependsOn, child resources).
    pub body: Node,
    /// `existing: true` (symbolic-name templates): referenced, never deployed.
    pub existing: bool,
    /// For a nested child resource: the index of its parent in [`Template::resources`].
    pub parent: Option<usize>,
    /// For `Microsoft.Resources/deployments`: whether the nested template is evaluated in its own scope.
    pub nested_inner_scope: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct OutputDef {
    pub name: String,
    pub output_type: ParamType,
    pub condition: Option<Node>,
    pub value: OutputValue,
    pub path: String,
}

#[derive(Debug, Clone)]
pub enum OutputValue {
    Value(Node),
    Copy { count: Node, input: Node },
}

/// Where a template deploys, from its `$schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaScope {
    ResourceGroup,
    Subscription,
    ManagementGroup,
    Tenant,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub schema: Option<String>,
    pub content_version: Option<String>,
    pub language_version: Option<String>,
    pub parameters: Vec<ParameterDef>,
    pub variables: Vec<VariableDef>,
    pub resources: Vec<ResourceDef>,
    pub outputs: Vec<OutputDef>,
    pub functions: UserFunctions,
    /// The document as given.
    pub raw: Value,
    pub source_map: SourceMap,
}

pub(crate) fn is_deployment_type(resource_type: &str) -> bool {
    resource_type.eq_ignore_ascii_case("Microsoft.Resources/deployments")
}

impl Template {
    /// Parses template text (lenient JSON, as az sends it).
    pub fn parse(text: &str) -> Result<Template, Diagnostics> {
        let (value, map) = parse_lenient(text).map_err(|e| {
            Diagnostics::one(Diagnostic {
                code: Code::InvalidRequestContent,
                path: String::new(),
                position: Some(e.position),
                span: None,
                message: e.message,
            })
        })?;
        Template::from_value_with_map(value, map)
    }

    /// Reads a template from a JSON value.
    pub fn from_value(value: Value) -> Result<Template, Diagnostics> {
        Template::from_value_with_map(value, SourceMap::default())
    }

    pub fn from_value_with_map(
        value: Value,
        source_map: SourceMap,
    ) -> Result<Template, Diagnostics> {
        let mut reader = Reader { diagnostics: Vec::new() };
        let mut template = reader.template(&value, SourceMap::default());
        if reader.diagnostics.is_empty() {
            template.raw = value;
            template.source_map = source_map;
            Ok(template)
        } else {
            Err(Diagnostics(reader.diagnostics).locate(&source_map))
        }
    }

    /// The deployment scope the `$schema` names (resource group when absent or unknown).
    pub fn schema_scope(&self) -> SchemaScope {
        let schema = self.schema.as_deref().unwrap_or_default().to_ascii_lowercase();
        if schema.contains("subscriptiondeploymenttemplate") {
            SchemaScope::Subscription
        } else if schema.contains("managementgroupdeploymenttemplate") {
            SchemaScope::ManagementGroup
        } else if schema.contains("tenantdeploymenttemplate") {
            SchemaScope::Tenant
        } else {
            SchemaScope::ResourceGroup
        }
    }

    /// Whether resources are a symbolic-name object (`languageVersion` 2.0 and later).
    pub fn uses_symbolic_names(&self) -> bool {
        self.raw.get("resources").is_some_and(Value::is_object)
    }
}

struct Reader {
    diagnostics: Vec<Diagnostic>,
}

const RESOURCE_META_KEYS: &[&str] =
    &["condition", "copy", "dependsOn", "resources", "comments", "existing"];

impl Reader {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(Code::InvalidTemplate, path, message));
    }

    fn template(&mut self, value: &Value, source_map: SourceMap) -> Template {
        let mut template = Template {
            schema: None,
            content_version: None,
            language_version: None,
            parameters: Vec::new(),
            variables: Vec::new(),
            resources: Vec::new(),
            outputs: Vec::new(),
            functions: UserFunctions::new(),
            raw: Value::Null,
            source_map,
        };
        let Some(root) = value.as_object() else {
            self.error(
                "",
                format!("a template must be a JSON object, not {}", crate::eval::type_name(value)),
            );
            return template;
        };
        template.schema = root.get("$schema").and_then(Value::as_str).map(str::to_string);
        template.content_version =
            root.get("contentVersion").and_then(Value::as_str).map(str::to_string);
        template.language_version =
            root.get("languageVersion").and_then(Value::as_str).map(str::to_string);
        if template.content_version.is_none() {
            self.error(
                "contentVersion",
                "the template must have a 'contentVersion' string (such as '1.0.0.0')",
            );
        }
        const KNOWN: &[&str] = &[
            "$schema",
            "contentVersion",
            "languageVersion",
            "apiProfile",
            "definitions",
            "functions",
            "parameters",
            "variables",
            "resources",
            "outputs",
            "metadata",
            "imports",
            "extensions",
        ];
        for key in root.keys() {
            if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                self.error(
                    &child_path("", key),
                    format!(
                        "'{key}' is not a template section; the sections are {}",
                        KNOWN.join(", ")
                    ),
                );
            }
        }
        if let Some(functions) = root.get("functions") {
            template.functions = self.functions(functions);
        }
        if let Some(parameters) = root.get("parameters") {
            template.parameters = self.parameters(parameters, &template.functions);
        }
        if let Some(variables) = root.get("variables") {
            template.variables = self.variables(variables, &template.functions);
        }
        match root.get("resources") {
            None => self.error("resources", "the template must have a 'resources' section"),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.resource(item, &index_path("resources", i), None, None, &mut template);
                }
            }
            Some(Value::Object(items)) => {
                if template.language_version.is_none() {
                    self.error(
                        "resources",
                        "a 'resources' object (symbolic names) needs 'languageVersion': '2.0'",
                    );
                }
                for (name, item) in items {
                    self.resource(
                        item,
                        &child_path("resources", name),
                        Some(name.clone()),
                        None,
                        &mut template,
                    );
                }
            }
            Some(other) => self.error(
                "resources",
                format!("'resources' must be an array, not {}", crate::eval::type_name(other)),
            ),
        }
        if let Some(outputs) = root.get("outputs") {
            template.outputs = self.outputs(outputs, &template.functions);
        }
        template
    }

    fn functions(&mut self, value: &Value) -> UserFunctions {
        let mut out = UserFunctions::new();
        let Some(namespaces) = value.as_array() else {
            self.error("functions", "'functions' must be an array of namespaces");
            return out;
        };
        for (i, ns) in namespaces.iter().enumerate() {
            let path = index_path("functions", i);
            let Some(namespace) = ns.get("namespace").and_then(Value::as_str) else {
                self.error(&path, "a function namespace needs a 'namespace' string");
                continue;
            };
            let Some(members) = ns.get("members").and_then(Value::as_object) else {
                self.error(&path, "a function namespace needs a 'members' object");
                continue;
            };
            for (name, member) in members {
                let member_path = child_path(&child_path(&path, "members"), name);
                let parameters: Vec<String> = member
                    .get("parameters")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| {
                                p.get("name").and_then(Value::as_str).map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let output_path = child_path(&child_path(&member_path, "output"), "value");
                let Some(output) = member.get("output").and_then(|o| o.get("value")) else {
                    self.error(&member_path, "a function needs an 'output' with a 'value'");
                    continue;
                };
                let function = match output {
                    Value::String(s) => match parse_template_string(s) {
                        Ok(TemplateString::Expression(expr)) => {
                            self.check_expr(&expr, &output_path, &UserFunctions::new());
                            UserFunction { parameters, output: expr, literal_output: None }
                        }
                        Ok(TemplateString::Literal(l)) => UserFunction {
                            parameters,
                            output: Expr { kind: ExprKind::Null, span: Default::default() },
                            literal_output: Some(Value::String(l)),
                        },
                        Err(e) => {
                            self.diagnostics.push(
                                Diagnostic::new(Code::InvalidTemplate, output_path, e.message)
                                    .with_span(e.span),
                            );
                            continue;
                        }
                    },
                    other => UserFunction {
                        parameters,
                        output: Expr { kind: ExprKind::Null, span: Default::default() },
                        literal_output: Some(other.clone()),
                    },
                };
                out.insert(
                    format!("{}.{}", namespace.to_ascii_lowercase(), name.to_ascii_lowercase()),
                    function,
                );
            }
        }
        out
    }

    fn parameters(&mut self, value: &Value, functions: &UserFunctions) -> Vec<ParameterDef> {
        let Some(map) = value.as_object() else {
            self.error("parameters", "'parameters' must be an object");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, def) in map {
            let path = child_path("parameters", name);
            let Some(def) = def.as_object() else {
                self.error(&path, "a parameter definition must be an object with a 'type'");
                continue;
            };
            let param_type = match def.get("type").and_then(Value::as_str) {
                Some(t) => match ParamType::parse(t) {
                    Some(t) => t,
                    None => {
                        self.error(
                            &child_path(&path, "type"),
                            format!("'{t}' is not a parameter type; the types are string, securestring, int, bool, object, secureObject, array"),
                        );
                        continue;
                    }
                },
                None => {
                    self.error(&path, format!("the parameter '{name}' needs a 'type'"));
                    continue;
                }
            };
            let int_field = |reader: &mut Reader, key: &str| -> Option<i64> {
                let v = def.get(key)?;
                match v.as_i64() {
                    Some(i) => Some(i),
                    None => {
                        reader
                            .error(&child_path(&path, key), format!("'{key}' must be an integer"));
                        None
                    }
                }
            };
            let min_value = int_field(self, "minValue");
            let max_value = int_field(self, "maxValue");
            let min_length = int_field(self, "minLength");
            let max_length = int_field(self, "maxLength");
            let allowed_values = match def.get("allowedValues") {
                None => None,
                Some(Value::Array(items)) => Some(items.clone()),
                Some(_) => {
                    self.error(
                        &child_path(&path, "allowedValues"),
                        "'allowedValues' must be an array",
                    );
                    None
                }
            };
            let default = def
                .get("defaultValue")
                .map(|d| self.node(d, &child_path(&path, "defaultValue"), functions, false));
            out.push(ParameterDef {
                name: name.clone(),
                param_type,
                default,
                allowed_values,
                min_value,
                max_value,
                min_length,
                max_length,
                nullable: def.get("nullable").and_then(Value::as_bool).unwrap_or(false),
                path,
            });
        }
        out
    }

    fn variables(&mut self, value: &Value, functions: &UserFunctions) -> Vec<VariableDef> {
        let Some(map) = value.as_object() else {
            self.error("variables", "'variables' must be an object");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in map {
            let path = child_path("variables", name);
            if name == "copy" {
                let Some(copies) = v.as_array() else {
                    self.error(
                        &path,
                        "'copy' in variables must be an array of {name, count, input}",
                    );
                    continue;
                };
                for (i, copy) in copies.iter().enumerate() {
                    let copy_path = index_path(&path, i);
                    let (Some(copy_name), Some(count), Some(input)) = (
                        copy.get("name").and_then(Value::as_str),
                        copy.get("count"),
                        copy.get("input"),
                    ) else {
                        self.error(&copy_path, "a variable copy needs 'name', 'count' and 'input'");
                        continue;
                    };
                    out.push(VariableDef {
                        name: copy_name.to_string(),
                        value: VariableValue::Copy {
                            count: self.node(
                                count,
                                &child_path(&copy_path, "count"),
                                functions,
                                false,
                            ),
                            input: self.node(
                                input,
                                &child_path(&copy_path, "input"),
                                functions,
                                false,
                            ),
                        },
                        path: copy_path,
                    });
                }
                continue;
            }
            let node = self.node(v, &path, functions, false);
            out.push(VariableDef { name: name.clone(), value: VariableValue::Plain(node), path });
        }
        out
    }

    fn resource(
        &mut self,
        value: &Value,
        path: &str,
        symbolic_name: Option<String>,
        parent: Option<usize>,
        template: &mut Template,
    ) {
        let Some(map) = value.as_object() else {
            self.error(path, "a resource must be an object");
            return;
        };
        let functions = template.functions.clone();
        let Some(own_type) = map.get("type").and_then(Value::as_str) else {
            self.error(path, "a resource needs a 'type' string such as 'Microsoft.ManagedIdentity/userAssignedIdentities'");
            return;
        };
        let resource_type = match parent {
            Some(p) if !own_type.contains('/') || own_type.split('/').count() < 2 => {
                format!("{}/{}", template.resources[p].resource_type, own_type)
            }
            Some(p) if !own_type.contains('.') => {
                format!("{}/{}", template.resources[p].resource_type, own_type)
            }
            _ => own_type.to_string(),
        };
        if !resource_type.contains('/') {
            self.error(
                &child_path(path, "type"),
                format!("'{resource_type}' is not a resource type like 'Namespace/type'"),
            );
        }
        let existing = map.get("existing").and_then(Value::as_bool).unwrap_or(false);
        let api_version = map.get("apiVersion").and_then(Value::as_str).map(str::to_string);
        if api_version.is_none() && !existing {
            self.error(
                path,
                format!("the resource of type '{resource_type}' needs an 'apiVersion'"),
            );
        }
        let Some(name_value) = map.get("name") else {
            self.error(path, format!("the resource of type '{resource_type}' needs a 'name'"));
            return;
        };
        // A nested child's short name is prefixed with its parent's name by the planner, as ARM does.
        let name = self.node(name_value, &child_path(path, "name"), &functions, false);
        let condition = map
            .get("condition")
            .map(|c| self.node(c, &child_path(path, "condition"), &functions, false));
        let copy = map.get("copy").and_then(|c| {
            let copy_path = child_path(path, "copy");
            let (Some(name), Some(count)) = (c.get("name").and_then(Value::as_str), c.get("count"))
            else {
                self.error(&copy_path, "a resource copy needs a 'name' and a 'count'");
                return None;
            };
            let serial = match c.get("mode").and_then(Value::as_str) {
                None => false,
                Some(m) if m.eq_ignore_ascii_case("parallel") => false,
                Some(m) if m.eq_ignore_ascii_case("serial") => true,
                Some(m) => {
                    self.error(
                        &child_path(&copy_path, "mode"),
                        format!("the copy mode '{m}' is neither 'serial' nor 'parallel'"),
                    );
                    false
                }
            };
            Some(CopySpec {
                name: name.to_string(),
                count: self.node(count, &child_path(&copy_path, "count"), &functions, false),
                serial,
                batch_size: c
                    .get("batchSize")
                    .map(|b| self.node(b, &child_path(&copy_path, "batchSize"), &functions, false)),
            })
        });
        if copy.is_some() && parent.is_some() {
            self.error(
                path,
                "a nested child resource can't have its own copy loop; declare it at the top level",
            );
        }
        let depends_on = match map.get("dependsOn") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    self.node(d, &index_path(&child_path(path, "dependsOn"), i), &functions, false)
                })
                .collect(),
            Some(_) => {
                self.error(
                    &child_path(path, "dependsOn"),
                    "'dependsOn' must be an array of resource names or IDs",
                );
                Vec::new()
            }
        };
        let nested_inner_scope = is_deployment_type(&resource_type).then(|| {
            map.get("properties")
                .and_then(|p| p.get("expressionEvaluationOptions"))
                .and_then(|o| o.get("scope"))
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("inner"))
        });
        let mut entries = Vec::new();
        for (key, v) in map {
            if RESOURCE_META_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                continue;
            }
            let key_path = child_path(path, key);
            let node = if key.eq_ignore_ascii_case("name") {
                name.clone()
            } else if key.eq_ignore_ascii_case("type") {
                Node::Literal(Value::String(resource_type.clone()))
            } else if key.eq_ignore_ascii_case("properties") && nested_inner_scope == Some(true) {
                self.inner_deployment_properties(v, &key_path, &functions)
            } else {
                self.node(v, &key_path, &functions, key.eq_ignore_ascii_case("properties"))
            };
            entries.push((Key::Literal(key.clone()), node));
        }
        let index = template.resources.len();
        template.resources.push(ResourceDef {
            path: path.to_string(),
            symbolic_name,
            resource_type,
            api_version,
            name,
            condition,
            copy,
            depends_on,
            body: Node::Object { entries, copies: Vec::new() },
            existing,
            parent,
            nested_inner_scope,
        });
        if let Some(children) = map.get("resources") {
            match children {
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        self.resource(
                            child,
                            &index_path(&child_path(path, "resources"), i),
                            None,
                            Some(index),
                            template,
                        );
                    }
                }
                _ => {
                    self.error(&child_path(path, "resources"), "child 'resources' must be an array")
                }
            }
        }
    }

    /// `properties` of an inner-scope nested deployment: its `template` is the child's business and stays literal;
    /// the template is still checked here so that its mistakes are reported with the parent's paths.
    fn inner_deployment_properties(
        &mut self,
        value: &Value,
        path: &str,
        functions: &UserFunctions,
    ) -> Node {
        let Some(map) = value.as_object() else {
            return self.node(value, path, functions, false);
        };
        let mut entries = Vec::new();
        for (key, v) in map {
            let key_path = child_path(path, key);
            let node = if key.eq_ignore_ascii_case("template") {
                let mut inner = Reader { diagnostics: Vec::new() };
                inner.template(v, SourceMap::default());
                for mut d in inner.diagnostics {
                    d.path = if d.path.is_empty() {
                        key_path.clone()
                    } else {
                        format!("{key_path}.{}", d.path)
                    };
                    self.diagnostics.push(d);
                }
                Node::Literal(v.clone())
            } else {
                self.node(v, &key_path, functions, false)
            };
            entries.push((Key::Literal(key.clone()), node));
        }
        Node::Object { entries, copies: Vec::new() }
    }

    fn outputs(&mut self, value: &Value, functions: &UserFunctions) -> Vec<OutputDef> {
        let Some(map) = value.as_object() else {
            self.error("outputs", "'outputs' must be an object");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, def) in map {
            let path = child_path("outputs", name);
            let Some(type_name) = def.get("type").and_then(Value::as_str) else {
                self.error(&path, format!("the output '{name}' needs a 'type'"));
                continue;
            };
            let Some(output_type) = ParamType::parse(type_name) else {
                self.error(
                    &child_path(&path, "type"),
                    format!("'{type_name}' is not an output type"),
                );
                continue;
            };
            let condition = def
                .get("condition")
                .map(|c| self.node(c, &child_path(&path, "condition"), functions, false));
            let value = if let Some(copy) = def.get("copy") {
                let copy_path = child_path(&path, "copy");
                let (Some(count), Some(input)) = (copy.get("count"), copy.get("input")) else {
                    self.error(&copy_path, "an output copy needs 'count' and 'input'");
                    continue;
                };
                OutputValue::Copy {
                    count: self.node(count, &child_path(&copy_path, "count"), functions, false),
                    input: self.node(input, &child_path(&copy_path, "input"), functions, false),
                }
            } else if let Some(v) = def.get("value") {
                OutputValue::Value(self.node(v, &child_path(&path, "value"), functions, false))
            } else {
                self.error(&path, format!("the output '{name}' needs a 'value' or a 'copy'"));
                continue;
            };
            out.push(OutputDef { name: name.clone(), output_type, condition, value, path });
        }
        out
    }

    /// Compiles a JSON value; `property_copy` allows `copy` arrays (resource `properties` and below).
    fn node(
        &mut self,
        value: &Value,
        path: &str,
        functions: &UserFunctions,
        property_copy: bool,
    ) -> Node {
        match value {
            Value::String(s) => match parse_template_string(s) {
                Ok(TemplateString::Literal(l)) => Node::Literal(Value::String(l)),
                Ok(TemplateString::Expression(expr)) => {
                    self.check_expr(&expr, path, functions);
                    Node::Expr {
                        expr: Arc::new(expr),
                        path: Arc::from(path),
                        text: Arc::from(s.as_str()),
                    }
                }
                Err(e) => {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::InvalidTemplate,
                            path,
                            format!("invalid expression: {}", e.message),
                        )
                        .with_span(e.span),
                    );
                    Node::Literal(Value::Null)
                }
            },
            Value::Array(items) => {
                let nodes: Vec<Node> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.node(v, &index_path(path, i), functions, property_copy))
                    .collect();
                if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                    Node::Literal(value.clone())
                } else {
                    Node::Array(nodes)
                }
            }
            Value::Object(map) => {
                let mut entries = Vec::new();
                let mut copies = Vec::new();
                for (key, v) in map {
                    let key_path = child_path(path, key);
                    if property_copy && key == "copy" && v.is_array() {
                        copies.extend(self.property_copies(v, &key_path, functions));
                        continue;
                    }
                    let key_node = match parse_template_string(key) {
                        Ok(TemplateString::Expression(expr)) => {
                            self.check_expr(&expr, &key_path, functions);
                            Key::Expr { expr: Arc::new(expr), path: Arc::from(key_path.as_str()) }
                        }
                        Ok(TemplateString::Literal(l)) => Key::Literal(l),
                        Err(e) => {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::InvalidTemplate,
                                    &key_path,
                                    format!("invalid expression in a property name: {}", e.message),
                                )
                                .with_span(e.span),
                            );
                            Key::Literal(key.clone())
                        }
                    };
                    entries.push((key_node, self.node(v, &key_path, functions, property_copy)));
                }
                let all_literal = copies.is_empty()
                    && entries.iter().all(|(k, v)| {
                        matches!(k, Key::Literal(_)) && matches!(v, Node::Literal(_))
                    });
                if all_literal
                    && entries
                        .iter()
                        .zip(map.keys())
                        .all(|((k, _), orig)| matches!(k, Key::Literal(l) if l == orig))
                {
                    Node::Literal(value.clone())
                } else {
                    Node::Object { entries, copies }
                }
            }
            other => Node::Literal(other.clone()),
        }
    }

    fn property_copies(
        &mut self,
        value: &Value,
        path: &str,
        functions: &UserFunctions,
    ) -> Vec<PropertyCopy> {
        let mut out = Vec::new();
        for (i, copy) in value.as_array().into_iter().flatten().enumerate() {
            let copy_path = index_path(path, i);
            let (Some(name), Some(count), Some(input)) =
                (copy.get("name").and_then(Value::as_str), copy.get("count"), copy.get("input"))
            else {
                self.error(&copy_path, "a property copy needs 'name', 'count' and 'input'");
                continue;
            };
            out.push(PropertyCopy {
                name: name.to_string(),
                count: self.node(count, &child_path(&copy_path, "count"), functions, false),
                input: self.node(input, &child_path(&copy_path, "input"), functions, true),
                path: Arc::from(copy_path.as_str()),
            });
        }
        out
    }

    /// Reports unknown functions and wrong argument counts anywhere in an expression.
    fn check_expr(&mut self, expr: &Expr, path: &str, functions: &UserFunctions) {
        let mut problems = Vec::new();
        expr.walk(&mut |e| {
            if let ExprKind::Call { namespace, name, name_span, args } = &e.kind {
                match namespace {
                    Some(ns) => {
                        let key = format!("{}.{}", ns.to_ascii_lowercase(), name.to_ascii_lowercase());
                        if !functions.contains_key(&key) {
                            problems.push((*name_span, format!("the template function '{ns}.{name}' is not defined in 'functions'")));
                        }
                    }
                    None => {
                        if let Err(message) = check_call(name, args.len()) {
                            problems.push((*name_span, message));
                        }
                    }
                }
            }
        });
        for (span, message) in problems {
            self.diagnostics
                .push(Diagnostic::new(Code::InvalidTemplate, path, message).with_span(span));
        }
    }
}
