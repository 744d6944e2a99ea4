//! The registry's token service: which registry a request addresses, what a principal may do in a repository,
//! and the refresh and access tokens of ACR's protocol.
//!
//! Addressing: in host mode (`--registry-domain`) a registry is `<name>.<domain>` and repository names are plain; in
//! path mode every registry lives on the server's own address and a repository's full name starts with the
//! registry's name (`myacr/team/app`), which is what Docker-style clients put in token scopes and `/v2/` paths.
//!
//! Granting: every requested action is checked through the [`Authorizer`](crate::authorize::Authorizer) at the
//! registry's scope, at the moment the access token is issued (refresh tokens carry no rights of their own, so a
//! removed role assignment stops the next token). The granted set is the intersection of the requested and the
//! permitted actions, possibly empty, as distribution's token protocol expects.

use berth_arm::{ResourceId, ResourceType};
use berth_authz::ActionKind;
use berth_identity::{
    random_token, RegistryAccess, RegistryClaims, RegistryGrantType, TokenError, VerifyRules,
};
use berth_oci::Scope;
use serde_json::Value;

use crate::auth::LEEWAY_SECS;
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
        abac_mode: props["roleAssignmentMode"].as_str() == Some("AbacRepositoryPermissions"),
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

    /// The RBAC action a registry in the given mode checks. Legacy mode checks control-plane actions (so Reader's
    /// `*/read` pulls, Owner's `*` pushes); ABAC mode checks the repository data actions.
    pub fn rbac_action(self, abac: bool) -> (&'static str, ActionKind) {
        match (self, abac) {
            (DataAction::Pull, false) | (DataAction::Catalog, false) => {
                ("Microsoft.ContainerRegistry/registries/pull/read", ActionKind::Control)
            }
            (DataAction::Push, false) => {
                ("Microsoft.ContainerRegistry/registries/push/write", ActionKind::Control)
            }
            (DataAction::Delete, false) => {
                ("Microsoft.ContainerRegistry/registries/artifacts/delete", ActionKind::Control)
            }
            (DataAction::Pull, true) => (
                "Microsoft.ContainerRegistry/registries/repositories/content/read",
                ActionKind::Data,
            ),
            (DataAction::Push, true) => (
                "Microsoft.ContainerRegistry/registries/repositories/content/write",
                ActionKind::Data,
            ),
            (DataAction::Delete, true) => (
                "Microsoft.ContainerRegistry/registries/repositories/content/delete",
                ActionKind::Data,
            ),
            (DataAction::Catalog, true) => {
                ("Microsoft.ContainerRegistry/registries/catalog/read", ActionKind::Data)
            }
        }
    }
}

/// Whether `principal` (None: anonymous) may perform `action` in `registry`.
pub async fn permitted(
    state: &AppState,
    principal: Option<&str>,
    registry: &Registry,
    action: DataAction,
) -> ApiResult<bool> {
    match principal {
        None => Ok(action == DataAction::Pull && registry.anonymous_pull),
        Some(principal) => {
            if action == DataAction::Pull && registry.anonymous_pull {
                return Ok(true);
            }
            let (rbac, kind) = action.rbac_action(registry.abac_mode);
            Ok(state.authorizer.check(principal, rbac, kind, &registry.id).await?.is_allowed())
        }
    }
}

/// The access a set of requested scopes yields: for each scope, the requested actions that are permitted.
/// Scopes naming other registries or unknown resource types yield entries with no actions.
pub async fn grant(
    state: &AppState,
    principal: Option<&str>,
    service_registry: Option<&Registry>,
    scopes: &[Scope],
) -> ApiResult<Vec<RegistryAccess>> {
    let mut granted = Vec::new();
    for scope in scopes {
        let mut actions: Vec<String> = Vec::new();
        // Which registry the scope is about: the service's in host mode, the name's first segment in path mode.
        let registry = match (&state.registry_domain, scope.resource_type.as_str()) {
            (Some(_), _) => service_registry.cloned(),
            (None, "repository") => match split_path_mode_name(&scope.name) {
                Some((name, _)) => find_registry(state, name).await?,
                None => None,
            },
            (None, _) => service_registry.cloned(),
        };
        if let Some(registry) = registry {
            let wanted: Vec<DataAction> = match scope.resource_type.as_str() {
                "repository" => scope
                    .actions
                    .iter()
                    .flat_map(|a| match a.as_str() {
                        "pull" | "metadata_read" => vec![DataAction::Pull],
                        "push" | "metadata_write" => vec![DataAction::Push],
                        "delete" => vec![DataAction::Delete],
                        "*" => vec![DataAction::Pull, DataAction::Push, DataAction::Delete],
                        _ => vec![],
                    })
                    .collect(),
                "registry" if scope.name == "catalog" || scope.name == "*" => {
                    vec![DataAction::Catalog]
                }
                _ => vec![],
            };
            for action in wanted {
                if permitted(state, principal, &registry, action).await? {
                    let word = match (action, scope.resource_type.as_str()) {
                        (DataAction::Catalog, _) => "*".to_string(),
                        _ => action.as_str().to_string(),
                    };
                    if !actions.contains(&word) {
                        actions.push(word);
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

/// An access token carrying exactly `access`.
pub fn mint_access_token(
    state: &AppState,
    subject: &str,
    audience: &str,
    access: Vec<RegistryAccess>,
) -> ApiResult<String> {
    let mut claims = claims(
        state,
        subject,
        audience,
        RegistryGrantType::AccessToken,
        state.registry_token_lifetime_secs,
    );
    claims.access = access;
    state.keys().sign(&claims).map_err(crate::error::ApiError::internal)
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
