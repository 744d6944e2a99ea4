//! The source document's three Bicep files (scenario 2): as printed they are refused with the real
//! compiler's diagnostics; with the two faults corrected they compile to the reviewed template in
//! `tests/scenario/corrected/main.json`.

use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenario").join(name)
}

/// Each diagnostic in the real `bicep build` one-line form, with the path shortened to the file name.
fn lines(compilation: &berth_bicep::Compilation) -> Vec<String> {
    compilation
        .diagnostics()
        .map(|(file, d)| {
            let line = file.view().bicep_line(d);
            let name = file.path.file_name().unwrap().to_str().unwrap();
            line.replacen(file.path.to_str().unwrap(), name, 1)
        })
        .collect()
}

#[test]
fn printed_files_are_refused_with_the_real_diagnostics() {
    let compilation = berth_bicep::compile_path(&dir("printed").join("main.bicep"));
    assert!(compilation.has_errors());
    assert!(compilation.template.is_none());
    assert_eq!(
        lines(&compilation),
        [
            "main.bicep(1,7) : Warning no-unused-params: Parameter \"resourceGroupName\" is declared but never used. [https://aka.ms/bicep/linter-diagnostics#no-unused-params]",
            "main.bicep(17,59) : Error BCP052: The type \"outputs\" does not contain property \"principalId\". [https://aka.ms/bicep/core-diagnostics#BCP052]",
            "roleAssignment.bicep(11,1) : Warning BCP073: The property \"scope\" is read-only. Expressions cannot be assigned to read-only properties. If this is a resource type definition inaccuracy, report it using https://aka.ms/bicep-type-issues. [https://aka.ms/bicep/core-diagnostics#BCP073]",
        ]
    );
}

#[test]
fn a_top_level_string_scope_is_error_bcp036() {
    let compilation = berth_bicep::compile_path(&dir("top-level-scope").join("main.bicep"));
    let lines = lines(&compilation);
    assert!(lines.contains(&"main.bicep(14,29) : Error BCP104: The referenced module has errors. [https://aka.ms/bicep/core-diagnostics#BCP104]".to_owned()), "{lines:#?}");
    assert!(
        lines.contains(&"roleAssignment.bicep(8,8) : Error BCP036: The property \"scope\" expected a value of type \"resource | tenant\" but the provided value is of type \"string\". [https://aka.ms/bicep/core-diagnostics#BCP036]".to_owned()),
        "{lines:#?}"
    );
}

#[test]
fn corrected_files_compile_to_nested_deployments() {
    let compilation = berth_bicep::compile_path(&dir("corrected").join("main.bicep"));
    assert!(!compilation.has_errors(), "{:#?}", lines(&compilation));
    let expected = std::fs::read_to_string(dir("corrected").join("main.json")).unwrap();
    assert_eq!(compilation.template_text().unwrap().trim_end(), expected.trim_end());
    // The assignment lands on the registry, named from the registry's full ID.
    let template = compilation.template.unwrap();
    let assignment = &template["resources"][1]["properties"]["template"]["resources"][0];
    assert_eq!(
        assignment["scope"],
        "[resourceId('Microsoft.ContainerRegistry/registries', parameters('acrName'))]"
    );
    assert_eq!(
        template["resources"][1]["dependsOn"][0],
        "[resourceId('Microsoft.Resources/deployments', 'managedIdentityDeployment')]"
    );
}

#[test]
fn terminal_rendering_shows_the_source() {
    let compilation = berth_bicep::compile_path(&dir("printed").join("main.bicep"));
    let (file, diagnostic) = compilation.diagnostics().find(|(_, d)| d.code == "BCP052").unwrap();
    let view = berth_bicep::SourceView { path: "main.bicep", text: &file.text, lines: &file.lines };
    assert_eq!(
        view.snippet(diagnostic, false),
        "error[BCP052]: The type \"outputs\" does not contain property \"principalId\".\n  \
         --> main.bicep:17:59\n   |\n\
         17 | managedIdentityPrincipalId: managedIdentityModule.outputs.principalId\n   \
         |                                                           ^^^^^^^^^^^\n   \
         = see https://aka.ms/bicep/core-diagnostics#BCP052\n"
    );
    let json = view.json(diagnostic);
    assert_eq!(json["line"], 17);
    assert_eq!(json["column"], 59);
    assert_eq!(json["code"], "BCP052");
    assert_eq!(json["level"], "Error");
}
