//! RSA signing keys and the [`KeyRing`] that signs and verifies berth's RS256 tokens and
//! publishes them as a JWKS.
//!
//! Rotation works as in Entra: a new key is added and becomes the signing key (the newest key
//! with `retired_at == None`); the old key is retired but stays in the ring, so it keeps
//! verifying and stays in the JWKS until its last token has expired and the server drops it.
//!
//! Key ids are RFC 7638 JWK thumbprints (base64url of the SHA-256 of the canonical public JWK),
//! so a `kid` names exactly one public key and every node derives the same one.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::rngs::OsRng;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::jwt::{self, RS256};
pub use crate::jwt::{decode_unverified_header, UnverifiedHeader, VerifyRules};
use crate::{IdentityError, TokenError};

/// Modulus size of keys from [`SigningKey::generate`].
pub const RSA_KEY_BITS: usize = 2048;

/// Key sizes [`KeyRing::new`] accepts: what ring can sign with.
const MIN_KEY_BITS: usize = 2048;
const MAX_KEY_BITS: usize = 4096;

/// One signing key as stored in the database.
///
/// `Debug` never prints the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// RFC 7638 SHA-256 JWK thumbprint of the public key, base64url (43 characters).
    pub kid: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// When the key was created, unix seconds. The newest unretired key signs.
    pub created_at: i64,
    /// When the key stopped signing, unix seconds; it still verifies until removed.
    pub retired_at: Option<i64>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private_pem", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl SigningKey {
    /// Generates a fresh RSA-2048 key (e = 65537) from the operating system's RNG.
    ///
    /// Takes tens to hundreds of milliseconds: do it at rotation time, never per request.
    pub fn generate(now: i64) -> Result<SigningKey, IdentityError> {
        let generation_error =
            |e: &dyn fmt::Display| IdentityError::KeyGeneration { reason: e.to_string() };
        let private =
            RsaPrivateKey::new(&mut OsRng, RSA_KEY_BITS).map_err(|e| generation_error(&e))?;
        let pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| generation_error(&e))?;
        Ok(SigningKey {
            kid: jwk_thumbprint(&private.n().to_bytes_be(), &private.e().to_bytes_be()),
            private_pem: pem.to_string(),
            created_at: now,
            retired_at: None,
        })
    }

    /// This key, retired at `at`.
    pub fn retired(self, at: i64) -> SigningKey {
        SigningKey { retired_at: Some(at), ..self }
    }
}

/// RFC 7638 thumbprint of an RSA public key: base64url(SHA-256(`{"e":…,"kty":"RSA","n":…}`)),
/// with members in lexicographic order and no whitespace.
pub fn jwk_thumbprint(modulus: &[u8], exponent: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(exponent),
        URL_SAFE_NO_PAD.encode(modulus)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A key parsed once at load time, ready to sign and verify.
struct LoadedKey {
    kid: String,
    created_at: i64,
    retired_at: Option<i64>,
    /// PKCS#1 DER for ring, which parses it on every signature.
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// base64url of the big-endian modulus and exponent, for the JWKS.
    n: String,
    e: String,
}

impl LoadedKey {
    fn load(key: &SigningKey) -> Result<LoadedKey, IdentityError> {
        let invalid = |reason: String| IdentityError::InvalidKey { kid: key.kid.clone(), reason };
        // Parsing validates the key (the primes multiply to n, d inverts e).
        let private = RsaPrivateKey::from_pkcs8_pem(&key.private_pem)
            .map_err(|e| invalid(format!("not a pkcs#8 rsa private key: {e}")))?;
        let bits = private.size() * 8;
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(invalid(format!(
                "{bits}-bit modulus, expected {MIN_KEY_BITS} to {MAX_KEY_BITS}"
            )));
        }
        let modulus = private.n().to_bytes_be();
        let exponent = private.e().to_bytes_be();
        let thumbprint = jwk_thumbprint(&modulus, &exponent);
        if thumbprint != key.kid {
            return Err(invalid(format!("kid is not the key's thumbprint `{thumbprint}`")));
        }
        let pkcs1 =
            private.to_pkcs1_der().map_err(|e| invalid(format!("pkcs#1 encoding failed: {e}")))?;
        Ok(LoadedKey {
            kid: key.kid.clone(),
            created_at: key.created_at,
            retired_at: key.retired_at,
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&modulus, &exponent),
            n: URL_SAFE_NO_PAD.encode(&modulus),
            e: URL_SAFE_NO_PAD.encode(&exponent),
        })
    }
}

struct Ring {
    /// Newest first, so the JWKS lists the signing key first.
    keys: Vec<LoadedKey>,
    /// Index of the signing key in `keys`.
    active: usize,
}

/// The set of keys a node signs and verifies with: one active signing key plus any retired
/// keys whose tokens may still be live.
///
/// Cloning is cheap (an `Arc`); rebuild the ring with [`KeyRing::new`] after a rotation or when
/// [`KeyRing::verify`] reports [`TokenError::UnknownKey`].
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Ring>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_kid", &self.active_kid())
            .field("kids", &self.inner.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Loads keys from storage. The signing key is the newest (by `created_at`, then `kid`) with
    /// `retired_at == None`.
    ///
    /// Fails if a key is unusable (bad PEM, not 2048–4096 bits, `kid` not its thumbprint), if a
    /// `kid` repeats, or if no key is active. The active key signs a probe message so a key ring
    /// that loads is a key ring that signs.
    pub fn new(keys: Vec<SigningKey>) -> Result<KeyRing, IdentityError> {
        let mut loaded = keys.iter().map(LoadedKey::load).collect::<Result<Vec<_>, _>>()?;
        loaded.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.kid.cmp(&a.kid)));
        let mut seen = std::collections::HashSet::new();
        if let Some(duplicate) = loaded.iter().find(|k| !seen.insert(k.kid.as_str())) {
            return Err(IdentityError::DuplicateKey { kid: duplicate.kid.clone() });
        }
        let active =
            loaded.iter().position(|k| k.retired_at.is_none()).ok_or(IdentityError::NoActiveKey)?;
        // ring re-parses the key on every signature and is stricter than the rsa crate
        // (e.g. about the public exponent); find out now rather than on the first request.
        jsonwebtoken::crypto::sign(
            b"berth key ring probe",
            &loaded[active].encoding,
            Algorithm::RS256,
        )
        .map_err(|e| IdentityError::InvalidKey {
            kid: loaded[active].kid.clone(),
            reason: format!("cannot sign: {e}"),
        })?;
        Ok(KeyRing { inner: Arc::new(Ring { keys: loaded, active }) })
    }

    fn active(&self) -> &LoadedKey {
        &self.inner.keys[self.inner.active]
    }

    fn find(&self, kid: &str) -> Option<&LoadedKey> {
        self.inner.keys.iter().find(|k| k.kid == kid)
    }

    /// The `kid` new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active().kid
    }

    /// Whether a key with this `kid` (active or retired) is in the ring.
    pub fn contains(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }

    /// Every `kid` in the ring, newest first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.inner.keys.iter().map(|k| k.kid.as_str())
    }

    /// The public keys as a JWK Set, newest (the signing key) first:
    /// `{"keys":[{"kty":"RSA","use":"sig","kid":…,"n":…,"e":…,"alg":"RS256"}]}`.
    ///
    /// There is no `x5t`/`x5c`: berth's keys have no certificates, and no Azure client needs them.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .inner
            .keys
            .iter()
            .map(|k| json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e, "alg": RS256}))
            .collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` (which must serialize to a JSON object) with the active key:
    /// header `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, IdentityError> {
        let key = self.active();
        let payload = serde_json::to_vec(claims)
            .map_err(|e| IdentityError::InvalidClaims { reason: e.to_string() })?;
        // serde_json writes every map and struct as `{…}` and nothing else starts with `{`.
        if payload.first() != Some(&b'{') {
            return Err(IdentityError::InvalidClaims { reason: "not an object".to_owned() });
        }
        let header = json!({"typ": "JWT", "alg": RS256, "kid": key.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &key.encoding,
            Algorithm::RS256,
        )
        .map_err(|e| IdentityError::Signing { kid: key.kid.clone(), reason: e.to_string() })?;
        Ok(format!("{signing_input}.{signature}"))
    }

    /// Verifies an RS256 token signed by any key in the ring and returns its claims.
    ///
    /// Checks, in order: shape, `alg == RS256`, `kid` known, signature, `exp`, `nbf`, `iss`,
    /// `aud` (see [`VerifyRules`]); then deserializes the payload into `C`. Nothing about the
    /// payload is looked at before the signature is checked.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        rules: &VerifyRules,
    ) -> Result<C, TokenError> {
        let parts = jwt::split(token)?;
        let header = jwt::parse_header(parts.header)?;
        // Exact match: `none`, `HS256` (the key-confusion attack) and even `rs256` stop here.
        if header.alg != RS256 {
            return Err(TokenError::UnsupportedAlgorithm { alg: header.alg });
        }
        let kid = header.kid.ok_or_else(|| TokenError::malformed("header lacks `kid`"))?;
        let key = self.find(&kid).ok_or(TokenError::UnknownKey { kid })?;
        jwt::decode_signature(parts.signature)?;
        let valid = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signing_input.as_bytes(),
            &key.decoding,
            Algorithm::RS256,
        )
        .unwrap_or(false);
        if !valid {
            return Err(TokenError::BadSignature);
        }
        let claims = jwt::parse_payload(parts.payload)?;
        jwt::check_registered_claims(&claims, rules)?;
        serde_json::from_value(Value::Object(claims))
            .map_err(|e| TokenError::UnexpectedClaims { reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let modulus = URL_SAFE_NO_PAD.decode(n).unwrap();
        let exponent = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        assert_eq!(
            jwk_thumbprint(&modulus, &exponent),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn debug_redacts_private_key() {
        let key = SigningKey {
            kid: "k".into(),
            private_pem: "-----BEGIN PRIVATE KEY-----\nSECRET".into(),
            created_at: 1,
            retired_at: None,
        };
        let debug = format!("{key:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("<redacted>") && debug.contains("\"k\""), "{debug}");
    }

    #[test]
    fn garbage_pem_is_an_invalid_key() {
        let key = SigningKey {
            kid: "k".into(),
            private_pem: "nope".into(),
            created_at: 1,
            retired_at: None,
        };
        assert!(
            matches!(KeyRing::new(vec![key]), Err(IdentityError::InvalidKey { kid, .. }) if kid == "k")
        );
        assert!(matches!(KeyRing::new(vec![]), Err(IdentityError::NoActiveKey)));
    }
}
