//! Caps glibc malloc's arenas for `berth serve`, by re-executing the process once with `GLIBC_TUNABLES`.
//!
//! Why: the blob paths allocate short-lived 0.5–1 MiB buffers on the async workers and the blocking pool and free
//! them on other threads. glibc gives every thread that allocates its own arena (up to 8 per core) and raises its
//! mmap and trim thresholds after the first large free, so each arena keeps its high-water mark: RSS went from
//! 14 MiB idle to 37–41 MiB during and after a 512 MiB push and pull. With at most two arenas it stayed at 26–28 MiB,
//! at the same throughput (`scripts/bench-registry.py`, 2 cores), but that was the high-water mark: glibc raises
//! its trim threshold to twice the largest chunk it ever freed from mmap (up to 64 MiB), so an arena kept ~12 MiB
//! of freed buffers. Fixed thresholds stop that: chunks up to 4 MiB (the 1 MiB blob reads) come from the heap, and
//! free memory above 4 MiB at a heap's top goes back to the kernel: 17–21 MiB during and after the same transfers,
//! at the same GET speed. (Fixing them disables glibc's adjustment of both, so the mmap threshold must be set too:
//! at its 128 KiB default every 1 MiB read was a fresh mmap and GETs ran at a third; a 1 MiB trim threshold made
//! the heap shrink and refault under every GET, costing a third too.) mimalloc idled at 34 MiB. Tunables can only
//! be read at process start, and `mallopt` would need `unsafe`, which the workspace forbids, hence the one `exec`.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn cap_arenas() {
    use std::os::unix::process::CommandExt as _;

    const TUNABLE: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=4194304";
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.arena_max") {
        return; // already tuned (by us before the exec, or by the operator)
    }
    let Ok(executable) = std::env::current_exe() else { return };
    let mut arguments = std::env::args_os();
    let program_name = arguments.next().unwrap_or_else(|| executable.clone().into_os_string());
    let tunables =
        if current.is_empty() { TUNABLE.to_owned() } else { format!("{current}:{TUNABLE}") };
    // `exec` only returns on failure; berth then runs with glibc's defaults, which is correct, only larger.
    let _error = std::process::Command::new(&executable)
        .arg0(program_name)
        .args(arguments)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn cap_arenas() {}
