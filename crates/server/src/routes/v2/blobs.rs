//! Blob HEAD and GET (whole or one byte range, streamed from the blob store) and DELETE (unlink from the
//! repository; the bytes are left to garbage collection).
//!
//! A blob is visible through a repository only when linked to it (uploaded, mounted or referenced there); a
//! blob another repository holds is `BLOB_UNKNOWN` here. Manifests are content too, so a manifest of the
//! repository can also be fetched by digest through this endpoint, as distribution allows.

use std::ops::Range;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_oci::ErrorCode;
use berth_storage::StorageError;

use super::{parse_digest, storage_error, Reply, Target, DOCKER_CONTENT_DIGEST};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What a `Range` header asks of a blob of known size.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    /// End-exclusive.
    Part(Range<u64>),
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n`. Anything else (other units, several ranges, garbage) is ignored and the
/// whole blob served, as RFC 9110 allows.
fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (start, end) = (start.trim(), end.trim());
    let parse = |text: &str| text.parse::<u64>().ok();
    let range = match (start.is_empty(), end.is_empty()) {
        // Suffix: the last n bytes.
        (true, false) => match parse(end) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return RangeRequest::Whole,
        },
        (false, true) => match parse(start) {
            Some(first) => first..size,
            None => return RangeRequest::Whole,
        },
        (false, false) => match (parse(start), parse(end)) {
            (Some(first), Some(last)) if last >= first => first..last.saturating_add(1).min(size),
            (Some(_), Some(_)) => return RangeRequest::Whole,
            _ => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if range.start >= size || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(range)
    }
}

fn blob_unknown(digest: &str) -> ApiError {
    ApiError::oci(ErrorCode::BlobUnknown, format!("blob {digest} is unknown to this repository"))
}

/// `GET|HEAD /v2/<name>/blobs/<digest>`.
pub(super) async fn get(
    state: &AppState,
    target: &Target,
    digest_text: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let digest = parse_digest(digest_text)?;
    let registry = &target.registry.name;
    let size = match state.db.linked_blob(registry, &target.repository, digest.as_str()).await? {
        Some(size) => u64::try_from(size).unwrap_or_default(),
        None => {
            let Some(manifest) =
                state.db.get_manifest(registry, &target.repository, digest.as_str()).await?
            else {
                return Err(blob_unknown(digest.as_str()));
            };
            u64::try_from(manifest.size).unwrap_or_default()
        }
    };
    let reply = |status| {
        Reply::new(status)
            .header(DOCKER_CONTENT_DIGEST, digest.as_str())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, format!("\"{digest}\""))
    };
    if head {
        return Ok(reply(StatusCode::OK).header(header::CONTENT_LENGTH, size.to_string()).build());
    }
    let wanted = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => parse_range(value, size),
        None => RangeRequest::Whole,
    };
    let range = match wanted {
        RangeRequest::Whole => None,
        RangeRequest::Part(range) => Some(range),
        RangeRequest::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    let partial = range.is_some();
    let reader = match state.blobs.get(&digest, range).await {
        Ok(reader) => reader,
        Err(StorageError::RangeNotSatisfiable { size: 0, .. }) if !partial => {
            // An empty blob has no satisfiable range in the store, but is served whole (empty).
            return Ok(reply(StatusCode::OK).header(header::CONTENT_LENGTH, "0").build());
        }
        Err(StorageError::RangeNotSatisfiable { size, .. }) => return Ok(unsatisfiable(size)),
        Err(StorageError::BlobUnknown(_)) => {
            tracing::warn!(%digest, "a linked blob is missing from the blob store");
            return Err(blob_unknown(digest.as_str()));
        }
        Err(other) => return Err(storage_error(other)),
    };
    let served = reader.range();
    let mut reply = if partial {
        reply(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", served.start, served.end - 1, reader.size()),
        )
    } else {
        reply(StatusCode::OK)
    };
    reply = reply.header(header::CONTENT_LENGTH, reader.content_length().to_string());
    let mut response = reply.build();
    *response.body_mut() = Body::from_stream(reader.into_stream());
    Ok(response)
}

fn unsatisfiable(size: u64) -> Response {
    let mut response = ApiError::oci(
        ErrorCode::RangeInvalid,
        format!("the requested range is outside the blob's {size} bytes"),
    )
    .into_response();
    if let Ok(value) = format!("bytes */{size}").parse() {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// `DELETE /v2/<name>/blobs/<digest>`: the repository stops seeing the blob.
pub(super) async fn delete(
    state: &AppState,
    target: &Target,
    digest_text: &str,
) -> ApiResult<Response> {
    let digest = parse_digest(digest_text)?;
    if !state.db.unlink_blob(&target.registry.name, &target.repository, digest.as_str()).await? {
        return Err(blob_unknown(digest.as_str()));
    }
    Ok(Reply::new(StatusCode::ACCEPTED).header(DOCKER_CONTENT_DIGEST, digest.as_str()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0..10));
        assert_eq!(parse_range("bytes=10-", 100), Part(10..100));
        assert_eq!(parse_range("bytes=-10", 100), Part(90..100));
        assert_eq!(parse_range("bytes=-1000", 100), Part(0..100));
        assert_eq!(parse_range("bytes=90-1000", 100), Part(90..100));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        for ignored in
            ["items=0-1", "bytes=0-1,5-6", "bytes=x-1", "bytes=5-1", "bytes=-", "garbage"]
        {
            assert_eq!(parse_range(ignored, 100), Whole, "{ignored}");
        }
        assert_eq!(
            parse_range("bytes=18446744073709551615-18446744073709551615", 10),
            Unsatisfiable
        );
    }
}
