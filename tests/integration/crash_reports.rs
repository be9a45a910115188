//! Crash reports of real crashes, unpacked with the real tar binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use gitvisor_testkit::Home;
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
    assert!(report["cpu_time_ms"].is_u64() && report["peak_memory_kb"].as_u64().unwrap() > 0);
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
fn a_clean_exit_and_a_requested_stop_write_no_report() {
    let mut h = home();
    h.sh_unit("fine", "exit 0", "");
    h.sh_unit("stopped", "exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "fine", "stopped"]);
    h.wait_state("fine", "exited");
    h.ok(&["stop", "stopped"]);
    h.ok(&["status"]);
    assert!(reports(&h).is_empty());
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
