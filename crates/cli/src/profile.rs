//! The stored login: `profile.json` (server, tenant, service principal, CA, subscriptions) and
//! `token.json` (the cached access token) under `$BERTH_CONFIG_DIR` (default `~/.berth`).
//! The directory is created `0700` and the files `0600`: they hold a client secret and a token.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use berth_client::AccessToken;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const PROFILE_FILE: &str = "profile.json";
const TOKEN_FILE: &str = "token.json";

/// The error az prints when nobody is logged in.
#[derive(Debug, thiserror::Error)]
#[error("Please run 'berth login' to setup account.")]
pub struct NotLoggedIn;

/// The configuration directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    path: PathBuf,
}

/// One logged-in service principal on one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub server: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Contents of the `--ca-file` given at login, trusted for every later command.
    pub ca_pem: Option<String>,
    pub subscriptions: Vec<Subscription>,
    /// The `subscriptionId` of the default subscription.
    pub default_subscription: Option<String>,
}

/// A subscription as `GET /subscriptions` reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_id: String,
    pub display_name: String,
    pub state: String,
    pub tenant_id: String,
    #[serde(default)]
    pub managed_by_tenants: Vec<Value>,
}

/// The token cache: one token for the profile's principal on the profile's server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    pub server: String,
    pub client_id: String,
    #[serde(flatten)]
    pub token: AccessToken,
}

impl ConfigDir {
    /// `$BERTH_CONFIG_DIR`, else `~/.berth`.
    pub fn from_env() -> Result<ConfigDir> {
        if let Some(dir) = std::env::var_os("BERTH_CONFIG_DIR").filter(|dir| !dir.is_empty()) {
            return Ok(ConfigDir { path: PathBuf::from(dir) });
        }
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(std::env::home_dir)
            .context("cannot find the home directory; set BERTH_CONFIG_DIR")?;
        Ok(ConfigDir { path: home.join(".berth") })
    }

    #[cfg(test)]
    pub fn new(path: impl Into<PathBuf>) -> ConfigDir {
        ConfigDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored profile, or `None` when nobody is logged in.
    pub fn load_profile(&self) -> Result<Option<Profile>> {
        read_json(&self.path.join(PROFILE_FILE))
    }

    /// The stored profile, or [`NotLoggedIn`].
    pub fn require_profile(&self) -> Result<Profile> {
        self.load_profile()?.ok_or_else(|| NotLoggedIn.into())
    }

    pub fn save_profile(&self, profile: &Profile) -> Result<()> {
        self.write_private(PROFILE_FILE, &serde_json::to_vec_pretty(profile)?)
    }

    /// The cached token when it belongs to `profile`.
    pub fn load_token(&self, profile: &Profile) -> Result<Option<AccessToken>> {
        let cached: Option<CachedToken> = read_json(&self.path.join(TOKEN_FILE))?;
        Ok(cached
            .filter(|cached| {
                cached.server == profile.server && cached.client_id == profile.client_id
            })
            .map(|cached| cached.token))
    }

    pub fn save_token(&self, profile: &Profile, token: &AccessToken) -> Result<()> {
        let cached = CachedToken {
            server: profile.server.clone(),
            client_id: profile.client_id.clone(),
            token: token.clone(),
        };
        self.write_private(TOKEN_FILE, &serde_json::to_vec_pretty(&cached)?)
    }

    /// Removes the profile and the token; false when there was no profile.
    pub fn clear(&self) -> Result<bool> {
        let had_profile = remove_if_present(&self.path.join(PROFILE_FILE))?;
        remove_if_present(&self.path.join(TOKEN_FILE))?;
        Ok(had_profile)
    }

    /// Writes `name` with mode 0600 through a temporary file and a rename, so a crash never leaves
    /// a half-written profile and the secret is never readable by others, not even briefly.
    fn write_private(&self, name: &str, contents: &[u8]) -> Result<()> {
        create_private_dir(&self.path)?;
        let target = self.path.join(name);
        let temporary = self.path.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("writing `{}`", temporary.display()))?;
        file.write_all(contents).with_context(|| format!("writing `{}`", temporary.display()))?;
        file.sync_all().ok();
        set_mode(&temporary, 0o600)?;
        fs::rename(&temporary, &target)
            .with_context(|| format!("writing `{}`", target.display()))?;
        Ok(())
    }
}

fn create_private_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("creating `{}`", path.display()))?;
    set_mode(path, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting permissions of `{}`", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => {
            let value = serde_json::from_slice(&bytes).with_context(|| {
                format!("`{}` is damaged; run 'berth login' again", path.display())
            })?;
            Ok(Some(value))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading `{}`", path.display())),
    }
}

fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing `{}`", path.display())),
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The error az prints for an unknown `--subscription`.
#[derive(Debug, thiserror::Error)]
#[error("The subscription of '{0}' doesn't exist in cloud 'berth'.")]
pub struct UnknownSubscription(pub String);

/// The error for commands that need a subscription when the account has none.
#[derive(Debug, thiserror::Error)]
#[error("No subscription found. Run 'berth account set' to select a subscription.")]
pub struct NoSubscription;

impl Profile {
    /// The subscription named by `wanted` (its ID or its name, any case), else the default one.
    /// An ID the login did not list (the principal had no role yet) is used as given, so the server
    /// can answer with the real reason (`AuthorizationFailed`) instead of the CLI guessing.
    pub fn subscription(&self, wanted: Option<&str>) -> Result<Subscription> {
        match wanted {
            Some(wanted) => self
                .subscriptions
                .iter()
                .find(|s| s.subscription_id.eq_ignore_ascii_case(wanted))
                .or_else(|| {
                    self.subscriptions.iter().find(|s| s.display_name.eq_ignore_ascii_case(wanted))
                })
                .cloned()
                .or_else(|| is_guid(wanted).then(|| self.unlisted_subscription(wanted)))
                .ok_or_else(|| UnknownSubscription(wanted.to_owned()).into()),
            None => self
                .default_subscription
                .as_deref()
                .and_then(|id| self.subscriptions.iter().find(|s| s.subscription_id == id))
                .or_else(|| self.subscriptions.first())
                .cloned()
                .ok_or_else(|| NoSubscription.into()),
        }
    }

    fn unlisted_subscription(&self, id: &str) -> Subscription {
        Subscription {
            subscription_id: id.to_owned(),
            display_name: id.to_owned(),
            state: "Unknown".to_owned(),
            tenant_id: self.tenant_id.clone(),
            managed_by_tenants: Vec::new(),
        }
    }

    fn is_default(&self, subscription: &Subscription) -> bool {
        match self.default_subscription.as_deref() {
            Some(id) => id == subscription.subscription_id,
            None => {
                self.subscriptions.first().map(|s| &s.subscription_id)
                    == Some(&subscription.subscription_id)
            }
        }
    }

    /// The account entry az prints for a subscription. `cloud_key` is `cloudName` in
    /// `login`/`account list` and `environmentName` in `account show`, as in az.
    pub fn account_json(&self, subscription: &Subscription, cloud_key: &str) -> Value {
        let mut account = json!({
            "homeTenantId": subscription.tenant_id,
            "id": subscription.subscription_id,
            "isDefault": self.is_default(subscription),
            "managedByTenants": subscription.managed_by_tenants,
            "name": subscription.display_name,
            "state": subscription.state,
            "tenantId": self.tenant_id,
            "user": {"name": self.client_id, "type": "servicePrincipal"},
        });
        account[cloud_key] = json!("berth");
        account
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(id: &str, name: &str) -> Subscription {
        Subscription {
            subscription_id: id.to_owned(),
            display_name: name.to_owned(),
            state: "Enabled".to_owned(),
            tenant_id: "t".to_owned(),
            managed_by_tenants: Vec::new(),
        }
    }

    fn profile() -> Profile {
        Profile {
            server: "https://127.0.0.1:8443".to_owned(),
            tenant_id: "t".to_owned(),
            client_id: "app".to_owned(),
            client_secret: "secret".to_owned(),
            ca_pem: None,
            subscriptions: vec![
                subscription("11111111-aaaa", "First"),
                subscription("22222222-bbbb", "Second"),
            ],
            default_subscription: Some("22222222-bbbb".to_owned()),
        }
    }

    #[test]
    fn subscription_by_id_name_or_default() {
        let profile = profile();
        assert_eq!(profile.subscription(None).expect("default").display_name, "Second");
        assert_eq!(
            profile.subscription(Some("11111111-AAAA")).expect("by id").display_name,
            "First"
        );
        assert_eq!(
            profile.subscription(Some("first")).expect("by name").subscription_id,
            "11111111-aaaa"
        );
        let error = profile.subscription(Some("nope")).expect_err("unknown");
        assert_eq!(error.to_string(), "The subscription of 'nope' doesn't exist in cloud 'berth'.");
        let unlisted = profile
            .subscription(Some("0a1b2c3d-0000-4000-8000-00000000000f"))
            .expect("a GUID passes");
        assert_eq!(unlisted.subscription_id, "0a1b2c3d-0000-4000-8000-00000000000f");
        let empty =
            Profile { subscriptions: Vec::new(), default_subscription: None, ..profile.clone() };
        assert_eq!(
            empty.subscription(None).expect_err("none").to_string(),
            NoSubscription.to_string()
        );
    }

    #[test]
    fn account_json_has_az_fields() {
        let profile = profile();
        let account = profile.account_json(&profile.subscriptions[1], "environmentName");
        assert_eq!(
            account,
            json!({"environmentName":"berth","homeTenantId":"t","id":"22222222-bbbb","isDefault":true,
                   "managedByTenants":[],"name":"Second","state":"Enabled","tenantId":"t",
                   "user":{"name":"app","type":"servicePrincipal"}})
        );
        assert_eq!(
            profile.account_json(&profile.subscriptions[0], "cloudName")["isDefault"],
            json!(false)
        );
    }

    #[test]
    fn profile_and_token_round_trip_with_private_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ConfigDir::new(dir.path().join("cfg"));
        assert!(config.load_profile().expect("load").is_none());
        assert!(config.require_profile().is_err());
        let profile = profile();
        config.save_profile(&profile).expect("save");
        assert_eq!(config.load_profile().expect("load"), Some(profile.clone()));
        let token = AccessToken { access_token: "tok".to_owned(), expires_on: 42 };
        config.save_token(&profile, &token).expect("save token");
        assert_eq!(config.load_token(&profile).expect("load token"), Some(token));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode(config.path()), 0o700);
            assert_eq!(mode(&config.path().join(PROFILE_FILE)), 0o600);
            assert_eq!(mode(&config.path().join(TOKEN_FILE)), 0o600);
        }
        assert!(config.clear().expect("clear"));
        assert!(!config.clear().expect("clear again"));
    }

    #[test]
    fn token_of_another_principal_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ConfigDir::new(dir.path());
        let profile = profile();
        config
            .save_token(&profile, &AccessToken { access_token: "tok".to_owned(), expires_on: 42 })
            .expect("save");
        let other = Profile { client_id: "other".to_owned(), ..profile };
        assert_eq!(config.load_token(&other).expect("load"), None);
    }
}
