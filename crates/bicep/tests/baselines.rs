//! The real Bicep compiler's baselines (tests/baselines, copied from Azure/bicep at 9beb0fe): each
//! `.bicep` file must compile to its `.json` byte for byte in key order, after the README's
//! normalisation (`_generator.version` and `_generator.templateHash` are not comparable).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(generator)) = map.get_mut("_generator") {
                generator.insert("version".into(), Value::String("<version>".into()));
                generator.insert("templateHash".into(), Value::String("<hash>".into()));
            }
            map.values_mut().for_each(normalise);
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

fn baseline_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/baselines").join(name)
}

fn check(dir: &str, file: &str) {
    let source = baseline_dir(dir).join(format!("{file}.bicep"));
    let expected_path = baseline_dir(dir).join(format!("{file}.json"));
    let compilation = berth_bicep::compile_path(&source);
    let errors: Vec<String> = compilation
        .diagnostics()
        .filter(|(_, d)| d.is_error())
        .map(|(f, d)| f.view().bicep_line(d))
        .collect();
    assert!(errors.is_empty(), "{dir}/{file}: {errors:#?}");
    let mut actual = compilation.template.expect("a template");
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    normalise(&mut actual);
    normalise(&mut expected);
    let actual = serde_json::to_string_pretty(&actual).unwrap();
    let expected = serde_json::to_string_pretty(&expected).unwrap();
    if actual != expected {
        panic!("{dir}/{file}.json differs\n--- expected\n{expected}\n--- actual\n{actual}");
    }
}

#[test]
fn hello_world() {
    check("01-hello-world", "main");
}

#[test]
fn string_functions() {
    check("10-string-functions", "main");
}

#[test]
fn array_loop() {
    check("20-array-loop", "main");
}

#[test]
fn basic_public_ip_module() {
    check("basic-publicip", "publicIpAddress");
}

#[test]
fn basic_public_ip() {
    check("basic-publicip", "main");
}

#[test]
fn container_registry() {
    check("container-registry", "main");
}

#[test]
fn managed_identity_rbac() {
    check("create-managedidentity-rbac", "main");
}

#[test]
fn rg_lock_role_assignment_module() {
    check("create-rg-lock-role-assignment", "applylock");
}

#[test]
fn rg_lock_role_assignment() {
    check("create-rg-lock-role-assignment", "main");
}

#[test]
fn custom_role_definition_assignment() {
    check("custom-role-definition-assignment", "main");
}

#[test]
fn resource_with_lock_existing() {
    check("resource-with-lock-existing", "main");
}

/// The bicepparam baseline's template (with a byte order mark) compiles; its parameters file, full
/// of lambdas and multi-line calls, parses without a syntax error.
#[test]
fn bicepparam_expressions_parse() {
    let dir = baseline_dir("bicepparam-Expressions");
    let compilation = berth_bicep::compile_path(&dir.join("main.bicep"));
    assert!(!compilation.has_errors());
    let params = std::fs::read_to_string(dir.join("parameters.bicepparam")).unwrap();
    let parsed = berth_bicep::parse(&params);
    assert_eq!(parsed.diagnostics, vec![]);
    assert_eq!(parsed.tree.text(&params), params);
}
