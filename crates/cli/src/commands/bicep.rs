//! `berth bicep build|lint|format|restore|publish` and `berth bicep --version`: the compiler of
//! `berth-bicep` behind the real Bicep CLI's command line, so `az` can run berth as its `bicep` binary.
//! Diagnostics go to stderr; a build with errors writes no template and fails. Registry modules (`br:`)
//! are restored first with the caller's own credentials ([`restore_and_compile`], the one entry point
//! for every command that compiles, deployments included).

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_bicep::registry::{parse_module_source, BicepConfig, ModuleSource, CONFIG_FILE_NAME};
use berth_bicep::{Compilation, Level, Restored};
use serde_json::{json, Value};

use super::bicep_registry::{
    module_manifest, trusted_registries, CacheLoader, ModuleCache, RegistryClient,
    TRUSTED_REGISTRIES_ENV,
};
use super::Context;
use crate::args::{
    BicepBuildArgs, BicepFormatArgs, BicepLintArgs, BicepPublishArgs, BicepRestoreArgs,
    DiagnosticsFormat,
};
use crate::profile::{ConfigDir, Profile};
use crate::session::Session;

pub fn version() -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", berth_bicep::version_line())?;
    Ok(())
}

/// Compiles `path`, first restoring into the module cache the registry modules it references that the
/// cache does not hold (all of them with `force`), with the profile's credentials. A module whose restore
/// fails is the real compiler's BCP192 in the result, with the registry's words (BCP446 for an untrusted
/// registry); nothing is restored when every module is cached (so it works offline). Without a profile, only
/// anonymous pulls can succeed. The one entry point for commands that compile.
pub(crate) async fn restore_and_compile(
    path: &Path,
    context: &Context<'_>,
    force: bool,
) -> Result<Compilation> {
    let cache = ModuleCache::for_config_dir(context.config_dir.path());
    let profile = context.config_dir.load_profile()?;
    restore_then_compile(path, &cache, profile.as_ref(), force).await
}

/// [`restore_and_compile`] for callers that hold a session (deployments): the session's principal restores, into
/// the cache of the configuration directory in force (`$BERTH_CONFIG_DIR`, as every command's).
pub(crate) async fn restore_and_compile_for_session(
    path: &Path,
    session: &Session,
) -> Result<Compilation> {
    let cache = ModuleCache::for_config_dir(ConfigDir::from_env()?.path());
    restore_then_compile(path, &cache, Some(&session.profile), false).await
}

async fn restore_then_compile(
    path: &Path,
    cache: &ModuleCache,
    profile: Option<&Profile>,
    force: bool,
) -> Result<Compilation> {
    let mut loader = CacheLoader { cache, failures: HashMap::new() };
    let compilation = berth_bicep::compile_with(path, &loader);
    let wanted: Vec<_> = compilation
        .artifacts
        .iter()
        .filter(|r| force || cache.lookup(r).is_none())
        .cloned()
        .collect();
    if wanted.is_empty() {
        return Ok(compilation);
    }
    let trusted = trusted_registries(profile);
    let mut registry = RegistryClient::new(profile)?;
    for reference in wanted {
        if !trusted.allows(&reference.registry) {
            loader.failures.insert(reference, Restored::Blocked);
            continue;
        }
        let stored = match registry.pull(&reference).await {
            Ok(pulled) => cache
                .store(&reference, &pulled)
                .map(|_| ())
                .map_err(|e| format!("writing the module cache {}: {e}", cache.root().display())),
            Err(message) => Err(message),
        };
        if let Err(message) = stored {
            loader.failures.insert(reference, Restored::Failed(message));
        }
    }
    Ok(berth_bicep::compile_with(path, &loader))
}

/// The module cache as it is, nothing restored (`--no-restore`).
fn compile_cached(path: &Path, context: &Context<'_>) -> Compilation {
    let cache = ModuleCache::for_config_dir(context.config_dir.path());
    berth_bicep::compile_with(path, &CacheLoader { cache: &cache, failures: HashMap::new() })
}

pub async fn build(args: BicepBuildArgs, context: &Context<'_>) -> Result<()> {
    let compilation = if args.no_restore {
        compile_cached(&args.file, context)
    } else {
        restore_and_compile(&args.file, context, false).await?
    };
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

pub async fn lint(args: BicepLintArgs, context: &Context<'_>) -> Result<()> {
    let compilation = if args.no_restore {
        compile_cached(&args.file, context)
    } else {
        restore_and_compile(&args.file, context, false).await?
    };
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

/// The codes of a module reference that cannot be used or restored.
fn is_restore_diagnostic(code: &str) -> bool {
    matches!(
        code,
        "BCP189"
            | "BCP190"
            | "BCP191"
            | "BCP192"
            | "BCP193"
            | "BCP195"
            | "BCP196"
            | "BCP197"
            | "BCP198"
            | "BCP199"
            | "BCP200"
            | "BCP211"
            | "BCP213"
            | "BCP216"
            | "BCP224"
            | "BCP271"
            | "BCP446"
            | "BCP273"
    )
}

/// `berth bicep restore FILE [--force]`: restores the file's registry modules (and those of its local
/// modules) into the cache; reports and fails on references that cannot be restored.
pub async fn restore(args: BicepRestoreArgs, context: &Context<'_>) -> Result<()> {
    let compilation = restore_and_compile(&args.file, context, args.force).await?;
    let restore_only = Compilation {
        files: compilation
            .files
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.diagnostics.retain(|d| is_restore_diagnostic(&d.code));
                f
            })
            .collect(),
        template: None,
        artifacts: compilation.artifacts.clone(),
    };
    write_diagnostics(&restore_only, args.diagnostics_format)?;
    if restore_only.has_errors() {
        anyhow::bail!("{}", failure_summary(&restore_only));
    }
    Ok(())
}

/// `berth bicep publish FILE --target br:... [--documentation-uri U] [--force] [--with-source]`: compiles FILE
/// (refusing on errors) or takes an ARM template as it is, and pushes it as the real Bicep does.
pub async fn publish(args: BicepPublishArgs, context: &Context<'_>) -> Result<Option<Value>> {
    let file = args.path().to_owned();
    let config = nearest_config(&file)?;
    let reference = match parse_module_source(&args.target, &config) {
        Ok(ModuleSource::Registry(reference)) if reference.tag.is_some() => reference,
        Ok(_) => bail!("The specified module target \"{}\" is not supported.", args.target),
        Err(error) => bail!("{}", error.message),
    };
    let is_json = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["json", "jsonc", "arm"].iter().any(|x| e.eq_ignore_ascii_case(x)));
    let (template, source) = if is_json {
        if args.with_source {
            bail!("Cannot publish with source when the target is an ARM template file.");
        }
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        (bytes, None)
    } else {
        let compilation = if args.no_restore {
            compile_cached(&file, context)
        } else {
            restore_and_compile(&file, context, false).await?
        };
        write_diagnostics(&compilation, args.diagnostics_format)?;
        let Some(text) = compilation.template_text() else {
            bail!("{}", failure_summary(&compilation));
        };
        let source = if args.with_source {
            let cache = ModuleCache::for_config_dir(context.config_dir.path());
            Some(source_archive(&compilation, &cache)?)
        } else {
            None
        };
        (text.into_bytes(), source)
    };
    let description = serde_json::from_slice::<Value>(&template).ok().and_then(|t| {
        t.pointer("/metadata/description").and_then(Value::as_str).map(str::to_owned)
    });
    let created = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let config_blob = b"{}";
    let manifest = module_manifest(
        config_blob,
        &template,
        source.as_deref(),
        description.as_deref(),
        args.documentation_uri.as_deref(),
        &created,
    );
    let profile = context.config_dir.require_profile()?;
    if !trusted_registries(Some(&profile)).allows(&reference.registry) {
        bail!(
            "Unable to publish module \"{reference}\": Cannot connect to registry \"{}\" because it is not in the list of trusted registries. Set the {TRUSTED_REGISTRIES_ENV} environment variable (comma-separated hostnames, e.g. \"contoso.example.com,*.contoso.io\") to allow it.",
            reference.registry
        );
    }
    let mut registry = RegistryClient::new(Some(&profile))?;
    let failed = |e: anyhow::Error| {
        let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
        anyhow::anyhow!("Unable to publish module \"{reference}\": {}", chain.join(": "))
    };
    if !args.force && registry.exists(&reference).await.map_err(failed)? {
        bail!(
            "The module \"{reference}\" already exists in registry. Use --force to overwrite the existing module."
        );
    }
    let mut blobs: Vec<&[u8]> = vec![config_blob, &template];
    if let Some(source) = &source {
        blobs.push(source);
    }
    registry.push(&reference, &blobs, &manifest).await.map_err(failed)?;
    Ok(None)
}

/// The `bicepconfig.json` nearest above `file`, else the built-in configuration.
fn nearest_config(file: &Path) -> Result<BicepConfig> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let mut dir = absolute.parent();
    while let Some(current) = dir {
        let candidate = current.join(CONFIG_FILE_NAME);
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            return BicepConfig::parse(&text, &candidate)
                .map_err(|e| anyhow::anyhow!("{}", e.message));
        }
        dir = current.parent();
    }
    Ok(BicepConfig::default())
}

/// The real Bicep's source archive (`SourceArchive`): a tar.gz with `__metadata.json` and each compiled file under
/// `files/<path>`, where `<path>` is relative to the entry point's directory, `<cache>/...` for a restored module
/// (with the artifact it came from), or `<rootN>/...` for files elsewhere; characters Bicep forbids in archive paths
/// become `_`.
fn source_archive(compilation: &Compilation, cache: &ModuleCache) -> Result<Vec<u8>> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let cached: BTreeMap<PathBuf, String> = compilation
        .artifacts
        .iter()
        .filter_map(|r| cache.lookup(r).map(|path| (path, r.to_string())))
        .collect();
    let entry_dir = compilation
        .files
        .first()
        .and_then(|f| absolute(&f.path).parent().map(Path::to_path_buf))
        .unwrap_or_default();
    // Directories of files outside the entry point's, each under the first of them that contains it.
    let mut other_dirs: Vec<PathBuf> = compilation
        .files
        .iter()
        .filter(|f| !cached.contains_key(&f.path) && !absolute(&f.path).starts_with(&entry_dir))
        .filter_map(|f| absolute(&f.path).parent().map(Path::to_path_buf))
        .collect();
    other_dirs.sort();
    other_dirs.dedup();
    let mut roots: Vec<PathBuf> = Vec::new();
    for dir in other_dirs {
        if roots.last().is_none_or(|root| !dir.starts_with(root)) {
            roots.push(dir);
        }
    }
    let mut entries: Vec<(String, String, &'static str, Option<String>, &str)> = Vec::new();
    for file in &compilation.files {
        let path = absolute(&file.path);
        let (relative, artifact) = match cached.get(&file.path) {
            Some(artifact) => {
                let inside = file.path.strip_prefix(cache.root()).unwrap_or(&file.path);
                (format!("<cache>/{}", inside.display()), Some(artifact.clone()))
            }
            None => match path.strip_prefix(&entry_dir) {
                Ok(inside) => (inside.display().to_string(), None),
                Err(_) => {
                    let (n, root) = roots
                        .iter()
                        .enumerate()
                        .find(|(_, root)| path.starts_with(root))
                        .map_or((0, Path::new("")), |(i, root)| (i + 1, root.as_path()));
                    let inside = path.strip_prefix(root).unwrap_or(&path);
                    (format!("<root{n}>/{}", inside.display()), None)
                }
            },
        };
        let kind = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("bicep")) {
            "bicep"
        } else {
            "armTemplate"
        };
        let archive_path: String = format!("files/{relative}")
            .chars()
            .map(|c| if "\"*:<>?\\|&+[]#".contains(c) { '_' } else { c })
            .collect();
        entries.push((relative, archive_path, kind, artifact, file.text.as_str()));
    }
    let entry_point = entries.first().map(|e| e.0.clone()).unwrap_or_default();
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let source_files: Vec<Value> = entries
        .iter()
        .map(|(path, archive_path, kind, artifact, _)| {
            let mut entry = json!({ "path": path, "archivePath": archive_path, "kind": kind });
            if let Some(artifact) = artifact {
                entry["sourceArtifactId"] = json!(artifact);
            }
            entry
        })
        .collect();
    let metadata = json!({
        "metadataVersion": 1,
        "bicepVersion": berth_bicep::BICEP_VERSION,
        "entryPoint": entry_point,
        "sourceFiles": source_files,
        "documentLinks": {},
    });
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut add = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes)?;
        Ok(())
    };
    add("__metadata.json", serde_json::to_string(&metadata)?.as_bytes())?;
    for (_, archive_path, _, _, text) in &entries {
        add(archive_path, text.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// Compiles a `.bicep` file for `berth deployment ...` (restoring its registry modules with the session's
/// credentials first): the ARM template, or an error after the diagnostics were written to stderr.
pub(crate) async fn compile_for_deployment(
    path: &Path,
    session: &crate::session::Session,
) -> Result<Value> {
    let compilation = restore_and_compile_for_session(path, session).await?;
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
    use crate::commands::bicep_registry::Pulled;
    use berth_bicep::registry::ArtifactReference;

    #[test]
    fn source_archives_are_laid_out_as_the_real_bicep_lays_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        };
        let main = write(
            "app/main.bicep",
            "module a './lib/a.bicep' = {\n  name: 'a'\n}\nmodule b '../shared/b.json' = {\n  name: 'b'\n}\nmodule c 'br:r.example/mods/c:v1' = {\n  name: 'c'\n}\n",
        );
        write("app/lib/a.bicep", "output x string = 'a'\n");
        write("shared/b.json", "{\"$schema\": \"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#\", \"resources\": []}");
        let cache = ModuleCache::new(dir.path().join("cache"));
        let template = br#"{"resources": []}"#.to_vec();
        let manifest =
            super::super::bicep_registry::module_manifest(b"{}", &template, None, None, None, "t");
        let reference = ArtifactReference::parse("br:r.example/mods/c:v1").unwrap();
        let pulled = Pulled {
            manifest_digest: berth_oci::Digest::sha256_of(&manifest).to_string(),
            manifest,
            template,
            source: None,
        };
        cache.store(&reference, &pulled).unwrap();
        let loader = CacheLoader { cache: &cache, failures: HashMap::new() };
        let compilation = berth_bicep::compile_with(&main, &loader);
        assert!(!compilation.has_errors());

        let archive = source_archive(&compilation, &cache).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
        let mut names = Vec::new();
        let mut metadata = Value::Null;
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "__metadata.json" {
                metadata = serde_json::from_reader(&mut entry).unwrap();
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "__metadata.json",
                "files/_cache_/br/r.example/mods$c/v1$/main.json",
                "files/_root1_/b.json",
                "files/lib/a.bicep",
                "files/main.bicep",
            ]
        );
        assert_eq!(metadata["metadataVersion"], 1);
        assert_eq!(metadata["entryPoint"], "main.bicep");
        assert_eq!(
            metadata["sourceFiles"],
            json!([
                {"path": "<cache>/br/r.example/mods$c/v1$/main.json", "archivePath": "files/_cache_/br/r.example/mods$c/v1$/main.json", "kind": "armTemplate", "sourceArtifactId": "br:r.example/mods/c:v1"},
                {"path": "<root1>/b.json", "archivePath": "files/_root1_/b.json", "kind": "armTemplate"},
                {"path": "lib/a.bicep", "archivePath": "files/lib/a.bicep", "kind": "bicep"},
                {"path": "main.bicep", "archivePath": "files/main.bicep", "kind": "bicep"},
            ])
        );
    }

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
