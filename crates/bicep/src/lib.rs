//! berth's Bicep compiler: `parse` (lossless, never fails), semantic checks with the real
//! compiler's BCP codes, and `compile_path` (ARM JSON equal to the real compiler's non-symbolic
//! output, modules inlined as nested deployments). Pure: no network, no async; the only IO is
//! reading the files being compiled, through a [`FileLoader`]. Registry modules (`br:`) are parsed
//! here (`registry`) but restored by the caller, whose loader maps them to their cached templates.

pub mod ast;
mod check;
mod compile;
pub mod diagnostics;
mod emit;
mod format;
mod functions;
pub mod lexer;
mod model;
pub mod parser;
pub mod registry;
pub mod span;
pub mod syntax;

pub use compile::{
    compile_path, compile_with, Compilation, FileLoader, FsLoader, Restored, SourceFile,
};
pub use diagnostics::{Diagnostic, Level, Origin, SourceView};
pub use emit::BICEP_VERSION;
pub use format::format;
pub use parser::{parse, Parsed};

/// The first line `bicep --version` prints, in the real CLI's form (the Azure CLI parses the version from it).
pub fn version_line() -> String {
    format!("Bicep CLI version {BICEP_VERSION} (berth {})", env!("CARGO_PKG_VERSION"))
}
