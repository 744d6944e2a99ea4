//! The registry's token service: which registry a request addresses, what a principal may do in a repository,
//! and the refresh and access tokens of ACR's protocol.
//!
//! Addressing: in host mode (`--registry-domain`) a registry is `<name>.<domain>` and repository names are plain; in
//! path mode every registry lives on the server's own address and a repository's full name starts with the
//! registry's name (`myacr/team/app`), which is what Docker-style clients put in token scopes and `/v2/` paths.
//!
//! Granting: the principal's grants are read from the store (through the
//! [`Authorizer`](crate::authorize::Authorizer)) when an access token is issued, and `berth_authz::acr` decides
//! each requested action for the registry's `roleAssignmentMode`, with the repository name for ABAC conditions
//! (refresh tokens carry no rights of their own, so a removed role assignment stops the next token). The granted
//! set is the intersection of the requested and the permitted actions, possibly empty, as distribution's token
//! protocol expects.

use berth_arm::{ResourceId, ResourceType};
use berth_authz::acr::{self, RegistryAction, RegistryQuery, RoleAssignmentMode};
use berth_identity::{
    random_token, RegistryAccess, RegistryClaims, RegistryGrantType, TokenError, VerifyRules,
};
use berth_oci::Scope;
use serde_json::Value;

use crate::audit::Audited;
use crate::auth::LEEWAY_SECS;
use crate::authorize::PrincipalGrants;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::time::now_unix;

/// `iss` of registry tokens: ACR's literal issuer. Entra tokens carry a URL, so neither passes for the other.
pub const REGISTRY_ISSUER: &str = "Azure Container Registry";
/// Refresh tokens live three hours, as ACR's do.
pub const REFRESH_TOKEN_SECS: i64 = 3 * 3600;
/// The null GUID: as a username it says "the password is a registry token".
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// A registry, as the data plane needs it.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Lower-case name.
    pub name: String,
    pub id: ResourceId,
    pub login_server: String,
    pub anonymous_pull: bool,
    pub abac_mode: bool,
    /// Whether Entra tokens for the ARM audience are accepted at `/oauth2/exchange`.
    pub arm_audience_tokens: bool,
}

impl Registry {
    /// The registry's `roleAssignmentMode`.
    pub fn mode(&self) -> RoleAssignmentMode {
        if self.abac_mode {
            RoleAssignmentMode::AbacRepositoryPermissions
        } else {
            RoleAssignmentMode::LegacyRegistryPermissions
        }
    }
}

pub async fn find_registry(state: &AppState, name: &str) -> ApiResult<Option<Registry>> {
    let Some(record) = state
        .db
        .get_resource_by_unique_name(&format!("registry:{}", name.to_ascii_lowercase()))
        .await?
    else {
        return Ok(None);
    };
    let body: Value =
        serde_json::from_str(&record.body).map_err(crate::error::ApiError::internal)?;
    let id = ResourceId::parse(&record.id).map_err(crate::error::ApiError::internal)?;
    let props = &body["properties"];
    Ok(Some(Registry {
        name: name.to_ascii_lowercase(),
        id,
        login_server: state.login_server(name),
        anonymous_pull: props["anonymousPullEnabled"].as_bool().unwrap_or(false),
        abac_mode: props["roleAssignmentMode"]
            .as_str()
            .and_then(RoleAssignmentMode::parse)
            .is_some_and(|m| m == RoleAssignmentMode::AbacRepositoryPermissions),
        arm_audience_tokens: props
            .pointer("/policies/azureADAuthenticationAsArmPolicy/status")
            .and_then(Value::as_str)
            .is_none_or(|s| s.eq_ignore_ascii_case("enabled")),
    }))
}

/// The registry a login server or token `service` names: `<name>.<domain>` in host mode, `<host>/<name>` in
/// path mode. The bare server host names no registry.
pub fn registry_name_from_service(state: &AppState, service: &str) -> Option<String> {
    let service = service.trim().to_ascii_lowercase();
    if let Some(domain) = &state.registry_domain {
        let host = service.split(':').next().unwrap_or_default();
        return host.strip_suffix(&format!(".{}", domain.to_ascii_lowercase())).map(str::to_string);
    }
    service
        .strip_prefix(&format!("{}/", state.public_host.to_ascii_lowercase()))
        .map(str::to_string)
}

/// Split a full repository name into (registry name, repository within it) in path mode; in host mode the
/// registry comes from elsewhere and the whole name is the repository.
pub fn split_path_mode_name(full: &str) -> Option<(&str, &str)> {
    let (registry, repository) = full.split_once('/')?;
    (!registry.is_empty() && !repository.is_empty()).then_some((registry, repository))
}

/// One data-plane action of the token protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAction {
    Pull,
    Push,
    Delete,
    Catalog,
}

impl DataAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DataAction::Pull => "pull",
            DataAction::Push => "push",
            DataAction::Delete => "delete",
            DataAction::Catalog => "*",
        }
    }

    /// The registry action the engine decides for this data-plane action.
    pub fn registry_action(self) -> RegistryAction {
        match self {
            DataAction::Pull => RegistryAction::Pull,
            DataAction::Push => RegistryAction::Push,
            DataAction::Delete => RegistryAction::Delete,
            DataAction::Catalog => RegistryAction::Catalog,
        }
    }
}

/// The token actions a scope's requested action word asks for: (what is checked, the word granted).
fn requested(resource_type: &str, name: &str, word: &str) -> Vec<(RegistryAction, &'static str)> {
    match (resource_type, word) {
        ("repository", "pull") => vec![(RegistryAction::Pull, "pull")],
        ("repository", "push") => vec![(RegistryAction::Push, "push")],
        ("repository", "delete") => vec![(RegistryAction::Delete, "delete")],
        ("repository", "metadata_read") => vec![(RegistryAction::MetadataRead, "metadata_read")],
        ("repository", "metadata_write") => vec![(RegistryAction::MetadataWrite, "metadata_write")],
        ("repository", "*") => vec![
            (RegistryAction::Pull, "pull"),
            (RegistryAction::Push, "push"),
            (RegistryAction::Delete, "delete"),
        ],
        ("registry", _) if name == "catalog" || name == "*" => vec![(RegistryAction::Catalog, "*")],
        _ => vec![],
    }
}

/// The access a set of requested scopes yields: for each scope, the requested actions that are permitted, as
/// `berth_authz::acr` decides them for the registry's `roleAssignmentMode` (in ABAC mode with the repository name
/// for conditions). The principal's grants are read once per call, from the store. Scopes naming other
/// registries or unknown resource types yield entries with no actions. Every decision is audited.
pub async fn grant(
    state: &AppState,
    principal: Option<&str>,
    service_registry: Option<&Registry>,
    scopes: &[Scope],
) -> ApiResult<Vec<RegistryAccess>> {
    let mut granted = Vec::new();
    let mut grants: Option<PrincipalGrants> = None;
    for scope in scopes {
        let mut actions: Vec<String> = Vec::new();
        // Which registry the scope is about: the service's in host mode, the name's first segment in path mode.
        let (registry, repository) = match (&state.registry_domain, scope.resource_type.as_str()) {
            (Some(_), "repository") => (service_registry.cloned(), Some(scope.name.as_str())),
            (Some(_), _) => (service_registry.cloned(), None),
            (None, "repository") => match split_path_mode_name(&scope.name) {
                Some((name, repository)) => (find_registry(state, name).await?, Some(repository)),
                None => (None, None),
            },
            (None, _) => (service_registry.cloned(), None),
        };
        if let Some(registry) = registry {
            for word in &scope.actions {
                for (action, granted_word) in requested(&scope.resource_type, &scope.name, word) {
                    if actions.iter().any(|a| a == granted_word) {
                        continue;
                    }
                    let allowed = match principal {
                        _ if action == RegistryAction::Pull && registry.anonymous_pull => true,
                        None => false,
                        Some(principal) => {
                            if grants.is_none() {
                                grants = Some(state.authorizer.grants_of(principal).await?);
                            }
                            let grants = grants.as_ref().expect("loaded above");
                            let query = RegistryQuery {
                                principal_id: principal,
                                registry: &registry.id,
                                mode: registry.mode(),
                                repository,
                            };
                            let decision =
                                acr::check(&grants.catalog, &grants.assignments, &query, action);
                            state.audit.record(Audited {
                                principal_id: principal,
                                surface: "registry",
                                action: action.as_str(),
                                scope: &registry.id.to_string(),
                                repository,
                                decision: &decision,
                            });
                            decision.is_allowed()
                        }
                    };
                    if allowed {
                        actions.push(granted_word.to_string());
                    }
                }
            }
        }
        granted.push(RegistryAccess {
            r#type: scope.resource_type.clone(),
            name: scope.name.clone(),
            actions,
        });
    }
    Ok(granted)
}

fn claims(
    state: &AppState,
    subject: &str,
    audience: &str,
    grant_type: RegistryGrantType,
    lifetime: i64,
) -> RegistryClaims {
    let now = now_unix();
    RegistryClaims {
        jti: random_token(16),
        sub: subject.to_string(),
        iss: REGISTRY_ISSUER.to_string(),
        aud: audience.to_string(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        version: "1.0".into(),
        grant_type,
        tenant: Some(state.tenant_id.clone()),
        oid: (subject != "anonymous").then(|| subject.to_string()),
        access: Vec::new(),
        permissions: None,
        roles: Vec::new(),
    }
}

/// How long a signed access token is handed out again for the same grant (see [`mint_access_token`]).
pub const ACCESS_TOKEN_REUSE_SECS: i64 = 60;

/// A signed access token kept for reuse.
#[derive(Debug, Clone)]
pub(crate) struct MintedToken {
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A refresh token for `principal_id`, bound to the registry or server host it was asked for.
pub fn mint_refresh_token(
    state: &AppState,
    principal_id: &str,
    audience: &str,
) -> ApiResult<String> {
    let claims =
        claims(state, principal_id, audience, RegistryGrantType::RefreshToken, REFRESH_TOKEN_SECS);
    state.keys().sign(&claims).map_err(crate::error::ApiError::internal)
}

/// An access token carrying exactly `access`, and when it expires (Unix seconds).
///
/// The grant is decided afresh for every request; only the signed token for the same subject, audience and access
/// is handed out again while it is younger than [`ACCESS_TOKEN_REUSE_SECS`] (or a tenth of its lifetime), because
/// an RS256 signature costs about a millisecond and would otherwise bound token issuance. A reused token proves
/// exactly what a fresh one would.
pub fn mint_access_token(
    state: &AppState,
    subject: &str,
    audience: &str,
    access: Vec<RegistryAccess>,
) -> ApiResult<(String, i64)> {
    let now = now_unix();
    let lifetime = state.registry_token_lifetime_secs;
    let reuse = ACCESS_TOKEN_REUSE_SECS.min(lifetime / 10);
    let key = serde_json::to_string(&(subject, audience, &access))
        .map_err(crate::error::ApiError::internal)?;
    if let Some(minted) = state.v2_caches.minted_token(&key) {
        if now - minted.issued_at < reuse && minted.expires_at > now {
            return Ok((minted.token, minted.expires_at));
        }
    }
    let mut claims = claims(state, subject, audience, RegistryGrantType::AccessToken, lifetime);
    claims.access = access;
    let expires_at = claims.exp;
    let token = state.keys().sign(&claims).map_err(crate::error::ApiError::internal)?;
    if reuse > 0 {
        state.v2_caches.remember_minted_token(
            key,
            MintedToken { token: token.clone(), issued_at: claims.iat, expires_at },
        );
    }
    Ok((token, expires_at))
}

/// Verify a registry token of the expected kind for one of `audiences`.
pub async fn verify_registry_token(
    state: &AppState,
    token: &str,
    kind: RegistryGrantType,
    audiences: Vec<String>,
) -> Result<RegistryClaims, TokenError> {
    let rules = VerifyRules {
        issuers: vec![REGISTRY_ISSUER.to_string()],
        audiences,
        leeway_secs: LEEWAY_SECS,
        now: now_unix(),
    };
    let claims: RegistryClaims = match state.keys().verify(token, &rules) {
        Err(TokenError::UnknownKey { kid }) => {
            let _ = state.reload_keys().await;
            state.keys().verify(token, &rules).map_err(|_| TokenError::UnknownKey { kid })?
        }
        other => other?,
    };
    if claims.grant_type != kind {
        return Err(TokenError::UnexpectedClaims {
            reason: format!("a {:?} is needed here", kind),
        });
    }
    Ok(claims)
}

/// The audiences a registry's tokens may carry: its login server, and in path mode the server host (the
/// `service` of the `/v2/` challenge).
pub fn registry_audiences(state: &AppState, registry: Option<&Registry>) -> Vec<String> {
    let mut audiences = Vec::new();
    if let Some(r) = registry {
        audiences.push(r.login_server.clone());
    }
    if state.registry_domain.is_none() {
        audiences.push(state.public_host.clone());
    }
    audiences
}

/// `Bearer realm="<base>/oauth2/token",service="<service>"[,scope="<scope>"]`. The realm is on the registry's own
/// host in host mode (clients send the token exchange where the realm points), else on the server's address.
pub fn challenge(
    state: &AppState,
    registry: Option<&Registry>,
    service: &str,
    scope: Option<&str>,
) -> String {
    let base = match (&state.registry_domain, registry) {
        (Some(_), Some(r)) => {
            let scheme = state.public_url.split("://").next().unwrap_or("https");
            format!("{scheme}://{}", r.login_server)
        }
        _ => state.public_url.clone(),
    };
    let realm = format!("{base}/oauth2/token");
    match scope {
        Some(scope) => format!(r#"Bearer realm="{realm}",service="{service}",scope="{scope}""#),
        None => format!(r#"Bearer realm="{realm}",service="{service}""#),
    }
}

/// The registry's resource type, for callers that build IDs.
pub fn registry_type() -> ResourceType {
    ResourceType {
        namespace: "Microsoft.ContainerRegistry".into(),
        types: vec!["registries".into()],
    }
}
