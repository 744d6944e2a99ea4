//! Typed HTTP client for berth's surfaces, used by the CLI and tests.
//!
//! [`Client`] speaks to one server (its base URL) over HTTPS with an explicit trust anchor, adds
//! the headers the Azure CLI sends (`Accept`, `x-ms-client-request-id`, a bearer token once one is
//! set), turns error answers into [`ArmError`] / [`OAuthError`], and waits for ARM long-running
//! operations. For registries it reads `WWW-Authenticate` challenges and speaks ACR's token
//! exchange (Entra token → refresh token → scoped access token). Request and response dumps go to `tracing` at DEBUG level (target
//! `berth_client::http`), with secrets redacted.

mod error;
pub mod redact;
pub mod tls;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{ArmError, Error, OAuthError, RegistryError};
pub use reqwest::Method;

/// The header the Azure SDKs use to correlate a request with server logs.
pub const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";

/// How long to wait between polls of a long-running operation when the server does not say.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound for a server-suggested poll interval (`Retry-After`).
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// A long-running operation still unfinished after this long is reported as a failure.
const MAX_OPERATION_TIME: Duration = Duration::from_secs(60 * 60);

/// A client for one berth server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL without a trailing slash; request paths are appended to it.
    base_url: String,
    bearer_token: Option<String>,
    extra_headers: HeaderMap,
}

/// A raw answer: status, headers and the body parsed as JSON (`Null` when empty, a JSON string
/// when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    /// A header as text, when present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A raw answer of the registry data plane: status, headers and the body's bytes as they came.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header as text, when present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// An access token from the identity provider, with its absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub access_token: String,
    /// Expiry as seconds since the Unix epoch.
    pub expires_on: u64,
}

impl AccessToken {
    /// True when the token is expired or expires within `margin`.
    pub fn expires_within(&self, margin: Duration) -> bool {
        unix_now().saturating_add(margin.as_secs()) >= self.expires_on
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

impl Client {
    /// A client for the server at `base_url`, trusting only the certificates in `ca_pem` when given,
    /// otherwise the system CA bundle (when one is found).
    pub fn new(base_url: &str, ca_pem: Option<&str>) -> Result<Client, Error> {
        let parsed = Url::parse(base_url)
            .map_err(|e| Error::InvalidUrl { url: base_url.to_owned(), reason: e.to_string() })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(Error::InvalidUrl {
                url: base_url.to_owned(),
                reason: "the scheme must be https or http".to_owned(),
            });
        }
        let roots = match ca_pem {
            Some(pem) => tls::root_store_from_pem(pem)?,
            None => tls::system_root_store(),
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls::client_config(roots)?)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(Error::Build)?;
        Ok(Client {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer_token: None,
            extra_headers: HeaderMap::new(),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// This client, sending `Authorization: Bearer <token>` from now on.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Client {
        self.bearer_token = Some(token.into());
        self
    }

    /// This client, sending `name: value` on every request (e.g. `CommandName: group create`).
    /// Headers that are not valid HTTP are skipped: they are informational only.
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.extra_headers.insert(name, value);
        }
        self
    }

    /// The absolute URL for `path` (a path with optional query, or an absolute URL as found in
    /// `Location`/`Azure-AsyncOperation` headers).
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        let text = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.base_url, path.trim_start_matches('/'))
        };
        Url::parse(&text)
            .map_err(|e| Error::InvalidUrl { url: text.clone(), reason: e.to_string() })
    }

    /// Acquires a token with the OAuth2 client-credentials grant at `{base}/{tenant}/oauth2/v2.0/token`.
    pub async fn client_credentials_token(
        &self,
        tenant: &str,
        client_id: &str,
        client_secret: &str,
        scope: &str,
    ) -> Result<AccessToken, Error> {
        let path = format!("/{}/oauth2/v2.0/token", encode_path_segment(tenant));
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("scope", scope),
        ];
        let response = self.post_form(&path, &form).await?;
        let Some(access_token) = response.body.get("access_token").and_then(Value::as_str) else {
            return Err(Error::UnexpectedResponse {
                url: path,
                reason: "the token answer has no `access_token`".to_owned(),
            });
        };
        // `expires_in` is a number for Entra, a string for some managed identity endpoints.
        let expires_in = match response.body.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(0);
        Ok(AccessToken {
            access_token: access_token.to_owned(),
            expires_on: unix_now() + expires_in,
        })
    }

    /// `GET path` without credentials, expecting a registry's `401` with a `Bearer` challenge (what
    /// `az acr login` does with `https://<login server>/v2/`). Use a client without a bearer token.
    pub async fn registry_challenge(&self, path: &str) -> Result<BearerChallenge, Error> {
        let response = self.send(Method::GET, path, None).await?;
        let url = self.url(path)?.to_string();
        if response.status != 401 {
            return Err(Error::UnexpectedResponse {
                url,
                reason: format!(
                    "the registry answered {} instead of an authentication challenge",
                    response.status
                ),
            });
        }
        response.header("www-authenticate").and_then(BearerChallenge::parse).ok_or_else(|| {
            Error::UnexpectedResponse {
                url,
                reason: "the 401 answer has no Bearer challenge with a realm".to_owned(),
            }
        })
    }

    /// ACR's token exchange, `POST <exchange_url>` (`<realm's scheme and host>/oauth2/exchange`): an Entra
    /// access token for the registry becomes a registry refresh token. Use a client without a bearer token.
    pub async fn exchange_refresh_token(
        &self,
        exchange_url: &str,
        service: &str,
        tenant: &str,
        entra_token: &str,
    ) -> Result<String, Error> {
        let form = [
            ("grant_type", "access_token"),
            ("service", service),
            ("tenant", tenant),
            ("access_token", entra_token),
        ];
        let response = self.post_form(exchange_url, &form).await?;
        token_field(&response, exchange_url, "refresh_token")
    }

    /// A registry access token for `scopes` from a refresh token: `POST <realm>` with
    /// `grant_type=refresh_token` (one `scope` field per scope). Use a client without a bearer token.
    pub async fn registry_access_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
        refresh_token: &str,
    ) -> Result<String, Error> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("service", service),
            ("refresh_token", refresh_token),
        ];
        form.extend(scopes.iter().map(|scope| ("scope", scope.as_str())));
        let response = self.post_form(realm, &form).await?;
        token_field(&response, realm, "access_token")
    }

    /// `GET`; the body of a 2xx answer.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.call(Method::GET, path, None).await
    }

    /// `PUT` with a JSON body; waits for a long-running operation and returns the final resource.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `PATCH` with a JSON body; waits for a long-running operation and returns the final resource.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `POST` with a JSON body; waits for a long-running operation.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE`; waits for a long-running operation. 200, 202 and 204 all count as success.
    pub async fn delete(&self, path: &str) -> Result<Value, Error> {
        self.call(Method::DELETE, path, None).await
    }

    /// `POST` of an `application/x-www-form-urlencoded` body; error answers become errors.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<Response, Error> {
        let url = self.url(path)?;
        let body = encode_form(form);
        let request = self
            .http
            .post(url.clone())
            .headers(self.common_headers())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone());
        let response = self.execute(&Method::POST, &url, request, body.as_bytes()).await?;
        into_success(response)
    }

    /// Sends a request and returns the answer whatever its status (only transport failures are errors).
    /// Tests use this to look at error answers in full.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, Error> {
        let url = self.url(path)?;
        let mut request =
            self.http.request(method.clone(), url.clone()).headers(self.common_headers());
        let mut logged_body = Vec::new();
        if let Some(body) = body {
            logged_body = body.to_string().into_bytes();
            request = request.header(CONTENT_TYPE, "application/json").body(logged_body.clone());
        }
        self.execute(&method, &url, request, &logged_body).await
    }

    /// Sends `body` as bytes with `headers` (which replace the JSON `Accept`) and returns the answer
    /// whatever its status, body untouched: for manifests and blobs, whose bytes are their digest.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, Error> {
        let url = self.url(path)?;
        let mut all = self.common_headers();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(*name), HeaderValue::try_from(*value))
            {
                all.insert(name, value);
            }
        }
        let mut request = self.http.request(method.clone(), url.clone()).headers(all);
        if let Some(body) = body {
            request = request.body(body);
        }
        let transport = |source| Error::Transport { url: url.to_string(), source };
        let request = request.build().map_err(transport)?;
        log_request(&method, &url, request.headers(), b"");
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(transport)?;
        log_response(status, &headers, if status < 400 { b"" } else { &bytes });
        Ok(RawResponse { status, headers, body: bytes.to_vec() })
    }

    /// Sends a request; error answers become [`Error`]s, success answers are returned as they are
    /// (no long-running operation handling).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, Error> {
        into_success(self.send(method, path, body).await?)
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let response = self.request(method.clone(), path, body).await?;
        self.finish_operation(&method, path, response).await
    }

    fn common_headers(&self) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
            headers.insert(CLIENT_REQUEST_ID, id);
        }
        if let Some(token) = &self.bearer_token {
            if let Ok(value) = HeaderValue::try_from(format!("Bearer {token}")) {
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        headers
    }

    async fn execute(
        &self,
        method: &Method,
        url: &Url,
        request: reqwest::RequestBuilder,
        logged_body: &[u8],
    ) -> Result<Response, Error> {
        let transport = |source| Error::Transport { url: url.to_string(), source };
        let request = request.build().map_err(transport)?;
        log_request(method, url, request.headers(), logged_body);
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(transport)?;
        log_response(status, &headers, &bytes);
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Response { status, headers, body })
    }

    /// Follows ARM's long-running operation protocol: `Azure-AsyncOperation` (poll until a terminal
    /// `status`, then GET the resource for PUT/PATCH) or a 202 with `Location` (poll until not 202).
    async fn finish_operation(
        &self,
        method: &Method,
        path: &str,
        response: Response,
    ) -> Result<Value, Error> {
        let started = std::time::Instant::now();
        if let Some(operation_url) = response.header("azure-asyncoperation").map(str::to_owned) {
            let mut interval = retry_after(&response);
            loop {
                tokio::time::sleep(interval).await;
                let poll = self.request(Method::GET, &operation_url, None).await?;
                interval = retry_after(&poll);
                let status = poll.body.get("status").and_then(Value::as_str).unwrap_or_default();
                if status.eq_ignore_ascii_case("succeeded") {
                    break;
                }
                if status.eq_ignore_ascii_case("failed") || status.eq_ignore_ascii_case("canceled")
                {
                    return Err(Error::OperationFailed {
                        status: status.to_owned(),
                        error: error::arm_error_from_json(poll.status, &poll.body),
                    });
                }
                if started.elapsed() > MAX_OPERATION_TIME {
                    return Err(Error::OperationFailed { status: status.to_owned(), error: None });
                }
            }
            if *method == Method::PUT || *method == Method::PATCH {
                // A plain request, not `get`: a GET never starts another operation.
                return Ok(self.request(Method::GET, path, None).await?.body);
            }
            return Ok(Value::Null);
        }
        if response.status == 202 {
            if let Some(location) = response.header("location").map(str::to_owned) {
                let mut interval = retry_after(&response);
                loop {
                    tokio::time::sleep(interval).await;
                    let poll = self.request(Method::GET, &location, None).await?;
                    if poll.status != 202 {
                        return Ok(poll.body);
                    }
                    if started.elapsed() > MAX_OPERATION_TIME {
                        return Err(Error::OperationFailed {
                            status: "InProgress".to_owned(),
                            error: None,
                        });
                    }
                    interval = retry_after(&poll);
                }
            }
        }
        Ok(response.body)
    }
}

/// A `WWW-Authenticate: Bearer realm="..",service="..",scope=".."` challenge (RFC 6750 syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

impl BearerChallenge {
    /// Parses a challenge; `None` unless it is `Bearer` with a `realm`. Quoted values may hold commas.
    pub fn parse(header: &str) -> Option<BearerChallenge> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut params: Vec<(String, String)> = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        other => value.push(other),
                    }
                }
            } else {
                value = chars.by_ref().take_while(|c| *c != ',').collect();
            }
            params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Some(BearerChallenge {
            realm: get("realm").filter(|realm| !realm.is_empty())?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

fn token_field(response: &Response, url: &str, field: &str) -> Result<String, Error> {
    match response.body.get(field).and_then(Value::as_str) {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        _ => Err(Error::UnexpectedResponse {
            url: url.to_owned(),
            reason: format!("the answer has no `{field}`"),
        }),
    }
}

fn into_success(response: Response) -> Result<Response, Error> {
    if response.status < 400 {
        return Ok(response);
    }
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("")
        .to_owned();
    let bytes = match &response.body {
        Value::Null => Vec::new(),
        Value::String(text) => text.clone().into_bytes(),
        json => json.to_string().into_bytes(),
    };
    Err(error::error_from_body(response.status, &reason, &bytes))
}

fn retry_after(response: &Response) -> Duration {
    response
        .header("retry-after")
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds).min(MAX_POLL_INTERVAL))
        .unwrap_or(DEFAULT_POLL_INTERVAL)
}

fn log_request(method: &Method, url: &Url, headers: &HeaderMap, body: &[u8]) {
    if !tracing::enabled!(target: "berth_client::http", tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(target: "berth_client::http", "Request URL: '{url}'");
    tracing::debug!(target: "berth_client::http", "Request method: '{method}'");
    log_headers("Request", headers);
    if !body.is_empty() {
        tracing::debug!(target: "berth_client::http", "Request body: {}", redact::body(body));
    }
}

fn log_response(status: u16, headers: &HeaderMap, body: &[u8]) {
    if !tracing::enabled!(target: "berth_client::http", tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(target: "berth_client::http", "Response status: {status}");
    log_headers("Response", headers);
    tracing::debug!(target: "berth_client::http", "Response content: {}", redact::body(body));
}

fn log_headers(which: &str, headers: &HeaderMap) {
    tracing::debug!(target: "berth_client::http", "{which} headers:");
    for (name, value) in headers {
        let value = value.to_str().unwrap_or("<binary>");
        tracing::debug!(target: "berth_client::http", "    '{name}': '{}'", redact::header_value(name.as_str(), value));
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_path_segment(segment: &str) -> String {
    percent_encode(segment, |byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

/// Percent-encodes a query value (unreserved characters kept; space as `%20`).
pub fn encode_query_value(value: &str) -> String {
    encode_path_segment(value)
}

fn encode_form(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(key, value)| format!("{}={}", encode_query_value(key), encode_query_value(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if keep(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_to_the_base_without_double_slashes() {
        let client = Client::new("https://127.0.0.1:8443/", None).expect("client");
        assert_eq!(client.base_url(), "https://127.0.0.1:8443");
        let url = client.url("/subscriptions?api-version=2022-12-01").expect("url");
        assert_eq!(url.as_str(), "https://127.0.0.1:8443/subscriptions?api-version=2022-12-01");
        let url = client.url("subscriptions").expect("url");
        assert_eq!(url.as_str(), "https://127.0.0.1:8443/subscriptions");
    }

    #[test]
    fn absolute_urls_are_used_as_they_are() {
        let client = Client::new("https://127.0.0.1:8443", None).expect("client");
        let url =
            client.url("https://127.0.0.1:9000/operationStatuses/1?api-version=x").expect("url");
        assert_eq!(url.as_str(), "https://127.0.0.1:9000/operationStatuses/1?api-version=x");
    }

    #[test]
    fn bad_base_urls_are_rejected() {
        assert!(matches!(Client::new("not a url", None), Err(Error::InvalidUrl { .. })));
        assert!(matches!(Client::new("ftp://127.0.0.1", None), Err(Error::InvalidUrl { .. })));
        assert!(matches!(
            Client::new("https://127.0.0.1", Some("")),
            Err(Error::InvalidCaBundle(_))
        ));
    }

    #[test]
    fn encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode_path_segment("my-rg_1.(x)"), "my-rg_1.%28x%29");
        assert_eq!(encode_query_value("resourceType eq 'a/b'"), "resourceType%20eq%20%27a%2Fb%27");
        assert_eq!(encode_form(&[("client_secret", "a+b=c&d")]), "client_secret=a%2Bb%3Dc%26d");
    }

    #[test]
    fn token_expiry_margin() {
        let now = unix_now();
        let fresh = AccessToken { access_token: "t".to_owned(), expires_on: now + 3600 };
        assert!(!fresh.expires_within(Duration::from_secs(300)));
        let stale = AccessToken { access_token: "t".to_owned(), expires_on: now + 200 };
        assert!(stale.expires_within(Duration::from_secs(300)));
    }

    #[test]
    fn error_answers_become_typed_errors() {
        let response = Response {
            status: 404,
            headers: HeaderMap::new(),
            body: serde_json::json!({"error":{"code":"ResourceNotFound","message":"gone"}}),
        };
        let error = into_success(response).expect_err("404 is an error");
        assert!(matches!(error, Error::Arm(ArmError { status: 404, .. })));
        let empty = Response { status: 403, headers: HeaderMap::new(), body: Value::Null };
        let error = into_success(empty).expect_err("403 is an error");
        assert_eq!(error.to_string(), "operation returned an invalid status `403 Forbidden`");
    }

    #[test]
    fn bearer_challenges_parse() {
        let challenge = BearerChallenge::parse(
            r#"Bearer realm="https://127.0.0.1:8443/oauth2/token",service="127.0.0.1:8443/myacr",scope="repository:myacr/a:pull,push""#,
        )
        .expect("a challenge");
        assert_eq!(challenge.realm, "https://127.0.0.1:8443/oauth2/token");
        assert_eq!(challenge.service.as_deref(), Some("127.0.0.1:8443/myacr"));
        assert_eq!(challenge.scope.as_deref(), Some("repository:myacr/a:pull,push"));
        let spaced = BearerChallenge::parse(r#"bearer Realm="r", service=s , scope="a\"b""#)
            .expect("a challenge");
        assert_eq!(
            (spaced.realm.as_str(), spaced.service.as_deref(), spaced.scope.as_deref()),
            ("r", Some("s"), Some("a\"b"))
        );
        assert_eq!(BearerChallenge::parse(r#"Basic realm="r""#), None);
        assert_eq!(BearerChallenge::parse(r#"Bearer service="s""#), None);
        assert_eq!(BearerChallenge::parse("Bearer"), None);
    }

    #[test]
    fn retry_after_is_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("600"));
        let response = Response { status: 202, headers, body: Value::Null };
        assert_eq!(retry_after(&response), MAX_POLL_INTERVAL);
        let response = Response { status: 202, headers: HeaderMap::new(), body: Value::Null };
        assert_eq!(retry_after(&response), DEFAULT_POLL_INTERVAL);
    }
}
