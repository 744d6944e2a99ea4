//! Bicep modules in OCI registries, the client side: the local module cache (the real Bicep's layout under
//! berth's cache directory), restoring `br:` references with the caller's own credentials, and publishing.
//!
//! Restoring is az's and Bicep's wire flow: `GET /v2/<repository>/manifests/<tag>` answers 401 with a
//! `Bearer` challenge; an Entra token for the registry audience (the profile's service principal) is exchanged
//! at `<realm's origin>/oauth2/exchange` for a refresh token, then at the realm for an access token with the
//! scope the challenge names (`repository:<repository>:pull`). So the registry's authorization (AcrPull)
//! decides who may use a module. Manifest and layers are verified against their digests before anything is
//! cached, and again whenever the cache is read. Credentials go only to the registry's own origin or the
//! berth server of the profile.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_bicep::registry::{is_digest, ArtifactReference, TrustedRegistries};
use berth_bicep::{FileLoader, Restored};
use berth_client::{BearerChallenge, Client, Method, RawResponse};
use berth_oci::Digest;
use serde_json::{json, Map, Value};

use super::acr_data::REGISTRY_SCOPE;
use crate::profile::Profile;
use crate::session::trusted_ca_pem;

/// The OCI image manifest media type Bicep pushes modules with.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `artifactType` of a Bicep module (Bicep's `BicepMediaTypes.BicepModuleArtifactType`).
pub const MODULE_ARTIFACT_TYPE: &str = "application/vnd.ms.bicep.module.artifact";
/// The config blob's media type; the config is `{}`.
pub const MODULE_CONFIG: &str = "application/vnd.ms.bicep.module.config.v1+json";
/// The layer holding the compiled ARM template.
pub const MODULE_LAYER: &str = "application/vnd.ms.bicep.module.layer.v1+json";
/// The optional layer holding the Bicep sources (`--with-source`).
pub const SOURCE_LAYER: &str = "application/vnd.ms.bicep.module.source.v1.tar+gzip";

const NEWER_VERSION: &str =
    "A newer version of Bicep might be required to reference this artifact.";

/// The environment variable naming the module cache's root (default: `<config dir>/bicep`).
pub const CACHE_DIR_ENV: &str = "BERTH_BICEP_CACHE_DIR";

/// Bicep's `TagEncoder`: the tag, `$`, then a hex mask of its upper-case letters, so tags that differ only
/// in case get different directories on case-insensitive file systems.
pub fn encode_tag(tag: &str) -> String {
    let mut mask = [0u64; 2];
    for (i, c) in tag.chars().enumerate().take(128) {
        if c.is_uppercase() {
            mask[i / 64] |= 1 << (i % 64);
        }
    }
    let mut out = format!("{tag}$");
    let mut leading = false;
    for value in mask.iter().rev() {
        if *value != 0 || leading {
            if leading {
                out.push_str(&format!("{value:016x}"));
            } else {
                out.push_str(&format!("{value:x}"));
            }
            leading = true;
        }
    }
    out
}

/// What a pull brought: the manifest as the registry sent it, and the layers Bicep keeps.
pub struct Pulled {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub template: Vec<u8>,
    pub source: Option<Vec<u8>>,
}

/// The module cache: `<root>/br/<registry>/<repository with / as $>/<tag$mask | sha256#hex>/` holding
/// `manifest`, `metadata` (`{"manifestDigest": ...}`), `main.json` and, when published with sources,
/// `source.tgz` — the real Bicep's layout. A tag's content is also kept under its digest.
pub struct ModuleCache {
    root: PathBuf,
}

impl ModuleCache {
    pub fn new(root: impl Into<PathBuf>) -> ModuleCache {
        ModuleCache { root: root.into() }
    }

    /// `$BERTH_BICEP_CACHE_DIR`, else `<config dir>/bicep`.
    pub fn for_config_dir(config_dir: &Path) -> ModuleCache {
        match std::env::var_os(CACHE_DIR_ENV).filter(|dir| !dir.is_empty()) {
            Some(dir) => ModuleCache::new(dir),
            None => ModuleCache::new(config_dir.join("bicep")),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn repository_dir(&self, reference: &ArtifactReference) -> PathBuf {
        self.root
            .join("br")
            .join(reference.registry.replace(':', "$").to_lowercase())
            .join(reference.repository.replace('/', "$"))
    }

    /// The directory of an artifact, as Bicep names it.
    pub fn artifact_dir(&self, reference: &ArtifactReference) -> PathBuf {
        let leaf = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => digest.replace(':', "#"),
            (None, Some(tag)) => encode_tag(tag),
            (None, None) => String::new(),
        };
        self.repository_dir(reference).join(leaf)
    }

    /// The restored template of `reference`, only when manifest, metadata and layer still match their digests.
    pub fn lookup(&self, reference: &ArtifactReference) -> Option<PathBuf> {
        let dir = self.artifact_dir(reference);
        let manifest = std::fs::read(dir.join("manifest")).ok()?;
        let metadata: Value =
            serde_json::from_slice(&std::fs::read(dir.join("metadata")).ok()?).ok()?;
        let recorded = metadata.get("manifestDigest")?.as_str()?;
        let actual = Digest::sha256_of(&manifest).to_string();
        if recorded != actual || reference.digest.as_deref().is_some_and(|d| d != actual) {
            return None;
        }
        let parsed: Value = serde_json::from_slice(&manifest).ok()?;
        let layer = module_layer(&parsed).ok()?;
        let template_path = dir.join("main.json");
        let template = std::fs::read(&template_path).ok()?;
        (Digest::sha256_of(&template).to_string() == layer.digest
            && template.len() as u64 == layer.size)
            .then_some(template_path)
    }

    /// Writes a verified pull under the reference and under its digest; returns the template's path.
    pub fn store(&self, reference: &ArtifactReference, pulled: &Pulled) -> io::Result<PathBuf> {
        let by_digest = ArtifactReference {
            tag: None,
            digest: Some(pulled.manifest_digest.clone()),
            ..reference.clone()
        };
        let mut written = self.write_dir(&self.artifact_dir(&by_digest), pulled)?;
        if reference.digest.is_none() {
            written = self.write_dir(&self.artifact_dir(reference), pulled)?;
        }
        Ok(written)
    }

    /// Fills a fresh sibling directory, then swaps it in, so a reader never sees half an artifact.
    fn write_dir(&self, dir: &Path, pulled: &Pulled) -> io::Result<PathBuf> {
        let parent = dir.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent)?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("artifact");
        let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        std::fs::write(staging.join("manifest"), &pulled.manifest)?;
        std::fs::write(staging.join("main.json"), &pulled.template)?;
        if let Some(source) = &pulled.source {
            std::fs::write(staging.join("source.tgz"), source)?;
        }
        let metadata = json!({ "manifestDigest": pulled.manifest_digest });
        std::fs::write(staging.join("metadata"), serde_json::to_vec(&metadata)?)?;
        std::fs::write(staging.join("lock"), b"")?;
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        if let Err(error) = std::fs::rename(&staging, dir) {
            // Another restore of the same artifact got there first: its copy has the same digests.
            let _ = std::fs::remove_dir_all(&staging);
            let same = std::fs::read(dir.join("manifest")).is_ok_and(|m| m == pulled.manifest)
                && std::fs::read(dir.join("main.json")).is_ok_and(|t| t == pulled.template);
            if !same {
                return Err(error);
            }
        }
        Ok(dir.join("main.json"))
    }
}

/// A descriptor of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layer {
    media_type: String,
    digest: String,
    size: u64,
}

fn descriptor(value: &Value) -> Option<Layer> {
    Some(Layer {
        media_type: value.get("mediaType")?.as_str()?.to_owned(),
        digest: value.get("digest")?.as_str()?.to_owned(),
        size: value.get("size")?.as_u64()?,
    })
}

fn layers_of(manifest: &Value) -> Vec<Layer> {
    manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(|layers| layers.iter().filter_map(descriptor).collect())
        .unwrap_or_default()
}

/// Checks a manifest is a Bicep module as the real Bicep does (`OciModuleArtifactResult`), and finds the
/// layer holding the compiled template.
fn module_layer(manifest: &Value) -> Result<Layer, String> {
    if let Some(artifact_type) = manifest.get("artifactType").and_then(Value::as_str) {
        if !artifact_type.eq_ignore_ascii_case(MODULE_ARTIFACT_TYPE) {
            return Err(format!(
                "Expected OCI manifest artifactType value of '{MODULE_ARTIFACT_TYPE}' but found '{artifact_type}'. {NEWER_VERSION}"
            ));
        }
    }
    if let Some(config) = manifest.pointer("/config/mediaType").and_then(Value::as_str) {
        if !config.eq_ignore_ascii_case(MODULE_CONFIG) {
            return Err(format!("Did not expect config media type \"{config}\". {NEWER_VERSION}"));
        }
    }
    let mut main: Vec<Layer> = layers_of(manifest)
        .into_iter()
        .filter(|l| l.media_type.eq_ignore_ascii_case(MODULE_LAYER))
        .collect();
    match main.len() {
        0 => {
            Err(format!("Expected to find a layer with media type {MODULE_LAYER}, but found none."))
        }
        1 => Ok(main.remove(0)),
        _ => Err(format!("Did not expect to find multiple layer media types of {MODULE_LAYER}")),
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty())
        .then(|| format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// A failure in the registry's own words, as the real Bicep shows a failed request.
fn registry_failure(response: &RawResponse) -> String {
    let status = response.status;
    let reason = reqwest_reason(status);
    let detail = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| {
            let errors = body.get("errors")?.as_array()?;
            let parts: Vec<String> = errors
                .iter()
                .filter_map(|e| {
                    let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
                    let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
                    (!code.is_empty() || !message.is_empty()).then(|| format!("{code}: {message}"))
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&response.body).trim().to_owned());
    if detail.is_empty() {
        format!("Service request failed. Status: {status} ({reason})")
    } else {
        format!("Service request failed. Status: {status} ({reason}) {detail}")
    }
}

fn reqwest_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// An error chain on one line.
fn chain(error: &anyhow::Error) -> String {
    error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Conversations with registries on behalf of the profile's principal (anonymous without a profile: a registry
/// that asks for credentials then gets none); tokens are kept per registry and scope.
pub struct RegistryClient<'p> {
    profile: Option<&'p Profile>,
    ca_pem: Option<String>,
    entra_token: Option<String>,
    /// Refresh tokens by `service`.
    refresh_tokens: HashMap<String, String>,
    /// Access tokens by `(registry, scope)`.
    access_tokens: HashMap<(String, String), String>,
}

impl<'p> RegistryClient<'p> {
    pub fn new(profile: Option<&'p Profile>) -> Result<RegistryClient<'p>> {
        let ca_pem = trusted_ca_pem(profile.and_then(|p| p.ca_pem.as_deref()))?;
        Ok(RegistryClient {
            profile,
            ca_pem,
            entra_token: None,
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
        })
    }

    /// `https://<registry>`, or the profile server's scheme when the registry is that server (a berth run with
    /// `--insecure-http` serves its registries over http).
    fn base_url(&self, registry: &str) -> String {
        let server = self.profile.map_or("", |p| p.server.as_str());
        let (scheme, rest) = server.split_once("://").unwrap_or(("https", server));
        let host = rest.split('/').next().unwrap_or_default();
        if host.eq_ignore_ascii_case(registry) {
            format!("{scheme}://{registry}")
        } else {
            format!("https://{registry}")
        }
    }

    fn client(&self, registry: &str) -> Result<Client> {
        Ok(Client::new(&self.base_url(registry), self.ca_pem.as_deref())?)
    }

    /// An access token for `scope` and what `challenge` asks for.
    async fn access_token(
        &mut self,
        registry: &str,
        challenge: &BearerChallenge,
        scope: &str,
    ) -> Result<String> {
        let mut scopes = vec![scope.to_owned()];
        if let Some(asked) = challenge.scope.as_ref().filter(|asked| asked.as_str() != scope) {
            scopes.push(asked.clone());
        }
        let Some(profile) = self.profile else {
            bail!("the registry asks for credentials and nobody is logged in; run `berth login` to restore modules with your credentials.");
        };
        let Some(realm_origin) = origin(&challenge.realm) else {
            bail!("the registry's challenge names no usable token service: '{}'", challenge.realm);
        };
        let trusted = [origin(&self.base_url(registry)), origin(&profile.server)];
        if !trusted.iter().flatten().any(|o| *o == realm_origin) {
            bail!(
                "the registry's token service '{}' is neither the registry nor the berth server of your \
                 profile; berth sends your credentials nowhere else",
                challenge.realm
            );
        }
        let service = challenge.service.clone().unwrap_or_else(|| registry.to_owned());
        let token_client = Client::new(&realm_origin, self.ca_pem.as_deref())?;
        let refresh = match self.refresh_tokens.get(&service) {
            Some(refresh) => refresh.clone(),
            None => {
                let entra = match &self.entra_token {
                    Some(token) => token.clone(),
                    None => {
                        let token = Client::new(&profile.server, self.ca_pem.as_deref())?
                            .client_credentials_token(
                                &profile.tenant_id,
                                &profile.client_id,
                                &profile.client_secret,
                                REGISTRY_SCOPE,
                            )
                            .await
                            .context("getting an Entra token for the registry")?
                            .access_token;
                        self.entra_token = Some(token.clone());
                        token
                    }
                };
                let refresh = token_client
                    .exchange_refresh_token(
                        &format!("{realm_origin}/oauth2/exchange"),
                        &service,
                        &profile.tenant_id,
                        &entra,
                    )
                    .await
                    .context("exchanging the Entra token for a registry refresh token")?;
                self.refresh_tokens.insert(service.clone(), refresh.clone());
                refresh
            }
        };
        let token = token_client
            .registry_access_token(&challenge.realm, &service, &scopes, &refresh)
            .await
            .context("getting a registry access token")?;
        Ok(token)
    }

    /// A request to the registry, authenticated on its 401 challenge and retried once.
    async fn send(
        &mut self,
        registry: &str,
        default_scope: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse> {
        let client = self.client(registry)?;
        let key = (registry.to_lowercase(), default_scope.to_owned());
        let cached = self.access_tokens.get(&key).cloned();
        let first = match &cached {
            Some(token) => client.clone().with_bearer_token(token.clone()),
            None => client.clone(),
        };
        let response = first.send_raw(method.clone(), path, headers, body.clone()).await?;
        if response.status != 401 {
            return Ok(response);
        }
        let Some(challenge) = response.header("www-authenticate").and_then(BearerChallenge::parse)
        else {
            return Ok(response);
        };
        let token = self.access_token(registry, &challenge, default_scope).await?;
        self.access_tokens.insert(key, token.clone());
        Ok(client.with_bearer_token(token).send_raw(method, path, headers, body).await?)
    }

    fn repository_path(reference: &ArtifactReference) -> String {
        reference
            .repository
            .split('/')
            .map(berth_client::encode_path_segment)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Pulls a module: manifest (verified against the reference's digest when it names one), then the
    /// template layer and the source layer, each verified against its descriptor. `Err` is the message of
    /// the real compiler's BCP192.
    pub async fn pull(&mut self, reference: &ArtifactReference) -> Result<Pulled, String> {
        self.try_pull(reference).await.map_err(|e| chain(&e))
    }

    async fn try_pull(&mut self, reference: &ArtifactReference) -> Result<Pulled> {
        let registry = reference.registry.as_str();
        let repository = Self::repository_path(reference);
        let scope = format!("repository:{}:pull", reference.repository);
        let accept = [("accept", OCI_MANIFEST)];
        let path = format!("/v2/{repository}/manifests/{}", reference.manifest_reference());
        let response = self.send(registry, &scope, Method::GET, &path, &accept, None).await?;
        match response.status {
            200 => {}
            404 => bail!("The artifact does not exist in the registry."),
            _ => bail!("{}", registry_failure(&response)),
        }
        let manifest = response.body;
        let manifest_digest = Digest::sha256_of(&manifest).to_string();
        if let Some(expected) = &reference.digest {
            if *expected != manifest_digest {
                bail!("There is a mismatch in the manifest digests. Received content digest = {manifest_digest}, Requested digest = {expected}");
            }
        }
        if let Some(header) =
            response.headers.get("docker-content-digest").and_then(|v| v.to_str().ok())
        {
            if is_digest(header) && header != manifest_digest {
                bail!("There is a mismatch in the manifest digests. Received content digest = {manifest_digest}, Digest in registry response = {header}");
            }
        }
        let parsed: Value = serde_json::from_slice(&manifest)
            .map_err(|_| anyhow::anyhow!("Unable to deserialize OCI manifest"))?;
        let main = module_layer(&parsed).map_err(|e| anyhow::anyhow!(e))?;
        let template = self.blob(reference, &scope, &main).await?;
        let source = match layers_of(&parsed)
            .into_iter()
            .find(|l| l.media_type.eq_ignore_ascii_case(SOURCE_LAYER))
        {
            Some(layer) => Some(self.blob(reference, &scope, &layer).await?),
            None => None,
        };
        Ok(Pulled { manifest, manifest_digest, template, source })
    }

    async fn blob(
        &mut self,
        reference: &ArtifactReference,
        scope: &str,
        layer: &Layer,
    ) -> Result<Vec<u8>> {
        let path = format!("/v2/{}/blobs/{}", Self::repository_path(reference), layer.digest);
        let response = self.send(&reference.registry, scope, Method::GET, &path, &[], None).await?;
        match response.status {
            200 => {}
            404 => bail!(
                "Module manifest refers to a non-existent blob with digest \"{}\".",
                layer.digest
            ),
            _ => bail!("{}", registry_failure(&response)),
        }
        let data = response.body;
        if data.len() as u64 != layer.size {
            bail!(
                "Expected blob size of {} bytes but received {} bytes from the registry.",
                layer.size,
                data.len()
            );
        }
        let digest = Digest::sha256_of(&data).to_string();
        if digest != layer.digest {
            bail!("There is a mismatch in the layer digests. Received content digest = {digest}, Requested digest = {}", layer.digest);
        }
        Ok(data)
    }

    /// Whether the tag or digest exists (`HEAD` on the manifest).
    pub async fn exists(&mut self, reference: &ArtifactReference) -> Result<bool> {
        let scope = format!("repository:{}:pull", reference.repository);
        let path = format!(
            "/v2/{}/manifests/{}",
            Self::repository_path(reference),
            reference.manifest_reference()
        );
        let accept = [("accept", OCI_MANIFEST)];
        let response =
            self.send(&reference.registry, &scope, Method::HEAD, &path, &accept, None).await?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => bail!("{}", registry_failure(&response)),
        }
    }

    /// Pushes blobs (unless present) and the manifest under the reference's tag; returns the manifest digest.
    pub async fn push(
        &mut self,
        reference: &ArtifactReference,
        blobs: &[&[u8]],
        manifest: &[u8],
    ) -> Result<String> {
        let registry = reference.registry.clone();
        let repository = Self::repository_path(reference);
        let scope = format!("repository:{}:pull,push", reference.repository);
        for blob in blobs {
            let digest = Digest::sha256_of(blob).to_string();
            let head = format!("/v2/{repository}/blobs/{digest}");
            let exists = self.send(&registry, &scope, Method::HEAD, &head, &[], None).await?;
            if exists.status == 200 {
                continue;
            }
            let start = format!("/v2/{repository}/blobs/uploads/");
            let started = self.send(&registry, &scope, Method::POST, &start, &[], None).await?;
            if started.status != 202 {
                bail!("{}", registry_failure(&started));
            }
            let Some(location) = started.header("location").map(str::to_owned) else {
                bail!("the registry started an upload without a Location");
            };
            let separator = if location.contains('?') { '&' } else { '?' };
            let upload = format!("{location}{separator}digest={digest}");
            let upload = match origin(&upload) {
                // An absolute Location must stay on the registry.
                Some(o) if Some(o.clone()) != origin(&self.base_url(&registry)) => {
                    bail!("the registry sent the upload to another origin: {o}")
                }
                _ => upload,
            };
            let headers = [("content-type", "application/octet-stream")];
            let done = self
                .send(&registry, &scope, Method::PUT, &upload, &headers, Some(blob.to_vec()))
                .await?;
            if done.status != 201 {
                bail!("{}", registry_failure(&done));
            }
        }
        let path = format!("/v2/{repository}/manifests/{}", reference.manifest_reference());
        let headers = [("content-type", OCI_MANIFEST)];
        let response = self
            .send(&registry, &scope, Method::PUT, &path, &headers, Some(manifest.to_vec()))
            .await?;
        if response.status != 201 {
            bail!("{}", registry_failure(&response));
        }
        Ok(Digest::sha256_of(manifest).to_string())
    }
}

/// The manifest Bicep pushes for a module (`OciArtifactRegistry.PublishModule`): OCI image manifest with the
/// module artifactType, the `{}` config, the template layer, the optional source layer, and the annotations.
pub fn module_manifest(
    config: &[u8],
    template: &[u8],
    source: Option<&[u8]>,
    description: Option<&str>,
    documentation_uri: Option<&str>,
    created: &str,
) -> Vec<u8> {
    let describe = |media_type: &str, bytes: &[u8], title: Option<&str>| {
        let mut d = Map::new();
        d.insert("mediaType".into(), media_type.into());
        d.insert("digest".into(), Digest::sha256_of(bytes).to_string().into());
        d.insert("size".into(), bytes.len().into());
        let mut annotations = Map::new();
        if let Some(title) = title {
            annotations.insert("org.opencontainers.image.title".into(), title.into());
        }
        d.insert("annotations".into(), Value::Object(annotations));
        Value::Object(d)
    };
    let mut layers = vec![describe(MODULE_LAYER, template, Some("Compiled ARM template"))];
    if let Some(source) = source {
        layers.push(describe(SOURCE_LAYER, source, Some("Source files")));
    }
    let mut annotations = Map::new();
    if let Some(description) = description.filter(|d| !d.trim().is_empty()) {
        annotations.insert("org.opencontainers.image.description".into(), description.into());
    }
    if let Some(uri) = documentation_uri.filter(|d| !d.trim().is_empty()) {
        annotations.insert("org.opencontainers.image.documentation".into(), uri.into());
    }
    annotations.insert("org.opencontainers.image.created".into(), created.into());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODULE_ARTIFACT_TYPE,
        "config": describe(MODULE_CONFIG, config, None),
        "layers": layers,
        "annotations": annotations,
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// The environment variable adding trusted registries, as the real Bicep reads it.
pub const TRUSTED_REGISTRIES_ENV: &str = "BICEP_TRUSTED_REGISTRIES";

/// The registries restores and publishes may reach: the real Bicep's list, `$BICEP_TRUSTED_REGISTRIES`, and the
/// berth server of the profile (its host, and its subdomains for host-mode registries).
pub fn trusted_registries(profile: Option<&Profile>) -> TrustedRegistries {
    let mut trusted = TrustedRegistries::default()
        .with(&std::env::var(TRUSTED_REGISTRIES_ENV).unwrap_or_default());
    if let Some(profile) = profile {
        let rest = profile.server.split_once("://").map_or(profile.server.as_str(), |(_, r)| r);
        let host = rest.split('/').next().unwrap_or_default();
        let bare = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or(host)
        } else {
            host.split(':').next().unwrap_or(host)
        };
        trusted = trusted.with(&format!("{bare},*.{bare}"));
    }
    trusted
}

/// The compiler's loader: files from disk, registry modules from the cache, and the outcome of this run's
/// failed restores (BCP192, or BCP446 for an untrusted registry).
pub struct CacheLoader<'c> {
    pub cache: &'c ModuleCache,
    pub failures: HashMap<ArtifactReference, Restored>,
}

impl FileLoader for CacheLoader<'_> {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn registry_module(&self, reference: &ArtifactReference) -> Restored {
        if let Some(failure) = self.failures.get(reference) {
            return failure.clone();
        }
        match self.cache.lookup(reference) {
            Some(path) => Restored::Template(path),
            None => Restored::NotRestored,
        }
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> ArtifactReference {
        ArtifactReference::parse(text).expect(text)
    }

    #[test]
    fn tags_encode_their_casing_as_bicep_does() {
        assert_eq!(encode_tag("v1"), "v1$");
        assert_eq!(encode_tag("V1"), "V1$1");
        assert_eq!(encode_tag("v1A"), "v1A$4");
        let long = format!("{}A", "a".repeat(64));
        assert_eq!(encode_tag(&long), format!("{long}$10000000000000000"));
    }

    #[test]
    fn cache_layout_is_the_real_biceps() {
        let cache = ModuleCache::new("/c");
        assert_eq!(
            cache.artifact_dir(&reference("br:Example.AzureCR.io:443/a/b/mod:V1")),
            PathBuf::from("/c/br/example.azurecr.io$443/a$b$mod/V1$1")
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            cache.artifact_dir(&reference(&format!("br:r.io/m@{digest}"))),
            PathBuf::from(format!("/c/br/r.io/m/sha256#{}", "0".repeat(64)))
        );
    }

    #[test]
    fn the_cache_serves_only_what_matches_its_digests() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::new(dir.path());
        let template = br#"{"$schema":"x","resources":[]}"#.to_vec();
        let manifest =
            module_manifest(b"{}", &template, None, Some("d"), None, "2026-01-01T00:00:00Z");
        let digest = Digest::sha256_of(&manifest).to_string();
        let tagged = reference("br:r.io/team/mod:v1");
        let pulled = Pulled {
            manifest: manifest.clone(),
            manifest_digest: digest.clone(),
            template: template.clone(),
            source: None,
        };
        let path = cache.store(&tagged, &pulled).unwrap();
        assert_eq!(cache.lookup(&tagged), Some(path.clone()));
        let by_digest = reference(&format!("br:r.io/team/mod@{digest}"));
        let digest_path = cache.lookup(&by_digest).expect("kept under its digest too");
        assert_eq!(std::fs::read(digest_path).unwrap(), template);
        let metadata: Value =
            serde_json::from_slice(&std::fs::read(path.with_file_name("metadata")).unwrap())
                .unwrap();
        assert_eq!(metadata, json!({ "manifestDigest": digest }));

        // A tampered template is not served.
        std::fs::write(&path, br#"{"$schema":"y","resources":[]}"#).unwrap();
        assert_eq!(cache.lookup(&tagged), None);
        // Nor a manifest that no longer matches its recorded digest.
        cache.store(&tagged, &pulled).unwrap();
        std::fs::write(path.with_file_name("manifest"), b"{}").unwrap();
        assert_eq!(cache.lookup(&tagged), None);
        assert_eq!(cache.lookup(&reference("br:r.io/team/mod:v2")), None);
    }

    #[test]
    fn manifests_are_checked_as_bicep_checks_them() {
        let template = b"{}";
        let manifest: Value = serde_json::from_slice(&module_manifest(
            b"{}",
            template,
            Some(b"src"),
            None,
            Some("https://docs"),
            "t",
        ))
        .unwrap();
        assert_eq!(manifest["artifactType"], MODULE_ARTIFACT_TYPE);
        assert_eq!(manifest["config"]["mediaType"], MODULE_CONFIG);
        assert_eq!(manifest["layers"][1]["mediaType"], SOURCE_LAYER);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.documentation"],
            "https://docs"
        );
        assert!(manifest["annotations"].get("org.opencontainers.image.description").is_none());
        assert_eq!(module_layer(&manifest).unwrap().size, 2);

        let mut image = manifest.clone();
        image["artifactType"] = json!("application/vnd.example+type");
        assert!(module_layer(&image).unwrap_err().starts_with(
            "Expected OCI manifest artifactType value of 'application/vnd.ms.bicep.module.artifact' but found 'application/vnd.example+type'."
        ));
        let mut no_layer = manifest.clone();
        no_layer["layers"] = json!([]);
        assert_eq!(
            module_layer(&no_layer).unwrap_err(),
            "Expected to find a layer with media type application/vnd.ms.bicep.module.layer.v1+json, but found none."
        );
        let mut other_config = manifest;
        other_config["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
        assert!(module_layer(&other_config)
            .unwrap_err()
            .starts_with("Did not expect config media type"));
    }

    #[test]
    fn origins() {
        assert_eq!(origin("https://H:1/oauth2/token").as_deref(), Some("https://h:1"));
        assert_eq!(origin("/oauth2/token"), None);
    }
}
