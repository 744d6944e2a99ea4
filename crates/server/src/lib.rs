//! The berth server: HTTP surfaces, TLS, bootstrap and the mapping of domain errors to wire errors.
//!
//! [`start`] opens the metadata store, bootstraps it on first start, prepares TLS and binds the listener;
//! [`run`] does that and serves until SIGINT or SIGTERM, then drains in-flight requests before it returns.

pub mod audit;
pub mod auth;
pub mod authorize;
pub mod bootstrap;
mod config;
pub mod error;
pub mod federation;
mod fsutil;
pub mod gc;
pub mod host_agent;
pub mod registry_auth;
mod routes;
pub mod state;
pub mod time;
mod tls;
pub mod workloads;

pub use config::{parse_duration, Config, DEFAULT_GC_GRACE_PERIOD, DEFAULT_GC_INTERVAL};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_db::Db;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::authorize::StoreAuthorizer;
use crate::state::AppState;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A started server.
pub struct Server {
    /// The base URL clients use, e.g. `https://127.0.0.1:8443`.
    pub endpoint: String,
    pub local_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The CA clients must trust, when berth generated the certificates.
    pub ca_path: Option<PathBuf>,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
    /// The background garbage collector, when `gc_interval` is not zero.
    gc_task: Option<JoinHandle<()>>,
    /// The host agent that pulls web apps' images, when configured.
    agent_task: Option<JoinHandle<()>>,
}

impl Server {
    /// Stop accepting, let in-flight requests finish, close the store.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.state.workloads.close_all().await;
        // The collector stops between two deletions; it finishes before the store closes.
        if let Some(gc_task) = self.gc_task {
            gc_task.await.context("garbage collector panicked")?;
        }
        if let Some(agent_task) = self.agent_task {
            agent_task.await.context("host agent panicked")?;
        }
        self.task.await.context("server task panicked")?
    }

    /// Wait until the server stops by itself (it does not, unless its listener fails).
    pub async fn wait(self) -> Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Start serving in the background and return once the listener is bound.
pub async fn start(config: Config) -> Result<Server> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize().unwrap_or(config.data_dir.clone());

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    let scheme = if config.insecure_http { "http" } else { "https" };
    let endpoint = config
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("{scheme}://{local_addr}"));

    let mut extra_names = Vec::new();
    if let Some(host) = host_of(&endpoint) {
        extra_names.push(host);
    }
    if let Some(domain) = &config.registry_domain {
        extra_names.push(domain.clone());
        extra_names.push(format!("*.{domain}"));
    }
    let tls = if config.insecure_http {
        None
    } else {
        Some(tls::prepare(
            &data_dir,
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
            &extra_names,
        )?)
    };
    let ca = tls.as_ref().and_then(|t| Some((t.ca_path.clone()?, t.ca_pem.clone()?)));

    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("berth.db").display()));
    let db = Db::connect(&database_url).await.context("opening the metadata store")?;
    let boot = bootstrap::ensure(
        &db,
        &data_dir,
        &endpoint,
        ca.as_ref().map(|(p, pem)| (p.as_path(), pem.as_str())),
    )
    .await?;
    let blob_location =
        config.blob_store.clone().unwrap_or_else(|| data_dir.join("blobs").display().to_string());
    let blobs = berth_storage::BlobStore::open(&blob_location)
        .await
        .with_context(|| format!("opening the blob store at {blob_location}"))?;
    let authorizer = Arc::new(StoreAuthorizer { db: db.clone() });
    let mut state = AppState::new(
        db.clone(),
        blobs,
        boot.tenant_id,
        endpoint.clone(),
        config.registry_domain.clone(),
        authorizer,
    )
    .await?;
    state.federation = federation::FederatedIssuers::load(&config.federation_jwks)
        .await
        .context("loading --federation-jwks")?;
    state.gc_grace_period = config.gc_grace_period;
    let state = Arc::new(state);
    workloads::open_all(&state).await.context("opening the workload listeners")?;

    let app = routes::router(state.clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server_config));
    let gc_task = (!config.gc_interval.is_zero()).then(|| {
        gc::spawn_background(
            state.clone(),
            config.gc_interval,
            config.gc_grace_period,
            config.audit_retention,
            shutdown_rx.clone(),
        )
    });
    let agent_task = config.host_agent.clone().map(|agent| {
        let trust_pem = match (&ca, &config.tls_cert, config.insecure_http) {
            (_, _, true) => None,
            (Some((_, pem)), _, _) => Some(pem.clone()),
            (None, Some(cert), _) => std::fs::read_to_string(cert).ok(),
            (None, None, false) => None,
        };
        host_agent::spawn(
            state.clone(),
            agent,
            data_dir.clone(),
            host_agent::Listener { local_addr, trust_pem },
            shutdown_rx.clone(),
        )
    });
    let task = tokio::spawn(serve(listener, app, acceptor, shutdown_rx, db));
    tracing::info!(%endpoint, data_dir = %data_dir.display(), "berth is serving");
    Ok(Server {
        endpoint,
        local_addr,
        data_dir,
        ca_path: ca.map(|(p, _)| p),
        state,
        shutdown: shutdown_tx,
        task,
        gc_task,
        agent_task,
    })
}

/// Serve until SIGINT or SIGTERM, then shut down gracefully.
pub async fn run(config: Config) -> Result<()> {
    let server = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    server.shutdown().await
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host_port = rest.split('/').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port)
    };
    Some(host.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    db: Db,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors must not end the server: wait and accept again.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let conn =
                                builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still busy after the drain timeout");
    }
    db.close().await;
    Ok(())
}
