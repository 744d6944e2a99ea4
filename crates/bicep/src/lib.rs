//! berth's Bicep compiler: `parse` (lossless, never fails), `check` (Bicep's BCP diagnostics) and
//! `compile` (ARM JSON equal to the real compiler's non-symbolic output, modules inlined as nested
//! deployments). Pure: no network, no async; the only IO is reading the files being compiled.

pub mod ast;
pub mod diagnostics;
pub mod lexer;
pub mod parser;
pub mod span;
pub mod syntax;

pub use diagnostics::{Diagnostic, Level};
pub use parser::{parse, Parsed};
