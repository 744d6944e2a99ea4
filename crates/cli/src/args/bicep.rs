//! Arguments of `berth bicep ...`, in the real Bicep CLI's words, including the exact command line
//! the Azure CLI runs (`bicep --version`, `bicep build --stdout FILE`). Parsing only.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `berth bicep`: `--version` answers in the real CLI's form, so berth can stand in for `bicep`.
#[derive(Debug, Args)]
#[command(disable_version_flag = true, args_conflicts_with_subcommands = true)]
pub struct BicepArgs {
    /// Print the Bicep CLI version line (`Bicep CLI version X.Y.Z (...)`).
    #[arg(long, short = 'v')]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<BicepCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BicepCommand {
    /// Compile a .bicep file (and the modules it calls) to an ARM template.
    Build(BicepBuildArgs),
    /// Report the diagnostics of a .bicep file (compiler and linter) without writing a template.
    Lint(BicepLintArgs),
    /// Lay out a .bicep file (indentation, spacing, blank lines); rewrites the file unless told otherwise.
    Format(BicepFormatArgs),
}

#[derive(Debug, Args)]
pub struct BicepFormatArgs {
    /// The .bicep file to format.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the formatted file to stdout instead of rewriting it.
    #[arg(long, conflicts_with = "outfile")]
    pub stdout: bool,
    /// Write the formatted file here instead of rewriting FILE.
    #[arg(long, value_name = "FILE")]
    pub outfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BicepBuildArgs {
    /// The .bicep file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the template to stdout instead of writing a file.
    #[arg(long, conflicts_with_all = ["outfile", "outdir"])]
    pub stdout: bool,
    /// Write the template to this file (default: FILE with the extension .json).
    #[arg(long, value_name = "FILE", conflicts_with = "outdir")]
    pub outfile: Option<PathBuf>,
    /// Write the template into this directory, named after FILE.
    #[arg(long, value_name = "DIR")]
    pub outdir: Option<PathBuf>,
    /// How diagnostics are written to stderr.
    #[arg(long, value_enum, default_value_t = DiagnosticsFormat::Default)]
    pub diagnostics_format: DiagnosticsFormat,
    /// Accepted for compatibility: berth restores nothing (registry modules are not supported yet).
    #[arg(long)]
    pub no_restore: bool,
}

#[derive(Debug, Args)]
pub struct BicepLintArgs {
    /// The .bicep file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// How diagnostics are written to stderr.
    #[arg(long, value_enum, default_value_t = DiagnosticsFormat::Default)]
    pub diagnostics_format: DiagnosticsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticsFormat {
    /// Source snippets with the span underlined (coloured on a terminal).
    Default,
    /// One JSON document: `{"diagnostics": [...]}`.
    Json,
    /// One line per diagnostic, as the real `bicep` prints them: `file(line,col) : Error BCP036: ...`.
    Brief,
}
