//! Compiles a Bicep file and prints the template or the diagnostics (a development aid; the real
//! entry point is `berth bicep build`).
fn main() {
    let path = std::env::args().nth(1).expect("usage: bicep_build FILE");
    let compilation = berth_bicep::compile_path(std::path::Path::new(&path));
    for (file, diagnostic) in compilation.diagnostics() {
        eprint!("{}", file.view().snippet(diagnostic, false));
    }
    if let Some(text) = compilation.template_text() {
        println!("{text}");
    }
}
