//! Criterion benchmark: compile time of the source document's three Bicep files (printed: refused
//! with diagnostics; corrected: full template) and of the largest public baseline
//! (create-rg-lock-role-assignment, a subscription file with a resource-group module).
//! Files are served from memory so the numbers measure the compiler, not the disk.

use std::collections::HashMap;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

fn loader(files: &[(&str, &str)]) -> HashMap<PathBuf, String> {
    files.iter().map(|(p, t)| (PathBuf::from(p), (*t).to_owned())).collect()
}

fn bench(c: &mut Criterion) {
    let corrected = loader(&[
        ("main.bicep", include_str!("../tests/scenario/corrected/main.bicep")),
        (
            "managedIdentity.bicep",
            include_str!("../tests/scenario/corrected/managedIdentity.bicep"),
        ),
        ("roleAssignment.bicep", include_str!("../tests/scenario/corrected/roleAssignment.bicep")),
    ]);
    let printed = loader(&[
        ("main.bicep", include_str!("../tests/scenario/printed/main.bicep")),
        ("managedIdentity.bicep", include_str!("../tests/scenario/printed/managedIdentity.bicep")),
        ("roleAssignment.bicep", include_str!("../tests/scenario/printed/roleAssignment.bicep")),
    ]);
    let baseline = loader(&[
        (
            "main.bicep",
            include_str!("../tests/baselines/create-rg-lock-role-assignment/main.bicep"),
        ),
        (
            "applylock.bicep",
            include_str!("../tests/baselines/create-rg-lock-role-assignment/applylock.bicep"),
        ),
    ]);
    let main = PathBuf::from("main.bicep");
    c.bench_function("scenario2 corrected (3 files, template)", |b| {
        b.iter(|| {
            let compilation = berth_bicep::compile_with(&main, &corrected);
            assert!(compilation.template_text().is_some());
        })
    });
    c.bench_function("scenario2 as printed (3 files, diagnostics)", |b| {
        b.iter(|| {
            let compilation = berth_bicep::compile_with(&main, &printed);
            assert!(compilation.has_errors());
        })
    });
    c.bench_function("largest baseline create-rg-lock-role-assignment", |b| {
        b.iter(|| {
            let compilation = berth_bicep::compile_with(&main, &baseline);
            assert!(compilation.template_text().is_some());
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
