//! Property tests standing in for a fuzz target (cargo-fuzz needs nightly): on arbitrary input, and
//! on real files with random edits, the parser never panics and its tree gives back the input byte
//! for byte, and the whole compiler (checks and emission included) never panics.

use std::collections::HashMap;
use std::path::PathBuf;

use proptest::prelude::*;

const SAMPLES: &[&str] = &[
    include_str!("baselines/basic-publicip/publicIpAddress.bicep"),
    include_str!("baselines/container-registry/main.bicep"),
    include_str!("baselines/create-rg-lock-role-assignment/main.bicep"),
    include_str!("baselines/10-string-functions/main.bicep"),
    include_str!("baselines/bicepparam-Expressions/parameters.bicepparam"),
    include_str!("scenario/corrected/roleAssignment.bicep"),
];

/// Pieces of Bicep that make the random input reach deep into the grammar.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("param ".to_owned()),
        Just("var ".to_owned()),
        Just("resource ".to_owned()),
        Just("module ".to_owned()),
        Just("output ".to_owned()),
        Just("targetScope = ".to_owned()),
        Just("existing ".to_owned()),
        Just("'Microsoft.A/b@2020-01-01' ".to_owned()),
        Just("'m.bicep' ".to_owned()),
        Just("@description('d')\n".to_owned()),
        Just("[for (x, i) in ".to_owned()),
        Just("if (".to_owned()),
        Just("'a${".to_owned()),
        Just("}b'".to_owned()),
        Just("'''\nq'''".to_owned()),
        Just("x => ".to_owned()),
        Just("::".to_owned()),
        Just(".?".to_owned()),
        Just("parent: ".to_owned()),
        Just("scope: ".to_owned()),
        Just("name: ".to_owned()),
        "[a-z]{1,4}".prop_map(|s| s),
        "[0-9]{1,20}".prop_map(|s| s),
        "[ \\n\\t{}()\\[\\],.:?!=<>&|+*/%@'\"$\\\\-]{1,3}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..60).prop_map(|parts| parts.concat())
}

fn edited_sample() -> impl Strategy<Value = String> {
    (
        0..SAMPLES.len(),
        prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, fragment()), 1..8),
    )
        .prop_map(|(i, edits)| {
            let mut text = SAMPLES[i].to_owned();
            for (at, op, insert) in edits {
                let mut position = at.index(text.len() + 1);
                while !text.is_char_boundary(position) {
                    position -= 1;
                }
                match op {
                    0 => text.insert_str(position, &insert),
                    1 => {
                        let mut end = (position + insert.len()).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(position..end, "");
                    }
                    _ => text.truncate(position),
                }
            }
            text
        })
}

fn check(text: &str) {
    let parsed = berth_bicep::parse(text);
    assert_eq!(parsed.tree.text(text), text);
    for d in &parsed.diagnostics {
        assert!(d.span.end as usize <= text.len());
    }
    // The whole pipeline, with a module that refers back to the file under test.
    let loader: HashMap<PathBuf, String> = [
        (PathBuf::from("main.bicep"), text.to_owned()),
        (PathBuf::from("m.bicep"), text.to_owned()),
    ]
    .into_iter()
    .collect();
    let compilation = berth_bicep::compile_with(&PathBuf::from("main.bicep"), &loader);
    for (file, d) in compilation.diagnostics() {
        let _ = file.view().snippet(d, true);
        let _ = file.view().json(d);
    }
    let _ = compilation.template_text();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input(text in soup()) {
        check(&text);
    }

    #[test]
    fn edited_real_files(text in edited_sample()) {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes(text in any::<String>()) {
        check(&text);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for open in ["(", "[", "{a:", "!", "-", "'${"] {
        let text = format!("var x = {}", open.repeat(5000));
        check(&text);
    }
}

/// The significant tokens (no whitespace, no line breaks) of a text, for "formatting changes only layout".
fn significant(text: &str) -> Vec<String> {
    let parsed = berth_bicep::parse(text);
    parsed
        .tree
        .tokens
        .iter()
        .filter(|t| {
            !matches!(
                t.kind,
                berth_bicep::lexer::TokenKind::Whitespace | berth_bicep::lexer::TokenKind::NewLine
            )
        })
        .map(|t| text[t.span.range()].to_owned())
        .collect()
}

fn check_format(text: &str) {
    let Some(formatted) = berth_bicep::format(text) else { return };
    assert_eq!(
        significant(&formatted),
        significant(text),
        "formatting changed tokens:\n{formatted}"
    );
    assert!(
        berth_bicep::parse(&formatted).diagnostics.iter().all(|d| !d.is_error()),
        "{formatted}"
    );
    assert_eq!(
        berth_bicep::format(&formatted).as_deref(),
        Some(formatted.as_str()),
        "not idempotent"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn format_is_idempotent_and_keeps_tokens(text in prop_oneof![edited_sample(), soup()]) {
        check_format(&text);
    }
}

#[test]
fn formatting_never_glues_tokens() {
    check_format("param scope : :: x\n");
}

#[test]
fn formatting_the_samples_keeps_their_templates() {
    for sample in SAMPLES {
        check_format(sample);
    }
}

/// Pieces of module references and configuration files.
fn reference_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("br:".to_owned()),
        Just("br/".to_owned()),
        Just("ts:".to_owned()),
        Just("public".to_owned()),
        Just("corp".to_owned()),
        Just("127.0.0.1:5000".to_owned()),
        Just("[::1]".to_owned()),
        Just("/".to_owned()),
        Just(":".to_owned()),
        Just("@".to_owned()),
        Just("sha256:".to_owned()),
        Just("%".to_owned()),
        Just("%4".to_owned()),
        "[a-z0-9._-]{1,8}".prop_map(|s| s),
        "[0-9a-f]{64}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn config_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("\"moduleAliases\":".to_owned()),
        Just("\"br\":".to_owned()),
        Just("\"corp\":".to_owned()),
        Just("\"registry\":".to_owned()),
        Just("\"modulePath\":".to_owned()),
        Just("\"r.io\"".to_owned()),
        Just(",".to_owned()),
        Just("//".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("\n".to_owned()),
        Just("\"\\".to_owned()),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any module path and any bicepconfig.json: a verdict, never a panic; a valid reference prints back to
    /// itself, and `br/<alias>:` resolves to the `br:` form the real compiler shows.
    #[test]
    fn module_references_and_configurations(
        reference in prop::collection::vec(reference_fragment(), 0..12).prop_map(|p| p.concat()),
        config in prop::collection::vec(config_fragment(), 0..30).prop_map(|p| p.concat()),
    ) {
        use berth_bicep::registry::{parse_module_source, ArtifactReference, BicepConfig, ModuleSource};
        let configs = [
            BicepConfig::default(),
            BicepConfig::parse(&config, std::path::Path::new("/bicepconfig.json")).unwrap_or_default(),
        ];
        for config in &configs {
            if let Ok(ModuleSource::Registry(r)) = parse_module_source(&reference, config) {
                prop_assert_eq!(ArtifactReference::parse(&r.to_string()), Ok(r));
            }
        }
        // The compiler reports what it cannot use at the module's path.
        let source = format!("module m '{}' = {{\n  name: 'm'\n}}\n", reference.replace(['\'', '\\', '$'], ""));
        let loader: HashMap<PathBuf, String> = [
            (PathBuf::from("/w/main.bicep"), source),
            (PathBuf::from("/w/bicepconfig.json"), config.clone()),
        ]
        .into_iter()
        .collect();
        let compilation = berth_bicep::compile_with(&PathBuf::from("/w/main.bicep"), &loader);
        let _ = compilation.template_text();
    }
}
