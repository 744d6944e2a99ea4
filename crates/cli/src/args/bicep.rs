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
    /// Restore the registry modules (`br:`) a .bicep file references into the local module cache.
    Restore(BicepRestoreArgs),
    /// Publish a .bicep file (compiled) or an ARM template to a registry as a Bicep module.
    Publish(BicepPublishArgs),
}

#[derive(Debug, Args)]
pub struct BicepRestoreArgs {
    /// The .bicep file whose modules to restore.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Restore again even when the cache holds the module.
    #[arg(long)]
    pub force: bool,
    /// How diagnostics are written to stderr.
    #[arg(long, value_enum, default_value_t = DiagnosticsFormat::Default)]
    pub diagnostics_format: DiagnosticsFormat,
}

#[derive(Debug, Args)]
pub struct BicepPublishArgs {
    /// The .bicep file (or ARM template .json) to publish (as the real CLI takes it).
    #[arg(
        value_name = "FILE",
        required_unless_present = "file_option",
        conflicts_with = "file_option"
    )]
    pub file: Option<PathBuf>,
    /// The file to publish (as `az bicep publish` takes it).
    #[arg(long = "file", short = 'f', value_name = "FILE", id = "file_option")]
    pub file_option: Option<PathBuf>,
    /// The module reference: `br:<login server>/<repository>:<tag>` or `br/<alias>:<path>:<tag>`.
    #[arg(long, short = 't', value_name = "REFERENCE")]
    pub target: String,
    /// Module documentation URI (the `org.opencontainers.image.documentation` annotation).
    #[arg(long, value_name = "URI")]
    pub documentation_uri: Option<String>,
    /// Overwrite an existing module with the same tag.
    #[arg(long)]
    pub force: bool,
    /// Publish the Bicep sources with the module (a `source.v1.tar+gzip` layer).
    #[arg(long)]
    pub with_source: bool,
    /// Do not restore the modules of FILE first.
    #[arg(long)]
    pub no_restore: bool,
    /// How diagnostics are written to stderr.
    #[arg(long, value_enum, default_value_t = DiagnosticsFormat::Default)]
    pub diagnostics_format: DiagnosticsFormat,
}

impl BicepPublishArgs {
    pub fn path(&self) -> &std::path::Path {
        self.file.as_deref().or(self.file_option.as_deref()).unwrap_or(std::path::Path::new(""))
    }
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
    /// Compile with the module cache as it is: registry modules not restored yet are errors (BCP190).
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
    /// Lint with the module cache as it is (registry modules not restored yet are errors).
    #[arg(long)]
    pub no_restore: bool,
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
