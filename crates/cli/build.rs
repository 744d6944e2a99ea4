//! Passes `symbol-order.txt` to the linker for release builds on x86-64 Linux (where rustc links with lld).
//!
//! Why: see `scripts/symbol-order.py`; placing the functions a running server executes next to each other cut
//! its resident machine code (and so its idle RSS) several-fold. Functions the file does not name keep the
//! linker's order, and names it no longer finds are ignored, so a stale file costs memory, never correctness.
//! `BERTH_NO_SYMBOL_ORDERING=1` turns it off (e.g. for a linker other than lld).

use std::env;
use std::path::Path;

fn main() {
    let ordering = Path::new(env!("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    println!("cargo:rerun-if-changed={}", ordering.display());
    println!("cargo:rerun-if-env-changed=BERTH_NO_SYMBOL_ORDERING");
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let disabled = env::var_os("BERTH_NO_SYMBOL_ORDERING").is_some_and(|value| value != "0");
    if target == "x86_64-unknown-linux-gnu"
        && profile == "release"
        && !disabled
        && ordering.exists()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", ordering.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
