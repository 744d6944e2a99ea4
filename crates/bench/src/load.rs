//! The load generator: C keep-alive HTTP/1.1 connections, each sending the same request back to back, first for a
//! warm-up and then for a measured window. Every request's latency in the window is recorded and sorted afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::client::{send, Connection, RequestTemplate, Target};
use crate::stats::LatencySummary;

/// No single request may take longer than this; a stuck server fails the run instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound of requests per connection, so the loop is bounded in count as well as in time.
const MAX_REQUESTS_PER_CONNECTION: u64 = 20_000_000;
/// How often one connection may be re-opened after it broke before it gives up.
const MAX_RECONNECTS: u32 = 100;

/// How much load, for how long.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub connections: usize,
    pub duration_s: f64,
    /// Requests answered 200 that started and finished inside the measured window.
    pub requests: u64,
    pub requests_per_second: f64,
    /// Requests that failed or were not answered 200, warm-up included.
    pub errors: u64,
    pub reconnects: u64,
    /// The first failure, to tell what went wrong.
    pub first_error: Option<String>,
    pub latency: Option<LatencySummary>,
}

/// What one connection's task brings back.
#[derive(Default)]
struct ConnectionOutcome {
    latencies_ns: Vec<u64>,
    errors: u64,
    reconnects: u32,
    first_error: Option<String>,
}

impl ConnectionOutcome {
    fn failed(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

/// Run `spec` against `target` with copies of `template`. Connections are opened before the clock starts.
pub async fn run(
    target: &Target,
    template: &RequestTemplate,
    spec: LoadSpec,
) -> Result<LoadResult> {
    if spec.connections == 0 || spec.duration.is_zero() {
        bail!("a load run needs at least one connection and a non-zero duration");
    }
    let mut connections = Vec::with_capacity(spec.connections);
    for index in 0..spec.connections {
        let connection = tokio::time::timeout(REQUEST_TIMEOUT, target.connect())
            .await
            .with_context(|| format!("opening connection {index}: timed out"))?
            .with_context(|| format!("opening connection {index}"))?;
        connections.push(connection);
    }

    let measure_from = Instant::now() + spec.warmup;
    let until = measure_from + spec.duration;
    let template = Arc::new(template.clone());
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            let target = target.clone();
            let template = template.clone();
            tokio::spawn(drive(target, template, connection, measure_from, until))
        })
        .collect();

    let mut latencies_ns = Vec::new();
    let (mut errors, mut reconnects, mut first_error) = (0, 0, None);
    for task in tasks {
        let outcome = task.await.context("a load connection task panicked")?;
        latencies_ns.extend(outcome.latencies_ns);
        errors += outcome.errors;
        reconnects += u64::from(outcome.reconnects);
        first_error = first_error.or(outcome.first_error);
    }
    latencies_ns.sort_unstable();
    let requests = latencies_ns.len() as u64;
    let duration_s = spec.duration.as_secs_f64();
    Ok(LoadResult {
        connections: spec.connections,
        duration_s,
        requests,
        requests_per_second: requests as f64 / duration_s,
        errors,
        reconnects,
        first_error,
        latency: LatencySummary::from_sorted_nanos(&latencies_ns),
    })
}

/// One connection's loop: send, wait for the whole response, record, repeat until `until`.
async fn drive(
    target: Target,
    template: Arc<RequestTemplate>,
    connection: Connection,
    measure_from: Instant,
    until: Instant,
) -> ConnectionOutcome {
    let mut outcome = ConnectionOutcome::default();
    let mut connection = Some(connection);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let connection_now = match connection.as_mut() {
            Some(open) => open,
            None => {
                if outcome.reconnects >= MAX_RECONNECTS || Instant::now() >= until {
                    break;
                }
                outcome.reconnects += 1;
                match tokio::time::timeout(REQUEST_TIMEOUT, target.connect()).await {
                    Ok(Ok(open)) => connection.insert(open),
                    Ok(Err(e)) => {
                        outcome.failed(|| format!("reconnecting: {e:#}"));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    Err(_) => {
                        outcome.failed(|| "reconnecting: timed out".to_string());
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        if started >= until {
            break;
        }
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, send(connection_now, template.build())).await;
        let finished = Instant::now();
        match result {
            Ok(Ok(response)) if response.status == http::StatusCode::OK => {
                if started >= measure_from && finished <= until {
                    // A request lasting longer than 584 years would not fit; saturate instead.
                    let nanos = u64::try_from((finished - started).as_nanos()).unwrap_or(u64::MAX);
                    outcome.latencies_ns.push(nanos);
                }
            }
            Ok(Ok(response)) => {
                outcome
                    .failed(|| format!("status {}: {}", response.status, response.body_excerpt()));
            }
            Ok(Err(e)) => {
                outcome.failed(|| format!("{e:#}"));
                connection = None;
            }
            Err(_) => {
                outcome.failed(|| format!("no answer within {REQUEST_TIMEOUT:?}"));
                connection = None;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceiling::CeilingServer;
    use http::Method;

    fn short_spec(connections: usize) -> LoadSpec {
        LoadSpec {
            connections,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
        }
    }

    async fn load_ceiling(tls: bool, connections: usize) -> LoadResult {
        let server = CeilingServer::start(tls, 1).expect("ceiling server starts");
        let target = server.target().expect("target");
        let template = RequestTemplate::new(Method::GET, server.addr, "/", None).expect("request");
        run(&target, &template, short_spec(connections)).await.expect("load run")
    }

    fn assert_clean(result: &LoadResult, connections: usize) {
        assert_eq!(result.connections, connections);
        assert_eq!(result.errors, 0, "first error: {:?}", result.first_error);
        assert!(result.requests > 0, "no request completed in the window");
        let expected_rps = result.requests as f64 / 0.3;
        assert!((result.requests_per_second - expected_rps).abs() < 1e-6);
        let latency = result.latency.expect("latencies were recorded");
        assert!(latency.p50_us > 0.0);
        assert!(latency.p50_us <= latency.p90_us && latency.p90_us <= latency.p99_us);
        assert!(latency.p99_us <= latency.max_us);
        // Only requests inside the 300 ms window count.
        assert!(latency.max_us <= 300_000.0);
    }

    #[tokio::test]
    async fn loads_the_ceiling_server_over_plain_http() {
        let result = load_ceiling(false, 4).await;
        assert_clean(&result, 4);
    }

    #[tokio::test]
    async fn loads_the_ceiling_server_over_tls() {
        let result = load_ceiling(true, 2).await;
        assert_clean(&result, 2);
    }

    #[tokio::test]
    async fn counts_responses_other_than_200_as_errors() {
        // A server that answers 404 to everything: the plain ceiling server cannot, so use a raw one-line server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_request| async {
                        let mut response = http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from("no"),
                        ));
                        *response.status_mut() = http::StatusCode::NOT_FOUND;
                        Ok::<_, std::convert::Infallible>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let template = RequestTemplate::new(Method::GET, addr, "/", None).expect("request");
        let result = run(&Target::plain(addr), &template, short_spec(1)).await.expect("load run");
        assert_eq!(result.requests, 0);
        assert!(result.errors > 0);
        assert_eq!(result.first_error.as_deref(), Some("status 404 Not Found: no"));
        assert_eq!(result.latency, None);
    }

    #[tokio::test]
    async fn refuses_an_empty_spec() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let template = RequestTemplate::new(Method::GET, addr, "/", None).expect("request");
        let spec =
            LoadSpec { connections: 0, warmup: Duration::ZERO, duration: Duration::from_secs(1) };
        assert!(run(&Target::plain(addr), &template, spec).await.is_err());
    }
}
