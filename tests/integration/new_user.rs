//! Regression tests for what a new user hit (status that follows git, a CLI that does not make
//! people guess, messages, the engine at login), one per defect and named after it.

use gitvisor_testkit::{wait_line, ChildLines, Home};
use serde_json::Value;

use crate::home;

fn sleeper(h: &Home, tag: &str) -> String {
    h.enabled_sh_unit_text(tag, &format!("echo {tag}; while :; do sleep 1; done"), "")
}

/// `gitvisor` failed: its exit code and one-line error.
fn fails(h: &Home, args: &[&str]) -> (Option<i32>, String) {
    let o = h.run(args);
    assert!(!o.status.success(), "gitvisor {args:?} should fail: {}", String::from_utf8_lossy(&o.stdout));
    (o.status.code(), String::from_utf8_lossy(&o.stderr).trim().to_string())
}

// ---- status follows git ----

#[test]
fn an_invalid_unit_fixed_by_a_revert_shows_no_error_any_more() {
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("web", &sleeper(&h, "one"), "add web");
    h.wait_commit(&c);
    let pid = h.wait_state("web", "running")["pid"].as_u64().unwrap();
    let c = h.commit_unit("web", "[Service]\nExecStart=/bin/true\nRestartSec=soon\n", "break web");
    h.wait_commit(&c);
    assert!(h.service("web")["error"].as_str().unwrap().contains("invalid"));
    // The revert's unit is the one that runs: nothing to restart, and no error left.
    h.git(&["revert", "--no-edit", "HEAD"]);
    let c = h.git(&["rev-parse", "HEAD"]);
    h.wait_commit(&c);
    let s = h.service("web");
    assert_eq!(s["error"], Value::Null, "{s:#}");
    assert_eq!(s["pid"].as_u64(), Some(pid), "the same process runs");
    assert!(h.status()["invalid"].as_array().unwrap().is_empty());
    h.ok(&["restart", "web"]);
    assert_eq!(h.wait_state("web", "running")["error"], Value::Null);
}

#[test]
fn a_committed_fix_of_a_failed_enabled_unit_starts_it() {
    let mut h = home();
    h.start_daemon();
    let broken = h
        .enabled_sh_unit_text("web2", "while :; do sleep 1; done", "")
        .replace(&format!("WorkingDirectory={}", h.work().display()), "WorkingDirectory=/nonexistent/web2");
    let c = h.commit_unit("web2", &broken, "add web2");
    h.wait_commit(&c);
    let failed = h.wait_state("web2", "failed");
    assert!(failed["error"].as_str().unwrap().contains("/nonexistent/web2"), "{failed:#}");
    let c = h.commit_unit("web2", &sleeper(&h, "web2"), "fix web2");
    h.wait_commit(&c);
    let running = h.wait_state("web2", "running");
    assert_eq!(running["error"], Value::Null, "{running:#}");
    let sync = h.sync_history().pop().unwrap();
    assert_eq!(sync["actions"], serde_json::json!(["started web2 (changed after it failed)"]), "{sync:#}");
}

#[test]
fn a_committed_fix_of_a_failed_disabled_unit_clears_its_error() {
    let mut h = home();
    h.start_daemon();
    let broken = h
        .sh_unit_text("while :; do sleep 1; done", "")
        .replace(&format!("WorkingDirectory={}", h.work().display()), "WorkingDirectory=/nonexistent/tool");
    let c = h.commit_unit("tool", &broken, "add tool");
    h.wait_commit(&c);
    assert!(!h.run(&["start", "tool"]).status.success());
    assert_eq!(h.state("tool"), "failed");
    let c = h.commit_unit("tool", &h.sh_unit_text("while :; do sleep 1; done", ""), "fix tool");
    h.wait_commit(&c);
    let s = h.service("tool");
    assert_eq!((s["state"].as_str(), &s["error"]), (Some("stopped"), &Value::Null), "{s:#}");
}

#[test]
fn history_says_which_commit_runs_as_the_window_does_and_lists_the_syncs() {
    let mut h = home();
    // Polled rarely: a new commit stays unapplied until `sync`.
    std::fs::write(h.path().join("config.toml"), "[git]\nfile_events = false\npoll_interval = \"1h\"\n")
        .unwrap();
    h.start_daemon();
    let a = h.commit_unit("web", &sleeper(&h, "a"), "first");
    h.ok(&["sync"]);
    let b = h.commit_unit("web", &sleeper(&h, "b"), "second");
    h.ok(&["sync"]);
    let c = h.commit_unit("web", &sleeper(&h, "c"), "third");
    let json: Value = serde_json::from_str(&h.ok(&["history", "--json"])).unwrap();
    let commit =
        |id: &str| json["commits"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!((commit(&b)["runs"].as_bool(), commit(&b)["applied"].as_bool()), (Some(true), Some(true)));
    assert_eq!((commit(&a)["runs"].as_bool(), commit(&a)["applied"].as_bool()), (Some(false), Some(true)));
    assert_eq!((commit(&c)["runs"].as_bool(), commit(&c)["applied"].as_bool()), (Some(false), Some(false)));
    let text = h.ok(&["history"]);
    let row = |id: &str| text.lines().find(|l| l.starts_with(&id[..10])).unwrap().to_string();
    assert!(row(&c).contains("not applied"), "{text}");
    assert!(row(&b).contains("running"), "{text}");
    assert!(row(&a).contains(" applied ") && !row(&a).contains("not applied"), "{text}");
    assert!(text.contains("latest syncs:"), "{text}");
    assert!(text.contains(&format!("-> {}  applied", &b[..10])), "{text}");
}

// ---- a CLI that does not make people guess ----

#[test]
fn output_piped_into_a_reader_that_quit_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut h = home();
    h.start_daemon();
    let c = h.commit_unit("web", &sleeper(&h, "one"), "add web");
    h.wait_commit(&c);
    h.wait_state("web", "running");
    for args in [&["status"][..], &["history"], &["logs", "web"]] {
        // `gitvisor status | head -0`: the pipe's reader is gone before the first write.
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let o = h.cmd_with(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "gitvisor {args:?}: {:?} {stderr}", o.status);
        assert_eq!(stderr, "", "gitvisor {args:?}");
    }
}

#[test]
fn logs_of_several_services_are_interleaved_by_time_and_prefixed() {
    let mut h = home();
    h.enabled_sh_unit("alpha", "echo alpha-1; sleep 0.2; echo alpha-2; exec sleep 1000", "");
    h.enabled_sh_unit("beta", "sleep 0.1; echo beta-1; sleep 0.2; echo beta-2; exec sleep 1000", "");
    h.start_daemon();
    h.wait_until("both printed", || {
        let out = h.ok(&["logs", "--all", "-n", "100"]);
        // The lines they printed, not the engine's note of their command lines.
        out.contains(" out alpha-2") && out.contains(" out beta-2")
    });
    let out = h.ok(&["logs", "alpha", "beta", "-n", "100"]);
    let printed: Vec<&str> =
        out.lines().filter(|l| [" out alpha-", " out beta-"].iter().any(|t| l.contains(t))).collect();
    assert!(printed.iter().all(|l| l.starts_with("alpha | ") || l.starts_with("beta  | ")), "{out}");
    let order: Vec<String> =
        printed.iter().map(|l| l.split_whitespace().last().unwrap().to_string()).collect();
    assert_eq!(order, ["alpha-1", "beta-1", "alpha-2", "beta-2"], "{out}");
    // One service reads as its own log, no prefix; -n counts lines over all services.
    assert!(h.ok(&["logs", "alpha"]).lines().all(|l| !l.starts_with("alpha |")));
    assert_eq!(h.ok(&["logs", "--all", "-n", "3"]).lines().count(), 3);
    // -f follows several at once.
    let mut follow = ChildLines::spawn(h.cmd_with(&["logs", "-f", "-n", "0", "alpha", "beta"]), "logs -f");
    h.ok(&["restart", "beta"]);
    let line = follow_until(&mut follow, |l| l.contains(" out beta-1"));
    assert!(line.starts_with("beta  | ") || line.starts_with("beta | "), "{line}");
}

fn follow_until(lines: &mut ChildLines, pred: impl Fn(&str) -> bool) -> String {
    loop {
        let l = lines.next_line();
        if pred(&l) {
            return l;
        }
    }
}

#[test]
fn status_shows_cpu_memory_and_the_last_exit() {
    let mut h = home();
    h.enabled_sh_unit("busy", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 1000", "");
    h.sh_unit("oneshot", "exit 4", "");
    h.start_daemon();
    h.run(&["start", "oneshot"]);
    h.wait_state("oneshot", "exited");
    h.wait_until("busy used some CPU", || h.service("busy")["cpu_ms"].as_u64().is_some_and(|c| c >= 10));
    let table = h.ok(&["status"]);
    let header = table.lines().next().unwrap();
    for col in ["CPU", "MEM", "LAST EXIT"] {
        assert!(header.contains(col), "{table}");
    }
    // The cell under a column's header (columns are aligned, ASCII).
    let cell = |row: &str, col: &str| -> String {
        let at = header.find(col).unwrap();
        row[at..].split("  ").next().unwrap().trim().to_string()
    };
    let busy = table.lines().find(|l| l.starts_with("busy")).unwrap();
    let cpu = cell(busy, "CPU");
    assert!(cpu.ends_with("ms") || cpu.ends_with('s'), "CPU time shown: {table}");
    let mem = cell(busy, "MEM");
    assert!(mem.ends_with('M') || mem.ends_with('K'), "memory shown: {table}");
    let oneshot = table.lines().find(|l| l.starts_with("oneshot")).unwrap();
    assert!(cell(oneshot, "LAST EXIT").starts_with("exited with status 4 ("), "{table}");
    assert_eq!(cell(oneshot, "CPU"), "-", "no CPU figure for a process that is gone: {table}");
}

#[test]
fn all_takes_the_place_of_every_name() {
    let mut h = home();
    h.sh_unit("a", "exec sleep 1000", "");
    h.sh_unit("b", "exec sleep 1000", "");
    h.start_daemon();
    let out = h.ok(&["start", "--all"]);
    assert!(out.contains("a: running") && out.contains("b: running"), "{out}");
    let out = h.ok(&["stop", "--all"]);
    assert!(out.contains("a: stopped") && out.contains("b: stopped"), "{out}");
    assert_eq!(h.state("a"), "stopped");
    assert_eq!(h.run(&["stop"]).status.code(), Some(2), "a name or --all");
    assert_eq!(h.run(&["stop", "a", "--all"]).status.code(), Some(2), "not both");
}

#[test]
fn enable_and_disable_commit_the_install_section_and_apply_it() {
    let mut h = home();
    h.sh_unit("web", "exec sleep 1000", "");
    h.start_daemon();
    assert_eq!(h.service("web")["enabled"], false);
    let out = h.ok(&["enable", "web"]);
    assert!(out.contains("committed") && out.contains("enabled web"), "{out}");
    assert!(h.git(&["log", "-1", "--format=%s"]).contains("Enable web"));
    assert!(h.git(&["show", "HEAD:web.service"]).contains("[Install]\nWantedBy=default.target"));
    let s = h.wait_state("web", "running");
    assert_eq!(s["enabled"], true, "enabling a stopped unit starts it, as a commit that enables it does");
    assert!(h.ok(&["enable", "web"]).contains("web: already enabled"));
    h.ok(&["disable", "web"]);
    assert!(!h.git(&["show", "HEAD:web.service"]).contains("WantedBy"));
    h.wait_until("web is disabled", || h.service("web")["enabled"] == false);
    // Refused with nothing committed: an unknown unit, a unit with uncommitted edits.
    let head = h.git(&["rev-parse", "HEAD"]);
    let (code, err) = fails(&h, &["enable", "ghost"]);
    assert_eq!((code, err.as_str()), (Some(1), "gitvisor: no service named ghost"));
    std::fs::write(h.services().join("web.service"), "[Service]\nExecStart=/bin/true\n# edited\n").unwrap();
    let (_, err) = fails(&h, &["enable", "web"]);
    assert!(err.contains("web.service has uncommitted edits"), "{err}");
    assert_eq!(h.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn home_flag_works_on_every_command() {
    let mut h = home();
    h.sh_unit("web", "exec sleep 1000", "");
    h.start_daemon();
    let dir = h.path().display().to_string();
    let bare = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gitvisor"))
            .env_remove("GITVISOR_HOME")
            .args(["--home", &dir])
            .args(args)
            .output()
            .unwrap()
    };
    for args in
        [&["status"][..], &["start", "web"], &["logs", "web"], &["history"], &["crash", "list"], &["config"]]
    {
        let o = bare(args);
        assert!(o.status.success(), "--home {dir} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // After the subcommand too, and a relative path.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gitvisor"))
        .env_remove("GITVISOR_HOME")
        .current_dir(h.path().parent().unwrap())
        .args(["status", "--home", h.path().file_name().unwrap().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn crash_ids_are_taken_by_unique_prefix_or_latest_and_list_filters_by_service() {
    let mut h = home();
    h.sh_unit("web", "exit 3", "");
    h.sh_unit("api", "exit 5", "");
    h.start_daemon();
    h.run(&["start", "web"]);
    h.wait_until("web's report", || h.ok(&["crash", "list", "web"]).contains("crash-web-"));
    h.run(&["start", "api"]);
    h.wait_until("api's report", || h.ok(&["crash", "list", "api"]).contains("crash-api-"));
    let web_only = h.ok(&["crash", "list", "web"]);
    assert!(!web_only.contains("crash-api-"), "{web_only}");
    let latest = h.ok(&["crash", "show", "latest"]);
    assert!(latest.contains("service:    api"), "the newest is api's: {latest}");
    let shown = h.ok(&["crash", "show", "crash-web"]);
    assert!(shown.contains("exited with status 3"), "{shown}");
    let (_, err) = fails(&h, &["crash", "show", "crash-"]);
    assert!(err.contains("names 2 crash reports"), "{err}");
    let (_, err) = fails(&h, &["crash", "show", "nothing-like-it"]);
    assert!(err.contains("no crash report nothing-like-it"), "{err}");
    h.ok(&["crash", "rm", "latest"]);
    assert!(!h.ok(&["crash", "list"]).contains("crash-api-"));
}

#[test]
fn stop_and_start_say_what_else_they_stopped_or_started_and_why() {
    let mut h = home();
    h.sh_unit("redis", "exec sleep 1000", "");
    h.sh_unit("web", "exec sleep 1000", "");
    h.unit(
        "web",
        &h.sh_unit_text("exec sleep 1000", "")
            .replace("[Service]", "[Unit]\nRequires=redis\nAfter=redis\n[Service]"),
    );
    h.start_daemon();
    let out = h.ok(&["start", "web"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("redis: running (pid ")
            && lines[0].ends_with(" — started because web requires it"),
        "{out}"
    );
    assert!(lines[1].starts_with("web: running (pid "), "{out}");
    let out = h.ok(&["stop", "redis"]);
    assert_eq!(out.trim(), "web: stopped — stopped because it requires redis\nredis: stopped", "{out}");
}

// ---- messages ----

#[test]
fn a_refusal_names_the_service_not_the_lock_key() {
    let mut h = home();
    let release = h.work().join("release");
    let script = format!("trap \"\" TERM; while [ ! -e {} ]; do sleep 0.05; done", release.display());
    h.sh_unit("stubborn", &script, "TimeoutStopSec=1h");
    h.start_daemon();
    h.ok(&["start", "stubborn"]);
    let mut stop = h.cmd_with(&["stop", "stubborn"]).spawn().unwrap();
    h.wait_until("the stop holds the lock", || h.service("stubborn")["busy"] == "stop");
    let (code, err) = fails(&h, &["restart", "stubborn"]);
    assert_eq!((code, err.as_str()), (Some(1), "gitvisor: stubborn: stop in progress on stubborn"));
    std::fs::write(&release, "").unwrap();
    assert!(gitvisor_testkit::wait_exit(&mut stop, "gitvisor stop").success());
}

#[test]
fn a_bad_setting_and_a_bad_file_name_are_said_once_and_plainly() {
    let h = home();
    std::fs::write(h.path().join("config.toml"), "[logs]\nmax_file_size = \"huge\"\n").unwrap();
    let err = String::from_utf8_lossy(&h.run(&["config"]).stderr).into_owned();
    assert_eq!(err.matches("invalid size \"huge\"").count(), 1, "{err}");
    h.unit("bad name", "[Service]\nExecStart=/bin/true\n");
    let out = String::from_utf8_lossy(&h.run(&["validate"]).stdout).into_owned();
    assert!(out.contains("bad name.service: invalid unit name"), "{out}");
    assert!(!out.contains(":0:"), "no line 0: {out}");
}

#[test]
fn the_daemon_log_has_no_colour_codes_when_redirected_and_empty_arguments_are_quoted() {
    let mut h = home();
    h.unit(
        "args",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'exec sleep 1000' '' x\nWorkingDirectory={}\n",
            h.work().display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "args"]);
    let log = wait_line(&h.path().join("logs/args.log"), |l| l.contains("started process"));
    assert!(log.ends_with(r#"/bin/sh -c "exec sleep 1000" "" x"#), "{log}");
    h.stop_daemon();
    assert!(!h.daemon_log().contains('\u{1b}'), "colour codes in a redirected log");
}

// ---- the engine at login without the tray ----

#[test]
fn install_user_service_writes_a_unit_that_runs_the_daemon_for_this_home() {
    let h = home();
    let user = h.path().join("user");
    let calls = h.path().join("systemctl.calls");
    // A user manager cannot run here: a stand-in `systemctl` records what it is asked.
    let bin = h.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("systemctl");
    std::fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >> {}\nexit 0\n", calls.display())).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |path: &str, args: &[&str]| {
        h.cmd_with(args)
            .env("HOME", &user)
            .env("XDG_CONFIG_HOME", user.join(".config"))
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = run(&path, &["install-user-service"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unit = std::fs::read_to_string(user.join(".config/systemd/user/gitvisor.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart=\"{}\" daemon", env!("CARGO_BIN_EXE_gitvisor"))), "{unit}");
    assert!(unit.contains(&format!("Environment=\"GITVISOR_HOME={}\"", h.path().display())), "{unit}");
    assert!(unit.contains("KillMode=process"), "services outlive an engine restart: {unit}");
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert!(
        asked.contains("--user daemon-reload") && asked.contains("--user enable --now gitvisor.service"),
        "{asked}"
    );
    // The unit is one gitvisor reads too (systemd-only keys are warnings).
    let o = h.run(&["validate", user.join(".config/systemd/user/gitvisor.service").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Without a user manager (the real systemctl here has none): installed, and told how.
    let o = run(&std::env::var("PATH").unwrap(), &["install-user-service"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("systemctl --user enable --now gitvisor.service"));
    let o = run(&path, &["install-user-service", "--remove"]);
    assert!(o.status.success());
    assert!(!user.join(".config/systemd/user/gitvisor.service").exists());
    assert!(std::fs::read_to_string(&calls).unwrap().contains("--user disable --now gitvisor.service"));
}

/// What can hold secrets (logs, crash reports, captures, state, locks, notification sockets) is
/// the user's only, whatever the umask: nothing under the home but the services repository and
/// the test's own files is open to group or others.
#[test]
fn nothing_the_engine_writes_is_readable_by_group_or_others() {
    let mut h = home();
    let work = h.work();
    h.sh_unit("leaky", "echo password=hunter2; exit 3", "");
    h.unit(
        "notified",
        &format!("[Service]\nType=notify\nExecStart=/bin/sleep 1000\nTimeoutStartSec=infinity\nWorkingDirectory={}\n", work.display()),
    );
    // A lax umask, as a desktop session may have.
    let old = unsafe { libc::umask(0o002) };
    h.start_daemon();
    unsafe { libc::umask(old) };
    h.run(&["start", "leaky"]);
    h.wait_for("leaky's crash report", || crate::crash_reports::reports_of(&h, "leaky").into_iter().next());
    h.ok(&["start", "notified"]);
    h.ok(&["capture", "notified"]);
    h.ok(&["stop", "notified"]);
    let mut open = Vec::new();
    let mut seen = 0;
    let skip = [h.services(), h.work(), h.path().join("daemon.log")];
    let mut stack = vec![h.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p.clone());
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            seen += 1;
            // The home itself may be listed by others (it was made by the test); what is in it not.
            if mode & 0o077 != 0 && !meta.is_symlink() {
                open.push(format!("{:o} {}", mode, p.display()));
            }
        }
    }
    assert!(seen > 8, "{seen} entries looked at");
    assert!(open.is_empty(), "open to group or others: {open:#?}");
}
