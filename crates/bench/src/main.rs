//! `berth-bench`: measures berth's control plane — cold start, idle memory and control-plane GET requests per
//! second — against a real `berth serve` process, next to a minimal hyper server as the machine's HTTP ceiling.
//!
//! Run it from the workspace root with
//! `cargo build --release -p berth-cli -p berth-bench && target/release/berth-bench --berth target/release/berth`
//! (add `--json results.json` to keep every number). Each repetition (`--reps`, default 5) uses a fresh data
//! directory under `--scratch` (default `/work/perf-scratch/bench`) and, over HTTPS and then plain HTTP
//! (`--insecure-http`): starts berth for the first time (it generates keys and certificates) and times spawn to
//! the first 200 of `GET /metadata/endpoints`, polling with a fresh TCP connection every millisecond; reads VmRSS
//! and VmHWM 2 s later; stops it with SIGTERM and restarts it on the initialised directory, timed the same way;
//! then signs in as the bootstrap owner, creates the resource group `bench` and loads
//! `GET /subscriptions/{sub}/resourcegroups/bench` with C keep-alive connections (`--connections`, default
//! 1,8,64) for `--duration` seconds (default 5) after `--warmup` (default 1), and `GET /metadata/endpoints` (no
//! token, no database) at the highest C. The same load then runs against an in-process hello server with a body of
//! the same size on another loopback port. The load generator shares the CPUs with the server, so the
//! requests/s are a lower bound. Every berth process is stopped on every exit path (SIGTERM, SIGKILL after 5 s),
//! including Ctrl-C. This is a benchmark, not a test: nothing here runs under `cargo test` except its parts.
//! `--imds` measures a workload's IMDS tokens per second instead (`imds.rs`), `--webapp` the time from a web app's
//! restart to its image pulled (`webapp.rs`), `--registry-tokens` registry access tokens per second (`tokens.rs`),
//! `--deploy` the source document's Bicep files compiled and deployed (`deploy.rs`).

mod berth;
mod ceiling;
mod client;
mod deploy;
mod imds;
mod load;
mod report;
mod stats;
mod tokens;
mod webapp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use http::Method;

use crate::berth::{BerthProcess, Bootstrap, ProbeTrust, Readiness, ServeOptions};
use crate::ceiling::CeilingServer;
use crate::client::{RequestTemplate, Target};
use crate::load::LoadSpec;
use crate::report::{BerthRep, CeilingRep, Environment, Report, Settings, StartSample, Transport};
use crate::stats::millis;

/// How long berth idles after its first answer before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

/// Measure berth's control plane: cold start, idle memory, GET requests per second.
#[derive(Debug, Parser)]
#[command(name = "berth-bench", version)]
struct Args {
    /// The berth binary to start as `berth serve`.
    #[arg(long, value_name = "PATH")]
    berth: PathBuf,
    /// Repetitions, each on a fresh data directory.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
    /// Where the temporary data directories go (removed afterwards).
    #[arg(long, value_name = "DIR", default_value = "/work/perf-scratch/bench")]
    scratch: PathBuf,
    /// Concurrent keep-alive connections of the GET load, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64",
        value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: Vec<u32>,
    /// Measured seconds of each load run.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    duration: f64,
    /// Warm-up seconds before each measured window.
    #[arg(long, default_value_t = 1.0, value_parser = seconds)]
    warmup: f64,
    /// Also write every number as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Measure only tokens per second from a workload's IMDS listener (see `imds.rs`), next to the ceiling.
    #[arg(long)]
    imds: bool,
    /// Measure only the time from a web app's restart to its image pulled (see `webapp.rs`).
    #[arg(long, conflicts_with = "imds")]
    webapp: bool,
    /// Measure only registry access tokens per second for a principal with ten inherited role assignments
    /// (see `tokens.rs`), next to the same server's ceiling.
    #[arg(long, conflicts_with_all = ["imds", "webapp"])]
    registry_tokens: bool,
    /// Measure only the source document's Bicep files compiled and deployed end to end (see `deploy.rs`).
    #[arg(long, conflicts_with_all = ["imds", "webapp", "registry_tokens"])]
    deploy: bool,
    /// The `.bicep` file the deployment scenario compiles and deploys (default: the corrected source files).
    #[arg(long, value_name = "FILE")]
    deploy_template: Option<PathBuf>,
    /// Re-deployments timed per repetition of the deployment scenario.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=100))]
    deploy_runs: u32,
    /// The web-app image's size in MiB.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=4096))]
    webapp_mib: u32,
    /// Restarts timed per repetition of the web-app scenario.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    webapp_restarts: u32,
}

/// Writes `results` as pretty JSON to `path`, when one was given.
fn write_json(path: Option<&Path>, results: &impl serde::Serialize) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_string_pretty(results).context("serialising the results")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=600.0).contains(&value) => Ok(value),
        Ok(_) => Err("must be between 0 and 600 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        // Dropping `run` here drops its berth guards, which stop the processes, and its scratch directories.
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-bench: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn interrupted() -> &'static str {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate => "SIGTERM",
    }
}

async fn run(args: &Args) -> Result<()> {
    let binary = std::path::absolute(&args.berth)
        .with_context(|| format!("resolving {}", args.berth.display()))?;
    if !binary.is_file() {
        bail!(
            "{} is not a file; build it with `cargo build --release -p berth-cli`",
            binary.display()
        );
    }
    if args.duration <= 0.0 {
        bail!("--duration must be more than 0 seconds");
    }
    std::fs::create_dir_all(&args.scratch)
        .with_context(|| format!("creating {}", args.scratch.display()))?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&args.scratch)
        .with_context(|| format!("creating a run directory in {}", args.scratch.display()))?;

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let connections: Vec<usize> = args.connections.iter().map(|&c| c as usize).collect();
    let spec = |c| LoadSpec {
        connections: c,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let settings = Settings {
        berth_binary: args.berth.display().to_string(),
        berth_binary_bytes: std::fs::metadata(&binary).ok().map(|m| m.len()),
        reps: args.reps as usize,
        connections: connections.clone(),
        warmup_s: args.warmup,
        duration_s: args.duration,
        idle_settle_s: IDLE_SETTLE.as_secs_f64(),
        probe_interval_ms: 1.0,
        ceiling_body_bytes: ceiling::HELLO_BODY.len(),
    };
    let load_average_before = load_average();
    if args.webapp {
        let results = webapp::run(
            &binary,
            run_dir.path(),
            args.reps as usize,
            args.webapp_mib as usize,
            args.webapp_restarts as usize,
        )
        .await?;
        write_json(args.json.as_deref(), &results)?;
        run_dir.close().context("removing the run directory")?;
        return Ok(());
    }
    if args.deploy {
        let template = args.deploy_template.clone().unwrap_or_else(deploy::default_template);
        let results = deploy::run(
            &binary,
            run_dir.path(),
            args.reps as usize,
            &template,
            args.deploy_runs as usize,
        )
        .await?;
        write_json(args.json.as_deref(), &results)?;
        run_dir.close().context("removing the run directory")?;
        return Ok(());
    }
    if args.registry_tokens {
        let results =
            tokens::run(&binary, run_dir.path(), args.reps as usize, &connections, &spec).await?;
        write_json(args.json.as_deref(), &results)?;
        run_dir.close().context("removing the run directory")?;
        return Ok(());
    }
    if args.imds {
        let results =
            imds::run(&binary, run_dir.path(), args.reps as usize, &connections, &spec).await?;
        write_json(args.json.as_deref(), &results)?;
        run_dir.close().context("removing the run directory")?;
        return Ok(());
    }

    let mut berth_reps = Vec::new();
    let mut ceiling_reps = Vec::new();
    for rep in 1..=args.reps as usize {
        for transport in [Transport::Https, Transport::Http] {
            let rep_dir = run_dir.path().join(format!("rep{rep}-{}", transport.name()));
            let result = berth_rep(&binary, &rep_dir, rep, transport, &connections, &spec)
                .await
                .with_context(|| {
                    format!("repetition {rep} against berth over {}", transport.name())
                })?;
            berth_reps.push(result);
        }
        for transport in [Transport::Https, Transport::Http] {
            let server = CeilingServer::start(transport == Transport::Https, cpus)?;
            let target = server.target()?;
            let template = RequestTemplate::new(Method::GET, server.addr, "/", None)?;
            let mut loads = Vec::new();
            for &c in &connections {
                eprintln!("rep {rep}: ceiling over {}, C={c}", transport.name());
                loads.push(load::run(&target, &template, spec(c)).await?);
            }
            ceiling_reps.push(CeilingRep { rep, transport, loads });
        }
    }

    let summary = report::summarise(&berth_reps, &ceiling_reps, &connections);
    let report = Report {
        settings,
        environment: Environment {
            cpus,
            load_average_before,
            load_average_after: load_average(),
            note: report::SHARED_CPU_NOTE,
        },
        summary,
        berth_reps,
        ceiling_reps,
    };
    print!("{}", report::render(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    run_dir.close().context("removing the run directory")?;
    Ok(())
}

/// One repetition over one transport: first start, restart, GET load, on a fresh data directory.
async fn berth_rep(
    binary: &Path,
    rep_dir: &Path,
    rep: usize,
    transport: Transport,
    connections: &[usize],
    spec: &dyn Fn(usize) -> LoadSpec,
) -> Result<BerthRep> {
    let data_dir = rep_dir.join("data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let listen = berth::free_loopback_port()?;
    let options = |log: &str| ServeOptions {
        binary: binary.to_path_buf(),
        data_dir: data_dir.clone(),
        listen,
        insecure_http: transport == Transport::Http,
        log_path: rep_dir.join(log),
    };
    let trust = match transport {
        Transport::Http => ProbeTrust::PlainHttp,
        Transport::Https => ProbeTrust::CaFile(data_dir.join("tls").join("ca.pem")),
    };
    let t = transport.name();

    eprintln!("rep {rep}: berth over {t}, first start");
    let (mut process, spawned_at) = BerthProcess::spawn(&options("first-start.log"))?;
    let ready = berth::wait_until_answering(&mut process, spawned_at, listen, &trust).await?;
    let first_start = settle_and_sample(&mut process, ready).await?;
    let first_stop = process.stop().context("stopping berth after its first start")?;

    eprintln!("rep {rep}: berth over {t}, restart");
    let (mut process, spawned_at) = BerthProcess::spawn(&options("restart.log"))?;
    let ready = berth::wait_until_answering(&mut process, spawned_at, listen, &trust).await?;
    let restart = settle_and_sample(&mut process, ready).await?;

    let target = match transport {
        Transport::Http => Target::plain(listen),
        Transport::Https => {
            let ca_path = data_dir.join("tls").join("ca.pem");
            let pem = std::fs::read(&ca_path)
                .with_context(|| format!("reading {}", ca_path.display()))?;
            Target::tls(listen, &pem)?
        }
    };
    let bootstrap = Bootstrap::read(&data_dir)?;
    let token = berth::operator_token(&target, &bootstrap).await?;
    berth::create_group(&target, &bootstrap, &token).await?;
    let template =
        RequestTemplate::new(Method::GET, listen, &bootstrap.group_path(), Some(&token))?;
    let check = client::fetch(&target, &template).await.context("GET resource group")?;
    if check.status != http::StatusCode::OK {
        bail!("GET {} answered {}: {}", bootstrap.group_path(), check.status, check.body_excerpt());
    }
    let mut loads = Vec::new();
    for &c in connections {
        eprintln!("rep {rep}: berth over {t}, GET load with C={c}");
        process.ensure_running()?;
        let result = load::run(&target, &template, spec(c)).await?;
        process.ensure_running()?;
        loads.push(result);
    }
    let metadata_load = match connections.iter().max() {
        Some(&c) => {
            eprintln!("rep {rep}: berth over {t}, GET {} with C={c}", berth::PROBE_PATH);
            let metadata = RequestTemplate::new(Method::GET, listen, berth::PROBE_PATH, None)?;
            let result = load::run(&target, &metadata, spec(c)).await?;
            process.ensure_running()?;
            Some(result)
        }
        None => None,
    };
    let memory_after_load = process.memory()?;
    let final_stop = process.stop().context("stopping berth after the load")?;
    Ok(BerthRep {
        rep,
        transport,
        first_start,
        first_stop_ms: millis(first_stop.took),
        restart,
        get_response_bytes: check.body.len(),
        loads,
        metadata_load,
        memory_after_load,
        final_stop_ms: millis(final_stop.took),
    })
}

/// Let berth idle, then read its memory.
async fn settle_and_sample(process: &mut BerthProcess, ready: Readiness) -> Result<StartSample> {
    tokio::time::sleep(IDLE_SETTLE).await;
    process.ensure_running()?;
    Ok(StartSample {
        listening_ms: millis(ready.listening),
        answered_ms: millis(ready.answered),
        probe_attempts: ready.attempts,
        idle_memory: process.memory()?,
    })
}

/// The three load averages of `/proc/loadavg`, to tell whether the machine was busy with something else.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_have_the_documented_defaults() {
        let args = Args::try_parse_from(["berth-bench", "--berth", "target/release/berth"])
            .expect("parses");
        assert_eq!(args.reps, 5);
        assert_eq!(args.connections, vec![1, 8, 64]);
        assert_eq!(args.duration, 5.0);
        assert_eq!(args.warmup, 1.0);
        assert_eq!(args.scratch, PathBuf::from("/work/perf-scratch/bench"));
    }

    #[test]
    fn arguments_are_bounded() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["berth-bench", "--berth", "b"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).is_ok()
        };
        assert!(parse(&["--connections", "2,4"]));
        assert!(!parse(&["--connections", "0"]));
        assert!(!parse(&["--connections", "5000"]));
        assert!(!parse(&["--reps", "0"]));
        assert!(!parse(&["--duration", "601"]));
        assert!(!parse(&["--warmup", "-1"]));
    }
}
