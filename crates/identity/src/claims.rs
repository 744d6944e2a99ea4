//! Claim sets of the tokens berth issues (Entra-style access tokens, ACR-style registry tokens)
//! and the audience normalization both verifiers use.
//!
//! These structs are the JWT payloads themselves, so they are serde by design; see
//! `acr-identity-protocols.md` §1.5 (Docker registry JWT), §2.6 (ACR) and §4.1 (Entra).

use serde::{Deserialize, Serialize};

/// Entra token version `1.0`: `iss` is `https://sts.windows.net/{tid}/`, the client is `appid`.
/// ARM, ACR and Key Vault audiences always get v1 tokens.
pub const ENTRA_VERSION_1: &str = "1.0";
/// Entra token version `2.0`: `iss` is `https://login.microsoftonline.com/{tid}/v2.0`, the
/// client is `azp`.
pub const ENTRA_VERSION_2: &str = "2.0";
/// `idtyp` of an app-only token (service principal or managed identity).
pub const IDTYP_APP: &str = "app";
/// `version` of ACR registry tokens.
pub const REGISTRY_TOKEN_VERSION: &str = "1.0";

/// An Entra-compatible app-only access token, as issued to a service principal or managed
/// identity by the client-credentials grant or a managed-identity endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraClaims {
    /// The resource as requested, e.g. `https://management.azure.com/` (v1 keeps the trailing
    /// slash), without `/.default`.
    pub aud: String,
    /// `https://sts.windows.net/{tid}/` (v1) or `https://login.microsoftonline.com/{tid}/v2.0` (v2).
    pub iss: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Object id (principalId) of the service principal or managed identity.
    pub oid: String,
    /// Tenant id.
    pub tid: String,
    /// Equals `oid` for app-only tokens.
    pub sub: String,
    /// Client (application) id; v1 tokens carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// Client (application) id; v2 tokens carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// [`IDTYP_APP`] for app-only tokens.
    pub idtyp: String,
    /// [`ENTRA_VERSION_1`] or [`ENTRA_VERSION_2`].
    pub ver: String,
    /// Unique token id (opaque, base64url).
    pub uti: String,
    /// For a managed identity: the user-assigned identity's resource id, or the host resource's
    /// id for a system-assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
    /// App roles granted to the client on the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// One granted resource in a registry access token: `{"type":"repository","name":"a/b","actions":["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAccess {
    /// `repository` or `registry` (for `catalog`).
    #[serde(rename = "type")]
    pub r#type: String,
    /// Repository name, or `catalog`.
    pub name: String,
    /// Granted actions (`pull`, `push`, `delete`, `metadata_read`, `*`, …). May be empty: a
    /// request for something not permitted yields an entry with no actions, not an error.
    pub actions: Vec<String>,
}

/// Which of ACR's two token kinds a [`RegistryClaims`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryGrantType {
    /// From `/oauth2/exchange`; traded at `/oauth2/token` for access tokens.
    RefreshToken,
    /// From `/oauth2/token` (or `/oauth2/token` GET); presented to `/v2`.
    AccessToken,
}

/// The RBAC action snapshot in an ACR refresh token: `{"actions":["*"],"notActions":[]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegistryPermissions {
    /// Permitted data actions.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Excluded data actions.
    #[serde(default, rename = "notActions")]
    pub not_actions: Vec<String>,
}

/// An ACR-style registry token (refresh or access), as in §2.6 of the protocol reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryClaims {
    /// Unique token id.
    pub jti: String,
    /// The principal's UPN or object id.
    pub sub: String,
    /// The token service's issuer name (ACR uses the literal `Azure Container Registry`).
    pub iss: String,
    /// The registry's login server, e.g. `contosoregistry.azurecr.io`.
    pub aud: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// [`REGISTRY_TOKEN_VERSION`].
    pub version: String,
    /// Refresh or access token.
    pub grant_type: RegistryGrantType,
    /// Tenant id of the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Object id of the principal (berth's addition: `sub` may be a UPN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Granted access; access tokens only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<RegistryAccess>,
    /// RBAC snapshot; refresh tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<RegistryPermissions>,
    /// Always present (and empty) in ACR tokens.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Normalizes an audience or scope so equivalent spellings compare equal: strips one trailing
/// `/.default` (MSAL scopes), then every trailing `/`, then lowercases the scheme and host (the
/// path keeps its case).
///
/// `https://127.0.0.1:8443//.default` → `https://127.0.0.1:8443`;
/// `HTTPS://Management.Azure.com/` → `https://management.azure.com`.
/// Values without `://` (GUIDs, bare login servers) are only trimmed.
pub fn normalize_audience(s: &str) -> String {
    let s = s.strip_suffix("/.default").unwrap_or(s);
    let s = s.trim_end_matches('/');
    let Some(scheme_end) = s.find("://") else {
        return s.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = s[authority_start..]
        .find(['/', '?', '#'])
        .map_or(s.len(), |offset| authority_start + offset);
    // Only the host is case-insensitive; keep any userinfo as written.
    let host_start = s[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |offset| authority_start + offset + 1);
    let mut normalized = String::with_capacity(s.len());
    normalized.push_str(&s[..scheme_end].to_ascii_lowercase());
    normalized.push_str(&s[scheme_end..host_start]);
    normalized.push_str(&s[host_start..authority_end].to_ascii_lowercase());
    normalized.push_str(&s[authority_end..]);
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn normalize_audience_examples() {
        for (input, expected) in [
            ("https://127.0.0.1:8443//.default", "https://127.0.0.1:8443"),
            ("https://127.0.0.1:8443/.default", "https://127.0.0.1:8443"),
            ("https://management.azure.com/", "https://management.azure.com"),
            ("https://management.core.windows.net/.default", "https://management.core.windows.net"),
            ("HTTPS://ContainerRegistry.Azure.NET/", "https://containerregistry.azure.net"),
            ("https://Host.Example/Some/Path/", "https://host.example/Some/Path"),
            ("https://Host.Example?Q=A", "https://host.example?Q=A"),
            ("https://User@Host.Example/", "https://User@host.example"),
            ("api://AzureADTokenExchange", "api://azureadtokenexchange"),
            ("00000000-0000-0000-0000-00000000ABCD", "00000000-0000-0000-0000-00000000ABCD"),
            ("contosoregistry.azurecr.io", "contosoregistry.azurecr.io"),
            ("https://a.example/.default/.default", "https://a.example/.default"),
            ("", ""),
            ("/", ""),
            ("://", ":"),
        ] {
            assert_eq!(normalize_audience(input), expected, "input {input:?}");
        }
    }

    proptest! {
        #[test]
        fn normalize_audience_is_idempotent_without_default_suffix(s in "\\PC*") {
            // Idempotence holds once no `/.default` remains (a doubled suffix strips one per call).
            prop_assume!(!s.contains("/.default"));
            let once = normalize_audience(&s);
            prop_assert_eq!(normalize_audience(&once), once.clone());
            prop_assert!(!once.ends_with('/'));
        }
    }

    #[test]
    fn registry_access_token_matches_acr_shape() {
        let claims = RegistryClaims {
            jti: "ec425c1e".into(),
            sub: "user@contoso.com".into(),
            iss: "Azure Container Registry".into(),
            aud: "contosoregistry.azurecr.io".into(),
            iat: 1497988907,
            nbf: 1497988907,
            exp: 1497993407,
            version: REGISTRY_TOKEN_VERSION.into(),
            grant_type: RegistryGrantType::AccessToken,
            tenant: None,
            oid: None,
            access: vec![RegistryAccess {
                r#type: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            }],
            permissions: None,
            roles: vec![],
        };
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({"jti":"ec425c1e","sub":"user@contoso.com","iss":"Azure Container Registry",
                "aud":"contosoregistry.azurecr.io","iat":1497988907,"nbf":1497988907,"exp":1497993407,
                "version":"1.0","grant_type":"access_token",
                "access":[{"type":"registry","name":"catalog","actions":["*"]}],"roles":[]})
        );
        let back: RegistryClaims = serde_json::from_value(value).unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn registry_refresh_token_from_acr_sample_parses() {
        let sample = json!({"jti":"365e3b5b","sub":"user@contoso.com","nbf":1497988712,"exp":1497990801,
            "iat":1497988712,"iss":"Azure Container Registry","aud":"contosoregistry.azurecr.io",
            "version":"1.0","grant_type":"refresh_token","tenant":"409520d4",
            "permissions":{"actions":["*"],"notActions":[]},"roles":[]});
        let claims: RegistryClaims = serde_json::from_value(sample.clone()).unwrap();
        assert_eq!(claims.grant_type, RegistryGrantType::RefreshToken);
        assert_eq!(claims.tenant.as_deref(), Some("409520d4"));
        assert_eq!(
            claims.permissions,
            Some(RegistryPermissions { actions: vec!["*".into()], not_actions: vec![] })
        );
        assert!(claims.access.is_empty());
        // Serializing gives back the sample (key order aside).
        assert_eq!(serde_json::to_value(&claims).unwrap(), sample);
    }

    #[test]
    fn entra_claims_skip_absent_optionals() {
        let claims = EntraClaims {
            aud: "https://management.azure.com/".into(),
            iss: "https://sts.windows.net/t/".into(),
            iat: 1,
            nbf: 1,
            exp: 2,
            oid: "o".into(),
            tid: "t".into(),
            sub: "o".into(),
            appid: Some("a".into()),
            azp: None,
            idtyp: IDTYP_APP.into(),
            ver: ENTRA_VERSION_1.into(),
            uti: "u".into(),
            xms_mirid: None,
            roles: vec![],
        };
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({"aud":"https://management.azure.com/","iss":"https://sts.windows.net/t/","iat":1,
                "nbf":1,"exp":2,"oid":"o","tid":"t","sub":"o","appid":"a","idtyp":"app","ver":"1.0","uti":"u"})
        );
        let with_mi = EntraClaims {
            xms_mirid: Some("/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id".into()),
            roles: vec!["Reader".into()],
            ..claims
        };
        let value = serde_json::to_value(&with_mi).unwrap();
        assert!(value["xms_mirid"].as_str().unwrap().ends_with("/userAssignedIdentities/id"));
        assert_eq!(value["roles"], json!(["Reader"]));
        assert_eq!(serde_json::from_value::<EntraClaims>(value).unwrap(), with_mi);
    }
}
