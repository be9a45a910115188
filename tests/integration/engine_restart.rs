//! What a new engine finds when it starts where an earlier one was killed.

use gitvisor_testkit::{wait_dead, wait_file};

use crate::home;

#[test]
fn template_instances_started_by_hand_come_back_after_an_engine_restart() {
    let mut h = home();
    let w = h.work();
    h.unit(
        "echo@",
        &format!("[Service]\nExecStart=/bin/sh -c 'echo %i > {}/%i; exec sleep 1000'\n", w.display()),
    );
    h.start_daemon();
    h.ok(&["start", "echo@second"]);
    wait_file(&w.join("second"));
    let pid = h.pid("echo@second").unwrap();
    h.kill_daemon();
    h.start_daemon();
    let s = h.wait_state("echo@second", "running");
    assert_eq!(s["pid"].as_u64(), Some(pid as u64), "the instance is adopted, not started anew");
    assert_eq!(s["adopted"], true);
    // And after a clean shutdown it is known again (stopped, as a unit started by hand is).
    assert_eq!(h.stop_daemon(), Some(0));
    wait_dead(pid);
    h.start_daemon();
    assert_eq!(h.state("echo@second"), "stopped");
}

#[test]
fn the_process_of_a_unit_removed_while_the_engine_was_down_is_stopped_at_start_up() {
    let mut h = home();
    h.enabled_sh_unit("gone", "exec sleep 1000", "");
    h.enabled_sh_unit("kept", "exec sleep 1000", "");
    h.start_daemon();
    let gone = h.wait_state("gone", "running")["pid"].as_u64().unwrap() as u32;
    let kept = h.pid("kept").unwrap();
    h.kill_daemon();
    h.git(&["rm", "-q", "gone.service"]);
    h.git(&["commit", "-q", "-m", "remove gone"]);
    h.start_daemon();
    // No orphan: the removed unit's process is stopped; the other is adopted.
    wait_dead(gone);
    assert_eq!(h.pid("kept"), Some(kept));
    let names: Vec<String> = h.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["kept"]);
}
