//! Key rotation and key ring loading: active-key choice, retired keys, reload on unknown kid.

use berth_identity::{IdentityError, KeyRing, SigningKey, TokenError};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::Value;

use crate::common::*;

fn kids_in_jwks(ring: &KeyRing) -> Vec<String> {
    ring.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn retiring_a_key_keeps_its_tokens_valid() {
    let [a, b, _] = keys().clone();
    let before = KeyRing::new(vec![a.clone()]).unwrap();
    let old_token = before.sign(&claims()).unwrap();

    let after = KeyRing::new(vec![a.clone().retired(NOW - 10), b.clone()]).unwrap();
    assert_eq!(after.active_kid(), b.kid);
    assert!(after.contains(&a.kid) && after.contains(&b.kid));
    assert_eq!(kids_in_jwks(&after), vec![b.kid.clone(), a.kid.clone()]);
    assert_eq!(after.kids().collect::<Vec<_>>(), vec![b.kid.as_str(), a.kid.as_str()]);

    // The old token still verifies after rotation.
    assert_eq!(after.verify::<Value>(&old_token, &rules()).unwrap(), claims());
    // New tokens carry the new kid and verify on the new ring...
    let new_token = after.sign(&claims()).unwrap();
    let header = berth_identity::decode_unverified_header(&new_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(b.kid.as_str()));
    assert!(after.verify::<Value>(&new_token, &rules()).is_ok());
    // ...and a node that has not reloaded yet says which key it is missing.
    assert_eq!(
        before.verify::<Value>(&new_token, &rules()),
        Err(TokenError::UnknownKey { kid: b.kid.clone() })
    );

    // Once the retired key is dropped, its tokens stop verifying.
    let pruned = KeyRing::new(vec![b.clone()]).unwrap();
    assert_eq!(
        pruned.verify::<Value>(&old_token, &rules()),
        Err(TokenError::UnknownKey { kid: a.kid })
    );
    assert_eq!(kids_in_jwks(&pruned), vec![b.kid]);
}

#[test]
fn the_newest_unretired_key_signs() {
    let [a, b, c] = keys().clone(); // created in that order
    for order in [
        vec![a.clone(), b.clone(), c.clone()],
        vec![c.clone(), a.clone(), b.clone()],
        vec![b.clone(), c.clone(), a.clone()],
    ] {
        assert_eq!(KeyRing::new(order).unwrap().active_kid(), c.kid);
    }
    // A retired key never signs, even when it is the newest.
    let ring = KeyRing::new(vec![a.clone(), b.clone(), c.clone().retired(NOW)]).unwrap();
    assert_eq!(ring.active_kid(), b.kid);
    // Equal creation times are broken by kid, so every node picks the same key.
    let tied = |x: &SigningKey| SigningKey { created_at: NOW, ..x.clone() };
    let first = KeyRing::new(vec![tied(&a), tied(&b)]).unwrap();
    let second = KeyRing::new(vec![tied(&b), tied(&a)]).unwrap();
    assert_eq!(first.active_kid(), second.active_kid());
    assert_eq!(first.active_kid(), a.kid.as_str().max(b.kid.as_str()));
}

#[test]
fn loading_rejects_bad_rings() {
    let [a, b, _] = keys().clone();
    assert_eq!(KeyRing::new(vec![]).unwrap_err(), IdentityError::NoActiveKey);
    assert_eq!(
        KeyRing::new(vec![a.clone().retired(NOW), b.clone().retired(NOW)]).unwrap_err(),
        IdentityError::NoActiveKey
    );
    assert_eq!(
        KeyRing::new(vec![a.clone(), b.clone(), a.clone().retired(NOW)]).unwrap_err(),
        IdentityError::DuplicateKey { kid: a.kid.clone() }
    );
    // A kid that is not the key's thumbprint (e.g. swapped rows) is refused.
    let swapped = SigningKey { kid: b.kid.clone(), ..a.clone() };
    assert!(matches!(
        KeyRing::new(vec![swapped]),
        Err(IdentityError::InvalidKey { kid, reason }) if kid == b.kid && reason.contains("thumbprint")
    ));
    let garbage = SigningKey {
        private_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        ..a.clone()
    };
    assert!(matches!(KeyRing::new(vec![garbage]), Err(IdentityError::InvalidKey { .. })));
    // A bad retired key fails the load too: a ring must be able to verify everything it lists.
    let bad_retired = SigningKey { private_pem: "junk".into(), ..b.clone().retired(NOW) };
    assert!(matches!(
        KeyRing::new(vec![a.clone(), bad_retired]),
        Err(IdentityError::InvalidKey { .. })
    ));
}

#[test]
fn pkcs1_pem_is_not_accepted() {
    let private = rsa_private(&keys()[0]);
    let pkcs1 = SigningKey {
        private_pem: private.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
        ..keys()[0].clone()
    };
    assert!(matches!(KeyRing::new(vec![pkcs1]), Err(IdentityError::InvalidKey { .. })));
}

#[test]
fn small_keys_are_refused() {
    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let key = SigningKey {
        kid: berth_identity::keys::jwk_thumbprint(
            &small.n().to_bytes_be(),
            &small.e().to_bytes_be(),
        ),
        private_pem: small.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        created_at: NOW,
        retired_at: None,
    };
    assert!(matches!(
        KeyRing::new(vec![key]),
        Err(IdentityError::InvalidKey { reason, .. }) if reason.contains("1024-bit")
    ));
}

#[test]
fn generated_keys_are_pkcs8_rsa_2048_with_thumbprint_kids() {
    let key = &keys()[0];
    assert!(
        key.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{}",
        &key.private_pem[..40]
    );
    assert_eq!(key.kid.len(), 43);
    assert_eq!(key.created_at, NOW - 1000);
    assert_eq!(key.retired_at, None);
    let private = rsa_private(key);
    assert_eq!(private.size() * 8, 2048);
    assert_eq!(private.e().to_bytes_be(), vec![1, 0, 1]);
    assert_ne!(keys()[0].kid, keys()[1].kid);
}
