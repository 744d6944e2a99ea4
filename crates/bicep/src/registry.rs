//! Module references to a registry (`br:<registry>/<repository>:<tag>`, `br:...@sha256:...`,
//! `br/<alias>:<path>:<tag>`) as the real compiler parses them, with its BCP codes and words, and the
//! module aliases of `bicepconfig.json` (searched upward from the referencing file). Pure: which files
//! exist is the caller's [`FileLoader`](crate::FileLoader)'s business; nothing here reaches a registry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The scheme of OCI registry references.
pub const OCI_SCHEME: &str = "br";
/// The scheme of template spec references (outside berth's subset).
pub const TEMPLATE_SPEC_SCHEME: &str = "ts";
/// The name of the configuration file searched upward from a referencing file.
pub const CONFIG_FILE_NAME: &str = "bicepconfig.json";

const MAX_REGISTRY_LENGTH: usize = 255;
const MAX_REPOSITORY_LENGTH: usize = 255;
const MAX_TAG_LENGTH: usize = 128;

/// An OCI artifact: registry (host and port), repository, and a tag or a digest (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactReference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ArtifactReference {
    /// `registry/repository:tag` or `registry/repository@digest`.
    pub fn artifact_id(&self) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(digest)) => format!("{}/{}@{digest}", self.registry, self.repository),
            (Some(tag), None) => format!("{}/{}:{tag}", self.registry, self.repository),
            (None, None) => format!("{}/{}", self.registry, self.repository),
        }
    }

    /// The tag or digest, as a manifest reference in `/v2/<repository>/manifests/<reference>`.
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or_default()
    }

    /// Parses `br:<registry>/<repository>:<tag>` or `br:...@<digest>` (no alias), as `bicep publish
    /// --target` takes it.
    pub fn parse(text: &str) -> Result<ArtifactReference, ReferenceError> {
        match text.strip_prefix("br:") {
            Some(rest) => parse_oci(rest, None),
            None => Err(ReferenceError::new(
                "BCP193",
                format!("{} {OCI_FORMAT_HINT}", invalid_clause(None, text)),
            )),
        }
    }
}

/// The form the real compiler prints: `br:registry/repository:tag`.
impl fmt::Display for ArtifactReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}:{}", self.artifact_id())
    }
}

/// A reference that cannot be used, with the real compiler's code and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    pub code: &'static str,
    pub message: String,
}

impl ReferenceError {
    fn new(code: &'static str, message: impl Into<String>) -> ReferenceError {
        ReferenceError { code, message: message.into() }
    }
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ReferenceError {}

/// What a module declaration's path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A file relative to the referencing file (`.bicep`, or an ARM template `.json`).
    Local(String),
    /// An artifact in an OCI registry.
    Registry(ArtifactReference),
    /// A template spec (`ts:`), outside berth's subset.
    TemplateSpec(String),
}

/// `moduleAliases.br` of a `bicepconfig.json`, merged over the built-in configuration (alias `public`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BicepConfig {
    /// The file it was read from; `None` for the built-in configuration.
    pub path: Option<PathBuf>,
    pub oci_aliases: BTreeMap<String, OciAlias>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciAlias {
    pub registry: Option<String>,
    pub module_path: Option<String>,
}

impl Default for BicepConfig {
    /// The built-in configuration: `br/public:` is `mcr.microsoft.com/bicep`.
    fn default() -> BicepConfig {
        let mut oci_aliases = BTreeMap::new();
        oci_aliases.insert(
            "public".to_owned(),
            OciAlias {
                registry: Some("mcr.microsoft.com".to_owned()),
                module_path: Some("bicep".to_owned()),
            },
        );
        BicepConfig { path: None, oci_aliases }
    }
}

impl BicepConfig {
    /// Reads a `bicepconfig.json` (comments and trailing commas allowed, as the real compiler reads it).
    /// Errors are BCP271 (not JSON) or BCP273 (JSON of the wrong shape).
    pub fn parse(text: &str, path: &Path) -> Result<BicepConfig, ReferenceError> {
        let uri = file_uri(path);
        let value: Value = serde_json::from_str(&strip_json_comments(text)).map_err(|e| {
            ReferenceError::new(
                "BCP271",
                format!(
                    "Failed to parse the contents of the Bicep configuration file \"{uri}\" as valid JSON: {}.",
                    e.to_string().trim_end_matches('.')
                ),
            )
        })?;
        let shape = |what: &str| {
            ReferenceError::new(
                "BCP273",
                format!("Failed to parse the contents of the Bicep configuration file \"{uri}\": {what}."),
            )
        };
        let mut config = BicepConfig { path: Some(path.to_owned()), ..BicepConfig::default() };
        let Some(root) = value.as_object() else {
            return Err(shape("the configuration must be a JSON object"));
        };
        let aliases = root
            .get("moduleAliases")
            .filter(|v| !v.is_null())
            .map(|v| v.as_object().ok_or_else(|| shape("\"moduleAliases\" must be an object")))
            .transpose()?
            .and_then(|m| m.get("br"))
            .filter(|v| !v.is_null());
        if let Some(aliases) = aliases {
            let aliases = aliases
                .as_object()
                .ok_or_else(|| shape("\"moduleAliases.br\" must be an object"))?;
            for (name, alias) in aliases {
                let text = |key: &str| -> Result<Option<String>, ReferenceError> {
                    match alias.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.clone())),
                        Some(_) => Err(shape(&format!(
                            "\"moduleAliases.br.{name}.{key}\" must be a string"
                        ))),
                    }
                };
                if !alias.is_object() {
                    return Err(shape(&format!("\"moduleAliases.br.{name}\" must be an object")));
                }
                config.oci_aliases.insert(
                    name.clone(),
                    OciAlias { registry: text("registry")?, module_path: text("modulePath")? },
                );
            }
        }
        Ok(config)
    }

    fn clause(&self) -> String {
        match &self.path {
            Some(path) => format!("Bicep configuration \"{}\"", file_uri(path)),
            None => "built-in Bicep configuration".to_owned(),
        }
    }

    /// `registry[/modulePath]` of an alias, or the real compiler's BCP211/BCP213/BCP216.
    pub fn resolve_alias(&self, alias: &str) -> Result<String, ReferenceError> {
        let valid = !alias.is_empty()
            && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ReferenceError::new(
                "BCP211",
                format!("The module alias name \"{alias}\" is invalid. Valid characters are alphanumeric, \"_\", or \"-\"."),
            ));
        }
        let Some(entry) = self.oci_aliases.get(alias) else {
            return Err(ReferenceError::new(
                "BCP213",
                format!(
                    "The OCI artifact module alias name \"{alias}\" does not exist in the {}.",
                    self.clause()
                ),
            ));
        };
        let Some(registry) = &entry.registry else {
            return Err(ReferenceError::new(
                "BCP216",
                format!(
                    "The OCI artifact module alias \"{alias}\" in the {} is invalid. The \"registry\" property must be specified.",
                    self.clause()
                ),
            ));
        };
        Ok(match &entry.module_path {
            Some(path) => format!("{registry}/{path}"),
            None => registry.clone(),
        })
    }
}

/// Which registries may be restored from (the real compiler's `RegistryConfiguration`): the built-in list, and
/// patterns added by the caller (`BICEP_TRUSTED_REGISTRIES`, berth's own server). `*.suffix` matches any subdomain,
/// anything else one host; ports and a trailing dot are ignored, IPv6 addresses keep their brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRegistries {
    patterns: Vec<String>,
}

impl Default for TrustedRegistries {
    fn default() -> TrustedRegistries {
        TrustedRegistries {
            patterns: [
                "*.azurecr.io",
                "*.azurecr.cn",
                "*.azurecr.us",
                "mcr.microsoft.com",
                "mcr.azure.cn",
                "ghcr.io",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl TrustedRegistries {
    /// The built-in list plus `extra`, a comma- or semicolon-separated list as `BICEP_TRUSTED_REGISTRIES` holds.
    pub fn with(mut self, extra: &str) -> TrustedRegistries {
        self.patterns.extend(
            extra.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()).map(str::to_lowercase),
        );
        self
    }

    /// Whether `registry` (`host[:port]`) may be restored from.
    pub fn allows(&self, registry: &str) -> bool {
        let Some(host) = normalize_host(registry) else { return false };
        self.patterns.iter().any(|pattern| match pattern.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => {
                host.len() > suffix.len() && host.ends_with(suffix)
            }
            _ => normalize_host(pattern).is_some_and(|p| p == host),
        })
    }
}

fn normalize_host(registry: &str) -> Option<String> {
    if registry.contains("://") || registry.contains(['@', '/']) {
        return None;
    }
    let host = if registry.starts_with('[') {
        &registry[..=registry.find(']')?]
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    Some(host.trim_end_matches('.').to_lowercase())
}

/// How the real compiler names a configuration file in its messages.
fn file_uri(path: &Path) -> String {
    if path.is_absolute() {
        format!("file://{}", path.display())
    } else {
        path.display().to_string()
    }
}

/// Classifies a module path as the real compiler's `ModuleDispatcher` does: no `:` is a local file,
/// `br:`/`br/<alias>:` a registry artifact (the alias resolved through `config`), `ts:` a template spec,
/// any other scheme BCP189.
pub fn parse_module_source(
    text: &str,
    config: &BicepConfig,
) -> Result<ModuleSource, ReferenceError> {
    let Some((scheme_part, raw)) = text.split_once(':') else {
        return Ok(ModuleSource::Local(text.to_owned()));
    };
    let (scheme, alias) = match scheme_part.split_once('/') {
        Some((scheme, alias)) => (scheme, Some(alias)),
        None => (scheme_part, None),
    };
    match scheme {
        OCI_SCHEME => {
            let unqualified = match alias {
                Some(alias) => format!("{}/{raw}", config.resolve_alias(alias)?),
                None => raw.to_owned(),
            };
            parse_oci(&unqualified, alias).map(ModuleSource::Registry)
        }
        TEMPLATE_SPEC_SCHEME => Ok(ModuleSource::TemplateSpec(text.to_owned())),
        _ => Err(ReferenceError::new(
            "BCP189",
            format!(
                "The specified module reference scheme \"{scheme}\" is not recognized. Specify a path to a local module file or a module reference using one of the following schemes: \"{OCI_SCHEME}\", \"{TEMPLATE_SPEC_SCHEME}\""
            ),
        )),
    }
}

const OCI_FORMAT_HINT: &str = "Specify a reference in the format of \"br:<artifact-uri>:<tag>\", or \"br/<module-alias>:<module-name-or-path>:<tag>\".";

fn invalid_clause(alias: Option<&str>, bad: &str) -> String {
    match alias {
        Some(alias) => format!(
            "The OCI artifact reference \"{bad}\" after resolving alias \"{alias}\" is not valid."
        ),
        None => format!("The specified OCI artifact reference \"{bad}\" is not valid."),
    }
}

/// `host[:port]` as a URI authority: a DNS name or IPv4 address (labels of letters, digits, `-` and `_`), or an
/// IPv6 address in brackets; so a registry can never name a path such as `..`.
fn is_authority(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else { return false };
        if address.is_empty()
            || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
    });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`
fn is_namespace_segment(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut previous_separator = true;
    for &b in bytes {
        if alnum(b) {
            previous_separator = false;
        } else if matches!(b, b'.' | b'_' | b'-') {
            if previous_separator {
                return false;
            }
            previous_separator = true;
        } else {
            return false;
        }
    }
    !previous_separator
}

/// `^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    s.len() <= MAX_TAG_LENGTH
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `^sha256:[a-f0-9]{64}$`
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// URL-decoding as `HttpUtility.UrlDecode` does for messages (`%xx`, `+` as space).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The real compiler's `OciArtifactAddressComponents.TryParse` of `<registry>/<repository>(:<tag>|@<digest>)`.
fn parse_oci(unqualified: &str, alias: Option<&str>) -> Result<ArtifactReference, ReferenceError> {
    let bad = format!("{OCI_SCHEME}:{unqualified}");
    let clause = || invalid_clause(alias, &bad);
    let invalid = || ReferenceError::new("BCP193", format!("{} {OCI_FORMAT_HINT}", clause()));
    // What `Uri.TryCreate("br://" + reference)` refuses or reads differently.
    if unqualified.is_empty()
        || unqualified.chars().any(|c| c.is_whitespace() || c.is_control())
        || unqualified.contains(['?', '#', '\\'])
    {
        return Err(invalid());
    }
    let (registry, path) = unqualified.split_once('/').ok_or_else(invalid)?;
    if !is_authority(registry) || path.is_empty() {
        return Err(invalid());
    }
    if registry.len() > MAX_REGISTRY_LENGTH {
        return Err(ReferenceError::new(
            "BCP200",
            format!(
                "{} The registry \"{registry}\" exceeds the maximum length of {MAX_REGISTRY_LENGTH} characters.",
                clause()
            ),
        ));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let (last, middle) = segments.split_last().ok_or_else(invalid)?;
    let bad_segment = |segment: &str| {
        ReferenceError::new(
            "BCP195",
            format!(
                "{} The artifact path segment \"{segment}\" is not valid. Each artifact name path segment must be a lowercase alphanumeric string optionally separated by a \".\", \"_\" , or \"-\".",
                clause()
            ),
        )
    };
    let mut repository = String::new();
    for segment in middle {
        if !is_namespace_segment(segment) {
            return Err(bad_segment(&decode(segment)));
        }
        repository.push_str(&decode(segment));
        repository.push('/');
    }
    let delimiter = last.find([':', '@']);
    let name = decode(delimiter.map_or(*last, |i| &last[..i]));
    if !is_namespace_segment(&name) {
        return Err(bad_segment(&name));
    }
    repository.push_str(&name);
    if repository.len() > MAX_REPOSITORY_LENGTH {
        return Err(ReferenceError::new(
            "BCP199",
            format!(
                "{} Module path \"{repository}\" exceeds the maximum length of {MAX_REPOSITORY_LENGTH} characters.",
                clause()
            ),
        ));
    }
    let missing = || {
        ReferenceError::new("BCP196", format!("{} The module tag or digest is missing.", clause()))
    };
    let Some(index) = delimiter else { return Err(missing()) };
    let value = decode(&last[index + 1..]);
    if value.is_empty() {
        return Err(missing());
    }
    let registry = registry.to_owned();
    if last.as_bytes()[index] == b':' {
        if value.len() > MAX_TAG_LENGTH {
            return Err(ReferenceError::new(
                "BCP197",
                format!(
                    "{} The tag \"{value}\" exceeds the maximum length of {MAX_TAG_LENGTH} characters.",
                    clause()
                ),
            ));
        }
        if !is_tag(&value) {
            return Err(ReferenceError::new(
                "BCP198",
                format!(
                    "{} The tag \"{value}\" is not valid. Valid characters are alphanumeric, \".\", \"_\", or \"-\" but the tag cannot begin with \".\", \"_\", or \"-\".",
                    clause()
                ),
            ));
        }
        Ok(ArtifactReference { registry, repository, tag: Some(value), digest: None })
    } else {
        if !is_digest(&value) {
            return Err(ReferenceError::new(
                "BCP224",
                format!(
                    "{} The digest \"{value}\" is not valid. The valid format is a string \"sha256:\" followed by exactly 64 lowercase hexadecimal digits.",
                    clause()
                ),
            ));
        }
        Ok(ArtifactReference { registry, repository, tag: None, digest: Some(value) })
    }
}

/// JSON with `//` and `/* */` comments and trailing commas made strict (strings left alone).
pub fn strip_json_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    let mut start = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                out.push_str(&text[start..i]);
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                start = i;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.push_str(&text[start..i]);
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                out.push(' ');
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[start.min(text.len())..]);
    remove_trailing_commas(&out)
}

fn remove_trailing_commas(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}') | Some(b']')) {
                out.push_str(&text[start..i]);
                start = i + 1;
            }
        }
        i += 1;
    }
    out.push_str(&text[start.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModuleSource, ReferenceError> {
        parse_module_source(text, &BicepConfig::default())
    }

    fn registry(text: &str) -> ArtifactReference {
        match parse(text) {
            Ok(ModuleSource::Registry(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn error(text: &str) -> ReferenceError {
        parse(text).expect_err(text)
    }

    #[test]
    fn references_with_tags_and_digests() {
        let r = registry("br:example.azurecr.io/bicep/modules/storage:v1.0");
        assert_eq!(r.registry, "example.azurecr.io");
        assert_eq!(r.repository, "bicep/modules/storage");
        assert_eq!(r.tag.as_deref(), Some("v1.0"));
        assert_eq!(r.to_string(), "br:example.azurecr.io/bicep/modules/storage:v1.0");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = registry(&format!("br:127.0.0.1:5000/acr/mod@{digest}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acr/mod");
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(digest.as_str())));
        assert_eq!(r.manifest_reference(), digest);
        assert_eq!(ArtifactReference::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn local_paths_and_other_schemes() {
        assert_eq!(parse("./mod.bicep"), Ok(ModuleSource::Local("./mod.bicep".into())));
        assert_eq!(parse("x.json"), Ok(ModuleSource::Local("x.json".into())));
        assert!(matches!(parse("ts:sub/rg/spec:1"), Ok(ModuleSource::TemplateSpec(_))));
        let e = error("foo:bar");
        assert_eq!(e.code, "BCP189");
        assert_eq!(e.message, "The specified module reference scheme \"foo\" is not recognized. Specify a path to a local module file or a module reference using one of the following schemes: \"br\", \"ts\"");
    }

    #[test]
    fn bad_references_get_the_real_compilers_codes_and_words() {
        let e = error("br:example.azurecr.io");
        assert_eq!(e.code, "BCP193");
        assert_eq!(e.message, "The specified OCI artifact reference \"br:example.azurecr.io\" is not valid. Specify a reference in the format of \"br:<artifact-uri>:<tag>\", or \"br/<module-alias>:<module-name-or-path>:<tag>\".");
        assert_eq!(error("br:").code, "BCP193");
        assert_eq!(error("br:/x:v1").code, "BCP193");
        for bad in [
            "br:../x:v1",
            "br:./x:v1",
            "br:a..b/x:v1",
            "br:user@r.io/x:v1",
            "br:r.io:port/x:v1",
            "br:[zz]/x:v1",
            "br:r.io:/x:v1",
        ] {
            assert_eq!(error(bad).code, "BCP193", "{bad}");
        }
        for good in [
            "br:localhost:5000/x:v1",
            "br:[::1]:5000/x:v1",
            "br:[::1]/x:v1",
            "br:127.0.0.1/x:v1",
            "br:my_reg.example/x:v1",
        ] {
            assert!(matches!(parse(good), Ok(ModuleSource::Registry(_))), "{good}");
        }

        let e = error("br:example.azurecr.io/Foo/bar:v1");
        assert_eq!(e.code, "BCP195");
        assert_eq!(e.message, "The specified OCI artifact reference \"br:example.azurecr.io/Foo/bar:v1\" is not valid. The artifact path segment \"Foo\" is not valid. Each artifact name path segment must be a lowercase alphanumeric string optionally separated by a \".\", \"_\" , or \"-\".");
        assert_eq!(error("br:example.azurecr.io/a//b:v1").code, "BCP195");
        assert_eq!(error("br:example.azurecr.io/a/b-:v1").code, "BCP195");

        let e = error("br:example.azurecr.io/foo/bar");
        assert_eq!(e.code, "BCP196");
        assert_eq!(e.message, "The specified OCI artifact reference \"br:example.azurecr.io/foo/bar\" is not valid. The module tag or digest is missing.");
        assert_eq!(error("br:example.azurecr.io/foo/bar:").code, "BCP196");

        let long = "a".repeat(129);
        let e = error(&format!("br:r.io/foo:{long}"));
        assert_eq!(e.code, "BCP197");
        assert_eq!(e.message, format!("The specified OCI artifact reference \"br:r.io/foo:{long}\" is not valid. The tag \"{long}\" exceeds the maximum length of 128 characters."));

        let e = error("br:r.io/foo:-v1");
        assert_eq!(e.code, "BCP198");
        assert_eq!(e.message, "The specified OCI artifact reference \"br:r.io/foo:-v1\" is not valid. The tag \"-v1\" is not valid. Valid characters are alphanumeric, \".\", \"_\", or \"-\" but the tag cannot begin with \".\", \"_\", or \"-\".");
        assert_eq!(error("br:r.io/foo:v1:v2").code, "BCP198");

        let repository = format!("{}/x", "a".repeat(255));
        assert_eq!(error(&format!("br:r.io/{repository}:v1")).code, "BCP199");
        assert_eq!(error(&format!("br:{}/x:v1", "r".repeat(256))).code, "BCP200");

        let e = error("br:r.io/foo@sha256:ABC");
        assert_eq!(e.code, "BCP224");
        assert_eq!(e.message, "The specified OCI artifact reference \"br:r.io/foo@sha256:ABC\" is not valid. The digest \"sha256:ABC\" is not valid. The valid format is a string \"sha256:\" followed by exactly 64 lowercase hexadecimal digits.");
    }

    #[test]
    fn aliases_come_from_bicepconfig_over_the_built_in_configuration() {
        let r = registry("br/public:avm/res/storage:0.9.0");
        assert_eq!(r.artifact_id(), "mcr.microsoft.com/bicep/avm/res/storage:0.9.0");

        let path = Path::new("/src/bicepconfig.json");
        let config = BicepConfig::parse(
            r#"{
              // comments and trailing commas, as the real compiler allows
              "moduleAliases": {
                "br": {
                  "corp": { "registry": "127.0.0.1:8443", "modulePath": "acr/modules", },
                  "bare": { "registry": "corp.example" },
                  "broken": { "modulePath": "x" }, /* no registry */
                }
              }
            }"#,
            path,
        )
        .expect("config");
        let source = parse_module_source("br/corp:storage:v1", &config).unwrap();
        let ModuleSource::Registry(r) = source else { panic!() };
        assert_eq!(r.registry, "127.0.0.1:8443");
        assert_eq!(r.repository, "acr/modules/storage");
        assert_eq!(r.to_string(), "br:127.0.0.1:8443/acr/modules/storage:v1");
        let ModuleSource::Registry(r) = parse_module_source("br/bare:a/b:v2", &config).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.artifact_id(), "corp.example/a/b:v2");
        assert!(parse_module_source("br/public:x:1", &config).is_ok(), "the built-in alias stays");

        let e = parse_module_source("br/nope:x:v1", &config).unwrap_err();
        assert_eq!(e.code, "BCP213");
        assert_eq!(e.message, "The OCI artifact module alias name \"nope\" does not exist in the Bicep configuration \"file:///src/bicepconfig.json\".");
        let e = parse_module_source("br/nope:x:v1", &BicepConfig::default()).unwrap_err();
        assert_eq!(e.message, "The OCI artifact module alias name \"nope\" does not exist in the built-in Bicep configuration.");
        let e = parse_module_source("br/broken:x:v1", &config).unwrap_err();
        assert_eq!(e.code, "BCP216");
        assert_eq!(e.message, "The OCI artifact module alias \"broken\" in the Bicep configuration \"file:///src/bicepconfig.json\" is invalid. The \"registry\" property must be specified.");
        let e = parse_module_source("br/a.b:x:v1", &config).unwrap_err();
        assert_eq!(e.code, "BCP211");
        assert_eq!(e.message, "The module alias name \"a.b\" is invalid. Valid characters are alphanumeric, \"_\", or \"-\".");

        let e = parse_module_source("br/corp:Storage:v1", &config).unwrap_err();
        assert_eq!(e.code, "BCP195");
        assert_eq!(e.message, "The OCI artifact reference \"br:127.0.0.1:8443/acr/modules/Storage:v1\" after resolving alias \"corp\" is not valid. The artifact path segment \"Storage\" is not valid. Each artifact name path segment must be a lowercase alphanumeric string optionally separated by a \".\", \"_\" , or \"-\".");
    }

    #[test]
    fn bad_configuration_files() {
        let e = BicepConfig::parse("{ \"moduleAliases\": ", Path::new("/a/bicepconfig.json"))
            .unwrap_err();
        assert_eq!(e.code, "BCP271");
        assert!(e.message.starts_with("Failed to parse the contents of the Bicep configuration file \"file:///a/bicepconfig.json\" as valid JSON: "), "{}", e.message);
        let e = BicepConfig::parse(
            r#"{"moduleAliases": {"br": {"x": {"registry": 5}}}}"#,
            Path::new("/a/bicepconfig.json"),
        )
        .unwrap_err();
        assert_eq!(e.code, "BCP273");
        // Strings with comment-like text are left alone.
        let config = BicepConfig::parse(
            r#"{"moduleAliases": {"br": {"x": {"registry": "a//b/*c*/"}}}}"#,
            Path::new("c.json"),
        )
        .unwrap();
        assert_eq!(config.oci_aliases["x"].registry.as_deref(), Some("a//b/*c*/"));
    }

    #[test]
    fn trusted_registries_as_the_real_compiler_matches_them() {
        let trusted = TrustedRegistries::default();
        assert!(trusted.allows("contoso.azurecr.io"));
        assert!(trusted.allows("Contoso.AzureCR.io:443"));
        assert!(trusted.allows("mcr.microsoft.com"));
        assert!(!trusted.allows("azurecr.io"), "a wildcard needs a subdomain");
        assert!(!trusted.allows("evil.example"));
        assert!(!trusted.allows("127.0.0.1:5000"));
        let trusted = trusted.with(" 127.0.0.1 ;*.corp.example,[::1]");
        assert!(trusted.allows("127.0.0.1:5000"));
        assert!(trusted.allows("registry.corp.example."));
        assert!(!trusted.allows("corp.example"));
        assert!(trusted.allows("[::1]:5000"));
        assert!(!trusted.allows("https://127.0.0.1"));
    }

    #[test]
    fn percent_decoding_for_messages() {
        assert_eq!(decode("a%41b"), "aAb");
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("%zz"), "%zz");
    }
}
