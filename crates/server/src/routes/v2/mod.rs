//! The registry data plane: every endpoint of the OCI Distribution Spec v1.1 under `/v2/`, routed by hand from the
//! end of the path, and authorized by ACR-style bearer tokens.
//!
//! Addressing. In path mode (no registry domain) a full name is `<registry>/<repository...>`: the first segment
//! picks the registry. In host mode the `Host` header `<registry>.<domain>` picks it and the whole path name is the
//! repository. Names may contain `manifests`, `blobs` or `tags` segments, so the endpoint is read from the end of
//! the path (`.../manifests/<reference>`, `.../blobs/uploads/<id>`, ...).
//!
//! Authorization. Every request carries `Authorization: Bearer <registry access token>` whose `access` grants the
//! needed action on the full name as the client sees it. Anything less answers 401 `UNAUTHORIZED` with a fresh
//! challenge naming the scope, as ACR does (never 403): Docker-style clients fetch a new token on that 401.
//! Registries with anonymous pull serve pulls without a token. Basic credentials (a client id and secret, or the
//! null GUID and a registry token) are accepted too, granted through the same token service.
//!
//! Bodies are streamed: blob uploads go straight from the socket to the blob store (no size limit is applied
//! here), manifests are read up to [`berth_oci::MANIFEST_SIZE_LIMIT`].

mod blobs;
mod cache;
mod listing;
mod manifests;
mod uploads;

pub use cache::V2Caches;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use berth_identity::{RegistryAccess, RegistryGrantType};
use berth_oci::{Digest, ErrorCode, RepositoryName, Scope};
use berth_storage::StorageError;
use serde_json::json;

use self::cache::VerifiedToken;
use super::registry_tokens::principal_from_password;
use crate::error::{ApiError, ApiResult};
use crate::registry_auth::{self, DataAction, Registry, NULL_GUID};
use crate::state::AppState;
use crate::time::now_unix;

pub(super) const DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
pub(super) const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
/// ACR's text for a missing or insufficient token.
const AUTHENTICATION_REQUIRED: &str =
    "authentication required, visit https://aka.ms/acr/authorization for more information.";

/// What a `/v2/...` path addresses. Names are as the client wrote them (validated later).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Base,
    /// `/v2/_catalog` (host mode: registry `None`) or `/v2/<registry>/_catalog` (path mode).
    Catalog {
        registry: Option<String>,
    },
    Tags {
        name: String,
    },
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    UploadStart {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

impl Endpoint {
    /// Parse the (percent-decoded) path after `/v2`, from its end.
    fn parse(path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/v2")?;
        let rest = match rest {
            "" | "/" => return Some(Endpoint::Base),
            other => other.strip_prefix('/')?,
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let name = |end: usize| segments[..end].join("/");
        if n == 1 && segments[0] == "_catalog" {
            return Some(Endpoint::Catalog { registry: None });
        }
        if n == 2 && segments[1] == "_catalog" {
            return Some(Endpoint::Catalog { registry: Some(segments[0].to_string()) });
        }
        if n < 3 {
            return None;
        }
        let (second_last, last) = (segments[n - 2], segments[n - 1]);
        if second_last == "tags" && last == "list" {
            return Some(Endpoint::Tags { name: name(n - 2) });
        }
        if second_last == "blobs" && last == "uploads" {
            return Some(Endpoint::UploadStart { name: name(n - 2) });
        }
        if n >= 4 && segments[n - 3] == "blobs" && second_last == "uploads" {
            return Some(if last.is_empty() {
                Endpoint::UploadStart { name: name(n - 3) }
            } else {
                Endpoint::Upload { name: name(n - 3), id: last.to_string() }
            });
        }
        match second_last {
            "manifests" => {
                Some(Endpoint::Manifest { name: name(n - 2), reference: last.to_string() })
            }
            "blobs" => Some(Endpoint::Blob { name: name(n - 2), digest: last.to_string() }),
            "referrers" => {
                Some(Endpoint::Referrers { name: name(n - 2), digest: last.to_string() })
            }
            _ => None,
        }
    }
}

/// Query parameters in order (repeated keys kept).
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> ApiResult<Query> {
        serde_urlencoded::from_str(query.unwrap_or_default()).map(Query).map_err(|e| {
            ApiError::oci_malformed(
                ErrorCode::Unsupported,
                format!("the query string could not be parsed: {e}"),
            )
        })
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What the caller's token (or Basic credentials) grants; empty for anonymous pulls.
#[derive(Debug, Clone, Default)]
pub(super) struct Granted {
    access: Arc<Vec<RegistryAccess>>,
}

impl Granted {
    /// Whether the grant includes `action` on the resource (`*` counts as every action).
    pub(super) fn allows(&self, resource_type: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|entry| {
            entry.r#type == resource_type
                && entry.name == name
                && entry.actions.iter().any(|a| a == action || a == "*")
        })
    }
}

/// The repository a request addresses, after authorization.
pub(super) struct Target {
    pub registry: Registry,
    /// The name within the registry (the metadata store's key).
    pub repository: String,
    /// The name as the client sees it: `<registry>/<repository>` in path mode, else `<repository>`.
    pub full_name: String,
    pub granted: Granted,
}

impl Target {
    /// A URL path under this repository, e.g. `blobs/<digest>` → `/v2/<full name>/blobs/<digest>`.
    pub(super) fn url(&self, tail: &str) -> String {
        format!("/v2/{}/{tail}", self.full_name)
    }
}

/// One permission a request needs.
struct Need<'a> {
    resource_type: &'static str,
    name: &'a str,
    action: DataAction,
    /// ACR's metadata API: a token granted `metadata_read` / `metadata_write` on the repository also suffices.
    metadata: bool,
}

impl Need<'_> {
    /// The token action that also grants a metadata API call (`metadata_read` for reads, `metadata_write`).
    fn metadata_word(&self) -> Option<&'static str> {
        match (self.metadata, self.action) {
            (true, DataAction::Pull) => Some("metadata_read"),
            (true, DataAction::Push) => Some("metadata_write"),
            _ => None,
        }
    }

    fn word(&self) -> &'static str {
        match self.action {
            DataAction::Pull => "pull",
            DataAction::Push => "push",
            DataAction::Delete => "delete",
            DataAction::Catalog => "*",
        }
    }

    /// The scope the challenge asks for. Pushing clients also read (blob existence checks), so push asks both.
    fn challenge_scope(&self) -> String {
        let actions = match self.action {
            DataAction::Push => "pull,push",
            _ => self.word(),
        };
        format!("{}:{}:{actions}", self.resource_type, self.name)
    }
}

/// A small builder for responses with headers.
pub(super) struct Reply(Response);

impl Reply {
    pub(super) fn new(status: StatusCode) -> Reply {
        Reply::with_body(status, Body::empty())
    }

    pub(super) fn with_body(status: StatusCode, body: Body) -> Reply {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        Reply(response)
    }

    /// Values that are not valid header text are left out (they come from validated names and digests).
    pub(super) fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Reply {
        if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
            self.0.headers_mut().insert(name, value);
        }
        self
    }

    pub(super) fn build(self) -> Response {
        self.0
    }
}

/// `Range: 0-<last byte>` as distribution writes it (`0-0` for an empty upload).
pub(super) fn upload_range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

pub(super) fn parse_digest(text: &str) -> ApiResult<Digest> {
    Digest::parse(text).map_err(|e| ApiError::oci(ErrorCode::DigestInvalid, e.to_string()))
}

/// A blob-store failure as the client sees it; failures on our side are logged and answered 500.
pub(super) fn storage_error(error: StorageError) -> ApiError {
    match error.code() {
        ErrorCode::Unknown => ApiError::internal(format!("blob store: {error}")),
        code => ApiError::oci(code, error.to_string()),
    }
}

fn unsupported_method(method: &Method) -> ApiError {
    ApiError::oci(ErrorCode::Unsupported, format!("the method {method} is not supported here"))
}

/// `ANY /v2`, `/v2/` and `/v2/{*rest}`.
pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let mut response = match route(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

/// `GET|HEAD /<registry>/v2/`: the base check under a path-mode login server (`az acr login` probes it).
pub async fn registry_base(
    State(state): State<Arc<AppState>>,
    Path(registry): Path<String>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let result = match parts.method {
        Method::GET | Method::HEAD => base(&state, &parts.headers, Some(registry)).await,
        ref other => Err(unsupported_method(other)),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn route(state: &AppState, request: Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| ApiError::oci(ErrorCode::NameInvalid, "the path is not valid UTF-8"))?;
    let endpoint = Endpoint::parse(&path).ok_or_else(|| {
        ApiError::oci(ErrorCode::NameUnknown, "no registry endpoint matches the path")
    })?;
    let query = Query::parse(parts.uri.query())?;
    let method = parts.method.clone();
    let (get_or_head, head) =
        (matches!(method, Method::GET | Method::HEAD), method == Method::HEAD);
    match endpoint {
        Endpoint::Base if get_or_head => {
            base(state, &parts.headers, host_registry(state, &parts)).await
        }
        Endpoint::Catalog { registry } if method == Method::GET => {
            let name =
                match (&state.registry_domain, registry) {
                    (Some(_), None) => host_registry(state, &parts).ok_or_else(no_registry_host)?,
                    (None, Some(name)) => name,
                    _ => return Err(ApiError::oci(
                        ErrorCode::NameUnknown,
                        "the catalog of a registry is at /v2/<registry>/_catalog on this server",
                    )),
                };
            let registry = find_registry(state, &name).await?;
            let need = Need {
                resource_type: "registry",
                name: "catalog",
                action: DataAction::Catalog,
                metadata: false,
            };
            authorize(state, &parts.headers, &name, registry.as_ref(), &need).await?;
            let registry = registry.ok_or_else(|| unknown_registry(&name))?;
            listing::catalog(state, &registry, &query).await
        }
        Endpoint::Tags { name } if get_or_head => {
            let target = target(state, &parts, &name, DataAction::Pull).await?;
            listing::tags(state, &target, &query).await
        }
        Endpoint::Referrers { name, digest } if get_or_head => {
            let target = target(state, &parts, &name, DataAction::Pull).await?;
            listing::referrers(state, &target, &digest, &query).await
        }
        Endpoint::Manifest { name, reference } => {
            let action = match method {
                Method::GET | Method::HEAD => DataAction::Pull,
                Method::PUT => DataAction::Push,
                Method::DELETE => DataAction::Delete,
                ref other => return Err(unsupported_method(other)),
            };
            let target = match target(state, &parts, &name, action).await {
                Ok(target) => target,
                Err(error) => return Err(drained(error, body).await),
            };
            match method {
                Method::PUT => {
                    manifests::put(state, &target, &reference, &parts.headers, body).await
                }
                Method::DELETE => manifests::delete(state, &target, &reference).await,
                _ => manifests::get(state, &target, &reference, head).await,
            }
        }
        Endpoint::Blob { name, digest } => {
            let action = match method {
                Method::GET | Method::HEAD => DataAction::Pull,
                Method::DELETE => DataAction::Delete,
                ref other => return Err(unsupported_method(other)),
            };
            let target = target(state, &parts, &name, action).await?;
            match method {
                Method::DELETE => blobs::delete(state, &target, &digest).await,
                _ => blobs::get(state, &target, &digest, &parts.headers, head).await,
            }
        }
        Endpoint::UploadStart { name } if method == Method::POST => {
            let target = match target(state, &parts, &name, DataAction::Push).await {
                Ok(target) => target,
                Err(error) => return Err(drained(error, body).await),
            };
            uploads::start(state, &target, &query, body).await
        }
        Endpoint::Upload { name, id } => {
            if !matches!(method, Method::GET | Method::PATCH | Method::PUT | Method::DELETE) {
                return Err(unsupported_method(&method));
            }
            let found = match target(state, &parts, &name, DataAction::Push).await {
                Ok(target) => uploads::find(state, &target, &id).await.map(|u| (target, u)),
                Err(error) => Err(error),
            };
            let (target, upload) = match found {
                Ok(found) => found,
                Err(error) => return Err(drained(error, body).await),
            };
            match method {
                Method::GET => uploads::status(state, &target, &upload).await,
                Method::PATCH => {
                    uploads::patch(state, &target, &upload, &parts.headers, body).await
                }
                Method::PUT => {
                    uploads::finish(state, &target, &upload, &query, &parts.headers, body).await
                }
                _ => uploads::cancel(state, &upload).await,
            }
        }
        _ => Err(unsupported_method(&method)),
    }
}

/// An error before a request's body was read: read and drop up to 64 MiB of the body first (for at most 10 s), so a
/// client still sending it reads the answer instead of a reset connection (RFC 9112 section 9.6).
async fn drained(error: ApiError, body: Body) -> ApiError {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut left: usize = 64 << 20;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = stream.next().await {
            if chunk.len() >= left {
                break;
            }
            left -= chunk.len();
        }
    })
    .await;
    error
}

fn no_registry_host() -> ApiError {
    ApiError::oci(ErrorCode::NameUnknown, "the request's host names no registry on this server")
}

fn unknown_registry(name: &str) -> ApiError {
    ApiError::oci(ErrorCode::NameUnknown, format!("registry '{name}' does not exist"))
}

/// In host mode, the registry the request's host names.
fn host_registry(state: &AppState, parts: &Parts) -> Option<String> {
    state.registry_domain.as_ref()?;
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    registry_auth::registry_name_from_service(state, host).filter(|name| !name.is_empty())
}

/// Resolve and authorize the repository `full_name` for `action`.
async fn target(
    state: &AppState,
    parts: &Parts,
    full_name: &str,
    action: DataAction,
) -> ApiResult<Target> {
    RepositoryName::parse(full_name)
        .map_err(|e| ApiError::oci(ErrorCode::NameInvalid, e.to_string()))?;
    let (registry_name, repository) = match &state.registry_domain {
        Some(_) => {
            (host_registry(state, parts).ok_or_else(no_registry_host)?, full_name.to_string())
        }
        None => {
            let (registry, repository) = registry_auth::split_path_mode_name(full_name)
                .ok_or_else(|| {
                    ApiError::oci(
                        ErrorCode::NameInvalid,
                        format!(
                            "'{full_name}' names no repository: on this server a repository's name starts with \
                             its registry's name (<registry>/<repository>)"
                        ),
                    )
                })?;
            (registry.to_string(), repository.to_string())
        }
    };
    let registry = find_registry(state, &registry_name).await?;
    let need = Need { resource_type: "repository", name: full_name, action, metadata: false };
    let granted =
        authorize(state, &parts.headers, &registry_name, registry.as_ref(), &need).await?;
    let registry = registry.ok_or_else(|| unknown_registry(&registry_name))?;
    Ok(Target { registry, repository, full_name: full_name.to_string(), granted })
}

/// A registry by name, through the short-lived cache (unknown registries are not cached: one created on another
/// node must be usable at once).
async fn find_registry(state: &AppState, name: &str) -> ApiResult<Option<Registry>> {
    let key = name.to_ascii_lowercase();
    if let Some(registry) = state.v2_caches.registry(&key) {
        return Ok(Some(registry));
    }
    let found = registry_auth::find_registry(state, &key).await?;
    if let Some(registry) = &found {
        state.v2_caches.remember_registry(registry.clone());
    }
    Ok(found)
}

/// The audiences a token for `registry_name` may carry, whether or not the registry exists.
fn audiences(state: &AppState, registry_name: &str, registry: Option<&Registry>) -> Vec<String> {
    match registry {
        Some(registry) => registry_auth::registry_audiences(state, Some(registry)),
        None => {
            let mut audiences = vec![state.login_server(registry_name)];
            audiences.extend(registry_auth::registry_audiences(state, None));
            audiences
        }
    }
}

enum Credentials<'a> {
    None,
    Bearer(&'a str),
    Basic(String, String),
    Malformed,
}

fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Credentials::None };
    let Ok(text) = value.to_str() else { return Credentials::Malformed };
    let Some((scheme, rest)) = text.split_once(' ') else { return Credentials::Malformed };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Credentials::Bearer(rest);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::Basic(user.to_string(), password.to_string());
        }
    }
    Credentials::Malformed
}

/// Verify a registry access token for one of `audiences`, remembering it until it expires.
async fn verify_access_token(
    state: &AppState,
    token: &str,
    audiences: &[String],
) -> Result<Arc<Vec<RegistryAccess>>, String> {
    let now = now_unix();
    if let Some(known) = state.v2_caches.token(token, now) {
        if audiences.contains(&known.audience) {
            return Ok(known.access);
        }
    }
    let claims = registry_auth::verify_registry_token(
        state,
        token,
        RegistryGrantType::AccessToken,
        audiences.to_vec(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let access = Arc::new(claims.access);
    state.v2_caches.remember_token(
        token,
        VerifiedToken { audience: claims.aud, expires_at: claims.exp, access: access.clone() },
    );
    Ok(access)
}

/// What the request's credentials grant for `scopes`: a verified access token's `access`, or for Basic
/// credentials a fresh grant. `Err` carries the reason, for the challenge's message.
async fn grant_for_credentials(
    state: &AppState,
    headers: &HeaderMap,
    registry: Option<&Registry>,
    audiences: &[String],
    scopes: &[Scope],
) -> ApiResult<Result<Arc<Vec<RegistryAccess>>, String>> {
    match credentials(headers) {
        Credentials::None => Ok(Err(AUTHENTICATION_REQUIRED.to_string())),
        Credentials::Malformed => Ok(Err("the Authorization header is malformed".to_string())),
        Credentials::Bearer(token) => Ok(verify_access_token(state, token, audiences)
            .await
            .map_err(|e| format!("the access token was refused: {e}"))),
        Credentials::Basic(user, password) => {
            // `docker login -u 00000000-... -p <access token>` presents an access token this way.
            if user == NULL_GUID {
                if let Ok(access) = verify_access_token(state, &password, audiences).await {
                    return Ok(Ok(access));
                }
            }
            match principal_from_password(state, registry, &user, &password).await {
                Ok(principal) => {
                    let access =
                        registry_auth::grant(state, Some(&principal), registry, scopes).await?;
                    Ok(Ok(Arc::new(access)))
                }
                Err(ApiError::Internal(detail)) => Err(ApiError::Internal(detail)),
                Err(_) => Ok(Err("invalid username or password".to_string())),
            }
        }
    }
}

/// Authorize `need` in the registry named `registry_name` (which may not exist: an unknown registry is reported
/// only to callers with valid credentials, so nobody learns what exists without them).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    registry_name: &str,
    registry: Option<&Registry>,
    need: &Need<'_>,
) -> ApiResult<Granted> {
    if need.action == DataAction::Pull && registry.is_some_and(|r| r.anonymous_pull) {
        return Ok(Granted::default());
    }
    let service = registry
        .map(|r| r.login_server.clone())
        .unwrap_or_else(|| state.login_server(registry_name));
    let challenge = |message: String| {
        ApiError::oci_unauthorized(
            message,
            registry_auth::challenge(state, registry, &service, Some(&need.challenge_scope())),
            Some(json!([{"Type": need.resource_type, "Name": need.name, "Action": need.word()}])),
        )
    };
    let audiences = audiences(state, registry_name, registry);
    let scope = Scope::new(need.resource_type, need.name, &[need.word()]);
    let access = grant_for_credentials(state, headers, registry, &audiences, &[scope])
        .await?
        .map_err(challenge)?;
    if registry.is_none() {
        return Err(unknown_registry(registry_name));
    }
    let granted = Granted { access };
    let allowed = granted.allows(need.resource_type, need.name, need.word())
        || need
            .metadata_word()
            .is_some_and(|word| granted.allows(need.resource_type, need.name, word));
    if !allowed {
        return Err(challenge(AUTHENTICATION_REQUIRED.to_string()));
    }
    Ok(granted)
}

/// Authorization for ACR's metadata API (`routes/acr.rs`): the same credentials, token checks and 401 challenges
/// as `/v2`, for `action` on the repository `full_name` (as in token scopes), or on the registry's catalog when
/// `full_name` is `None`. Returns the registry once the caller is authorized and it exists.
pub(crate) async fn authorize_metadata(
    state: &AppState,
    headers: &HeaderMap,
    registry_name: &str,
    full_name: Option<&str>,
    action: DataAction,
) -> ApiResult<Registry> {
    let registry = find_registry(state, registry_name).await?;
    let need = match full_name {
        Some(name) => Need { resource_type: "repository", name, action, metadata: true },
        None => Need {
            resource_type: "registry",
            name: "catalog",
            action: DataAction::Catalog,
            metadata: false,
        },
    };
    authorize(state, headers, registry_name, registry.as_ref(), &need).await?;
    registry.ok_or_else(|| unknown_registry(registry_name))
}

/// `GET /v2/` (and `/<registry>/v2/`): 200 `{}` for valid credentials, else a challenge without a scope.
async fn base(
    state: &AppState,
    headers: &HeaderMap,
    registry_name: Option<String>,
) -> ApiResult<Response> {
    let registry = match &registry_name {
        Some(name) => find_registry(state, name).await?,
        None => None,
    };
    let (service, audiences) = match &registry_name {
        Some(name) => (
            registry
                .as_ref()
                .map(|r| r.login_server.clone())
                .unwrap_or_else(|| state.login_server(name)),
            audiences(state, name, registry.as_ref()),
        ),
        None => (state.public_host.clone(), registry_auth::registry_audiences(state, None)),
    };
    // In path mode `/v2/` is shared by every registry: a token for one of them (say, the refresh token of
    // `az acr login --expose-token` given to `docker login`) is checked against the registry it names.
    let token_registry = match (&registry_name, &state.registry_domain) {
        (None, None) => registry_named_by_token(state, headers).await?,
        _ => None,
    };
    let (for_registry, audiences) = match &token_registry {
        Some(named) => (Some(named), registry_auth::registry_audiences(state, Some(named))),
        None => (registry.as_ref(), audiences),
    };
    let verdict = grant_for_credentials(state, headers, for_registry, &audiences, &[]).await?;
    if let Err(message) = verdict {
        let challenge = registry_auth::challenge(state, registry.as_ref(), &service, None);
        return Err(ApiError::oci_unauthorized(message, challenge, None));
    }
    if let (Some(name), None) = (&registry_name, &registry) {
        return Err(unknown_registry(name));
    }
    Ok((StatusCode::OK, axum::Json(json!({}))).into_response())
}

/// The registry whose login server is the (not yet verified) audience of the request's token, if any.
async fn registry_named_by_token(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<Option<Registry>> {
    let token = match credentials(headers) {
        Credentials::Bearer(token) => token.to_string(),
        Credentials::Basic(user, password) if user == NULL_GUID => password,
        _ => return Ok(None),
    };
    let audience = token
        .split('.')
        .nth(1)
        .and_then(|payload| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|claims| claims["aud"].as_str().map(str::to_string));
    match audience.and_then(|aud| registry_auth::registry_name_from_service(state, &aud)) {
        Some(name) => find_registry(state, &name).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Option<Endpoint> {
        Endpoint::parse(path)
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn endpoints_are_read_from_the_end() {
        assert_eq!(parse("/v2"), Some(Endpoint::Base));
        assert_eq!(parse("/v2/"), Some(Endpoint::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Endpoint::Catalog { registry: None }));
        assert_eq!(parse("/v2/acr/_catalog"), Some(Endpoint::Catalog { registry: Some(s("acr")) }));
        assert_eq!(parse("/v2/acr/a/b/tags/list"), Some(Endpoint::Tags { name: s("acr/a/b") }));
        assert_eq!(
            parse("/v2/acr/manifests/manifests/latest"),
            Some(Endpoint::Manifest { name: s("acr/manifests"), reference: s("latest") })
        );
        assert_eq!(
            parse("/v2/acr/blobs/blobs/sha256:abc"),
            Some(Endpoint::Blob { name: s("acr/blobs"), digest: s("sha256:abc") })
        );
        assert_eq!(
            parse("/v2/acr/x/blobs/uploads/"),
            Some(Endpoint::UploadStart { name: s("acr/x") })
        );
        assert_eq!(
            parse("/v2/acr/x/blobs/uploads"),
            Some(Endpoint::UploadStart { name: s("acr/x") })
        );
        assert_eq!(
            parse("/v2/acr/x/blobs/uploads/abc-1"),
            Some(Endpoint::Upload { name: s("acr/x"), id: s("abc-1") })
        );
        assert_eq!(
            parse("/v2/acr/blobs/blobs/uploads/id"),
            Some(Endpoint::Upload { name: s("acr/blobs"), id: s("id") })
        );
        assert_eq!(
            parse("/v2/acr/x/referrers/sha256:1"),
            Some(Endpoint::Referrers { name: s("acr/x"), digest: s("sha256:1") })
        );
        for unknown in ["/v2/acr", "/v2/acr/x/nothing/here", "/v3/", "/v2x", "/v2/acr/x/tags/lists"]
        {
            assert_eq!(parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn grants_match_type_name_and_action() {
        let granted = Granted {
            access: Arc::new(vec![
                RegistryAccess {
                    r#type: s("repository"),
                    name: s("acr/a"),
                    actions: vec![s("pull")],
                },
                RegistryAccess { r#type: s("repository"), name: s("acr/b"), actions: vec![s("*")] },
                RegistryAccess { r#type: s("registry"), name: s("catalog"), actions: vec![s("*")] },
            ]),
        };
        assert!(granted.allows("repository", "acr/a", "pull"));
        assert!(!granted.allows("repository", "acr/a", "push"));
        assert!(!granted.allows("repository", "acr/A", "pull"));
        assert!(granted.allows("repository", "acr/b", "delete"));
        assert!(granted.allows("registry", "catalog", "*"));
        assert!(!granted.allows("repository", "catalog", "*"));
        assert!(!Granted::default().allows("repository", "acr/a", "pull"));
    }

    #[test]
    fn challenge_scopes() {
        let need = Need {
            resource_type: "repository",
            name: "acr/app",
            action: DataAction::Push,
            metadata: false,
        };
        assert_eq!(need.challenge_scope(), "repository:acr/app:pull,push");
        let need = Need {
            resource_type: "registry",
            name: "catalog",
            action: DataAction::Catalog,
            metadata: false,
        };
        assert_eq!(need.challenge_scope(), "registry:catalog:*");
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(10), "0-9");
    }
}
