//! Content discovery: tag lists and the catalog (byte-ordered, paginated by `n`/`last` with a `Link` header to
//! the next page), and the referrers API (an OCI image index of the manifests whose `subject` is a digest,
//! optionally filtered by `artifactType`).

use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_oci::{media_types, ErrorCode};
use serde_json::{json, Value};

use super::{parse_digest, Query, Target};
use crate::error::{ApiError, ApiResult};
use crate::registry_auth::Registry;
use crate::state::AppState;

const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// `n`: how many entries at most (`None`: all).
fn page_size(query: &Query) -> ApiResult<Option<usize>> {
    match query.get("n") {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<usize>().map(Some).map_err(|_| {
            ApiError::oci(
                ErrorCode::PaginationNumberInvalid,
                format!("n must be a non-negative number, not '{text}'"),
            )
        }),
    }
}

/// One page of `items` (already after `last`, fetched with one extra entry to learn whether more follow), as a
/// JSON response with a `Link` to the next page when there is one.
fn paged(
    mut items: Vec<String>,
    n: Option<usize>,
    body: impl FnOnce(Vec<String>) -> Value,
    next: impl FnOnce(usize, &str) -> String,
) -> Response {
    let more = n.is_some_and(|n| items.len() > n);
    if let Some(n) = n {
        items.truncate(n);
    }
    let link = match (more, n, items.last()) {
        (true, Some(n), Some(last)) => Some(format!("<{}>; rel=\"next\"", next(n, last))),
        _ => None,
    };
    let mut response = (StatusCode::OK, axum::Json(body(items))).into_response();
    if let Some(value) = link.and_then(|l| l.parse().ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `GET /v2/<name>/tags/list?n=&last=`.
pub(super) async fn tags(state: &AppState, target: &Target, query: &Query) -> ApiResult<Response> {
    let n = page_size(query)?;
    let (registry, repository) = (&target.registry.name, &target.repository);
    if !state.db.repository_exists(registry, repository).await? {
        return Err(ApiError::oci(
            ErrorCode::NameUnknown,
            format!("repository {} is not known to this registry", target.full_name),
        ));
    }
    let last = query.get("last").filter(|l| !l.is_empty());
    let tags =
        state.db.list_tags(registry, repository, last, n.map(|n| n.saturating_add(1))).await?;
    let name = target.full_name.clone();
    Ok(paged(
        tags,
        n,
        |tags| json!({ "name": name, "tags": tags }),
        |n, last| format!("/v2/{}/tags/list?n={n}&last={last}", target.full_name),
    ))
}

/// `GET /v2/_catalog` (host mode) or `/v2/<registry>/_catalog` (path mode), names as the client sees them.
pub(super) async fn catalog(
    state: &AppState,
    registry: &Registry,
    query: &Query,
) -> ApiResult<Response> {
    let n = page_size(query)?;
    let path_mode = state.registry_domain.is_none();
    let prefix = if path_mode { format!("{}/", registry.name) } else { String::new() };
    // `last` is a name as the client sees it; in path mode every name starts with the registry's.
    let last = query.get("last").filter(|l| !l.is_empty());
    let last = match last {
        None => None,
        Some(last) => match last.strip_prefix(&prefix) {
            Some(within) => Some(within),
            None if last < prefix.as_str() => None,
            None => {
                return Ok(paged(
                    Vec::new(),
                    n,
                    |r| json!({ "repositories": r }),
                    |_, _| String::new(),
                ))
            }
        },
    };
    let names = state
        .db
        .list_repositories(&registry.name, last, n.map(|n| n.saturating_add(1)))
        .await?
        .into_iter()
        .map(|name| format!("{prefix}{name}"))
        .collect();
    let base = if path_mode {
        format!("/v2/{}/_catalog", registry.name)
    } else {
        "/v2/_catalog".to_string()
    };
    Ok(paged(
        names,
        n,
        |repositories| json!({ "repositories": repositories }),
        |n, last| format!("{base}?n={n}&last={last}"),
    ))
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`.
pub(super) async fn referrers(
    state: &AppState,
    target: &Target,
    digest_text: &str,
    query: &Query,
) -> ApiResult<Response> {
    let digest = parse_digest(digest_text)?;
    let artifact_type = query.get("artifactType").filter(|t| !t.is_empty());
    let found = state
        .db
        .referrers(&target.registry.name, &target.repository, digest.as_str(), artifact_type)
        .await?;
    let manifests: Vec<Value> = found
        .into_iter()
        .map(|record| {
            let mut descriptor = json!({
                "mediaType": record.media_type,
                "digest": record.digest,
                "size": record.size,
            });
            if let Some(artifact_type) = record.artifact_type {
                descriptor["artifactType"] = json!(artifact_type);
            }
            if let Some(annotations) =
                record.annotations.and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                descriptor["annotations"] = annotations;
            }
            descriptor
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = (StatusCode::OK, axum::Json(index)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(media_types::OCI_INDEX));
    if artifact_type.is_some() {
        headers.insert(OCI_FILTERS_APPLIED, header::HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}
