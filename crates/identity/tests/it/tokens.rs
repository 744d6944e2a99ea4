//! Signing and verifying genuine tokens: round trips, header shape, claim checks, JWKS interop.

use berth_identity::claims::{ENTRA_VERSION_1, IDTYP_APP, REGISTRY_TOKEN_VERSION};
use berth_identity::{
    decode_unverified_header, EntraClaims, IdentityError, RegistryAccess, RegistryClaims,
    RegistryGrantType, TokenError, UnverifiedHeader, VerifyRules,
};
use serde_json::{json, Value};

use crate::common::*;

fn entra_claims() -> EntraClaims {
    EntraClaims {
        aud: "https://management.azure.com/".into(),
        iss: "https://sts.windows.net/11111111-1111-1111-1111-111111111111/".into(),
        iat: NOW - 5,
        nbf: NOW - 5,
        exp: NOW + 3599,
        oid: "22222222-2222-2222-2222-222222222222".into(),
        tid: "11111111-1111-1111-1111-111111111111".into(),
        sub: "22222222-2222-2222-2222-222222222222".into(),
        appid: Some("33333333-3333-3333-3333-333333333333".into()),
        azp: None,
        idtyp: IDTYP_APP.into(),
        ver: ENTRA_VERSION_1.into(),
        uti: berth_identity::random_token(16),
        xms_mirid: Some("/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1".into()),
        roles: vec![],
    }
}

#[test]
fn entra_token_round_trip() {
    let claims = entra_claims();
    let token = ring().sign(&claims).unwrap();
    let rules = VerifyRules {
        issuers: vec![claims.iss.clone()],
        audiences: vec!["https://management.azure.com/.default".into()],
        leeway_secs: 0,
        now: NOW,
    };
    let back: EntraClaims = ring().verify(&token, &rules).unwrap();
    assert_eq!(back, claims);
}

#[test]
fn registry_token_round_trip() {
    let claims = RegistryClaims {
        jti: berth_identity::random_token(16),
        sub: "22222222-2222-2222-2222-222222222222".into(),
        iss: "Azure Container Registry".into(),
        aud: "127.0.0.1:8443".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 300,
        version: REGISTRY_TOKEN_VERSION.into(),
        grant_type: RegistryGrantType::AccessToken,
        tenant: Some("11111111-1111-1111-1111-111111111111".into()),
        oid: Some("22222222-2222-2222-2222-222222222222".into()),
        access: vec![RegistryAccess {
            r#type: "repository".into(),
            name: "samalba/my-app".into(),
            actions: vec!["pull".into(), "push".into()],
        }],
        permissions: None,
        roles: vec![],
    };
    let token = ring().sign(&claims).unwrap();
    let rules = VerifyRules {
        issuers: vec!["Azure Container Registry".into()],
        audiences: vec!["127.0.0.1:8443".into()],
        leeway_secs: 0,
        now: NOW + 299,
    };
    assert_eq!(ring().verify::<RegistryClaims>(&token, &rules).unwrap(), claims);
    // The same token read as raw JSON has ACR's wire shape.
    let raw: Value = ring().verify(&token, &rules).unwrap();
    assert_eq!(
        raw["access"],
        json!([{"type":"repository","name":"samalba/my-app","actions":["pull","push"]}])
    );
    assert_eq!(raw["grant_type"], json!("access_token"));
}

#[test]
fn header_names_the_active_key() {
    let token = ring().sign(&claims()).unwrap();
    let [header, _, _] = segments(&token);
    let decoded: Value = serde_json::from_slice(&base64_decode(header)).unwrap();
    assert_eq!(decoded, json!({"typ": "JWT", "alg": "RS256", "kid": keys()[0].kid}));
    assert_eq!(
        decode_unverified_header(&token).unwrap(),
        UnverifiedHeader {
            alg: "RS256".into(),
            kid: Some(keys()[0].kid.clone()),
            typ: Some("JWT".into())
        }
    );
    assert!(matches!(decode_unverified_header("x.y"), Err(TokenError::Malformed { .. })));
}

fn base64_decode(segment: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()
}

fn verify_at(claims: &Value, now: i64) -> Result<Value, TokenError> {
    let token = ring().sign(claims).unwrap();
    ring().verify(&token, &VerifyRules { now, ..rules() })
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let claims = claims(); // nbf = NOW - 60, exp = NOW + 3600, leeway 30
    assert!(verify_at(&claims, NOW + 3600 + 29).is_ok());
    assert_eq!(verify_at(&claims, NOW + 3600 + 30), Err(TokenError::Expired { exp: NOW + 3600 }));
    assert!(verify_at(&claims, NOW - 60 - 30).is_ok());
    assert_eq!(verify_at(&claims, NOW - 60 - 31), Err(TokenError::NotYetValid { nbf: NOW - 60 }));
}

#[test]
fn wrong_issuer() {
    let mut claims = claims();
    claims["iss"] = json!("https://127.0.0.1:8443/other-tenant/v2.0");
    assert_eq!(
        verify_at(&claims, NOW),
        Err(TokenError::WrongIssuer { iss: "https://127.0.0.1:8443/other-tenant/v2.0".into() })
    );
}

#[test]
fn wrong_audience() {
    let mut claims = claims();
    claims["aud"] = json!("https://127.0.0.1:9443");
    assert_eq!(
        verify_at(&claims, NOW),
        Err(TokenError::WrongAudience { aud: vec!["https://127.0.0.1:9443".into()] })
    );
    // An array is fine when one member matches, after normalization.
    claims["aud"] = json!(["https://127.0.0.1:9443", "HTTPS://127.0.0.1:8443//.default"]);
    assert!(verify_at(&claims, NOW).is_ok());
}

#[test]
fn missing_exp_iss_aud() {
    for claim in ["exp", "iss", "aud"] {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(claim);
        assert_eq!(verify_at(&claims, NOW), Err(TokenError::MissingClaim { claim }));
    }
    // `nbf` is optional.
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("nbf");
    assert!(verify_at(&claims, NOW).is_ok());
}

#[test]
fn claims_of_another_shape_are_unexpected() {
    let token = ring().sign(&claims()).unwrap();
    assert!(matches!(
        ring().verify::<EntraClaims>(&token, &rules()),
        Err(TokenError::UnexpectedClaims { .. })
    ));
}

#[test]
fn signing_requires_an_object() {
    for claims in [json!([1]), json!("x"), json!(null), json!(5)] {
        assert!(
            matches!(ring().sign(&claims), Err(IdentityError::InvalidClaims { .. })),
            "{claims}"
        );
    }
    assert!(ring().sign(&json!({})).is_ok());
}

#[test]
fn jwks_lets_a_standard_verifier_check_our_tokens() {
    // Another JWT implementation, given only the JWKS, accepts berth's token.
    let jwks = ring().jwks();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(jwk["kid"], keys()[0].kid.as_str());
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false; // fixed NOW in the past; expiry is tested above
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[format!("{AUDIENCE}/")]);
    let token = ring().sign(&claims()).unwrap();
    let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
    assert_eq!(data.claims, claims());
    assert_eq!(data.header.kid.as_deref(), Some(keys()[0].kid.as_str()));

    // And the JWK's thumbprint is its kid (RFC 7638).
    let n = base64_decode(jwk["n"].as_str().unwrap());
    assert_eq!(n.len(), 256, "2048-bit modulus without a leading zero");
    assert_eq!(berth_identity::keys::jwk_thumbprint(&n, &[1, 0, 1]), keys()[0].kid);
}

#[test]
fn keyring_is_cheap_to_share() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<berth_identity::KeyRing>();
    let copy = ring().clone();
    let token = copy.sign(&claims()).unwrap();
    assert!(ring().verify::<Value>(&token, &rules()).is_ok());
    std::thread::spawn(move || copy.verify::<Value>(&token, &rules()).map(|_| ()))
        .join()
        .unwrap()
        .unwrap();
}
