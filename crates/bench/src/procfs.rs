//! What the benchmark reads from /proc: CPU time, memory, process trees.

use std::collections::HashMap;
use std::path::Path;

pub type Pid = i32;

/// The fields of /proc/PID/stat after the command name, which may contain spaces.
fn stat_fields(pid: Pid) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // Field 3 (state) is a letter; keep its place with a 0 so indices stay field - 3.
    Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

pub fn ppid(pid: Pid) -> Option<Pid> {
    stat_fields(pid).map(|f| f[1] as Pid)
}

/// utime + stime of the whole process (all its threads, living and dead), in seconds.
pub fn cpu_seconds(pid: Pid) -> Option<f64> {
    let f = stat_fields(pid)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((f[11] + f[12]) as f64 / hz)
}

/// Time on CPU of each living thread, in nanoseconds (first field of schedstat): far finer than
/// the 10 ms clock ticks of utime/stime, but blind to threads that have exited.
pub fn thread_runtimes(pid: Pid) -> HashMap<Pid, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<Pid>() else { continue };
        let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) else { continue };
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            out.insert(tid, ns);
        }
    }
    out
}

/// Time on CPU of the calling thread, in nanoseconds (schedstat, as [`thread_runtimes`]).
pub fn own_thread_runtime_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn kib_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub fn rss_kib(pid: Pid) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Peak resident set size of the process so far (VmHWM).
pub fn hwm_kib(pid: Pid) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/status"), "VmHWM:")
}

pub fn pss_kib(pid: Pid) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

pub fn cmdline(pid: Pid) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_string()
}

pub fn all_pids() -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_string_lossy().parse().ok()).collect()
}

pub fn children(pid: Pid) -> Vec<Pid> {
    all_pids().into_iter().filter(|&p| ppid(p) == Some(pid)).collect()
}

pub fn alive(pid: Pid) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text.rfind(')').and_then(|i| text.get(i + 2..i + 3)) != Some("Z"),
        Err(_) => false,
    }
}

/// Processes that belong to one benchmark run: their command line names the run's directory, or
/// they work inside it (runsv names its service directory relatively).
pub fn pids_under(dir: &Path) -> Vec<Pid> {
    let me = std::process::id() as Pid;
    let needle = dir.to_string_lossy().into_owned();
    all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| {
            cmdline(p).contains(&needle)
                || std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|c| c.starts_with(dir))
        })
        .collect()
}
