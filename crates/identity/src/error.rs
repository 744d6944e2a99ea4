//! Error types: [`IdentityError`] for key and secret handling, [`TokenError`] for rejected tokens.

/// A failure while generating, hashing, loading keys or signing.
///
/// These are server-side faults (bad key material in the database, an RNG failure), never the
/// result of a caller presenting a bad token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Argon2 refused to hash (it only does so for out-of-range parameters or salts).
    #[error("hashing the secret failed: {reason}")]
    Hash { reason: String },
    /// RSA key generation or PEM encoding failed.
    #[error("generating an rsa signing key failed: {reason}")]
    KeyGeneration { reason: String },
    /// A stored signing key cannot be used: bad PEM, unsupported size, or a `kid` that is not
    /// the key's thumbprint.
    #[error("signing key `{kid}` is unusable: {reason}")]
    InvalidKey { kid: String, reason: String },
    /// Two keys handed to [`crate::KeyRing::new`] share a `kid`.
    #[error("signing key `{kid}` appears more than once")]
    DuplicateKey { kid: String },
    /// Every key handed to [`crate::KeyRing::new`] is retired (or there are none).
    #[error("no active signing key: every key is retired")]
    NoActiveKey,
    /// The claims did not serialize to a JSON object, which a JWT payload must be.
    #[error("token claims must serialize to a json object: {reason}")]
    InvalidClaims { reason: String },
    /// The RSA signature operation failed.
    #[error("signing the token with key `{kid}` failed: {reason}")]
    Signing { kid: String, reason: String },
}

/// Why a presented token was rejected.
///
/// Each variant is a distinct reason so the server can log precisely, answer with the right
/// error body, and react to [`TokenError::UnknownKey`] by reloading keys from the database
/// (another node may have rotated) and retrying once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS, not base64url, not JSON, or a registered claim has the wrong type.
    #[error("token is malformed: {reason}")]
    Malformed { reason: String },
    /// The header's `alg` is anything but `RS256` (including `none` and every HMAC variant).
    #[error("token algorithm `{alg}` is not accepted, only `RS256` is")]
    UnsupportedAlgorithm { alg: String },
    /// No key in the ring has the header's `kid`.
    #[error("token signing key `{kid}` is unknown")]
    UnknownKey { kid: String },
    /// The signature does not match the header and payload under the named key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `now` is at or past `exp` plus the leeway.
    #[error("token expired at {exp}")]
    Expired { exp: i64 },
    /// `now` plus the leeway is before `nbf`.
    #[error("token is not valid before {nbf}")]
    NotYetValid { nbf: i64 },
    /// `iss` is not one of the accepted issuers.
    #[error("token issuer `{iss}` is not accepted")]
    WrongIssuer { iss: String },
    /// No `aud` value matches an accepted audience after normalization.
    #[error("token audience {aud:?} is not accepted")]
    WrongAudience { aud: Vec<String> },
    /// A claim the verifier requires (`exp`, `iss`, `aud`) is absent.
    #[error("token lacks the `{claim}` claim")]
    MissingClaim { claim: &'static str },
    /// The token is authentic and current, but its claims do not fit the requested type.
    #[error("token claims do not have the expected shape: {reason}")]
    UnexpectedClaims { reason: String },
}

impl TokenError {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        TokenError::Malformed { reason: reason.into() }
    }
}
