//! Crash reports of real crashes, unpacked with the real tar binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use gitvisor_testkit::{wait_for, Home};
use serde_json::Value;

use crate::home;

fn reports(h: &Home) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(h.path().join("crash-reports"))
        // Finished reports only: a report being written is a hidden `.tmp-…` file.
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.ends_with(".tar.gz") && !name.starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The finished crash reports of `service` (not its manual captures), oldest first.
pub(crate) fn reports_of(h: &Home, service: &str) -> Vec<PathBuf> {
    let prefix = format!("crash-{service}-");
    reports(h)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // A service named like `prefix-more` has reports starting with `prefix` too.
            name.strip_prefix(&prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect()
}

/// A service (`sentinel`, not enabled) that crashes when started: its report tells that the reporter has caught up.
pub(crate) const SENTINEL: &str = "echo sentinel; exit 3";

/// The crash reporter decides exits one at a time, in the order they happened: once the report
/// of a crash caused now exists, every exit before it has been decided (a report, or none).
pub(crate) fn reporter_caught_up(h: &Home) {
    let before = reports_of(h, "sentinel").len();
    // It is spawned (the start succeeds), then fails at once.
    h.ok(&["start", "sentinel"]);
    h.wait_until("the sentinel's crash report", || reports_of(h, "sentinel").len() > before);
}

/// report.json of the archive at `path`.
pub(crate) fn report_json(path: &Path) -> Value {
    let d = unpack(path);
    serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap()).unwrap()
}

/// None when the archive vanished meanwhile (a crash loop thins its reports as it goes).
fn try_unpack(archive: &Path) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(dir.path()).output().unwrap();
    o.status.success().then_some(dir)
}

fn unpack(archive: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "tar: {}", String::from_utf8_lossy(&o.stderr));
    dir
}

#[test]
fn a_crash_writes_one_complete_report() {
    let mut h = home();
    let work = h.work();
    std::fs::write(work.join("kept.txt"), "unchanged\n").unwrap();
    std::fs::write(work.join("changed.txt"), "before\n").unwrap();
    std::fs::write(work.join("gone.txt"), "bye\n").unwrap();
    // The service waits for its baseline to be taken (a file the test creates), then changes
    // its working directory and crashes.
    h.sh_unit(
        "crasher",
        "while [ ! -e go ]; do sleep 0.02; done; echo started-output; echo after > changed.txt; echo new > added.txt; rm gone.txt; echo boom >&2; exit 3",
        "Environment=API_TOKEN=supersecret PLAIN=visible",
    );
    h.start_daemon();
    h.ok(&["start", "crasher"]);
    // The baseline is taken when the service becomes running; the engine notes it in the
    // service's log. Only then may the service change its files.
    h.wait_until("the baseline is taken", || h.ok(&["logs", "crasher"]).contains("baseline capture"));
    std::fs::write(work.join("go"), "").unwrap();
    h.wait_until("a crash report", || reports(&h).len() == 1);
    h.wait_state("crasher", "exited");
    let all = reports(&h);
    assert_eq!(all.len(), 1, "{all:?}");
    let name = all[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("crash-crasher-") && name.ends_with(".tar.gz"), "{name}");
    let dir = unpack(&all[0]);
    let d = dir.path();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["service"], "crasher");
    assert_eq!(report["exit"]["code"], 3);
    assert_eq!(report["reason"], "exited with status 3");
    assert!(report["commit"].as_str().is_some_and(|c| c.len() == 40), "{report:#}");
    // A small shell's peak cannot be told apart from the engine's: unknown (see peak_memory_kb).
    assert!(report["cpu_time_ms"].is_u64() && report["peak_memory_kb"].is_null(), "{report:#}");
    let unit = std::fs::read_to_string(d.join("unit/crasher.service")).unwrap();
    assert!(unit.contains("ExecStart=/bin/sh"));
    let tail = std::fs::read_to_string(d.join("logs/tail.log")).unwrap();
    assert!(tail.contains("out started-output") && tail.contains("err boom"), "{tail}");
    let env = std::fs::read_to_string(d.join("env.txt")).unwrap();
    assert!(env.contains("API_TOKEN=<redacted>") && !env.contains("supersecret"), "{env}");
    assert!(env.contains("PLAIN=visible"));
    assert_eq!(std::fs::read_to_string(d.join("workdir/changed.txt")).unwrap(), "after\n");
    assert_eq!(std::fs::read_to_string(d.join("workdir/added.txt")).unwrap(), "new\n");
    assert!(!d.join("workdir/gone.txt").exists());
    let changes = &report["changes"];
    let paths = |k: &str| -> Vec<String> {
        changes[k].as_array().unwrap().iter().map(|x| x["path"].as_str().unwrap().to_string()).collect()
    };
    assert!(paths("added").contains(&"added.txt".to_string()), "{changes:#}");
    assert_eq!(paths("removed"), vec!["gone.txt"]);
    assert!(paths("modified").contains(&"changed.txt".to_string()));
    assert!(!paths("modified").contains(&"kept.txt".to_string()));
    // The CLI sees it.
    let id = name.trim_end_matches(".tar.gz");
    let list = h.ok(&["crash", "list"]);
    assert!(list.contains(id) && list.contains("exited with status 3"), "{list}");
    let show = h.ok(&["crash", "show", id]);
    assert!(
        show.contains("+ added.txt") && show.contains("- gone.txt") && show.contains("report.json"),
        "{show}"
    );
    let export = h.path().join("exported.tar.gz");
    h.ok(&["crash", "export", id, export.to_str().unwrap()]);
    assert_eq!(std::fs::read(&export).unwrap(), std::fs::read(&all[0]).unwrap());
    let o = h.run(&["crash", "export", id, export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "never overwrites");
    h.ok(&["crash", "rm", id]);
    assert!(reports(&h).is_empty());
}

#[test]
fn a_report_shows_how_the_text_of_changed_files_changed() {
    let mut h = home();
    let work = h.work();
    let config =
        "server:\n  host: 0.0.0.0\n  port: 8080\nlogging:\n  level: info\n  file: app.log\nworkers: 4\ndatabase: postgres://app:hunter-one@db/app\n";
    std::fs::write(work.join("config.yaml"), config).unwrap();
    std::fs::write(work.join("logo.bin"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-one").unwrap();
    std::fs::write(work.join(".env"), "API_KEY=old-secret-value\nLOG_LEVEL=info\n").unwrap();
    std::fs::write(work.join("same.txt"), "unchanged\n").unwrap();
    h.sh_unit(
        "edited",
        "while [ ! -e go ]; do sleep 0.02; done; echo crashing; exit 3",
        &format!("EnvironmentFile={}/.env", work.display()),
    );
    h.start_daemon();
    h.ok(&["start", "edited"]);
    h.wait_until("the baseline is taken", || h.ok(&["logs", "edited"]).contains("baseline capture"));
    // Someone edits its config (and more) while it runs; then it crashes.
    let edited = config.replace("port: 8080", "port: 9090").replace("hunter-one", "hunter-two");
    std::fs::write(work.join("config.yaml"), edited).unwrap();
    std::fs::write(work.join("logo.bin"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-two").unwrap();
    std::fs::write(work.join(".env"), "API_KEY=new-secret-value\nLOG_LEVEL=debug\n").unwrap();
    std::fs::write(work.join("go"), "").unwrap();
    h.wait_until("a crash report", || reports_of(&h, "edited").len() == 1);
    let archive = &reports_of(&h, "edited")[0];
    let dir = unpack(archive);
    let d = dir.path();

    let env_diff =
        "--- a/.env\n+++ b/.env\n@@ -1,2 +1,2 @@\n API_KEY=<redacted>\n-LOG_LEVEL=info\n+LOG_LEVEL=debug\n";
    // A password in a changed line is redacted in the diff, as in the log tail: the diff says
    // that it changed, not what it was or is.
    let config_diff = "--- a/config.yaml\n+++ b/config.yaml\n@@ -1,8 +1,8 @@\n server:\n   host: 0.0.0.0\n-  port: 8080\n+  port: 9090\n logging:\n   level: info\n   file: app.log\n workers: 4\n-database: postgres://app:<redacted>@db/app\n+database: postgres://app:<redacted>@db/app\n";
    // The archive's patch: every diff, in entry order, and nothing else.
    let patch = std::fs::read_to_string(d.join("changes.patch")).unwrap();
    assert_eq!(patch, format!("{env_diff}{config_diff}"));
    let report = report_json(archive);
    let modified = report["changes"]["modified"].as_array().unwrap();
    let entry = |path: &str| {
        modified.iter().find(|m| m["path"] == path).unwrap_or_else(|| panic!("{path}: {report:#}"))
    };
    assert_eq!(entry("config.yaml")["diff"], config_diff);
    assert_eq!(entry(".env")["diff"], env_diff);
    assert!(entry("config.yaml").get("diff_note").is_none(), "{report:#}");
    assert!(entry("logo.bin").get("diff").is_none(), "{report:#}");
    assert_eq!(entry("logo.bin")["diff_note"], "binary");
    assert_eq!(modified.len(), 3, "{report:#}");
    // The secret, before and after, is in no file of the report.
    for (path, bytes) in files_under(d) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("secret-value"), "a secret in {}:\n{text}", path.display());
    }
    // The CLI shows the diffs under the changes.
    let id = archive.file_name().unwrap().to_string_lossy().trim_end_matches(".tar.gz").to_string();
    let show = h.ok(&["crash", "show", &id]);
    let expected = "    ~ config.yaml (130 B -> 130 B)\n        --- a/config.yaml\n        +++ b/config.yaml\n        @@ -1,8 +1,8 @@\n         server:\n           host: 0.0.0.0\n        -  port: 8080\n        +  port: 9090\n";
    assert!(show.contains(expected), "{show}");
    assert!(show.contains("    ~ logo.bin (20 B -> 20 B)\n        (binary)\n"), "{show}");
    assert!(!show.contains("secret-value") && !show.contains("hunter"), "{show}");
    assert!(show.contains("+database: postgres://app:<redacted>@db/app"), "{show}");
    assert!(!patch.contains("hunter") && !report.to_string().contains("hunter"), "{patch}");
}

#[test]
fn a_clean_exit_and_a_requested_stop_write_no_report() {
    let mut h = home();
    h.sh_unit("fine", "exit 0", "");
    h.sh_unit("stopped", "exec sleep 1000", "");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    h.ok(&["start", "fine", "stopped"]);
    h.wait_state("fine", "exited");
    h.ok(&["stop", "stopped"]);
    // Reports are written asynchronously: once a later crash's report exists, these two exits
    // have been decided.
    reporter_caught_up(&h);
    let all: Vec<PathBuf> = reports(&h);
    assert_eq!(all.len(), 1, "only the sentinel's: {all:?}");
}

#[test]
fn a_crash_loop_keeps_the_first_and_latest_three_and_counts_the_rest() {
    let mut h = home();
    let counter = h.work().join("count");
    h.sh_unit(
        "looper",
        &format!("echo x >> {}; exit 1", counter.display()),
        "Restart=always\nRestartSec=0\nStartLimitIntervalSec=0",
    );
    h.start_daemon();
    h.ok(&["start", "looper"]);
    h.wait_until("50 exits", || {
        std::fs::read_to_string(&counter).map(|s| s.lines().count() >= 50).unwrap_or(false)
    });
    h.ok(&["stop", "looper"]);
    let n = std::fs::read_to_string(&counter).unwrap().lines().count() as u64;
    // Reports are written after each exit; wait until the reporter has caught up with the last.
    // Names sort by second, then by a random part: the latest report is the one that counts
    // the most suppressed ones.
    h.wait_until("the reporter catches up", || {
        let all = reports(&h);
        let suppressed = all
            .iter()
            .filter_map(|p| try_unpack(p))
            .map(|d| {
                let r: Value =
                    serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap())
                        .unwrap();
                r["suppressed"].as_u64().unwrap()
            })
            .max()
            .unwrap_or(0);
        // The last process may have been stopped on request rather than crash: no report.
        all.len() <= 6 && suppressed + all.len() as u64 >= n - 1
    });
    let all = reports(&h);
    assert!(all.len() <= 6, "{}", all.len());
}

#[test]
fn a_crash_loop_writes_its_later_reports_at_most_once_a_second_and_the_last_crash_is_reported() {
    let mut h = home();
    // 40 crashes as fast as they come, then the start limit ends the loop.
    h.sh_unit("looper", "echo run $$$$; exit 1", "Restart=always\nRestartSec=0\nStartLimitBurst=40");
    h.start_daemon();
    let began = std::time::Instant::now();
    h.ok(&["start", "looper"]);
    h.wait_state("looper", "failed");
    let loop_secs = began.elapsed().as_secs() as usize;
    let started: Vec<u32> = h
        .log("logs/looper.log")
        .lines()
        .filter_map(|l| l.split_once(" gitvisor started process ")?.1.split(':').next()?.parse().ok())
        .collect();
    assert_eq!(started.len(), 40, "{started:?}");
    let last = *started.last().unwrap();
    // The last crash waited (the loop's kept reports were all recent); it comes within a second.
    h.wait_until("the last crash's report", || {
        reports_of(&h, "looper").iter().filter_map(|p| try_unpack(p)).any(|d| {
            let r: Value =
                serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap())
                    .unwrap();
            r["pid"] == last
        })
    });
    let kept = reports_of(&h, "looper");
    assert_eq!(kept.len(), 6, "{kept:?}");
    let newest = kept.iter().map(|p| report_json(p)).max_by_key(|r| r["restarts"].as_u64()).unwrap();
    assert_eq!(newest["pid"], last);
    assert_eq!(newest["restarts"], 39);
    // 40 crashes: six reports kept, the rest counted, none lost without a count.
    assert_eq!(newest["suppressed"].as_u64().unwrap() + 6, 40, "{newest:#}");
    // Written: the six kept ones (at once, as the loop began), one a second while it lasted and
    // the last crash's, not one archive per crash (each write notes its id in the log).
    let written = h.log("logs/looper.log").matches(" gitvisor crash report ").count();
    assert!(written <= 7 + loop_secs + 1, "{written} reports written for 40 crashes in {loop_secs} s");
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn a_full_disk_leaves_no_partial_report_and_supervision_goes_on() {
    crate::need_root("mounting a small tmpfs");
    let mut h = home();
    let dir = h.path().join("crash-reports");
    std::fs::create_dir_all(&dir).unwrap();
    let o =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"]).arg(&dir).output().unwrap();
    assert!(o.status.success(), "cannot mount a tmpfs here: {}", String::from_utf8_lossy(&o.stderr));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    // A working directory far larger than the 16 KiB disk (incompressible bytes).
    let work = h.work();
    let mut noise = vec![0u8; 200_000];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut noise).unwrap();
    std::fs::write(work.join("noise.bin"), &noise).unwrap();
    h.sh_unit("filler", "sleep 0.2; exit 7", "Restart=on-failure\nRestartSec=100ms\nStartLimitIntervalSec=0");
    h.start_daemon();
    h.ok(&["start", "filler"]);
    h.wait_until("the failed write is logged", || h.daemon_log().contains("cannot write a crash report"));
    // Nothing partial: no temporary file and no report was left.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.starts_with(".tmp-")), "{left:?}");
    assert!(left.is_empty(), "{left:?}");
    // Supervision goes on: it keeps being restarted.
    let r = h.service("filler")["restarts"].as_u64().unwrap();
    h.wait_until("more restarts", || h.service("filler")["restarts"].as_u64().unwrap() > r + 1);
}

#[test]
fn manual_capture_and_bad_ids() {
    let mut h = home();
    std::fs::write(h.work().join("state.txt"), "hello\n").unwrap();
    h.sh_unit("svc", "exec sleep 1000", "");
    h.start_daemon();
    let out = h.ok(&["capture", "svc"]);
    assert!(out.starts_with("capture-svc-"), "{out}");
    let all = reports(&h);
    assert_eq!(all.len(), 1);
    let d = unpack(&all[0]);
    assert_eq!(std::fs::read_to_string(d.path().join("workdir/state.txt")).unwrap(), "hello\n");
    for bad in ["../../etc/passwd", "crash-x-20260101T000000Z-zz", "/etc/passwd"] {
        let o = h.run(&["crash", "show", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let o = h.run(&["crash", "rm", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
    }
    assert!(std::path::Path::new("/etc/passwd").exists());
    let o = h.run(&["capture", "ghost"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_working_directory_over_the_budget_is_left_out_and_the_report_says_so() {
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[crash_reports]\nmax_bytes = \"64K\"\n").unwrap();
    std::fs::write(h.work().join("big.bin"), vec![7u8; 200_000]).unwrap();
    h.sh_unit("heavy", "sleep 0.1; exit 9", "");
    h.start_daemon();
    h.ok(&["start", "heavy"]);
    h.wait_until("a crash report", || reports(&h).len() == 1);
    let d = unpack(&reports(&h)[0]);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(r["workdir"]["included"], false, "{r:#}");
    assert!(r["workdir"]["note"].as_str().unwrap().contains("too large for the crash report budget"));
    assert!(!d.path().join("workdir").exists());
    assert!(d.path().join("logs/tail.log").exists() && d.path().join("env.txt").exists());
}

/// The text of `logs/tail.log` in the report at `path`.
fn tail_of(path: &Path) -> String {
    std::fs::read_to_string(unpack(path).path().join("logs/tail.log")).unwrap()
}

#[test]
fn a_working_directory_grown_past_what_a_start_walks_in_place_still_gets_a_whole_baseline() {
    let mut h = home();
    let work = h.work();
    std::fs::write(work.join("first.txt"), "the only file\n").unwrap();
    h.sh_unit(
        "grower",
        "while [ ! -e go ]; do sleep 0.02; done; rm go; echo changed > f-0005.txt; exit 3",
        "",
    );
    h.start_daemon();
    h.ok(&["start", "grower"]);
    h.wait_until("the first baseline", || {
        h.ok(&["logs", "grower"]).contains("baseline capture of its working directory: 1 entries")
    });
    h.ok(&["stop", "grower"]);
    // A baseline after a small one is walked on the engine's thread within a budget (512
    // names); this tree is past it, so it is walked again on a blocking thread, whole.
    for i in 0..700 {
        std::fs::write(work.join(format!("f-{i:04}.txt")), format!("file {i}\n")).unwrap();
    }
    h.ok(&["start", "grower"]);
    h.wait_until("the second baseline, of the whole tree", || {
        h.ok(&["logs", "grower"]).contains("baseline capture of its working directory: 701 entries")
    });
    std::fs::write(work.join("go"), "").unwrap();
    h.wait_until("a crash report", || reports(&h).len() == 1);
    let dir = unpack(&reports(&h)[0]);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let changes = &report["changes"];
    let paths = |k: &str| -> Vec<String> {
        changes[k].as_array().unwrap().iter().map(|x| x["path"].as_str().unwrap().to_string()).collect()
    };
    // Against a baseline that missed files, they would show as added.
    assert_eq!(paths("added"), Vec::<String>::new(), "{changes:#}");
    assert_eq!(paths("removed"), Vec::<String>::new(), "{changes:#}");
    assert_eq!(paths("modified"), vec!["f-0005.txt"], "{changes:#}");
}

#[test]
fn a_report_after_adoption_keeps_the_start_time_and_compares_with_a_baseline() {
    let mut h = home();
    let work = h.work();
    std::fs::write(work.join("data.txt"), "before\n").unwrap();
    // It ends when told to (after changing a file), a failure the policy restarts.
    h.sh_unit(
        "adoptee",
        "while [ ! -e go ]; do sleep 0.02; done; rm go; echo after > data.txt; exit 3",
        "Restart=on-failure\n[Install]\nWantedBy=default.target",
    );
    h.start_daemon();
    let s = h.wait_state("adoptee", "running");
    let (pid, started_ms) = (s["pid"].as_u64().unwrap(), s["started_ms"].as_u64().unwrap());
    // The record the next engine reads names the process and its start.
    h.wait_until("the process recorded in state.json", || {
        let state: Value = serde_json::from_str(&h.log("state.json")).unwrap_or_default();
        let r = &state["services"]["adoptee"];
        r["pid"] == pid && r["started_ms"] == started_ms
    });
    h.kill_daemon();
    h.start_daemon();
    let s = h.wait_state("adoptee", "running");
    assert_eq!((s["pid"].as_u64(), s["started_ms"].as_u64()), (Some(pid), Some(started_ms)), "{s:#}");
    // The adopting engine takes its own baseline (noted in the log, as at a start).
    let log = h.path().join("logs/adoptee.log");
    h.wait_until("a baseline taken at adoption", || {
        std::fs::read_to_string(&log).unwrap().matches("baseline capture").count() == 2
    });
    std::fs::write(work.join("go"), "").unwrap();
    h.wait_until("a crash report", || !reports_of(&h, "adoptee").is_empty());
    let r = report_json(&reports_of(&h, "adoptee")[0]);
    assert_eq!(r["pid"], pid, "{r:#}");
    let at = format!("@{}.{:03}", started_ms / 1000, started_ms % 1000);
    let o = Command::new("date").args(["-u", "-d", &at, "+%Y-%m-%dT%H:%M:%S.%3NZ"]).output().unwrap();
    assert_eq!(r["started_at"], String::from_utf8_lossy(&o.stdout).trim(), "{r:#}");
    assert!(r["uptime_ms"].as_u64().is_some(), "{r:#}");
    assert!(r["baseline_taken_at"].is_string(), "{r:#}");
    let modified: Vec<&str> =
        r["changes"]["modified"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap()).collect();
    assert_eq!(modified, ["data.txt"], "{r:#}");
}

#[test]
fn a_crash_loop_report_holds_its_own_exit_and_nothing_later() {
    let mut h = home();
    // The default start limit (5 starts in 10 s) ends the loop after five crashes.
    h.sh_unit("looper", "echo run $$$$; exit 1", "Restart=always\nRestartSec=0");
    h.start_daemon();
    h.ok(&["start", "looper"]);
    h.wait_state("looper", "failed");
    // The first three and the latest three are kept: all five.
    h.wait_until("five reports", || reports_of(&h, "looper").len() == 5);
    // The processes in the order they started, from the log file.
    let started: Vec<u32> = h
        .log("logs/looper.log")
        .lines()
        .filter_map(|l| l.split_once(" gitvisor started process ")?.1.split(':').next()?.parse().ok())
        .collect();
    assert_eq!(started.len(), 5, "{started:?}");
    for path in reports_of(&h, "looper") {
        let r = report_json(&path);
        let pid = r["pid"].as_u64().unwrap() as u32;
        let nth = started.iter().position(|p| *p == pid).unwrap();
        assert_eq!(r["restarts"], nth, "restarts at the exit of the {nth}th process: {r:#}");
        let tail = tail_of(&path);
        assert!(tail.contains(&format!(" out run {pid}\n")), "{tail}");
        for later in &started[nth + 1..] {
            assert!(
                !tail.contains(&format!("run {later}")) && !tail.contains(&format!("process {later}")),
                "{tail}"
            );
        }
        assert!(!tail.contains("start limit hit"), "{tail}");
        // The engine's last note in it is this exit; only the process's own output may follow.
        let exit_note = format!(" gitvisor process {pid} exited with status 1");
        let at = tail.lines().position(|l| l.ends_with(&exit_note)).unwrap_or_else(|| panic!("{tail}"));
        for l in tail.lines().skip(at + 1) {
            assert!(l.ends_with(&format!(" out run {pid}")), "after the exit note: {l}\n{tail}");
        }
        assert_eq!(r["log_lines"], tail.lines().count());
    }
}

#[test]
fn an_external_sigterm_is_clean_for_restart_and_writes_no_report() {
    let mut h = home();
    h.sh_unit("polite", "exec sleep 1000", "Restart=on-failure\nRestartSec=0");
    h.sh_unit("rude", "exec sleep 1000", "Restart=on-failure\nRestartSec=0");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    h.ok(&["start", "polite", "rude"]);
    let (polite, rude) = (h.pid("polite").unwrap(), h.pid("rude").unwrap());
    unsafe {
        libc::kill(polite as i32, libc::SIGTERM);
        libc::kill(rude as i32, libc::SIGKILL);
    }
    // SIGTERM is a clean end (systemd's meaning): not restarted, no error, no report.
    let s = h.wait_state("polite", "exited");
    assert_eq!((&s["error"], &s["restarts"]), (&Value::Null, &Value::from(0)), "{s:#}");
    // SIGKILL is a failure: restarted, and reported.
    h.wait_until("rude restarted", || h.pid("rude").is_some_and(|p| p != rude));
    h.wait_until("rude's report", || reports_of(&h, "rude").len() == 1);
    reporter_caught_up(&h);
    assert_eq!(reports_of(&h, "polite"), Vec::<PathBuf>::new());
}

/// Every regular file under `dir`, with its path relative to `dir`.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            let name = PathBuf::from(p.file_name().unwrap());
            out.extend(files_under(&p).into_iter().map(|(rel, b)| (name.join(rel), b)));
        } else if t.is_file() {
            out.push((p.file_name().unwrap().into(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn a_report_holds_no_secret_in_any_file() {
    let mut h = home();
    let work = h.work();
    std::fs::write(
        work.join("app.env"),
        "SESSION_SECRET=file-secret\nREDIS_URL=redis://:redis-pw-secret@cache:6379\nGREETING=hello\n",
    )
    .unwrap();
    // A `.env` file: a secret quoted over lines, a secret URL built from a variable.
    std::fs::write(
        work.join(".env"),
        "export PRIVATE_KEY=\"-----BEGIN-----\nkey-line-secret\n-----END-----\"\nDB_PASS=dotenv-pw-secret\nDB=postgres://u:${DB_PASS}@db/x\n",
    )
    .unwrap();
    h.unit(
        "leaky",
        &format!(
            "[Service]\n\
             ExecStart=/bin/sh -c 'echo started; exit 3' app --password=opt-secret-1 --token opt-secret-2 postgres://u:cmd-url-secret@h/db\n\
             WorkingDirectory={work}\n\
             Environment=DATABASE_URL=postgres://u:pw-url-secret@host/db API_TOKEN=tok-env-secret PLAIN=visible\n\
             EnvironmentFile={work}/app.env\n\
             EnvironmentFile={work}/.env\n",
            work = work.display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "leaky"]);
    h.wait_until("a crash report", || reports_of(&h, "leaky").len() == 1);
    let dir = unpack(&reports_of(&h, "leaky")[0]);
    let files = files_under(dir.path());
    let secrets = [
        "file-secret",
        "redis-pw-secret",
        "opt-secret-1",
        "opt-secret-2",
        "cmd-url-secret",
        "pw-url-secret",
        "tok-env-secret",
        "key-line-secret",
        "dotenv-pw-secret",
    ];
    for (path, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {}:\n{text}", path.display());
        }
    }
    let read = |p: &str| {
        let (_, b) = files.iter().find(|(path, _)| path == Path::new(p)).unwrap_or_else(|| panic!("no {p}"));
        String::from_utf8_lossy(b).into_owned()
    };
    // What is not secret stays, so the report still says what ran.
    let env = read("env.txt");
    assert!(env.contains("DATABASE_URL=postgres://u:<redacted>@host/db\n"), "{env}");
    assert!(env.contains("PLAIN=visible\n") && env.contains("GREETING=hello\n"), "{env}");
    let unit = read("unit/leaky.service");
    assert!(
        unit.contains("app --password=<redacted> --token <redacted> postgres://u:<redacted>@h/db"),
        "{unit}"
    );
    assert!(unit.contains("API_TOKEN=<redacted> PLAIN=visible"), "{unit}");
    assert!(read("workdir/app.env")
        .contains("SESSION_SECRET=<redacted>\nREDIS_URL=redis://:<redacted>@cache:6379\nGREETING=hello\n"));
    assert_eq!(
        read("workdir/.env"),
        "export PRIVATE_KEY=<redacted>\nDB_PASS=<redacted>\nDB=postgres://u:<redacted>@db/x\n"
    );
    assert!(env.contains("DB=postgres://u:<redacted>@db/x\n"), "{env}");
    let tail = read("logs/tail.log");
    assert!(tail.contains("--password=<redacted> --token <redacted>"), "the start note is redacted: {tail}");
}

#[test]
fn capture_without_a_working_directory_is_refused_not_a_walk_of_the_home() {
    // The services' home directory is the test's (`user/`), never the real one.
    let mut h = Home::builder(env!("CARGO_BIN_EXE_gitvisor")).isolate_user_dirs().build();
    std::fs::write(h.path().join("user/in-home.txt"), "home\n").unwrap();
    h.unit("nowd", "[Service]\nExecStart=/bin/sleep 1000\n");
    h.unit("homecap", "[Service]\nExecStart=/bin/sleep 1000\n[Capture]\nEnabled=yes\n");
    h.start_daemon();
    let why = "it has no WorkingDirectory= (capturing would walk the whole home directory; \
               [Capture] Enabled=yes allows that)";
    assert_eq!(h.service("nowd")["capture_off"], why);
    assert_eq!(h.service("homecap")["capture_off"], Value::Null);
    let o = h.run(&["capture", "nowd"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), format!("gitvisor: cannot capture nowd: {why}"));
    assert_eq!(reports(&h), Vec::<PathBuf>::new(), "nothing was walked or written");
    // Asked for in the unit, the home directory is captured.
    let out = h.ok(&["capture", "homecap"]);
    assert!(out.starts_with("capture-homecap-"), "{out}");
    let d = unpack(&reports(&h)[0]);
    assert_eq!(std::fs::read_to_string(d.path().join("workdir/in-home.txt")).unwrap(), "home\n");
}

#[test]
fn a_failing_status_that_exec_start_ignores_writes_no_report() {
    let mut h = home();
    // `-`: a failing status counts as success (systemd.service(5), ExecStart=).
    h.unit("tolerated", "[Service]\nExecStart=-/bin/sh -c 'exit 3'\n");
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    h.ok(&["start", "tolerated"]);
    let s = h.wait_state("tolerated", "exited");
    assert_eq!(
        (&s["last_exit"]["code"], &s["last_exit_class"]),
        (&Value::from(3), &Value::from("clean")),
        "{s:#}"
    );
    reporter_caught_up(&h);
    assert_eq!(reports_of(&h, "tolerated"), Vec::<PathBuf>::new());
}

#[test]
fn a_crash_after_staying_up_starts_a_new_loop_and_says_why_nothing_was_captured() {
    let mut h = home();
    // Eight quick crashes (the loop keeps the first 3 and latest 3 and counts the rest), then one after
    // staying up 2 s, longer than RestartMaxDelaySec=: a new loop, nothing left out. Then it
    // stays up. No WorkingDirectory=: nothing to capture, and the report says so.
    let count = h.work().join("count");
    let script = format!(
        "n=$(cat {c} 2>/dev/null | wc -l); echo x >> {c}; \
         if [ $n -lt 8 ]; then exit 1; fi; if [ $n -eq 8 ]; then sleep 2; exit 1; fi; exec sleep 1000",
        c = count.display()
    );
    let quoted = script.replace('\'', "'\\''");
    h.unit(
        "phoenix",
        &format!(
            "[Service]\nExecStart=/bin/sh -c '{quoted}'\nRestart=always\nRestartSec=0\n\
             StartLimitIntervalSec=0\nRestartMaxDelaySec=1s\n"
        ),
    );
    h.sh_unit("sentinel", SENTINEL, "");
    h.start_daemon();
    h.ok(&["start", "phoenix"]);
    h.wait_until("the tenth process", || {
        std::fs::read_to_string(&count).is_ok_and(|t| t.lines().count() >= 10)
    });
    reporter_caught_up(&h);
    let reports: Vec<Value> = reports_of(&h, "phoenix").iter().map(|p| report_json(p)).collect();
    let after_staying_up: Vec<&Value> =
        reports.iter().filter(|r| r["uptime_ms"].as_u64().is_some_and(|u| u >= 1000)).collect();
    assert_eq!(after_staying_up.len(), 1, "{reports:#?}");
    assert_eq!(after_staying_up[0]["suppressed"], 0, "a new loop: {:#}", after_staying_up[0]);
    let most = reports.iter().filter_map(|r| r["suppressed"].as_u64()).max().unwrap_or(0);
    assert!(most >= 1, "the quick crashes were thinned: {reports:#?}");
    let note = after_staying_up[0]["workdir"]["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("not captured: it has no WorkingDirectory="), "{note}");
}

#[test]
fn a_unit_that_turns_capture_off_says_so_in_its_report() {
    let mut h = home();
    h.sh_unit("private", "exit 1", "[Capture]\nEnabled=no");
    h.start_daemon();
    h.ok(&["start", "private"]);
    let report = wait_for("its crash report", || reports_of(&h, "private").pop());
    let r = report_json(&report);
    assert_eq!(
        r["workdir"]["note"], "not captured: its unit turns capture off ([Capture] Enabled=no)",
        "{r:#}"
    );
    assert_eq!(r["workdir"]["included"], false, "{r:#}");
}

#[test]
fn a_reports_peak_memory_is_the_process_own_or_unknown_never_the_engines() {
    let mut h = home();
    // A small shell: the kernel's figure would be the engine's memory (it was ~131 MiB once).
    h.sh_unit("small", "exit 1", "");
    // 100 MiB written, surely its own.
    h.sh_unit("big", "exec /usr/bin/python3 -c \"import sys; b = b'x' * (100 << 20); sys.exit(1)\"", "");
    h.start_daemon();
    h.ok(&["start", "small", "big"]);
    let small = report_json(&wait_for("small's report", || reports_of(&h, "small").pop()));
    assert_eq!(small["peak_memory_kb"], Value::Null, "{small:#}");
    let big = report_json(&wait_for("big's report", || reports_of(&h, "big").pop()));
    let kb = big["peak_memory_kb"].as_u64().unwrap_or_else(|| panic!("{big:#}"));
    assert!((100 << 10..400 << 10).contains(&kb), "{kb} KiB for a 100 MiB writer");
}
