//! The harness: a started server plus a `berth` runner with an isolated `BERTH_CONFIG_DIR`.

use std::path::Path;
use std::process::Output;

use berth_test_support::TestServer;
use serde_json::Value;

pub struct Harness {
    pub server: TestServer,
    pub config_dir: tempfile::TempDir,
}

/// What one `berth` run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout parsed as JSON; panics with the whole run when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Asserts exit code 0 and returns self.
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "berth failed:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Harness {
    pub async fn start() -> Harness {
        let server = TestServer::start().await.expect("server starts");
        let config_dir = tempfile::tempdir().expect("config dir");
        Harness { server, config_dir }
    }

    /// A harness on the given storage backend.
    pub async fn start_on(backend: berth_db::Backend) -> Harness {
        let server = TestServer::start_on(backend).await.expect("server starts");
        let config_dir = tempfile::tempdir().expect("config dir");
        Harness { server, config_dir }
    }

    /// A harness whose server config `configure` adjusts first (e.g. garbage collection's grace period).
    pub async fn start_with(
        configure: impl Fn(&mut berth_server::Config) + Send + Sync + 'static,
    ) -> Harness {
        let backend = berth_db::Backend::Sqlite;
        let server = TestServer::start_configured(backend, Some(std::sync::Arc::new(configure)))
            .await
            .expect("server starts");
        let config_dir = tempfile::tempdir().expect("config dir");
        Harness { server, config_dir }
    }

    /// Runs `berth args...` with this harness's config directory and no inherited CA or server
    /// settings, and stdin closed (no terminal to prompt on).
    pub async fn berth(&self, args: &[&str]) -> Run {
        run_berth(self.config_dir.path(), args).await
    }

    /// Logs in as the bootstrap owner, trusting the server's CA through `--ca-file`.
    pub async fn login_owner(&self) -> Run {
        let server = &self.server;
        let ca = server.ca_pem_path.to_string_lossy().into_owned();
        self.login_as(&server.client_id, &server.client_secret, &ca, &[]).await
    }

    pub async fn login_as(
        &self,
        client_id: &str,
        secret: &str,
        ca_file: &str,
        extra: &[&str],
    ) -> Run {
        let server = &self.server;
        let mut args = vec![
            "login",
            "--server",
            server.endpoint.as_str(),
            "--service-principal",
            "-u",
            client_id,
            "-p",
            secret,
            "--tenant",
            server.tenant_id.as_str(),
            "--ca-file",
            ca_file,
        ];
        args.extend_from_slice(extra);
        self.berth(&args).await
    }
}

pub async fn run_berth(config_dir: &Path, args: &[&str]) -> Run {
    run_berth_with_env(config_dir, args, &[]).await
}

/// [`run_berth`] with environment variables set (`Some`) or removed (`None`).
pub async fn run_berth_with_env(
    config_dir: &Path,
    args: &[&str],
    env: &[(&str, Option<&Path>)],
) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .args(args)
        .env("BERTH_CONFIG_DIR", config_dir)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("BERTH_SERVER")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    Run::from(command.output().await.expect("berth runs"))
}
