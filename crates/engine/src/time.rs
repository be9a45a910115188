//! Wall-clock helpers: the protocol carries Unix times in milliseconds or microseconds.

// The keeper writes log lines with the same clock and format.
pub use gitvisor_keeper::time::{format_us, now_ms, now_us};

/// This machine's name, as git writes it in `gc.pid` and crash reports record it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}
