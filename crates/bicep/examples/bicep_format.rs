//! Prints a Bicep file formatted (a development aid; the real entry point is `berth bicep format`).
fn main() {
    let path = std::env::args().nth(1).expect("usage: bicep_format FILE");
    let text = std::fs::read_to_string(path).expect("readable file");
    match berth_bicep::format(&text) {
        Some(formatted) => print!("{formatted}"),
        None => eprintln!("the file has syntax errors"),
    }
}
