//! Fuzz target: the Bicep parser and the whole compiler on arbitrary text. Parsing never fails and the tree prints
//! back to the input byte for byte; compiling (with a module that refers back to the same text) never panics and
//! every diagnostic renders.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = berth_bicep::parse(text);
    assert_eq!(parsed.tree.text(text), text, "the tree prints back to its input");
    for diagnostic in &parsed.diagnostics {
        assert!(diagnostic.span.end as usize <= text.len());
    }
    let files: HashMap<PathBuf, String> = [
        (PathBuf::from("main.bicep"), text.to_owned()),
        (PathBuf::from("m.bicep"), text.to_owned()),
    ]
    .into_iter()
    .collect();
    let compilation = berth_bicep::compile_with(&PathBuf::from("main.bicep"), &files);
    for (file, diagnostic) in compilation.diagnostics() {
        let _ = file.view().snippet(diagnostic, true);
        let _ = file.view().json(diagnostic);
    }
    let _ = compilation.template_text();
    let _ = berth_bicep::format(text);
});
