//! The deployment scenario (`berth-bench --deploy`): the second source document's Bicep files compiled by
//! `berth bicep build` and deployed end to end, first creating and then re-deploying with no change.
//!
//! Each repetition starts `berth serve` on a fresh data directory (HTTPS, SQLite: its defaults), signs in as the
//! bootstrap owner, creates the group `bench` and the registry `acrbench`, and compiles the corrected `main.bicep`
//! (`--deploy-template`) with the same binary's `berth bicep build --stdout`, timing the whole process (start,
//! compile of three files, JSON out). It then `PUT`s `.../deployments/main` with the template and the parameters
//! az would send, and polls the deployment every 2 ms until `Succeeded`: a user-assigned identity and an AcrPull
//! assignment on the registry, as two nested deployments, each resource through the ordinary handlers and their
//! authorization. The first deployment creates them; `--deploy-runs` more re-deploy the same template (nothing
//! changes, as ARM's idempotency requires; the benchmark checks that the identity keeps its principal).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::berth;
use crate::berth::Arm;
use crate::client::{self, RequestTemplate};
use crate::stats::{median, millis};

const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
const DEPLOYMENTS_API: &str = "api-version=2025-04-01";
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(60);

/// The corrected files of the source document, as the repository holds them.
pub fn default_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bicep/tests/scenario/corrected/main.bicep")
}

/// One repetition: the compile time, the first deployment and the re-deployments, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct DeployRep {
    pub rep: usize,
    pub compile_ms: f64,
    pub first_ms: f64,
    pub redeploy_ms: Vec<f64>,
}

/// Run the scenario `reps` times; print a table and return every number.
pub async fn run(
    binary: &Path,
    run_dir: &Path,
    reps: usize,
    template: &Path,
    runs: usize,
) -> Result<Vec<DeployRep>> {
    let mut results = Vec::new();
    for rep in 1..=reps {
        let rep_dir = run_dir.join(format!("deploy-rep{rep}"));
        let result = berth_rep(binary, &rep_dir, rep, template, runs)
            .await
            .with_context(|| format!("deployment repetition {rep}"))?;
        results.push(result);
    }
    print!("{}", render(&results));
    Ok(results)
}

async fn berth_rep(
    binary: &Path,
    rep_dir: &Path,
    rep: usize,
    template_file: &Path,
    runs: usize,
) -> Result<DeployRep> {
    eprintln!("rep {rep}: berth, a registry, then the template");
    let berth::SignedIn { mut process, target, bootstrap, owner_token, .. } =
        berth::start_signed_in(binary, rep_dir).await?;
    let group = format!("/subscriptions/{}/resourceGroups/bench", bootstrap.subscription_id);
    let arm = Arm { target: &target, token: &owner_token };
    arm.call(
        Method::PUT,
        &format!("{group}/providers/Microsoft.ContainerRegistry/registries/acrbench?api-version=2023-07-01"),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
    )
    .await?;

    // berth bicep build main.bicep --stdout, as a user runs it.
    let started = Instant::now();
    let output = tokio::process::Command::new(binary)
        .args(["bicep", "build"])
        .arg(template_file)
        .arg("--stdout")
        .output()
        .await
        .with_context(|| format!("running {} bicep build", binary.display()))?;
    let compile_ms = millis(started.elapsed());
    if !output.status.success() {
        bail!(
            "berth bicep build {} failed: {}",
            template_file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let template: Value =
        serde_json::from_slice(&output.stdout).context("the compiled template is not JSON")?;
    let body = json!({"properties": {
    "template": template,
    "mode": "Incremental",
    "parameters": {
        "resourceGroupName": {"value": "bench"},
        "subscriptionId": {"value": bootstrap.subscription_id},
        "managedIdentityName": {"value": "benchid"},
        "acrName": {"value": "acrbench"},
        "acrpullRoleId": {"value": ACR_PULL},
    }}});
    let path = format!("{group}/providers/Microsoft.Resources/deployments/main?{DEPLOYMENTS_API}");
    let identity = format!(
        "{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/benchid?api-version=2023-01-31"
    );

    let mut poller = target.connect().await?;
    let first_ms = deploy_once(&arm, &mut poller, &path, &body).await?;
    let principal =
        arm.call(Method::GET, &identity, None).await?["properties"]["principalId"].clone();
    let mut redeploy_ms = Vec::new();
    for _ in 0..runs {
        process.ensure_running()?;
        redeploy_ms.push(deploy_once(&arm, &mut poller, &path, &body).await?);
    }
    let after = arm.call(Method::GET, &identity, None).await?["properties"]["principalId"].clone();
    if principal.is_null() || after != principal {
        bail!("re-deploying changed the identity's principal: {principal} then {after}");
    }
    eprintln!(
        "rep {rep}: compile {compile_ms:.0} ms, first deployment {first_ms:.1} ms, re-deployment {:.1} ms",
        median(&redeploy_ms)
    );
    process.ensure_running()?;
    process.stop().context("stopping berth")?;
    Ok(DeployRep { rep, compile_ms, first_ms, redeploy_ms })
}

/// PUT the deployment and poll it until it succeeded; the time taken in milliseconds.
async fn deploy_once(
    arm: &Arm<'_>,
    poller: &mut client::Connection,
    path: &str,
    body: &Value,
) -> Result<f64> {
    let started = Instant::now();
    arm.call(Method::PUT, path, Some(body.clone())).await?;
    loop {
        let template = RequestTemplate::new(Method::GET, arm.target.addr, path, Some(arm.token))?;
        let response = client::send(poller, template.build()).await?;
        let deployment: Value =
            serde_json::from_slice(&response.body).context("parsing the deployment")?;
        match deployment["properties"]["provisioningState"].as_str() {
            Some("Succeeded") => return Ok(millis(started.elapsed())),
            Some("Failed" | "Canceled") => bail!("the deployment failed: {deployment}"),
            _ if started.elapsed() > DEPLOY_TIMEOUT => {
                bail!("the deployment did not finish within {DEPLOY_TIMEOUT:?}: {deployment}")
            }
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// The table: per repetition the compile time, the first deployment and the median re-deployment.
pub fn render(results: &[DeployRep]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nthe source document's template: compile (berth bicep build, whole process) and deploy end to end (ms)"
    );
    let _ =
        writeln!(out, "{:>4} {:>10} {:>12} {:>12}", "rep", "compile", "first deploy", "re-deploy");
    for r in results {
        let _ = writeln!(
            out,
            "{:>4} {:>10.1} {:>12.1} {:>12.1}",
            r.rep,
            r.compile_ms,
            r.first_ms,
            median(&r.redeploy_ms)
        );
    }
    let all: Vec<f64> = results.iter().flat_map(|r| r.redeploy_ms.iter().copied()).collect();
    let firsts: Vec<f64> = results.iter().map(|r| r.first_ms).collect();
    let compiles: Vec<f64> = results.iter().map(|r| r.compile_ms).collect();
    let _ = writeln!(
        out,
        "medians: compile {:.1} ms, first deployment {:.1} ms, re-deployment {:.1} ms ({} runs)",
        median(&compiles),
        median(&firsts),
        median(&all),
        all.len()
    );
    out
}
