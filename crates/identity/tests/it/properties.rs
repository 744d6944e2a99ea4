//! Property tests: verification never panics and never accepts anything it did not sign.

use berth_identity::TokenError;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

fn verify(token: &str) -> Result<Value, TokenError> {
    ring().verify::<Value>(token, &rules())
}

/// A genuine token, signed once.
fn genuine() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| ring().sign(&claims()).unwrap())
}

proptest! {
    #[test]
    fn arbitrary_strings_are_rejected(token in "\\PC*") {
        prop_assert!(verify(&token).is_err());
    }

    #[test]
    fn arbitrary_dotted_text_is_rejected(token in "[A-Za-z0-9_\\-]{0,60}(\\.[A-Za-z0-9_\\-]{0,60}){0,4}") {
        prop_assert!(verify(&token).is_err());
    }

    #[test]
    fn arbitrary_segments_are_rejected(
        header in proptest::collection::vec(any::<u8>(), 0..80),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(verify(&token).is_err());
    }

    #[test]
    fn known_kid_with_any_payload_and_signature_is_a_bad_signature(
        payload in proptest::collection::vec(any::<u8>(), 1..200),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let header = json!({"alg": "RS256", "kid": ring().active_kid()});
        let token = format!("{}.{}.{}", b64_json(&header), b64(&payload), b64(&signature));
        prop_assert_eq!(verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn any_single_character_change_is_rejected(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_\\-.]") {
        let token = genuine();
        let at = index.index(token.len());
        let replacement = replacement.as_bytes()[0];
        prop_assume!(token.as_bytes()[at] != replacement);
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = replacement;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(&mutated).is_err(), "accepted {}", mutated);
    }
}

#[test]
fn the_genuine_token_used_above_verifies() {
    assert_eq!(verify(genuine()).unwrap(), claims());
}
