//! Exit codes and error text: ARM errors exit 1 with az's wording, usage errors exit 2.

use crate::common::{run_berth, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_errors_print_like_az_and_exit_1() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    let run = harness.berth(&["group", "show", "-n", "does-not-exist"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.stdout, "");
    let first_line = run.stderr.lines().next().unwrap_or_default();
    assert!(first_line.starts_with("ERROR: (ResourceGroupNotFound) "), "{run}");
    assert!(run.stderr.contains("\nCode: ResourceGroupNotFound\nMessage: "), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_without_yes_and_without_a_terminal_fails() {
    let harness = Harness::start().await;
    harness.login_owner().await.success();
    harness.berth(&["group", "create", "-n", "keep", "-l", "westeurope"]).await.success();
    let run = harness.berth(&["group", "delete", "-n", "keep"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(
        run.stderr,
        "ERROR: Unable to prompt for confirmation as no tty available. Use --yes.\n"
    );
    harness.berth(&["group", "show", "-n", "keep"]).await.success();
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let config_dir = tempfile::tempdir().expect("dir");
    for args in [
        &["group", "create", "-l", "westeurope"][..],
        &["group", "list", "--query", "[?"],
        &["group", "list", "-o", "xml"],
        &["acr", "create", "-g", "g", "-n", "r", "--sku", "Gold"],
        &["nonsense"],
    ] {
        let run = run_berth(config_dir.path(), args).await;
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert_eq!(run.stdout, "");
    }
}

#[tokio::test]
async fn commands_need_a_login() {
    let config_dir = tempfile::tempdir().expect("dir");
    for args in [
        &["group", "list"][..],
        &["acr", "list"],
        &["account", "show"],
        &["ad", "sp", "create-for-rbac"],
    ] {
        let run = run_berth(config_dir.path(), args).await;
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_eq!(run.stderr, "ERROR: Please run 'berth login' to setup account.\n");
    }
}

#[tokio::test]
async fn unreachable_server_is_an_error() {
    let config_dir = tempfile::tempdir().expect("dir");
    // Port 9 on loopback: nothing listens there.
    let run = run_berth(
        config_dir.path(),
        &[
            "login",
            "--server",
            "https://127.0.0.1:9",
            "--service-principal",
            "-u",
            "a",
            "-p",
            "b",
            "--tenant",
            "t",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .starts_with("ERROR: request to `https://127.0.0.1:9/t/oauth2/v2.0/token` failed"),
        "{run}"
    );
}
