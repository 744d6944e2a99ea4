//! Test fixtures: a real berth server on 127.0.0.1:0 with a temporary data directory and database.
//!
//! `TestServer::start()` runs the real server in-process over HTTPS with its generated CA, on SQLite;
//! `TestServer::start_on(backend)` picks the metadata backend (PostgreSQL gets a fresh database per server).
//! The fixture reads `bootstrap.json` like a user would and offers an HTTP client that trusts the server's CA.

pub mod images;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
pub use berth_db::testing::backends;
use berth_db::testing::scratch_database;
pub use berth_db::Backend;
use berth_server::{Config, Server};
use serde_json::Value;

/// Adjusts the configuration a test server starts (and restarts) with.
pub type Configure = Arc<dyn Fn(&mut Config) + Send + Sync>;

pub struct TestServer {
    server: Option<Server>,
    configure: Option<Configure>,
    /// Kept alive for the test's duration; removed on drop.
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub backend: Backend,
    pub endpoint: String,
    pub local_addr: SocketAddr,
    pub ca_pem_path: PathBuf,
    pub ca_pem: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// A client that trusts the server's CA and nothing else.
    pub http: reqwest::Client,
}

impl TestServer {
    /// HTTPS on SQLite.
    pub async fn start() -> Result<TestServer> {
        Self::start_on(Backend::Sqlite).await
    }

    pub async fn start_on(backend: Backend) -> Result<TestServer> {
        Self::start_configured(backend, None).await
    }

    /// [`TestServer::start_on`] with a hook that adjusts the configuration (e.g. `federation_jwks`); the hook is
    /// applied again on [`TestServer::restart`].
    pub async fn start_configured(
        backend: Backend,
        configure: Option<Configure>,
    ) -> Result<TestServer> {
        let data_dir = tempfile::tempdir()?;
        let database_url =
            scratch_database(backend, data_dir.path()).await.context("creating a test database")?;
        let server = berth_server::start(Self::config(
            data_dir.path().into(),
            &database_url,
            "127.0.0.1:0".parse()?,
            configure.as_ref(),
        ))
        .await?;
        let bootstrap: Value =
            serde_json::from_slice(&std::fs::read(data_dir.path().join("bootstrap.json"))?)?;
        let text = |k: &str| {
            bootstrap[k]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("bootstrap.json lacks {k}"))
        };
        let ca_pem_path = server.ca_path.clone().context("no generated CA")?;
        let ca_pem = std::fs::read_to_string(&ca_pem_path)?;
        let http = client_trusting(&ca_pem)?;
        Ok(TestServer {
            endpoint: server.endpoint.clone(),
            local_addr: server.local_addr,
            server: Some(server),
            configure,
            data_dir,
            database_url,
            backend,
            ca_pem_path,
            ca_pem,
            tenant_id: text("tenantId")?,
            subscription_id: text("subscriptionId")?,
            client_id: text("clientId")?,
            client_secret: text("clientSecret")?,
            http,
        })
    }

    fn config(
        data_dir: PathBuf,
        database_url: &str,
        listen: SocketAddr,
        configure: Option<&Configure>,
    ) -> Config {
        let mut config = Config::with_data_dir(data_dir);
        config.listen = listen;
        config.database_url = Some(database_url.to_string());
        if let Some(configure) = configure {
            configure(&mut config);
        }
        config
    }

    /// Another node of the same installation: a second server in this process on the same metadata database and the
    /// same data directory (blob store, CA), listening on its own loopback port but answering under this node's
    /// URL (`--public-url`), as nodes behind one load balancer do. The caller shuts it down.
    pub async fn second_node(&self) -> Result<Server> {
        let mut config = Self::config(
            self.data_dir.path().into(),
            &self.database_url,
            "127.0.0.1:0".parse()?,
            self.configure.as_ref(),
        );
        config.public_url = Some(self.endpoint.clone());
        berth_server::start(config).await
    }

    /// Shut the server down gracefully and start it again on the same data and address.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        // Another test's outgoing connection may hold the released port as its source port for a moment
        // (bind then fails with EADDRINUSE): wait for it rather than fail.
        let mut attempts = 0;
        let server = loop {
            let config = Self::config(
                self.data_dir.path().into(),
                &self.database_url,
                self.local_addr,
                self.configure.as_ref(),
            );
            match berth_server::start(config).await {
                Ok(server) => break server,
                Err(e) if attempts < 100 && format!("{e:#}").contains("in use") => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.endpoint = server.endpoint.clone();
        self.server = Some(server);
        Ok(())
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.endpoint, path)
    }

    /// A control-plane token for any client id and secret; the error body on failure.
    pub async fn token_for(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: &str,
    ) -> Result<String> {
        let response = self
            .http
            .post(self.url(&format!("/{}/oauth2/v2.0/token", self.tenant_id)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("scope", scope),
            ])
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("token request failed with {status}: {body}");
        }
        body["access_token"].as_str().map(str::to_string).context("no access_token")
    }

    /// A control-plane token of the bootstrap owner.
    pub async fn owner_token(&self) -> Result<String> {
        self.token_for(
            &self.client_id,
            &self.client_secret,
            "https://management.azure.com/.default",
        )
        .await
    }

    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        Ok(())
    }
}

/// An HTTP client that trusts exactly the given CA.
pub fn client_trusting(ca_pem: &str) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .build()?)
}
