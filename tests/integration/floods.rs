//! Floods: a service writing to stdout as fast as it can (256 MiB, a gigabyte on demand), a crash loop, 200 services
//! restarting at once. Memory and disk stay bounded, `status` stays fast, the start limit holds;
//! the figures are printed (and kept in docs/reliability.md).

use std::time::{Duration, Instant};

use crate::home;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Total CPU time (user + system) of a process so far, in ms.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `f[0]` is field 3 (the state); utime and stime are fields 14 and 15.
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<u64>().ok()).sum();
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1000 / hz
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn a_gigabyte_of_output_leaves_memory_and_disk_bounded_and_status_fast() {
    // 256 MiB in the suite (about 15 s here); `GITVISOR_FLOOD_BYTES=1073741824` for the gigabyte
    // (about a minute: the figures in docs/reliability.md).
    let bytes = env_or("GITVISOR_FLOOD_BYTES", 256 << 20);
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[logs]\nmax_file_size = \"8M\"\nmax_files = 3\n").unwrap();
    // Lines of 100 bytes as fast as the pipe takes them, then a last line to know it is over
    // (computed by the shell, so the command line in the engine's note does not match it).
    h.sh_unit(
        "flood",
        &format!("yes $$(printf %%099d 0) | head -c {bytes}; echo; echo flood-$$((6*7)); exec sleep 100000"),
        "",
    );
    h.sh_unit("other", "exec sleep 100000", "");
    h.start_daemon();
    h.ok(&["start", "other"]);
    let engine = h.daemon_pid();
    let t = Instant::now();
    h.ok(&["start", "flood"]);
    let keeper = crate::logs::keeper_pid(&h).expect("a log keeper");
    let (engine_cpu, keeper_cpu) = (cpu_ms(engine), cpu_ms(keeper));
    let mut statuses = Vec::new();
    let log = h.path().join("logs/flood.log");
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("flood-42") {
        let s = Instant::now();
        h.ok(&["status", "--json"]);
        statuses.push(s.elapsed());
        // A user's pace, not a second flood of CLI processes.
        std::thread::sleep(Duration::from_millis(50));
        assert!(t.elapsed() < Duration::from_secs(600), "the flood never ended");
    }
    let took = t.elapsed();
    let (engine_peak, keeper_peak) = (peak_kb(engine), peak_kb(keeper));
    let disk = dir_size(&h.path().join("logs"));
    println!(
        "flood: {} MiB in {took:?} ({:.0} MiB/s to the log); engine peak RSS {} KiB, CPU {} ms; keeper peak RSS {} KiB, \
         CPU {} ms; logs on disk {} KiB; status p50 {:?}, p99 {:?} over {} calls",
        bytes >> 20,
        bytes as f64 / (1 << 20) as f64 / took.as_secs_f64(),
        engine_peak,
        cpu_ms(engine) - engine_cpu,
        keeper_peak,
        cpu_ms(keeper) - keeper_cpu,
        disk >> 10,
        percentile(statuses.clone(), 0.5),
        percentile(statuses.clone(), 0.99),
        statuses.len()
    );
    // The keeper reads the flood and hands the engine its lines (for tails and followers): both
    // hold bounded buffers, whatever the volume.
    assert!(engine_peak < 128 * 1024, "engine peaked at {engine_peak} KiB");
    assert!(keeper_peak < 64 * 1024, "keeper peaked at {keeper_peak} KiB");
    // Rotation: the current file and 3 old ones of 8 MiB, a line over at most.
    assert!(disk <= 4 * (8 << 20) + 4096, "{disk} bytes of logs");
    assert!(percentile(statuses, 0.99) < Duration::from_secs(5));
    assert_eq!(h.state("other"), "running");
}

#[test]
fn a_crash_loop_costs_little_per_restart_and_the_start_limit_fails_it() {
    let secs = env_or("GITVISOR_CRASH_LOOP_SECS", 10);
    let mut h = home();
    // Unlimited: it loops for the whole time; limited: the default start limit fails it.
    h.sh_unit("looping", "echo up; exit 1", "Restart=always\nRestartSec=0\nStartLimitIntervalSec=0");
    h.sh_unit("limited", "echo up; exit 1", "Restart=always\nRestartSec=0");
    h.start_daemon();
    let engine = h.daemon_pid();
    let cpu0 = cpu_ms(engine);
    h.ok(&["start", "looping"]);
    let out = h.run(&["start", "limited"]);
    let _ = out;
    let s = h.wait_state("limited", "failed");
    assert!(s["error"].as_str().unwrap_or_default().starts_with("start limit hit"), "{s}");
    let t = Instant::now();
    h.wait_until("the loop's time", || t.elapsed() >= Duration::from_secs(secs));
    let restarts = h.service("looping")["restarts"].as_u64().unwrap();
    let cpu = cpu_ms(engine) - cpu0;
    h.ok(&["stop", "looping"]);
    let logs = dir_size(&h.path().join("logs"));
    let reports = std::fs::read_dir(h.path().join("crash-reports")).map(|d| d.count()).unwrap_or(0);
    let report_bytes = dir_size(&h.path().join("crash-reports"));
    println!(
        "crash loop: {restarts} restarts in {secs} s, engine CPU {cpu} ms ({:.2} ms a restart); logs {} KiB, \
         {reports} crash report files ({} KiB)",
        cpu as f64 / restarts.max(1) as f64,
        logs >> 10,
        report_bytes >> 10
    );
    assert!(restarts > 10 * secs, "only {restarts} restarts in {secs} s");
    // Logs rotate at their cap (10 MiB a file, 5 files by default); reports keep theirs.
    assert!(logs <= 6 * (10 << 20), "{logs} bytes of logs");
    assert!(report_bytes <= 512 << 20, "{report_bytes} bytes of crash reports");
}

#[test]
fn two_hundred_services_restart_at_once() {
    let mut h = home();
    for i in 0..200 {
        h.sh_unit(&format!("svc{i:03}"), "exec sleep 100000", "");
    }
    h.start_daemon();
    let names: Vec<String> = (0..200).map(|i| format!("svc{i:03}")).collect();
    let args: Vec<&str> = std::iter::once("start").chain(names.iter().map(String::as_str)).collect();
    h.ok(&args);
    let before: Vec<u64> = names.iter().map(|n| h.pid(n).unwrap() as u64).collect();
    let t = Instant::now();
    let args: Vec<&str> = std::iter::once("restart").chain(names.iter().map(String::as_str)).collect();
    h.ok(&args);
    let took = t.elapsed();
    let status = h.status();
    let services = status["services"].as_array().unwrap();
    let running = services.iter().filter(|s| s["state"] == "running").count();
    let renewed = services.iter().filter(|s| !before.contains(&s["pid"].as_u64().unwrap_or(0))).count();
    println!("200 services restarted in {took:?}");
    assert_eq!((running, renewed), (200, 200));
    assert_eq!(h.stop_daemon(), Some(0));
}
