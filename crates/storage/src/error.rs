//! The storage error type and its mapping onto distribution error codes.

use std::path::PathBuf;

use berth_oci::{Digest, ErrorCode};

use crate::UploadId;

/// Boxed error of a request body stream (e.g. the client went away mid-upload).
pub type BodyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in [`crate::BlobStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No upload session with this id (never started, committed, cancelled or cleaned up).
    #[error("upload `{0}` is unknown")]
    UploadUnknown(UploadId),
    /// The text is not an upload id this store could have issued.
    #[error("`{0}` is not a valid upload id")]
    InvalidUploadId(String),
    /// The blob does not exist.
    #[error("blob `{0}` is unknown")]
    BlobUnknown(Digest),
    /// The uploaded bytes hash to `actual`, not to the digest the client named. Nothing was made visible and the
    /// upload was discarded.
    #[error("uploaded content has digest `{actual}`, not `{expected}`")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// A chunk was sent for an offset other than the upload's current size.
    #[error("upload `{upload}` is at offset {current}, chunk starts at {given}")]
    OffsetMismatch { upload: UploadId, current: u64, given: u64 },
    /// The requested byte range starts at or after the end of the blob.
    #[error("range starting at {start} is outside a blob of {size} bytes")]
    RangeNotSatisfiable { start: u64, size: u64 },
    /// [`crate::BlobStore::read_to_bytes`] refused a blob larger than its limit.
    #[error("blob of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// Reading the request body failed; what arrived before the failure is kept and counted in the upload's offset.
    #[error("reading the upload body failed")]
    Body(#[source] BodyError),
    /// The location given to [`crate::BlobStore::open`] is not usable.
    #[error("invalid storage location `{location}`: {reason}")]
    InvalidLocation { location: String, reason: String },
    /// A local filesystem operation failed.
    #[error("{operation} `{}` failed", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An object-store operation failed.
    #[error("object store operation failed")]
    ObjectStore(#[from] object_store::Error),
    /// A blocking task panicked or was cancelled (a bug, or the runtime shutting down).
    #[error("storage task did not finish")]
    TaskFailed(#[source] tokio::task::JoinError),
}

impl StorageError {
    /// The distribution error code the registry answers with; internal failures map to `UNKNOWN` (500).
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::UploadUnknown(_) | StorageError::InvalidUploadId(_) => {
                ErrorCode::BlobUploadUnknown
            }
            StorageError::BlobUnknown(_) => ErrorCode::BlobUnknown,
            StorageError::DigestMismatch { .. } => ErrorCode::DigestInvalid,
            StorageError::OffsetMismatch { .. } | StorageError::RangeNotSatisfiable { .. } => {
                ErrorCode::RangeInvalid
            }
            StorageError::Body(_) => ErrorCode::BlobUploadInvalid,
            StorageError::TooLarge { .. } => ErrorCode::SizeInvalid,
            StorageError::InvalidLocation { .. }
            | StorageError::Io { .. }
            | StorageError::ObjectStore(_)
            | StorageError::TaskFailed(_) => ErrorCode::Unknown,
        }
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { operation, path, source }
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(error: tokio::task::JoinError) -> StorageError {
        StorageError::TaskFailed(error)
    }
}
