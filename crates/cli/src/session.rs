//! An authenticated session for one command: the stored profile, a client that trusts the right CA,
//! and a bearer token (taken from the cache, refreshed when less than five minutes remain).

use std::time::Duration;

use anyhow::{Context as _, Result};
use berth_client::{AccessToken, Client};

use crate::profile::{ConfigDir, Profile, Subscription};

/// The scope of the token the CLI uses for ARM and the Graph subset, as az asks for ARM.
pub const MANAGEMENT_SCOPE: &str = "https://management.azure.com/.default";

/// A token with less than this left is replaced before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

pub struct Session {
    pub profile: Profile,
    pub client: Client,
}

impl Session {
    /// Loads the profile and makes a client with a valid token. `command_name` goes into the
    /// `CommandName` header as az sends it (`group create`).
    pub async fn open(config_dir: &ConfigDir, command_name: &str) -> Result<Session> {
        let profile = config_dir.require_profile()?;
        let ca_pem = trusted_ca_pem(profile.ca_pem.as_deref())?;
        let client = Client::new(&profile.server, ca_pem.as_deref())?;
        let token = match config_dir.load_token(&profile)? {
            Some(token) if !token.expires_within(REFRESH_MARGIN) => token,
            _ => {
                let token = acquire_token(&client, &profile).await?;
                config_dir.save_token(&profile, &token)?;
                token
            }
        };
        let client =
            client.with_bearer_token(token.access_token).with_header("CommandName", command_name);
        Ok(Session { profile, client })
    }

    /// The subscription to work in: `--subscription` when given, else the default.
    pub fn subscription(&self, wanted: Option<&str>) -> Result<Subscription> {
        self.profile.subscription(wanted)
    }
}

/// A token for the profile's service principal.
pub async fn acquire_token(client: &Client, profile: &Profile) -> Result<AccessToken> {
    Ok(client
        .client_credentials_token(
            &profile.tenant_id,
            &profile.client_id,
            &profile.client_secret,
            MANAGEMENT_SCOPE,
        )
        .await?)
}

/// The CA bundle to trust: the one stored at login, else the file named by `REQUESTS_CA_BUNDLE` or
/// `SSL_CERT_FILE` (what az and OpenSSL honour), else `None` for the system bundle.
pub fn trusted_ca_pem(stored: Option<&str>) -> Result<Option<String>> {
    if let Some(pem) = stored {
        return Ok(Some(pem.to_owned()));
    }
    for variable in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"] {
        if let Some(path) = std::env::var_os(variable).filter(|path| !path.is_empty()) {
            let pem = std::fs::read_to_string(&path).with_context(|| {
                format!("reading the CA bundle `{}` named by {variable}", path.to_string_lossy())
            })?;
            return Ok(Some(pem));
        }
    }
    Ok(None)
}
