//! Workload identity federation: the trusted external OIDC issuers and the exchange of an external token for a
//! user-assigned identity's token.
//!
//! Each issuer's signing keys (a JWKS) come from configuration (`berth serve --federation-jwks ISSUER=SOURCE`,
//! the source a file or an `http://` URL on loopback) and are read once at start: berth never reaches out to the
//! internet. At the token endpoint, a workload sends the identity's client id and its own OIDC token as a
//! jwt-bearer `client_assertion`; it gets the identity's token when one of the identity's federated credentials
//! names the token's issuer, subject and an audience exactly, and the token is signed by that issuer and current.
//! Refusals use Entra's codes (AADSTS50027, 700024, 70021, 50166). The assertion itself is never logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::http::StatusCode;
use berth_db::{Principal, PrincipalKind};
use berth_identity::federation::{peek_claims, verify_assertion, AssertionError, Jwks};
use berth_identity::TokenError;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::auth::LEEWAY_SECS;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_unix;

/// `client_assertion_type` of a JWT presented as client credential (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience federated credentials get when none is given, as in Entra.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Largest JWKS document accepted from a file or URL.
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// The external issuers berth trusts, by exact `iss` value.
#[derive(Debug, Default)]
pub struct FederatedIssuers {
    by_issuer: HashMap<String, Jwks>,
}

impl FederatedIssuers {
    /// Reads every `(issuer, source)` pair; any unreadable or unusable source fails the start, with its name.
    pub async fn load(sources: &[(String, String)]) -> anyhow::Result<FederatedIssuers> {
        let mut by_issuer: HashMap<String, Jwks> = HashMap::new();
        for (issuer, source) in sources {
            if issuer.trim().is_empty() {
                bail!("--federation-jwks needs ISSUER=SOURCE; the issuer is empty in `{issuer}={source}`");
            }
            let bytes = read_source(source)
                .await
                .with_context(|| format!("reading the JWKS of issuer {issuer} from {source}"))?;
            let jwks = Jwks::parse(&bytes)
                .with_context(|| format!("the JWKS of issuer {issuer} from {source}"))?;
            tracing::info!(%issuer, %source, keys = jwks.len(), "trusting a federated issuer");
            match by_issuer.get_mut(issuer) {
                Some(existing) => existing.extend(jwks),
                None => {
                    by_issuer.insert(issuer.clone(), jwks);
                }
            }
        }
        Ok(FederatedIssuers { by_issuer })
    }

    /// The keys of an issuer, compared exactly.
    pub fn keys(&self, issuer: &str) -> Option<&Jwks> {
        self.by_issuer.get(issuer)
    }
}

async fn read_source(source: &str) -> anyhow::Result<Vec<u8>> {
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("https://") {
        bail!("only http:// URLs on loopback or files are supported (berth has no CA bundle for outgoing TLS)");
    }
    if !lower.starts_with("http://") {
        let length = tokio::fs::metadata(source).await?.len();
        if length > MAX_JWKS_BYTES {
            bail!("the file has {length} bytes; a JWKS of at most {MAX_JWKS_BYTES} is expected");
        }
        return Ok(tokio::fs::read(source).await?);
    }
    let url = reqwest::Url::parse(source)?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("the URL is not on loopback (127.0.0.0/8, ::1 or localhost); berth does not reach other hosts");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client.get(url).send().await?.error_for_status()?;
    if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES) {
        bail!("the response is larger than {MAX_JWKS_BYTES} bytes");
    }
    let bytes = response.bytes().await?;
    if bytes.len() as u64 > MAX_JWKS_BYTES {
        bail!("the response is larger than {MAX_JWKS_BYTES} bytes");
    }
    Ok(bytes.to_vec())
}

/// Entra's time format in AADSTS700024: `2024-10-02T22:05:03.0000000Z`.
fn entra_time(unix: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

fn invalid_jwt(reason: impl std::fmt::Display) -> ApiError {
    ApiError::oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50027,
        format!("JWT token is invalid or malformed: {reason}."),
    )
}

fn no_matching_record(iss: &str, sub: Option<&str>, aud: &[String]) -> ApiError {
    ApiError::oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        70021,
        format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. \
             Assertion Subject: '{}'. Assertion Audience: '{}'. \
             https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
            sub.unwrap_or_default(),
            aud.join(",")
        ),
    )
}

/// Whether `assertion` proves its bearer may act as `principal`, a user-assigned identity: one of the identity's
/// federated credentials names the assertion's issuer, subject and one of its audiences, and the assertion is
/// signed by that issuer's configured keys and current. Every other outcome is refused with Entra's error.
pub async fn authenticate_assertion(
    state: &AppState,
    principal: &Principal,
    assertion: &str,
) -> ApiResult<()> {
    let refused = |reason: &str| {
        tracing::info!(client_id = %principal.app_id, reason, "federated client assertion refused");
    };
    let peeked = peek_claims(assertion).map_err(|e| {
        refused("malformed");
        invalid_jwt(e)
    })?;
    let credentials = match (&principal.kind, &principal.resource_id) {
        (PrincipalKind::UserAssignedIdentity, Some(identity)) => {
            state.db.federated_credentials_of(identity).await?
        }
        _ => Vec::new(),
    };
    let candidates: Vec<_> = credentials.iter().filter(|c| c.issuer == peeked.iss).collect();
    if candidates.is_empty() {
        refused("no federated credential names the issuer");
        return Err(no_matching_record(&peeked.iss, peeked.sub.as_deref(), &peeked.aud));
    }
    let Some(keys) = state.federation.keys(&peeked.iss) else {
        refused("issuer keys not configured");
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50166,
            format!(
                "Request to External OIDC endpoint failed. berth has no signing keys for issuer '{}': start it with \
                 --federation-jwks '{}=<JWKS file or loopback URL>'.",
                peeked.iss, peeked.iss
            ),
        ));
    };
    let claims =
        verify_assertion(assertion, keys, now_unix(), LEEWAY_SECS as i64).map_err(|e| match e {
            AssertionError::Invalid(TokenError::UnsupportedAlgorithm { alg }) => {
                refused("unsupported algorithm");
                invalid_jwt(format!("the algorithm '{alg}' is not accepted, only RS256 and ES256 are"))
            }
            AssertionError::Invalid(reason) => {
                refused("invalid");
                invalid_jwt(reason)
            }
            AssertionError::OutsideValidity { now, nbf, exp } => {
                refused("outside its validity");
                ApiError::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    700024,
                    format!(
                        "Client assertion is not within its valid time range. Current time: {}, assertion valid from \
                         {}, expiry time of assertion {}. Review the documentation at \
                         https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                        entra_time(now),
                        entra_time(nbf.unwrap_or(0)),
                        entra_time(exp)
                    ),
                )
            }
        })?;
    let matched = candidates.iter().any(|c| {
        c.issuer == claims.iss
            && c.subject == claims.sub
            && c.audiences.iter().any(|a| claims.aud.contains(a))
    });
    if !matched {
        refused("no federated credential names the subject and audience");
        return Err(no_matching_record(&claims.iss, Some(&claims.sub), &claims.aud));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_time_format() {
        assert_eq!(entra_time(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(entra_time(1727906703), "2024-10-02T22:05:03.0000000Z");
    }

    #[tokio::test]
    async fn sources_must_be_files_or_loopback_http() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        for source in [
            missing.to_string_lossy().into_owned(),
            "https://127.0.0.1:1/jwks".to_owned(),
            "http://192.0.2.1/jwks".to_owned(),
            "http://example.com/jwks".to_owned(),
        ] {
            let result =
                FederatedIssuers::load(&[("https://issuer.example".to_owned(), source.clone())])
                    .await;
            assert!(result.is_err(), "{source} was accepted");
        }
        let file = dir.path().join("jwks.json");
        std::fs::write(&file, br#"{"keys":[]}"#).unwrap();
        let error = FederatedIssuers::load(&[(
            "https://issuer.example".to_owned(),
            file.to_string_lossy().into_owned(),
        )])
        .await
        .unwrap_err();
        assert!(format!("{error:#}").contains("no usable signing key"), "{error:#}");
    }
}
