//! Principals' secrets, signing keys and tokens: hashing, JWT issue and verification. No IO.
//!
//! This crate is the cryptographic core of berth's identity provider (Entra-compatible
//! `/oauth2/v2.0/token`, JWKS) and of its registry token service (Docker/ACR token auth).
//! It does no IO and no async: the server loads key material from the database, hands it to
//! [`KeyRing::new`], and calls [`KeyRing::sign`] / [`KeyRing::verify`].
//!
//! - [`secret`]: client secrets (Azure style), argon2id hashing, random opaque tokens.
//! - [`keys`]: RSA signing keys, the [`KeyRing`] (rotation, JWKS, RS256 sign and verify).
//! - [`claims`]: claim sets of the tokens berth issues, and audience normalization.
//! - [`federation`]: external OIDC tokens presented as federated client assertions (JWKS, RS256/ES256).
//!
//! **Architecture Invariant:** no IO, no clock. Every time-dependent check takes `now` as an
//! argument so callers (and tests) control time.

pub mod claims;
mod error;
pub mod federation;
mod jwt;
pub mod keys;
pub mod secret;

pub use claims::{
    normalize_audience, EntraClaims, RegistryAccess, RegistryClaims, RegistryGrantType,
    RegistryPermissions,
};
pub use error::{IdentityError, TokenError};
pub use jwt::{decode_unverified_header, UnverifiedHeader, VerifyRules};
pub use keys::{KeyRing, SigningKey};
pub use secret::{generate_client_secret, hash_secret, random_token, verify_secret};
