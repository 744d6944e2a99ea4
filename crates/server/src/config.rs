//! Server configuration: what `berth serve` and the test fixtures hand to [`crate::run`].

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to start. Built by the CLI from flags and `BERTH_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory for the SQLite database, blobs, TLS material and `bootstrap.json`.
    pub data_dir: PathBuf,
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`; `None` means SQLite at `data_dir/berth.db`.
    pub database_url: Option<String>,
    /// `file:///path` (more schemes later); `None` means `data_dir/blobs`.
    pub blob_store: Option<String>,
    /// PEM certificate chain and key to serve instead of the generated ones.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Only by explicit choice.
    pub insecure_http: bool,
    /// When set, registries are addressed as `<name>.<registry_domain>` (Host routing).
    pub registry_domain: Option<String>,
    /// The URL clients use to reach this server (issuer, `loginServer`, realm). Derived from the
    /// bound address when `None`.
    pub public_url: Option<String>,
}

impl Config {
    /// Defaults of `berth serve` for a data directory.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            database_url: None,
            blob_store: None,
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            registry_domain: None,
            public_url: None,
        }
    }
}
