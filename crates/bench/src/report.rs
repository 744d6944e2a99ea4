//! The benchmark's results: the raw samples of every repetition, their summary (median, min, max) and the
//! readable table printed at the end. The same structure is written as JSON with `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::berth::MemoryUsage;
use crate::load::LoadResult;
use crate::stats::{spread, Spread};

/// Cold start target for a restart on an initialised data directory, in milliseconds.
pub const RESTART_TARGET_MS: f64 = 50.0;
/// Idle resident memory target, in MiB.
pub const IDLE_RSS_TARGET_MIB: f64 = 15.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Http,
    Https,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https => "https",
        }
    }
}

/// One start of berth: when it listened and answered (from the spawn), and its memory 2 s later.
#[derive(Debug, Clone, Serialize)]
pub struct StartSample {
    pub listening_ms: f64,
    pub answered_ms: f64,
    pub probe_attempts: u32,
    pub idle_memory: MemoryUsage,
}

/// One repetition against berth over one transport, on a fresh data directory.
#[derive(Debug, Clone, Serialize)]
pub struct BerthRep {
    pub rep: usize,
    pub transport: Transport,
    pub first_start: StartSample,
    /// SIGTERM to exit after the first start.
    pub first_stop_ms: f64,
    pub restart: StartSample,
    /// Size of berth's answer to the resource-group GET the load sends.
    pub get_response_bytes: usize,
    pub loads: Vec<LoadResult>,
    /// The same load at the highest C on `GET /metadata/endpoints`: no token and no database, so the difference
    /// to `loads` is what authentication, authorization and the store cost.
    pub metadata_load: Option<LoadResult>,
    pub memory_after_load: MemoryUsage,
    pub final_stop_ms: f64,
}

/// One repetition against the in-process ceiling server.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingRep {
    pub rep: usize,
    pub transport: Transport,
    pub loads: Vec<LoadResult>,
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub berth_binary: String,
    pub berth_binary_bytes: Option<u64>,
    pub reps: usize,
    pub connections: Vec<usize>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub idle_settle_s: f64,
    pub probe_interval_ms: f64,
    pub ceiling_body_bytes: usize,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub cpus: usize,
    pub load_average_before: Option<String>,
    pub load_average_after: Option<String>,
    pub note: &'static str,
}

/// The note printed with every result: the numbers are not from an isolated server.
/// One repetition of a load scenario: its results and the ceiling's, per C.
pub type LoadAndCeiling<'a> = (&'a [LoadResult], &'a [LoadResult]);

/// A table of a load scenario next to its ceiling: per C, the median over repetitions of the scenario's
/// requests/s, its p50/p99, the errors summed, the ceiling's requests/s and the ratio. `reps` holds, per
/// repetition, the scenario's and the ceiling's results in the order of `connections`.
pub fn load_vs_ceiling(
    title: &str,
    unit: &str,
    connections: &[usize],
    reps: &[LoadAndCeiling<'_>],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title} (median of {} repetitions)", reps.len());
    let _ = writeln!(
        out,
        "{:>5} {:>12} {:>9} {:>9} {:>7} {:>12} {:>7}",
        "C", unit, "p50 us", "p99 us", "errors", "ceiling/s", "ratio"
    );
    for (i, &c) in connections.iter().enumerate() {
        let pick = |side: &dyn Fn(&LoadAndCeiling<'_>) -> Option<f64>| {
            crate::stats::median(&reps.iter().filter_map(side).collect::<Vec<_>>())
        };
        let rps = pick(&|r| r.0.get(i).map(|l| l.requests_per_second));
        let p50 = pick(&|r| r.0.get(i).and_then(|l| l.latency).map(|l| l.p50_us));
        let p99 = pick(&|r| r.0.get(i).and_then(|l| l.latency).map(|l| l.p99_us));
        let errors: u64 = reps.iter().filter_map(|r| r.0.get(i)).map(|l| l.errors).sum();
        let ceiling = pick(&|r| r.1.get(i).map(|l| l.requests_per_second));
        let ratio = if ceiling > 0.0 { rps / ceiling } else { 0.0 };
        let _ = writeln!(
            out,
            "{c:>5} {rps:>12.0} {p50:>9.0} {p99:>9.0} {errors:>7} {ceiling:>12.0} {ratio:>7.2}"
        );
    }
    let _ = writeln!(out, "{SHARED_CPU_NOTE}");
    out
}

pub const SHARED_CPU_NOTE: &str = "the load generator runs on the same CPUs as the server it measures \
     (and as the ceiling server), so requests/s are a lower bound of what the server alone could do";

/// One summarised scalar metric.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub group: &'static str,
    pub metric: String,
    pub unit: &'static str,
    pub spread: Spread,
    /// The value the median should stay below.
    pub target_below: Option<f64>,
    pub target_met: Option<bool>,
}

/// One summarised load configuration.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    pub server: &'static str,
    pub transport: Transport,
    pub connections: usize,
    pub requests_per_second: Spread,
    pub p50_us: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Median berth requests/s over median ceiling requests/s at the same transport and C.
    pub fraction_of_ceiling: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub metrics: Vec<MetricRow>,
    pub loads: Vec<LoadRow>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub environment: Environment,
    pub summary: Summary,
    pub berth_reps: Vec<BerthRep>,
    pub ceiling_reps: Vec<CeilingRep>,
}

const KIB_PER_MIB: f64 = 1024.0;
const TRANSPORTS: [Transport; 2] = [Transport::Https, Transport::Http];

/// Summarise the repetitions: median, min and max of every metric, and the fraction of the ceiling.
pub fn summarise(berth: &[BerthRep], ceiling: &[CeilingRep], connections: &[usize]) -> Summary {
    let mut metrics = Vec::new();
    let mut metric = |group, metric: String, unit, values: Vec<f64>, target_below: Option<f64>| {
        if let Some(spread) = spread(&values) {
            let target_met = target_below.map(|target| spread.median < target);
            metrics.push(MetricRow { group, metric, unit, spread, target_below, target_met });
        }
    };
    let of = |transport: Transport, value: &dyn Fn(&BerthRep) -> f64| -> Vec<f64> {
        berth.iter().filter(|r| r.transport == transport).map(value).collect()
    };
    let mib = |kib: u64| kib as f64 / KIB_PER_MIB;

    for transport in TRANSPORTS {
        let t = transport.name();
        let first = of(transport, &|r| r.first_start.answered_ms);
        metric("cold start", format!("first start, {t}"), "ms", first, None);
        let restart = of(transport, &|r| r.restart.answered_ms);
        metric("cold start", format!("restart, {t}"), "ms", restart, Some(RESTART_TARGET_MS));
        let listening = of(transport, &|r| r.restart.listening_ms);
        metric("cold start", format!("restart, {t}: port bound"), "ms", listening, None);
    }
    for transport in TRANSPORTS {
        let t = transport.name();
        let stop_idle = of(transport, &|r| r.first_stop_ms);
        metric("stop", format!("idle, {t}"), "ms", stop_idle, None);
        let stop_loaded = of(transport, &|r| r.final_stop_ms);
        metric("stop", format!("after the GET load, {t}"), "ms", stop_loaded, None);
    }
    for transport in TRANSPORTS {
        let t = transport.name();
        let rss = of(transport, &|r| mib(r.restart.idle_memory.rss_kib));
        let target = Some(IDLE_RSS_TARGET_MIB);
        metric("memory", format!("VmRSS idle after restart, {t}"), "MiB", rss, target);
        let hwm = of(transport, &|r| mib(r.restart.idle_memory.hwm_kib));
        metric("memory", format!("VmHWM idle after restart, {t}"), "MiB", hwm, None);
        let rss = of(transport, &|r| mib(r.first_start.idle_memory.rss_kib));
        metric("memory", format!("VmRSS idle after first start, {t}"), "MiB", rss, None);
        let hwm = of(transport, &|r| mib(r.first_start.idle_memory.hwm_kib));
        metric("memory", format!("VmHWM idle after first start, {t}"), "MiB", hwm, None);
        let rss = of(transport, &|r| mib(r.memory_after_load.rss_kib));
        metric("memory", format!("VmRSS after the GET load, {t}"), "MiB", rss, None);
        let hwm = of(transport, &|r| mib(r.memory_after_load.hwm_kib));
        metric("memory", format!("VmHWM after the GET load, {t}"), "MiB", hwm, None);
    }

    let mut loads = Vec::new();
    for transport in TRANSPORTS {
        for &c in connections {
            let berth_results: Vec<&LoadResult> = berth
                .iter()
                .filter(|r| r.transport == transport)
                .flat_map(|r| r.loads.iter().filter(|l| l.connections == c))
                .collect();
            let metadata_results: Vec<&LoadResult> = berth
                .iter()
                .filter(|r| r.transport == transport)
                .filter_map(|r| r.metadata_load.as_ref().filter(|l| l.connections == c))
                .collect();
            let ceiling_results: Vec<&LoadResult> = ceiling
                .iter()
                .filter(|r| r.transport == transport)
                .flat_map(|r| r.loads.iter().filter(|l| l.connections == c))
                .collect();
            let ceiling_row = load_row(CEILING, transport, c, &ceiling_results);
            let ceiling_rps = ceiling_row.as_ref().map(|r| r.requests_per_second.median);
            for (server, results) in [(BERTH, &berth_results), (BERTH_METADATA, &metadata_results)]
            {
                if let Some(mut row) = load_row(server, transport, c, results) {
                    row.fraction_of_ceiling = ceiling_rps
                        .filter(|&rps| rps > 0.0)
                        .map(|rps| row.requests_per_second.median / rps);
                    loads.push(row);
                }
            }
            loads.extend(ceiling_row);
        }
    }
    Summary { metrics, loads }
}

/// Row labels of the load table.
pub const BERTH: &str = "berth";
pub const BERTH_METADATA: &str = "berth*";
pub const CEILING: &str = "ceiling";

fn load_row(
    server: &'static str,
    transport: Transport,
    connections: usize,
    results: &[&LoadResult],
) -> Option<LoadRow> {
    let rps: Vec<f64> = results.iter().map(|l| l.requests_per_second).collect();
    let p50: Vec<f64> = results.iter().filter_map(|l| l.latency.map(|s| s.p50_us)).collect();
    let p99: Vec<f64> = results.iter().filter_map(|l| l.latency.map(|s| s.p99_us)).collect();
    Some(LoadRow {
        server,
        transport,
        connections,
        requests_per_second: spread(&rps)?,
        p50_us: spread(&p50),
        p99_us: spread(&p99),
        errors: results.iter().map(|l| l.errors).sum(),
        first_error: results.iter().find_map(|l| l.first_error.clone()),
        fraction_of_ceiling: None,
    })
}

/// The readable table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let e = &report.environment;
    let _ = writeln!(
        out,
        "berth-bench: {} ({} repetitions; median, min and max over them)",
        s.berth_binary, s.reps
    );
    let _ = writeln!(
        out,
        "machine: {} CPUs; load average before: {}; after: {}",
        e.cpus,
        e.load_average_before.as_deref().unwrap_or("?"),
        e.load_average_after.as_deref().unwrap_or("?")
    );
    let _ = writeln!(out, "note: {}.", e.note);
    let mut group = "";
    for row in &report.summary.metrics {
        if row.group != group {
            group = row.group;
            let heading = match group {
                "cold start" => format!(
                    "\ncold start: spawn to first 200 of GET /metadata/endpoints (fresh TCP connect every {} ms)",
                    s.probe_interval_ms
                ),
                "stop" => "\nstop: SIGTERM to exit (graceful drain)".to_string(),
                "memory" => format!(
                    "\nmemory: /proc/<pid>/status, {} s after the first answer unless noted",
                    s.idle_settle_s
                ),
                other => format!("\n{other}"),
            };
            let _ = writeln!(out, "{heading}");
            let _ = writeln!(out, "  {:<44} {:>9} {:>9} {:>9}  target", "", "median", "min", "max");
        }
        let target = match (row.target_below, row.target_met) {
            (Some(t), Some(true)) => format!("< {t} {}: met", row.unit),
            (Some(t), _) => format!("< {t} {}: MISSED", row.unit),
            _ => String::new(),
        };
        let label = format!("{} ({})", row.metric, row.unit);
        let _ = writeln!(
            out,
            "  {label:<44} {:>9.1} {:>9.1} {:>9.1}  {target}",
            row.spread.median, row.spread.min, row.spread.max
        );
    }

    let berth_bytes = report.berth_reps.first().map(|r| r.get_response_bytes).unwrap_or_default();
    let _ = writeln!(
        out,
        "\ncontrol-plane GET /subscriptions/{{sub}}/resourcegroups/bench with a bearer token ({berth_bytes}-byte \
         answer)\n  berth*: GET /metadata/endpoints (no token, no database), at the highest C only\n  \
         ceiling: in-process hyper hello server, {}-byte JSON, same load generator\n  \
         HTTP/1.1 keep-alive, C connections, {} s warm-up then {} s measured; latency in microseconds",
        s.ceiling_body_bytes, s.warmup_s, s.duration_s
    );
    let _ = writeln!(
        out,
        "  {:<8} {:<6} {:>4} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7} {:>11}",
        "server", "proto", "C", "req/s", "min", "max", "p50", "p99", "errors", "of ceiling"
    );
    for row in &report.summary.loads {
        let rps = row.requests_per_second;
        let micros =
            |s: Option<Spread>| s.map(|s| format!("{:.0}", s.median)).unwrap_or_else(|| "-".into());
        let fraction =
            row.fraction_of_ceiling.map(|f| format!("{:.0}%", f * 100.0)).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<8} {:<6} {:>4} {:>10.0} {:>10.0} {:>10.0} {:>8} {:>8} {:>7} {:>11}",
            row.server,
            row.transport.name(),
            row.connections,
            rps.median,
            rps.min,
            rps.max,
            micros(row.p50_us),
            micros(row.p99_us),
            row.errors,
            fraction
        );
    }
    for row in report.summary.loads.iter().filter(|r| r.errors > 0) {
        let _ = writeln!(
            out,
            "  first error ({} {} C={}): {}",
            row.server,
            row.transport.name(),
            row.connections,
            row.first_error.as_deref().unwrap_or("?")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencySummary;

    fn load(connections: usize, rps: f64) -> LoadResult {
        LoadResult {
            connections,
            duration_s: 1.0,
            requests: rps as u64,
            requests_per_second: rps,
            errors: 0,
            reconnects: 0,
            first_error: None,
            latency: Some(LatencySummary {
                p50_us: 100.0,
                p90_us: 150.0,
                p99_us: 200.0,
                max_us: 300.0,
            }),
        }
    }

    fn start(answered_ms: f64, rss_kib: u64) -> StartSample {
        StartSample {
            listening_ms: answered_ms / 2.0,
            answered_ms,
            probe_attempts: 3,
            idle_memory: MemoryUsage { rss_kib, hwm_kib: rss_kib + 1024 },
        }
    }

    fn berth_rep(rep: usize, restart_ms: f64, rps: f64) -> BerthRep {
        BerthRep {
            rep,
            transport: Transport::Http,
            first_start: start(300.0, 8192),
            first_stop_ms: 5.0,
            restart: start(restart_ms, 10 * 1024),
            get_response_bytes: 501,
            loads: vec![load(1, rps / 4.0), load(64, rps)],
            metadata_load: Some(load(64, rps * 2.0)),
            memory_after_load: MemoryUsage { rss_kib: 20 * 1024, hwm_kib: 21 * 1024 },
            final_stop_ms: 6.0,
        }
    }

    #[test]
    fn summary_takes_medians_checks_targets_and_compares_with_the_ceiling() {
        let berth = vec![
            berth_rep(1, 40.0, 1000.0),
            berth_rep(2, 60.0, 3000.0),
            berth_rep(3, 45.0, 2000.0),
        ];
        let ceiling = vec![CeilingRep {
            rep: 1,
            transport: Transport::Http,
            loads: vec![load(1, 2000.0), load(64, 8000.0)],
        }];
        let summary = summarise(&berth, &ceiling, &[1, 64]);

        let restart =
            summary.metrics.iter().find(|m| m.metric == "restart, http").expect("restart row");
        assert_eq!(restart.spread, Spread { median: 45.0, min: 40.0, max: 60.0 });
        assert_eq!(restart.target_met, Some(true));
        let rss = summary
            .metrics
            .iter()
            .find(|m| m.metric == "VmRSS idle after restart, http")
            .expect("rss row");
        assert_eq!(rss.spread.median, 10.0);
        assert_eq!(rss.target_met, Some(true));
        // No https repetitions: no https rows rather than rows of nothing.
        assert!(summary.metrics.iter().all(|m| !m.metric.contains("https")));

        let berth_64 = summary
            .loads
            .iter()
            .find(|l| l.server == "berth" && l.connections == 64)
            .expect("berth C=64 row");
        assert_eq!(berth_64.requests_per_second.median, 2000.0);
        assert_eq!(berth_64.fraction_of_ceiling, Some(0.25));
        let metadata_64 = summary
            .loads
            .iter()
            .find(|l| l.server == BERTH_METADATA && l.connections == 64)
            .expect("berth metadata C=64 row");
        assert_eq!(metadata_64.fraction_of_ceiling, Some(0.5));
        // berth, berth* and ceiling at C=64; berth and ceiling at C=1.
        assert_eq!(summary.loads.len(), 5);
    }

    #[test]
    fn the_table_shows_targets_and_the_shared_cpu_note() {
        let berth = vec![berth_rep(1, 80.0, 1000.0)];
        let report = Report {
            settings: Settings {
                berth_binary: "target/release/berth".into(),
                berth_binary_bytes: None,
                reps: 1,
                connections: vec![1, 64],
                warmup_s: 1.0,
                duration_s: 5.0,
                idle_settle_s: 2.0,
                probe_interval_ms: 1.0,
                ceiling_body_bytes: 500,
            },
            environment: Environment {
                cpus: 2,
                load_average_before: None,
                load_average_after: None,
                note: SHARED_CPU_NOTE,
            },
            summary: summarise(&berth, &[], &[1, 64]),
            berth_reps: berth,
            ceiling_reps: vec![],
        };
        let table = render(&report);
        assert!(table.contains("restart, http (ms)"), "{table}");
        assert!(table.contains("< 50 ms: MISSED"), "{table}");
        assert!(table.contains("< 15 MiB: met"), "{table}");
        assert!(table.contains("same CPUs"), "{table}");
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["berth_reps"][0]["transport"], "http");
    }
}
