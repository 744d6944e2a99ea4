//! `berth serve` as a user runs it: settings from `BERTH_*` variables, first-start bootstrap, a login
//! against it, and a graceful exit on SIGTERM.

use std::time::Duration;

use crate::common::run_berth;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_from_environment_then_login_then_sigterm() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let config_dir = tempfile::tempdir().expect("config dir");
    // A free port: bind, note it, release it (the short race is acceptable on loopback).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .env("BERTH_DATA_DIR", data_dir.path())
        .env("BERTH_LISTEN", &listen)
        .env_remove("BERTH_DATABASE_URL")
        .env_remove("BERTH_PUBLIC_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("berth serve starts");

    let bootstrap_path = data_dir.path().join("bootstrap.json");
    let mut bootstrap = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&bootstrap_path) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                bootstrap = Some(value);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bootstrap = bootstrap.expect("bootstrap.json appears");
    let text = |key: &str| {
        bootstrap[key].as_str().unwrap_or_else(|| panic!("bootstrap.json lacks {key}")).to_owned()
    };
    let ca_file = data_dir.path().join("tls").join("ca.pem").to_string_lossy().into_owned();
    let endpoint = format!("https://{listen}");

    // The listener may come up just after bootstrap.json is written: retry the login briefly.
    let mut login = None;
    for _ in 0..50 {
        let run = run_berth(
            config_dir.path(),
            &[
                "login",
                "--server",
                &endpoint,
                "--service-principal",
                "-u",
                &text("clientId"),
                "-p",
                &text("clientSecret"),
                "--tenant",
                &text("tenantId"),
                "--ca-file",
                &ca_file,
            ],
        )
        .await;
        if run.code == 0 {
            login = Some(run);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = login.expect("login against `berth serve` succeeds");
    assert_eq!(login.json()[0]["id"], text("subscriptionId").as_str());

    let pid = server.id().expect("running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(40), server.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "berth serve exited with {status}");
}
