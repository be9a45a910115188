//! The services' timelines (`timeline`): starts, a crash with its report, a clean stop, a
//! sync — and the last day kept across an engine restart.

use gitvisor_protocol::{Client, Timeline};
use gitvisor_testkit::Home;

use crate::crash_reports::{reporter_caught_up, reports_of, SENTINEL};
use crate::home;

fn timeline(h: &Home, name: &str) -> (Vec<(String, Option<String>)>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let socket = h.path().join("gitvisor.sock");
        let mut c = Client::connect(&socket, "test", "timeline test").await.expect("connect");
        let t = c.call(Timeline { names: vec![name.into()], since_ms: 0 }).await.unwrap();
        let entries = t.services[0].entries.iter().map(|e| (e.kind.clone(), e.report.clone())).collect();
        (entries, t.syncs.len())
    })
}

#[test]
fn starts_crashes_with_their_reports_and_stops_are_on_the_timeline_across_engine_restarts() {
    let mut h = home();
    h.sh_unit("flaky", "if [ -e crash ]; then exit 3; fi; exec sleep 1000", "Restart=no");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    h.ok(&["start", "flaky"]);
    h.wait_state("flaky", "running");
    h.ok(&["stop", "flaky"]);
    std::fs::write(h.work().join("crash"), "").unwrap();
    h.ok(&["start", "flaky"]);
    h.wait_state("flaky", "exited");
    reporter_caught_up(&h);
    let report = reports_of(&h, "flaky")[0].file_name().unwrap().to_string_lossy().into_owned();
    let (entries, _) = h.wait_for("the crash and its report on the timeline", || {
        let t = timeline(&h, "flaky");
        t.0.iter().any(|(k, r)| k == "crash" && r.is_some()).then_some(t)
    });
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["start", "stop", "crash"], "{entries:?}");
    let id = entries[2].1.clone().unwrap();
    assert!(report.contains(&id), "the marker opens {report}: {id}");
    // A commit applied is on the timeline too.
    let c = h.commit_unit("other", &h.sh_unit_text("exec sleep 1000", ""), "other");
    h.wait_commit(&c);
    h.wait_until("the sync on the timeline", || timeline(&h, "flaky").1 >= 1);

    h.stop_daemon();
    h.start_daemon();
    let (after, syncs) = timeline(&h, "flaky");
    assert_eq!(after, entries, "the last day survives an engine restart");
    assert!(syncs >= 1);
}
