//! berth as a child process: spawning `berth serve`, the readiness probe that times a cold start, memory readings
//! from `/proc`, the operator token and the resource group the GET load reads, and a guard that always stops the
//! process (SIGTERM, then SIGKILL after a grace period), whichever way the benchmark ends.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use http::Method;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::client::{fetch, RequestTemplate, Target};

/// The unauthenticated path the readiness probe asks for.
pub const PROBE_PATH: &str = "/metadata/endpoints";
/// How long berth may take to answer its first request before the run fails.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// Pause between two probe attempts.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// How long a stopping berth gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start one `berth serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub insecure_http: bool,
    /// Where berth's stdout and stderr go.
    pub log_path: PathBuf,
}

/// A running `berth serve`. Dropping it stops the process.
pub struct BerthProcess {
    child: Option<Child>,
    pid: u32,
    log_path: PathBuf,
    grace: Duration,
}

/// How a stop went.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub took: Duration,
    /// False when SIGTERM was not enough and the process had to be killed.
    pub graceful: bool,
}

impl BerthProcess {
    /// Start `berth serve`; also returns the instant just before the spawn, from which a cold start is timed.
    pub fn spawn(options: &ServeOptions) -> Result<(Self, Instant)> {
        let log = File::create(&options.log_path)
            .with_context(|| format!("creating {}", options.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let mut command = Command::new(&options.binary);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&options.data_dir)
            .arg("--listen")
            .arg(options.listen.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if options.insecure_http {
            command.arg("--insecure-http");
        }
        // Measure berth as `berth serve` runs by default: no flags from the environment, default log level.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("BERTH_") {
                command.env_remove(name);
            }
        }
        command.env_remove("RUST_LOG");
        let spawned_at = Instant::now();
        let child =
            command.spawn().with_context(|| format!("starting {}", options.binary.display()))?;
        let pid = child.id();
        let process = BerthProcess {
            child: Some(child),
            pid,
            log_path: options.log_path.clone(),
            grace: STOP_GRACE,
        };
        Ok((process, spawned_at))
    }

    /// An error, with the end of berth's log, if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("berth was already stopped");
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(anyhow!("berth exited ({status}); {}", self.log_tail())),
            Err(e) => Err(anyhow!("checking on berth: {e}")),
        }
    }

    /// The last lines of berth's output, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, 15)
    }

    /// Resident memory now and at its peak.
    pub fn memory(&self) -> Result<MemoryUsage> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        MemoryUsage::parse(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL. Fails if berth exited unsuccessfully.
    pub fn stop(mut self) -> Result<Stopped> {
        let Some(mut child) = self.child.take() else {
            bail!("berth was already stopped");
        };
        let (stopped, status) = terminate(&mut child, self.grace)?;
        if !status.success() && stopped.graceful {
            bail!("berth exited with {status} on SIGTERM; {}", self.log_tail());
        }
        Ok(stopped)
    }
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, self.grace);
        }
    }
}

/// Stop `child`: SIGTERM (through `kill`, since std can only send SIGKILL), then SIGKILL after `grace`.
fn terminate(child: &mut Child, grace: Duration) -> Result<(Stopped, ExitStatus)> {
    let started = Instant::now();
    if let Some(status) = child.try_wait().context("checking on the child")? {
        return Ok((Stopped { took: Duration::ZERO, graceful: true }, status));
    }
    let signalled = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if signalled {
        while started.elapsed() < grace {
            if let Some(status) = child.try_wait().context("waiting for the child")? {
                return Ok((Stopped { took: started.elapsed(), graceful: true }, status));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Either the grace period ran out or SIGTERM could not be sent: no process may outlive the benchmark.
    let _ = child.kill();
    let status = child.wait().context("waiting for the killed child")?;
    Ok((Stopped { took: started.elapsed(), graceful: false }, status))
}

fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            format!("last lines of {}:\n{tail}", path.display())
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Resident set size now (`VmRSS`) and at its peak (`VmHWM`), in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl MemoryUsage {
    /// Read the two values from the text of `/proc/<pid>/status`.
    pub fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?;
                value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        };
        Some(MemoryUsage { rss_kib: field("VmRSS")?, hwm_kib: field("VmHWM")? })
    }
}

/// When the server started listening and when it answered its first request, counted from the spawn.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub listening: Duration,
    pub answered: Duration,
    pub attempts: u32,
}

/// How the probe reaches the server: plain HTTP, or HTTPS trusting the CA berth writes at startup.
#[derive(Debug, Clone)]
pub enum ProbeTrust {
    PlainHttp,
    /// Read when first needed: on a first start the file appears only once berth generated it.
    CaFile(PathBuf),
}

/// Poll `GET /metadata/endpoints` with a fresh TCP connection every millisecond until it is answered 200.
pub async fn wait_until_answering(
    process: &mut BerthProcess,
    spawned_at: Instant,
    addr: SocketAddr,
    trust: &ProbeTrust,
) -> Result<Readiness> {
    let template = RequestTemplate::new(Method::GET, addr, PROBE_PATH, None)?;
    let max_attempts = (READY_DEADLINE.as_millis() / PROBE_INTERVAL.as_millis()) as u32;
    let mut listening = None;
    let mut target = match trust {
        ProbeTrust::PlainHttp => Some(Target::plain(addr)),
        ProbeTrust::CaFile(_) => None,
    };
    let mut last_problem = String::from("nothing tried yet");
    for attempt in 1..=max_attempts {
        let remaining = READY_DEADLINE.saturating_sub(spawned_at.elapsed());
        if remaining.is_zero() {
            break;
        }
        process.ensure_running()?;
        match TcpStream::connect(addr).await {
            Err(e) => last_problem = format!("connecting: {e}"),
            Ok(tcp) => {
                listening.get_or_insert_with(|| spawned_at.elapsed());
                if target.is_none() {
                    if let ProbeTrust::CaFile(path) = trust {
                        // Absent or half-written until berth has finished generating it: try again next time.
                        match std::fs::read(path)
                            .map_err(anyhow::Error::from)
                            .and_then(|pem| Target::tls(addr, &pem))
                        {
                            Ok(tls) => target = Some(tls),
                            Err(e) => last_problem = format!("reading {}: {e:#}", path.display()),
                        }
                    }
                }
                if let Some(target) = &target {
                    // A connection accepted by the kernel before berth serves waits in the backlog: its answer
                    // comes exactly when berth starts serving, so wait for it rather than retry.
                    let answer = tokio::time::timeout(remaining, async {
                        let mut connection = target.establish(tcp).await?;
                        crate::client::send(&mut connection, template.build()).await
                    })
                    .await;
                    match answer {
                        Ok(Ok(response)) if response.status == http::StatusCode::OK => {
                            return Ok(Readiness {
                                listening: listening.unwrap_or_default(),
                                answered: spawned_at.elapsed(),
                                attempts: attempt,
                            });
                        }
                        Ok(Ok(response)) => {
                            last_problem =
                                format!("status {}: {}", response.status, response.body_excerpt())
                        }
                        Ok(Err(e)) => last_problem = format!("{e:#}"),
                        Err(_) => last_problem = "no answer before the deadline".to_string(),
                    }
                }
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    bail!(
        "berth did not answer GET {PROBE_PATH} within {READY_DEADLINE:?} (last problem: {last_problem}); {}",
        process.log_tail()
    )
}

/// The part of `DIR/bootstrap.json` the benchmark needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub tenant_id: String,
    pub subscription_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Bootstrap {
    pub fn read(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("bootstrap.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The resource group the GET load reads.
    pub fn group_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourcegroups/bench?api-version=2024-11-01",
            self.subscription_id
        )
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// An ARM token for the bootstrap owner through the client-credentials flow.
pub async fn operator_token(target: &Target, bootstrap: &Bootstrap) -> Result<String> {
    client_credentials_token(target, bootstrap, "https://management.azure.com/.default").await
}

/// A token for `scope` through the client-credentials flow with `credentials`' client id and secret.
pub async fn client_credentials_token(
    target: &Target,
    credentials: &Bootstrap,
    scope: &str,
) -> Result<String> {
    let form = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_id", credentials.client_id.as_str()),
        ("client_secret", credentials.client_secret.as_str()),
        ("scope", scope),
    ])
    .context("encoding the token request")?;
    let path = format!("/{}/oauth2/v2.0/token", credentials.tenant_id);
    let template = RequestTemplate::new(Method::POST, target.addr, &path, None)?
        .with_body("application/x-www-form-urlencoded", form);
    let response = fetch(target, &template).await.context("POST token")?;
    if response.status != http::StatusCode::OK {
        bail!("POST {path} answered {}: {}", response.status, response.body_excerpt());
    }
    let token: TokenResponse =
        serde_json::from_slice(&response.body).context("parsing the token response")?;
    Ok(token.access_token)
}

/// Create (or update) the resource group `bench`, which the GET load then reads.
pub async fn create_group(target: &Target, bootstrap: &Bootstrap, token: &str) -> Result<()> {
    let path = bootstrap.group_path();
    let template = RequestTemplate::new(Method::PUT, target.addr, &path, Some(token))?
        .with_body("application/json", r#"{"location":"westeurope"}"#);
    let response = fetch(target, &template).await.context("PUT resource group")?;
    if !response.status.is_success() {
        bail!("PUT {path} answered {}: {}", response.status, response.body_excerpt());
    }
    Ok(())
}

/// ARM (and Graph) calls as one principal, each on a fresh connection; `get_on` reuses a connection for polling.
pub struct Arm<'a> {
    pub target: &'a Target,
    pub token: &'a str,
}

impl Arm<'_> {
    /// `method path` with an optional JSON body; the answer's JSON (Null when empty), or an error naming the status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let mut template =
            RequestTemplate::new(method.clone(), self.target.addr, path, Some(self.token))?;
        if let Some(body) = body {
            template = template.with_body("application/json", serde_json::to_vec(&body)?);
        }
        let response =
            fetch(self.target, &template).await.with_context(|| format!("{method} {path}"))?;
        if !response.status.is_success() {
            bail!("{method} {path} answered {}: {}", response.status, response.body_excerpt());
        }
        if response.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&response.body)
            .with_context(|| format!("parsing the answer to {method} {path}"))
    }

    /// `GET path` on an open connection.
    pub async fn get_on(
        &self,
        connection: &mut crate::client::Connection,
        path: &str,
    ) -> Result<serde_json::Value> {
        let template = RequestTemplate::new(Method::GET, self.target.addr, path, Some(self.token))?;
        let response = crate::client::send(connection, template.build()).await?;
        if !response.status.is_success() {
            bail!("GET {path} answered {}: {}", response.status, response.body_excerpt());
        }
        serde_json::from_slice(&response.body).with_context(|| format!("parsing GET {path}"))
    }
}

/// A berth started for one repetition of a scenario: HTTPS (its default) on a fresh data directory under
/// `rep_dir`, the bootstrap owner signed in, the resource group `bench` created.
pub struct SignedIn {
    pub process: BerthProcess,
    pub listen: SocketAddr,
    pub target: Target,
    pub bootstrap: Bootstrap,
    pub owner_token: String,
}

pub async fn start_signed_in(binary: &Path, rep_dir: &Path) -> Result<SignedIn> {
    let data_dir = rep_dir.join("data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let listen = free_loopback_port()?;
    let options = ServeOptions {
        binary: binary.to_path_buf(),
        data_dir: data_dir.clone(),
        listen,
        insecure_http: false,
        log_path: rep_dir.join("serve.log"),
    };
    let ca_path = data_dir.join("tls").join("ca.pem");
    let (mut process, spawned_at) = BerthProcess::spawn(&options)?;
    wait_until_answering(&mut process, spawned_at, listen, &ProbeTrust::CaFile(ca_path.clone()))
        .await?;
    let pem = std::fs::read(&ca_path).with_context(|| format!("reading {}", ca_path.display()))?;
    let target = Target::tls(listen, &pem)?;
    let bootstrap = Bootstrap::read(&data_dir)?;
    let owner_token = operator_token(&target, &bootstrap).await?;
    create_group(&target, &bootstrap, &owner_token).await?;
    Ok(SignedIn { process, listen, target, bootstrap, owner_token })
}

/// A loopback port that was free a moment ago (berth binds it itself, so there is a small race).
pub fn free_loopback_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_usage_reads_rss_and_hwm_from_proc_status() {
        let status =
            "Name:\tberth\nVmPeak:\t  99999 kB\nVmHWM:\t   12000 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            MemoryUsage::parse(status),
            Some(MemoryUsage { rss_kib: 10240, hwm_kib: 12000 })
        );
        assert_eq!(MemoryUsage::parse("VmRSS:\t 1 kB\n"), None);
        assert_eq!(MemoryUsage::parse("VmRSS:\t x kB\nVmHWM:\t 1 kB\n"), None);
    }

    #[test]
    fn memory_usage_parses_this_process() {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc is mounted");
        let usage = MemoryUsage::parse(&status).expect("VmRSS and VmHWM present");
        assert!(usage.rss_kib > 0 && usage.hwm_kib >= usage.rss_kib);
    }

    #[test]
    fn bootstrap_reads_the_fields_berth_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let json = r#"{"tenantId":"t","subscriptionId":"s","clientId":"c","clientSecret":"x",
            "endpoint":"https://127.0.0.1:1","caCertificate":null,"caCertificateFile":null}"#;
        std::fs::write(dir.path().join("bootstrap.json"), json).expect("write");
        let boot = Bootstrap::read(dir.path()).expect("parses");
        assert_eq!(boot.client_secret, "x");
        assert_eq!(
            boot.group_path(),
            "/subscriptions/s/resourcegroups/bench?api-version=2024-11-01"
        );
    }

    fn process_of(child: Child, grace: Duration, log_path: PathBuf) -> BerthProcess {
        let pid = child.id();
        BerthProcess { child: Some(child), pid, log_path, grace }
    }

    fn is_alive(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie would still have one, but terminate() always waits.
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn stop_ends_a_process_with_sigterm() {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep starts");
        let process = process_of(child, Duration::from_secs(5), PathBuf::from("/nonexistent"));
        let pid = process.pid;
        let stopped = terminate_for_test(process);
        assert!(stopped.graceful);
        assert!(stopped.took < Duration::from_secs(5));
        assert!(!is_alive(pid));
    }

    fn terminate_for_test(mut process: BerthProcess) -> Stopped {
        let mut child = process.child.take().expect("child present");
        terminate(&mut child, process.grace).expect("terminates").0
    }

    #[test]
    fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
        use std::io::BufRead;
        // `exec` keeps the ignored SIGTERM and leaves no grandchild behind; "ready" says the trap is in place.
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh starts");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut ready).expect("reads the ready line");
        assert_eq!(ready, "ready\n");
        let process = process_of(child, Duration::from_millis(200), PathBuf::from("/nonexistent"));
        let pid = process.pid;
        let stopped = terminate_for_test(process);
        assert!(!stopped.graceful);
        assert!(stopped.took >= Duration::from_millis(200));
        assert!(!is_alive(pid));
    }

    #[test]
    fn dropping_the_guard_stops_the_process() {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep starts");
        let process = process_of(child, Duration::from_secs(5), PathBuf::from("/nonexistent"));
        let pid = process.pid;
        drop(process);
        assert!(!is_alive(pid));
    }

    #[tokio::test]
    async fn the_probe_reports_a_process_that_exits_before_answering() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("log");
        std::fs::write(&log_path, "error: could not bind\n").expect("write log");
        let child = Command::new("true").spawn().expect("true starts");
        let mut process = process_of(child, Duration::from_secs(1), log_path);
        let addr = free_loopback_port().expect("port");
        let err = wait_until_answering(&mut process, Instant::now(), addr, &ProbeTrust::PlainHttp)
            .await
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("berth exited"), "{err}");
        assert!(err.contains("error: could not bind"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_probe_times_a_server_that_starts_listening_late() {
        // A stand-in process that stays alive while the probe runs; the server answering is in this test.
        let child = Command::new("sleep").arg("30").spawn().expect("sleep starts");
        let mut process = process_of(child, Duration::from_secs(5), PathBuf::from("/nonexistent"));
        let addr = free_loopback_port().expect("port");
        let spawned_at = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the chosen port");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_request| async {
                        let body = http_body_util::Full::new(bytes::Bytes::from("{}"));
                        Ok::<_, std::convert::Infallible>(http::Response::new(body))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let ready = wait_until_answering(&mut process, spawned_at, addr, &ProbeTrust::PlainHttp)
            .await
            .expect("probe succeeds");
        assert!(ready.listening >= Duration::from_millis(50));
        assert!(ready.listening <= ready.answered);
        assert!(ready.attempts > 1, "the probe polled before the server listened");
    }
}
