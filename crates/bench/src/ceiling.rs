//! The ceiling: a minimal hyper server that answers every request with a fixed JSON body of about the size of
//! berth's resource-group response, so a run can say what fraction of this machine's loopback HTTP capacity berth
//! reaches. It runs on its own runtime and threads, as berth runs in its own process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::client::Target;

/// What the ceiling server answers: shaped and sized like berth's answer to `GET` of a resource group (about
/// 500 bytes), so both servers move the same bytes per request.
pub const HELLO_BODY: &str = concat!(
    r#"{"id":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench","#,
    r#""name":"bench","type":"Microsoft.Resources/resourceGroups","location":"westeurope","#,
    r#""tags":{},"properties":{"provisioningState":"Succeeded"},"#,
    r#""systemData":{"createdBy":"00000000-0000-0000-0000-000000000000","createdByType":"Application","#,
    r#""createdAt":"2025-01-01T00:00:00.000000000Z","#,
    r#""lastModifiedBy":"00000000-0000-0000-0000-000000000000","lastModifiedByType":"Application","#,
    r#""lastModifiedAt":"2025-01-01T00:00:00.000000000Z"}}"#
);

/// A running ceiling server; dropping it stops the server and joins its thread.
pub struct CeilingServer {
    pub addr: SocketAddr,
    /// The self-signed certificate clients must trust, when serving TLS.
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CeilingServer {
    /// Bind a free loopback port and serve on `worker_threads` threads of a runtime of its own.
    pub fn start(tls: bool, worker_threads: usize) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding the ceiling server")?;
        listener.set_nonblocking(true).context("making the ceiling listener non-blocking")?;
        let addr = listener.local_addr().context("ceiling server address")?;
        let (acceptor, ca_pem) = if tls {
            let (acceptor, pem) = self_signed_acceptor()?;
            (Some(acceptor), Some(pem))
        } else {
            (None, None)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("ceiling")
            .enable_all()
            .build()
            .context("starting the ceiling runtime")?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("ceiling-accept".into())
            .spawn(move || {
                // Dropping the runtime at the end of this closure ends every connection task with it.
                runtime.block_on(accept_loop(listener, acceptor, shutdown_rx));
            })
            .context("starting the ceiling thread")?;
        Ok(CeilingServer { addr, ca_pem, shutdown: Some(shutdown_tx), thread: Some(thread) })
    }

    /// A client target for this server, trusting its certificate when it serves TLS.
    pub fn target(&self) -> Result<Target> {
        match &self.ca_pem {
            Some(pem) => Target::tls(self.addr, pem.as_bytes()),
            None => Ok(Target::plain(self.addr)),
        }
    }
}

impl Drop for CeilingServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1, and that certificate as PEM.
fn self_signed_acceptor() -> Result<(TlsAcceptor, String)> {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .context("generating the ceiling certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .context("loading the ceiling certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certified.cert.pem()))
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (e.g. out of descriptors) must not end the server, nor spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let builder = hyper::server::conn::http1::Builder::new();
            let service = service_fn(hello);
            match acceptor {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
            }
        });
    }
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO_BODY.as_bytes())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{fetch, RequestTemplate};
    use http::Method;

    #[test]
    fn hello_body_is_json_of_about_500_bytes() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(HELLO_BODY);
        assert!(parsed.is_ok(), "HELLO_BODY must be JSON");
        assert!((450..=550).contains(&HELLO_BODY.len()), "length {}", HELLO_BODY.len());
    }

    async fn answers_hello(tls: bool) {
        let server = CeilingServer::start(tls, 1).expect("ceiling server starts");
        let target = server.target().expect("target");
        let template =
            RequestTemplate::new(Method::GET, server.addr, "/anything?x=1", None).expect("request");
        let response = fetch(&target, &template).await.expect("ceiling server answers");
        assert_eq!(response.status, http::StatusCode::OK);
        assert_eq!(response.body, HELLO_BODY.as_bytes());
    }

    #[tokio::test]
    async fn answers_over_plain_http() {
        answers_hello(false).await;
    }

    #[tokio::test]
    async fn answers_over_tls_with_its_self_signed_certificate() {
        answers_hello(true).await;
    }

    #[tokio::test]
    async fn stops_listening_when_dropped() {
        let server = CeilingServer::start(false, 1).expect("ceiling server starts");
        let addr = server.addr;
        drop(server);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
