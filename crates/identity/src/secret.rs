//! Client secrets and opaque random tokens: generation, argon2id hashing and verification.
//!
//! Client secrets look like Azure's (`abc8Q~` followed by 34 random characters, 40 in all) so
//! tools and people that recognise Azure secrets recognise berth's. Only the argon2id PHC string
//! is stored; the secret itself is shown once.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::{Rng as _, RngCore as _};

use crate::IdentityError;

/// Length of a secret from [`generate_client_secret`].
pub const CLIENT_SECRET_LEN: usize = 40;

/// The fixed marker after the 3-character hint, as in Azure-issued secrets.
const SECRET_MARKER: &str = "8Q~";

/// Length of the visible hint at the start of a secret (Azure's `passwordCredentials[].hint`).
pub const SECRET_HINT_LEN: usize = 3;

/// Characters of the hint: alphanumerics only, so a secret never starts with `-` (which CLIs
/// would take for a flag) or `~` (which shells expand).
const HINT_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Characters of the random body: RFC 3986 unreserved characters, the alphabet Azure uses.
/// They survive URLs and form bodies unescaped.
const BODY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// Argon2id memory cost in KiB. With [`ARGON2_T_COST`] and [`ARGON2_P_COST`] this costs about
/// 10 ms per hash or verification in a release build on the development machine (see the
/// `keyring_bench` example). Secrets are ~220 bits of randomness, so the cost is not what keeps
/// them safe; it only has to make a stolen database useless for guessing weak imported secrets
/// while keeping token requests cheap.
pub const ARGON2_M_COST_KIB: u32 = 12 * 1024;
/// Argon2id passes over memory.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes. One lane: the server verifies many requests concurrently already.
pub const ARGON2_P_COST: u32 = 1;

/// Upper bounds on the parameters [`verify_secret`] accepts from a stored hash, so a corrupted
/// or hostile row cannot make the server allocate gigabytes or spin for minutes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Generates a 40-character client secret in Azure's style: 3 alphanumerics, `8Q~`, then 34
/// characters from `[A-Za-z0-9-._~]`, all from the operating system's RNG (about 221 bits).
pub fn generate_client_secret() -> String {
    let mut rng = OsRng;
    let mut secret = String::with_capacity(CLIENT_SECRET_LEN);
    for _ in 0..SECRET_HINT_LEN {
        secret.push(char::from(HINT_ALPHABET[rng.gen_range(0..HINT_ALPHABET.len())]));
    }
    secret.push_str(SECRET_MARKER);
    while secret.len() < CLIENT_SECRET_LEN {
        secret.push(char::from(BODY_ALPHABET[rng.gen_range(0..BODY_ALPHABET.len())]));
    }
    secret
}

/// The first characters of a secret, which Azure stores and shows as the credential's `hint`.
pub fn secret_hint(secret: &str) -> String {
    secret.chars().take(SECRET_HINT_LEN).collect()
}

fn argon2id() -> Result<Argon2<'static>, IdentityError> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .map_err(|e| IdentityError::Hash { reason: e.to_string() })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a secret with argon2id and a fresh random salt, returning the PHC string
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) to store.
pub fn hash_secret(secret: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2id()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| IdentityError::Hash { reason: e.to_string() })?;
    Ok(hash.to_string())
}

/// Checks a secret against a PHC string from [`hash_secret`], in constant time.
///
/// Returns false for a wrong secret and for anything that is not an argon2id PHC string with
/// sane parameters (the parameters come from the stored hash, not from this build's constants,
/// so hashes made with older parameters keep verifying).
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok()
}

/// Returns `bytes` random bytes from the operating system's RNG as unpadded base64url text
/// (for ids, nonces, refresh-token handles and header values). 32 bytes give 43 characters.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_has_azure_shape() {
        for _ in 0..200 {
            let secret = generate_client_secret();
            assert_eq!(secret.len(), CLIENT_SECRET_LEN, "{secret}");
            assert_eq!(&secret[3..6], "8Q~", "{secret}");
            assert!(secret[..3].bytes().all(|b| b.is_ascii_alphanumeric()), "{secret}");
            assert!(secret[6..].bytes().all(|b| BODY_ALPHABET.contains(&b)), "{secret}");
        }
    }

    #[test]
    fn client_secrets_differ_and_use_the_whole_alphabet() {
        let secrets: Vec<String> = (0..200).map(|_| generate_client_secret()).collect();
        let mut unique = secrets.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), secrets.len());
        // 200 * 34 draws from 66 characters: each one is missing with probability ~1e-44.
        for &c in BODY_ALPHABET {
            assert!(
                secrets.iter().any(|s| s.as_bytes()[6..].contains(&c)),
                "never saw {}",
                c as char
            );
        }
    }

    #[test]
    fn hint_is_the_first_three_characters() {
        assert_eq!(secret_hint("abc8Q~rest"), "abc");
        assert_eq!(secret_hint("ab"), "ab");
    }

    #[test]
    fn hash_then_verify() {
        let secret = generate_client_secret();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=12288,t=2,p=1$"), "{phc}");
        assert!(verify_secret(&secret, &phc));
        assert!(!verify_secret("wrong", &phc));
        assert!(!verify_secret(&secret[..39], &phc));
        assert!(!verify_secret("", &phc));
    }

    #[test]
    fn hashes_are_salted() {
        let a = hash_secret("same").unwrap();
        let b = hash_secret("same").unwrap();
        assert_ne!(a, b);
        assert!(verify_secret("same", &a) && verify_secret("same", &b));
    }

    #[test]
    fn empty_secret_hashes_and_verifies() {
        let phc = hash_secret("").unwrap();
        assert!(verify_secret("", &phc));
        assert!(!verify_secret(" ", &phc));
    }

    #[test]
    fn garbage_hashes_are_rejected() {
        let phc = hash_secret("s3cret").unwrap();
        let tampered_digest = {
            let mut bytes = phc.clone().into_bytes();
            let last = bytes.len() - 1;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        };
        let argon2i = phc.replacen("$argon2id$", "$argon2i$", 1);
        let huge_memory = phc.replacen("m=12288", "m=4194304", 1);
        let many_passes = phc.replacen("t=2", "t=1000", 1);
        for bad in [
            "",
            "$",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=12288,t=2,p=1$",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$2b$12$abcdefghijklmnopqrstuuJ0D1vQ5sJ7eY3g1zKcZ0Qn1d8a6m2W",
            &tampered_digest,
            &argon2i,
            &huge_memory,
            &many_passes,
            &phc[..phc.len() - 5],
        ] {
            assert!(!verify_secret("s3cret", bad), "accepted {bad:?}");
        }
        // The untouched hash still verifies, so the rejections above are about the edits.
        assert!(verify_secret("s3cret", &phc));
    }

    #[test]
    fn hashes_with_other_parameters_still_verify() {
        // A hash made with different (older or newer) parameters is verified with its own.
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2.hash_password(b"older", &salt).unwrap().to_string();
        assert!(phc.contains("m=8192,t=3,p=1"), "{phc}");
        assert!(verify_secret("older", &phc));
        assert!(!verify_secret("newer", &phc));
    }

    #[test]
    fn random_tokens_are_base64url_of_the_requested_size() {
        assert_eq!(random_token(0), "");
        let token = random_token(32);
        assert_eq!(token.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(random_token(32), token);
    }
}
