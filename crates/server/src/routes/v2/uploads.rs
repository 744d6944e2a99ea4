//! Blob uploads: `POST .../blobs/uploads/` (a session, a monolithic upload with `?digest=`, or a cross-repository
//! mount with `?mount=&from=`), `PATCH` chunks, `GET` status, `PUT ?digest=` to finish, `DELETE` to cancel.
//!
//! Bodies stream from the socket into the blob store, which hashes as it writes; nothing holds a whole blob (a final
//! `PUT` chunk of at most 1 MiB is read into memory and verified in one step). A
//! blob becomes visible (and linked to the repository) only after the digest the client named matches; its bytes
//! are published inside the metadata transaction that holds the blob's row and links it, so garbage collection
//! cannot delete them in between (`berth_db`'s `gc.rs`). Sessions
//! are recorded in the metadata store and their bytes kept by the blob store, so a client can resume after a
//! dropped connection or a server restart; a session belongs to the repository it was started in.

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_db::{BlobLink, UploadRecord};
use berth_oci::{Digest, ErrorCode, RepositoryName};
use berth_storage::{StorageError, UploadId, VerifiedUpload};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use super::{
    parse_digest, storage_error, upload_range, Query, Reply, Target, DOCKER_CONTENT_DIGEST,
    DOCKER_UPLOAD_UUID,
};
use crate::error::{ApiError, ApiResult};
use crate::registry_auth;
use crate::state::AppState;
use crate::time::now_rfc3339;

fn upload_unknown(id: &str) -> ApiError {
    ApiError::oci(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is unknown to this repository"),
    )
}

/// The upload session `id_text` of this repository.
pub(super) async fn find(state: &AppState, target: &Target, id_text: &str) -> ApiResult<UploadId> {
    let id = UploadId::parse(id_text).map_err(|_| upload_unknown(id_text))?;
    let (registry, repository) = match state.v2_caches.upload(id.as_str()) {
        Some(known) => known,
        None => match state.db.get_upload(id.as_str()).await? {
            Some(record) => {
                state.v2_caches.remember_upload(id.as_str(), &record.registry, &record.repository);
                (record.registry, record.repository)
            }
            None => return Err(upload_unknown(id_text)),
        },
    };
    if registry == target.registry.name && repository == target.repository {
        Ok(id)
    } else {
        Err(upload_unknown(id_text))
    }
}

/// `Content-Range: <start>-<end>` of a chunk: where the client says it starts. Also accepts `bytes ` or `bytes=`
/// before the numbers and a `/<total>` after them.
fn chunk_start(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else { return Ok(None) };
    let malformed =
        || ApiError::oci(ErrorCode::BlobUploadInvalid, "Content-Range must be `<start>-<end>`");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let text = text.strip_prefix("bytes").map(|t| t.trim_start_matches([' ', '='])).unwrap_or(text);
    let text = text.split('/').next().unwrap_or_default();
    let (start, end) = text.split_once('-').ok_or_else(malformed)?;
    let start: u64 = start.trim().parse().map_err(|_| malformed())?;
    let end: u64 = end.trim().parse().map_err(|_| malformed())?;
    if end < start {
        return Err(malformed());
    }
    Ok(Some(start))
}

fn session_reply(status: StatusCode, target: &Target, id: &UploadId, offset: u64) -> Reply {
    Reply::new(status)
        .header(header::LOCATION, target.url(&format!("blobs/uploads/{id}")))
        .header(header::RANGE, upload_range(offset))
        .header(DOCKER_UPLOAD_UUID, id.as_str())
}

fn blob_created(target: &Target, digest: &Digest) -> Response {
    Reply::new(StatusCode::CREATED)
        .header(header::LOCATION, target.url(&format!("blobs/{digest}")))
        .header(DOCKER_CONTENT_DIGEST, digest.as_str())
        .build()
}

/// 416 for a chunk that does not start where the upload stands, with the upload's real position.
fn out_of_order(target: &Target, id: &UploadId, current: u64, given: u64) -> Response {
    let mut response = ApiError::oci(
        ErrorCode::RangeInvalid,
        format!("the upload is at offset {current}; a chunk starting at {given} is out of order"),
    )
    .into_response();
    let headers = session_reply(StatusCode::OK, target, id, current).build().into_parts().0.headers;
    response.headers_mut().extend(headers);
    response
}

/// Make a verified upload visible and link it to the repository, in one metadata transaction that holds the
/// blob's row while the bytes appear (so garbage collection cannot delete them in between; see `berth_db`'s
/// `gc.rs`); with `session`, also end that upload session's record. On failure the upload is left to the caller.
async fn publish_and_link(
    state: &AppState,
    target: &Target,
    verified: VerifiedUpload,
    session: Option<&UploadId>,
) -> ApiResult<()> {
    let digest = verified.digest().clone();
    let size = i64::try_from(verified.size()).map_err(ApiError::internal)?;
    let now = now_rfc3339();
    let link = BlobLink {
        registry: &target.registry.name,
        repository: &target.repository,
        digest: digest.as_str(),
        size,
        now: &now,
    };
    let publish = state.blobs.publish(verified);
    match state.db.link_blob_publishing(&link, session.map(UploadId::as_str), publish).await? {
        Ok(_) => Ok(()),
        Err(error) => Err(storage_error(error)),
    }
}

/// `POST /v2/<name>/blobs/uploads/`.
pub(super) async fn start(
    state: &AppState,
    target: &Target,
    query: &Query,
    body: Body,
) -> ApiResult<Response> {
    if let Some(mount) = query.get("mount") {
        let digest = parse_digest(mount)?;
        if let Some(from) = query.get("from") {
            if let Some(response) = mount_from(state, target, &digest, from).await? {
                return Ok(response);
            }
        }
        // Not mountable (or no `from`): the spec's fallback is an ordinary upload session.
    } else if let Some(digest) = query.get("digest") {
        let digest = parse_digest(digest)?;
        let verified = state
            .blobs
            .put_stream_verified(&digest, body.into_data_stream())
            .await
            .map_err(storage_error)?;
        let id = verified.id().clone();
        if let Err(error) = publish_and_link(state, target, verified, None).await {
            // Nobody can resume a one-shot upload: do not leave it behind.
            let _ = state.blobs.cancel(&id).await;
            return Err(error);
        }
        return Ok(blob_created(target, &digest));
    }
    let id = state.blobs.create_upload().await.map_err(storage_error)?;
    let record = UploadRecord {
        id: id.to_string(),
        registry: target.registry.name.clone(),
        repository: target.repository.clone(),
        created_at: now_rfc3339(),
    };
    if let Err(error) = state.db.create_upload(&record).await {
        let _ = state.blobs.cancel(&id).await;
        return Err(error.into());
    }
    state.v2_caches.remember_upload(&record.id, &record.registry, &record.repository);
    Ok(session_reply(StatusCode::ACCEPTED, target, &id, 0).build())
}

/// Link `digest` from the repository `from` of the same registry, if the caller may pull there and it is there.
async fn mount_from(
    state: &AppState,
    target: &Target,
    digest: &Digest,
    from: &str,
) -> ApiResult<Option<Response>> {
    if RepositoryName::parse(from).is_err() {
        return Ok(None);
    }
    let source = match &state.registry_domain {
        Some(_) => Some(from),
        None => registry_auth::split_path_mode_name(from)
            .filter(|(registry, _)| registry.eq_ignore_ascii_case(&target.registry.name))
            .map(|(_, repository)| repository),
    };
    let Some(source) = source else { return Ok(None) };
    let may_pull =
        target.registry.anonymous_pull || target.granted.allows("repository", from, "pull");
    if !may_pull {
        return Ok(None);
    }
    let mounted = state
        .db
        .mount_blob(
            &target.registry.name,
            source,
            &target.repository,
            digest.as_str(),
            &now_rfc3339(),
        )
        .await?;
    Ok(mounted.map(|_| blob_created(target, digest)))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how many bytes arrived.
pub(super) async fn status(
    state: &AppState,
    target: &Target,
    id: &UploadId,
) -> ApiResult<Response> {
    match state.blobs.upload_status(id).await {
        Ok(status) => Ok(session_reply(StatusCode::NO_CONTENT, target, id, status.offset).build()),
        Err(error) => Err(forget_if_gone(state, id, error).await),
    }
}

/// A storage error on an upload; an upload the store no longer has is forgotten in the metadata store too.
async fn forget_if_gone(state: &AppState, id: &UploadId, error: StorageError) -> ApiError {
    if matches!(error, StorageError::UploadUnknown(_) | StorageError::DigestMismatch { .. }) {
        state.v2_caches.forget_upload(id.as_str());
        if let Err(db_error) = state.db.delete_upload(id.as_str()).await {
            return db_error.into();
        }
    }
    storage_error(error)
}

/// Stream a request body onto the upload; `Err(response)` for a chunk out of order.
async fn append(
    state: &AppState,
    target: &Target,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Result<u64, Response>> {
    let start = chunk_start(headers)?;
    match state.blobs.append(id, start, body.into_data_stream()).await {
        Ok(offset) => Ok(Ok(offset)),
        Err(StorageError::OffsetMismatch { current, given, .. }) => {
            Ok(Err(out_of_order(target, id, current, given)))
        }
        Err(error) => Err(forget_if_gone(state, id, error).await),
    }
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: one chunk.
pub(super) async fn patch(
    state: &AppState,
    target: &Target,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    match append(state, target, id, headers, body).await? {
        Ok(offset) => Ok(session_reply(StatusCode::ACCEPTED, target, id, offset).build()),
        Err(response) => Ok(response),
    }
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: an optional last chunk, then verify and publish.
pub(super) async fn finish(
    state: &AppState,
    target: &Target,
    id: &UploadId,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let digest = query.get("digest").ok_or_else(|| {
        ApiError::oci(ErrorCode::DigestInvalid, "the digest query parameter is required")
    })?;
    let digest = parse_digest(digest)?;
    let verified = if body.is_end_stream() {
        state.blobs.verify(id, &digest).await
    } else if let Some(length) = content_length(headers).filter(|&l| l <= SMALL_FINAL_CHUNK) {
        // Small monolithic pushes (configs, small layers): take the body into memory and append + verify in one
        // step, which saves the streaming pipeline's thread hand-offs (most of such a request's time).
        let start = chunk_start(headers)?;
        let chunk = read_small_body(body, length).await?;
        match state.blobs.append_and_verify(id, start, chunk, &digest).await {
            Err(StorageError::OffsetMismatch { current, given, .. }) => {
                return Ok(out_of_order(target, id, current, given));
            }
            other => other,
        }
    } else {
        if let Err(response) = append(state, target, id, headers, body).await? {
            return Ok(response);
        }
        state.blobs.verify(id, &digest).await
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => return Err(forget_if_gone(state, id, error).await),
    };
    let linked = publish_and_link(state, target, verified, Some(id)).await;
    state.v2_caches.forget_upload(id.as_str());
    linked?;
    Ok(blob_created(target, &digest))
}

/// Final chunks up to this size are read into memory and committed in one step.
const SMALL_FINAL_CHUNK: u64 = 1024 * 1024;

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The whole body of a request that declared `length` bytes (at most [`SMALL_FINAL_CHUNK`]).
async fn read_small_body(body: Body, length: u64) -> ApiResult<Bytes> {
    let limit = usize::try_from(length).map_err(ApiError::internal)?;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Err(ApiError::oci(
                ErrorCode::BlobUploadInvalid,
                format!("reading the upload body failed: {error}"),
            ))
        }
    };
    if bytes.len() as u64 != length {
        return Err(ApiError::oci(
            ErrorCode::SizeInvalid,
            format!("the body has {} bytes, Content-Length says {length}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`.
pub(super) async fn cancel(state: &AppState, id: &UploadId) -> ApiResult<Response> {
    let result = state.blobs.cancel(id).await;
    state.v2_caches.forget_upload(id.as_str());
    state.db.delete_upload(id.as_str()).await?;
    match result {
        Ok(()) => Ok(Reply::new(StatusCode::NO_CONTENT).build()),
        Err(error) => Err(storage_error(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_of(value: &str) -> ApiResult<Option<u64>> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_RANGE, value.parse().unwrap());
        chunk_start(&headers)
    }

    #[test]
    fn content_ranges() {
        assert_eq!(chunk_start(&HeaderMap::new()).unwrap(), None);
        assert_eq!(start_of("0-99").unwrap(), Some(0));
        assert_eq!(start_of("100-199").unwrap(), Some(100));
        assert_eq!(start_of("bytes 100-199/1000").unwrap(), Some(100));
        assert_eq!(start_of("bytes=5-5").unwrap(), Some(5));
        for bad in ["", "5", "a-b", "9-1", "-1"] {
            assert!(start_of(bad).is_err(), "{bad}");
        }
    }
}
