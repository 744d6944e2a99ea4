//! Compiling a file and the modules it calls: loads each file once (through a [`FileLoader`]),
//! detects module cycles (BCP094/BCP095), checks every file, and emits the root template only when
//! no file has errors. Diagnostics stay attached to the file they are about.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::ast::{DeclKind, ExprKind};
use crate::check::check;
use crate::diagnostics::{Diagnostic, SourceView};
use crate::emit::emit_template;
use crate::model::{FileModel, ModuleInterface};
use crate::parser::parse;
use crate::span::LineIndex;

/// Where source files come from (the file system, or memory in tests and benchmarks).
pub trait FileLoader {
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// Reads from the file system.
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
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
    let mut driver =
        Driver { loader, files: Vec::new(), interfaces: HashMap::new(), stack: Vec::new() };
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
    let mut compilation = Compilation { files: driver.files, template };
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
}

impl Driver<'_> {
    fn compile(&mut self, path: &Path) -> io::Result<usize> {
        if let Some(index) = self.files.iter().position(|f| f.path == path) {
            return Ok(index);
        }
        let text = self.loader.read(path)?;
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
            let problem = if relative.is_empty() {
                Some(("BCP050", "The specified path is empty.".to_owned()))
            } else if relative.starts_with("br:")
                || relative.starts_with("br/")
                || relative.starts_with("ts:")
                || relative.starts_with("ts/")
            {
                Some(("BRT003", format!("Modules from a registry (\"{relative}\") are not supported by berth's compiler yet; reference a local file.")))
            } else if relative.starts_with('/') {
                Some(("BCP051", "The specified path begins with \"/\". Files must be referenced using relative paths.".to_owned()))
            } else if relative.contains('\\') {
                Some(("BCP098", "The specified file path contains a \"\\\" character. Use \"/\" instead as the directory separator character.".to_owned()))
            } else {
                None
            };
            if let Some((code, message)) = problem {
                diagnostics.push(Diagnostic::error(code, message, module_path.span));
                interfaces.insert(name.name.clone(), None);
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
                    let interface = self.interfaces.get(&index).cloned();
                    if interface.as_ref().is_none_or(|i| i.template.is_none()) {
                        diagnostics.push(Diagnostic::error(
                            "BCP104",
                            "The referenced module has errors.",
                            module_path.span,
                        ));
                    }
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
