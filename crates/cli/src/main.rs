//! The `berth` binary: parses the command line and dispatches to `serve` or a CLI command.
//!
//! Flow: `args` (clap, no I/O) → `commands` (requests through `berth_client`, returning the JSON
//! result) → az's result transform (`arm::add_resource_group`) → `output` (`--query`, `--output`).
//! Exit codes as in az: 0 success, 1 error (`ERROR: ...` on stderr), 2 usage error; a closed
//! stdout pipe (`berth ... | head`) is not an error.

mod args;
mod arm;
mod commands;
mod docker_config;
mod malloc_tuning;
mod output;
mod profile;
mod session;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use serde_json::Value;

use args::{Cli, Command, GlobalArgs};
use commands::{Context, UsageError};
use profile::ConfigDir;

fn main() -> ExitCode {
    let cli = Cli::parse_from(args::normalize_argv(std::env::args_os().collect()));
    if matches!(cli.command, Command::Serve(_)) {
        malloc_tuning::cap_arenas();
    }
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    let serving = matches!(command, Command::Serve(_));
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .context("starting the async runtime")?;
    let context = Context { global: &global, config_dir: ConfigDir::from_env()? };
    let result = runtime.block_on(commands::run(command, &context))?;
    match result {
        Some(value) => print_result(value, &global),
        None => Ok(()),
    }
}

/// Applies az's result transform, `--query` and `--output`, then writes to stdout.
fn print_result(mut value: Value, global: &GlobalArgs) -> Result<()> {
    arm::add_resource_group(&mut value);
    let query = match global.query.as_deref() {
        // Already validated while parsing; compiled again here because the expression is not `Send`.
        Some(text) => Some(
            output::Query::compile(text)
                .map_err(|e| UsageError(format!("argument --query: {e}")))?,
        ),
        None => None,
    };
    if let Some(text) = output::render(&value, query.as_ref(), global.output)? {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    Ok(())
}

/// `--debug` shows berth's request/response log; `serve` logs at `info` (or `RUST_LOG`).
fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let filter = if cli.global.debug {
        EnvFilter::new("berth=debug,berth_client=debug,berth_server=debug")
    } else if matches!(cli.command, Command::Serve(_)) {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
    } else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// Prints the error as az does and picks the exit code.
fn report(error: &anyhow::Error) -> ExitCode {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    if let Some(usage) = error.downcast_ref::<UsageError>() {
        eprintln!("ERROR: {usage}");
        return ExitCode::from(2);
    }
    eprintln!("ERROR: {}", error_text(error));
    ExitCode::from(1)
}

fn error_text(error: &anyhow::Error) -> String {
    let arm_error = match error.downcast_ref::<berth_client::Error>() {
        Some(berth_client::Error::Arm(arm)) => Some(arm),
        Some(berth_client::Error::OperationFailed { error: Some(arm), .. }) => Some(arm),
        _ => None,
    };
    match arm_error {
        // azure-core's ODataV4Format: "(Code) message" then the code and message again.
        Some(arm) => format!("{arm}\nCode: {}\nMessage: {}", arm.code, arm.message),
        None => format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_errors_print_like_azure_core() {
        let error = anyhow::Error::from(berth_client::Error::Arm(berth_client::ArmError {
            status: 404,
            code: "ResourceGroupNotFound".to_owned(),
            message: "Resource group 'nope' could not be found.".to_owned(),
        }));
        assert_eq!(
            error_text(&error),
            "(ResourceGroupNotFound) Resource group 'nope' could not be found.\nCode: ResourceGroupNotFound\nMessage: Resource group 'nope' could not be found."
        );
    }

    #[test]
    fn other_errors_print_their_chain() {
        let error = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&error), "outer: inner");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(&anyhow::anyhow!("boom")), ExitCode::from(1));
        assert_eq!(report(&UsageError("bad".to_owned()).into()), ExitCode::from(2));
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(report(&anyhow::Error::from(pipe)), ExitCode::SUCCESS);
    }
}
