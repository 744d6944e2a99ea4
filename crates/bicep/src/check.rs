//! Semantic checks over a [`FileModel`]: name resolution (BCP057/BCP082), functions (BCP059,
//! BCP060/061, BCP065, BCP069, BCP071, BCP100–102, BCP107), module parameters and outputs
//! (BCP035/BCP037/BCP052/BCP053/BCP083), resource properties (BCP036/BCP037/BCP073), declared types
//! (BCP026/BCP027) and the linter's unused-symbol rules.

use crate::ast::*;
use crate::diagnostics::{quoted_list, Diagnostic};
use crate::functions;
use crate::model::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Normal,
    ParamDefault,
}

struct Walker<'m, 'a> {
    model: &'m mut FileModel<'a>,
    locals: Vec<String>,
    /// The resource whose body is being walked (nested symbols resolve from it).
    resource: Option<usize>,
    place: Place,
}

pub fn check(model: &mut FileModel<'_>) {
    let program = model.program;
    for decl in &program.decls {
        walk_decl(model, decl, None);
    }
    check_modules(model);
    check_resources(model);
    lint_unused(model);
}

fn walk_decl<'a>(model: &mut FileModel<'a>, decl: &'a Decl, resource_context: Option<usize>) {
    for decorator in &decl.decorators {
        check_decorator(model, decl, decorator);
    }
    let place = if matches!(decl.kind, DeclKind::Param { .. }) {
        Place::ParamDefault
    } else {
        Place::Normal
    };
    match &decl.kind {
        DeclKind::Param { default: Some(value), ty, .. } => {
            walk(model, value, None, place);
            if let Some(TypeRef::Named(ty)) = ty {
                if let Some(actual) = mismatch(model, &ty.name, value) {
                    model.diagnostics.push(Diagnostic::error(
                        "BCP027",
                        format!("The parameter expects a default value of type \"{}\" but provided value is of type \"{actual}\".", ty.name),
                        value.span,
                    ));
                }
            }
            check_type_name(model, ty.as_ref());
        }
        DeclKind::Param { ty, .. } => check_type_name(model, ty.as_ref()),
        DeclKind::Var { value, .. } | DeclKind::Metadata { value, .. } => {
            walk(model, value, None, place)
        }
        DeclKind::Output { value, ty, .. } => {
            walk(model, value, None, place);
            if let Some(TypeRef::Named(ty)) = ty {
                if !matches!(value.kind, ExprKind::For(_)) {
                    if let Some(actual) = mismatch(model, &ty.name, value) {
                        model.diagnostics.push(Diagnostic::error(
                            "BCP026",
                            format!("The output expects a value of type \"{}\" but the provided value is of type \"{actual}\".", ty.name),
                            value.span,
                        ));
                    }
                }
            }
            check_type_name(model, ty.as_ref());
        }
        DeclKind::Resource { body, .. } => {
            let index = model.resources.iter().position(|r| std::ptr::eq(r.decl, decl));
            let _ = resource_context;
            walk(model, body, index, place);
            if let Some(object) = unwrap_body(body).2 {
                for member in object.object_members().unwrap_or_default() {
                    if let ObjectMember::Resource(child) = member {
                        walk_decl(model, child, index);
                    }
                }
            }
        }
        DeclKind::Module { body, .. } => walk(model, body, None, place),
        DeclKind::TargetScope { .. } | DeclKind::Using { .. } | DeclKind::Error => {}
    }
}

fn check_type_name(model: &mut FileModel<'_>, ty: Option<&TypeRef>) {
    match ty {
        Some(TypeRef::Named(name)) if !matches!(name.name.as_str(), "string" | "int" | "bool" | "object" | "array" | "any") => {
            model.diagnostics.push(Diagnostic::error(
                "BCP302",
                format!("The name \"{}\" is not a valid type. Please specify one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".", name.name),
                name.span,
            ));
        }
        Some(TypeRef::Other(span)) => model.diagnostics.push(Diagnostic::error(
            "BRT004",
            "User-defined and literal types are not supported by berth's Bicep compiler; use one of \"array\", \"bool\", \"int\", \"object\", \"string\".",
            *span,
        )),
        _ => {}
    }
}

/// `Some(actual type)` when a value's inferred type cannot be assigned to the declared one.
fn mismatch(model: &FileModel<'_>, declared: &str, value: &Expr) -> Option<String> {
    let actual = model.type_name(value);
    let base = if actual.starts_with('\'') {
        "string"
    } else if actual.parse::<i64>().is_ok() {
        "int"
    } else if actual == "true" || actual == "false" {
        "bool"
    } else {
        actual.as_str()
    };
    let compatible = match (declared, base) {
        (_, "any" | "null" | "resource" | "module") | ("any", _) => true,
        (d, b) => d == b,
    };
    (!compatible).then_some(actual)
}

fn check_decorator<'a>(model: &mut FileModel<'a>, decl: &'a Decl, decorator: &'a Decorator) {
    if decorator.namespace.as_ref().is_some_and(|ns| ns.name != "sys") {
        return;
    }
    let name = decorator.name.name.as_str();
    match functions::DECORATORS.iter().find(|d| d.0 == name) {
        Some(&(_, min, max)) => {
            let count = decorator.args.len();
            if count < min || count > max {
                model.diagnostics.push(Diagnostic::error(
                    "BCP071",
                    arity_message(count, min, Some(max)),
                    decorator.span,
                ));
            }
            let is_param = matches!(decl.kind, DeclKind::Param { .. });
            if matches!(
                name,
                "minLength" | "maxLength" | "minValue" | "maxValue" | "secure" | "allowed"
            ) && !is_param
            {
                model.diagnostics.push(Diagnostic::error(
                    "BCP125",
                    format!("Function \"{name}\" cannot be used as a parameter decorator."),
                    decorator.name.span,
                ));
            }
        }
        None => {
            let message = format!("The name \"{name}\" does not exist in the current context.");
            model.diagnostics.push(Diagnostic::error("BCP057", message, decorator.name.span));
        }
    }
    for arg in &decorator.args {
        walk(model, arg, None, Place::Normal);
    }
}

fn arity_message(count: usize, min: usize, max: Option<usize>) -> String {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let expected = match max {
        None => format!("at least {min} {}", plural(min)),
        Some(max) if max == min => format!("{min} {}", plural(min)),
        Some(max) => format!("{min} to {max} arguments"),
    };
    format!("Expected {expected}, but got {count}.")
}

fn walk<'a>(model: &mut FileModel<'a>, expr: &'a Expr, resource: Option<usize>, place: Place) {
    let mut walker = Walker { model, locals: Vec::new(), resource, place };
    walker.expr(expr);
}

impl<'a> Walker<'_, 'a> {
    fn error(&mut self, code: &'static str, message: String, span: crate::span::Span) {
        self.model.diagnostics.push(Diagnostic::error(code, message, span));
    }

    fn expr(&mut self, expr: &'a Expr) {
        match &expr.kind {
            ExprKind::String(s) => s.exprs.iter().for_each(|e| self.expr(e)),
            ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Error => {}
            ExprKind::Array(items) => items.iter().for_each(|e| self.expr(e)),
            ExprKind::Object(members) => {
                for member in members {
                    match member {
                        ObjectMember::Property(p) => {
                            if let PropertyKey::String(s, _) = &p.key {
                                s.exprs.iter().for_each(|e| self.expr(e));
                            }
                            self.expr(&p.value);
                        }
                        ObjectMember::Spread(e) => self.expr(e),
                        // Nested resources are walked as declarations of their own.
                        ObjectMember::Resource(_) => {}
                    }
                }
            }
            ExprKind::Variable(ident) => self.variable(ident),
            ExprKind::Call { name, args } => {
                self.call(name, args.len(), expr, None);
                args.iter().for_each(|e| self.expr(e));
            }
            ExprKind::MethodCall { base, name, args } => {
                match &base.kind {
                    ExprKind::Variable(ns)
                        if (ns.name == "az" || ns.name == "sys") && !self.is_symbol(&ns.name) =>
                    {
                        self.call(name, args.len(), expr, Some(ns.name.as_str()));
                    }
                    _ => {
                        self.expr(base);
                        if self.model.resource_symbol(base, self.resource).is_some() {
                            if !functions::is_list_function(&name.name) {
                                self.unsupported(name);
                            }
                        } else {
                            let ty = self.model.type_name(base);
                            self.error(
                                "BCP109",
                                format!(
                                    "The type \"{ty}\" does not contain function \"{}\".",
                                    name.name
                                ),
                                name.span,
                            );
                        }
                    }
                }
                args.iter().for_each(|e| self.expr(e));
            }
            ExprKind::Property { base, name, .. } => {
                self.expr(base);
                self.property(base, name);
            }
            ExprKind::Index { base, index, .. } => {
                self.expr(base);
                self.expr(index);
            }
            ExprKind::ResourceAccess { base, name } => {
                self.expr(base);
                if let Some(parent) = self.model.resource_symbol(base, self.resource) {
                    if !self.model.children.contains_key(&(parent, name.name.clone())) {
                        let parent_name = self.model.resources[parent].name.name.clone();
                        self.error("BCP159", format!("The resource \"{parent_name}\" does not contain a nested resource named \"{}\". Known nested resources are: {}.", name.name, quoted_list(self.nested_names(parent))), name.span);
                    }
                }
            }
            ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => self.expr(expr),
            ExprKind::Binary { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Ternary { condition, when_true, when_false } => {
                self.expr(condition);
                self.expr(when_true);
                self.expr(when_false);
            }
            ExprKind::For(f) => {
                self.expr(&f.iterable);
                let before = self.locals.len();
                self.locals.extend(f.item.iter().chain(f.index.iter()).map(|i| i.name.clone()));
                self.expr(&f.body);
                self.locals.truncate(before);
            }
            ExprKind::If { condition, body } => {
                self.expr(condition);
                self.expr(body);
            }
            ExprKind::Lambda { params, body } => {
                let before = self.locals.len();
                self.locals.extend(params.iter().map(|p| p.name.clone()));
                self.expr(body);
                self.locals.truncate(before);
            }
        }
    }

    fn nested_names(&self, parent: usize) -> Vec<String> {
        let mut names: Vec<String> = self
            .model
            .children
            .keys()
            .filter(|(p, _)| *p == parent)
            .map(|(_, n)| n.clone())
            .collect();
        names.sort();
        names
    }

    fn is_symbol(&self, name: &str) -> bool {
        self.locals.iter().any(|l| l == name) || self.model.symbols.contains_key(name)
    }

    fn variable(&mut self, ident: &Ident) {
        if self.locals.contains(&ident.name) {
            return;
        }
        if let Some(resource) = self.model.lookup_resource(&ident.name, self.resource) {
            if self.model.resources[resource].nested_in.is_none() {
                self.model.referenced.insert(Symbol::Resource(resource));
            }
            return;
        }
        if let Some(symbol) = self.model.symbols.get(&ident.name).copied() {
            self.model.referenced.insert(symbol);
            if self.place == Place::ParamDefault && !matches!(symbol, Symbol::Param(_)) {
                self.error("BCP072", "This symbol cannot be referenced here. Only other parameters can be referenced in parameter default values.".into(), ident.span);
            }
            return;
        }
        if ident.name == "az" || ident.name == "sys" {
            return;
        }
        self.unknown_name(ident);
    }

    fn unknown_name(&mut self, ident: &Ident) {
        let mut candidates: Vec<String> = self.model.symbols.keys().cloned().collect();
        candidates.extend(self.locals.iter().cloned());
        candidates.extend(functions::all_names().map(str::to_owned));
        candidates.sort_unstable();
        let suggested =
            suggestion(&ident.name, candidates.iter().map(String::as_str)).map(str::to_owned);
        match suggested {
            Some(suggested) => {
                let message = format!("The name \"{}\" does not exist in the current context. Did you mean \"{suggested}\"?", ident.name);
                self.error("BCP082", message, ident.span);
            }
            None => self.error(
                "BCP057",
                format!("The name \"{}\" does not exist in the current context.", ident.name),
                ident.span,
            ),
        }
    }

    fn call(&mut self, name: &Ident, count: usize, call: &Expr, namespace: Option<&str>) {
        let fname = name.name.as_str();
        if namespace.is_none() {
            if self.locals.iter().any(|l| l == fname) || self.model.symbols.contains_key(fname) {
                if let Some(symbol) = self.model.symbols.get(fname).copied() {
                    self.model.referenced.insert(symbol);
                }
                self.error("BCP059", format!("The name \"{fname}\" is not a function."), name.span);
                return;
            }
            let special = match fname {
                "variables" => Some(("BCP060", "The \"variables\" function is not supported. Directly reference variables by their symbolic names.".to_owned())),
                "parameters" => Some(("BCP061", "The \"parameters\" function is not supported. Directly reference parameters by their symbolic names.".to_owned())),
                "if" => Some(("BCP100", "The function \"if\" is not supported. Use the \"?:\" (ternary conditional) operator instead, e.g. condition ? ValueIfTrue : ValueIfFalse".to_owned())),
                "createArray" => Some(("BCP101", "The \"createArray\" function is not supported. Construct an array literal using [].".to_owned())),
                "createObject" => Some(("BCP102", "The \"createObject\" function is not supported. Construct an object literal using {}.".to_owned())),
                _ => functions::operator_instead(fname).map(|op| ("BCP069", format!("The function \"{fname}\" is not supported. Use the \"{op}\" operator instead."))),
            };
            if let Some((code, message)) = special {
                self.error(code, message, name.span);
                return;
            }
        }
        let Some(info) =
            functions::lookup(fname).filter(|f| namespace.is_none_or(|ns| ns == f.namespace))
        else {
            match namespace {
                Some(ns) => {
                    let names: Vec<&str> = functions::all_names()
                        .filter(|n| functions::lookup(n).is_some_and(|f| f.namespace == ns))
                        .collect();
                    match suggestion(fname, names) {
                        Some(s) => self.error("BCP108", format!("The function \"{fname}\" does not exist in namespace \"{ns}\". Did you mean \"{s}\"?"), name.span),
                        None => self.error("BCP107", format!("The function \"{fname}\" does not exist in namespace \"{ns}\"."), name.span),
                    }
                }
                None => self.unknown_name(name),
            }
            return;
        };
        if count < info.min_args || info.max_args.is_some_and(|max| count > max) {
            self.error("BCP071", arity_message(count, info.min_args, info.max_args), call.span);
        }
        if matches!(
            fname,
            "loadTextContent"
                | "loadJsonContent"
                | "loadFileAsBase64"
                | "externalInput"
                | "readEnvironmentVariable"
                | "getSecret"
        ) {
            self.unsupported(name);
        }
        if matches!(fname, "newGuid" | "utcNow") && self.place != Place::ParamDefault {
            self.error("BCP065", format!("Function \"{fname}\" is not valid at this location. It can only be used as a parameter default value."), name.span);
        }
    }

    /// Valid Bicep that berth cannot compile yet: refused rather than emitted wrong.
    fn unsupported(&mut self, name: &Ident) {
        self.error(
            "BRT005",
            format!(
                "The function \"{}\" is not supported by berth's Bicep compiler yet.",
                name.name
            ),
            name.span,
        );
    }

    fn property(&mut self, base: &Expr, name: &Ident) {
        // `mod.outputs.x`
        if let ExprKind::Property { base: inner, name: outputs, .. } = &base.unparen().kind {
            if outputs.name == "outputs" {
                if let Some(module) = self.module_of(inner) {
                    let Some(interface) = &self.model.modules[module].interface else { return };
                    if interface.outputs.contains(&name.name) {
                        return;
                    }
                    let mut available: Vec<&str> =
                        interface.outputs.iter().map(String::as_str).collect();
                    available.sort_unstable_by_key(|a| a.to_lowercase());
                    let diagnostic = if available.is_empty() {
                        (
                            "BCP052",
                            format!(
                                "The type \"outputs\" does not contain property \"{}\".",
                                name.name
                            ),
                        )
                    } else if let Some(s) = suggestion(&name.name, available.iter().copied()) {
                        ("BCP083", format!("The type \"outputs\" does not contain property \"{}\". Did you mean \"{s}\"?", name.name))
                    } else {
                        ("BCP053", format!("The type \"outputs\" does not contain property \"{}\". Available properties include {}.", name.name, quoted_list(&available)))
                    };
                    self.error(diagnostic.0, diagnostic.1, name.span);
                }
                return;
            }
        }
        if self.module_of(base).is_some() && name.name != "outputs" && name.name != "name" {
            self.error("BCP053", format!("The type \"module\" does not contain property \"{}\". Available properties include \"name\", \"outputs\".", name.name), name.span);
        }
    }

    fn module_of(&self, expr: &Expr) -> Option<usize> {
        let target = match &expr.unparen().kind {
            ExprKind::Index { base, .. } => base.unparen(),
            _ => expr.unparen(),
        };
        match &target.kind {
            ExprKind::Variable(ident) if !self.locals.contains(&ident.name) => {
                match self.model.symbols.get(&ident.name) {
                    Some(Symbol::Module(m)) => Some(*m),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn check_modules(model: &mut FileModel<'_>) {
    for index in 0..model.modules.len() {
        let module = model.modules[index].clone();
        let Some(object) = module.object else { continue };
        if object.property("name").is_none() {
            model.diagnostics.push(Diagnostic::error(
                "BCP035",
                "The specified \"module\" declaration is missing the following required properties: \"name\".",
                module.name.span,
            ));
        }
        let Some(interface) = &module.interface else { continue };
        let params = object.property("params");
        let given: Vec<&Property> = params
            .and_then(|p| p.value.object_members())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| match m {
                ObjectMember::Property(p) => Some(p),
                _ => None,
            })
            .collect();
        for property in &given {
            let Some(key) = property.key.text() else { continue };
            if !interface.params.iter().any(|(p, _)| p == key) {
                let mut unspecified: Vec<&str> = interface
                    .params
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .filter(|p| !given.iter().any(|g| g.key.text() == Some(*p)))
                    .collect();
                unspecified.sort_unstable_by_key(|p| p.to_lowercase());
                let clause = if unspecified.is_empty() {
                    " No other properties are allowed.".to_owned()
                } else {
                    format!(" Permissible properties include {}.", quoted_list(&unspecified))
                };
                model.diagnostics.push(Diagnostic::error(
                    "BCP037",
                    format!("The property \"{key}\" is not allowed on objects of type \"params\".{clause}"),
                    property.key.span(),
                ));
            }
        }
        let missing: Vec<&str> = interface
            .params
            .iter()
            .filter(|(p, required)| {
                *required && !given.iter().any(|g| g.key.text() == Some(p.as_str()))
            })
            .map(|(p, _)| p.as_str())
            .collect();
        if !missing.is_empty() {
            match params {
                Some(p) => model.diagnostics.push(Diagnostic::error(
                    "BCP035",
                    format!("The specified \"object\" declaration is missing the following required properties: {}.", quoted_list(&missing)),
                    p.key.span(),
                )),
                None => model.diagnostics.push(Diagnostic::error(
                    "BCP035",
                    "The specified \"module\" declaration is missing the following required properties: \"params\".",
                    module.name.span,
                )),
            }
        }
    }
}

fn check_resources(model: &mut FileModel<'_>) {
    for index in 0..model.resources.len() {
        let resource = model.resources[index].clone();
        let Some(object) = resource.object else { continue };
        if object.property("name").is_none() {
            model.diagnostics.push(Diagnostic::error(
                "BCP035",
                "The specified \"resource\" declaration is missing the following required properties: \"name\".",
                resource.name.span,
            ));
        }
        let Some(ty) = properties_type(&resource.full_type) else { continue };
        let Some(properties) = object.property("properties") else { continue };
        let members = properties.value.object_members().unwrap_or_default();
        let given: Vec<&str> = members
            .iter()
            .filter_map(|m| match m {
                ObjectMember::Property(p) => p.key.text(),
                _ => None,
            })
            .collect();
        for member in members {
            let ObjectMember::Property(property) = member else { continue };
            let Some(key) = property.key.text() else { continue };
            if ty.read_only.contains(&key) {
                model.diagnostics.push(Diagnostic::warning(
                    "BCP073",
                    format!("The property \"{key}\" is read-only. Expressions cannot be assigned to read-only properties. If this is a resource type definition inaccuracy, report it using https://aka.ms/bicep-type-issues."),
                    property.key.span(),
                ));
            } else if !ty.writable.contains(&key) {
                let unspecified: Vec<&str> =
                    ty.writable.iter().copied().filter(|p| !given.contains(p)).collect();
                model.diagnostics.push(Diagnostic::warning(
                    "BCP037",
                    format!(
                        "The property \"{key}\" is not allowed on objects of type \"{}\". Permissible properties include {}. If this is a resource type definition inaccuracy, report it using https://aka.ms/bicep-type-issues.",
                        ty.type_name,
                        quoted_list(&unspecified)
                    ),
                    property.key.span(),
                ));
            }
        }
    }
}

fn lint_unused(model: &mut FileModel<'_>) {
    for (i, decl) in model.params.clone().iter().enumerate() {
        if !model.referenced.contains(&Symbol::Param(i)) {
            if let Some(name) = decl.name() {
                model.diagnostics.push(Diagnostic::linter(
                    "no-unused-params",
                    format!("Parameter \"{}\" is declared but never used.", name.name),
                    name.span,
                ));
            }
        }
    }
    for (i, decl) in model.vars.clone().iter().enumerate() {
        if !model.referenced.contains(&Symbol::Var(i)) {
            if let Some(name) = decl.name() {
                model.diagnostics.push(Diagnostic::linter(
                    "no-unused-vars",
                    format!("Variable \"{}\" is declared but never used.", name.name),
                    name.span,
                ));
            }
        }
    }
}
