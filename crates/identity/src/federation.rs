//! Workload identity federation: an external OIDC token (a Kubernetes service-account token, a CI job's token)
//! presented as a `client_assertion`, verified against its issuer's JWKS.
//!
//! [`Jwks::parse`] reads an issuer's public keys (RSA and P-256 EC); [`peek_claims`] reads `iss` without trusting
//! it, so the caller can pick the issuer's keys; [`verify_assertion`] checks, in order: shape, `alg` (RS256 or
//! ES256 only), the key (`kid`), the signature, `exp`/`nbf` with a leeway, and that `iss`, `sub` and `aud` are
//! present. Which issuer, subject and audience are trusted is the caller's decision (the federated credentials).
//! No IO and no clock: the caller passes the keys and the time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::jwt;
use crate::TokenError;

/// The algorithms an external assertion may be signed with.
pub const ACCEPTED_ALGORITHMS: &[&str] = &["RS256", "ES256"];

/// Why a JWKS document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not a JSON object with a `keys` array: {reason}")]
    Shape { reason: String },
    #[error("the JWKS has no usable signing key (RSA of 2048 bits or more, or EC P-256)")]
    NoUsableKey,
}

/// One public key of an issuer.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

/// The public signing keys of one external issuer.
#[derive(Clone, Default)]
pub struct Jwks {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("kids", &self.keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>())
            .finish()
    }
}

fn string_member<'a>(key: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    key.get(name).and_then(Value::as_str)
}

fn decoded_len(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(value).ok().map(|bytes| bytes.len())
}

/// One JWK as a verification key, or `None` when it is not one berth can use for signatures.
fn usable_key(jwk: &Map<String, Value>) -> Option<Key> {
    if string_member(jwk, "use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = string_member(jwk, "kid").map(str::to_owned);
    let declared = string_member(jwk, "alg");
    match string_member(jwk, "kty")? {
        "RSA" => {
            if declared.is_some_and(|a| a != "RS256") {
                return None;
            }
            let n = string_member(jwk, "n")?;
            let e = string_member(jwk, "e")?;
            // ring verifies RS256 with 2048-bit moduli and up; a leading zero byte does not count.
            let modulus = URL_SAFE_NO_PAD.decode(n).ok()?;
            let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 || decoded_len(e)? == 0 {
                return None;
            }
            let decoding = DecodingKey::from_rsa_components(n, e).ok()?;
            Some(Key { kid, algorithm: Algorithm::RS256, decoding })
        }
        "EC" => {
            if declared.is_some_and(|a| a != "ES256") || string_member(jwk, "crv")? != "P-256" {
                return None;
            }
            let x = string_member(jwk, "x")?;
            let y = string_member(jwk, "y")?;
            if decoded_len(x)? != 32 || decoded_len(y)? != 32 {
                return None;
            }
            let decoding = DecodingKey::from_ec_components(x, y).ok()?;
            Some(Key { kid, algorithm: Algorithm::ES256, decoding })
        }
        _ => None,
    }
}

impl Jwks {
    /// Parses a JWK Set (`{"keys":[...]}`). Keys that cannot verify signatures (encryption keys, other key types
    /// and curves, RSA under 2048 bits) are skipped; a set with no usable key is an error.
    pub fn parse(json: &[u8]) -> Result<Jwks, JwksError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| JwksError::Shape { reason: e.to_string() })?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::Shape { reason: "no `keys` array".to_owned() })?;
        let keys: Vec<Key> =
            keys.iter().filter_map(Value::as_object).filter_map(usable_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Jwks { keys })
    }

    /// Adds the keys of `other` (the same issuer configured twice).
    pub fn extend(&mut self, other: Jwks) {
        self.keys.extend(other.keys);
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The claims of a verified assertion that federation decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    /// `aud` as a list (a single string becomes one item).
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
}

/// Why an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a well-formed, properly signed JWT with the required claims.
    #[error(transparent)]
    Invalid(#[from] TokenError),
    /// Authentic, but `now` is outside `[nbf, exp)` widened by the leeway.
    #[error("the assertion is valid from {nbf:?} until {exp}, not at {now}")]
    OutsideValidity { now: i64, nbf: Option<i64>, exp: i64 },
}

/// What an assertion says about itself, read without verifying anything: for choosing the issuer's keys and for
/// error messages, never for a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
}

/// Reads `iss` (required), `sub` and `aud` of an assertion without checking its signature.
pub fn peek_claims(token: &str) -> Result<UnverifiedClaims, TokenError> {
    let parts = jwt::split(token)?;
    jwt::parse_header(parts.header)?;
    let claims = jwt::parse_payload(parts.payload)?;
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    Ok(UnverifiedClaims {
        iss: required_string(&claims, "iss")?,
        sub: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
        aud,
    })
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Ok(Some(v)),
            None => n.as_f64().map(|f| Some(f as i64)).ok_or_else(|| TokenError::Malformed {
                reason: format!("`{name}` is not a usable number"),
            }),
        },
        Some(_) => Err(TokenError::Malformed { reason: format!("`{name}` is not a number") }),
    }
}

fn required_string(claims: &Map<String, Value>, name: &'static str) -> Result<String, TokenError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None => Err(TokenError::MissingClaim { claim: name }),
        Some(_) => Err(TokenError::Malformed { reason: format!("`{name}` is not a string") }),
    }
}

/// Verifies an external assertion's signature with `jwks` and its validity period at `now` (± `leeway_secs`), and
/// returns its `iss`, `sub` and `aud`. Nothing in the payload is looked at before the signature has been checked.
pub fn verify_assertion(
    token: &str,
    jwks: &Jwks,
    now: i64,
    leeway_secs: i64,
) -> Result<AssertionClaims, AssertionError> {
    let parts = jwt::split(token)?;
    let header = jwt::parse_header(parts.header)?;
    let algorithm = match header.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        _ => return Err(TokenError::UnsupportedAlgorithm { alg: header.alg }.into()),
    };
    jwt::decode_signature(parts.signature)?;
    let candidates: Vec<&Key> = jwks
        .keys
        .iter()
        .filter(|k| k.algorithm == algorithm)
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    if candidates.is_empty() {
        let kid = header.kid.unwrap_or_default();
        return Err(TokenError::UnknownKey { kid }.into());
    }
    let valid = candidates.iter().any(|key| {
        jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signing_input.as_bytes(),
            &key.decoding,
            algorithm,
        )
        .unwrap_or(false)
    });
    if !valid {
        return Err(TokenError::BadSignature.into());
    }
    let claims = jwt::parse_payload(parts.payload)?;
    let exp = numeric(&claims, "exp")?.ok_or(TokenError::MissingClaim { claim: "exp" })?;
    let nbf = numeric(&claims, "nbf")?;
    let too_late = now >= exp.saturating_add(leeway_secs);
    let too_early = nbf.is_some_and(|nbf| now.saturating_add(leeway_secs) < nbf);
    if too_late || too_early {
        return Err(AssertionError::OutsideValidity { now, nbf, exp });
    }
    let aud = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim { claim: "aud" }.into()),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| TokenError::Malformed {
                    reason: "`aud` has a non-string item".to_owned(),
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TokenError::Malformed {
                reason: "`aud` is neither a string nor an array".to_owned(),
            }
            .into())
        }
    };
    Ok(AssertionClaims {
        iss: required_string(&claims, "iss")?,
        sub: required_string(&claims, "sub")?,
        aud,
        exp,
        nbf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyRing;
    use crate::SigningKey;
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    /// A P-256 test key (PKCS#8), made for these tests only, and its public coordinates.
    const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHgMfxatC/bLULSSa
qIE0qk17eCu1mRmKHC9J5kmycOChRANCAASG86OeMowWeYLCFy5ZxDcTg+vAnkks
TWEdI8Xy/ZiFzNwn1efkXAMhwxXioG9xMO9XaJK67HsDr/gL/6jfboHU
-----END PRIVATE KEY-----
";
    const EC_X: &str = "hvOjnjKMFnmCwhcuWcQ3E4PrwJ5JLE1hHSPF8v2Yhcw";
    const EC_Y: &str = "3CfV5-RcAyHDFeKgb3Ew71dokrrsewOv-Av_qN9ugdQ";

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn claims(now: i64) -> Value {
        json!({"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:sa",
               "aud": ["api://AzureADTokenExchange"], "iat": now, "nbf": now, "exp": now + 600})
    }

    fn rsa_issuer() -> (KeyRing, Jwks) {
        let ring = KeyRing::new(vec![SigningKey::generate(0).unwrap()]).unwrap();
        let jwks = Jwks::parse(ring.jwks().to_string().as_bytes()).unwrap();
        (ring, jwks)
    }

    fn sign_with(header: Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
        let input = format!("{}.{}", b64(&header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
        format!("{input}.{signature}")
    }

    #[test]
    fn rs256_assertion_verifies_and_yields_its_claims() {
        let (ring, jwks) = rsa_issuer();
        let token = ring.sign(&claims(1000)).unwrap();
        assert_eq!(
            peek_claims(&token).unwrap(),
            UnverifiedClaims {
                iss: "https://issuer.example".into(),
                sub: Some("system:serviceaccount:ns:sa".into()),
                aud: vec!["api://AzureADTokenExchange".into()],
            }
        );
        let verified = verify_assertion(&token, &jwks, 1000, 30).unwrap();
        assert_eq!(
            verified,
            AssertionClaims {
                iss: "https://issuer.example".into(),
                sub: "system:serviceaccount:ns:sa".into(),
                aud: vec!["api://AzureADTokenExchange".into()],
                exp: 1600,
                nbf: Some(1000),
            }
        );
    }

    #[test]
    fn time_range_is_checked_with_leeway() {
        let (ring, jwks) = rsa_issuer();
        let token = ring.sign(&claims(1000)).unwrap();
        assert!(verify_assertion(&token, &jwks, 1600 + 29, 30).is_ok());
        assert_eq!(
            verify_assertion(&token, &jwks, 1630, 30),
            Err(AssertionError::OutsideValidity { now: 1630, nbf: Some(1000), exp: 1600 })
        );
        assert!(verify_assertion(&token, &jwks, 970, 30).is_ok());
        assert!(matches!(
            verify_assertion(&token, &jwks, 969, 30),
            Err(AssertionError::OutsideValidity { .. })
        ));
        let mut no_exp = claims(1000);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verify_assertion(&ring.sign(&no_exp).unwrap(), &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::MissingClaim { claim: "exp" }))
        );
    }

    #[test]
    fn another_issuers_key_or_a_tampered_token_is_refused() {
        let (ring, _) = rsa_issuer();
        let (_, other_jwks) = rsa_issuer();
        let token = ring.sign(&claims(1000)).unwrap();
        // The other issuer's JWKS has a different kid.
        assert!(matches!(
            verify_assertion(&token, &other_jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::UnknownKey { .. }))
        ));
        let jwks = Jwks::parse(ring.jwks().to_string().as_bytes()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut changed = claims(1000);
        changed["sub"] = json!("system:serviceaccount:ns:admin");
        parts[1] = b64(&changed);
        assert_eq!(
            verify_assertion(&parts.join("."), &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::BadSignature))
        );
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let (_, jwks) = rsa_issuer();
        let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims(1000)));
        assert_eq!(
            verify_assertion(&none, &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::UnsupportedAlgorithm { alg: "none".into() }))
        );
        let hs = sign_with(
            json!({"alg": "HS256"}),
            &claims(1000),
            &EncodingKey::from_secret(b"k"),
            Algorithm::HS256,
        );
        assert!(matches!(
            verify_assertion(&hs, &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::UnsupportedAlgorithm { .. }))
        ));
        assert!(matches!(
            verify_assertion("not-a-jwt", &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::Malformed { .. }))
        ));
    }

    #[test]
    fn es256_assertion_verifies_only_with_its_key() {
        let key = EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap();
        let jwks = Jwks::parse(
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
                             "x": EC_X, "y": EC_Y}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let token = sign_with(
            json!({"alg": "ES256", "kid": "ec1", "typ": "JWT"}),
            &claims(1000),
            &key,
            Algorithm::ES256,
        );
        assert_eq!(
            verify_assertion(&token, &jwks, 1000, 30).unwrap().sub,
            "system:serviceaccount:ns:sa"
        );
        // The same signature presented as RS256 finds no RSA key.
        let parts: Vec<&str> = token.split('.').collect();
        let as_rs =
            format!("{}.{}.{}", b64(&json!({"alg": "RS256", "kid": "ec1"})), parts[1], parts[2]);
        assert!(matches!(
            verify_assertion(&as_rs, &jwks, 1000, 30),
            Err(AssertionError::Invalid(TokenError::UnknownKey { .. }))
        ));
    }

    #[test]
    fn unusable_jwks_are_errors_and_unusable_keys_are_skipped() {
        assert!(matches!(Jwks::parse(b"[]"), Err(JwksError::Shape { .. })));
        assert!(matches!(Jwks::parse(b"not json"), Err(JwksError::Shape { .. })));
        assert_eq!(Jwks::parse(br#"{"keys":[]}"#).unwrap_err(), JwksError::NoUsableKey);
        let (ring, _) = rsa_issuer();
        let mut set = ring.jwks();
        let good = set["keys"][0].clone();
        let mut encryption = good.clone();
        encryption["use"] = json!("enc");
        let short = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"});
        let other_curve = json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        set["keys"] = json!([encryption, short, other_curve, {"kty": "oct", "k": "AA"}]);
        assert_eq!(Jwks::parse(set.to_string().as_bytes()).unwrap_err(), JwksError::NoUsableKey);
        set["keys"].as_array_mut().unwrap().push(good);
        assert_eq!(Jwks::parse(set.to_string().as_bytes()).unwrap().len(), 1);
    }
}
