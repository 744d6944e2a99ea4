//! Server configuration: what `berth serve` and the test fixtures hand to [`crate::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How often `berth serve` collects garbage unless told otherwise.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(3600);
/// How old unreferenced content must be before garbage collection removes it, unless told otherwise.
pub const DEFAULT_GC_GRACE_PERIOD: Duration = Duration::from_secs(3600);
/// How long audited authorization decisions are kept by default (`--audit-retention`): 90 days.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

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
    /// Trusted external OIDC issuers for workload identity federation: `(issuer, JWKS source)`, the source a file
    /// path or an `http://` URL on loopback, read at start. Tokens of other issuers are never accepted as client assertions.
    pub federation_jwks: Vec<(String, String)>,
    /// How often the background garbage collector runs (`--gc-interval`); zero turns it off.
    pub gc_interval: Duration,
    /// How old unreferenced blobs, links, files and upload sessions must be before garbage collection removes them
    /// (`--gc-grace-period`): a push's blobs are unreferenced until its manifest arrives.
    pub gc_grace_period: Duration,
    /// How long audited authorization decisions are kept (`--audit-retention`); the background collector deletes
    /// older ones every `gc_interval`. Zero keeps them forever.
    pub audit_retention: Duration,
    /// The host agent that pulls and runs web apps' images (`None`: no agent in this process).
    pub host_agent: Option<crate::host_agent::HostAgentConfig>,
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
            federation_jwks: Vec::new(),
            gc_interval: DEFAULT_GC_INTERVAL,
            gc_grace_period: DEFAULT_GC_GRACE_PERIOD,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            host_agent: Some(crate::host_agent::HostAgentConfig::default()),
        }
    }
}

/// A duration as `berth serve` takes it: a number with a unit, `ms`, `s`, `m`, `h` or `d`, or several
/// (`1h30m`); a bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a duration: use e.g. 90s, 15m, 1h, 1h30m, 2d or 0");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let millis = match &rest[..unit_end] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60 * 1000,
            "h" => 60 * 60 * 1000,
            "d" => 24 * 60 * 60 * 1000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_end..];
        let part = number.checked_mul(millis).ok_or_else(invalid)?;
        total = total.checked_add(Duration::from_millis(part)).ok_or_else(invalid)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "h", "1", "1x", "1h-", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
