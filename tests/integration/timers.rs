//! Timer units end to end: a real `OnActiveSec=` timer starting its service, `Persistent=`
//! across an engine restart, `gitvisor timers` and `gitvisor validate` on timers.

use std::time::{Duration, Instant};

use gitvisor_testkit::{wait_file, Home};
use serde_json::Value;

use crate::home;

fn timers(h: &Home) -> Vec<Value> {
    let out = h.ok(&["timers", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["timers"].as_array().unwrap().clone()
}

/// A oneshot that appends a line to `runs` each time it is started.
fn counter(h: &Home, name: &str) {
    h.unit(
        name,
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo run >> {name}.runs'\nWorkingDirectory={}\n",
            h.work().display()
        ),
    );
}

fn timer(h: &Home, name: &str, text: &str) {
    std::fs::write(h.services().join(format!("{name}.timer")), text).unwrap();
}

#[test]
fn an_on_active_sec_timer_starts_its_service_once_after_the_delay() {
    let mut h = home();
    counter(&h, "tick");
    timer(&h, "tick", "[Timer]\nOnActiveSec=1s\n[Install]\nWantedBy=timers.target\n");
    // Not enabled: listed, never fired.
    counter(&h, "idle");
    timer(&h, "idle", "[Timer]\nOnActiveSec=1s\n");
    let started = Instant::now();
    h.start_daemon();
    let t = timers(&h);
    let tick = t.iter().find(|t| t["name"] == "tick").unwrap();
    assert_eq!(tick["unit"], "tick");
    assert_eq!(tick["triggers"], serde_json::json!(["OnActiveSec=1s"]));
    assert!(tick["next_ms"].is_u64(), "{tick}");
    assert_eq!(wait_file(&h.work().join("tick.runs")), "run\n");
    assert!(started.elapsed() >= Duration::from_millis(900), "fired after {:?}", started.elapsed());
    h.wait_until("the timer has elapsed for good", || {
        let t = timers(&h);
        let tick = t.iter().find(|t| t["name"] == "tick").unwrap().clone();
        tick["last_ms"].is_u64() && tick["next_ms"].is_null()
    });
    let idle = timers(&h).into_iter().find(|t| t["name"] == "idle").unwrap();
    assert_eq!((idle["enabled"].as_bool(), idle["next_ms"].is_null()), (Some(false), true));
    assert!(!h.work().join("idle.runs").exists());
    assert!(h.log("logs/tick.log").contains("started by timer tick.timer"));
    let table = h.ok(&["timers"]);
    assert!(table.contains("tick.timer") && table.contains("tick.service"), "{table}");
    assert!(table.contains("not enabled"), "{table}");
}

#[test]
fn a_persistent_timer_runs_what_it_missed_while_the_engine_was_down() {
    let mut h = home();
    counter(&h, "job");
    timer(&h, "job", "[Timer]\nOnCalendar=*:*:0/2 UTC\nPersistent=yes\n[Install]\nWantedBy=timers.target\n");
    h.start_daemon();
    // Its stamp exists once it fired (a timer that never fired missed nothing, as in systemd).
    let next = h.wait_for("the timer to fire once and be scheduled again", || {
        let t = timers(&h).into_iter().find(|t| t["name"] == "job")?;
        t["last_ms"].as_u64()?;
        t["next_ms"].as_u64()
    });
    assert_eq!(h.stop_daemon(), Some(0));
    let runs_before = h.log("work/job.runs");
    // The elapse passes while no engine runs.
    h.wait_until("the scheduled elapse to pass", || now_ms() > next + 200);
    h.start_daemon();
    h.wait_until("the missed run", || h.log("logs/job.log").contains("missed while the engine was down"));
    h.wait_until("the service ran again", || h.log("work/job.runs").len() > runs_before.len());
    assert!(timers(&h)[0]["last_ms"].as_u64().unwrap() > next);
}

#[test]
fn a_timer_for_a_missing_service_says_so() {
    let mut h = home();
    timer(
        &h,
        "orphan",
        "[Timer]\nOnActiveSec=100ms\nUnit=ghost.service\n[Install]\nWantedBy=timers.target\n",
    );
    h.start_daemon();
    let t = h.wait_for("the elapse's error", || {
        timers(&h).into_iter().find(|t| t["name"] == "orphan" && t["error"].is_string())
    });
    assert_eq!(t["error"], "unit ghost.service does not exist");
    assert_eq!(t["unit"], "ghost");
}

#[test]
fn validate_checks_timers_and_prints_their_next_elapses() {
    let h = home();
    let dir = h.work();
    std::fs::write(dir.join("good.timer"), "[Timer]\nOnCalendar=Mon..Fri 09:00 UTC\n").unwrap();
    std::fs::write(dir.join("bad.timer"), "[Timer]\nOnCalendar=daily\nOnCalendar=*-13-01\n").unwrap();
    std::fs::write(dir.join("empty.timer"), "[Timer]\nPersistent=yes\n").unwrap();
    let good = h.ok(&["validate", dir.join("good.timer").to_str().unwrap()]);
    assert!(good.contains("good.timer:2: OnCalendar: Mon..Fri *-*-* 09:00:00 UTC"), "{good}");
    assert!(good.contains("next elapses"), "{good}");
    let out = h.run(&["validate", dir.join("bad.timer").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.timer:3: OnCalendar:"), "{text}");
    assert!(text.contains("month 13"), "{text}");
    let out = h.run(&["validate", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("empty.timer"), "{text}");
    assert!(text.contains("3 unit files checked"), "{text}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
