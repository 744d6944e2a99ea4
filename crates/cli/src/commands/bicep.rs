//! `berth bicep build|lint` and `berth bicep --version`: the compiler of `berth-bicep` behind the
//! real Bicep CLI's command line, so `az` can run berth as its `bicep` binary. Diagnostics go to
//! stderr; a build with errors writes no template and fails.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use berth_bicep::{Compilation, Level};
use serde_json::{json, Value};

use crate::args::{BicepBuildArgs, BicepFormatArgs, BicepLintArgs, DiagnosticsFormat};

pub fn version() -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", berth_bicep::version_line())?;
    Ok(())
}

pub fn build(args: BicepBuildArgs) -> Result<()> {
    let compilation = berth_bicep::compile_path(&args.file);
    write_diagnostics(&compilation, args.diagnostics_format)?;
    let Some(text) = compilation.template_text() else {
        anyhow::bail!("{}", failure_summary(&compilation));
    };
    if args.stdout {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        return Ok(());
    }
    let target = output_path(&args.file, args.outfile.as_deref(), args.outdir.as_deref());
    std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

pub fn lint(args: BicepLintArgs) -> Result<()> {
    let compilation = berth_bicep::compile_path(&args.file);
    write_diagnostics(&compilation, args.diagnostics_format)?;
    if compilation.has_errors() {
        anyhow::bail!("{}", failure_summary(&compilation));
    }
    Ok(())
}

pub fn format(args: BicepFormatArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let Some(formatted) = berth_bicep::format(&text) else {
        let parsed = berth_bicep::parse(&text);
        let lines = berth_bicep::span::LineIndex::new(&text);
        let path = args.file.display().to_string();
        let view = berth_bicep::SourceView { path: &path, text: &text, lines: &lines };
        let mut stderr = std::io::stderr().lock();
        for diagnostic in parsed.diagnostics.iter().filter(|d| d.is_error()) {
            write!(stderr, "{}", view.snippet(diagnostic, false))?;
        }
        anyhow::bail!("{path}: not formatted, the file has syntax errors");
    };
    if args.stdout {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(formatted.as_bytes())?;
        stdout.flush()?;
        return Ok(());
    }
    let target = args.outfile.unwrap_or(args.file);
    std::fs::write(&target, formatted).with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

/// Compiles a `.bicep` file for `berth deployment ...`: the ARM template, or an error after the diagnostics were
/// written to stderr. (The session will give registry modules the caller's credentials.)
pub(crate) fn compile_for_deployment(
    path: &Path,
    session: &crate::session::Session,
) -> Result<Value> {
    let _ = session;
    let compilation = berth_bicep::compile_path(path);
    write_diagnostics(&compilation, DiagnosticsFormat::Default)?;
    let Some(text) = compilation.template_text() else {
        anyhow::bail!("{}", failure_summary(&compilation));
    };
    serde_json::from_str(&text).context("the compiled template is not JSON")
}

fn failure_summary(compilation: &Compilation) -> String {
    let errors = compilation.diagnostics().filter(|(_, d)| d.level == Level::Error).count();
    let files = compilation.files.first().map(|f| f.path.display().to_string()).unwrap_or_default();
    format!("{files}: compilation failed with {errors} error{}", if errors == 1 { "" } else { "s" })
}

/// `FILE.bicep` → `FILE.json` (or inside `outdir`), as the real CLI names it.
fn output_path(file: &Path, outfile: Option<&Path>, outdir: Option<&Path>) -> PathBuf {
    if let Some(outfile) = outfile {
        return outfile.to_owned();
    }
    let name = file.with_extension("json");
    match outdir {
        Some(dir) => dir.join(name.file_name().unwrap_or_default()),
        None => name,
    }
}

fn write_diagnostics(compilation: &Compilation, format: DiagnosticsFormat) -> Result<()> {
    let mut stderr = std::io::stderr().lock();
    match format {
        DiagnosticsFormat::Json => {
            let diagnostics: Vec<Value> =
                compilation.diagnostics().map(|(f, d)| f.view().json(d)).collect();
            writeln!(
                stderr,
                "{}",
                serde_json::to_string_pretty(&json!({ "diagnostics": diagnostics }))?
            )?;
        }
        DiagnosticsFormat::Brief => {
            for (file, diagnostic) in compilation.diagnostics() {
                writeln!(stderr, "{}", file.view().bicep_line(diagnostic))?;
            }
        }
        DiagnosticsFormat::Default => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            for (file, diagnostic) in compilation.diagnostics() {
                write!(stderr, "{}", file.view().snippet(diagnostic, color))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_real_cli() {
        assert_eq!(
            output_path(Path::new("a/main.bicep"), None, None),
            PathBuf::from("a/main.json")
        );
        assert_eq!(
            output_path(Path::new("a/main.bicep"), None, Some(Path::new("out"))),
            PathBuf::from("out/main.json")
        );
        assert_eq!(
            output_path(Path::new("main.bicep"), Some(Path::new("x.json")), None),
            PathBuf::from("x.json")
        );
    }
}
