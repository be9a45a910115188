//! `[Watch]`: a change to a watched file restarts the service at once, a burst restarts it
//! once, `.gitignore`d and `Exclude=`d paths restart nothing and cost no watch, the path that
//! triggered is in status, the log and the event, a crash after a change says so (status and
//! crash report), a user's stop ends the watch, dependents restart only when asked, and the
//! polling fallback when inotify runs out.
//!
//! Nothing here waits a fixed time: a change that must *not* restart is followed by one that
//! must, and the count of starts is read once that second restart has happened (a watch handles
//! its events in order).

use gitvisor_testkit::{EventStream, Home};
use serde_json::Value;

use crate::crash_reports::{report_json, reporter_caught_up, reports_of, SENTINEL};
use crate::home;

/// A service that appends a line to `starts` (outside what it watches) at each start.
fn watched(h: &Home, name: &str, watch: &str) {
    std::fs::create_dir_all(h.work().join("src")).unwrap();
    std::fs::write(h.work().join("src/app.ts"), "v1").unwrap();
    h.sh_unit(name, &format!("echo $$$$ >> ../{name}.starts; exec sleep 1000"), &format!("[Watch]\n{watch}"));
}

fn starts(h: &Home, name: &str) -> usize {
    std::fs::read_to_string(h.work().join(format!("../{name}.starts")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn watch_of(h: &Home, name: &str) -> Value {
    h.service(name)["watch"].clone()
}

/// Starts `name` and waits until its files are watched (and, for a service of [`watched`], its
/// start noted).
fn start_watched(h: &Home, name: &str) -> u32 {
    h.ok(&["start", name]);
    h.wait_state(name, "running");
    h.wait_until(&format!("{name}'s files watched"), || watch_of(h, name)["mode"] == "inotify");
    if h.service(name)["description"].is_null() {
        h.wait_until(&format!("{name}'s start noted"), || starts(h, name) >= 1);
    }
    h.pid(name).unwrap()
}

/// Writes `file` (under the work directory) and waits for `name` to run under a new pid.
fn change_and_wait_restart(h: &Home, name: &str, file: &str, pid: u32) -> u32 {
    let before = starts(h, name);
    std::fs::write(h.work().join(file), format!("{pid}")).unwrap();
    let pid = h.wait_for(&format!("{name} restarted after {file} changed"), || {
        h.try_pid(name).filter(|p| *p != pid && h.try_state(name).as_deref() == Some("running"))
    });
    // Its start is noted by the service itself, a moment after it runs.
    h.wait_until(&format!("{name}'s new start noted"), || starts(h, name) > before);
    pid
}

#[test]
fn a_change_restarts_once_and_names_the_file_in_status_log_and_event() {
    let mut h = home();
    watched(&h, "web", "Paths=src\n");
    h.start_daemon();
    let pid = start_watched(&h, "web");
    assert_eq!(starts(&h, "web"), 1);

    let pid = change_and_wait_restart(&h, "web", "src/app.ts", pid);
    let w = watch_of(&h, "web");
    assert_eq!(w["last_change"]["path"], "src/app.ts", "{w:#}");
    h.wait_until("the log names the change", || {
        h.log("logs/web.log").contains("restarting: src/app.ts changed")
    });
    assert_eq!(h.service("web")["restarts"], 0, "a change is not an automatic restart");

    // A burst of 50 writes over two files is one restart, named after the first file.
    let before = starts(&h, "web");
    for i in 0..50 {
        let f = if i % 2 == 0 { "src/app.ts" } else { "src/util.ts" };
        std::fs::write(h.work().join(f), format!("{i}")).unwrap();
    }
    let pid = h.wait_for("web restarted after the burst", || {
        h.try_pid("web").filter(|p| *p != pid && h.try_state("web").as_deref() == Some("running"))
    });
    h.wait_until("the burst's start noted", || starts(&h, "web") > before);
    let w = watch_of(&h, "web");
    assert_eq!(w["last_change"]["path"], "src/app.ts", "{w:#}");
    assert_eq!(w["last_change"]["more"], 1, "{w:#}");
    // One more change: its restart comes after everything the burst caused.
    change_and_wait_restart(&h, "web", "src/other.ts", pid);
    assert_eq!(starts(&h, "web"), before + 2, "the burst restarted once, the last change once");

    // The event names the file too (the stream is live only once subscribed: change until seen).
    let mut events = EventStream::open(&h);
    let mut n = 0;
    let event = loop {
        n += 1;
        std::fs::write(h.work().join("src/app.ts"), format!("event {n}")).unwrap();
        let found = (0..20).find_map(|_| {
            events
                .next_within(std::time::Duration::from_millis(500))
                .filter(|e| e["kind"] == "files_changed" && e["service"] == "web")
        });
        if let Some(e) = found {
            break e;
        }
        assert!(n < 20, "no files_changed event after 20 changes");
    };
    assert_eq!(event["change"]["path"], "src/app.ts", "{event:#}");
}

#[test]
fn gitignored_excluded_and_temporary_files_restart_nothing_and_gitignored_trees_cost_no_watch() {
    let mut h = home();
    // The whole working directory, minus what .gitignore and Exclude= leave out.
    watched(&h, "web", "Exclude=*.tmp\n");
    let work = h.work();
    std::fs::write(work.join(".gitignore"), "node_modules/\nbuild/\n").unwrap();
    // 20,000 files in 200 directories nobody watches.
    for d in 0..200 {
        let dir = work.join(format!("node_modules/pkg{d}/lib"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f}.js")), "x").unwrap();
        }
    }
    std::fs::create_dir_all(work.join("build")).unwrap();
    h.start_daemon();
    let pid = start_watched(&h, "web");
    let w = watch_of(&h, "web");
    assert!(w["directories"].as_u64().unwrap() <= 3, "only the work directory and src: {w:#}");
    // The engine's inotify watches, all of its instances together (the repository's watch too).
    let engine = h.engine_pid().unwrap();
    let mut watches = 0;
    for fd in std::fs::read_dir(format!("/proc/{engine}/fdinfo")).unwrap().flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        watches += info.lines().filter(|l| l.starts_with("inotify wd:")).count();
    }
    assert!(watches < 20, "{watches} inotify watches for a tree of 20,000 ignored files");

    let before = starts(&h, "web");
    std::fs::write(work.join("node_modules/pkg1/lib/f1.js"), "changed").unwrap();
    std::fs::write(work.join("build/out.js"), "built").unwrap();
    std::fs::write(work.join("notes.tmp"), "excluded").unwrap();
    std::fs::write(work.join("src/.app.ts.swp"), "vim").unwrap();
    std::fs::create_dir_all(work.join("build/deep")).unwrap();
    std::fs::write(work.join("build/deep/x.js"), "built").unwrap();
    change_and_wait_restart(&h, "web", "src/app.ts", pid);
    assert_eq!(starts(&h, "web"), before + 1, "only src/app.ts restarted it");
    assert_eq!(watch_of(&h, "web")["last_change"]["path"], "src/app.ts");

    // Without the .gitignore rules the same tree is watched directory by directory.
    h.sh_unit("all", "exec sleep 1000", "[Watch]\nIgnoreGitignore=yes\n");
    let c = h.commit_all("all: watch without .gitignore");
    h.wait_commit(&c);
    h.ok(&["start", "all"]);
    h.wait_until("all's tree watched", || watch_of(&h, "all")["directories"].as_u64().unwrap_or(0) > 400);
}

#[test]
fn a_new_directory_is_watched_and_a_gitignore_change_applies() {
    let mut h = home();
    watched(&h, "web", "");
    h.start_daemon();
    let pid = start_watched(&h, "web");
    std::fs::create_dir_all(h.work().join("src/new/deeper")).unwrap();
    let pid = h.wait_for("web restarted after src/new appeared", || {
        h.try_pid("web").filter(|p| *p != pid && h.try_state("web").as_deref() == Some("running"))
    });
    h.wait_until("src/new/deeper watched", || watch_of(&h, "web")["directories"].as_u64() == Some(4));
    let pid = change_and_wait_restart(&h, "web", "src/new/deeper/x.ts", pid);
    assert_eq!(watch_of(&h, "web")["last_change"]["path"], "src/new/deeper/x.ts");

    // Ignoring src/new drops its watches (the .gitignore change itself restarts once).
    let pid = change_and_wait_restart(&h, "web", ".gitignore", pid);
    std::fs::write(h.work().join(".gitignore"), "src/new/\n").unwrap();
    let pid = h.wait_for("web restarted after .gitignore changed", || {
        h.try_pid("web").filter(|p| *p != pid && h.try_state("web").as_deref() == Some("running"))
    });
    h.wait_until("src/new no longer watched", || watch_of(&h, "web")["directories"].as_u64() == Some(2));
    let before = starts(&h, "web");
    std::fs::write(h.work().join("src/new/deeper/x.ts"), "ignored now").unwrap();
    change_and_wait_restart(&h, "web", "src/app.ts", pid);
    assert_eq!(starts(&h, "web"), before + 1);
}

#[test]
fn a_crash_after_a_change_says_so_and_the_next_change_starts_it_again() {
    let mut h = home();
    std::fs::create_dir_all(h.work().join("src")).unwrap();
    h.unit(
        "web",
        &format!(
            "[Unit]\nDescription=breaks on src/broken\n{}",
            h.sh_unit_text(
                "if [ -e src/broken ]; then echo broken >&2; exit 3; fi; exec sleep 1000",
                "Restart=no\n[Watch]\nPaths=src\n",
            )
        ),
    );
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    let pid = start_watched(&h, "web");
    let _ = pid;
    std::fs::write(h.work().join("src/broken"), "x").unwrap();
    h.wait_state("web", "exited");
    let w = watch_of(&h, "web");
    let said = w["crashed_after_change"].as_str().unwrap_or_default().to_string();
    assert!(said.starts_with("crashed ") && said.ends_with(" s after a change to src/broken"), "{w:#}");
    let status = h.ok(&["status"]);
    assert!(status.contains("after a change to src/broken"), "{status}");
    reporter_caught_up(&h);
    let report = report_json(&reports_of(&h, "web")[0]);
    assert_eq!(report["after_change"]["path"], "src/broken", "{report:#}");
    assert!(report["after_change"]["seconds_before_crash"].as_f64().unwrap() < 30.0);

    // The fix is a change too: the failed service runs again.
    std::fs::remove_file(h.work().join("src/broken")).unwrap();
    h.wait_state("web", "running");
    assert_eq!(watch_of(&h, "web")["crashed_after_change"], Value::Null);
}

#[test]
fn a_user_stop_ends_the_watch_and_dependents_restart_only_when_asked() {
    let mut h = home();
    watched(&h, "api", "Paths=src\n");
    h.unit("app", &format!("[Unit]\nRequires=api\nAfter=api\n{}", h.sh_unit_text("exec sleep 1000", "")));
    h.start_daemon();
    h.ok(&["start", "app"]);
    h.wait_state("app", "running");
    let api = start_watched(&h, "api");
    let app = h.pid("app").unwrap();
    change_and_wait_restart(&h, "api", "src/app.ts", api);
    assert_eq!(h.pid("app"), Some(app), "without RestartDependents= the dependent keeps running");

    h.ok(&["stop", "api"]);
    h.wait_until("api's watch ended", || watch_of(&h, "api")["mode"] == "off");
    assert_eq!(h.state("api"), "stopped");

    // RestartDependents=yes: the dependent restarts with it.
    watched(&h, "api", "Paths=src\nRestartDependents=yes\n");
    let c = h.commit_all("api: restart dependents");
    h.wait_commit(&c);
    h.ok(&["start", "app"]);
    h.wait_state("app", "running");
    let api = start_watched(&h, "api");
    let app = h.pid("app").unwrap();
    change_and_wait_restart(&h, "api", "src/app.ts", api);
    h.wait_for("app restarted with api", || {
        h.try_pid("app").filter(|p| *p != app && h.try_state("app").as_deref() == Some("running"))
    });
}

#[test]
fn out_of_inotify_watches_it_polls_and_says_so() {
    let mut h = home();
    watched(&h, "web", "");
    for d in 0..5 {
        std::fs::create_dir_all(h.work().join(format!("src/d{d}"))).unwrap();
    }
    // The kernel's limit stands in as a cap on this service's watches (see watch/tree.rs).
    h.start_daemon_with(&[("GITVISOR_TEST_INOTIFY_WATCHES", "2")]);
    h.ok(&["start", "web"]);
    h.wait_state("web", "running");
    let w = h.wait_for("web's watch polling", || {
        let w = watch_of(&h, "web");
        (w["mode"] == "polling").then_some(w)
    });
    assert!(w["note"].as_str().unwrap().contains("inotify watches ran out"), "{w:#}");
    assert_eq!(w["directories"], 7, "every directory is still looked at: {w:#}");
    let status = h.ok(&["status"]);
    assert!(status.contains("watch: web: polling 7 directories (inotify watches ran out"), "{status}");
    let pid = h.pid("web").unwrap();
    change_and_wait_restart(&h, "web", "src/d4/x.ts", pid);
}
