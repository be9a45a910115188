//! Units come from commits: real repositories, commits made with the git binary.

use std::process::Command;

use gitvisor_testkit::{wait_dead, Home};
use serde_json::Value;

use crate::home;

/// An enabled unit that prints `tag` and sleeps, described as `tag`.
fn sleeper(h: &Home, tag: &str, extra: &str) -> String {
    h.enabled_sh_unit_text(tag, &format!("echo {tag}; while :; do sleep 1; done"), extra)
}

#[test]
fn the_repository_is_created_with_a_readme_and_a_disabled_example() {
    let mut h = home();
    std::fs::remove_dir_all(h.services()).unwrap();
    h.start_daemon();
    assert!(h.services().join(".git").is_dir());
    assert!(h.services().join("README.md").exists());
    let log = h.git(&["log", "--oneline"]);
    assert_eq!(log.lines().count(), 1, "{log}");
    let s = h.service("example");
    assert_eq!(s["state"], "stopped");
    assert_eq!(s["enabled"], false);
    assert_eq!(h.status()["branch"], h.git(&["branch", "--show-current"]));
}

#[test]
fn commits_add_change_relabel_and_remove_services() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("web", &sleeper(&h, "one", ""), "add web");
    h.wait_commit(&c);
    let first = h.wait_state("web", "running")["pid"].as_u64().unwrap();
    assert_eq!(h.service("web")["commit"], c);

    // A new ExecStart: restarted with the new command.
    let c = h.commit_unit(
        "web",
        &sleeper(&h, "two", "").replace("Description=two", "Description=one"),
        "change web",
    );
    h.wait_commit(&c);
    let second = h.wait_state("web", "running")["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    let cmdline = std::fs::read(format!("/proc/{second}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("echo two"));

    // Description (and a comment) only: same process.
    let text =
        format!("# a comment\n{}", sleeper(&h, "two", "")).replace("Description=two", "Description=renamed");
    let c = h.commit_unit("web", &text, "relabel web");
    h.wait_commit(&c);
    assert_eq!(h.service("web")["pid"].as_u64(), Some(second));
    assert_eq!(h.service("web")["description"], "renamed");
    let last = h.sync_history().pop().unwrap();
    assert_eq!(last["actions"], serde_json::json!(["updated web (description only)"]));

    // Deleted: stopped and gone.
    h.git(&["rm", "-q", "web.service"]);
    h.git(&["commit", "-q", "-m", "remove web"]);
    let c = h.git(&["rev-parse", "HEAD"]);
    h.wait_commit(&c);
    wait_dead(second as u32);
    let names: Vec<Value> =
        h.status()["services"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
    assert!(!names.contains(&Value::from("web")), "{names:?}");
}

#[test]
fn an_invalid_unit_keeps_its_previous_version_while_the_others_apply() {
    let mut h = home();
    h.start_daemon();
    h.commit_unit("a", &sleeper(&h, "a1", ""), "a");
    let c = h.commit_unit("b", &sleeper(&h, "b1", ""), "b");
    h.wait_commit(&c);
    let a = h.wait_state("a", "running")["pid"].as_u64().unwrap();
    let b = h.wait_state("b", "running")["pid"].as_u64().unwrap();
    std::fs::write(h.services().join("a.service"), "[Service]\nExecStart=/bin/true\nRestartSec=soon\n")
        .unwrap();
    std::fs::write(h.services().join("b.service"), sleeper(&h, "b2", "")).unwrap();
    h.git(&["commit", "-q", "-am", "break a, change b"]);
    let c = h.git(&["rev-parse", "HEAD"]);
    h.wait_commit(&c);
    let sa = h.service("a");
    assert_eq!(sa["pid"].as_u64(), Some(a), "a keeps running its previous version");
    let err = sa["error"].as_str().unwrap();
    assert!(err.contains("invalid") && err.contains("RestartSec"), "{err}");
    assert_ne!(h.wait_state("b", "running")["pid"].as_u64(), Some(b));
    assert!(h.status()["invalid"].to_string().contains("a.service:3"));
    // Fixing it applies the fix and clears the error.
    let c = h.commit_unit("a", &sleeper(&h, "a2", ""), "fix a");
    h.wait_commit(&c);
    assert_eq!(h.service("a")["error"], Value::Null);
    assert_ne!(h.wait_state("a", "running")["pid"].as_u64(), Some(a));
}

#[test]
fn a_burst_of_commits_is_applied_at_its_first_commit_and_once_more_at_its_end() {
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[git]\ndebounce = \"700ms\"\n").unwrap();
    h.start_daemon();
    let before = h.sync_history().len();
    let script = format!(
        "set -e; cd {}; for i in 0 1 2 3 4 5 6 7 8 9; do printf \"[Service]\\nExecStart=/bin/sh -c 'echo burst-$i; while :; do sleep 1; done'\\n[Install]\\nWantedBy=default.target\\n\" > burst.service; git add burst.service; git -c user.name=t -c user.email=t@e commit -q -m \"burst $i\"; date +%s%N >> ../burst-times; done",
        h.services().display()
    );
    let o = Command::new("/bin/sh").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let head = h.git(&["rev-parse", "HEAD"]);
    h.wait_commit(&head);
    let pid = h.wait_state("burst", "running")["pid"].as_u64().unwrap();
    let cmdline =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).into_owned();
    assert!(cmdline.contains("echo burst-9"), "{cmdline}");
    let new: Vec<Value> = h.sync_history()[before..].to_vec();
    // The first commit is applied at once, the rest of the burst once more after its quiet
    // period: two syncs for a burst whose commits came close together, never one per commit. A
    // machine that stalled the burst itself (a gap near the 700 ms window between two commits)
    // may cut it in two there, and only there.
    let times: Vec<u64> = std::fs::read_to_string(h.path().join("burst-times"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let cuts = times.windows(2).filter(|w| w[1] - w[0] >= 500_000_000).count();
    assert!(new.len() <= 2 * (1 + cuts), "{} syncs for a burst with {cuts} long gaps: {new:#?}", new.len());
    assert_eq!(new.last().unwrap()["new"], head, "the burst's end is what runs");
}

#[test]
fn rollback_makes_a_new_commit_and_restores_the_old_configuration() {
    let mut h = home();
    h.start_daemon();
    let good = h.commit_unit("svc", &sleeper(&h, "good", ""), "good version");
    h.wait_commit(&good);
    let bad = h.commit_unit("svc", &sleeper(&h, "bad", ""), "bad version");
    h.wait_commit(&bad);
    let diff = h.ok(&["diff", &good]);
    assert!(
        diff.contains("-ExecStart=/bin/sh -c 'echo bad") && diff.contains("+ExecStart=/bin/sh -c 'echo good"),
        "{diff}"
    );

    // Refused while a unit has uncommitted changes.
    std::fs::write(h.services().join("svc.service"), sleeper(&h, "dirty", "")).unwrap();
    let o = h.run(&["rollback", &good]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("uncommitted changes to units"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    h.git(&["checkout", "--", "svc.service"]);
    let o = h.run(&["rollback", "0123456789abcdef"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown commit"));

    let out = h.ok(&["rollback", &good]);
    assert!(out.contains("restarted svc (changed)"), "{out}");
    let head = h.git(&["rev-parse", "HEAD"]);
    assert_ne!(head, good, "a new commit, history not rewritten");
    assert_eq!(h.git(&["rev-parse", "HEAD^"]), bad);
    assert_eq!(h.git(&["rev-parse", "HEAD^{tree}"]), h.git(&["rev-parse", &format!("{good}^{{tree}}")]));
    let pid = h.wait_state("svc", "running")["pid"].as_u64().unwrap();
    assert!(String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .contains("echo good"));
    let hist: Value = serde_json::from_str(&h.ok(&["history", "--json"])).unwrap();
    let summaries: Vec<&str> =
        hist["commits"].as_array().unwrap().iter().map(|c| c["summary"].as_str().unwrap()).collect();
    assert!(
        summaries[0].starts_with("Roll back to")
            && summaries.contains(&"bad version")
            && summaries.contains(&"good version"),
        "{summaries:?}"
    );
    assert_eq!(hist["commits"][0]["units"], serde_json::json!(["svc.service"]));
    assert_eq!(hist["commits"][0]["applied"], true);
    // The working tree follows: nothing is pending.
    assert_eq!(h.status()["pending"], serde_json::json!([]));
}

#[test]
fn uncommitted_edits_are_pending_and_never_run() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("svc", &sleeper(&h, "committed", ""), "svc");
    h.wait_commit(&c);
    let pid = h.wait_state("svc", "running")["pid"].as_u64();
    std::fs::write(h.services().join("svc.service"), sleeper(&h, "uncommitted", "")).unwrap();
    std::fs::write(h.services().join("new.service"), sleeper(&h, "new", "")).unwrap();
    h.ok(&["sync"]);
    let s = h.status();
    assert_eq!(
        s["pending"],
        serde_json::json!([{"file": "new.service", "change": "added"}, {"file": "svc.service", "change": "modified"}])
    );
    assert_eq!(h.service("svc")["pid"].as_u64(), pid);
    assert!(s["services"].as_array().unwrap().iter().all(|x| x["name"] != "new"));
}

#[test]
fn an_engine_restarted_between_commits_applies_only_the_difference() {
    let mut h = home();
    h.start_daemon();
    h.commit_unit("keep", &sleeper(&h, "keep", ""), "keep");
    let c = h.commit_unit("change", &sleeper(&h, "v1", ""), "change v1");
    h.wait_commit(&c);
    let keep = h.wait_state("keep", "running")["pid"].as_u64();
    let change = h.wait_state("change", "running")["pid"].as_u64();
    h.kill_daemon();
    let c = h.commit_unit("change", &sleeper(&h, "v2", ""), "change v2");
    let before = h.sync_history().len();
    h.start_daemon();
    h.wait_commit(&c);
    assert_eq!(h.service("keep")["pid"].as_u64(), keep, "unchanged: adopted, not restarted");
    assert_ne!(h.wait_state("change", "running")["pid"].as_u64(), change);
    let new = h.sync_history()[before..].to_vec();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0]["actions"], serde_json::json!(["restarted change (changed)"]));
}

#[test]
fn a_merge_in_progress_is_reported_and_nothing_breaks() {
    let mut h = home();
    h.start_daemon();
    let base = h.commit_unit("svc", &sleeper(&h, "base", ""), "base");
    h.wait_commit(&base);
    let pid = h.wait_state("svc", "running")["pid"].as_u64();
    let main = h.git(&["branch", "--show-current"]);
    h.git(&["checkout", "-q", "-b", "other"]);
    h.commit_unit("svc", &sleeper(&h, "other", ""), "other side");
    h.git(&["checkout", "-q", &main]);
    let c = h.commit_unit("svc", &sleeper(&h, "main", ""), "main side");
    h.wait_commit(&c);
    let pid2 = h.wait_state("svc", "running")["pid"].as_u64();
    assert_ne!(pid, pid2);
    // A conflicting merge stops half-way.
    let o = Command::new("git")
        .arg("-C")
        .arg(h.services())
        .args(["-c", "user.name=t", "-c", "user.email=t@e", "merge", "other"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = h.run(&["sync"]);
    assert_eq!(o.status.code(), Some(1), "a sync that cannot apply says so");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not applied: a merge is in progress"));
    let s = h.status();
    assert!(s["repo_problem"].as_str().unwrap().contains("merge is in progress"), "{s:#}");
    assert_eq!(s["commit"], c);
    assert_eq!(h.service("svc")["pid"].as_u64(), pid2, "the last applied commit keeps running");
    h.git(&["merge", "--abort"]);
    h.ok(&["sync"]);
    assert_eq!(h.status()["repo_problem"], Value::Null);
}

#[test]
fn edit_validates_commits_and_never_loses_text() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("svc", &sleeper(&h, "before", ""), "svc");
    h.wait_commit(&c);
    // A valid edit: committed and applied.
    let o = h
        .cmd()
        .args(["edit", "svc"])
        .env("EDITOR", "sed -i s/before/after/")
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("committed") && out.contains("restarted svc (changed)"), "{out}");
    assert_eq!(h.git(&["log", "-1", "--format=%s"]), "Edit svc.service");
    // An invalid edit: shown, not committed, kept.
    let head = h.git(&["rev-parse", "HEAD"]);
    let editor = h.work().join("editor.sh");
    std::fs::write(&editor, "printf '[Service]\\nRestartSec=soon\\n' >> \"$1\"\n").unwrap();
    let o = h
        .cmd()
        .args(["edit", "svc"])
        .env("EDITOR", format!("/bin/sh {}", editor.display()))
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RestartSec") && err.contains("nothing was committed") && err.contains("kept in"),
        "{err}"
    );
    assert_eq!(h.git(&["rev-parse", "HEAD"]), head);
    let kept: Vec<_> = std::fs::read_dir(h.path().join("edit-recovery")).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    assert!(std::fs::read_to_string(kept[0].path()).unwrap().contains("RestartSec=soon"));
}

#[test]
fn without_file_events_the_repository_is_polled_and_the_log_says_so() {
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[git]\nfile_events = false\npoll_interval = \"200ms\"\n")
        .unwrap();
    h.start_daemon();
    assert!(h.daemon_log().contains("polling every 200ms"), "{}", h.daemon_log());
    let c = h.commit_unit("polled", &sleeper(&h, "polled", ""), "polled");
    h.wait_commit(&c);
    h.wait_state("polled", "running");
}

#[test]
fn a_detached_head_is_reported_and_the_last_commit_keeps_running() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("svc", &sleeper(&h, "one", ""), "one");
    h.wait_commit(&c);
    let pid = h.wait_state("svc", "running")["pid"].as_u64();
    h.git(&["checkout", "-q", "--detach", "HEAD~1"]);
    let o = h.run(&["sync"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("detached"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = h.status();
    assert!(
        s["repo_problem"].as_str().unwrap().contains("HEAD of the services repository is detached"),
        "{s:#}"
    );
    assert_eq!(s["commit"], c);
    assert_eq!(h.service("svc")["pid"].as_u64(), pid);
}

#[test]
fn a_sync_that_finds_a_unit_busy_applies_its_commit_when_the_operation_ends() {
    let mut h = home();
    let release = h.work().join("release");
    let script = |tag: &str| {
        format!("trap \"\" TERM; echo {tag}; while [ ! -e {} ]; do sleep 0.05; done", release.display())
    };
    h.start_daemon();
    let c = h.commit_unit("busy", &h.enabled_sh_unit_text("v1", &script("v1"), "TimeoutStopSec=1h"), "v1");
    h.wait_commit(&c);
    h.wait_state("busy", "running");
    // A user's stop holds the service until the test releases its process.
    let mut stop = h.cmd_with(&["stop", "busy"]).spawn().unwrap();
    h.wait_until("the stop holds busy", || h.service("busy")["busy"] == "stop");
    let v2 = h.commit_unit("busy", &h.enabled_sh_unit_text("v2", &script("v2"), "TimeoutStopSec=1h"), "v2");
    let o = h.run(&["sync"]);
    assert_eq!(o.status.code(), Some(1), "partly applied: {}", String::from_utf8_lossy(&o.stdout));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("error: busy: stop in progress on busy"), "{out}");
    assert_ne!(h.status()["commit"], v2, "not applied while busy");
    // The stop ends; the engine applies the commit by itself.
    std::fs::write(&release, "").unwrap();
    assert!(gitvisor_testkit::wait_exit(&mut stop, "gitvisor stop").success());
    h.wait_commit(&v2);
    assert_eq!(h.service("busy")["description"], "v2");
}

#[test]
fn a_changed_unit_whose_new_version_fails_to_start_is_failed_and_said_so() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("svc", &sleeper(&h, "good", ""), "good");
    h.wait_commit(&c);
    h.wait_state("svc", "running");
    let broken = sleeper(&h, "good", "")
        .replace(&format!("WorkingDirectory={}", h.work().display()), "WorkingDirectory=/nonexistent/dir");
    let c = h.commit_unit("svc", &broken, "broken");
    h.wait_commit(&c);
    let s = h.wait_state("svc", "failed");
    assert!(s["error"].as_str().unwrap().contains("/nonexistent/dir"), "{s:#}");
    let sync = h.sync_history().pop().unwrap();
    let errors = sync["errors"].to_string();
    assert!(errors.contains("svc: restarted with its new version, which did not start"), "{sync:#}");
}

#[test]
fn an_existing_unit_that_a_commit_newly_enables_is_started() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("later", &h.sh_unit_text("exec sleep 1000", ""), "disabled");
    h.wait_commit(&c);
    assert_eq!(h.state("later"), "stopped");
    let c = h.commit_unit("later", &h.enabled_sh_unit_text("later", "exec sleep 1000", ""), "enable");
    h.wait_commit(&c);
    let s = h.wait_state("later", "running");
    assert_eq!(s["enabled"], true);
    assert_eq!(
        h.sync_history().pop().unwrap()["actions"],
        serde_json::json!(["updated later (changed; not running)", "started later (enabled)"])
    );
}

#[test]
fn a_users_sync_and_rollback_wait_for_the_watchers_sync_instead_of_refusing() {
    let mut h = home();
    // Slow to stop: the sync that removes it holds the sync lock for a second.
    h.enabled_sh_unit("slow", "trap '' TERM; while :; do sleep 0.05; done", "TimeoutStopSec=1s");
    h.start_daemon();
    h.wait_state("slow", "running");
    let before = h.git(&["rev-parse", "HEAD"]);
    h.git(&["rm", "-q", "slow.service"]);
    h.commit_all("remove slow");
    h.wait_state("slow", "stopping");
    // The watcher's sync is under way: the user's waits for it (it used to answer "sync in
    // progress on sync").
    let out = h.run(&["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(h.try_service("slow"), None);
    // The same for a rollback made while a sync runs: bring slow back, and remove it again.
    h.ok(&["rollback", &before[..12]]);
    h.wait_state("slow", "running");
    h.git(&["rm", "-q", "slow.service"]);
    h.commit_all("remove slow again");
    h.wait_state("slow", "stopping");
    let out = h.run(&["rollback", &before[..12]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    h.wait_state("slow", "running");
}
