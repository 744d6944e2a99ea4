//! `berth serve`: turns flags and `BERTH_*` variables into the server's `Config` and runs it until
//! SIGINT/SIGTERM.

use anyhow::Result;

use crate::args::ServeArgs;

use berth_server::{run as run_server, Config};

pub async fn run(args: ServeArgs) -> Result<()> {
    run_server(config_from(args)).await
}

fn config_from(args: ServeArgs) -> Config {
    let mut config = Config::with_data_dir(args.data_dir);
    config.listen = args.listen;
    config.database_url = args.database_url;
    config.blob_store = args.blob_store;
    config.tls_cert = args.tls_cert;
    config.tls_key = args.tls_key;
    config.insecure_http = args.insecure_http;
    config.registry_domain = args.registry_domain;
    config.public_url = args.public_url;
    config.federation_jwks = args.federation_jwks;
    config.gc_interval = args.gc_interval;
    config.gc_grace_period = args.gc_grace_period;
    config.audit_retention = args.audit_retention;
    config.host_agent =
        (!args.no_host_agent).then_some(berth_server::host_agent::HostAgentConfig {
            poll_interval: args.site_poll_interval,
            retry_base: args.site_retry_base,
            retry_max: args.site_retry_max,
            oci_runtime: args.oci_runtime,
        });
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "berth",
            "serve",
            "--data-dir",
            "/tmp/d",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://db",
            "--blob-store",
            "file:///b",
            "--registry-domain",
            "reg.local",
            "--public-url",
            "https://berth.local",
        ])
        .expect("valid");
        let Command::Serve(args) = cli.command else { panic!("serve expected") };
        let config = config_from(args);
        assert_eq!(config.data_dir, std::path::PathBuf::from("/tmp/d"));
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.database_url.as_deref(), Some("postgres://db"));
        assert_eq!(config.blob_store.as_deref(), Some("file:///b"));
        assert_eq!(config.registry_domain.as_deref(), Some("reg.local"));
        assert_eq!(config.public_url.as_deref(), Some("https://berth.local"));
        assert!(!config.insecure_http);
    }
}
