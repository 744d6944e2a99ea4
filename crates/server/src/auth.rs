//! Authentication of control-plane callers: a bearer token from berth's identity provider, verified on every
//! request, whose principal must still exist.

use axum::http::{header, HeaderMap};
use berth_arm::ArmErrorCode;
use berth_db::{Principal, PrincipalKind};
use berth_identity::{verify_secret, EntraClaims, TokenError, VerifyRules};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_unix;

/// Tolerated clock skew between nodes and clients.
pub const LEEWAY_SECS: u64 = 30;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub claims: EntraClaims,
}

impl Caller {
    pub fn object_id(&self) -> &str {
        &self.principal.id
    }
}

/// Verify `token` as one of ours for one of `audiences`. Reloads the signing keys once when the token names a
/// key this node has not seen (another node rotated).
pub async fn verify_entra_token(
    state: &AppState,
    token: &str,
    audiences: Vec<String>,
) -> Result<EntraClaims, TokenError> {
    let rules = VerifyRules {
        issuers: vec![state.issuer()],
        audiences,
        leeway_secs: LEEWAY_SECS,
        now: now_unix(),
    };
    match state.keys().verify::<EntraClaims>(token, &rules) {
        Err(TokenError::UnknownKey { kid }) => {
            if let Err(e) = state.reload_keys().await {
                tracing::warn!(error = %e, "reloading signing keys failed");
            }
            let keys = state.keys();
            if keys.contains(&kid) {
                keys.verify(token, &rules)
            } else {
                Err(TokenError::UnknownKey { kid })
            }
        }
        other => other,
    }
}

pub fn bearer(headers: &HeaderMap) -> ApiResult<&str> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::arm(
            ArmErrorCode::AuthenticationFailed,
            "Authentication failed. The 'Authorization' header is missing.",
        )
    })?;
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::arm(
            ArmErrorCode::AuthenticationFailed,
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )),
    }
}

/// Authenticate a control-plane request for the given audiences.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    audiences: Vec<String>,
) -> ApiResult<Caller> {
    let token = bearer(headers)?;
    let claims = verify_entra_token(state, token, audiences).await.map_err(token_error)?;
    if !claims.tid.eq_ignore_ascii_case(&state.tenant_id) {
        return Err(ApiError::arm(
            ArmErrorCode::InvalidAuthenticationToken,
            "The access token is from the wrong issuer. It must match the tenant of this server.",
        ));
    }
    let principal = state.db.get_principal(&claims.oid).await?.ok_or_else(|| {
        ApiError::arm(
            ArmErrorCode::InvalidAuthenticationToken,
            "The access token's principal no longer exists. Request a new token for an existing principal.",
        )
    })?;
    Ok(Caller { principal, claims })
}

fn token_error(err: TokenError) -> ApiError {
    match err {
        TokenError::Expired { .. } => ApiError::arm(
            ArmErrorCode::ExpiredAuthenticationToken,
            "The access token has expired. Get a new access token and try again.",
        ),
        TokenError::WrongAudience { aud } => ApiError::arm(
            ArmErrorCode::InvalidAuthenticationTokenAudience,
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should match the \
                 resource manager's audience.",
                aud.join(", ")
            ),
        ),
        other => ApiError::arm(
            ArmErrorCode::InvalidAuthenticationToken,
            format!("The received access token is not valid: {other}."),
        ),
    }
}

/// The service principal whose client id and secret these are, if they are valid (an unexpired secret).
/// argon2 is deliberately slow, so the comparison runs off the async workers.
pub async fn verify_client_secret(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> ApiResult<Option<Principal>> {
    let principal = state
        .db
        .get_principal_by_app_id(client_id)
        .await?
        .filter(|p| p.kind == PrincipalKind::ServicePrincipal);
    let Some(principal) = principal else { return Ok(None) };
    let now = now_unix();
    let hashes: Vec<String> = state
        .db
        .secrets_of(&principal.id)
        .await?
        .into_iter()
        .filter(|s| s.expires_at > now)
        .map(|s| s.secret_hash)
        .collect();
    let secret = secret.to_string();
    let valid =
        tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify_secret(&secret, h)))
            .await
            .map_err(ApiError::internal)?;
    Ok(valid.then_some(principal))
}
