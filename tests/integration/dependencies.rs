//! Dependencies as systemd.unit(5) propagates them, with real processes: a restart or stop of a
//! unit reaches what `Requires=`, `BindsTo=` or `PartOf=` it; a bound unit stops when what it is
//! bound to ends for any reason; `Requisite=` needs its unit up already; `OnFailure=` starts a
//! unit when one fails; and a `Type=simple` main process that forks away is pointed out.

use gitvisor_testkit::{alive, wait_dead, wait_file};

use crate::home;

#[test]
fn restart_and_stop_reach_what_requires_or_is_part_of_a_unit() {
    let mut h = home();
    h.sh_unit("db", "exec sleep 1000", "");
    h.sh_unit("web", "exec sleep 1000", "[Unit]\nRequires=db.service\nAfter=db.service");
    h.sh_unit("worker", "exec sleep 1000", "[Unit]\nPartOf=db.service\nAfter=db.service");
    h.start_daemon();
    // PartOf= pulls nothing in: worker starts alone.
    h.ok(&["start", "worker"]);
    assert_eq!(h.state("db"), "stopped");
    h.ok(&["start", "web"]);
    let (db, web, worker) = (h.pid("db").unwrap(), h.pid("web").unwrap(), h.pid("worker").unwrap());
    let out = h.ok(&["restart", "db"]);
    assert!(out.contains("web: running") && out.contains("restarted because it requires db"), "{out}");
    assert!(out.contains("restarted because it is part of db"), "{out}");
    for old in [db, web, worker] {
        wait_dead(old);
    }
    let now = [h.pid("db"), h.pid("web"), h.pid("worker")];
    assert!(now.iter().all(|p| p.is_some_and(alive)), "{now:?}");
    let out = h.ok(&["stop", "db"]);
    assert!(out.contains("stopped because it is part of db"), "{out}");
    for n in ["db", "web", "worker"] {
        assert_eq!(h.state(n), "stopped", "{n}");
    }
    // A restart of the dependent alone leaves what it requires alone.
    h.ok(&["start", "web"]);
    let db = h.pid("db").unwrap();
    h.ok(&["restart", "web"]);
    assert_eq!(h.pid("db"), Some(db));
}

#[test]
fn a_bound_unit_stops_when_what_it_is_bound_to_ends() {
    let mut h = home();
    h.sh_unit("sidecar", "exec sleep 1000", "");
    h.sh_unit("app", "exec sleep 1000", "[Unit]\nBindsTo=sidecar.service\nAfter=sidecar.service");
    h.start_daemon();
    h.ok(&["start", "app"]);
    let sidecar = h.pid("sidecar").expect("BindsTo= pulls it in");
    let app = h.pid("app").unwrap();
    // The sidecar dies on its own (no stop asked): the app goes with it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sidecar as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    h.wait_state("sidecar", "exited");
    h.wait_state("app", "stopped");
    wait_dead(app);
    assert!(h.log("logs/app.log").contains("stopping: it is bound to sidecar (BindsTo=), which is exited"));
}

#[test]
fn a_requisite_must_be_up_already_and_is_never_started_for_it() {
    let mut h = home();
    h.sh_unit("base", "exec sleep 1000", "");
    h.sh_unit("needs", "exec sleep 1000", "[Unit]\nRequisite=base.service\nAfter=base.service");
    h.start_daemon();
    let out = h.run(&["start", "needs"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("requisite base is not active"), "{err}");
    assert_eq!((h.state("base").as_str(), h.state("needs").as_str()), ("stopped", "failed"));
    h.ok(&["start", "base"]);
    h.ok(&["start", "needs"]);
    assert_eq!(h.state("needs"), "running");
}

#[test]
fn on_failure_starts_its_unit_when_the_service_fails_not_when_it_ends_well() {
    let mut h = home();
    let alert = |name: &str| {
        format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo alerted >> {name}'\nWorkingDirectory={}\n",
            h.work().display()
        )
    };
    h.unit("alert", &alert("alerts"));
    h.sh_unit("job", "test -e fail-now && exit 3; exit 0", "[Unit]\nOnFailure=alert.service");
    h.start_daemon();
    h.ok(&["start", "job"]);
    h.wait_state("job", "exited");
    std::fs::write(h.work().join("fail-now"), "").unwrap();
    h.run(&["start", "job"]);
    h.wait_state("job", "exited");
    assert_eq!(wait_file(&h.work().join("alerts")), "alerted\n");
    assert!(h.log("logs/alert.log").contains("started because job failed (OnFailure=)"));
    // The watcher takes state changes in order: by the failure's note, the clean end's change
    // was taken too, and started nothing.
    h.wait_until("the failure's note", || {
        h.log("logs/job.log").contains("failed: starting alert (OnFailure=)")
    });
    assert_eq!(h.log("logs/job.log").matches("starting alert").count(), 1, "{}", h.log("logs/job.log"));
}

#[test]
fn a_simple_service_whose_main_process_forks_away_says_what_to_do() {
    let mut h = home();
    h.sh_unit("nginxish", "sleep 1000 & exit 0", "");
    h.start_daemon();
    h.ok(&["start", "nginxish"]);
    let s = h.wait_state("nginxish", "exited");
    let error = s["error"].as_str().unwrap_or_default();
    assert!(error.contains("forked into the background"), "{s}");
    assert!(error.contains("Type=forking"), "{error}");
    assert!(h.log("logs/nginxish.log").contains("left processes running"));
}
