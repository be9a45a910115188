//! Git maintenance: `git gc --auto` on the services repository and the repositories named in
//! `[maintenance] repos`, only when every safety check passes.

use std::time::Duration;

use gitvisor_testkit::{wait_dead, Home};
use serde_json::Value;

use crate::home;

fn status(h: &Home) -> Value {
    serde_json::from_str(&h.ok(&["maintenance", "status", "--json"])).unwrap()
}

fn wait_runs(h: &Home, n: usize) -> Value {
    h.wait_for(&format!("{n} finished maintenance runs"), || {
        let s = status(h);
        (s["runs"].as_array().unwrap().len() >= n && s["running"].as_array().unwrap().is_empty()).then_some(s)
    })
}

/// Writes `n` loose blobs into the services repository (as git would, without n processes).
fn loose_objects(h: &Home, n: usize) {
    let script = format!(
        "import hashlib, os, zlib\nroot = {:?}\nfor i in range({n}):\n    data = b'blob %d\\0' % len(str(i)) + str(i).encode()\n    sha = hashlib.sha1(data).hexdigest()\n    d = os.path.join(root, sha[:2])\n    os.makedirs(d, exist_ok=True)\n    p = os.path.join(d, sha[2:])\n    if not os.path.exists(p):\n        open(p, 'wb').write(zlib.compress(data))\n",
        h.services().join(".git/objects").display().to_string()
    );
    let o = std::process::Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn sleeper(h: &Home, tag: &str) -> String {
    h.enabled_sh_unit_text(tag, "exec sleep 1000", "")
}

#[test]
fn a_new_commit_runs_gc_once_and_the_interval_holds_until_forced() {
    let mut h = home();
    // A low threshold: the repository's loose objects are packed.
    std::fs::write(
        h.path().join("config.toml"),
        "[maintenance]\nauto_threshold = 1\nmin_interval = \"1h\"\n",
    )
    .unwrap();
    h.start_daemon();
    // Enough loose objects for git's estimate (it counts those under objects/17/).
    loose_objects(&h, 3000);
    let c = h.commit_unit("web", &sleeper(&h, "one"), "one");
    h.wait_commit(&c);
    let s = wait_runs(&h, 1);
    let run = &s["runs"][0];
    assert_eq!(run["exit_code"], 0, "{s:#}");
    assert_eq!(run["forced"], false);
    assert_eq!(run["repo"], h.services().display().to_string());
    let packs = std::fs::read_dir(h.services().join(".git/objects/pack")).unwrap().count();
    assert!(packs > 0, "gc --auto packed the objects");
    // The next commit within the interval: considered and skipped, saying why.
    let c = h.commit_unit("web", &sleeper(&h, "two"), "two");
    h.wait_commit(&c);
    h.wait_until("the skip is recorded", || {
        status(&h)["last_skip"]["reason"].as_str().is_some_and(|r| r.contains("minimum interval is 1h"))
    });
    assert_eq!(status(&h)["runs"].as_array().unwrap().len(), 1);
    // Forced: every check but the interval.
    let out = h.ok(&["maintenance", "run"]);
    assert!(out.contains(&format!("started: git gc --auto in {}", h.services().display())), "{out}");
    let s = wait_runs(&h, 2);
    assert_eq!(s["runs"][0]["forced"], true);
    let table = h.ok(&["maintenance", "status"]);
    assert!(table.contains("done in") && table.contains("last skipped:"), "{table}");
    // The record survives an engine restart: the interval still holds.
    h.stop_daemon();
    h.start_daemon();
    assert_eq!(status(&h)["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_forced_run_still_obeys_every_safety_check() {
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[maintenance]\nmin_interval = \"1h\"\n").unwrap();
    h.start_daemon();
    let git = h.services().join(".git");
    let skipped = |h: &Home| -> String {
        let out = h.ok(&["maintenance", "run"]);
        assert!(!out.contains("started:"), "{out}");
        out
    };
    std::fs::write(git.join("MERGE_HEAD"), "x").unwrap();
    assert!(skipped(&h).contains("a merge is in progress"));
    std::fs::remove_file(git.join("MERGE_HEAD")).unwrap();
    // A gc of another process runs there (git's own gc.pid, naming a live process).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(git.join("gc.pid"), format!("{} {}", std::process::id(), host.trim())).unwrap();
    assert!(skipped(&h).contains("git gc already runs there"));
    // A stale gc.pid is no obstacle.
    std::fs::write(git.join("gc.pid"), format!("999999999 {}", host.trim())).unwrap();
    assert!(h.ok(&["maintenance", "run"]).contains("started:"));
    wait_runs(&h, 1);
    std::fs::remove_file(git.join("gc.pid")).ok();
    // Another holder of the repository's maintenance lock.
    let locks = gitvisor_state::Locks::local(git.clone());
    let held = locks.try_hold("gitvisor-maintenance", "test").unwrap();
    let out = skipped(&h);
    assert!(out.contains("is locked by pid"), "{out}");
    drop(held);
    assert!(h.ok(&["maintenance", "run"]).contains("started:"));
}

#[test]
fn bad_settings_and_a_second_repository_over_the_concurrency_limit_are_skipped_with_why() {
    let mut h = home();
    let extra = h.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    assert!(std::process::Command::new("git").arg("init").arg("-q").arg(&extra).status().unwrap().success());
    std::fs::write(
        h.path().join("config.toml"),
        format!("[maintenance]\nrepos = [\"{}\"]\nmax_concurrent = 1\n", extra.display()),
    )
    .unwrap();
    h.start_daemon();
    let out = h.ok(&["maintenance", "run"]);
    assert!(out.contains(&format!("started: git gc --auto in {}", h.services().display())), "{out}");
    assert!(
        out.contains(&format!("skipped {}: 1 run(s) already going; at most 1 at a time", extra.display())),
        "{out}"
    );
    h.stop_daemon();
    std::fs::write(h.path().join("config.toml"), "[maintenance]\nprune = \"whenever\"\n").unwrap();
    h.start_daemon();
    assert!(h.ok(&["maintenance", "run"]).contains("invalid [maintenance] prune = \"whenever\""));
    h.stop_daemon();
    std::fs::write(h.path().join("config.toml"), "[maintenance]\nenabled = false\n").unwrap();
    h.start_daemon();
    assert!(h.ok(&["maintenance", "run"]).contains("maintenance is turned off"));
}

#[test]
fn a_gc_still_running_at_shutdown_is_waited_for_then_terminated() {
    let mut h = home();
    // A stand-in `git` for gc only (the engine reads its repository with libgit2): it hangs.
    let bin = h.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pidfile = h.work().join("gc-pid");
    std::fs::write(bin.join("git"), format!("#!/bin/sh\necho $$ > {}\nexec sleep 1000\n", pidfile.display()))
        .unwrap();
    std::fs::set_permissions(bin.join("git"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    h.start_daemon_with(&[("PATH", &path)]);
    assert!(h.ok(&["maintenance", "run"]).contains("started:"));
    let gc: u32 = gitvisor_testkit::wait_file(&pidfile).trim().parse().unwrap();
    assert_eq!(status(&h)["running"].as_array().unwrap().len(), 1);
    let started = std::time::Instant::now();
    assert_eq!(h.stop_daemon(), Some(0));
    wait_dead(gc);
    assert!(started.elapsed() >= Duration::from_secs(4), "it was given its time first");
    // The run is recorded as ended by the engine's signal.
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(h.path().join("maintenance.json")).unwrap()).unwrap();
    assert_eq!(record["runs"][0]["signal"], 15, "{record:#}");
}
