//! HTTP/1.1 keep-alive client connections to a loopback target, plain or over TLS, on hyper's connection API.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The request body type of every connection: requests are small and fully buffered.
pub type Body = Full<Bytes>;

/// One open connection, ready for requests one after the other.
pub type Connection = SendRequest<Body>;

/// Where requests go: a loopback address and, for HTTPS, the trust to verify the server with.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    tls: Option<TlsConnector>,
}

impl Target {
    pub fn plain(addr: SocketAddr) -> Self {
        Target { addr, tls: None }
    }

    /// HTTPS to `addr`, trusting only the certificates in `ca_pem`.
    pub fn tls(addr: SocketAddr, ca_pem: &[u8]) -> Result<Self> {
        Ok(Target { addr, tls: Some(tls_connector(ca_pem)?) })
    }

    /// Open a TCP connection and, on it, an HTTP/1.1 connection (after a TLS handshake for HTTPS).
    pub async fn connect(&self) -> Result<Connection> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        self.establish(tcp).await
    }

    /// Speak HTTP/1.1 (over TLS for HTTPS) on an already connected socket.
    pub async fn establish(&self, tcp: TcpStream) -> Result<Connection> {
        // Small requests and responses: do not let Nagle's algorithm hold them back.
        tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
        match &self.tls {
            None => handshake(TokioIo::new(tcp)).await,
            Some(connector) => {
                let name = ServerName::IpAddress(self.addr.ip().into());
                let tls = connector.connect(name, tcp).await.context("TLS handshake")?;
                handshake(TokioIo::new(tls)).await
            }
        }
    }
}

/// A client TLS configuration that trusts exactly the PEM certificates given and speaks only HTTP/1.1.
pub fn tls_connector(ca_pem: &[u8]) -> Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots
            .add(cert.context("reading a PEM certificate")?)
            .context("trusting a CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no certificate found in the CA PEM");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Offer only HTTP/1.1 so a server that also speaks h2 measures the same protocol as over plain HTTP.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn handshake<T>(io: T) -> Result<Connection>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.context("HTTP/1.1 handshake")?;
    // The driver ends when the sender is dropped or the server closes the connection.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A fully read response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Response {
    /// The body as text for error messages, cut to a readable length.
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(300).collect()
    }
}

/// Send one request on `connection` and read the whole response.
pub async fn send(connection: &mut Connection, request: Request<Body>) -> Result<Response> {
    connection.ready().await.context("connection closed")?;
    let response = connection.send_request(request).await.context("sending the request")?;
    let status = response.status();
    let body = response.into_body().collect().await.context("reading the response")?.to_bytes();
    Ok(Response { status, body })
}

/// A request that can be built again and again cheaply: the load loop sends the same one many times.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl RequestTemplate {
    /// `method path_and_query` to `addr`, with an optional bearer token.
    pub fn new(
        method: Method,
        addr: SocketAddr,
        path_and_query: &str,
        bearer: Option<&str>,
    ) -> Result<Self> {
        let uri: Uri =
            path_and_query.parse().with_context(|| format!("parsing `{path_and_query}`"))?;
        let mut headers = HeaderMap::new();
        // HTTP/1.1 requires Host; hyper's connection API does not add it.
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string()).context("Host header")?);
        if let Some(token) = bearer {
            let value =
                HeaderValue::from_str(&format!("Bearer {token}")).context("bearer token")?;
            headers.insert(AUTHORIZATION, value);
        }
        Ok(RequestTemplate { method, uri, headers, body: Bytes::new() })
    }

    /// The same request with a body of the given content type.
    pub fn with_body(mut self, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.body = body.into();
        self
    }

    /// The same request with one more header.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }

    /// The same request with one more header whose value is only known at run time (e.g. credentials).
    pub fn with_header_value(mut self, name: &'static str, value: &str) -> Result<Self> {
        self.headers.insert(name, HeaderValue::from_str(value).context("header value")?);
        Ok(self)
    }

    pub fn build(&self) -> Request<Body> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Send one request on a new connection.
pub async fn fetch(target: &Target, template: &RequestTemplate) -> Result<Response> {
    let mut connection = target.connect().await?;
    send(&mut connection, template.build()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_connector_rejects_pem_without_certificates() {
        let err = tls_connector(b"not a certificate").err().map(|e| format!("{e:#}"));
        assert_eq!(err.as_deref(), Some("no certificate found in the CA PEM"));
    }

    #[test]
    fn request_template_sets_host_and_bearer_and_keeps_the_body() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8443));
        let request = RequestTemplate::new(Method::PUT, addr, "/a?api-version=1", Some("tok"))
            .expect("valid request")
            .with_body("application/json", r#"{"location":"westeurope"}"#)
            .build();
        assert_eq!(request.method(), Method::PUT);
        assert_eq!(request.uri(), "/a?api-version=1");
        assert_eq!(request.headers()[HOST], "127.0.0.1:8443");
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer tok");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn request_template_rejects_a_token_that_is_not_a_header_value() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(RequestTemplate::new(Method::GET, addr, "/", Some("bad\ntoken")).is_err());
    }
}
