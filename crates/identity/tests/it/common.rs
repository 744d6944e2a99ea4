//! Shared fixtures: RSA keys generated once per test binary, rules, and hand-built tokens.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_identity::{KeyRing, SigningKey, VerifyRules};
use rsa::pkcs8::DecodePrivateKey as _;
use serde_json::{json, Value};

pub const NOW: i64 = 1_700_000_000;
pub const ISSUER: &str = "https://127.0.0.1:8443/tenant/v2.0";
pub const AUDIENCE: &str = "https://127.0.0.1:8443";

/// Three keys, generated once (RSA key generation is the slow part of these tests).
/// Key `i` was created at `NOW - 1000 + i`.
pub fn keys() -> &'static [SigningKey; 3] {
    static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [0, 1, 2].map(|i| SigningKey::generate(NOW - 1000 + i).expect("rsa key generation"))
    })
}

/// A ring whose only (active) key is `keys()[0]`.
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::new(vec![keys()[0].clone()]).expect("loading key 0"))
}

pub fn rules() -> VerifyRules {
    VerifyRules {
        issuers: vec![ISSUER.to_owned()],
        audiences: vec![format!("{AUDIENCE}/.default")],
        leeway_secs: 30,
        now: NOW,
    }
}

/// Valid claims for `rules()`: issued a minute ago, expiring in an hour.
pub fn claims() -> Value {
    json!({"iss": ISSUER, "aud": format!("{AUDIENCE}/"), "sub": "principal-1",
           "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3600})
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(value: &Value) -> String {
    b64(value.to_string())
}

/// `base64url(header).base64url(payload)`, the part a JWS signature covers.
pub fn signing_input(header: &Value, payload: &Value) -> String {
    format!("{}.{}", b64_json(header), b64_json(payload))
}

/// Splits a token into its three segments.
pub fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    [parts[0], parts[1], parts[2]]
}

/// The RSA private key behind a `SigningKey`, for forging with a raw signing primitive.
pub fn rsa_private(key: &SigningKey) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(&key.private_pem).expect("fixture key parses")
}
