//! The engine dies; its services do not. A new engine adopts them.

use gitvisor_testkit::{alive, wait_dead};

use crate::home;

#[test]
fn services_survive_sigkill_and_are_adopted_then_stop_still_works() {
    let mut h = home();
    let w = h.work();
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
    let _ = w;
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
    let pid = h.wait_state("adoptee", "running")["pid"].as_u64().unwrap() as u32;
    h.kill_daemon();
    h.start_daemon();
    assert_eq!(h.pid("adoptee"), Some(pid));
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    h.wait_until("a new process replaces the adopted one", || h.pid("adoptee").is_some_and(|p| p != pid));
    assert_eq!(h.service("adoptee")["restarts"], 1);
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
