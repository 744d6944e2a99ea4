//! OCI types: digests, repository names, media types, manifest and index validation, distribution error codes. No IO.
//!
//! Everything here models a format defined by the OCI image spec, the OCI distribution spec (v1.1) or the
//! Docker token-auth spec, so the structs are serde by design. The crate does no IO and is not async; the HTTP
//! layer maps [`OciError::code`] and [`ErrorCode::http_status`] onto responses.
//!
//! **Architecture Invariant:** no IO, no axum/sqlx types.
//!
//! Map of the modules:
//! - [`digest`]: [`Digest`], [`Algorithm`] and the incremental [`DigestHasher`].
//! - [`name`]: [`RepositoryName`], [`Tag`] and [`Reference`] (tag or digest).
//! - [`media_types`]: media-type constants.
//! - [`descriptor`]: [`Descriptor`] and [`Platform`].
//! - [`manifest`]: [`ParsedManifest`] (image manifest, index, Docker schema2 manifest and list).
//! - [`platform`]: choosing the image manifest for a platform from an index.
//! - [`error_code`]: the distribution error-code registry and the `{"errors":[…]}` body.
//! - [`scope`]: Docker/ACR token scopes (`repository:name:pull,push`).

pub mod descriptor;
pub mod digest;
pub mod error_code;
pub mod manifest;
pub mod media_types;
pub mod name;
pub mod platform;
pub mod scope;

pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, DigestHasher};
pub use error_code::{ErrorBody, ErrorCode, ErrorEntry};
pub use manifest::{ManifestKind, ParsedManifest, MANIFEST_SIZE_LIMIT};
pub use name::{Reference, RepositoryName, Tag, REPOSITORY_NAME_MAX_LEN, TAG_MAX_LEN};
pub use platform::{select_platform_manifest, PlatformWanted};
pub use scope::{parse_scopes, Scope};

/// Everything that can be wrong with OCI input. Each variant maps to one distribution error code ([`OciError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The text is not a digest per the OCI image spec grammar, or its encoded part is wrong for its algorithm.
    #[error("invalid digest `{value}`: {reason}")]
    InvalidDigest { value: String, reason: &'static str },
    /// The digest is well formed but uses an algorithm other than `sha256` or `sha512`.
    #[error("unsupported digest algorithm `{0}`")]
    UnsupportedDigestAlgorithm(String),
    /// The repository name does not match the distribution grammar or is too long.
    #[error("invalid repository name `{value}`: {reason}")]
    InvalidRepositoryName { value: String, reason: &'static str },
    /// The tag does not match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    #[error("invalid tag `{0}`")]
    InvalidTag(String),
    /// The manifest is not valid JSON, lacks a required field, or is of an unsupported kind.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// The manifest is larger than [`MANIFEST_SIZE_LIMIT`].
    #[error("manifest of {size} bytes exceeds the limit of {limit} bytes")]
    ManifestTooLarge { size: usize, limit: usize },
    /// A token scope does not follow `type:name:actions`.
    #[error("invalid scope `{value}`: {reason}")]
    InvalidScope { value: String, reason: &'static str },
}

impl OciError {
    /// The distribution error code the registry answers with for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            OciError::InvalidDigest { .. } | OciError::UnsupportedDigestAlgorithm(_) => {
                ErrorCode::DigestInvalid
            }
            OciError::InvalidRepositoryName { .. } => ErrorCode::NameInvalid,
            OciError::InvalidTag(_) => ErrorCode::TagInvalid,
            OciError::ManifestInvalid(_) => ErrorCode::ManifestInvalid,
            // distribution answers an oversized manifest with MANIFEST_INVALID; the server may choose 413.
            OciError::ManifestTooLarge { .. } => ErrorCode::ManifestInvalid,
            // Scopes come from token requests, which have their own OAuth error vocabulary; this is the closest.
            OciError::InvalidScope { .. } => ErrorCode::Denied,
        }
    }
}
