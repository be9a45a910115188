//! Resource limits through cgroups, for real: this machine mounts the cgroup v1 memory, cpu and
//! pids hierarchies, and the suite runs as root (CI does). The v2 code is tested against a fake
//! tree in `supervisor/cgroup.rs`. And the path where no cgroup can be used, with the engine
//! pointed at an empty cgroup root.

use std::path::PathBuf;

use gitvisor_testkit::{alive, wait_dead, wait_file, wait_for, Home};
use serde_json::Value;

use crate::crash_reports::{report_json, reports_of};
use crate::home;

/// Forks 8 sleepers, saying each fork the kernel refuses, then sleeps.
const FORKER: &str = r#"
import os, sys, time
for i in range(8):
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except OSError as e:
        print('fork refused:', e, file=sys.stderr, flush=True)
print('forked', flush=True)
time.sleep(1000)
"#;

const ROOT_ONLY: &str = "needs root: run the suite as root (CI does)";

/// The cgroup directory of the service's main process in the v1 `controller` hierarchy, as the
/// kernel says (`/proc/PID/cgroup`).
fn cgroup_dir(h: &Home, service: &str, controller: &str) -> PathBuf {
    let s = h.service(service);
    assert!(s["limits"].as_str().is_some_and(|l| l.starts_with("enforced in cgroup v1 ")), "{s:#}");
    let pid = s["pid"].as_u64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = own
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, controllers, path) = (p.next()?, p.next()?, p.next()?);
            controllers.split(',').any(|c| c == controller).then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} line in {own}"));
    assert!(path.ends_with(&format!("/{service}")), "{service} runs in {path}");
    PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"))
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn a_service_over_its_memory_max_is_oom_killed_and_reported() {
    crate::need_root(ROOT_ONLY);
    let mut h = home();
    // Writes 200 MiB (each page touched) under a 32 MiB limit.
    h.sh_unit(
        "hog",
        "exec /usr/bin/python3 -c \"import time; b = b'x' * (200 << 20); time.sleep(1000)\"",
        "MemoryMax=32M\nRestart=no",
    );
    h.start_daemon();
    h.ok(&["start", "hog"]);
    let s = h.wait_for("hog to be killed", || {
        let s = h.service("hog");
        (s["state"] == "exited").then_some(s)
    });
    assert_eq!(s["last_exit"]["signal"], libc::SIGKILL, "{s:#}");
    let report = wait_for("the OOM kill's crash report", || reports_of(&h, "hog").pop());
    let r = report_json(&report);
    assert_eq!(r["oom"], true, "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("oom: killed by the kernel for exceeding MemoryMax= (33554432 bytes)"),
        "{reason}"
    );
    // Its peak is its cgroup's: at the limit, not the 200 MiB it tried.
    let peak = r["peak_memory_kb"].as_u64().unwrap_or_else(|| panic!("{r:#}"));
    assert!((16 << 10..=32 << 10).contains(&peak), "peak {peak} KiB under MemoryMax=32M");
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn tasks_max_refuses_the_extra_fork_and_cpu_quota_holds_a_busy_loop() {
    crate::need_root(ROOT_ONLY);
    let mut h = home();
    std::fs::write(h.work().join("forker.py"), FORKER).unwrap();
    // The Debian package's interpreter (setup installs it): a PATH shim (pyenv) forks too.
    h.sh_unit("forker", "exec /usr/bin/python3 forker.py", "TasksMax=4");
    h.sh_unit("spinner", "while :; do :; done", "CPUQuota=20%");
    h.start_daemon();
    h.ok(&["start", "forker", "spinner"]);
    h.wait_until("forker's refused forks in its log", || h.log("logs/forker.log").contains(" forked"));
    let pids = cgroup_dir(&h, "forker", "pids");
    assert_eq!(std::fs::read_to_string(pids.join("pids.max")).unwrap().trim(), "4");
    let current: u32 = std::fs::read_to_string(pids.join("pids.current")).unwrap().trim().parse().unwrap();
    assert!(current <= 4, "{current} tasks under TasksMax=4");
    let log = h.log("logs/forker.log");
    let refused = log.lines().filter(|l| l.contains(" err fork refused: [Errno 11]")).count();
    assert!(refused >= 5, "8 forks, at most 3 beside the main process: {log}");
    // The busy loop's CPU time over at least two seconds of wall time: near 20 %, far from 100 %.
    let cpu = |h: &Home| h.service("spinner")["cpu_ms"].as_u64().unwrap();
    let (t0, c0) = (std::time::Instant::now(), cpu(&h));
    h.wait_until("two seconds of the busy loop", || t0.elapsed().as_secs_f64() >= 2.0);
    let share = (cpu(&h) - c0) as f64 / t0.elapsed().as_millis() as f64;
    assert!(share < 0.35, "CPUQuota=20% held a busy loop at {:.0} %", share * 100.0);
    let cpu_dir = cgroup_dir(&h, "spinner", "cpu");
    assert_eq!(std::fs::read_to_string(cpu_dir.join("cpu.cfs_quota_us")).unwrap().trim(), "20000");
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn a_process_that_left_the_group_is_gone_after_stop_even_after_adoption_and_the_cgroup_with_it() {
    crate::need_root(ROOT_ONLY);
    let mut h = home();
    // setsid: a session and process group of its own, out of reach of the group's signals.
    h.sh_unit("escaper", "setsid sleep 1000 & echo $! > escapee; exec sleep 1000", "TasksMax=100");
    h.start_daemon();
    h.ok(&["start", "escaper"]);
    let escapee: u32 = h.wait_for("the escapee's pid", || {
        std::fs::read_to_string(h.work().join("escapee")).ok()?.trim().parse().ok()
    });
    let dir = cgroup_dir(&h, "escaper", "pids");
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l.trim() == escapee.to_string()), "in the cgroup: {procs}");
    // A new engine adopts the service with its cgroup.
    h.kill_daemon();
    h.start_daemon();
    let s = h.wait_state("escaper", "running");
    assert_eq!(s["adopted"], true, "{s:#}");
    assert_eq!(cgroup_dir(&h, "escaper", "pids"), dir);
    h.ok(&["stop", "escaper"]);
    wait_dead(escapee);
    h.wait_until("the cgroup to be removed", || !dir.exists());
    assert!(!alive(escapee));
}

#[test]
fn where_no_cgroup_can_be_used_limits_are_said_not_enforced_and_the_service_runs() {
    let mut h = home();
    let empty = h.path().join("no-cgroups");
    std::fs::create_dir_all(&empty).unwrap();
    h.enabled_sh_unit("capped", "exec sleep 1000", "MemoryMax=64M\nHealthCheckURL=https://127.0.0.1:1/");
    h.enabled_sh_unit("plain", "exec sleep 1000", "");
    h.start_daemon_with(&[("GITVISOR_CGROUP_ROOT", empty.to_str().unwrap())]);
    let s = h.wait_state("capped", "running");
    let limits = s["limits"].as_str().unwrap();
    assert!(limits.starts_with("not enforced: no usable cgroup: cgroup v2: not mounted; cgroup v1: no memory hierarchy mounted at"), "{limits}");
    let said: Vec<String> = serde_json::from_value(s["unenforced"].clone()).unwrap();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("MemoryMax= is not enforced: no usable cgroup:"), "{said:?}");
    assert!(said[0].ends_with("; the service runs without it"), "{said:?}");
    assert_eq!(said[1], "HealthCheckURL= is not probed: only http:// URLs are (the engine has no TLS)");
    let plain = h.service("plain");
    assert_eq!((&plain["limits"], &plain["unenforced"]), (&Value::Null, &serde_json::json!([])));
    let text = h.ok(&["status"]);
    assert!(text.contains("not enforced: capped: MemoryMax= is not enforced: no usable cgroup"), "{text}");
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn private_pids_runs_the_program_as_pid_1_of_its_own_namespace() {
    crate::need_root("making PID namespaces");
    let mut h = home();
    // As PID 1 it sees its own /proc: itself and what it runs. It handles SIGTERM, so a stop
    // reaches it (a PID 1 without a handler would only die of the SIGKILL).
    h.sh_unit(
        "isolated",
        "trap 'echo got term > term; exit 0' TERM; echo $$$$ > mypid; ls /proc | grep -c '^[0-9]' > nprocs; \
         sleep 1000 & while :; do sleep 0.1; done",
        "PrivatePIDs=yes",
    );
    h.sh_unit(
        "stubborn",
        "echo $$$$ > stubborn-pid; exec sleep 1000",
        "PrivatePIDs=yes\nTimeoutStopSec=500ms",
    );
    h.start_daemon();
    h.ok(&["start", "isolated", "stubborn"]);
    let s = h.service("isolated");
    assert_eq!(s["unenforced"], serde_json::json!([]), "{s}");
    assert_eq!(wait_file(&h.work().join("mypid")), "1\n");
    let seen: u32 = wait_file(&h.work().join("nprocs")).trim().parse().unwrap();
    assert!(seen <= 4, "it sees {seen} processes in /proc: not its own");
    let shim = h.pid("isolated").unwrap();
    assert!(alive(shim));
    // The shim ends as PID 1 ended: killed by SIGKILL (which an ancestor namespace can send).
    h.sh_unit("killed", "exec sleep 1000", "PrivatePIDs=yes");
    h.commit_all("add killed");
    h.ok(&["sync"]);
    h.ok(&["start", "killed"]);
    let killed_shim = h.pid("killed").unwrap();
    let children =
        std::fs::read_to_string(format!("/proc/{killed_shim}/task/{killed_shim}/children")).unwrap();
    let pid1: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid1), nix::sys::signal::Signal::SIGKILL).unwrap();
    let s = h.wait_state("killed", "exited");
    assert_eq!(s["last_exit"]["signal"], libc::SIGKILL, "{s}");
    // Its grandchild, as the engine's namespace sees it.
    let grandchild = h.wait_for("the background sleep", || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|p| {
                let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                // In the shim's session, a `sleep 1000`.
                cmd.starts_with("sleep\x001000") && stat.split_whitespace().nth(5) == Some(&shim.to_string())
            })
    });
    // An engine killed and started again adopts the shim and still stops it all.
    h.kill_daemon();
    h.start_daemon();
    let s = h.wait_state("isolated", "running");
    assert_eq!((s["pid"].as_u64(), s["adopted"].as_bool()), (Some(shim as u64), Some(true)), "{s}");
    h.ok(&["stop", "isolated"]);
    wait_dead(grandchild);
    assert_eq!(wait_file(&h.work().join("term")), "got term\n");
    assert_eq!(h.state("isolated"), "stopped");
    wait_dead(shim);
    // Killed by SIGKILL after the timeout.
    assert_eq!(wait_file(&h.work().join("stubborn-pid")), "1\n");
    let stubborn = h.pid("stubborn").unwrap();
    h.ok(&["stop", "stubborn"]);
    wait_dead(stubborn);
    // Adopted by the second engine, so its status is unknown; what it took to end it is not:
    // as PID 1 without a handler it ignored SIGTERM.
    assert_eq!(h.service("stubborn")["last_exit"]["sent_signal"], libc::SIGKILL);
}

#[test]
fn a_services_cpu_and_memory_count_its_children_and_keep_a_short_history() {
    let mut h = home();
    // The main shell only waits; a child does the work.
    h.sh_unit("busy", "sh -c 'while :; do :; done' & wait", "");
    h.start_daemon();
    h.ok(&["start", "busy"]);
    // Each status call samples (at most once a second): the busy child's CPU is the service's.
    let percent = h.wait_for("a CPU figure with the child's work", || {
        let s = h.service("busy");
        s["cpu_percent"].as_f64().filter(|p| *p > 20.0)
    });
    assert!(percent < 250.0, "{percent}");
    let s = h.service("busy");
    assert!(s["memory_kb"].as_u64().unwrap() > 0, "{s}");
    // The history the window draws: samples taken while someone asked, bounded.
    let samples = h.wait_for("two samples in the history", || {
        let v: Value = serde_json::from_str(&h.ok(&["metrics", "busy", "--json"])).unwrap();
        let samples = v["services"][0]["samples"].as_array().cloned().unwrap_or_default();
        (samples.len() >= 2).then_some(samples)
    });
    assert!(samples.iter().all(|x| x["memory_kb"].as_u64().unwrap() > 0), "{samples:?}");
    let table = h.ok(&["metrics", "busy"]);
    assert!(table.starts_with("NAME") && table.contains("busy"), "{table}");
}
