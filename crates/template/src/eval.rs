//! Evaluation of expressions: the environment an expression sees and ARM's function library.

use std::cell::Cell;
use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;

use crate::context::{DeploymentContext, ResourceReader, TargetScope};
use crate::expr::{Expr, ExprKind, Span};
use crate::hash::{arm_guid, unique_string};

/// An evaluation failure, with the part of the expression it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub message: String,
    pub span: Span,
}

type EvalResult<T> = Result<T, EvalError>;

fn fail<T>(span: Span, message: impl Into<String>) -> EvalResult<T> {
    Err(EvalError { message: message.into(), span })
}

/// Where an expression stands in the template: some functions are only allowed in some places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    ParameterDefault,
    Variable,
    /// Resource names, conditions, copy counts and dependencies: evaluated before anything is deployed.
    Planning,
    Resource,
    Output,
    UserFunction,
}

/// One active `copy` loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopFrame {
    /// `None` for a resource or output loop, which plain `copyIndex()` addresses.
    pub name: Option<String>,
    pub index: i64,
}

/// A template resource that `reference('name')` may mean.
#[derive(Debug, Clone)]
pub struct ResolvedResource {
    pub id: String,
    pub api_version: Option<String>,
}

/// What the planner knows that expressions ask for.
pub trait Resolve {
    /// `variables('name')`: `None` if the template has no such variable.
    fn variable(&self, name: &str) -> Option<Result<Value, String>>;
    /// A template resource by name or symbolic name, for `reference()` and `list*()`.
    fn resource(&self, name_or_symbol: &str) -> Option<ResolvedResource>;
    /// The API version the template declares for a resource ID, if it deploys it.
    fn api_version_of(&self, resource_id: &str) -> Option<String>;
}

/// A user-defined function (`functions` section).
#[derive(Debug, Clone)]
pub struct UserFunction {
    pub parameters: Vec<String>,
    pub output: Expr,
    /// When the output is a literal rather than an expression.
    pub literal_output: Option<Value>,
}

/// User-defined functions by lowercase `namespace.name`.
pub type UserFunctions = HashMap<String, UserFunction>;

/// The environment of one evaluation.
pub struct Env<'a> {
    pub ctx: &'a DeploymentContext,
    pub parameters: &'a Map<String, Value>,
    pub resolve: &'a dyn Resolve,
    pub loops: &'a [LoopFrame],
    pub reader: Option<&'a dyn ResourceReader>,
    pub site: Site,
    pub deployment: &'a Value,
    pub functions: &'a UserFunctions,
    pub guid_counter: &'a Cell<u64>,
    pub lambda_variables: Vec<(String, Value)>,
    /// What-if mode: set when `reference()`/`list*()` cannot be answered yet, so that the expression is shown
    /// as written instead of failing the evaluation.
    pub unknown: Option<&'a Cell<bool>>,
}

/// Function names and how many arguments each takes (`usize::MAX`: any number).
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("add", 2, 2),
    ("and", 2, usize::MAX),
    ("array", 1, 1),
    ("base64", 1, 1),
    ("base64tojson", 1, 1),
    ("base64tostring", 1, 1),
    ("bool", 1, 1),
    ("coalesce", 1, usize::MAX),
    ("concat", 1, usize::MAX),
    ("contains", 2, 2),
    ("copyindex", 0, 2),
    ("createarray", 0, usize::MAX),
    ("createobject", 0, usize::MAX),
    ("datauri", 1, 1),
    ("datauritostring", 1, 1),
    ("datetimeadd", 2, 3),
    ("datetimefromepoch", 1, 1),
    ("datetimetoepoch", 1, 1),
    ("deployment", 0, 0),
    ("div", 2, 2),
    ("empty", 1, 1),
    ("endswith", 2, 2),
    ("equals", 2, 2),
    ("extensionresourceid", 3, usize::MAX),
    ("false", 0, 0),
    ("filter", 2, 2),
    ("first", 1, 1),
    ("flatten", 1, 1),
    ("format", 1, usize::MAX),
    ("greater", 2, 2),
    ("greaterorequals", 2, 2),
    ("guid", 1, usize::MAX),
    ("if", 3, 3),
    ("indexof", 2, 2),
    ("int", 1, 1),
    ("intersection", 2, usize::MAX),
    ("items", 1, 1),
    ("join", 2, 2),
    ("json", 1, 1),
    ("lambda", 1, usize::MAX),
    ("lambdavariables", 1, 1),
    ("last", 1, 1),
    ("lastindexof", 2, 2),
    ("length", 1, 1),
    ("less", 2, 2),
    ("lessorequals", 2, 2),
    ("managementgroupresourceid", 2, usize::MAX),
    ("map", 2, 2),
    ("max", 1, usize::MAX),
    ("min", 1, usize::MAX),
    ("mod", 2, 2),
    ("mul", 2, 2),
    ("newguid", 0, 0),
    ("not", 1, 1),
    ("null", 0, 0),
    ("objectkeys", 1, 1),
    ("shallowmerge", 1, 1),
    ("environment", 0, 0),
    ("tryget", 2, usize::MAX),
    ("or", 2, usize::MAX),
    ("padleft", 2, 3),
    ("parameters", 1, 1),
    ("range", 2, 2),
    ("reduce", 3, 3),
    ("reference", 1, 3),
    ("replace", 3, 3),
    ("resourcegroup", 0, 0),
    ("resourceid", 2, usize::MAX),
    ("skip", 2, 2),
    ("sort", 2, 2),
    ("split", 2, 2),
    ("startswith", 2, 2),
    ("string", 1, 1),
    ("sub", 2, 2),
    ("subscription", 0, 0),
    ("subscriptionresourceid", 2, usize::MAX),
    ("substring", 2, 3),
    ("take", 2, 2),
    ("tenant", 0, 0),
    ("tenantresourceid", 2, usize::MAX),
    ("tolower", 1, 1),
    ("toobject", 2, 3),
    ("toupper", 1, 1),
    ("trim", 1, 1),
    ("true", 0, 0),
    ("union", 1, usize::MAX),
    ("uniquestring", 1, usize::MAX),
    ("uri", 2, 2),
    ("uricomponent", 1, 1),
    ("uricomponenttostring", 1, 1),
    ("utcnow", 0, 1),
    ("variables", 1, 1),
];

/// Checks a call against the function table: `Err` names an unknown function or a wrong number of arguments.
pub fn check_call(name: &str, arg_count: usize) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("list") {
        return if (2..=3).contains(&arg_count) {
            Ok(())
        } else {
            Err(format!("the template function '{name}' expects 2 or 3 arguments, got {arg_count}"))
        };
    }
    match FUNCTIONS.iter().find(|(n, _, _)| *n == lower) {
        None => Err(format!("the template function '{name}' is not valid (unknown function)")),
        Some((_, min, max)) if arg_count < *min || arg_count > *max => {
            let expected = match (*min, *max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            Err(format!(
                "the template function '{name}' expects {expected} argument(s), got {arg_count}"
            ))
        }
        Some(_) => Ok(()),
    }
}

/// ARM's name for a value's type, as its messages print it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Float",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// `string()` of a value: strings as they are, booleans as .NET prints them, containers as compact JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Property lookup as ARM does it: exact first, then case-insensitive.
pub fn get_property<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .get(name)
        .or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn compare_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Deep equality, with integers and floats compared by value.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| get_property(y, k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn int_value(n: i64) -> Value {
    Value::Number(n.into())
}

impl Env<'_> {
    /// Evaluates an expression to a JSON value.
    pub fn eval(&mut self, expr: &Expr) -> EvalResult<Value> {
        match &expr.kind {
            ExprKind::String(s) => Ok(Value::String(s.clone())),
            ExprKind::Int(i) => Ok(int_value(*i)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Property { target, name } => {
                let value = self.eval(target)?;
                match &value {
                    Value::Object(map) => match get_property(map, name) {
                        Some(v) => Ok(v.clone()),
                        None => {
                            let available: Vec<&str> = map.keys().map(String::as_str).collect();
                            fail(
                                expr.span,
                                format!(
                                    "the language expression property '{name}' doesn't exist, available properties are '{}'",
                                    available.join(", ")
                                ),
                            )
                        }
                    },
                    other => fail(
                        expr.span,
                        format!("the language expression property '{name}' can't be read from a value of type '{}'", type_name(other)),
                    ),
                }
            }
            ExprKind::Index { target, index } => {
                let value = self.eval(target)?;
                let key = self.eval(index)?;
                match (&value, &key) {
                    (Value::Array(items), Value::Number(n)) => {
                        let i = n.as_i64().unwrap_or(-1);
                        if i < 0 || i as usize >= items.len() {
                            fail(
                                index.span,
                                format!(
                                    "the index {n} is out of range: the array has {} element(s)",
                                    items.len()
                                ),
                            )
                        } else {
                            Ok(items[i as usize].clone())
                        }
                    }
                    (Value::Object(map), Value::String(name)) => match get_property(map, name) {
                        Some(v) => Ok(v.clone()),
                        None => fail(
                            index.span,
                            format!("the language expression property '{name}' doesn't exist"),
                        ),
                    },
                    (container, key) => fail(
                        index.span,
                        format!(
                            "a value of type '{}' can't be indexed by a value of type '{}'",
                            type_name(container),
                            type_name(key)
                        ),
                    ),
                }
            }
            ExprKind::Call { namespace: Some(ns), name, name_span, args } => {
                self.call_user(ns, name, *name_span, args)
            }
            ExprKind::Call { namespace: None, name, name_span, args } => {
                self.call(name, *name_span, expr.span, args)
            }
        }
    }

    fn call_user(
        &mut self,
        ns: &str,
        name: &str,
        name_span: Span,
        args: &[Expr],
    ) -> EvalResult<Value> {
        let key = format!("{}.{}", ns.to_ascii_lowercase(), name.to_ascii_lowercase());
        let Some(function) = self.functions.get(&key) else {
            return fail(name_span, format!("the template function '{ns}.{name}' is not defined"));
        };
        if function.parameters.len() != args.len() {
            return fail(
                name_span,
                format!(
                    "the function '{ns}.{name}' expects {} argument(s), got {}",
                    function.parameters.len(),
                    args.len()
                ),
            );
        }
        let mut parameters = Map::new();
        for (param, arg) in function.parameters.iter().zip(args) {
            parameters.insert(param.clone(), self.eval(arg)?);
        }
        if let Some(literal) = &function.literal_output {
            return Ok(literal.clone());
        }
        struct NoVariables;
        impl Resolve for NoVariables {
            fn variable(&self, _: &str) -> Option<Result<Value, String>> {
                Some(Err("user-defined functions cannot use variables()".into()))
            }
            fn resource(&self, _: &str) -> Option<ResolvedResource> {
                None
            }
            fn api_version_of(&self, _: &str) -> Option<String> {
                None
            }
        }
        let mut inner = Env {
            ctx: self.ctx,
            parameters: &parameters,
            resolve: &NoVariables,
            loops: &[],
            reader: None,
            site: Site::UserFunction,
            deployment: self.deployment,
            functions: self.functions,
            guid_counter: self.guid_counter,
            lambda_variables: Vec::new(),
            unknown: None,
        };
        inner.eval(&function.output).map_err(|e| EvalError {
            message: format!("in the function '{ns}.{name}': {}", e.message),
            span: name_span,
        })
    }

    fn eval_args(&mut self, args: &[Expr]) -> EvalResult<Vec<Value>> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    fn call(
        &mut self,
        name: &str,
        name_span: Span,
        span: Span,
        args: &[Expr],
    ) -> EvalResult<Value> {
        if let Err(message) = check_call(name, args.len()) {
            return fail(name_span, message);
        }
        let lower = name.to_ascii_lowercase();
        // Functions that decide themselves which arguments to evaluate.
        match lower.as_str() {
            "if" => {
                let condition = self.eval(&args[0])?;
                let Value::Bool(condition) = condition else {
                    return fail(
                        args[0].span,
                        format!(
                            "the condition of 'if' must be a Boolean, got '{}'",
                            type_name(&condition)
                        ),
                    );
                };
                return self.eval(&args[if condition { 1 } else { 2 }]);
            }
            "filter" | "map" | "sort" | "reduce" | "toobject" => {
                return self.call_lambda_function(&lower, args)
            }
            "lambda" => {
                return fail(
                    name_span,
                    "'lambda' can only be an argument of filter, map, reduce, sort or toObject",
                )
            }
            _ => {}
        }
        let values = self.eval_args(args)?;
        if lower == "variables" {
            // Here rather than in `apply`: a variable's evaluation recurses, and `apply`'s frame is large.
            let Value::String(key) = &values[0] else {
                return fail(args[0].span, "the argument of 'variables' must be a String");
            };
            return match self.resolve.variable(key) {
                Some(Ok(v)) => Ok(v),
                Some(Err(message)) => fail(span, message),
                None => fail(span, format!("the template variable '{key}' is not found")),
            };
        }
        self.apply(name, &lower, name_span, span, args, values)
    }

    /// Applies an eagerly evaluated function. Kept out of [`Env::call`] (and never inlined) so that the large
    /// frame of this match is not on the stack while arguments are evaluated recursively.
    #[inline(never)]
    fn apply(
        &mut self,
        name: &str,
        lower: &str,
        name_span: Span,
        span: Span,
        args: &[Expr],
        values: Vec<Value>,
    ) -> EvalResult<Value> {
        let arg_span = |i: usize| args.get(i).map_or(span, |a| a.span);
        let string_arg = |i: usize| -> EvalResult<&str> {
            match &values[i] {
                Value::String(s) => Ok(s),
                other => fail(
                    arg_span(i),
                    format!(
                        "argument {} of '{name}' must be a String, got '{}'",
                        i + 1,
                        type_name(other)
                    ),
                ),
            }
        };
        let int_arg = |i: usize| -> EvalResult<i64> {
            match &values[i] {
                Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
                other => fail(
                    arg_span(i),
                    format!(
                        "argument {} of '{name}' must be an Integer, got '{}'",
                        i + 1,
                        type_name(other)
                    ),
                ),
            }
        };
        let bool_arg = |i: usize| -> EvalResult<bool> {
            match &values[i] {
                Value::Bool(b) => Ok(*b),
                other => fail(
                    arg_span(i),
                    format!(
                        "argument {} of '{name}' must be a Boolean, got '{}'",
                        i + 1,
                        type_name(other)
                    ),
                ),
            }
        };
        let all_strings =
            || -> EvalResult<Vec<&str>> { (0..values.len()).map(string_arg).collect() };

        if lower.starts_with("list") {
            return self.list_function(name, span, &values, &string_arg);
        }

        let result = match lower {
            // Scope and deployment.
            "resourcegroup" => self.resource_group_object(span)?,
            "subscription" => self.subscription_object(span)?,
            "tenant" => {
                let mut tenant = Map::new();
                tenant.insert("tenantId".into(), Value::String(self.ctx.tenant_id.clone()));
                tenant
                    .insert("id".into(), Value::String(format!("/tenants/{}", self.ctx.tenant_id)));
                Value::Object(tenant)
            }
            "deployment" => self.deployment.clone(),
            "parameters" => {
                let key = string_arg(0)?;
                match get_property(self.parameters, key) {
                    Some(v) => v.clone(),
                    None => {
                        return fail(
                            span,
                            format!("the template parameter '{key}' is not found; the template defines: '{}'", self.parameters.keys().cloned().collect::<Vec<_>>().join(", ")),
                        )
                    }
                }
            }
            "copyindex" => self.copy_index(span, &values, &arg_span)?,

            // Resource IDs and runtime state.
            "resourceid" => Value::String(self.resource_id(span, &all_strings()?)?),
            "subscriptionresourceid" => {
                let parts = all_strings()?;
                let type_at = parts.iter().position(|p| p.contains('/')).unwrap_or(usize::MAX);
                let (sub, rest) =
                    match type_at {
                        0 => (self.subscription_id(span)?, &parts[..]),
                        1 => (parts[0].to_string(), &parts[1..]),
                        _ => return fail(
                            span,
                            "subscriptionResourceId needs a resource type like 'Namespace/type'",
                        ),
                    };
                Value::String(subscription_level_id(
                    &sub,
                    &provider_path(span, rest[0], &rest[1..])?,
                ))
            }
            "tenantresourceid" => {
                let parts = all_strings()?;
                Value::String(provider_path(span, parts[0], &parts[1..])?)
            }
            "managementgroupresourceid" => {
                let parts = all_strings()?;
                let type_at = parts.iter().position(|p| p.contains('/')).unwrap_or(usize::MAX);
                let (mg, rest) = match (type_at, &self.ctx.management_group) {
                    (0, Some(mg)) => (mg.clone(), &parts[..]),
                    (1, _) => (parts[0].to_string(), &parts[1..]),
                    (0, None) => return fail(span, "managementGroupResourceId needs a management group outside management-group deployments"),
                    _ => return fail(span, "managementGroupResourceId needs a resource type like 'Namespace/type'"),
                };
                Value::String(format!(
                    "/providers/Microsoft.Management/managementGroups/{mg}{}",
                    provider_path(span, rest[0], &rest[1..])?
                ))
            }
            "extensionresourceid" => {
                let parts = all_strings()?;
                let base = parts[0].trim_end_matches('/');
                Value::String(format!("{base}{}", provider_path(span, parts[1], &parts[2..])?))
            }
            "reference" => self.reference(span, &values, &string_arg)?,

            // Hashes, clocks, GUIDs.
            "guid" => Value::String(arm_guid(&all_strings()?)),
            "uniquestring" => Value::String(unique_string(&all_strings()?)),
            "newguid" => {
                if self.site != Site::ParameterDefault {
                    return fail(name_span, "the template function 'newGuid' can only be used in the default value of a parameter");
                }
                let n = self.guid_counter.get();
                self.guid_counter.set(n + 1);
                Value::String(fresh_guid(self.ctx.guid_seed, n))
            }
            "utcnow" => {
                if self.site != Site::ParameterDefault {
                    return fail(name_span, "the template function 'utcNow' can only be used in the default value of a parameter");
                }
                let format = if values.is_empty() { "yyyyMMddTHHmmssZ" } else { string_arg(0)? };
                Value::String(
                    format_datetime(self.ctx.now, format)
                        .map_err(|m| EvalError { message: m, span: arg_span(0) })?,
                )
            }
            "datetimeadd" => {
                let base = parse_datetime(string_arg(0)?)
                    .map_err(|m| EvalError { message: m, span: arg_span(0) })?;
                let duration = parse_iso_duration(string_arg(1)?)
                    .map_err(|m| EvalError { message: m, span: arg_span(1) })?;
                let result = add_duration(base, &duration).ok_or_else(|| EvalError {
                    message: "the date is out of range".into(),
                    span,
                })?;
                let format =
                    if values.len() == 3 { string_arg(2)? } else { "yyyy-MM-ddTHH:mm:ssZ" };
                Value::String(
                    format_datetime(result, format)
                        .map_err(|m| EvalError { message: m, span: arg_span(2) })?,
                )
            }
            "datetimefromepoch" => {
                let epoch = int_arg(0)?;
                let at = OffsetDateTime::from_unix_timestamp(epoch).map_err(|_| EvalError {
                    message: format!("the epoch time {epoch} is out of range"),
                    span,
                })?;
                Value::String(format_datetime(at, "yyyy-MM-ddTHH:mm:ssZ").unwrap_or_default())
            }
            "datetimetoepoch" => {
                let at = parse_datetime(string_arg(0)?)
                    .map_err(|m| EvalError { message: m, span: arg_span(0) })?;
                int_value(at.unix_timestamp())
            }

            // Logic and comparison.
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            "not" => Value::Bool(!bool_arg(0)?),
            "and" => Value::Bool(
                (0..values.len())
                    .map(bool_arg)
                    .collect::<EvalResult<Vec<_>>>()?
                    .into_iter()
                    .all(|b| b),
            ),
            "or" => Value::Bool(
                (0..values.len())
                    .map(bool_arg)
                    .collect::<EvalResult<Vec<_>>>()?
                    .into_iter()
                    .any(|b| b),
            ),
            "equals" => Value::Bool(values_equal(&values[0], &values[1])),
            "less" | "lessorequals" | "greater" | "greaterorequals" => {
                let Some(order) = compare_values(&values[0], &values[1]) else {
                    return fail(
                        span,
                        format!(
                            "'{name}' compares two Integers or two Strings, got '{}' and '{}'",
                            type_name(&values[0]),
                            type_name(&values[1])
                        ),
                    );
                };
                use std::cmp::Ordering::*;
                Value::Bool(match lower {
                    "less" => order == Less,
                    "lessorequals" => order != Greater,
                    "greater" => order == Greater,
                    _ => order != Less,
                })
            }
            "coalesce" => values.iter().find(|v| !v.is_null()).cloned().unwrap_or(Value::Null),

            // Numbers.
            "add" | "sub" | "mul" | "div" | "mod" => {
                let (a, b) = (int_arg(0)?, int_arg(1)?);
                let result = match lower {
                    "add" => a.checked_add(b),
                    "sub" => a.checked_sub(b),
                    "mul" => a.checked_mul(b),
                    _ if b == 0 => return fail(arg_span(1), format!("'{name}' by zero")),
                    "div" => a.checked_div(b),
                    _ => a.checked_rem(b),
                };
                int_value(result.ok_or_else(|| EvalError {
                    message: format!("'{name}' overflows a 64-bit integer"),
                    span,
                })?)
            }
            "min" | "max" => {
                let numbers: Vec<i64> = if values.len() == 1 {
                    match &values[0] {
                        Value::Array(items) => items
                            .iter()
                            .map(|v| {
                                v.as_i64().ok_or_else(|| EvalError {
                                    message: format!(
                                        "'{name}' takes Integers, got '{}'",
                                        type_name(v)
                                    ),
                                    span,
                                })
                            })
                            .collect::<EvalResult<_>>()?,
                        _ => vec![int_arg(0)?],
                    }
                } else {
                    (0..values.len()).map(int_arg).collect::<EvalResult<_>>()?
                };
                let pick = if lower == "min" { numbers.iter().min() } else { numbers.iter().max() };
                match pick {
                    Some(n) => int_value(*n),
                    None => return fail(span, format!("'{name}' of an empty array")),
                }
            }
            "int" => match &values[0] {
                Value::Number(n) => match n.as_i64() {
                    Some(i) => int_value(i),
                    None => int_value(n.as_f64().unwrap_or_default().trunc() as i64),
                },
                Value::String(s) => int_value(s.trim().parse::<i64>().map_err(|_| EvalError {
                    message: format!("the value '{s}' can't be converted to an Integer"),
                    span: arg_span(0),
                })?),
                Value::Bool(b) => int_value(i64::from(*b)),
                other => {
                    return fail(
                        arg_span(0),
                        format!(
                            "a value of type '{}' can't be converted to an Integer",
                            type_name(other)
                        ),
                    )
                }
            },
            "bool" => match &values[0] {
                Value::Bool(b) => Value::Bool(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
                Value::Number(n) if n.as_i64().is_some() => Value::Bool(n.as_i64() != Some(0)),
                other => {
                    return fail(
                        arg_span(0),
                        format!("the value '{}' can't be converted to a Boolean", to_text(other)),
                    )
                }
            },

            // Strings.
            "string" => Value::String(to_text(&values[0])),
            "tolower" => Value::String(string_arg(0)?.to_lowercase()),
            "toupper" => Value::String(string_arg(0)?.to_uppercase()),
            "trim" => Value::String(string_arg(0)?.trim().to_string()),
            "replace" => Value::String(replace_all(string_arg(0)?, string_arg(1)?, string_arg(2)?)),
            "split" => {
                let text = string_arg(0)?;
                let delimiters: Vec<String> = match &values[1] {
                    Value::String(d) => vec![d.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|d| {
                            d.as_str().map(str::to_string).ok_or_else(|| EvalError {
                                message: "the delimiters of 'split' must be Strings".into(),
                                span: arg_span(1),
                            })
                        })
                        .collect::<EvalResult<_>>()?,
                    other => {
                        return fail(
                            arg_span(1),
                            format!(
                                "the delimiter of 'split' must be a String or an Array, got '{}'",
                                type_name(other)
                            ),
                        )
                    }
                };
                Value::Array(split_any(text, &delimiters).into_iter().map(Value::String).collect())
            }
            "substring" => {
                let chars: Vec<char> = string_arg(0)?.chars().collect();
                let start = int_arg(1)?;
                let length =
                    if values.len() == 3 { int_arg(2)? } else { chars.len() as i64 - start };
                if start < 0 || start as usize > chars.len() {
                    return fail(arg_span(1), format!("the start index {start} of 'substring' is outside the string of length {}", chars.len()));
                }
                if length < 0 || start.saturating_add(length) as usize > chars.len() {
                    return fail(span, format!("the length {length} of 'substring' from index {start} goes beyond the string of length {}", chars.len()));
                }
                Value::String(chars[start as usize..(start + length) as usize].iter().collect())
            }
            "startswith" => Value::Bool(
                string_arg(0)?.to_lowercase().starts_with(&string_arg(1)?.to_lowercase()),
            ),
            "endswith" => {
                Value::Bool(string_arg(0)?.to_lowercase().ends_with(&string_arg(1)?.to_lowercase()))
            }
            "indexof" | "lastindexof" => match &values[0] {
                Value::Array(items) => {
                    let found = if lower == "indexof" {
                        items.iter().position(|v| values_equal(v, &values[1]))
                    } else {
                        items.iter().rposition(|v| values_equal(v, &values[1]))
                    };
                    int_value(found.map_or(-1, |i| i as i64))
                }
                _ => {
                    let haystack: Vec<char> = string_arg(0)?.to_lowercase().chars().collect();
                    let needle: Vec<char> = string_arg(1)?.to_lowercase().chars().collect();
                    int_value(find_chars(&haystack, &needle, lower == "lastindexof"))
                }
            },
            "padleft" => {
                let text = match &values[0] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return fail(
                            arg_span(0),
                            format!(
                                "'padLeft' pads a String or an Integer, got '{}'",
                                type_name(other)
                            ),
                        )
                    }
                };
                let width = int_arg(1)?;
                let pad = if values.len() == 3 {
                    let p = string_arg(2)?;
                    let mut chars = p.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => c,
                        _ => {
                            return fail(
                                arg_span(2),
                                "the padding of 'padLeft' must be one character",
                            )
                        }
                    }
                } else {
                    ' '
                };
                if width > MAX_PADDED_WIDTH {
                    return fail(
                        arg_span(1),
                        format!("'padLeft' pads to at most {MAX_PADDED_WIDTH} characters"),
                    );
                }
                let missing = (width.max(0) as usize).saturating_sub(text.chars().count());
                Value::String(std::iter::repeat_n(pad, missing).chain(text.chars()).collect())
            }
            "format" => Value::String(
                dotnet_format(string_arg(0)?, &values[1..])
                    .map_err(|m| EvalError { message: m, span: arg_span(0) })?,
            ),
            "base64" => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(string_arg(0)?))
            }
            "base64tostring" | "base64tojson" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(string_arg(0)?)
                    .map_err(|e| EvalError {
                        message: format!("invalid base64: {e}"),
                        span: arg_span(0),
                    })?;
                let text = String::from_utf8(bytes).map_err(|_| EvalError {
                    message: "the decoded base64 is not UTF-8 text".into(),
                    span: arg_span(0),
                })?;
                if lower == "base64tostring" {
                    Value::String(text)
                } else {
                    parse_json_text(&text)
                        .map_err(|m| EvalError { message: m, span: arg_span(0) })?
                }
            }
            "datauri" => Value::String(format!(
                "data:text/plain;charset=utf8;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(to_text(&values[0]))
            )),
            "datauritostring" => {
                let uri = string_arg(0)?;
                let (header, data) = uri
                    .strip_prefix("data:")
                    .and_then(|rest| rest.split_once(','))
                    .ok_or_else(|| EvalError {
                        message: format!("'{uri}' is not a data URI"),
                        span: arg_span(0),
                    })?;
                if header.ends_with(";base64") {
                    let bytes =
                        base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| {
                            EvalError {
                                message: format!("invalid base64 in the data URI: {e}"),
                                span: arg_span(0),
                            }
                        })?;
                    Value::String(String::from_utf8_lossy(&bytes).into_owned())
                } else {
                    Value::String(percent_decode(data))
                }
            }
            "uri" => Value::String(combine_uri(string_arg(0)?, string_arg(1)?)),
            "uricomponent" => Value::String(escape_data_string(string_arg(0)?)),
            "uricomponenttostring" => Value::String(percent_decode(string_arg(0)?)),
            "json" => parse_json_text(string_arg(0)?)
                .map_err(|m| EvalError { message: m, span: arg_span(0) })?,

            // Arrays, objects and strings alike.
            "concat" => {
                if values.iter().all(|v| matches!(v, Value::Array(_) | Value::Null))
                    && values.iter().any(Value::is_array)
                {
                    Value::Array(
                        values
                            .into_iter()
                            .flat_map(|v| match v {
                                Value::Array(items) => items,
                                _ => Vec::new(),
                            })
                            .collect(),
                    )
                } else {
                    let mut out = String::new();
                    for (i, value) in values.iter().enumerate() {
                        match value {
                            Value::Array(_) | Value::Object(_) => return fail(arg_span(i), format!("'concat' joins either Arrays or Strings, got '{}' among Strings", type_name(value))),
                            other => out.push_str(&to_text(other)),
                        }
                    }
                    Value::String(out)
                }
            }
            "length" => match &values[0] {
                Value::String(s) => int_value(s.encode_utf16().count() as i64),
                Value::Array(items) => int_value(items.len() as i64),
                Value::Object(map) => int_value(map.len() as i64),
                other => {
                    return fail(
                        arg_span(0),
                        format!(
                            "'length' takes a String, an Array or an Object, got '{}'",
                            type_name(other)
                        ),
                    )
                }
            },
            "empty" => Value::Bool(match &values[0] {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                _ => false,
            }),
            "contains" => Value::Bool(match &values[0] {
                Value::String(s) => s.contains(&to_text(&values[1])),
                Value::Array(items) => items.iter().any(|v| values_equal(v, &values[1])),
                Value::Object(map) => get_property(map, string_arg(1)?).is_some(),
                other => {
                    return fail(
                        arg_span(0),
                        format!(
                            "'contains' looks in a String, an Array or an Object, got '{}'",
                            type_name(other)
                        ),
                    )
                }
            }),
            "first" | "last" => match &values[0] {
                Value::Array(items) => {
                    (if lower == "first" { items.first() } else { items.last() })
                        .cloned()
                        .unwrap_or(Value::Null)
                }
                Value::String(s) => {
                    let c = if lower == "first" { s.chars().next() } else { s.chars().last() };
                    Value::String(c.map(String::from).unwrap_or_default())
                }
                other => {
                    return fail(
                        arg_span(0),
                        format!("'{name}' takes an Array or a String, got '{}'", type_name(other)),
                    )
                }
            },
            "take" | "skip" => {
                let count = int_arg(1)?.max(0) as usize;
                match &values[0] {
                    Value::Array(items) => {
                        let count = count.min(items.len());
                        Value::Array(if lower == "take" {
                            items[..count].to_vec()
                        } else {
                            items[count..].to_vec()
                        })
                    }
                    Value::String(s) => Value::String(if lower == "take" {
                        s.chars().take(count).collect()
                    } else {
                        s.chars().skip(count).collect()
                    }),
                    other => {
                        return fail(
                            arg_span(0),
                            format!(
                                "'{name}' takes an Array or a String, got '{}'",
                                type_name(other)
                            ),
                        )
                    }
                }
            }
            "array" => match &values[0] {
                Value::Array(_) => values[0].clone(),
                other => Value::Array(vec![other.clone()]),
            },
            "createarray" => Value::Array(values),
            "createobject" => {
                if values.len() % 2 != 0 {
                    return fail(span, "'createObject' takes pairs of key and value");
                }
                let mut map = Map::new();
                for pair in 0..values.len() / 2 {
                    let key = string_arg(pair * 2)?.to_string();
                    map.insert(key, values[pair * 2 + 1].clone());
                }
                Value::Object(map)
            }
            "union" => {
                if values.iter().all(Value::is_object) {
                    let mut merged = Map::new();
                    for value in &values {
                        if let Value::Object(map) = value {
                            merge_objects(&mut merged, map);
                        }
                    }
                    Value::Object(merged)
                } else if values.iter().all(Value::is_array) {
                    let mut out: Vec<Value> = Vec::new();
                    for item in values.iter().flat_map(|v| v.as_array().into_iter().flatten()) {
                        if !out.iter().any(|o| values_equal(o, item)) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                } else {
                    return fail(span, "'union' takes only Arrays or only Objects");
                }
            }
            "intersection" => {
                if values.iter().all(Value::is_object) {
                    let first = values[0].as_object().cloned().unwrap_or_default();
                    let mut out = Map::new();
                    for (k, v) in first {
                        if values[1..].iter().all(|o| {
                            o.as_object()
                                .and_then(|m| get_property(m, &k))
                                .is_some_and(|w| values_equal(&v, w))
                        }) {
                            out.insert(k, v);
                        }
                    }
                    Value::Object(out)
                } else if values.iter().all(Value::is_array) {
                    let mut out: Vec<Value> = Vec::new();
                    for item in values[0].as_array().into_iter().flatten() {
                        let everywhere = values[1..].iter().all(|a| {
                            a.as_array()
                                .is_some_and(|items| items.iter().any(|w| values_equal(item, w)))
                        });
                        if everywhere && !out.iter().any(|o| values_equal(o, item)) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                } else {
                    return fail(span, "'intersection' takes only Arrays or only Objects");
                }
            }
            "range" => {
                let (start, count) = (int_arg(0)?, int_arg(1)?);
                if !(0..=10_000).contains(&count) {
                    return fail(
                        arg_span(1),
                        format!("the count of 'range' must be between 0 and 10000, got {count}"),
                    );
                }
                if start.checked_add(count).is_none() {
                    return fail(span, "'range' goes beyond a 64-bit integer");
                }
                Value::Array((0..count).map(|i| int_value(start + i)).collect())
            }
            "items" => match &values[0] {
                Value::Object(map) => {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_by(|a, b| {
                        a.0.to_lowercase().cmp(&b.0.to_lowercase()).then(a.0.cmp(b.0))
                    });
                    Value::Array(
                        entries
                            .into_iter()
                            .map(|(k, v)| {
                                let mut item = Map::new();
                                item.insert("key".into(), Value::String(k.clone()));
                                item.insert("value".into(), v.clone());
                                Value::Object(item)
                            })
                            .collect(),
                    )
                }
                other => {
                    return fail(
                        arg_span(0),
                        format!("'items' takes an Object, got '{}'", type_name(other)),
                    )
                }
            },
            "shallowmerge" => match &values[0] {
                Value::Array(items) => {
                    let mut merged = Map::new();
                    for item in items {
                        match item {
                            Value::Object(map) => {
                                merged.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())))
                            }
                            other => {
                                return fail(
                                    arg_span(0),
                                    format!(
                                        "'shallowMerge' takes an Array of Objects, found '{}'",
                                        type_name(other)
                                    ),
                                )
                            }
                        }
                    }
                    Value::Object(merged)
                }
                other => {
                    return fail(
                        arg_span(0),
                        format!("'shallowMerge' takes an Array, got '{}'", type_name(other)),
                    )
                }
            },
            "tryget" => {
                // Safe dereference (Bicep's `.?`): null as soon as a key or index is missing.
                let mut current = values[0].clone();
                for key in &values[1..] {
                    current = match (&current, key) {
                        (Value::Object(map), Value::String(k)) => {
                            get_property(map, k).cloned().unwrap_or(Value::Null)
                        }
                        (Value::Array(items), Value::Number(n)) => n
                            .as_u64()
                            .and_then(|i| items.get(i as usize))
                            .cloned()
                            .unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                current
            }
            "environment" => match &self.ctx.environment {
                Some(environment) => environment.clone(),
                None => return fail(
                    name_span,
                    "'environment()' is not available: this deployment has no cloud environment",
                ),
            },
            "objectkeys" => match &values[0] {
                Value::Object(map) => {
                    Value::Array(map.keys().map(|k| Value::String(k.clone())).collect())
                }
                other => {
                    return fail(
                        arg_span(0),
                        format!("'objectKeys' takes an Object, got '{}'", type_name(other)),
                    )
                }
            },
            "flatten" => match &values[0] {
                Value::Array(items) => {
                    let mut out = Vec::new();
                    for item in items {
                        match item {
                            Value::Array(inner) => out.extend(inner.iter().cloned()),
                            other => {
                                return fail(
                                    arg_span(0),
                                    format!(
                                        "'flatten' takes an Array of Arrays, found '{}'",
                                        type_name(other)
                                    ),
                                )
                            }
                        }
                    }
                    Value::Array(out)
                }
                other => {
                    return fail(
                        arg_span(0),
                        format!("'flatten' takes an Array, got '{}'", type_name(other)),
                    )
                }
            },
            "join" => match &values[0] {
                Value::Array(items) => Value::String(
                    items.iter().map(to_text).collect::<Vec<_>>().join(string_arg(1)?),
                ),
                other => {
                    return fail(
                        arg_span(0),
                        format!("'join' takes an Array, got '{}'", type_name(other)),
                    )
                }
            },
            "lambdavariables" => {
                let key = string_arg(0)?;
                match self.lambda_variables.iter().rev().find(|(n, _)| n == key) {
                    Some((_, v)) => v.clone(),
                    None => {
                        return fail(
                            span,
                            format!("the lambda variable '{key}' is not defined here"),
                        )
                    }
                }
            }
            _ => {
                return fail(
                    name_span,
                    format!("the template function '{name}' is not valid (unknown function)"),
                )
            }
        };
        Ok(result)
    }

    fn subscription_id(&self, span: Span) -> EvalResult<String> {
        self.ctx.subscription_id.clone().ok_or_else(|| EvalError {
            message: "this deployment has no subscription".into(),
            span,
        })
    }

    fn resource_group_object(&self, span: Span) -> EvalResult<Value> {
        let (Some(sub), Some(rg)) = (&self.ctx.subscription_id, &self.ctx.resource_group) else {
            return fail(span, "the template function 'resourceGroup' is not expected at this location: the deployment does not target a resource group");
        };
        let mut object = Map::new();
        object.insert(
            "id".into(),
            Value::String(format!("/subscriptions/{sub}/resourceGroups/{}", rg.name)),
        );
        object.insert("name".into(), Value::String(rg.name.clone()));
        object.insert("type".into(), Value::String("Microsoft.Resources/resourceGroups".into()));
        object.insert("location".into(), Value::String(rg.location.clone()));
        if let Some(managed_by) = &rg.managed_by {
            object.insert("managedBy".into(), Value::String(managed_by.clone()));
        }
        object.insert("tags".into(), Value::Object(rg.tags.clone()));
        let mut properties = Map::new();
        properties.insert("provisioningState".into(), Value::String("Succeeded".into()));
        object.insert("properties".into(), Value::Object(properties));
        Ok(Value::Object(object))
    }

    fn subscription_object(&self, span: Span) -> EvalResult<Value> {
        let sub = self.subscription_id(span)?;
        let mut object = Map::new();
        object.insert("id".into(), Value::String(format!("/subscriptions/{sub}")));
        object.insert("subscriptionId".into(), Value::String(sub));
        object.insert("tenantId".into(), Value::String(self.ctx.tenant_id.clone()));
        object.insert(
            "displayName".into(),
            Value::String(self.ctx.subscription_display_name.clone()),
        );
        Ok(Value::Object(object))
    }

    fn copy_index(
        &self,
        span: Span,
        values: &[Value],
        arg_span: &dyn Fn(usize) -> Span,
    ) -> EvalResult<Value> {
        let (loop_name, offset) = match values {
            [] => (None, 0),
            [Value::String(name)] => (Some(name.as_str()), 0),
            [Value::Number(n)] => (None, n.as_i64().unwrap_or_default()),
            [Value::String(name), Value::Number(n)] => {
                (Some(name.as_str()), n.as_i64().unwrap_or_default())
            }
            _ => {
                return fail(
                    arg_span(0),
                    "'copyIndex' takes an optional loop name and an optional integer offset",
                )
            }
        };
        let frame = match loop_name {
            Some(name) => self
                .loops
                .iter()
                .rev()
                .find(|f| f.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))),
            None => {
                self.loops.iter().rev().find(|f| f.name.is_none()).or_else(|| self.loops.first())
            }
        };
        match frame {
            Some(frame) => frame
                .index
                .checked_add(offset)
                .map(int_value)
                .ok_or_else(|| EvalError { message: "the offset of 'copyIndex' is too large".into(), span }),
            None => fail(
                span,
                match loop_name {
                    Some(name) => format!("the template function 'copyIndex' refers to the loop '{name}', which does not enclose it"),
                    None => "the template function 'copyIndex' is not expected at this location: it is not inside a copy loop".into(),
                },
            ),
        }
    }

    /// `resourceId([subscriptionId], [resourceGroupName], type, names...)`.
    fn resource_id(&self, span: Span, parts: &[&str]) -> EvalResult<String> {
        let Some(type_at) = parts.iter().take(3).position(|p| p.contains('/')) else {
            return fail(span, "resourceId needs a resource type like 'Namespace/type' among its first three arguments");
        };
        let (resource_type, names) = (parts[type_at], &parts[type_at + 1..]);
        let provider = provider_path(span, resource_type, names)?;
        let scope = self.ctx.scope();
        let (sub, rg) = match type_at {
            0 => match &scope {
                TargetScope::ResourceGroup { subscription_id, resource_group } => {
                    (Some(subscription_id.clone()), Some(resource_group.clone()))
                }
                TargetScope::Subscription(sub) => (Some(sub.clone()), None),
                TargetScope::ManagementGroup(mg) => {
                    return Ok(format!(
                        "/providers/Microsoft.Management/managementGroups/{mg}{provider}"
                    ))
                }
                TargetScope::Tenant => return Ok(provider),
            },
            1 => (Some(self.subscription_id(span)?), Some(parts[0].to_string())),
            _ => (Some(parts[0].to_string()), Some(parts[1].to_string())),
        };
        Ok(match (sub, rg) {
            (Some(sub), Some(rg)) => format!("/subscriptions/{sub}/resourceGroups/{rg}{provider}"),
            (Some(sub), None) => subscription_level_id(&sub, &provider),
            _ => provider,
        })
    }

    fn target_resource(
        &self,
        span: Span,
        name_or_id: &str,
    ) -> EvalResult<(String, Option<String>)> {
        if name_or_id.starts_with('/') {
            return Ok((name_or_id.to_string(), self.resolve.api_version_of(name_or_id)));
        }
        match self.resolve.resource(name_or_id) {
            Some(resolved) => Ok((resolved.id, resolved.api_version)),
            None => fail(span, format!("the resource '{name_or_id}' is not defined in the template (use a resource ID for resources deployed elsewhere)")),
        }
    }

    fn reference<'v>(
        &self,
        span: Span,
        values: &'v [Value],
        string_arg: &dyn Fn(usize) -> EvalResult<&'v str>,
    ) -> EvalResult<Value> {
        if matches!(self.site, Site::Variable | Site::ParameterDefault | Site::UserFunction) {
            return fail(span, "the template function 'reference' is not expected at this location: it can't be used in parameters, variables or functions");
        }
        let (id, declared_api) = self.target_resource(span, string_arg(0)?)?;
        let api_version =
            if values.len() >= 2 { Some(string_arg(1)?.to_string()) } else { declared_api };
        let full = values.len() == 3 && string_arg(2)?.eq_ignore_ascii_case("full");
        let Some(reader) = self.reader else {
            return fail(span, format!("the value of 'reference' for '{id}' is not known before the resource is deployed"));
        };
        let mut value = reader.reference(&id, api_version.as_deref(), full).map_err(|m| {
            if let Some(unknown) = self.unknown {
                unknown.set(true);
            }
            EvalError { message: format!("reference('{id}'): {m}"), span }
        })?;
        if full {
            // ARM's 'Full' form carries the resource ID and API version it read with.
            if let Value::Object(map) = &mut value {
                map.entry("resourceId").or_insert_with(|| Value::String(id.clone()));
                if let Some(api) = &api_version {
                    map.entry("apiVersion").or_insert_with(|| Value::String(api.clone()));
                }
            }
        }
        Ok(value)
    }

    fn list_function<'v>(
        &self,
        name: &str,
        span: Span,
        values: &'v [Value],
        string_arg: &dyn Fn(usize) -> EvalResult<&'v str>,
    ) -> EvalResult<Value> {
        if matches!(self.site, Site::Variable | Site::ParameterDefault | Site::UserFunction) {
            return fail(span, format!("the template function '{name}' is not expected at this location: it can't be used in parameters, variables or functions"));
        }
        let (id, _) = self.target_resource(span, string_arg(0)?)?;
        let api_version = string_arg(1)?;
        let Some(reader) = self.reader else {
            return fail(
                span,
                format!(
                    "the value of '{name}' for '{id}' is not known before the resource is deployed"
                ),
            );
        };
        reader.list(name, &id, api_version, values.get(2)).map_err(|m| {
            if let Some(unknown) = self.unknown {
                unknown.set(true);
            }
            EvalError { message: format!("{name}('{id}'): {m}"), span }
        })
    }

    fn call_lambda_function(&mut self, name: &str, args: &[Expr]) -> EvalResult<Value> {
        let input = self.eval(&args[0])?;
        let lambda_at = |i: usize| -> EvalResult<(Vec<String>, &Expr)> {
            let arg = &args[i];
            match &arg.kind {
                ExprKind::Call { namespace: None, name, args: parts, .. }
                    if name.eq_ignore_ascii_case("lambda") && !parts.is_empty() =>
                {
                    let mut names = Vec::new();
                    for part in &parts[..parts.len() - 1] {
                        match &part.kind {
                            ExprKind::String(s) => names.push(s.clone()),
                            _ => {
                                return fail(
                                    part.span,
                                    "the parameter names of 'lambda' must be string literals",
                                )
                            }
                        }
                    }
                    Ok((names, &parts[parts.len() - 1]))
                }
                _ => fail(arg.span, "expected a lambda('name', ...) expression"),
            }
        };
        let apply = |env: &mut Env<'_>,
                     lambda: &(Vec<String>, &Expr),
                     params: Vec<Value>|
         -> EvalResult<Value> {
            let (names, body) = lambda;
            if names.len() > params.len() {
                return fail(
                    body.span,
                    format!(
                        "the lambda takes {} parameter(s), at most {} are given",
                        names.len(),
                        params.len()
                    ),
                );
            }
            let depth = env.lambda_variables.len();
            env.lambda_variables.extend(names.iter().cloned().zip(params));
            let result = env.eval(body);
            env.lambda_variables.truncate(depth);
            result
        };
        let Value::Array(items) = input else {
            return fail(
                args[0].span,
                format!("'{name}' takes an Array, got '{}'", type_name(&input)),
            );
        };
        match name {
            "filter" => {
                let lambda = lambda_at(1)?;
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match apply(self, &lambda, vec![item.clone(), int_value(i as i64)])? {
                        Value::Bool(true) => out.push(item),
                        Value::Bool(false) => {}
                        other => {
                            return fail(
                                args[1].span,
                                format!(
                                    "the lambda of 'filter' must return a Boolean, got '{}'",
                                    type_name(&other)
                                ),
                            )
                        }
                    }
                }
                Ok(Value::Array(out))
            }
            "map" => {
                let lambda = lambda_at(1)?;
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    out.push(apply(self, &lambda, vec![item, int_value(i as i64)])?);
                }
                Ok(Value::Array(out))
            }
            "reduce" => {
                let mut accumulator = self.eval(&args[1])?;
                let lambda = lambda_at(2)?;
                for (i, item) in items.into_iter().enumerate() {
                    accumulator =
                        apply(self, &lambda, vec![accumulator, item, int_value(i as i64)])?;
                }
                Ok(accumulator)
            }
            "sort" => {
                let lambda = lambda_at(1)?;
                // Insertion sort with the lambda as "a comes before b": stable, and errors propagate.
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for item in items {
                    let mut at = out.len();
                    while at > 0 {
                        match apply(self, &lambda, vec![item.clone(), out[at - 1].clone()])? {
                            Value::Bool(true) => at -= 1,
                            Value::Bool(false) => break,
                            other => {
                                return fail(
                                    args[1].span,
                                    format!(
                                        "the lambda of 'sort' must return a Boolean, got '{}'",
                                        type_name(&other)
                                    ),
                                )
                            }
                        }
                    }
                    out.insert(at, item);
                }
                Ok(Value::Array(out))
            }
            _ => {
                let key_lambda = lambda_at(1)?;
                let value_lambda = if args.len() == 3 { Some(lambda_at(2)?) } else { None };
                let mut out = Map::new();
                for item in items {
                    let key = match apply(self, &key_lambda, vec![item.clone()])? {
                        Value::String(s) => s,
                        other => {
                            return fail(
                                args[1].span,
                                format!(
                                    "the key lambda of 'toObject' must return a String, got '{}'",
                                    type_name(&other)
                                ),
                            )
                        }
                    };
                    let value = match &value_lambda {
                        Some(lambda) => apply(self, lambda, vec![item])?,
                        None => item,
                    };
                    out.insert(key, value);
                }
                Ok(Value::Object(out))
            }
        }
    }
}

/// `/providers/{ns}/{t1}/{n1}/{t2}/{n2}` from `ns/t1/t2` and names (names may themselves contain `/`).
pub fn provider_path(span: Span, resource_type: &str, names: &[&str]) -> EvalResult<String> {
    let mut type_parts = resource_type.trim_matches('/').split('/');
    let namespace = type_parts.next().unwrap_or_default();
    let types: Vec<&str> = type_parts.collect();
    let name_parts: Vec<&str> = names.iter().flat_map(|n| n.split('/')).collect();
    if namespace.is_empty() || types.is_empty() || types.iter().any(|t| t.is_empty()) {
        return fail(
            span,
            format!("'{resource_type}' is not a resource type like 'Namespace/type'"),
        );
    }
    if types.len() != name_parts.len() || name_parts.iter().any(|n| n.is_empty()) {
        return fail(
            span,
            format!(
                "the resource type '{resource_type}' has {} segment(s) after its namespace but {} name segment(s) were given ('{}')",
                types.len(),
                name_parts.len(),
                names.join("', '")
            ),
        );
    }
    let mut out = format!("/providers/{namespace}");
    for (t, n) in types.iter().zip(&name_parts) {
        out.push('/');
        out.push_str(t);
        out.push('/');
        out.push_str(n);
    }
    Ok(out)
}

/// A subscription-level resource ID; resource groups are the one type ARM writes without `/providers`.
fn subscription_level_id(subscription: &str, provider: &str) -> String {
    const GROUPS: &str = "/providers/Microsoft.Resources/resourceGroups/";
    match provider.get(..GROUPS.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(GROUPS) => {
            format!("/subscriptions/{subscription}/resourceGroups/{}", &provider[GROUPS.len()..])
        }
        _ => format!("/subscriptions/{subscription}{provider}"),
    }
}

fn merge_objects(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            // union() merges nested arrays as it merges top-level ones: the union of their items.
            (Some(Value::Array(existing)), Value::Array(incoming)) => {
                for item in incoming {
                    if !existing.iter().any(|e| values_equal(e, item)) {
                        existing.push(item.clone());
                    }
                }
            }
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn replace_all(text: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        text.to_string()
    } else {
        text.replace(old, new)
    }
}

fn split_any(text: &str, delimiters: &[String]) -> Vec<String> {
    let delimiters: Vec<&String> = delimiters.iter().filter(|d| !d.is_empty()).collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for d in &delimiters {
            if let Some(after) = rest.strip_prefix(d.as_str()) {
                out.push(std::mem::take(&mut current));
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        current.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push(current);
    out
}

fn find_chars(haystack: &[char], needle: &[char], last: bool) -> i64 {
    if needle.is_empty() {
        return if last { haystack.len() as i64 - 1 } else { 0 };
    }
    if needle.len() > haystack.len() {
        return -1;
    }
    let starts = 0..=haystack.len() - needle.len();
    let hit = |&i: &usize| haystack[i..i + needle.len()] == *needle;
    let found = if last { starts.rev().find(hit) } else { starts.into_iter().find(hit) };
    found.map_or(-1, |i| i as i64)
}

/// Parses JSON text the way `json()` does (lenient, as Newtonsoft is).
fn parse_json_text(text: &str) -> Result<Value, String> {
    crate::json::parse_lenient(text)
        .map(|(v, _)| v)
        .map_err(|e| format!("the argument of 'json' is not valid JSON: {e}"))
}

/// The widest `padLeft` or `format` alignment accepted, so that a template cannot ask for gigabytes.
const MAX_PADDED_WIDTH: i64 = 16_384;

/// .NET composite formatting: `{0}`, `{1,5}`, `{0:N2}`-style specifiers for integers, `{{`/`}}` escapes.
pub fn dotnet_format(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(format!("the format string '{format}' has an unmatched '}}'")),
            '{' => {
                let mut item = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => item.push(c),
                        None => {
                            return Err(format!(
                                "the format string '{format}' has an unclosed '{{'"
                            ))
                        }
                    }
                }
                let (head, spec) =
                    item.split_once(':').map_or((item.as_str(), None), |(h, s)| (h, Some(s)));
                let (index, alignment) =
                    head.split_once(',').map_or((head, None), |(i, a)| (i, Some(a)));
                let index: usize = index.trim().parse().map_err(|_| {
                    format!("'{{{item}}}' in the format string is not a valid placeholder")
                })?;
                let arg = args.get(index).ok_or_else(|| {
                    format!(
                        "the format string refers to argument {index} but only {} were given",
                        args.len()
                    )
                })?;
                let mut text = match (spec, arg) {
                    (Some(spec), Value::Number(n)) => format_number(n, spec),
                    _ => to_text(arg),
                };
                if let Some(alignment) = alignment {
                    let width: i64 = alignment
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{{{item}}}' has an invalid alignment"))?;
                    if width.unsigned_abs() > MAX_PADDED_WIDTH as u64 {
                        return Err(format!(
                            "'{{{item}}}' aligns to more than {MAX_PADDED_WIDTH} characters"
                        ));
                    }
                    let pad = (width.unsigned_abs() as usize).saturating_sub(text.chars().count());
                    if width < 0 {
                        text.push_str(&" ".repeat(pad));
                    } else {
                        text = format!("{}{text}", " ".repeat(pad));
                    }
                }
                out.push_str(&text);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn format_number(n: &Number, spec: &str) -> String {
    let value = n.as_f64().unwrap_or_default();
    let (kind, digits) = spec.split_at(spec.len().min(1));
    let digits: Option<usize> = digits.parse().ok().map(|d: usize| d.min(99));
    match kind {
        "N" | "n" => {
            let digits = digits.unwrap_or(2);
            let formatted = format!("{:.*}", digits, value.abs());
            let (int_part, frac) =
                formatted.split_once('.').map_or((formatted.as_str(), None), |(a, b)| (a, Some(b)));
            let mut grouped = String::new();
            for (i, c) in int_part.chars().enumerate() {
                if i > 0 && (int_part.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let sign = if value < 0.0 { "-" } else { "" };
            match frac {
                Some(f) => format!("{sign}{grouped}.{f}"),
                None => format!("{sign}{grouped}"),
            }
        }
        "D" | "d" => {
            format!("{:0width$}", n.as_i64().unwrap_or(value as i64), width = digits.unwrap_or(0))
        }
        "X" => format!("{:X}", n.as_i64().unwrap_or_default()),
        "x" => format!("{:x}", n.as_i64().unwrap_or_default()),
        "F" | "f" => format!("{:.*}", digits.unwrap_or(2), value),
        _ => n.to_string(),
    }
}

/// .NET `Uri.EscapeDataString`: everything but RFC 3986 unreserved characters is percent-encoded.
fn escape_data_string(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `uri(base, relative)`: RFC 3986 reference resolution, as .NET's `new Uri(base, relative)`.
fn combine_uri(base: &str, relative: &str) -> String {
    if relative.contains("://") {
        return relative.to_string();
    }
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j));
    match authority_end {
        None => format!("{}/{}", base, relative.trim_start_matches('/')),
        Some(path_start) => {
            if relative.starts_with('/') {
                format!("{}{}", &base[..path_start], relative)
            } else {
                let last_slash = base.rfind('/').unwrap_or(path_start);
                format!("{}{}", &base[..=last_slash], relative)
            }
        }
    }
}

fn fresh_guid(seed: u64, counter: u64) -> String {
    // SplitMix64 over (seed, counter): 128 well-mixed bits laid out as a version-4 UUID.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = mix(seed ^ mix(counter.wrapping_mul(2)));
    let low = mix(seed ^ mix(counter.wrapping_mul(2).wrapping_add(1)));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
}

/// Formats a time with the .NET format strings templates use (`u`, `d`, `o`, `s` and custom `yyyyMMddTHHmmssZ`-style).
pub fn format_datetime(at: OffsetDateTime, format: &str) -> Result<String, String> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let pattern = match format {
        "u" => "yyyy-MM-dd HH:mm:ssZ",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "o" | "O" => "yyyy-MM-ddTHH:mm:ss.fffffff",
        "d" => "M/d/yyyy",
        "t" => "h:mm tt",
        "T" => "h:mm:ss tt",
        other => other,
    };
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let hour12 = match at.hour() % 12 {
            0 => 12,
            h => h,
        };
        match c {
            'y' if run >= 4 => out.push_str(&format!("{:04}", at.year())),
            'y' => out.push_str(&format!("{:02}", at.year() % 100)),
            'M' if run >= 2 => out.push_str(&format!("{:02}", u8::from(at.month()))),
            'M' => out.push_str(&u8::from(at.month()).to_string()),
            'd' if run >= 2 => out.push_str(&format!("{:02}", at.day())),
            'd' => out.push_str(&at.day().to_string()),
            'H' if run >= 2 => out.push_str(&format!("{:02}", at.hour())),
            'H' => out.push_str(&at.hour().to_string()),
            'h' if run >= 2 => out.push_str(&format!("{hour12:02}")),
            'h' => out.push_str(&hour12.to_string()),
            'm' if run >= 2 => out.push_str(&format!("{:02}", at.minute())),
            'm' => out.push_str(&at.minute().to_string()),
            's' if run >= 2 => out.push_str(&format!("{:02}", at.second())),
            's' => out.push_str(&at.second().to_string()),
            'f' => {
                let digits = format!("{:09}", at.nanosecond());
                out.push_str(&digits[..run.min(9)]);
            }
            't' => out.push_str(if at.hour() < 12 { "AM" } else { "PM" }),
            '\'' => {
                // A quoted literal.
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '\'' {
                    out.push(chars[j]);
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            other => {
                for _ in 0..run {
                    out.push(other);
                }
            }
        }
        i += run;
    }
    if pattern == "yyyy-MM-ddTHH:mm:ss.fffffff" {
        out.push('Z');
    }
    Ok(out)
}

/// Parses an ISO 8601 date-time as `dateTimeAdd` and `dateTimeToEpoch` accept it.
fn parse_datetime(text: &str) -> Result<OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    let trimmed = text.trim();
    if let Ok(at) = OffsetDateTime::parse(trimmed, &Rfc3339) {
        return Ok(at);
    }
    // Compact (`20230331T010038Z`) and offset-less forms.
    let normalized = if trimmed.is_ascii() && trimmed.len() == 16 && trimmed.as_bytes()[8] == b'T' {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &trimmed[0..4],
            &trimmed[4..6],
            &trimmed[6..8],
            &trimmed[9..11],
            &trimmed[11..13],
            &trimmed[13..15]
        )
    } else if trimmed.len() == 10 {
        format!("{trimmed}T00:00:00Z")
    } else {
        format!("{trimmed}Z")
    };
    OffsetDateTime::parse(&normalized, &Rfc3339)
        .map_err(|_| format!("'{text}' is not a valid ISO 8601 date and time"))
}

/// An ISO 8601 duration (`P1Y2M3DT4H5M6S`), possibly negative.
struct IsoDuration {
    negative: bool,
    years: i64,
    months: i64,
    days: i64,
    seconds: i64,
}

fn parse_iso_duration(text: &str) -> Result<IsoDuration, String> {
    let invalid = || format!("'{text}' is not a valid ISO 8601 duration (like 'P1D' or 'PT1H')");
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let rest = rest.strip_prefix('P').ok_or_else(invalid)?;
    let mut duration = IsoDuration { negative, years: 0, months: 0, days: 0, seconds: 0 };
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                // Durations beyond a million of any unit are nonsense for a template; refusing them keeps the
                // arithmetic below far from overflow.
                let n: i64 = number.parse().ok().filter(|n| *n <= 1_000_000).ok_or_else(invalid)?;
                number.clear();
                any = true;
                match (in_time, unit) {
                    (false, 'Y') => duration.years += n,
                    (false, 'M') => duration.months += n,
                    (false, 'W') => duration.days += 7 * n,
                    (false, 'D') => duration.days += n,
                    (true, 'H') => duration.seconds += 3600 * n,
                    (true, 'M') => duration.seconds += 60 * n,
                    (true, 'S') => duration.seconds += n,
                    _ => return Err(invalid()),
                }
            }
        }
    }
    if !number.is_empty() || !any {
        return Err(invalid());
    }
    Ok(duration)
}

fn add_duration(at: OffsetDateTime, d: &IsoDuration) -> Option<OffsetDateTime> {
    let sign = if d.negative { -1 } else { 1 };
    let total_months = i64::from(at.year()) * 12
        + i64::from(u8::from(at.month()) - 1)
        + sign * (d.years * 12 + d.months);
    let year = i32::try_from(total_months.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(total_months.rem_euclid(12) + 1).ok()?).ok()?;
    let day = at.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let moved = at.replace_date(date);
    moved.checked_add(time::Duration::seconds(sign * (d.days * 86_400 + d.seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn union_merges_nested_objects_and_arrays() {
        let mut into = json!({"a": {"x": 1, "list": [1, 2]}, "b": 1}).as_object().unwrap().clone();
        let from = json!({"a": {"y": 2, "list": [2, 3]}, "b": 2}).as_object().unwrap().clone();
        merge_objects(&mut into, &from);
        assert_eq!(Value::Object(into), json!({"a": {"x": 1, "list": [1, 2, 3], "y": 2}, "b": 2}));
    }

    #[test]
    fn dotnet_format_cases() {
        let args = [Value::from(123), Value::from("x"), Value::Bool(true), Value::from(1234567)];
        assert_eq!(dotnet_format("->{0}<-", &args).unwrap(), "->123<-");
        assert_eq!(dotnet_format("{{{1}}} {2}", &args).unwrap(), "{x} True");
        assert_eq!(dotnet_format("{3:N0}|{0,5}|{0,-5}|", &args).unwrap(), "1,234,567|  123|123  |");
        assert!(dotnet_format("{9}", &args).unwrap_err().contains("argument 9"));
        assert!(dotnet_format("{0", &args).unwrap_err().contains("unclosed"));
        assert!(dotnet_format("}", &args).unwrap_err().contains("unmatched"));
    }

    #[test]
    fn uris() {
        assert_eq!(
            combine_uri("https://github.com", "Azure/bicep"),
            "https://github.com/Azure/bicep"
        );
        assert_eq!(combine_uri("https://a.b/x/y.json", "z.json"), "https://a.b/x/z.json");
        assert_eq!(combine_uri("https://a.b/x/", "/z"), "https://a.b/z");
        assert_eq!(escape_data_string("UB*8h 0+=_)9h9n"), "UB%2A8h%200%2B%3D_%299h9n");
        assert_eq!(percent_decode("%20%25%20"), " % ");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn dates() {
        let at = OffsetDateTime::from_unix_timestamp(1_680_224_438).unwrap();
        assert_eq!(format_datetime(at, "yyyyMMddTHHmmssZ").unwrap(), "20230331T010038Z");
        assert_eq!(format_datetime(at, "u").unwrap(), "2023-03-31 01:00:38Z");
        assert_eq!(format_datetime(at, "d").unwrap(), "3/31/2023");
        let d = parse_iso_duration("P1D").unwrap();
        assert_eq!(
            format_datetime(add_duration(at, &d).unwrap(), "yyyy-MM-ddTHH:mm:ssZ").unwrap(),
            "2023-04-01T01:00:38Z"
        );
        let d = parse_iso_duration("-P1M").unwrap();
        assert_eq!(
            format_datetime(add_duration(at, &d).unwrap(), "yyyy-MM-dd").unwrap(),
            "2023-02-28"
        );
        assert!(parse_iso_duration("1D").is_err());
        assert!(parse_iso_duration("P").is_err());
        assert_eq!(parse_datetime("20230331T010038Z").unwrap(), at);
    }

    #[test]
    fn split_and_find() {
        assert_eq!(split_any("a/b,c", &["/".into(), ",".into()]), vec!["a", "b", "c"]);
        assert_eq!(split_any("", &["/".into()]), vec![""]);
        let h: Vec<char> = "abcba".chars().collect();
        assert_eq!(find_chars(&h, &['b'], true), 3);
        assert_eq!(find_chars(&h, &['z'], false), -1);
    }

    #[test]
    fn fresh_guids_differ_and_look_like_v4() {
        let a = fresh_guid(7, 0);
        let b = fresh_guid(7, 1);
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert_eq!(fresh_guid(7, 0), a);
    }

    #[test]
    fn unknown_and_arity() {
        assert!(check_call("concat", 0).unwrap_err().contains("at least 1"));
        assert!(check_call("nope", 0).unwrap_err().contains("'nope' is not valid"));
        assert!(check_call("listKeys", 2).is_ok());
        assert!(check_call("ResourceGroup", 0).is_ok());
        assert!(check_call("if", 2).unwrap_err().contains("expects 3"));
    }
}
