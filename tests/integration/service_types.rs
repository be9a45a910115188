//! `Type=` (oneshot, forking, notify with its watchdog), the `Exec*` family around the main
//! process (`ExecStartPost=`, `ExecStopPost=`) and the command-line prefixes `@` and `+`, against
//! real processes: each test asserts what the processes saw and did.

use gitvisor_testkit::{wait_dead, wait_file, Home};

use crate::crash_reports::{report_json, reports_of};
use crate::home;

/// A `Type=notify` service in a few lines of Python (no `systemd-notify`): it writes to
/// `$NOTIFY_SOCKET` the messages given as arguments, one datagram each; `sleep:S` waits S
/// seconds, `file:NAME` creates the file NAME in its directory first (what a test observes).
const NOTIFIER: &str = r#"
import os, socket, sys, time
addr = os.environ['NOTIFY_SOCKET']
if addr.startswith('@'):
    addr = '\0' + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for arg in sys.argv[1:]:
    if arg.startswith('sleep:'):
        time.sleep(float(arg[6:]))
    elif arg.startswith('file:'):
        open(arg[5:], 'w').close()
    else:
        s.sendto(arg.encode(), addr)
time.sleep(1000)
"#;

fn notifier(h: &Home, name: &str, args: &str, extra: &str) {
    std::fs::write(h.work().join("notifier.py"), NOTIFIER).unwrap();
    h.unit(
        name,
        &format!(
            "[Service]\nType=notify\nExecStart=/usr/bin/python3 notifier.py {args}\nWorkingDirectory={}\n{extra}\n",
            h.work().display()
        ),
    );
}

#[test]
fn a_oneshot_runs_its_commands_in_order_and_its_dependents_start_after_it() {
    let mut h = home();
    h.unit(
        "setup",
        &format!(
            "[Service]\nType=oneshot\nWorkingDirectory={w}\n\
             ExecStart=/bin/sh -c 'sleep 0.3; echo one >> order'\n\
             ExecStart=/bin/sh -c 'echo two >> order' ; -/bin/sh -c 'echo three >> order; exit 1'\n\
             ExecStart=/bin/sh -c 'echo four >> order'\nRemainAfterExit=yes\n",
            w = h.work().display()
        ),
    );
    // Starts only after setup finished: it finds all four lines.
    h.sh_unit(
        "app",
        "cp order seen-by-app; exec sleep 1000",
        "[Unit]\nRequires=setup.service\nAfter=setup.service",
    );
    h.start_daemon();
    let out = h.ok(&["start", "app"]);
    assert!(out.contains("app: running"), "{out}");
    assert_eq!(wait_file(&h.work().join("seen-by-app")), "one\ntwo\nthree\nfour\n");
    let setup = h.service("setup");
    assert_eq!((setup["state"].as_str(), setup["ready"].as_bool()), (Some("active"), Some(true)));
    assert_eq!(setup["pid"], serde_json::Value::Null, "active with no process");
    assert!(h.ok(&["status"]).contains("active (exited)"));
    // Started again while active: nothing runs; stopped: it is down.
    h.ok(&["start", "setup"]);
    assert_eq!(h.log("work/order").lines().count(), 4);
    h.ok(&["stop", "setup"]);
    assert_eq!(h.state("setup"), "stopped");
    assert_eq!(h.state("app"), "stopped", "what requires it stops with it");
}

#[test]
fn a_failing_oneshot_is_failed_and_its_later_commands_do_not_run() {
    let mut h = home();
    h.unit(
        "migrate",
        &format!(
            "[Service]\nType=oneshot\nWorkingDirectory={w}\n\
             ExecStart=/bin/sh -c 'echo first >> ran; exit 3'\nExecStart=/bin/sh -c 'echo second >> ran'\n",
            w = h.work().display()
        ),
    );
    h.sh_unit("after", "exec sleep 1000", "[Unit]\nRequires=migrate.service\nAfter=migrate.service");
    // Without RemainAfterExit= a finished oneshot has exited, its start a success.
    h.unit(
        "once",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo done > once'\nWorkingDirectory={}\n",
            h.work().display()
        ),
    );
    h.unit("slow", "[Service]\nType=oneshot\nExecStart=/bin/sleep 1000\nTimeoutStartSec=500ms\n");
    h.start_daemon();
    let out = h.run(&["start", "migrate"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let s = h.service("migrate");
    assert_eq!(s["state"], "failed");
    assert_eq!(s["error"], "exited with status 3");
    assert_eq!(h.log("work/ran"), "first\n");
    let out = h.run(&["start", "after"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("requires migrate, which did not start"), "{err}");
    assert_eq!(h.state("after"), "failed");
    let out = h.ok(&["start", "once"]);
    assert!(out.contains("once: exited"), "{out}");
    // TimeoutStartSec= bounds a oneshot's commands (none by default).
    let out = h.run(&["start", "slow"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("slow: not ready within 500ms (Type=oneshot: ExecStart= still running)"), "{err}");
    assert_eq!(h.state("slow"), "failed");
    assert_eq!(h.log("work/once"), "done\n");
    let s = h.service("once");
    assert_eq!((s["state"].as_str(), s["ready"].as_bool()), (Some("exited"), Some(true)));
}

#[test]
fn a_notify_service_is_ready_at_ready_1_and_its_dependent_waits_for_it() {
    let mut h = home();
    notifier(&h, "db", "sleep:0.5 STATUS=warming file:ready-sent READY=1", "");
    // Its dependent starts only once READY=1 was sent.
    h.sh_unit(
        "web",
        "if test -e ready-sent; then echo after > web-saw; else echo before > web-saw; fi; exec sleep 1000",
        "[Unit]\nRequires=db.service\nAfter=db.service",
    );
    h.start_daemon();
    h.ok(&["start", "web"]);
    assert_eq!(wait_file(&h.work().join("web-saw")), "after\n");
    let db = h.service("db");
    assert_eq!(db["ready"], true);
    assert_eq!(db["service_type"], "notify");
    assert_eq!(db["status_text"], "warming");
    h.ok(&["stop", "db"]);
    assert_eq!(h.service("db")["status_text"], serde_json::Value::Null, "it went with the process");
    assert!(h.log("logs/db.log").contains("ready (Type=notify, READY=1)"));
}

#[test]
fn a_notify_service_that_never_says_ready_fails_its_start_at_the_timeout() {
    let mut h = home();
    notifier(&h, "mute", "STATUS=thinking", "TimeoutStartSec=700ms");
    h.start_daemon();
    let out = h.run(&["start", "--wait", "mute"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not ready within 700ms (Type=notify, READY=1)"), "{err}");
}

#[test]
fn a_missed_watchdog_kills_the_service_with_sigabrt_and_writes_a_report() {
    let mut h = home();
    // Pings three times within its 600 ms watchdog, then falls silent.
    notifier(
        &h,
        "dog",
        "READY=1 WATCHDOG=1 sleep:0.3 WATCHDOG=1 sleep:0.3 WATCHDOG=1",
        "WatchdogSec=600ms\nRestart=on-watchdog\nRestartSec=10s",
    );
    h.start_daemon();
    h.ok(&["start", "dog"]);
    let pid = h.pid("dog").unwrap();
    let s = h.wait_state("dog", "backoff");
    assert_eq!(s["error"], "watchdog: no WATCHDOG=1 within 600ms");
    wait_dead(pid);
    let exit = &s["last_exit"];
    assert_eq!(exit["signal"], libc::SIGABRT, "{exit}");
    let report = h.wait_for("the watchdog's crash report", || reports_of(&h, "dog").into_iter().next());
    let json = report_json(&report);
    assert_eq!(json["reason"], "watchdog: no WATCHDOG=1 within 600ms (killed by SIGABRT)", "{json}");
    let log = h.log("logs/dog.log");
    assert!(log.contains("watchdog: no WATCHDOG=1 within 600ms: killing it with SIGABRT"), "{log}");
}

#[test]
fn exec_start_post_and_exec_stop_post_run_around_the_main_process_told_how_it_ended() {
    let mut h = home();
    let post = "ExecStartPost=/bin/sh -c 'echo post $$MAINPID >> events'\n\
                ExecStopPost=/bin/sh -c 'echo stop-post $$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS >> events'";
    h.sh_unit("crasher", "echo main $$$$ >> events; sleep 1000 & wait", post);
    h.sh_unit("badpost", "exec sleep 1000", "ExecStartPost=/bin/sh -c 'exit 5'");
    h.start_daemon();
    h.ok(&["start", "crasher"]);
    let pid = h.pid("crasher").unwrap();
    // Post runs once it started (Type=simple: at once, beside the main process's own first line).
    h.wait_until("both lines", || h.log("work/events").lines().count() == 2);
    let mut lines: Vec<String> = h.log("work/events").lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, [format!("main {pid}"), format!("post {pid}")]);
    // A crash: ExecStopPost= hears of the exit status.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGUSR1).ok();
    h.wait_until("ExecStopPost ran", || h.log("work/events").contains("stop-post"));
    assert!(h.log("work/events").ends_with("stop-post signal killed USR1\n"), "{}", h.log("work/events"));
    // A stop: success, and the signal it got.
    h.ok(&["start", "crasher"]);
    h.ok(&["stop", "crasher"]);
    assert!(h.log("work/events").ends_with("stop-post success killed TERM\n"), "{}", h.log("work/events"));
    // An ExecStartPost= that fails fails the start and ends the main process.
    let out = h.run(&["start", "badpost"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("badpost: ExecStartPost /bin/sh -c \"exit 5\" exited with status 5"), "{err}");
    assert_eq!(h.state("badpost"), "failed");
}

#[test]
fn a_forking_service_is_its_daemon_from_its_pid_file_or_the_one_process_left() {
    let mut h = home();
    // The classic start script: the daemon in the background, its pid in a file, exit 0.
    h.sh_unit(
        "daemon",
        "sleep 1000 & echo $$! > daemon.pid; echo started",
        &format!("Type=forking\nPIDFile={}/daemon.pid", h.work().display()),
    );
    h.sh_unit("guessed", "sleep 1000 & exit 0", "Type=forking");
    h.sh_unit("broken", "exit 4", "Type=forking");
    h.start_daemon();
    h.ok(&["start", "daemon", "guessed"]);
    let pid: u32 = h.log("work/daemon.pid").trim().parse().unwrap();
    assert_eq!(h.pid("daemon"), Some(pid));
    assert_eq!(h.state("daemon"), "running");
    let guessed = h.pid("guessed").unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{guessed}/comm")).unwrap().trim(), "sleep");
    // The daemon's end is the service's.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    h.wait_state("daemon", "exited");
    h.ok(&["stop", "guessed"]);
    wait_dead(guessed);
    let out = h.run(&["start", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Type=forking: the start process exited with status 4"), "{err}");
}

#[test]
fn an_exec_failure_is_a_start_failure_with_its_errno() {
    let mut h = home();
    // Executable, but its interpreter does not exist: exec(2) fails with ENOENT.
    let script = h.work().join("broken.sh");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for kind in ["exec", "simple"] {
        h.unit(kind, &format!("[Service]\nType={kind}\nExecStart={}\n", script.display()));
    }
    h.start_daemon();
    for kind in ["exec", "simple"] {
        let out = h.run(&["start", kind]);
        assert_eq!(out.status.code(), Some(1), "{kind}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot start {}: No such file or directory", script.display())),
            "{err}"
        );
        assert_eq!(h.state(kind), "failed");
    }
}

#[test]
fn the_at_prefix_gives_the_program_its_argv0() {
    let mut h = home();
    h.unit(
        "named",
        &format!(
            "[Service]\nExecStart=@/bin/sh my-name -c 'echo $$0 > arg0; exec sleep 1000'\nWorkingDirectory={}\n",
            h.work().display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "named"]);
    assert_eq!(wait_file(&h.work().join("arg0")), "my-name\n");
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn the_plus_prefix_runs_a_command_with_the_engines_credentials() {
    crate::need_root("dropping to User=nobody");
    let mut h = home();
    std::fs::set_permissions(h.work(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    h.sh_unit(
        "dropped",
        "id -u > main-uid; exec sleep 1000",
        "User=nobody\nExecStartPre=+/bin/sh -c 'id -u > pre-uid'",
    );
    h.start_daemon();
    h.ok(&["start", "dropped"]);
    assert_eq!(wait_file(&h.work().join("pre-uid")), "0\n");
    assert_eq!(wait_file(&h.work().join("main-uid")), "65534\n");
}

/// systemd: "the stop operation is always performed if the service started successfully, even
/// if the processes in the service terminated on their own" — ExecStop= (without $MAINPID),
/// then ExecStopPost=; for a oneshot without RemainAfterExit= right after its commands.
#[test]
fn a_service_that_ends_by_itself_still_gets_its_stop_commands() {
    let mut h = home();
    let stops = "ExecStop=/bin/sh -c 'echo stop [$$MAINPID] >> events'\nExecStopPost=/bin/sh -c 'echo post $$SERVICE_RESULT >> events'";
    h.sh_unit("crashes", "exec sleep 1000", stops);
    h.unit(
        "job",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> job-events'\n\
             ExecStop=/bin/sh -c 'echo stop >> job-events'\nExecStopPost=/bin/sh -c 'echo post $$SERVICE_RESULT >> job-events'\n\
             WorkingDirectory={}\n",
            h.work().display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "crashes"]);
    let pid = h.pid("crashes").unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    h.wait_until("the stop commands", || h.log("work/events").lines().count() == 2);
    assert_eq!(h.log("work/events"), "stop []\npost signal\n");
    h.ok(&["start", "job"]);
    assert_eq!(h.log("work/job-events"), "ran\nstop\npost success\n");
    assert_eq!(h.state("job"), "exited");
}
