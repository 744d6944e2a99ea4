//! Forged and tampered tokens, built by hand from base64 and JSON: each must fail with its own error.

use berth_identity::{KeyRing, TokenError};
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

use crate::common::*;

fn verify(token: &str) -> Result<Value, TokenError> {
    ring().verify::<Value>(token, &rules())
}

fn hmac(input: &str, secret: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_secret(secret), alg).unwrap()
}

/// Signs `input` with a key's RSA private key, whatever `kid` the header claims.
fn rsa_sign(input: &str, key: &berth_identity::SigningKey) -> String {
    let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap();
    jsonwebtoken::crypto::sign(input.as_bytes(), &encoding, Algorithm::RS256).unwrap()
}

#[test]
fn control_a_hand_built_rs256_token_verifies() {
    // Proves the forging helpers build tokens the ring accepts when nothing is wrong, so the
    // rejections below are about the one thing each test changes.
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": ring().active_kid()});
    let input = signing_input(&header, &claims());
    let token = format!("{input}.{}", rsa_sign(&input, &keys()[0]));
    assert_eq!(verify(&token).unwrap(), claims());
}

#[test]
fn alg_none_is_rejected() {
    let kid = ring().active_kid();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in
            [json!({"alg": alg, "typ": "JWT"}), json!({"alg": alg, "typ": "JWT", "kid": kid})]
        {
            let input = signing_input(&header, &claims());
            for token in [format!("{input}."), format!("{input}.c2ln")] {
                assert_eq!(
                    verify(&token),
                    Err(TokenError::UnsupportedAlgorithm { alg: alg.to_owned() }),
                    "{header}"
                );
            }
        }
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_rejected() {
    // The classic confusion attack: a verifier that lets the token pick the algorithm would
    // check this HMAC with the public key as the secret, and the attacker knows the public key.
    let private = rsa_private(&keys()[0]);
    let public = rsa::RsaPublicKey::from(&private);
    let secrets: Vec<Vec<u8>> = vec![
        public.to_public_key_pem(LineEnding::LF).unwrap().into_bytes(),
        public.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes(),
        public.to_public_key_der().unwrap().as_bytes().to_vec(),
        public.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        public.n().to_bytes_be(),
        serde_json::to_vec(&ring().jwks()["keys"][0]).unwrap(),
    ];
    for (alg_name, alg) in
        [("HS256", Algorithm::HS256), ("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)]
    {
        for secret in &secrets {
            let header = json!({"alg": alg_name, "typ": "JWT", "kid": ring().active_kid()});
            let input = signing_input(&header, &claims());
            let token = format!("{input}.{}", hmac(&input, secret, alg));
            assert_eq!(
                verify(&token),
                Err(TokenError::UnsupportedAlgorithm { alg: alg_name.to_owned() })
            );
        }
    }
}

#[test]
fn other_algorithm_names_are_rejected() {
    let input_for =
        |alg: &str| signing_input(&json!({"alg": alg, "kid": ring().active_kid()}), &claims());
    for alg in ["rs256", "RS384", "RS512", "PS256", "ES256", "EdDSA", "RS256 ", ""] {
        let input = input_for(alg);
        // A genuine RS256 signature over the header that names the other algorithm.
        let token = format!("{input}.{}", rsa_sign(&input, &keys()[0]));
        assert_eq!(verify(&token), Err(TokenError::UnsupportedAlgorithm { alg: alg.to_owned() }));
    }
}

#[test]
fn unknown_kid_is_reported_with_the_kid() {
    // Signed by a key the ring does not hold (e.g. another node rotated).
    let stranger = KeyRing::new(vec![keys()[1].clone()]).unwrap();
    let token = stranger.sign(&claims()).unwrap();
    assert_eq!(verify(&token), Err(TokenError::UnknownKey { kid: keys()[1].kid.clone() }));

    let header = json!({"alg": "RS256", "kid": "no-such-key"});
    let input = signing_input(&header, &claims());
    let token = format!("{input}.{}", rsa_sign(&input, &keys()[0]));
    assert_eq!(verify(&token), Err(TokenError::UnknownKey { kid: "no-such-key".into() }));
}

#[test]
fn missing_kid_is_malformed() {
    let input = signing_input(&json!({"alg": "RS256", "typ": "JWT"}), &claims());
    let token = format!("{input}.{}", rsa_sign(&input, &keys()[0]));
    assert!(matches!(verify(&token), Err(TokenError::Malformed { .. })));
}

#[test]
fn another_key_with_the_same_kid_is_a_bad_signature() {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": keys()[0].kid});
    let input = signing_input(&header, &claims());
    let token = format!("{input}.{}", rsa_sign(&input, &keys()[1]));
    assert_eq!(verify(&token), Err(TokenError::BadSignature));
}

#[test]
fn payload_tampered_after_signing_is_a_bad_signature() {
    let token = ring().sign(&claims()).unwrap();
    let [header, _, signature] = segments(&token);
    let mut forged = claims();
    forged["sub"] = json!("admin");
    forged["exp"] = json!(NOW + 10 * 365 * 86400);
    let tampered = format!("{header}.{}.{signature}", b64_json(&forged));
    assert_eq!(verify(&tampered), Err(TokenError::BadSignature));
}

#[test]
fn header_tampered_after_signing_is_a_bad_signature() {
    let token = ring().sign(&claims()).unwrap();
    let [_, payload, signature] = segments(&token);
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": ring().active_kid(), "x": 1});
    let tampered = format!("{}.{payload}.{signature}", b64_json(&header));
    assert_eq!(verify(&tampered), Err(TokenError::BadSignature));
}

#[test]
fn tampered_signatures_are_rejected() {
    let token = ring().sign(&claims()).unwrap();
    let [header, payload, signature] = segments(&token);
    let mut bytes = base64_decode(signature);
    bytes[100] ^= 0x01;
    let flipped = format!("{header}.{payload}.{}", b64(&bytes));
    assert_eq!(verify(&flipped), Err(TokenError::BadSignature));

    let truncated = format!("{header}.{payload}.{}", b64(&bytes[..255]));
    assert_eq!(verify(&truncated), Err(TokenError::BadSignature));
    let empty = format!("{header}.{payload}.");
    assert_eq!(verify(&empty), Err(TokenError::BadSignature));
    // The signature of another token from the same key does not transfer.
    let mut other_claims = claims();
    other_claims["sub"] = json!("someone-else");
    let other = ring().sign(&other_claims).unwrap();
    let swapped = format!("{header}.{payload}.{}", segments(&other)[2]);
    assert_eq!(verify(&swapped), Err(TokenError::BadSignature));
}

fn base64_decode(segment: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()
}

#[test]
fn malformed_tokens() {
    let good = ring().sign(&claims()).unwrap();
    let [header, payload, signature] = segments(&good);
    for bad in [
        String::new(),
        "Bearer".to_owned(),
        format!("Bearer {good}"),
        format!("{good} "),
        format!("{good}."),
        format!("{header}.{payload}"),
        format!("{header}..{signature}"),
        format!(".{payload}.{signature}"),
        format!("{header}.{payload}.{signature}!"),
        format!("{header}.{payload}=.{signature}"),
        format!("{}.{payload}.{signature}", b64("not json")),
        format!("{}.{payload}.{signature}", b64_json(&json!(["RS256"]))),
    ] {
        assert!(
            matches!(
                verify(&bad),
                Err(TokenError::Malformed { .. }) | Err(TokenError::BadSignature)
            ),
            "{bad:?} gave {:?}",
            verify(&bad)
        );
    }
    // Shape problems are Malformed specifically (not a signature question).
    assert!(matches!(verify(""), Err(TokenError::Malformed { .. })));
    assert!(matches!(verify(&format!("{header}.{payload}")), Err(TokenError::Malformed { .. })));
    assert!(matches!(
        verify(&format!("{header}.{payload}.{signature}!")),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn a_validly_signed_non_object_payload_is_malformed() {
    let header = json!({"alg": "RS256", "kid": ring().active_kid()});
    for payload in [json!([1, 2]), json!("claims"), json!(null)] {
        let input = signing_input(&header, &payload);
        let token = format!("{input}.{}", rsa_sign(&input, &keys()[0]));
        assert!(matches!(verify(&token), Err(TokenError::Malformed { .. })), "{payload}");
    }
}
