//! Compiling a file and the modules it calls: loads each file once (through a [`FileLoader`]),
//! detects module cycles (BCP094/BCP095), checks every file, and emits the root template only when
//! no file has errors. Diagnostics stay attached to the file they are about. A module is a `.bicep`
//! file, an ARM template (`.json`: its `parameters` and `outputs` are the interface, the template is
//! inlined as it is), or a registry artifact (`br:`), which the loader maps to its restored template.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::ast::{DeclKind, ExprKind};
use crate::check::check;
use crate::diagnostics::{Diagnostic, SourceView};
use crate::emit::emit_template;
use crate::model::{FileModel, ModuleInterface, TargetScope};
use crate::parser::parse;
use crate::registry::{
    parse_module_source, strip_json_comments, ArtifactReference, BicepConfig, ModuleSource,
    ReferenceError, CONFIG_FILE_NAME,
};
use crate::span::LineIndex;

/// What the restore step left for a registry module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The module's compiled template (`main.json`), verified against its digests.
    Template(PathBuf),
    /// Nothing restored (BCP190).
    NotRestored,
    /// The restore failed with the registry's words (BCP192).
    Failed(String),
    /// The registry is not trusted, so nothing was restored (BCP446).
    Blocked,
}

/// Where source files come from (the file system, or memory in tests and benchmarks).
pub trait FileLoader {
    fn read(&self, path: &Path) -> io::Result<String>;

    /// Where a registry module's restored template is. The compiler never restores anything itself: the
    /// caller restores first (see `Compilation::artifacts`) and answers here.
    fn registry_module(&self, _reference: &ArtifactReference) -> Restored {
        Restored::NotRestored
    }

    /// `path` made absolute, for the upward search of `bicepconfig.json`.
    fn absolute(&self, path: &Path) -> PathBuf {
        path.to_owned()
    }
}

/// Reads from the file system.
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
    }
}

/// In-memory files by path.
impl FileLoader for HashMap<PathBuf, String> {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.get(path).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("Could not find file '{}'.", path.display()),
            )
        })
    }
}

/// One file of a compilation with its diagnostics.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub lines: LineIndex,
    pub diagnostics: Vec<Diagnostic>,
}

impl SourceFile {
    pub fn view(&self) -> SourceView<'_> {
        SourceView {
            path: self.path.to_str().unwrap_or("<non-UTF-8 path>"),
            text: &self.text,
            lines: &self.lines,
        }
    }
}

/// The result of compiling a root file.
#[derive(Debug, Clone)]
pub struct Compilation {
    /// The root file first, then modules in the order they were loaded.
    pub files: Vec<SourceFile>,
    /// The ARM template, present only when no file has an error.
    pub template: Option<Value>,
    /// Every registry module referenced (aliases resolved), whether restored or not, in order of first use.
    pub artifacts: Vec<ArtifactReference>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.files.iter().any(|f| f.diagnostics.iter().any(Diagnostic::is_error))
    }

    /// Every diagnostic with its file, sorted by file then position.
    pub fn diagnostics(&self) -> impl Iterator<Item = (&SourceFile, &Diagnostic)> {
        self.files.iter().flat_map(|f| f.diagnostics.iter().map(move |d| (f, d)))
    }

    /// The template as the real compiler writes it (two-space indentation).
    pub fn template_text(&self) -> Option<String> {
        self.template.as_ref().and_then(|t| serde_json::to_string_pretty(t).ok())
    }
}

/// Compiles `path` and the modules it references, reading from the file system.
pub fn compile_path(path: &Path) -> Compilation {
    compile_with(path, &FsLoader)
}

pub fn compile_with(path: &Path, loader: &dyn FileLoader) -> Compilation {
    let mut driver = Driver {
        loader,
        files: Vec::new(),
        interfaces: HashMap::new(),
        stack: Vec::new(),
        configs: HashMap::new(),
        artifacts: Vec::new(),
    };
    let root = normalize(path);
    let template = match driver.compile(&root) {
        Ok(index) => driver.interfaces.get(&index).and_then(|i| i.template.clone()),
        Err(error) => {
            driver.files.push(SourceFile {
                path: root.clone(),
                text: String::new(),
                lines: LineIndex::new(""),
                diagnostics: vec![Diagnostic::error(
                    "BCP091",
                    format!("An error occurred reading file. {}", io_message(&error, &root)),
                    Default::default(),
                )],
            });
            None
        }
    };
    let mut compilation =
        Compilation { files: driver.files, template, artifacts: driver.artifacts };
    if compilation.has_errors() {
        compilation.template = None;
    }
    // The root file first.
    if let Some(position) = compilation.files.iter().position(|f| f.path == root) {
        let file = compilation.files.remove(position);
        compilation.files.insert(0, file);
    }
    compilation
}

fn io_message(error: &io::Error, path: &Path) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => format!("Could not find file '{}'.", path.display()),
        _ => error.to_string(),
    }
}

/// Resolves `.` and `..` without touching the file system, so in-memory loaders work too.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

struct Driver<'l> {
    loader: &'l dyn FileLoader,
    files: Vec<SourceFile>,
    /// By file index.
    interfaces: HashMap<usize, ModuleInterface>,
    stack: Vec<PathBuf>,
    /// The configuration in force per directory.
    configs: HashMap<PathBuf, Result<BicepConfig, ReferenceError>>,
    artifacts: Vec<ArtifactReference>,
}

/// ARM templates are modules too; the real compiler tells them by extension.
fn is_arm_template(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["json", "jsonc", "arm"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The deployment scope an ARM template's `$schema` names (resource group when it names none).
fn schema_scope(template: &Value) -> TargetScope {
    let schema = template.get("$schema").and_then(Value::as_str).unwrap_or_default();
    let path = schema.split_once("://").map_or("", |(_, rest)| rest);
    let path = path.find('/').map_or("", |i| &path[i..]);
    let path = path.split(['#', '?']).next().unwrap_or_default();
    match path.to_ascii_lowercase().as_str() {
        "/schemas/2019-08-01/tenantdeploymenttemplate.json" => TargetScope::Tenant,
        "/schemas/2019-08-01/managementgroupdeploymenttemplate.json" => {
            TargetScope::ManagementGroup
        }
        "/schemas/2018-05-01/subscriptiondeploymenttemplate.json" => TargetScope::Subscription,
        _ => TargetScope::ResourceGroup,
    }
}

/// What an ARM template offers a module declaration: parameters (required when they have no
/// `defaultValue` and are not `nullable`), outputs, scope, and the template itself.
fn arm_interface(template: &Value) -> ModuleInterface {
    let params = template
        .get("parameters")
        .and_then(Value::as_object)
        .map(|params| {
            params
                .iter()
                .map(|(name, p)| {
                    let required = p.get("defaultValue").is_none()
                        && p.get("nullable").and_then(Value::as_bool) != Some(true);
                    (name.clone(), required)
                })
                .collect()
        })
        .unwrap_or_default();
    let outputs = template
        .get("outputs")
        .and_then(Value::as_object)
        .map(|outputs| outputs.keys().cloned().collect())
        .unwrap_or_default();
    ModuleInterface {
        params,
        outputs,
        target_scope: schema_scope(template),
        template: Some(template.clone()),
    }
}

impl Driver<'_> {
    /// The `bicepconfig.json` nearest above `file`, or the built-in configuration.
    fn config_for(&mut self, file: &Path) -> Result<BicepConfig, ReferenceError> {
        let absolute = self.loader.absolute(file);
        let start = absolute.parent().unwrap_or(Path::new("")).to_owned();
        if let Some(found) = self.configs.get(&start) {
            return found.clone();
        }
        let mut dir = Some(start.as_path());
        let mut found = Ok(BicepConfig::default());
        while let Some(current) = dir {
            let candidate = current.join(CONFIG_FILE_NAME);
            if let Ok(text) = self.loader.read(&candidate) {
                found = BicepConfig::parse(&text, &candidate);
                break;
            }
            dir = current.parent();
        }
        self.configs.insert(start, found.clone());
        found
    }

    /// An ARM template used as a module.
    fn load_arm_template(&mut self, path: &Path, text: String) -> usize {
        let template = serde_json::from_str::<Value>(&strip_json_comments(&text))
            .ok()
            .filter(Value::is_object);
        let interface = match &template {
            Some(template) => arm_interface(template),
            None => ModuleInterface {
                params: Vec::new(),
                outputs: Vec::new(),
                target_scope: TargetScope::ResourceGroup,
                template: None,
            },
        };
        let index = self.files.len();
        self.files.push(SourceFile {
            path: path.to_owned(),
            lines: LineIndex::new(&text),
            text,
            diagnostics: Vec::new(),
        });
        self.interfaces.insert(index, interface);
        index
    }

    /// The interface of a loaded module, with BCP104/BCP188 when it has errors.
    fn module_interface(
        &self,
        index: usize,
        span: crate::span::Span,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<ModuleInterface> {
        let interface = self.interfaces.get(&index).cloned();
        if interface.as_ref().is_none_or(|i| i.template.is_none()) {
            if is_arm_template(&self.files[index].path) {
                // An unreadable template has no interface to check against.
                diagnostics.push(Diagnostic::error(
                    "BCP188",
                    "The referenced ARM template has errors. Please see https://aka.ms/arm-template for information on how to diagnose and fix the template.",
                    span,
                ));
                return None;
            }
            diagnostics.push(Diagnostic::error(
                "BCP104",
                "The referenced module has errors.",
                span,
            ));
        }
        interface
    }

    fn compile(&mut self, path: &Path) -> io::Result<usize> {
        if let Some(index) = self.files.iter().position(|f| f.path == path) {
            return Ok(index);
        }
        let text = self.loader.read(path)?;
        if is_arm_template(path) {
            return Ok(self.load_arm_template(path, text));
        }
        let parsed = parse(&text);
        let mut diagnostics = parsed.diagnostics.clone();
        self.stack.push(path.to_owned());

        // Load the modules first: their parameters and outputs are part of this file's checks.
        let mut interfaces: HashMap<String, Option<ModuleInterface>> = HashMap::new();
        for decl in &parsed.program.decls {
            let DeclKind::Module { name, path: module_path, .. } = &decl.kind else { continue };
            let relative = match &module_path.kind {
                ExprKind::String(s) => match s.literal() {
                    Some(text) => text.to_owned(),
                    None => {
                        diagnostics.push(Diagnostic::error(
                            "BCP092",
                            "String interpolation is not supported in file paths.",
                            module_path.span,
                        ));
                        interfaces.insert(name.name.clone(), None);
                        continue;
                    }
                },
                _ => continue,
            };
            let source = if relative.contains(':') {
                self.config_for(path).and_then(|config| parse_module_source(&relative, &config))
            } else {
                Ok(ModuleSource::Local(relative.clone()))
            };
            let problem = match &source {
                Err(error) => Some((error.code, error.message.clone())),
                Ok(ModuleSource::TemplateSpec(text)) => Some(("BRT003", format!("Template spec modules (\"{text}\") are not supported by berth's compiler; publish the module to a registry (br:) or reference a local file."))),
                Ok(ModuleSource::Registry(_)) => None,
                Ok(ModuleSource::Local(_)) if relative.is_empty() => {
                    Some(("BCP050", "The specified path is empty.".to_owned()))
                }
                Ok(ModuleSource::Local(_)) if relative.starts_with('/') => Some(("BCP051", "The specified path begins with \"/\". Files must be referenced using relative paths.".to_owned())),
                Ok(ModuleSource::Local(_)) if relative.contains('\\') => Some(("BCP098", "The specified file path contains a \"\\\" character. Use \"/\" instead as the directory separator character.".to_owned())),
                Ok(ModuleSource::Local(_)) => None,
            };
            if let Some((code, message)) = problem {
                diagnostics.push(Diagnostic::error(code, message, module_path.span));
                interfaces.insert(name.name.clone(), None);
                continue;
            }
            if let Ok(ModuleSource::Registry(reference)) = source {
                if !self.artifacts.contains(&reference) {
                    self.artifacts.push(reference.clone());
                }
                let interface = match self.loader.registry_module(&reference) {
                    Restored::Template(template) => match self.compile(&template) {
                        Ok(index) => {
                            self.module_interface(index, module_path.span, &mut diagnostics)
                        }
                        Err(error) => {
                            diagnostics.push(Diagnostic::error(
                                "BCP192",
                                format!(
                                    "Unable to restore the artifact with reference \"{reference}\": {}",
                                    io_message(&error, &template)
                                ),
                                module_path.span,
                            ));
                            None
                        }
                    },
                    Restored::NotRestored => {
                        diagnostics.push(Diagnostic::error(
                            "BCP190",
                            format!(
                                "The artifact with reference \"{reference}\" has not been restored."
                            ),
                            module_path.span,
                        ));
                        None
                    }
                    Restored::Blocked => {
                        diagnostics.push(Diagnostic::error(
                            "BCP446",
                            format!(
                                "Restore from registry \"{}\" is blocked because it is not in the trusted registries list. See https://aka.ms/bicep/registry-trust for details.",
                                reference.registry
                            ),
                            module_path.span,
                        ));
                        None
                    }
                    Restored::Failed(message) => {
                        diagnostics.push(Diagnostic::error(
                            "BCP192",
                            format!(
                                "Unable to restore the artifact with reference \"{reference}\": {message}"
                            ),
                            module_path.span,
                        ));
                        None
                    }
                };
                interfaces.insert(name.name.clone(), interface);
                continue;
            }
            let child = normalize(&path.parent().unwrap_or(Path::new("")).join(&relative));
            if child == path {
                diagnostics.push(Diagnostic::error(
                    "BCP094",
                    "This module references itself, which is not allowed.",
                    module_path.span,
                ));
                interfaces.insert(name.name.clone(), None);
                continue;
            }
            if let Some(start) = self.stack.iter().position(|p| *p == child) {
                let mut cycle: Vec<String> =
                    self.stack[start..].iter().map(|p| p.display().to_string()).collect();
                cycle.push(child.display().to_string());
                diagnostics.push(Diagnostic::error(
                    "BCP095",
                    format!("The file is involved in a cycle (\"{}\").", cycle.join("\" -> \"")),
                    module_path.span,
                ));
                interfaces.insert(name.name.clone(), None);
                continue;
            }
            match self.compile(&child) {
                Ok(index) => {
                    let interface =
                        self.module_interface(index, module_path.span, &mut diagnostics);
                    interfaces.insert(name.name.clone(), interface);
                }
                Err(error) => {
                    diagnostics.push(Diagnostic::error(
                        "BCP091",
                        format!("An error occurred reading file. {}", io_message(&error, &child)),
                        module_path.span,
                    ));
                    interfaces.insert(name.name.clone(), None);
                }
            }
        }
        self.stack.pop();

        let mut model = FileModel::build(&parsed.program, &interfaces);
        check(&mut model);
        diagnostics.append(&mut model.diagnostics);
        diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
        let has_errors = diagnostics.iter().any(Diagnostic::is_error);
        let template = (!has_errors).then(|| emit_template(&model));
        let interface = ModuleInterface {
            params: model
                .params
                .iter()
                .filter_map(|d| match &d.kind {
                    DeclKind::Param { name, default, .. } => {
                        Some((name.name.clone(), default.is_none()))
                    }
                    _ => None,
                })
                .collect(),
            outputs: model
                .outputs
                .iter()
                .filter_map(|d| d.name().map(|n| n.name.clone()))
                .collect(),
            target_scope: model.target_scope,
            template,
        };
        let index = self.files.len();
        self.files.push(SourceFile {
            path: path.to_owned(),
            lines: LineIndex::new(&text),
            text,
            diagnostics,
        });
        self.interfaces.insert(index, interface);
        Ok(index)
    }
}
