//! ACR's metadata API (`/acr/v1/...`), as `az acr repository|manifest` and the azure-containerregistry SDKs call
//! it: the catalog, repository properties and deletion, tag and manifest details, paginated by `n`/`last` with
//! a `Link` header and ordered by `orderby` (`timedesc`, `timeasc`).
//!
//! Addressing follows `/v2`: in path mode the API of registry `r` is at `/r/acr/v1/...` on the server's own
//! address (clients append `/acr/v1/...` to the login server `<host>/r`); in host mode it is at `/acr/v1/...` on
//! `r.<domain>`. Repository names in paths and bodies are relative to the registry, as in ACR; token scopes use
//! the names `/v2` uses (`r/<repository>` in path mode).
//!
//! Authorization is `/v2`'s (`v2::authorize_metadata`): reads need `pull` (what `metadata_read` grants), deletions
//! `delete`, the catalog `registry:catalog:*`; a missing right is 401 with a challenge naming the scope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_db::{ListOrder, ManifestRecord, TagRecord};
use berth_oci::{media_types, Digest, ErrorCode, ParsedManifest, RepositoryName};
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::v2::authorize_metadata;
use crate::error::{ApiError, ApiResult};
use crate::registry_auth::{self, DataAction, Registry};
use crate::state::AppState;

/// Image configurations larger than this are not read for their platform.
const CONFIG_READ_LIMIT: u64 = 4 * 1024 * 1024;
/// What is left unescaped in `last` values of `Link` headers.
const LINK_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a path under `/acr/v1/` addresses; names are relative to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Catalog,
    Repository { name: String },
    Tags { name: String },
    Tag { name: String, tag: String },
    Manifests { name: String },
    Manifest { name: String, digest: String },
}

impl Endpoint {
    /// Parse the (percent-decoded) path after `/acr/v1/`, from its end: repository names may hold `/`, but no
    /// name component starts with `_`.
    fn parse(rest: &str) -> Option<Endpoint> {
        if rest == "_catalog" {
            return Some(Endpoint::Catalog);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let name = |end: usize| segments[..end].join("/");
        let endpoint = match segments.as_slice() {
            [.., "_tags"] if n >= 2 => Endpoint::Tags { name: name(n - 1) },
            [.., "_manifests"] if n >= 2 => Endpoint::Manifests { name: name(n - 1) },
            [.., "_tags", tag] if n >= 3 => {
                Endpoint::Tag { name: name(n - 2), tag: tag.to_string() }
            }
            [.., "_manifests", digest] if n >= 3 => {
                Endpoint::Manifest { name: name(n - 2), digest: digest.to_string() }
            }
            _ => Endpoint::Repository { name: rest.to_string() },
        };
        let name = match &endpoint {
            Endpoint::Catalog => return Some(endpoint),
            Endpoint::Repository { name }
            | Endpoint::Tags { name }
            | Endpoint::Tag { name, .. }
            | Endpoint::Manifests { name }
            | Endpoint::Manifest { name, .. } => name,
        };
        (!name.is_empty()).then_some(endpoint)
    }

    fn repository(&self) -> Option<&str> {
        match self {
            Endpoint::Catalog => None,
            Endpoint::Repository { name }
            | Endpoint::Tags { name }
            | Endpoint::Tag { name, .. }
            | Endpoint::Manifests { name }
            | Endpoint::Manifest { name, .. } => Some(name),
        }
    }
}

/// `ANY /acr/v1/{*rest}` (host mode) and `ANY /{registry}/acr/v1/{*rest}` (path mode).
pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    route(&state, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn route(state: &AppState, request: Request) -> ApiResult<Response> {
    let (parts, _body) = request.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| ApiError::oci(ErrorCode::NameInvalid, "the path is not valid UTF-8"))?;
    let (registry_name, rest) = address(state, &parts, &path)?;
    let endpoint = Endpoint::parse(&rest).ok_or_else(|| {
        ApiError::oci(ErrorCode::NameUnknown, "no metadata endpoint matches the path")
    })?;
    let method = parts.method.clone();
    let action = match (&endpoint, &method) {
        (_, &Method::GET | &Method::HEAD) => DataAction::Pull,
        (Endpoint::Repository { .. } | Endpoint::Tag { .. }, &Method::DELETE) => DataAction::Delete,
        _ => {
            return Err(ApiError::Oci {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: ErrorCode::Unsupported,
                message: format!("the method {method} is not supported here"),
                detail: None,
                challenge: None,
            })
        }
    };
    // The name as `/v2` and token scopes spell it.
    let full_name = match endpoint.repository() {
        Some(repository) => {
            let full = match &state.registry_domain {
                Some(_) => repository.to_string(),
                None => format!("{registry_name}/{repository}"),
            };
            RepositoryName::parse(&full)
                .map_err(|e| ApiError::oci(ErrorCode::NameInvalid, e.to_string()))?;
            Some(full)
        }
        None => None,
    };
    let registry =
        authorize_metadata(state, &parts.headers, &registry_name, full_name.as_deref(), action)
            .await?;
    let query = Query::parse(parts.uri.query())?;
    match (endpoint, method == Method::DELETE) {
        (Endpoint::Catalog, _) => catalog(state, &registry, &query).await,
        (Endpoint::Repository { name }, false) => repository(state, &registry, &name).await,
        (Endpoint::Repository { name }, true) => delete_repository(state, &registry, &name).await,
        (Endpoint::Tags { name }, _) => tags(state, &registry, &name, &query).await,
        (Endpoint::Tag { name, tag }, false) => tag_properties(state, &registry, &name, &tag).await,
        (Endpoint::Tag { name, tag }, true) => delete_tag(state, &registry, &name, &tag).await,
        (Endpoint::Manifests { name }, _) => manifests(state, &registry, &name, &query).await,
        (Endpoint::Manifest { name, digest }, _) => {
            manifest(state, &registry, &name, &digest).await
        }
    }
}

/// The registry a request addresses and the path after `/acr/v1/`.
fn address(state: &AppState, parts: &Parts, path: &str) -> ApiResult<(String, String)> {
    if let Some(rest) = path.strip_prefix("/acr/v1/") {
        if state.registry_domain.is_none() {
            return Err(ApiError::oci(
                ErrorCode::NameUnknown,
                "on this server the metadata API of a registry is at /<registry>/acr/v1/",
            ));
        }
        // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in `Host`.
        let registry = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host())
            .and_then(|host| registry_auth::registry_name_from_service(state, host))
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::oci(
                    ErrorCode::NameUnknown,
                    "the request's host names no registry on this server",
                )
            })?;
        return Ok((registry, rest.to_string()));
    }
    let in_path = path
        .strip_prefix('/')
        .and_then(|p| p.split_once("/acr/v1/"))
        .filter(|(registry, _)| !registry.is_empty() && !registry.contains('/'));
    match (in_path, &state.registry_domain) {
        (Some((registry, rest)), None) => Ok((registry.to_string(), rest.to_string())),
        (Some(_), Some(domain)) => Err(ApiError::oci(
            ErrorCode::NameUnknown,
            format!("on this server the metadata API of a registry is at /acr/v1/ on <registry>.{domain}"),
        )),
        (None, _) => {
            Err(ApiError::oci(ErrorCode::NameUnknown, "no metadata endpoint matches the path"))
        }
    }
}

/// Query parameters (the first of repeated keys wins).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> ApiResult<Query> {
        serde_urlencoded::from_str(query.unwrap_or_default()).map(Query).map_err(|e| {
            ApiError::oci_malformed(
                ErrorCode::Unsupported,
                format!("the query string could not be parsed: {e}"),
            )
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// `n`: how many entries at most (`None`: all).
    fn n(&self) -> ApiResult<Option<usize>> {
        match self.get("n") {
            None => Ok(None),
            Some(text) => text.parse::<usize>().map(Some).map_err(|_| {
                ApiError::oci(
                    ErrorCode::PaginationNumberInvalid,
                    format!("n must be a non-negative number, not '{text}'"),
                )
            }),
        }
    }

    /// `orderby`: `timedesc`, `timeasc` or `none` (the default: by name or digest).
    fn order(&self) -> ApiResult<(ListOrder, Option<&'static str>)> {
        match self.get("orderby") {
            None | Some("none") => Ok((ListOrder::Key, None)),
            Some("timedesc") => Ok((ListOrder::TimeDescending, Some("timedesc"))),
            Some("timeasc") => Ok((ListOrder::TimeAscending, Some("timeasc"))),
            Some(other) => Err(ApiError::oci_malformed(
                ErrorCode::Unsupported,
                format!("orderby must be timedesc, timeasc or none, not '{other}'"),
            )),
        }
    }
}

/// Keep at most `n` of `items` (fetched with one extra); the key of the last kept item when more follow.
fn trim<T>(
    mut items: Vec<T>,
    n: Option<usize>,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let Some(n) = n else { return (items, None) };
    let more = items.len() > n;
    items.truncate(n);
    let next = if more { items.last().map(key) } else { None };
    (items, next)
}

/// A 200 JSON answer, with `Link: </acr/v1/<tail>?last=..&n=..[&orderby=..]>; rel="next"` when a page follows.
/// The link is relative to the login server, which is where ACR's clients resolve it.
fn page(body: Value, tail: &str, next: Option<(String, usize)>, orderby: Option<&str>) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Some((last, n)) = next {
        let orderby = orderby.map(|o| format!("&orderby={o}")).unwrap_or_default();
        let last = utf8_percent_encode(&last, LINK_VALUE);
        let link = format!("</acr/v1/{tail}?last={last}&n={n}{orderby}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

fn changeable_attributes() -> Value {
    json!({"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true})
}

fn name_unknown(repository: &str) -> ApiError {
    ApiError::oci(
        ErrorCode::NameUnknown,
        format!("repository name not known to registry: {repository}"),
    )
}

async fn require_repository(state: &AppState, registry: &Registry, name: &str) -> ApiResult<()> {
    if state.db.repository_exists(&registry.name, name).await? {
        Ok(())
    } else {
        Err(name_unknown(name))
    }
}

/// `GET /acr/v1/_catalog?n=&last=`: `{"repositories":[...]}`, names relative to the registry, byte order.
async fn catalog(state: &AppState, registry: &Registry, query: &Query) -> ApiResult<Response> {
    let n = query.n()?;
    let names = state
        .db
        .list_repositories(&registry.name, query.get("last"), n.map(|n| n.saturating_add(1)))
        .await?;
    let (names, next) = trim(names, n, Clone::clone);
    Ok(page(json!({ "repositories": names }), "_catalog", next.zip(n), None))
}

/// `GET /acr/v1/<name>`: the repository's properties.
async fn repository(state: &AppState, registry: &Registry, name: &str) -> ApiResult<Response> {
    let summary = state
        .db
        .repository_summary(&registry.name, name)
        .await?
        .ok_or_else(|| name_unknown(name))?;
    let body = json!({
        "registry": registry.login_server,
        "imageName": name,
        "createdTime": summary.created_at,
        "lastUpdateTime": summary.last_updated,
        "manifestCount": summary.manifest_count,
        "tagCount": summary.tag_count,
        "changeableAttributes": changeable_attributes(),
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `DELETE /acr/v1/<name>`: 202 with the manifests and tags it held (their blobs are left to garbage
/// collection).
async fn delete_repository(
    state: &AppState,
    registry: &Registry,
    name: &str,
) -> ApiResult<Response> {
    let deleted = state
        .db
        .delete_repository_reporting(&registry.name, name)
        .await?
        .ok_or_else(|| name_unknown(name))?;
    let body = json!({"manifestsDeleted": deleted.manifests, "tagsDeleted": deleted.tags});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn tag_json(tag: &TagRecord) -> Value {
    json!({
        "name": tag.tag,
        "digest": tag.digest,
        // The store keeps when a tag was last set, not when it was first created.
        "createdTime": tag.updated_at,
        "lastUpdateTime": tag.updated_at,
        "signed": false,
        "changeableAttributes": changeable_attributes(),
    })
}

/// `GET /acr/v1/<name>/_tags?n=&last=&orderby=&digest=`.
async fn tags(
    state: &AppState,
    registry: &Registry,
    name: &str,
    query: &Query,
) -> ApiResult<Response> {
    let n = query.n()?;
    let (order, orderby) = query.order()?;
    let digest = query.get("digest");
    require_repository(state, registry, name).await?;
    let found = state
        .db
        .tag_records(
            &registry.name,
            name,
            digest,
            order,
            query.get("last"),
            n.map(|n| n.saturating_add(1)),
        )
        .await?;
    let (found, next) = trim(found, n, |t| t.tag.clone());
    let body = json!({
        "registry": registry.login_server,
        "imageName": name,
        "tags": found.iter().map(tag_json).collect::<Vec<_>>(),
    });
    Ok(page(body, &format!("{name}/_tags"), next.zip(n), orderby))
}

fn tag_unknown(name: &str, tag: &str) -> ApiError {
    ApiError::oci(
        ErrorCode::ManifestUnknown,
        format!("the tag '{tag}' is not known to repository {name}"),
    )
}

/// `GET /acr/v1/<name>/_tags/<tag>`.
async fn tag_properties(
    state: &AppState,
    registry: &Registry,
    name: &str,
    tag: &str,
) -> ApiResult<Response> {
    require_repository(state, registry, name).await?;
    let found = state
        .db
        .tag_record(&registry.name, name, tag)
        .await?
        .ok_or_else(|| tag_unknown(name, tag))?;
    let body = json!({
        "registry": registry.login_server,
        "imageName": name,
        "tag": tag_json(&found),
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `DELETE /acr/v1/<name>/_tags/<tag>`: the tag only; the manifest stays.
async fn delete_tag(
    state: &AppState,
    registry: &Registry,
    name: &str,
    tag: &str,
) -> ApiResult<Response> {
    require_repository(state, registry, name).await?;
    if !state.db.delete_tag(&registry.name, name, tag).await? {
        return Err(tag_unknown(name, tag));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// What a manifest's bytes (and its image configuration) tell about it.
#[derive(Default)]
struct ManifestFacts {
    architecture: Option<String>,
    os: Option<String>,
    config_media_type: Option<String>,
    /// For an index: its manifests with their platforms.
    references: Vec<Value>,
}

/// A blob's bytes, checked against its digest; `None` (and a log line) when it cannot be read.
async fn read_verified(state: &AppState, digest: &str, limit: u64) -> Option<Bytes> {
    let parsed = Digest::parse(digest).ok()?;
    match state.blobs.read_to_bytes(&parsed, limit).await {
        Ok(bytes) if parsed.verifies(&bytes) => Some(bytes),
        Ok(_) => {
            tracing::warn!(%digest, "stored content does not match its digest");
            None
        }
        Err(error) => {
            tracing::warn!(%digest, %error, "stored content could not be read");
            None
        }
    }
}

/// The platform of an image (from its configuration) or of an index's entries. Content that cannot be read
/// leaves the fields out rather than failing the listing.
async fn manifest_facts(state: &AppState, record: &ManifestRecord) -> ManifestFacts {
    let bytes = match state.v2_caches.manifest(&record.digest) {
        Some(bytes) => bytes,
        None => {
            let Some(bytes) =
                read_verified(state, &record.digest, berth_oci::MANIFEST_SIZE_LIMIT as u64).await
            else {
                return ManifestFacts::default();
            };
            state.v2_caches.remember_manifest(&record.digest, bytes.clone());
            bytes
        }
    };
    let Ok(parsed) = ParsedManifest::parse(Some(&record.media_type), &bytes) else {
        return ManifestFacts::default();
    };
    let mut facts = ManifestFacts::default();
    if let Some(config) = parsed.config() {
        facts.config_media_type = Some(config.media_type.clone());
        let is_image_config = config.media_type == media_types::OCI_CONFIG
            || config.media_type == media_types::DOCKER_CONFIG;
        if is_image_config && config.size <= CONFIG_READ_LIMIT {
            if let Some(config) =
                read_verified(state, config.digest.as_str(), CONFIG_READ_LIMIT).await
            {
                let config: Value = serde_json::from_slice(&config).unwrap_or_default();
                let text =
                    |key: &str| config[key].as_str().filter(|s| !s.is_empty()).map(str::to_string);
                facts.architecture = text("architecture");
                facts.os = text("os");
            }
        }
    }
    facts.references = parsed
        .manifests()
        .iter()
        .map(|entry| {
            let mut reference = json!({ "digest": entry.digest.as_str() });
            if let Some(platform) = &entry.platform {
                reference["architecture"] = json!(platform.architecture);
                reference["os"] = json!(platform.os);
            }
            reference
        })
        .collect();
    facts
}

/// One manifest as ACR describes it. `imageSize` counts the manifest and the blobs it references.
async fn manifest_json(
    state: &AppState,
    record: &ManifestRecord,
    tags: Vec<String>,
    blob_sizes: &HashMap<String, i64>,
    with_references: bool,
) -> Value {
    let facts = manifest_facts(state, record).await;
    let mut value = json!({
        "digest": record.digest,
        "imageSize": record.size + blob_sizes.get(&record.digest).copied().unwrap_or(0),
        "createdTime": record.created_at,
        "lastUpdateTime": record.created_at,
        "mediaType": record.media_type,
    });
    if let Some(architecture) = facts.architecture {
        value["architecture"] = json!(architecture);
    }
    if let Some(os) = facts.os {
        value["os"] = json!(os);
    }
    if let Some(config_media_type) = facts.config_media_type {
        value["configMediaType"] = json!(config_media_type);
    }
    if with_references && !facts.references.is_empty() {
        value["references"] = json!(facts.references);
    }
    value["tags"] = json!(tags);
    value["changeableAttributes"] = changeable_attributes();
    value
}

/// `GET /acr/v1/<name>/_manifests?n=&last=&orderby=`: `last` is a digest.
async fn manifests(
    state: &AppState,
    registry: &Registry,
    name: &str,
    query: &Query,
) -> ApiResult<Response> {
    let n = query.n()?;
    let (order, orderby) = query.order()?;
    require_repository(state, registry, name).await?;
    let found = state
        .db
        .manifest_records(
            &registry.name,
            name,
            order,
            query.get("last"),
            n.map(|n| n.saturating_add(1)),
        )
        .await?;
    let (found, next) = trim(found, n, |m| m.digest.clone());
    let mut tags_by_digest: HashMap<String, Vec<String>> = HashMap::new();
    for tag in state.db.tag_records(&registry.name, name, None, ListOrder::Key, None, None).await? {
        tags_by_digest.entry(tag.digest).or_default().push(tag.tag);
    }
    let sizes = state.db.manifest_blob_sizes(&registry.name, name).await?;
    let mut items = Vec::with_capacity(found.len());
    for record in &found {
        let tags = tags_by_digest.remove(&record.digest).unwrap_or_default();
        items.push(manifest_json(state, record, tags, &sizes, false).await);
    }
    let body = json!({
        "registry": registry.login_server,
        "imageName": name,
        "manifests": items,
    });
    Ok(page(body, &format!("{name}/_manifests"), next.zip(n), orderby))
}

/// `GET /acr/v1/<name>/_manifests/<digest>`.
async fn manifest(
    state: &AppState,
    registry: &Registry,
    name: &str,
    digest: &str,
) -> ApiResult<Response> {
    let digest = Digest::parse(digest)
        .map_err(|e| ApiError::oci(ErrorCode::DigestInvalid, e.to_string()))?;
    require_repository(state, registry, name).await?;
    let record =
        state.db.get_manifest(&registry.name, name, digest.as_str()).await?.ok_or_else(|| {
            ApiError::oci(
                ErrorCode::ManifestUnknown,
                format!("manifest {digest} is unknown to repository {name}"),
            )
        })?;
    let tags = state.db.tags_of(&registry.name, name, digest.as_str()).await?;
    let sizes = state.db.manifest_blob_sizes(&registry.name, name).await?;
    let body = json!({
        "registry": registry.login_server,
        "imageName": name,
        "manifest": manifest_json(state, &record, tags, &sizes, true).await,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn endpoints_are_read_from_the_end() {
        let parse = Endpoint::parse;
        assert_eq!(parse("_catalog"), Some(Endpoint::Catalog));
        assert_eq!(parse("app"), Some(Endpoint::Repository { name: s("app") }));
        assert_eq!(parse("team/app"), Some(Endpoint::Repository { name: s("team/app") }));
        assert_eq!(parse("team/app/_tags"), Some(Endpoint::Tags { name: s("team/app") }));
        assert_eq!(
            parse("team/app/_tags/v1"),
            Some(Endpoint::Tag { name: s("team/app"), tag: s("v1") })
        );
        assert_eq!(parse("a/_manifests"), Some(Endpoint::Manifests { name: s("a") }));
        assert_eq!(
            parse("a/b/_manifests/sha256:1"),
            Some(Endpoint::Manifest { name: s("a/b"), digest: s("sha256:1") })
        );
        // Names the endpoint words cannot hide in (no component starts with `_`) are repositories as written;
        // the name check refuses them later.
        assert_eq!(parse("_tags"), Some(Endpoint::Repository { name: s("_tags") }));
        assert_eq!(parse(""), None);
    }

    #[test]
    fn pages_keep_n_and_name_the_last() {
        let (items, next) = trim(vec![1, 2, 3], Some(2), |i| i.to_string());
        assert_eq!((items, next), (vec![1, 2], Some(s("2"))));
        let (items, next) = trim(vec![1, 2], Some(2), |i| i.to_string());
        assert_eq!((items, next), (vec![1, 2], None));
        let (items, next) = trim(vec![1, 2], None, |i| i.to_string());
        assert_eq!((items, next), (vec![1, 2], None));
        let response =
            page(json!({}), "team/app/_tags", Some((s("sha256:ab"), 2)), Some("timedesc"));
        assert_eq!(
            response.headers().get(header::LINK).unwrap(),
            "</acr/v1/team/app/_tags?last=sha256%3Aab&n=2&orderby=timedesc>; rel=\"next\""
        );
    }
}
