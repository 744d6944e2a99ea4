//! `berth bicep`: the real binary compiles the source document's Bicep files, refuses the printed
//! ones with the real compiler's diagnostics, and answers the exact command line the Azure CLI uses
//! for its `bicep` binary (`bicep --version`, `bicep build --stdout FILE`) when run under that name.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::Run;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bicep/tests/scenario").join(name)
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Run {
    Run::from(
        Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("berth runs"),
    )
}

fn copy_scenario(name: &str, to: &Path) {
    for entry in std::fs::read_dir(scenario(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bicep") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn builds_the_corrected_files_to_a_file_and_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    copy_scenario("corrected", dir.path());
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let built = run(berth, &["bicep", "build", "main.bicep"], dir.path());
    assert_eq!(built.code, 0, "{built}");
    assert!(built.stderr.contains("warning[no-unused-params]"), "{built}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("main.json")).unwrap())
            .unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(scenario("corrected").join("main.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written, expected);

    let stdout = run(berth, &["bicep", "build", "--stdout", "main.bicep"], dir.path());
    assert_eq!(stdout.code, 0, "{stdout}");
    assert_eq!(stdout.json(), expected);
}

#[test]
fn refuses_the_printed_files_with_bicep_diagnostics() {
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let dir = scenario("printed");
    let refused = run(berth, &["bicep", "build", "--stdout", "main.bicep"], &dir);
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stdout.is_empty(), "{refused}");
    assert!(
        refused.stderr.contains(
            "error[BCP052]: The type \"outputs\" does not contain property \"principalId\"."
        ),
        "{refused}"
    );
    assert!(
        refused
            .stderr
            .contains("17 | managedIdentityPrincipalId: managedIdentityModule.outputs.principalId"),
        "{refused}"
    );
    assert!(refused.stderr.contains("warning[BCP073]"), "{refused}");

    let json = run(
        berth,
        &["bicep", "build", "--stdout", "main.bicep", "--diagnostics-format", "json"],
        &dir,
    );
    assert_eq!(json.code, 1);
    let start = json.stderr.find('{').unwrap();
    let end = json.stderr.rfind('}').unwrap();
    let diagnostics: Value = serde_json::from_str(&json.stderr[start..=end]).unwrap();
    let codes: Vec<&str> = diagnostics["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["no-unused-params", "BCP052", "BCP073"]);

    let brief = run(berth, &["bicep", "lint", "main.bicep", "--diagnostics-format", "brief"], &dir);
    assert_eq!(brief.code, 1);
    assert!(brief.stderr.contains("main.bicep(17,59) : Error BCP052: The type \"outputs\" does not contain property \"principalId\". [https://aka.ms/bicep/core-diagnostics#BCP052]"), "{brief}");
}

#[cfg(unix)]
#[test]
fn answers_the_azure_cli_command_line_as_bicep() {
    let dir = tempfile::tempdir().unwrap();
    copy_scenario("corrected", dir.path());
    let bicep = dir.path().join("bicep");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &bicep).unwrap();

    let version = run(&bicep, &["--version"], dir.path());
    assert_eq!(version.code, 0, "{version}");
    assert!(version.stdout.starts_with("Bicep CLI version "), "{version}");
    let same = run(Path::new(env!("CARGO_BIN_EXE_berth")), &["bicep", "--version"], dir.path());
    assert_eq!(same.stdout, version.stdout);

    let built = run(&bicep, &["build", "--stdout", "main.bicep"], dir.path());
    assert_eq!(built.code, 0, "{built}");
    assert_eq!(built.json()["resources"][0]["type"], "Microsoft.Resources/deployments");
}

#[test]
fn formats_in_place_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    copy_scenario("printed", dir.path());
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let formatted = run(berth, &["bicep", "format", "main.bicep"], dir.path());
    assert_eq!(formatted.code, 0, "{formatted}");
    let once = std::fs::read_to_string(dir.path().join("main.bicep")).unwrap();
    assert!(
        once.contains(
            "\n  name: 'managedIdentityDeployment'\n  params: {\n    name: managedIdentityName\n"
        ),
        "{once}"
    );
    let again = run(berth, &["bicep", "format", "--stdout", "main.bicep"], dir.path());
    assert_eq!(again.stdout, once);
}

#[test]
fn usage_errors() {
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(berth, &["bicep"], dir.path()).code, 2);
    let missing = run(berth, &["bicep", "build", "nope.bicep"], dir.path());
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("BCP091"), "{missing}");
}
