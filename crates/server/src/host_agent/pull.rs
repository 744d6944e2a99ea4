//! One pull of a site's image, as a registry client would do it, over HTTP on berth's own listener.
//!
//! The identity: the site's system-assigned principal, or the user-assigned identity whose clientId is
//! `acrUserManagedIdentityID` (it must be one of the site's). Its Entra token (audience
//! `https://containerregistry.azure.net`, `xms_mirid` the site or the identity) is minted here, as the identity
//! provider mints it; then the registry's 401 challenge names the token service, `/oauth2/exchange` turns the token
//! into a refresh token, and `/oauth2/token` into an access token for `repository:<name>:pull`, so the registry's
//! own authorization (role assignments) decides. Manifests are fetched with the media types a container runtime
//! accepts, each verified against its digest; an index is resolved to the site's platform (linux/amd64, or
//! windows/amd64 for `windowsFxVersion`). Blobs stream to files through an incremental digest and are used only
//! after their digest and size check; memory stays bounded whatever the image's size.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_db::PrincipalKind;
use berth_identity::EntraClaims;
use berth_oci::{
    media_types, select_platform_manifest, Descriptor, Digest, DigestHasher, ParsedManifest,
    PlatformWanted,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::image_ref::{image_of_fx_version, ImageRef};
use super::{bundle, now_millis, unpack, Listener};
use crate::state::{AppState, REGISTRY_AUDIENCE};
use crate::time::now_unix;

/// Largest manifest or image config the agent reads (the registry's own manifest limit is 4 MiB).
const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Why a pull failed: a code for programs and a message a user can act on.
#[derive(Debug, Clone)]
pub struct PullError {
    pub code: &'static str,
    pub message: String,
}

fn fail<T>(code: &'static str, message: impl Into<String>) -> Result<T, PullError> {
    Err(PullError { code, message: message.into() })
}

fn internal(e: impl std::fmt::Display) -> PullError {
    PullError { code: "InternalError", message: format!("the host agent failed: {e}") }
}

/// What a successful pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of the image manifest unpacked (the platform's, for an index).
    pub digest: String,
    pub layers: usize,
    /// Compressed bytes downloaded.
    pub bytes: u64,
}

/// One site's pull.
pub struct PullJob<'a> {
    pub state: &'a AppState,
    pub listener: &'a Listener,
    pub site_id: &'a str,
    pub site_key: &'a str,
    pub owner: &'a str,
    /// `DATA/sites/<site>`.
    pub directory: &'a Path,
    pub lease: Duration,
}

/// Who pulls.
enum Puller {
    Identity { principal_id: String, app_id: String, resource_id: Option<String> },
    Anonymous,
}

impl PullJob<'_> {
    pub async fn run(&self) -> Result<Pulled, PullError> {
        let record =
            self.state.db.get_resource(self.site_id).await.map_err(internal)?.ok_or_else(|| {
                PullError { code: "SiteNotFound", message: "the site was deleted".into() }
            })?;
        let site: Value = serde_json::from_str(&record.body).map_err(internal)?;
        let config = &site["properties"]["siteConfig"];
        let (fx, windows) =
            match (config["linuxFxVersion"].as_str(), config["windowsFxVersion"].as_str()) {
                (Some(fx), _) if !fx.is_empty() => (fx, false),
                (_, Some(fx)) if !fx.is_empty() => (fx, true),
                _ => {
                    return fail(
                        "NoImage",
                        "the site has no container image: set linuxFxVersion to DOCKER|<image>",
                    )
                }
            };
        let image =
            image_of_fx_version(fx).map_err(|m| PullError { code: "InvalidImage", message: m })?;
        let platform = if windows {
            PlatformWanted::new("windows", "amd64")
        } else {
            PlatformWanted::new("linux", "amd64")
        };
        let puller = self.puller(&site, &record.name).await?;
        let client = RegistryClient::connect(self.state, self.listener, &image)?;
        let token = client.token(self.state, &image, &puller).await?;
        let pulled = self.fetch(&client, token.as_deref(), &image, &platform, &puller).await?;
        Ok(pulled)
    }

    async fn puller(&self, site: &Value, site_name: &str) -> Result<Puller, PullError> {
        let config = &site["properties"]["siteConfig"];
        if config["acrUseManagedIdentityCreds"].as_bool() != Some(true) {
            return Ok(Puller::Anonymous);
        }
        let db = &self.state.db;
        if let Some(client_id) =
            config["acrUserManagedIdentityID"].as_str().filter(|s| !s.is_empty())
        {
            let assigned = site["identity"]["userAssignedIdentities"].as_object();
            let principal = db.get_principal_by_app_id(client_id).await.map_err(internal)?;
            let attached = principal.filter(|p| {
                p.kind == PrincipalKind::UserAssignedIdentity
                    && p.resource_id.as_ref().is_some_and(|rid| {
                        assigned.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(rid)))
                    })
            });
            let Some(principal) = attached else {
                return fail(
                    "IdentityNotAssigned",
                    format!(
                        "acrUserManagedIdentityID '{client_id}' is not the clientId of a user-assigned identity of site \
                         '{site_name}': assign the identity to the site (berth webapp identity assign --identities \
                         <identity>) and set acrUserManagedIdentityID to its clientId"
                    ),
                );
            };
            return Ok(Puller::Identity {
                principal_id: principal.id,
                app_id: principal.app_id,
                resource_id: principal.resource_id,
            });
        }
        match db.identity_principal(self.site_id, PrincipalKind::SystemAssignedIdentity).await.map_err(internal)? {
            Some(principal) => Ok(Puller::Identity {
                principal_id: principal.id,
                app_id: principal.app_id,
                resource_id: principal.resource_id,
            }),
            None => fail(
                "IdentityNotConfigured",
                format!(
                    "site '{site_name}' pulls with its managed identity (acrUseManagedIdentityCreds) but has no \
                     system-assigned identity: turn it on (berth webapp identity assign) or set \
                     acrUserManagedIdentityID to the clientId of a user-assigned identity of the site"
                ),
            ),
        }
    }

    async fn renew_lease(&self) -> Result<(), PullError> {
        let now = now_millis();
        let held = self
            .state
            .db
            .lease_site(self.site_key, self.owner, now, now + self.lease.as_millis() as i64)
            .await
            .map_err(internal)?;
        if held {
            Ok(())
        } else {
            fail("LeaseLost", "another node took over this site's pull")
        }
    }

    async fn fetch(
        &self,
        client: &RegistryClient,
        token: Option<&str>,
        image: &ImageRef,
        platform: &PlatformWanted,
        puller: &Puller,
    ) -> Result<Pulled, PullError> {
        let repository = image.repository.as_str();
        let (manifest, digest) = client
            .manifest(token, image, &image.reference(), image.digest.as_ref(), puller)
            .await?;
        let (manifest, digest) = if manifest.kind().is_index() {
            let Some(chosen) = select_platform_manifest(manifest.manifests(), platform) else {
                let offered: Vec<String> = manifest
                    .manifests()
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                return fail(
                    "NoMatchingPlatform",
                    format!(
                        "image {image} has no manifest for {}/{} (it offers: {})",
                        platform.os,
                        platform.architecture,
                        if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
                    ),
                );
            };
            let chosen = chosen.digest.clone();
            let (child, child_digest) =
                client.manifest(token, image, chosen.as_str(), Some(&chosen), puller).await?;
            if child.kind().is_index() {
                return fail(
                    "InvalidImage",
                    format!(
                        "image {image}: the platform's entry {chosen} is an index, not an image"
                    ),
                );
            }
            (child, child_digest)
        } else {
            (manifest, digest)
        };
        let config = manifest.config().cloned().ok_or_else(|| PullError {
            code: "InvalidImage",
            message: format!("image {image} has no config"),
        })?;
        let config_bytes = client.small_blob(token, repository, &config).await?;
        let image_config: Value = serde_json::from_slice(&config_bytes).map_err(|e| PullError {
            code: "InvalidImage",
            message: format!("image {image}: the config {} is not JSON: {e}", config.digest),
        })?;

        // Download every layer (verified) first, then unpack into a fresh root filesystem and swap it in.
        let downloads = self.directory.join("download");
        reset_dir(&downloads).await?;
        let mut files = Vec::new();
        let mut bytes = 0;
        for layer in manifest.layers() {
            if layer.has_urls() || media_types::is_foreign_layer(&layer.media_type) {
                return fail("UnsupportedLayer", format!("image {image}: layer {} is a foreign layer (it lives outside the registry)", layer.digest));
            }
            let compression = unpack::Compression::of_media_type(&layer.media_type).ok_or_else(|| PullError {
                code: "UnsupportedLayer",
                message: format!("image {image}: layer {} has media type {}, which berth cannot unpack (tar, tar+gzip)", layer.digest, layer.media_type),
            })?;
            let path = downloads.join(layer.digest.hex());
            client.blob_to_file(token, repository, layer, &path).await?;
            bytes += layer.size;
            files.push((layer.digest.clone(), compression, path));
            self.renew_lease().await?;
        }
        let fresh = self.directory.join("rootfs.new");
        reset_dir(&fresh).await?;
        for (digest, compression, path) in &files {
            let (root, file, compression) = (fresh.clone(), path.clone(), *compression);
            let result = tokio::task::spawn_blocking(move || {
                unpack::unpack_layer(&file, compression, &root)
            })
            .await
            .map_err(internal)?;
            if let Err(e) = result {
                return fail("LayerRejected", format!("image {image}: layer {digest}: {e}"));
            }
            self.renew_lease().await?;
        }
        let bundle_config = bundle::runtime_config(&image_config, self.site_id);
        swap_in(self.directory, &fresh, &bundle_config, &config_bytes, self.site_id).await?;
        let _ = tokio::fs::remove_dir_all(&downloads).await;
        Ok(Pulled { digest: digest.to_string(), layers: files.len(), bytes })
    }
}

async fn reset_dir(dir: &Path) -> Result<(), PullError> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(internal(format!("clearing {}: {e}", dir.display()))),
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| internal(format!("creating {}: {e}", dir.display())))
}

/// Replace `rootfs` by `fresh` and write the bundle's `config.json`, the image config and the site's ID.
async fn swap_in(
    directory: &Path,
    fresh: &Path,
    bundle_config: &Value,
    image_config: &[u8],
    site_id: &str,
) -> Result<(), PullError> {
    let rootfs = directory.join("rootfs");
    let old = directory.join("rootfs.old");
    let _ = tokio::fs::remove_dir_all(&old).await;
    if tokio::fs::symlink_metadata(&rootfs).await.is_ok() {
        tokio::fs::rename(&rootfs, &old).await.map_err(internal)?;
    }
    tokio::fs::rename(fresh, &rootfs).await.map_err(internal)?;
    let _ = tokio::fs::remove_dir_all(&old).await;
    let config = serde_json::to_vec_pretty(bundle_config).map_err(internal)?;
    tokio::fs::write(directory.join("config.json"), config).await.map_err(internal)?;
    tokio::fs::write(directory.join("image-config.json"), image_config).await.map_err(internal)?;
    tokio::fs::write(directory.join("site-id"), site_id).await.map_err(internal)?;
    Ok(())
}

/// An HTTP client for one registry on berth's own listener.
struct RegistryClient {
    http: reqwest::Client,
    /// `https://host[:port]`.
    base: String,
    /// The registry's name, for messages.
    registry: String,
}

/// The `key="value"` parameters of a `Bearer` challenge.
fn challenge_params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.strip_prefix("Bearer ")?;
    let mut out = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        out.push((key.trim().trim_start_matches(',').trim().to_string(), value.to_string()));
        rest = after.trim_start_matches(',').trim();
    }
    Some(out)
}

/// The host name of `host[:port]` (`[v6]:port` too).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn unreachable_registry(registry: &str, e: reqwest::Error) -> PullError {
    PullError {
        code: "RegistryUnreachable",
        message: format!("registry {registry} could not be reached: {e}"),
    }
}

impl RegistryClient {
    /// A client for the image's registry, which must be one this berth serves: the server's own host (path
    /// mode) or `<name>.<registry domain>` (host mode), reached on berth's listener and nowhere else.
    fn connect(
        state: &AppState,
        listener: &Listener,
        image: &ImageRef,
    ) -> Result<RegistryClient, PullError> {
        let scheme = if listener.trust_pem.is_some() { "https" } else { "http" };
        let public_host = state.public_host.to_ascii_lowercase();
        let host_name = |h: &str| strip_port(h).to_string();
        let (base, registry) = if image.host == public_host {
            let registry = image.repository.components().next().unwrap_or_default().to_string();
            (state.public_url.trim_end_matches('/').to_string(), registry)
        } else if let Some(domain) = state
            .registry_domain
            .as_deref()
            .filter(|d| host_name(&image.host).ends_with(&format!(".{}", d.to_ascii_lowercase())))
        {
            let name = host_name(&image.host);
            let registry =
                name.trim_end_matches(&format!(".{}", domain.to_ascii_lowercase())).to_string();
            (format!("{scheme}://{}", image.host), registry)
        } else {
            return fail(
                "RegistryNotServed",
                format!(
                    "the image's registry '{}' is not served by this berth (its registries are at {}{}): berth's host \
                     agent pulls only from its own registries",
                    image.host,
                    state.public_host,
                    state.registry_domain.as_deref().map(|d| format!(" and *.{d}")).unwrap_or_default()
                ),
            );
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        // Every name the pull uses resolves to berth's own listener: the agent never leaves this process's socket.
        let url_host = host_name(base.split_once("://").map(|(_, h)| h).unwrap_or(&base));
        if url_host.parse::<std::net::IpAddr>().is_err() {
            builder = builder.resolve(&url_host, listener.local_addr);
        }
        if let Some(pem) = &listener.trust_pem {
            builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(internal)?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(internal)?;
        Ok(RegistryClient { http, base, registry })
    }

    fn no_pull_permission(&self, puller: &Puller) -> PullError {
        match puller {
            Puller::Identity { principal_id, .. } => PullError {
                code: "Unauthorized",
                message: format!(
                    "unauthorized: identity {principal_id} has no pull permission on registry {}: assign it the \
                     AcrPull role on the registry (berth role assignment create --assignee {principal_id} --role \
                     AcrPull --scope <registry id>)",
                    self.registry
                ),
            },
            Puller::Anonymous => PullError {
                code: "Unauthorized",
                message: format!(
                    "unauthorized: the site pulls without credentials (acrUseManagedIdentityCreds is off) and registry \
                     {} does not allow anonymous pull: turn on acrUseManagedIdentityCreds and give the site's identity \
                     AcrPull on the registry",
                    self.registry
                ),
            },
        }
    }

    /// A registry access token for pulling `image` (None when the registry answers without one: anonymous pull).
    async fn token(
        &self,
        state: &AppState,
        image: &ImageRef,
        puller: &Puller,
    ) -> Result<Option<String>, PullError> {
        let probe = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            image.repository.as_str(),
            image.reference()
        );
        let response = self
            .http
            .head(&probe)
            .header(ACCEPT, MANIFEST_ACCEPT)
            .send()
            .await
            .map_err(|e| unreachable_registry(&self.registry, e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(challenge_params)
            .ok_or_else(|| internal("the registry's 401 carries no Bearer challenge"))?;
        let realm =
            param(&challenge, "realm").ok_or_else(|| internal("the challenge has no realm"))?;
        let service = param(&challenge, "service").unwrap_or_default().to_string();
        let scope = param(&challenge, "scope")
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", image.repository.as_str()));
        // The token service must be berth's own: a token never goes anywhere else.
        let own = [state.public_url.trim_end_matches('/'), self.base.as_str()];
        if !own.iter().any(|base| realm.starts_with(&format!("{base}/"))) {
            return Err(internal(format!("the challenge's realm {realm} is not this server")));
        }
        let Puller::Identity { principal_id, app_id, resource_id } = puller else {
            return Err(self.no_pull_permission(puller));
        };
        let entra = mint_identity_token(state, principal_id, app_id, resource_id.clone())
            .map_err(internal)?;
        let exchange_url = realm
            .strip_suffix("/oauth2/token")
            .map(|b| format!("{b}/oauth2/exchange"))
            .ok_or_else(|| internal(format!("the realm {realm} is not an ACR token service")))?;
        let response = self
            .http
            .post(&exchange_url)
            .form(&[
                ("grant_type", "access_token"),
                ("service", service.as_str()),
                ("tenant", state.tenant_id.as_str()),
                ("access_token", entra.as_str()),
            ])
            .send()
            .await
            .map_err(|e| unreachable_registry(&self.registry, e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return fail(
                "Unauthorized",
                format!(
                    "unauthorized: registry {} refused the token of identity {principal_id}: {}",
                    self.registry,
                    body["errors"][0]["message"].as_str().unwrap_or("no reason given")
                ),
            );
        }
        let refresh = body["refresh_token"]
            .as_str()
            .ok_or_else(|| internal("the exchange answered no refresh_token"))?;
        let response = self
            .http
            .post(realm)
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", service.as_str()),
                ("scope", scope.as_str()),
                ("refresh_token", refresh),
            ])
            .send()
            .await
            .map_err(|e| unreachable_registry(&self.registry, e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(self.no_pull_permission(puller));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| internal("the token service answered no access_token"))?;
        Ok(Some(token.to_string()))
    }

    fn get(&self, url: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Fetch and verify a manifest; `expected` is the digest the reference or the index named.
    async fn manifest(
        &self,
        token: Option<&str>,
        image: &ImageRef,
        reference: &str,
        expected: Option<&Digest>,
        puller: &Puller,
    ) -> Result<(ParsedManifest, Digest), PullError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, image.repository.as_str());
        let response = self
            .get(&url, token)
            .header(ACCEPT, MANIFEST_ACCEPT)
            .send()
            .await
            .map_err(|e| unreachable_registry(&self.registry, e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(self.no_pull_permission(puller))
            }
            StatusCode::NOT_FOUND => {
                return fail(
                    "ImageNotFound",
                    format!(
                    "manifest unknown: image {image} (reference {reference}) is not in registry {}",
                    self.registry
                ),
                )
            }
            other => {
                return fail(
                    "RegistryError",
                    format!("registry {} answered {other} for {url}", self.registry),
                )
            }
        }
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let bytes = read_limited(response, DOCUMENT_LIMIT, &self.registry).await?;
        let digest = match expected.or(header_digest.as_ref()) {
            Some(expected) if !expected.verifies(&bytes) => {
                return fail(
                    "DigestMismatch",
                    format!("image {image}: the manifest served for {reference} does not match its digest {expected}"),
                )
            }
            Some(expected) => expected.clone(),
            None => Digest::sha256_of(&bytes),
        };
        let manifest =
            ParsedManifest::parse(content_type.as_deref(), &bytes).map_err(|e| PullError {
                code: "InvalidImage",
                message: format!("image {image}: the manifest {digest} is invalid: {e}"),
            })?;
        Ok((manifest, digest))
    }

    /// A small blob (an image config), read into memory and verified.
    async fn small_blob(
        &self,
        token: Option<&str>,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, PullError> {
        if descriptor.size > DOCUMENT_LIMIT {
            return fail(
                "InvalidImage",
                format!("the image config {} is larger than 4 MiB", descriptor.digest),
            );
        }
        let response = self.blob_response(token, repository, descriptor).await?;
        let bytes = read_limited(response, descriptor.size, &self.registry).await?;
        if bytes.len() as u64 != descriptor.size || !descriptor.digest.verifies(&bytes) {
            return fail(
                "DigestMismatch",
                format!("blob {} does not match its digest or size", descriptor.digest),
            );
        }
        Ok(bytes)
    }

    async fn blob_response(
        &self,
        token: Option<&str>,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<reqwest::Response, PullError> {
        let url = format!("{}/v2/{repository}/blobs/{}", self.base, descriptor.digest);
        let response = self
            .get(&url, token)
            .send()
            .await
            .map_err(|e| unreachable_registry(&self.registry, e))?;
        match response.status() {
            StatusCode::OK => Ok(response),
            StatusCode::NOT_FOUND => fail(
                "BlobUnknown",
                format!("blob {} is missing from registry {}", descriptor.digest, self.registry),
            ),
            other => fail(
                "RegistryError",
                format!(
                    "registry {} answered {other} for blob {}",
                    self.registry, descriptor.digest
                ),
            ),
        }
    }

    /// Stream a layer into `path` through an incremental digest; the file is usable only if this returns Ok.
    async fn blob_to_file(
        &self,
        token: Option<&str>,
        repository: &str,
        descriptor: &Descriptor,
        path: &PathBuf,
    ) -> Result<(), PullError> {
        let mut response = self.blob_response(token, repository, descriptor).await?;
        let file = tokio::fs::File::create(path).await.map_err(internal)?;
        let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let mut hasher = DigestHasher::new(descriptor.digest.algorithm());
        while let Some(chunk) =
            response.chunk().await.map_err(|e| unreachable_registry(&self.registry, e))?
        {
            hasher.update(&chunk);
            if hasher.bytes_hashed() > descriptor.size {
                return fail(
                    "DigestMismatch",
                    format!(
                        "blob {} is larger than its descriptor's {} bytes",
                        descriptor.digest, descriptor.size
                    ),
                );
            }
            writer.write_all(&chunk).await.map_err(internal)?;
        }
        writer.flush().await.map_err(internal)?;
        let size = hasher.bytes_hashed();
        let actual = hasher.finalize();
        if size != descriptor.size || actual != descriptor.digest {
            return fail(
                "DigestMismatch",
                format!(
                    "blob {} arrived as {actual} ({size} bytes, {} expected): refused",
                    descriptor.digest, descriptor.size
                ),
            );
        }
        Ok(())
    }
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    registry: &str,
) -> Result<Vec<u8>, PullError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable_registry(registry, e))? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return fail(
                "InvalidImage",
                format!("a document from registry {registry} is larger than {limit} bytes"),
            );
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The Entra access token the identity provider would issue to this managed identity for the registry audience.
fn mint_identity_token(
    state: &AppState,
    principal_id: &str,
    app_id: &str,
    resource_id: Option<String>,
) -> Result<String, berth_identity::IdentityError> {
    let now = now_unix();
    let claims = EntraClaims {
        aud: REGISTRY_AUDIENCE.to_string(),
        iss: state.issuer(),
        iat: now,
        nbf: now,
        exp: now + state.token_lifetime_secs,
        oid: principal_id.to_string(),
        tid: state.tenant_id.clone(),
        sub: principal_id.to_string(),
        appid: Some(app_id.to_string()),
        azp: Some(app_id.to_string()),
        idtyp: "app".into(),
        ver: "2.0".into(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
        xms_mirid: resource_id,
        roles: Vec::new(),
    };
    state.keys().sign(&claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let params = challenge_params(
            "Bearer realm=\"https://127.0.0.1:1/oauth2/token\",service=\"127.0.0.1:1/acr\",scope=\"repository:acr/app:pull\"",
        )
        .unwrap();
        assert_eq!(param(&params, "realm"), Some("https://127.0.0.1:1/oauth2/token"));
        assert_eq!(param(&params, "service"), Some("127.0.0.1:1/acr"));
        assert_eq!(param(&params, "scope"), Some("repository:acr/app:pull"));
        assert!(challenge_params("Basic realm=\"x\"").is_none());
    }
}
