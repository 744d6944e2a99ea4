//! Medians of the identity crate's hot paths; run with `cargo run --release -p berth-identity --example keyring_bench`.
//!
//! Pass `--argon2-table` to also time a few alternative argon2id parameter sets, for re-tuning
//! `secret::ARGON2_*` on other hardware.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, SaltString};
use berth_identity::secret::{ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST};
use berth_identity::{hash_secret, verify_secret, KeyRing, SigningKey, VerifyRules};
use serde_json::{json, Value};

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn report(name: &str, runs: usize, f: impl FnMut()) {
    let m = median(runs, f);
    println!("{name:<34} {:>10.3} ms  (median of {runs})", m.as_secs_f64() * 1e3);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = 1_700_000_000;
    let start = Instant::now();
    let keys = vec![SigningKey::generate(now - 100)?.retired(now - 10), SigningKey::generate(now)?];
    println!(
        "{:<34} {:>10.3} ms  (both keys, once)",
        "SigningKey::generate x2",
        start.elapsed().as_secs_f64() * 1e3
    );

    report("KeyRing::new (2 keys)", 50, || {
        KeyRing::new(keys.clone()).expect("keys load");
    });
    let ring = KeyRing::new(keys.clone())?;
    let claims = json!({"iss": "https://127.0.0.1:8443/t/v2.0", "aud": "https://127.0.0.1:8443",
        "sub": "00000000-0000-0000-0000-000000000001", "iat": now, "nbf": now, "exp": now + 3600,
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]});
    let rules = VerifyRules {
        issuers: vec!["https://127.0.0.1:8443/t/v2.0".into()],
        audiences: vec!["https://127.0.0.1:8443/.default".into()],
        leeway_secs: 60,
        now,
    };
    report("KeyRing::sign", 200, || {
        ring.sign(&claims).expect("signs");
    });
    let token = ring.sign(&claims)?;
    report("KeyRing::verify", 1000, || {
        ring.verify::<Value>(&token, &rules).expect("verifies");
    });
    report("KeyRing::jwks", 1000, || {
        std::hint::black_box(ring.jwks());
    });

    let secret = berth_identity::generate_client_secret();
    println!("argon2id m={ARGON2_M_COST_KIB} KiB, t={ARGON2_T_COST}, p={ARGON2_P_COST}");
    report("hash_secret", 30, || {
        hash_secret(&secret).expect("hashes");
    });
    let phc = hash_secret(&secret)?;
    report("verify_secret (right secret)", 30, || assert!(verify_secret(&secret, &phc)));
    report("verify_secret (wrong secret)", 30, || assert!(!verify_secret("wrong", &phc)));

    if std::env::args().any(|a| a == "--argon2-table") {
        for (m, t) in [
            (8 * 1024, 1),
            (8 * 1024, 2),
            (12 * 1024, 2),
            (16 * 1024, 2),
            (19 * 1024, 2),
            (32 * 1024, 1),
        ] {
            let params = argon2::Params::new(m, t, 1, None).map_err(|e| e.to_string())?;
            let argon2 =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            report(&format!("argon2id m={m} t={t} p=1"), 20, || {
                argon2.hash_password(secret.as_bytes(), &salt).expect("hashes");
            });
        }
    }
    Ok(())
}
