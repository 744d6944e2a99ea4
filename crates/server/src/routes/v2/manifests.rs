//! Manifests: `PUT` by tag or digest (validated, every referenced blob and child manifest must be in the
//! repository, stored byte for byte, content-addressed), `GET`/`HEAD` by tag or digest, `DELETE` by digest (with
//! its tags) or by tag (the tag only).
//!
//! Manifest bytes never change for a digest, so reads come from a small in-memory cache after the first; whether
//! the repository has the manifest (and what a tag points at) is always read from the metadata store.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use berth_db::{ManifestRecord, ManifestStore, ReferenceKind};
use berth_oci::{Digest, ErrorCode, ParsedManifest, Reference, MANIFEST_SIZE_LIMIT};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use super::{storage_error, Reply, Target, DOCKER_CONTENT_DIGEST};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_rfc3339;

const OCI_SUBJECT: header::HeaderName = header::HeaderName::from_static("oci-subject");

fn parse_reference(text: &str) -> ApiResult<Reference> {
    Reference::parse(text).map_err(|e| ApiError::oci(e.code(), e.to_string()))
}

fn manifest_unknown(reference: &Reference) -> ApiError {
    ApiError::oci(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference} is unknown to this repository"),
    )
}

fn too_large() -> ApiError {
    ApiError::Oci {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: ErrorCode::SizeInvalid,
        message: format!("a manifest may have at most {MANIFEST_SIZE_LIMIT} bytes"),
        detail: None,
        challenge: None,
    }
}

/// Read a manifest body, refusing more than the size limit before buffering it.
async fn read_manifest(headers: &HeaderMap, body: Body) -> ApiResult<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MANIFEST_SIZE_LIMIT as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MANIFEST_SIZE_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(ApiError::oci(
            ErrorCode::ManifestInvalid,
            format!("reading the manifest failed: {error}"),
        )),
    }
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub(super) async fn put(
    state: &AppState,
    target: &Target,
    reference_text: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let reference = parse_reference(reference_text)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let bytes = read_manifest(headers, body).await?;
    let manifest = ParsedManifest::parse(content_type, &bytes)
        .map_err(|e| ApiError::oci(e.code(), e.to_string()))?;
    let digest = match &reference {
        Reference::Digest(named) => {
            let actual = Digest::compute(named.algorithm(), &bytes);
            if actual != *named {
                return Err(ApiError::oci(
                    ErrorCode::DigestInvalid,
                    format!("the manifest's digest is {actual}, not {named}"),
                ));
            }
            actual
        }
        Reference::Tag(_) => Digest::sha256_of(&bytes),
    };
    let (registry, repository) = (&target.registry.name, &target.repository);
    let mut references: Vec<(String, ReferenceKind)> = Vec::new();
    references
        .extend(manifest.referenced_blobs().iter().map(|d| (d.to_string(), ReferenceKind::Blob)));
    references.extend(
        manifest.referenced_manifests().iter().map(|d| (d.to_string(), ReferenceKind::Manifest)),
    );
    let subject = manifest.subject().map(|s| s.digest.clone());
    if let Some(subject) = &subject {
        references.push((subject.to_string(), ReferenceKind::Subject));
    }
    let record = ManifestRecord {
        registry: registry.clone(),
        repository: repository.clone(),
        digest: digest.to_string(),
        media_type: manifest.media_type().to_string(),
        size: i64::try_from(bytes.len()).map_err(ApiError::internal)?,
        artifact_type: manifest.artifact_type().map(str::to_string),
        subject: subject.as_ref().map(Digest::to_string),
        annotations: manifest
            .annotations()
            .map(serde_json::to_string)
            .transpose()
            .map_err(ApiError::internal)?,
        created_at: now_rfc3339(),
    };
    let tag = reference.as_tag().map(|t| t.as_str());
    // One transaction locks the manifest's and the referenced digests' rows, checks that the repository has every
    // referenced blob and child manifest, writes the bytes and then the records: garbage collection cannot remove
    // a referenced blob, nor these bytes, in between.
    let publish = state.blobs.put_bytes(&digest, bytes.clone());
    match state.db.store_manifest(&record, &references, tag, publish).await? {
        ManifestStore::Stored => {}
        ManifestStore::Missing { digest, kind } => {
            let what = if kind == ReferenceKind::Manifest { "manifest" } else { "blob" };
            return Err(missing(&digest, what));
        }
        ManifestStore::NotPublished(error) => return Err(storage_error(error)),
    }
    state.v2_caches.remember_manifest(digest.as_str(), bytes);

    let mut reply = Reply::new(StatusCode::CREATED)
        .header(header::LOCATION, target.url(&format!("manifests/{digest}")))
        .header(DOCKER_CONTENT_DIGEST, digest.as_str());
    if let Some(subject) = &subject {
        reply = reply.header(OCI_SUBJECT, subject.as_str());
    }
    Ok(reply.build())
}

fn missing(digest: &str, what: &str) -> ApiError {
    ApiError::Oci {
        status: StatusCode::BAD_REQUEST,
        code: ErrorCode::ManifestBlobUnknown,
        message: format!(
            "the manifest references {what} {digest}, which this repository does not have"
        ),
        detail: Some(json!({ "digest": digest })),
        challenge: None,
    }
}

/// The repository's manifest a reference names.
async fn find(
    state: &AppState,
    target: &Target,
    reference: &Reference,
) -> ApiResult<ManifestRecord> {
    let (registry, repository) = (&target.registry.name, &target.repository);
    let found = match reference {
        Reference::Digest(digest) => {
            state.db.get_manifest(registry, repository, digest.as_str()).await?
        }
        Reference::Tag(tag) => state.db.manifest_by_tag(registry, repository, tag.as_str()).await?,
    };
    found.ok_or_else(|| manifest_unknown(reference))
}

/// The bytes of a stored manifest, from the cache or the blob store (checked against the digest there).
async fn load(state: &AppState, digest_text: &str) -> ApiResult<Bytes> {
    if let Some(bytes) = state.v2_caches.manifest(digest_text) {
        return Ok(bytes);
    }
    let digest = Digest::parse(digest_text).map_err(ApiError::internal)?;
    let bytes = state
        .blobs
        .read_to_bytes(&digest, MANIFEST_SIZE_LIMIT as u64)
        .await
        .map_err(|e| ApiError::internal(format!("reading manifest {digest}: {e}")))?;
    if !digest.verifies(&bytes) {
        return Err(ApiError::internal(format!(
            "stored manifest {digest} does not match its digest"
        )));
    }
    state.v2_caches.remember_manifest(digest_text, bytes.clone());
    Ok(bytes)
}

/// `GET|HEAD /v2/<name>/manifests/<reference>`: the bytes exactly as pushed, with their media type.
pub(super) async fn get(
    state: &AppState,
    target: &Target,
    reference_text: &str,
    head: bool,
) -> ApiResult<Response> {
    // A reference that cannot parse names nothing that can exist: unknown, as distribution answers.
    let reference = Reference::parse(reference_text).map_err(|_| {
        ApiError::oci(
            ErrorCode::ManifestUnknown,
            format!("manifest unknown: `{reference_text}` is not a tag or a digest"),
        )
    })?;
    let record = find(state, target, &reference).await?;
    let reply = Reply::new(StatusCode::OK)
        .header(header::CONTENT_TYPE, &record.media_type)
        .header(DOCKER_CONTENT_DIGEST, &record.digest)
        .header(header::ETAG, format!("\"{}\"", record.digest));
    if head {
        return Ok(reply.header(header::CONTENT_LENGTH, record.size.to_string()).build());
    }
    let bytes = load(state, &record.digest).await?;
    let mut response = reply.header(header::CONTENT_LENGTH, bytes.len().to_string()).build();
    *response.body_mut() = Body::from(bytes);
    Ok(response)
}

/// `DELETE /v2/<name>/manifests/<reference>`: by digest the manifest and its tags, by tag only the tag.
pub(super) async fn delete(
    state: &AppState,
    target: &Target,
    reference_text: &str,
) -> ApiResult<Response> {
    let reference = parse_reference(reference_text)?;
    let (registry, repository) = (&target.registry.name, &target.repository);
    let removed = match &reference {
        Reference::Digest(digest) => {
            state.db.delete_manifest(registry, repository, digest.as_str()).await?
        }
        Reference::Tag(tag) => state.db.delete_tag(registry, repository, tag.as_str()).await?,
    };
    if !removed {
        return Err(manifest_unknown(&reference));
    }
    Ok(Reply::new(StatusCode::ACCEPTED).build())
}
