//! The engine dies; its services do not. A new engine adopts them.

use std::path::PathBuf;

use gitvisor_testkit::{alive, wait_dead, Home};
use serde_json::Value;

use crate::crash_reports::{self, reporter_caught_up, reports_of, SENTINEL};
use crate::home;

#[test]
fn services_survive_sigkill_and_are_adopted_then_stop_still_works() {
    let mut h = home();
    h.sh_unit(
        "ticker",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done",
        "[Install]\nWantedBy=default.target",
    );
    h.sh_unit("quiet", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    h.wait_state("ticker", "running");
    h.wait_state("quiet", "running");
    let ticker = h.pid("ticker").unwrap();
    let quiet = h.pid("quiet").unwrap();

    h.kill_daemon();
    assert!(alive(ticker) && alive(quiet), "services died with the engine");
    // Output keeps flowing to the log file while no engine runs.
    let log = h.path().join("logs/ticker.log");
    let size = std::fs::metadata(&log).unwrap().len();
    h.wait_until("the log grows without an engine", || std::fs::metadata(&log).unwrap().len() > size);

    h.start_daemon();
    let s = h.wait_state("ticker", "running");
    assert_eq!(s["pid"], ticker, "adopted, not restarted: {s:#}");
    assert_eq!(s["adopted"], true);
    assert_eq!(h.pid("quiet"), Some(quiet));
    // Exactly one process per service: no duplicate was started.
    let count = |needle: &str| {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(needle))
                    .unwrap_or(false)
            })
            .count()
    };
    assert_eq!(count("tick $i"), 1);

    // Lines printed after adoption reach the new engine's tail.
    let before = h.ok(&["logs", "ticker", "-n", "1"]);
    h.wait_until("new lines reach the adopted tail", || h.ok(&["logs", "ticker", "-n", "1"]) != before);

    h.ok(&["stop", "ticker", "quiet"]);
    wait_dead(ticker);
    wait_dead(quiet);
}

#[test]
fn services_that_died_meanwhile_are_restarted_per_policy() {
    let mut h = home();
    h.sh_unit("keep", "exec sleep 1000", "Restart=on-failure\n[Install]\nWantedBy=default.target");
    h.sh_unit("once", "exec sleep 1000", "Restart=no\n[Install]\nWantedBy=default.target");
    h.start_daemon();
    let keep = h.wait_state("keep", "running")["pid"].as_u64().unwrap() as u32;
    let once = h.wait_state("once", "running")["pid"].as_u64().unwrap() as u32;
    h.kill_daemon();
    unsafe {
        libc::kill(keep as i32, libc::SIGKILL);
        libc::kill(once as i32, libc::SIGKILL);
    }
    wait_dead(keep);
    wait_dead(once);
    h.start_daemon();
    let s = h.wait_state("keep", "running");
    assert_ne!(s["pid"], keep);
    let s = h.wait_state("once", "exited");
    assert_eq!(s["pid"], serde_json::Value::Null);
}

#[test]
fn an_exit_of_an_adopted_process_is_seen_without_polling() {
    let mut h = home();
    h.sh_unit(
        "adoptee",
        "exec sleep 1000",
        "Restart=always\nRestartSec=0\n[Install]\nWantedBy=default.target",
    );
    h.start_daemon();
    // How long the engine takes to see an adopted process end, five times (each time adopted
    // anew). Exits come from the kernel through a pidfd: milliseconds. A poller of period P
    // sees them P/2 late on average; the median of five under 150 ms rules out any poller
    // slower than about 300 ms (a 1 s poller passes with a chance of about 3%), while a loaded
    // machine stays far under it with a pidfd.
    let mut late_ms = Vec::new();
    for _ in 0..5 {
        let pid = h.wait_for("the adoptee runs", || h.pid("adoptee"));
        h.kill_daemon();
        h.start_daemon();
        assert_eq!(h.pid("adoptee"), Some(pid), "adopted");
        let killed_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        // The new process's status carries the exit the engine saw, with when it saw it.
        let s = h.wait_for("a new process replaces the adopted one", || {
            let s = h.service("adoptee");
            (s["pid"].as_u64().is_some_and(|p| p != pid as u64) && s["state"] == "running").then_some(s)
        });
        let seen_ms = s["last_exit"]["at_ms"].as_u64().unwrap();
        assert!(seen_ms >= killed_ms, "the exit of this round: {s:#}");
        late_ms.push(seen_ms - killed_ms);
    }
    late_ms.sort();
    assert!(late_ms[2] < 150, "exits seen after {late_ms:?} ms");
}

#[test]
fn a_user_stopped_service_stays_stopped_after_an_engine_crash() {
    let mut h = home();
    h.sh_unit("paused", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    h.wait_state("paused", "running");
    h.ok(&["stop", "paused"]);
    h.kill_daemon();
    h.start_daemon();
    assert_eq!(h.state("paused"), "stopped");
}

/// Kills the engine and starts a new one, which adopts `service`'s process; returns its pid.
fn adopt(h: &mut Home, service: &str) -> u32 {
    let pid = h.wait_state(service, "running")["pid"].as_u64().unwrap() as u32;
    h.kill_daemon();
    h.start_daemon();
    let s = h.wait_state(service, "running");
    assert_eq!((s["pid"].as_u64(), &s["adopted"]), (Some(pid as u64), &Value::Bool(true)), "{s:#}");
    pid
}

/// The lines of the service's log file that the engine wrote about its process `pid`.
fn notes_about(h: &Home, service: &str, pid: u32) -> Vec<String> {
    let needle = format!(" gitvisor process {pid} ");
    h.log(&format!("logs/{service}.log")).lines().filter(|l| l.contains(&needle)).map(String::from).collect()
}

#[test]
fn a_stop_after_adoption_is_a_stop_not_a_crash() {
    let mut h = home();
    h.sh_unit("adoptee", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    let pid = adopt(&mut h, "adoptee");
    h.ok(&["stop", "adoptee"]);
    let s = h.service("adoptee");
    assert_eq!((&s["state"], &s["error"]), (&Value::from("stopped"), &Value::Null), "{s:#}");
    // The engine sent the signal: it says so, and invents no exit status.
    assert_eq!(s["last_exit"]["sent_signal"], libc::SIGTERM, "{s:#}");
    assert_eq!((&s["last_exit"]["code"], &s["last_exit"]["signal"]), (&Value::Null, &Value::Null));
    let notes = notes_about(&h, "adoptee", pid);
    assert!(notes.last().unwrap().ends_with(&format!("process {pid} stopped with SIGTERM")), "{notes:#?}");
    reporter_caught_up(&h);
    assert_eq!(reports_of(&h, "adoptee"), Vec::<PathBuf>::new());
}

#[test]
fn a_clean_shutdown_after_adoption_is_a_stop_not_a_crash() {
    let mut h = home();
    h.sh_unit("adoptee", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    let pid = adopt(&mut h, "adoptee");
    assert_eq!(h.stop_daemon(), Some(0));
    wait_dead(pid);
    // The engine has exited: what it recorded and wrote is final.
    let state: Value = serde_json::from_str(&h.log("state.json")).unwrap();
    let record = &state["services"]["adoptee"];
    assert_eq!(record["error"], Value::Null, "{record:#}");
    assert_eq!(record["last_exit"]["sent_signal"], libc::SIGTERM, "{record:#}");
    let notes = notes_about(&h, "adoptee", pid);
    assert!(notes.last().unwrap().ends_with(&format!("process {pid} stopped with SIGTERM")), "{notes:#?}");
    assert_eq!(reports_of(&h, "adoptee"), Vec::<PathBuf>::new());
}

#[test]
fn a_segv_after_adoption_says_once_that_its_status_cannot_be_known() {
    let mut h = home();
    h.sh_unit("adoptee", "exec sleep 1000", "Restart=no\n[Install]\nWantedBy=default.target");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    let pid = adopt(&mut h, "adoptee");
    unsafe { libc::kill(pid as i32, libc::SIGSEGV) };
    let s = h.wait_state("adoptee", "exited");
    // Not the engine's child: the SEGV cannot be seen, and is not guessed.
    let unknown = "ended while adopted; its exit status cannot be known";
    assert_eq!(s["error"], Value::Null, "not known to be a failure: {s:#}");
    assert_eq!((&s["last_exit"]["code"], &s["last_exit"]["signal"]), (&Value::Null, &Value::Null));
    assert_eq!(s["last_exit"]["sent_signal"], Value::Null, "the engine sent nothing: {s:#}");
    assert_eq!(
        notes_about(&h, "adoptee", pid).last().unwrap().split_once(" gitvisor ").unwrap().1,
        format!("process {pid} {unknown}")
    );
    let log = h.log("logs/adoptee.log");
    assert_eq!(log.matches(unknown).count(), 1, "{log}");
    // Restart=no does not restart it as a failure: no report.
    reporter_caught_up(&h);
    assert_eq!(reports_of(&h, "adoptee"), Vec::<PathBuf>::new());
}

#[test]
fn an_unknown_end_after_adoption_restarted_as_a_failure_gets_one_report() {
    let mut h = home();
    h.sh_unit(
        "adoptee",
        "exec sleep 1000",
        "Restart=on-failure\nRestartSec=0\n[Install]\nWantedBy=default.target",
    );
    h.start_daemon();
    let pid = adopt(&mut h, "adoptee");
    unsafe { libc::kill(pid as i32, libc::SIGSEGV) };
    h.wait_until("a new process", || h.pid("adoptee").is_some_and(|p| p != pid));
    h.wait_until("a crash report", || reports_of(&h, "adoptee").len() == 1);
    let report = crash_reports::report_json(&reports_of(&h, "adoptee")[0]);
    assert_eq!(report["reason"], "ended while adopted; its exit status cannot be known", "{report:#}");
    assert_eq!(report["pid"], pid);
}
