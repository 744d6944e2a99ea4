//! The IMDS scenario (`berth-bench --imds`): tokens issued per second by a workload's metadata listener.
//!
//! Each repetition starts `berth serve` on a fresh data directory (HTTPS, as it runs by default), signs in as the
//! bootstrap owner, creates the group `bench` and the registry `benchacr` with a system-assigned identity, registers
//! the registry as a workload (`PUT .../workloadEndpoints/default`) and loads its metadata listener (plain HTTP on
//! loopback, as IMDS is) with `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` and
//! `Metadata: true` over C keep-alive connections. Every answer must be 200 with a token. The ceiling server then
//! takes the same load over plain HTTP at the same C, on the same machine, in the same run. Tokens are re-used
//! for an identity and resource for five minutes (as real IMDS caches them), so this measures the endpoint, not
//! RSA: the first request of each repetition mints, the rest are served from the cache.

use std::path::Path;

use anyhow::{bail, Context, Result};
use http::Method;
use serde::Serialize;

use crate::berth;
use crate::ceiling::CeilingServer;
use crate::client::{self, RequestTemplate, Target};
use crate::load::{self, LoadResult, LoadSpec};

/// The path and query the load sends (the ARM audience, URL-encoded as SDKs send it).
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F";
/// The throughput the issue asks for, tokens per second on 2 cores.
pub const TARGET_TOKENS_PER_SECOND: f64 = 20_000.0;

/// One repetition: berth's IMDS listener and the ceiling at each C.
#[derive(Debug, Clone, Serialize)]
pub struct ImdsRep {
    pub rep: usize,
    pub token_response_bytes: usize,
    pub berth: Vec<LoadResult>,
    pub ceiling: Vec<LoadResult>,
}

/// Run the scenario `reps` times; print a table and return every number.
pub async fn run(
    binary: &Path,
    run_dir: &Path,
    reps: usize,
    connections: &[usize],
    spec: &dyn Fn(usize) -> LoadSpec,
) -> Result<Vec<ImdsRep>> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut results = Vec::new();
    for rep in 1..=reps {
        let rep_dir = run_dir.join(format!("imds-rep{rep}"));
        let (token_response_bytes, berth_loads) =
            berth_rep(binary, &rep_dir, rep, connections, spec)
                .await
                .with_context(|| format!("IMDS repetition {rep}"))?;
        let server = CeilingServer::start(false, cpus)?;
        let target = server.target()?;
        let template = RequestTemplate::new(Method::GET, server.addr, TOKEN_PATH, None)?;
        let mut ceiling = Vec::new();
        for &c in connections {
            eprintln!("rep {rep}: ceiling over http, C={c}");
            ceiling.push(load::run(&target, &template, spec(c)).await?);
        }
        results.push(ImdsRep { rep, token_response_bytes, berth: berth_loads, ceiling });
    }
    print!("{}", render(&results, connections));
    Ok(results)
}

async fn berth_rep(
    binary: &Path,
    rep_dir: &Path,
    rep: usize,
    connections: &[usize],
    spec: &dyn Fn(usize) -> LoadSpec,
) -> Result<(usize, Vec<LoadResult>)> {
    eprintln!("rep {rep}: berth, setting up a workload");
    let berth::SignedIn { mut process, target, bootstrap, owner_token: token, .. } =
        berth::start_signed_in(binary, rep_dir).await?;
    let registry = format!(
        "/subscriptions/{}/resourceGroups/bench/providers/Microsoft.ContainerRegistry/registries/benchacr",
        bootstrap.subscription_id
    );
    put(
        &target,
        &format!("{registry}?api-version=2023-07-01"),
        &token,
        r#"{"location":"westeurope","sku":{"name":"Basic"},"identity":{"type":"SystemAssigned"}}"#,
    )
    .await?;
    let endpoint = put(
        &target,
        &format!("{registry}/providers/Berth.ManagedIdentity/workloadEndpoints/default?api-version=2026-01-01"),
        &token,
        "{}",
    )
    .await?;
    let imds = endpoint["properties"]["imdsEndpoint"]
        .as_str()
        .and_then(|url| url.strip_prefix("http://"))
        .context("the workload endpoint names no imdsEndpoint")?;
    let imds_addr: std::net::SocketAddr =
        imds.parse().with_context(|| format!("parsing {imds}"))?;

    let imds_target = Target::plain(imds_addr);
    let template = RequestTemplate::new(Method::GET, imds_addr, TOKEN_PATH, None)?
        .with_header("metadata", "true");
    let check = client::fetch(&imds_target, &template).await.context("first IMDS request")?;
    let answer: serde_json::Value = serde_json::from_slice(&check.body).unwrap_or_default();
    if check.status != http::StatusCode::OK || !answer["access_token"].is_string() {
        bail!("the IMDS endpoint answered {}: {}", check.status, check.body_excerpt());
    }
    let mut loads = Vec::new();
    for &c in connections {
        eprintln!("rep {rep}: berth IMDS load with C={c}");
        process.ensure_running()?;
        loads.push(load::run(&imds_target, &template, spec(c)).await?);
    }
    process.ensure_running()?;
    process.stop().context("stopping berth")?;
    Ok((check.body.len(), loads))
}

async fn put(
    target: &Target,
    path: &str,
    token: &str,
    body: &'static str,
) -> Result<serde_json::Value> {
    let template = RequestTemplate::new(Method::PUT, target.addr, path, Some(token))?
        .with_body("application/json", body);
    let response = client::fetch(target, &template).await.with_context(|| format!("PUT {path}"))?;
    if !response.status.is_success() {
        bail!("PUT {path} answered {}: {}", response.status, response.body_excerpt());
    }
    serde_json::from_slice(&response.body)
        .with_context(|| format!("parsing the answer to PUT {path}"))
}

/// The table: per C, berth's IMDS tokens/s next to the ceiling.
pub fn render(results: &[ImdsRep], connections: &[usize]) -> String {
    let reps: Vec<_> = results.iter().map(|r| (r.berth.as_slice(), r.ceiling.as_slice())).collect();
    crate::report::load_vs_ceiling(
        &format!("IMDS tokens per second (target {TARGET_TOKENS_PER_SECOND:.0}/s)"),
        "tokens/s",
        connections,
        &reps,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_path_asks_for_the_arm_audience() {
        let query = TOKEN_PATH.split_once('?').unwrap().1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        assert!(pairs.contains(&("resource".into(), "https://management.azure.com/".into())));
        assert!(pairs.contains(&("api-version".into(), "2018-02-01".into())));
    }
}
