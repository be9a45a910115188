//! Start, stop, restart of real processes through a real daemon.

use gitvisor_testkit::{alive, wait_dead, wait_file, wait_line};

use crate::home;

#[test]
fn start_stop_restart_real_processes() {
    let mut h = home();
    h.sh_unit("sleeper", "echo hello; exec sleep 1000", "");
    h.start_daemon();
    assert_eq!(h.state("sleeper"), "stopped", "not enabled: registered only");
    let out = h.ok(&["start", "sleeper"]);
    assert!(out.starts_with("sleeper: running (pid "), "{out}");
    let pid = h.pid("sleeper").unwrap();
    assert!(alive(pid));

    h.ok(&["restart", "sleeper"]);
    let pid2 = h.pid("sleeper").unwrap();
    assert_ne!(pid, pid2);
    wait_dead(pid);

    h.ok(&["stop", "sleeper"]);
    assert_eq!(h.state("sleeper"), "stopped");
    wait_dead(pid2);
    assert_eq!(h.service("sleeper")["pid"], serde_json::Value::Null);
}

#[test]
fn enabled_units_start_with_the_engine_and_stop_with_it() {
    let mut h = home();
    h.sh_unit("a", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.sh_unit("b", "exec sleep 1000", "");
    h.start_daemon();
    h.wait_state("a", "running");
    assert_eq!(h.state("b"), "stopped");
    let pid = h.pid("a").unwrap();
    assert_eq!(h.stop_daemon(), Some(0));
    wait_dead(pid);
}

#[test]
fn restart_policies() {
    let mut h = home();
    let fast = "RestartSec=0\nStartLimitIntervalSec=0";
    h.sh_unit("no", "exit 1", &format!("Restart=no\n{fast}"));
    h.sh_unit("onfail-ok", "exit 0", &format!("Restart=on-failure\n{fast}"));
    h.sh_unit("onfail-bad", "sleep 0.05; exit 1", &format!("Restart=on-failure\n{fast}"));
    h.sh_unit("onsuccess", "sleep 0.05; exit 0", &format!("Restart=on-success\n{fast}"));
    h.sh_unit("abnormal-code", "exit 2", &format!("Restart=on-abnormal\n{fast}"));
    h.sh_unit("abnormal-sig", "sleep 0.05; kill -SEGV $$$$", &format!("Restart=on-abnormal\n{fast}"));
    h.sh_unit("always", "sleep 0.05; exit 0", &format!("Restart=always\n{fast}"));
    h.start_daemon();
    let all = ["no", "onfail-ok", "onfail-bad", "onsuccess", "abnormal-code", "abnormal-sig", "always"];
    // Each start succeeds: the process runs; what it does after is the policy's business.
    h.ok(&[&["start"][..], &all[..]].concat());
    for name in ["onfail-bad", "onsuccess", "abnormal-sig", "always"] {
        h.wait_until(&format!("{name} restarts"), || h.service(name)["restarts"].as_u64().unwrap() >= 2);
    }
    for name in ["no", "onfail-ok", "abnormal-code"] {
        let s = h.wait_state(name, "exited");
        assert_eq!(s["restarts"], 0, "{name}: {s:#}");
    }
    assert_eq!(h.service("no")["error"], "exited with status 1");
    assert_eq!(h.service("onfail-ok")["error"], serde_json::Value::Null);
    assert_eq!(h.service("abnormal-code")["last_exit"]["code"], 2);
}

#[test]
fn restart_delay_is_observed() {
    let mut h = home();
    let marks = h.work().join("marks");
    h.sh_unit(
        "slow",
        &format!("date +%%s%%N >> {}; exit 1", marks.display()),
        "Restart=always\nRestartSec=300ms\nStartLimitIntervalSec=0",
    );
    h.start_daemon();
    h.ok(&["start", "slow"]);
    h.wait_until("three starts", || {
        std::fs::read_to_string(&marks).map(|s| s.lines().count() >= 3).unwrap_or(false)
    });
    h.ok(&["stop", "slow"]);
    let times: Vec<u128> =
        std::fs::read_to_string(&marks).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    for w in times.windows(2) {
        let gap_ms = (w[1] - w[0]) / 1_000_000;
        assert!(gap_ms >= 290, "restarted after {gap_ms} ms, RestartSec=300ms");
    }
}

#[test]
fn start_limit_puts_a_crash_loop_in_failed() {
    let mut h = home();
    h.sh_unit("loop", "exit 1", "Restart=always\nRestartSec=0\nStartLimitIntervalSec=60\nStartLimitBurst=3");
    h.start_daemon();
    h.ok(&["start", "loop"]);
    let s = h.wait_state("loop", "failed");
    assert!(
        s["error"].as_str().unwrap().starts_with("start limit hit: more than 3 starts within 1m"),
        "{s:#}"
    );
    let spent = s["restarts"].as_u64().unwrap();
    // A user's start gives it a fresh budget: the start itself is allowed (with the budget
    // spent it would be refused at once, "start limit hit"), and the loop runs its three
    // starts again before it fails.
    let out = h.ok(&["start", "loop"]);
    assert!(out.starts_with("loop: running (pid "), "{out}");
    let s = h.wait_state("loop", "failed");
    assert_eq!(
        s["restarts"].as_u64().unwrap(),
        spent * 2,
        "the same loop again, counted the same way: {s:#}"
    );
}

#[test]
fn stop_cleans_every_process_of_the_service() {
    let mut h = home();
    let w = h.work();
    let pids = w.join("pids");
    // The main process forks a grandchild that ignores SIGTERM.
    std::fs::write(
        w.join("grandchild.sh"),
        format!("trap '' TERM\necho $$ > {}\nwhile true; do sleep 0.1; done\n", pids.display()),
    )
    .unwrap();
    h.sh_unit("forker", &format!("/bin/sh {}/grandchild.sh & wait", w.display()), "TimeoutStopSec=500ms");
    h.start_daemon();
    h.ok(&["start", "forker"]);
    let grandchild: u32 = wait_file(&pids).trim().parse().unwrap();
    let main = h.pid("forker").unwrap();
    assert!(alive(grandchild));
    h.ok(&["stop", "forker"]);
    wait_dead(main);
    wait_dead(grandchild);
}

#[test]
fn exec_stop_runs_before_the_signal() {
    let mut h = home();
    let marker = h.work().join("stopped-by");
    h.sh_unit(
        "graceful",
        "exec sleep 1000",
        &format!("ExecStop=/bin/sh -c 'echo $MAINPID > {}'", marker.display()),
    );
    h.start_daemon();
    h.ok(&["start", "graceful"]);
    let pid = h.pid("graceful").unwrap();
    h.ok(&["stop", "graceful"]);
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), pid.to_string());
    wait_dead(pid);
}

#[test]
fn several_exec_stop_commands_run_in_order_and_one_past_the_timeout_ends_the_list() {
    let mut h = home();
    h.sh_unit(
        "ordered",
        "exec sleep 1000",
        "ExecStop=/bin/sh -c 'echo first >> stops'\nExecStop=/bin/sh -c 'echo second >> stops' ; /bin/sh -c 'echo third >> stops'",
    );
    h.sh_unit(
        "slowstop",
        "exec sleep 1000",
        "ExecStop=/bin/sh -c 'echo slow >> slowstops; exec sleep 1000'\nExecStop=/bin/sh -c 'echo never >> slowstops'\n\
         TimeoutStopSec=300ms",
    );
    h.start_daemon();
    h.ok(&["start", "ordered", "slowstop"]);
    h.ok(&["stop", "ordered"]);
    assert_eq!(h.log("work/stops"), "first\nsecond\nthird\n");
    let pid = h.pid("slowstop").unwrap();
    h.ok(&["stop", "slowstop"]);
    wait_dead(pid);
    // The time was up during the first: the rest is not run, the signal takes over.
    assert_eq!(h.log("work/slowstops"), "slow\n");
}

#[test]
fn an_exec_stop_that_cannot_start_is_logged_and_the_stop_goes_on() {
    let mut h = home();
    h.sh_unit("nostop", "exec sleep 1000", "ExecStop=/nonexistent/stopper");
    h.start_daemon();
    h.ok(&["start", "nostop"]);
    let pid = h.pid("nostop").unwrap();
    assert_eq!(h.ok(&["stop", "nostop"]).trim(), "nostop: stopped");
    wait_dead(pid);
    wait_line(&h.path().join("logs/nostop.log"), |l| {
        l.contains("ExecStop failed") && l.contains("/nonexistent/stopper")
    });
}

#[test]
fn an_exec_stop_that_hangs_is_killed_at_the_stop_timeout() {
    let mut h = home();
    let pids = h.work().join("stopper-pid");
    h.sh_unit(
        "hangs",
        "exec sleep 1000",
        &format!(
            "ExecStop=/bin/sh -c 'echo $$$$ > {}; exec sleep 1000'\nTimeoutStopSec=300ms",
            pids.display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "hangs"]);
    let pid = h.pid("hangs").unwrap();
    assert_eq!(h.ok(&["stop", "hangs"]).trim(), "hangs: stopped");
    wait_dead(pid);
    // The stop command's process is gone too: nothing of the service outlives its stop.
    let stopper: u32 = gitvisor_testkit::wait_file(&pids).trim().parse().unwrap();
    wait_dead(stopper);
}

#[test]
fn what_an_exited_main_process_leaves_in_its_group_is_killed() {
    let mut h = home();
    let child = h.work().join("child-pid");
    h.sh_unit("leaver", &format!("sleep 1000 & echo $! > {}; exit 1", child.display()), "Restart=no");
    h.start_daemon();
    h.ok(&["start", "leaver"]);
    h.wait_state("leaver", "exited");
    let pid: u32 = gitvisor_testkit::wait_file(&child).trim().parse().unwrap();
    wait_dead(pid);
}

#[test]
fn dependencies_start_in_order_observed_from_the_processes() {
    let mut h = home();
    let w = h.work();
    // Each process records which of the units it follows already run (their programs are
    // exec'd: a process shows its unit's tag in its command line only after exec). A unit
    // starts once what it follows has started, so each must see all of them; when each
    // process gets to run its first line is the scheduler's business, so no clock is compared.
    let seen = |name: &str, follows: &[&str]| {
        let checks: Vec<String> = follows
            .iter()
            .map(|f| {
                let bracketed = format!("[{}]{}", &f[..1], &f[1..]);
                format!(
                    "pgrep -f \"unit-tag-{bracketed}\" >/dev/null && echo {f} >> {}/{name}-saw;",
                    w.display()
                )
            })
            .collect();
        format!(
            ": unit-tag-{name}; {} echo done > {}/{name}-done; while :; do sleep 1; done",
            checks.concat(),
            w.display()
        )
    };
    h.sh_unit("db", &seen("db", &[]), "");
    h.sh_unit("cache", &seen("cache", &[]), "");
    h.sh_unit("api", &seen("api", &["db", "cache"]), "[Unit]\nRequires=db\nWants=cache\nAfter=db cache");
    h.sh_unit(
        "web",
        &seen("web", &["api", "db"]),
        "[Unit]\nRequires=api\nAfter=api\n[Install]\nWantedBy=default.target",
    );
    h.start_daemon();
    for n in ["db", "cache", "api", "web"] {
        h.wait_state(n, "running");
        wait_file(&w.join(format!("{n}-done")));
    }
    let saw = |n: &str| std::fs::read_to_string(w.join(format!("{n}-saw"))).unwrap_or_default();
    // Each process records its own start; the ExecStart order is what matters, so compare the
    // spawn order through the pids' start times as well.
    let start_time = |n: &str| -> u64 {
        let pid = h.pid(n).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit(')').next().unwrap().split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    assert!(start_time("db") <= start_time("api") && start_time("cache") <= start_time("api"));
    assert!(start_time("api") <= start_time("web"));
    assert_eq!(saw("api").lines().collect::<Vec<_>>(), ["db", "cache"], "api started after db and cache");
    assert_eq!(saw("web").lines().collect::<Vec<_>>(), ["api", "db"], "web started after api");

    // Stopping db stops what requires it (api, then web), dependents first.
    let out = h.ok(&["stop", "db"]);
    assert!(out.contains("db: stopped"), "{out}");
    for n in ["web", "api", "db"] {
        assert_eq!(h.state(n), "stopped", "{n}");
    }
    assert_eq!(h.state("cache"), "running", "Wants= does not propagate stops");
}

#[test]
fn a_cycle_is_reported_and_only_its_units_stay_down() {
    let mut h = home();
    h.sh_unit("x", "exec sleep 1000", "[Unit]\nRequires=y\nAfter=y\n[Install]\nWantedBy=default.target");
    h.sh_unit("y", "exec sleep 1000", "[Unit]\nRequires=x\nAfter=x\n[Install]\nWantedBy=default.target");
    h.sh_unit("free", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    h.wait_state("free", "running");
    let status = h.status();
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("dependency cycle") && problems.contains('x') && problems.contains('y'),
        "{problems}"
    );
    for n in ["x", "y"] {
        let s = h.service(n);
        assert_ne!(s["state"], "running");
        assert!(s["error"].as_str().unwrap_or("").contains("cycle"), "{s:#}");
    }
    let o = h.run(&["start", "x"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_missing_requirement_fails_the_dependent_only() {
    let mut h = home();
    h.sh_unit("lonely", "exec sleep 1000", "[Unit]\nRequires=ghost");
    h.start_daemon();
    let o = h.run(&["start", "lonely"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("requires ghost, which does not exist"), "{err}");
    assert_eq!(h.state("lonely"), "failed");
}

#[test]
fn spawn_errors_are_failed_with_a_clear_reason() {
    let mut h = home();
    h.unit("nobin", "[Service]\nExecStart=/nonexistent/program\n");
    h.unit("nodir", "[Service]\nExecStart=/bin/true\nWorkingDirectory=/nonexistent/dir\n");
    h.start_daemon();
    let o = h.run(&["start", "nobin"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/program is not an executable file"));
    assert_eq!(h.state("nobin"), "failed");
    let o = h.run(&["start", "nodir"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("WorkingDirectory /nonexistent/dir"));
}

#[test]
fn environment_is_clean_plus_the_unit_s() {
    let mut h = home();
    let out = h.work().join("env");
    std::fs::write(h.work().join("vars"), "FROM_FILE=yes\nSHARED=file\n").unwrap();
    h.sh_unit(
        "env",
        &format!("env > {}; exec sleep 1000", out.display()),
        &format!("Environment=\"GREETING=hello world\" SHARED=unit\nEnvironmentFile={0}/vars\nEnvironmentFile=-{0}/missing.env", h.work().display()),
    );
    h.start_daemon();
    h.ok(&["start", "env"]);
    let env = wait_file(&out);
    assert!(env.lines().any(|l| l == "GREETING=hello world"), "{env}");
    assert!(env.lines().any(|l| l == "FROM_FILE=yes"), "{env}");
    assert!(env.lines().any(|l| l == "SHARED=file"), "EnvironmentFile overrides Environment: {env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")));
    assert!(!env.lines().any(|l| l.starts_with("GITVISOR_HOME=")), "the engine's environment leaked: {env}");
}

#[test]
fn a_restart_while_stopping_answers_stop_in_progress() {
    let mut h = home();
    // Ignores SIGTERM and ends only when the test lets it: the stop lasts as long as the test
    // needs, however slow the machine (TimeoutStopSec is far beyond the test's deadline).
    let release = h.work().join("release");
    h.sh_unit(
        "stubborn",
        &format!("trap \"\" TERM; while [ ! -e {} ]; do sleep 0.05; done", release.display()),
        "TimeoutStopSec=1h",
    );
    h.start_daemon();
    h.ok(&["start", "stubborn"]);
    let mut stopper = h.cmd().args(["stop", "stubborn"]).spawn().unwrap();
    h.wait_state("stubborn", "stopping");
    let o = h.run(&["restart", "stubborn"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stop in progress on stubborn"), "{err}");
    std::fs::write(&release, "").unwrap();
    let status = gitvisor_testkit::wait_exit(&mut stopper, "gitvisor stop");
    assert!(status.success());
    assert_eq!(h.state("stubborn"), "stopped");
}

#[test]
fn templates_run_instances() {
    let mut h = home();
    let w = h.work();
    h.unit("echo@", &format!("[Service]\nExecStart=/bin/sh -c 'echo %i > {}/%i; exec sleep 1000'\n[Install]\nDefaultInstance=first\n", w.display()));
    h.start_daemon();
    assert_eq!(wait_file(&w.join("first")).trim(), "first");
    h.ok(&["start", "echo@second"]);
    assert_eq!(wait_file(&w.join("second")).trim(), "second");
    let o = h.run(&["start", "nothing@here"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no service named nothing@here"));
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn user_and_group_drop_privileges_when_root() {
    crate::need_root("dropping to another user");
    let mut h = home();
    let out = h.work().join("id");
    // The output file is created by the test so the dropped user can write it.
    std::fs::write(&out, "").unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    std::fs::set_permissions(h.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(h.work(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    h.sh_unit(
        "dropped",
        &format!("echo $(id -u) $(id -g) $(id -G) > {}; exec sleep 1000", out.display()),
        "User=nobody\nGroup=nogroup",
    );
    h.unit("nouser", "[Service]\nExecStart=/bin/true\nUser=no-such-user-xyz\n");
    // No WorkingDirectory=: nobody's home (/nonexistent) is missing; systemd starts it in /.
    h.unit("homeless", "[Service]\nExecStart=/bin/sleep 1000\nUser=nobody\n");
    h.start_daemon();
    h.ok(&["start", "homeless"]);
    let pid = h.wait_state("homeless", "running")["pid"].as_u64().unwrap();
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), std::path::Path::new("/"));
    h.ok(&["start", "dropped"]);
    let ids = wait_file(&out);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(&ids[..2], &["65534", "65534"], "{ids:?}");
    assert!(!ids[2..].contains(&"0"), "root's groups were kept: {ids:?}");
    let o = h.run(&["start", "nouser"]);
    assert_eq!(o.status.code(), Some(1));
    // Refused where it is read, at its line, rather than at a start.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "nouser is invalid: nouser.service:3: User: no user named \"no-such-user-xyz\" on this machine"
        ),
        "{err}"
    );
}

#[test]
fn command_lines_are_substituted_as_systemd_does() {
    let mut h = home();
    // systemd.service(5)'s example, and its `$$` case: the process sees what systemd gives it.
    let env = "Environment=\"ONE=one\" 'TWO=two two'\nEnvironment=VAR1=\"word1 word2\"\n";
    h.unit(
        "echoes",
        &format!(
            "[Service]\nExecStart=/usr/bin/printf '[%%s]\\n' $ONE $TWO ${{TWO}} \"$$ONE\"\n{env}WorkingDirectory={}\n",
            h.work().display()
        ),
    );
    h.unit("tested", &format!("[Service]\nExecStart=/bin/sh -c 'test \"$$VAR1\" = \"word1 word2\"'\n{env}"));
    h.unit("literal", &format!("[Service]\nExecStart=:/usr/bin/printf '[%%s]\\n' $ONE ${{TWO}}\n{env}"));
    h.start_daemon();
    h.ok(&["start", "echoes", "tested", "literal"]);
    for name in ["echoes", "tested", "literal"] {
        h.wait_state(name, "exited");
    }
    let said = |name: &str| -> Vec<String> {
        h.log(&format!("logs/{name}.log"))
            .lines()
            .filter_map(|l| l.split_once(" out ").map(|(_, t)| t.to_string()))
            .collect()
    };
    assert_eq!(said("echoes"), ["[one]", "[two]", "[two]", "[two two]", "[$ONE]"]);
    assert_eq!(h.service("tested")["last_exit"]["code"], 0, "the shell saw $VAR1 as word1 word2");
    // `:`: nothing substituted.
    assert_eq!(said("literal"), ["[$ONE]", "[${TWO}]"]);
}

#[test]
fn starting_an_invalid_unit_says_why_and_where() {
    let mut h = home();
    h.unit("broken", "[Service]\nExecStart=/bin/true\nRestart=sometimes\n");
    h.start_daemon();
    let out = h.run(&["start", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken is invalid: broken.service:3: Restart:"), "{err}");
    assert!(!err.contains("no service named"), "{err}");
}

#[test]
fn environment_files_are_read_as_systemd_reads_them() {
    let mut h = home();
    // Not a `.env` name: systemd's dialect.
    let file = h.work().join("app.conf");
    std::fs::write(
        &file,
        "# settings\nA=  spaced  out  \nnot an assignment\nB='first\nsecond'\nC=back\\\\slash\\\n-joined\n\
         D=\"say \\\"hi\\\"\"\nexport E=1\n",
    )
    .unwrap();
    h.unit(
        "reader",
        &format!(
            "[Service]\nExecStart=/usr/bin/printf '[%%s]\\n' ${{A}} ${{B}} ${{C}} ${{D}} \"${{E}}\"\nEnvironmentFile={}\n",
            file.display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "reader"]);
    h.wait_state("reader", "exited");
    let log = h.log("logs/reader.log");
    let out: Vec<&str> = log.lines().filter_map(|l| l.split_once(" out ").map(|(_, t)| t)).collect();
    assert_eq!(
        out,
        ["[spaced  out]", "[first", "second]", "[back\\slash-joined]", "[say \"hi\"]", "[]"],
        "{log}"
    );
    let at = file.display();
    assert!(
        log.contains(&format!(
            "gitvisor EnvironmentFile {at}: line 3: no '=' in \"not an assignment\": skipped"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "gitvisor EnvironmentFile {at}: line 9: invalid variable name \"export E\": skipped"
        )),
        "{log}"
    );
}

#[test]
fn dotenv_files_layer_and_expand() {
    let mut h = home();
    let w = h.work();
    std::fs::write(
        w.join(".env"),
        "# defaults\nexport GREETING=\"hello ${WHO}\"\nPORT=8080 # the web port\nSHARED=from-env\n\
         URL=http://localhost:$PORT/api\nLITERAL='$PORT stays'\nPRICE=\\$5\nbroken line\nMISSING=[$NOPE]\n",
    )
    .unwrap();
    std::fs::write(w.join(".env.local"), "SHARED=from-local\nLOCAL_URL=${URL}/v2\nQUOTED=\"never closed\n")
        .unwrap();
    let out = w.join("env");
    h.sh_unit(
        "app",
        &format!("env > {}; exec sleep 1000", out.display()),
        &format!(
            "Environment=WHO=world SHARED=unit\nEnvironmentFile={0}/.env\nEnvironmentFile=-{0}/.env.local\n\
             EnvironmentFile=-{0}/.env.missing",
            w.display()
        ),
    );
    h.start_daemon();
    h.ok(&["start", "app"]);
    let env = wait_file(&out);
    for line in [
        "GREETING=hello world",
        "PORT=8080",
        "SHARED=from-local",
        "URL=http://localhost:8080/api",
        "LOCAL_URL=http://localhost:8080/api/v2",
        "LITERAL=$PORT stays",
        "PRICE=$5",
        "MISSING=[]",
        "WHO=world",
    ] {
        assert!(env.lines().any(|l| l == line), "no {line:?} in:\n{env}");
    }
    assert!(!env.contains("QUOTED="), "{env}");
    // Bad lines are named with their file and line in the service's log.
    let at = |f: &str| w.join(f).display().to_string();
    for note in [
        format!("EnvironmentFile {}: line 8: no '=' in \"broken line\": skipped", at(".env")),
        format!("EnvironmentFile {}: line 3: unterminated double quote: skipped", at(".env.local")),
    ] {
        h.wait_until(&format!("{note:?} in the log"), || h.log("logs/app.log").contains(&note));
    }
}

#[test]
fn exit_status_lists_decide_as_systemd_does() {
    let mut h = home();
    let fast = "RestartSec=0";
    h.sh_unit("tempfail", "exit 75", &format!("SuccessExitStatus=TEMPFAIL\nRestart=on-failure\n{fast}"));
    h.sh_unit("prevented", "exit 3", &format!("RestartPreventExitStatus=3\nRestart=always\n{fast}"));
    // Exits 0 twice, then stays: forced back each time although Restart=no.
    h.sh_unit(
        "forced",
        "n=$(cat runs 2>/dev/null | wc -l); echo x >> runs; if [ $n -ge 2 ]; then exec sleep 1000; fi; exit 0",
        &format!("RestartForceExitStatus=0\n{fast}"),
    );
    h.start_daemon();
    h.ok(&["start", "tempfail", "prevented", "forced"]);
    let s = h.wait_state("tempfail", "exited");
    assert_eq!(
        (&s["last_exit_class"], &s["restarts"], &s["error"]),
        (&"clean".into(), &0.into(), &serde_json::Value::Null),
        "{s:#}"
    );
    let s = h.wait_state("prevented", "exited");
    assert_eq!((&s["last_exit_class"], &s["restarts"]), (&"failure".into(), &0.into()), "{s:#}");
    let s = h.wait_for("forced to stay up on its third run", || {
        let s = h.service("forced");
        (s["restarts"] == 2 && s["state"] == "running").then_some(s)
    });
    assert_eq!(s["last_exit"]["code"], 0, "{s:#}");
}

#[test]
fn conditions_skip_a_start_and_assertions_fail_it() {
    let mut h = home();
    let flag = h.work().join("enabled-flag");
    h.sh_unit("gated", "exec sleep 1000", "");
    // Conditions live in [Unit]: written as the file's first section.
    let unit =
        format!("[Unit]\nConditionPathExists={}\n{}", flag.display(), h.sh_unit_text("exec sleep 1000", ""));
    h.unit("gated", &unit);
    h.unit(
        "asserted",
        &format!("[Unit]\nAssertPathExists=/nonexistent/needed\n{}", h.sh_unit_text("exec sleep 1000", "")),
    );
    // What wants the skipped unit still starts.
    h.unit("user", &format!("[Unit]\nWants=gated\nAfter=gated\n{}", h.sh_unit_text("exec sleep 1000", "")));
    h.start_daemon();
    let out = h.ok(&["start", "user"]);
    let why = format!("start skipped: ConditionPathExists={} was not met", flag.display());
    assert!(out.contains(&format!("gated: stopped — {why}; started because user wants it")), "{out}");
    assert_eq!(h.state("user"), "running");
    let s = h.service("gated");
    assert_eq!((&s["state"], &s["error"]), (&"stopped".into(), &why.clone().into()), "{s:#}");
    // Met now: it starts, and the skip is forgotten.
    std::fs::write(&flag, "").unwrap();
    h.ok(&["start", "gated"]);
    assert_eq!(h.service("gated")["error"], serde_json::Value::Null);
    // Unmet again: a restart stops it and skips the start.
    std::fs::remove_file(&flag).unwrap();
    h.ok(&["restart", "gated"]);
    assert_eq!(h.state("gated"), "stopped");
    let out = h.run(&["start", "asserted"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("asserted: AssertPathExists=/nonexistent/needed was not met"), "{err}");
    assert_eq!(h.state("asserted"), "failed");
}

#[test]
fn conditions_are_checked_again_at_an_automatic_restart() {
    let mut h = home();
    let flag = h.work().join("go");
    std::fs::write(&flag, "").unwrap();
    let text = h.sh_unit_text("exec sleep 1000", "Restart=always\nRestartSec=0");
    h.unit("looping", &format!("[Unit]\nConditionPathExists={}\n{text}", flag.display()));
    h.start_daemon();
    h.ok(&["start", "looping"]);
    let pid = h.pid("looping").unwrap();
    // The condition stops holding, then the process dies: the restart is skipped, not failed.
    std::fs::remove_file(&flag).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let s = h.wait_state("looping", "stopped");
    let why = format!("start skipped: ConditionPathExists={} was not met", flag.display());
    assert_eq!(s["error"], why.as_str(), "{s:#}");
    assert!(h.log("logs/looping.log").contains(&why));
}

#[test]
fn reload_runs_exec_reload_or_sends_sighup_and_the_service_keeps_running() {
    let mut h = home();
    // Counts SIGHUPs it gets.
    h.sh_unit("hup", "trap 'echo got hup >> hups' HUP; touch trapped; while :; do sleep 0.05; done", "");
    // ExecReload= gets $MAINPID; a failing one fails the reload.
    h.sh_unit("scripted", "exec sleep 1000", "ExecReload=/bin/sh -c 'echo reload of $MAINPID >> reloads'");
    h.sh_unit("failing", "exec sleep 1000", "ExecReload=/bin/sh -c 'exit 4'");
    h.sh_unit("down", "exit 0", "");
    h.start_daemon();
    h.ok(&["start", "hup", "scripted", "failing"]);
    let hup = h.pid("hup").unwrap();
    // Before its trap is set, a SIGHUP would end it.
    h.wait_until("hup's trap is set", || h.work().join("trapped").exists());
    h.ok(&["reload", "hup"]);
    h.wait_until("the SIGHUP is handled", || h.log("work/hups").contains("got hup"));
    let scripted = h.pid("scripted").unwrap();
    h.ok(&["reload", "scripted"]);
    // Answered once the command has finished.
    assert_eq!(h.log("work/reloads").trim(), format!("reload of {scripted}"));
    let out = h.run(&["reload", "failing"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failing: ExecReload /bin/sh -c \"exit 4\" exited with status 4"), "{err}");
    let out = h.run(&["reload", "down"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("down: cannot reload: it is stopped"));
    // Nobody was restarted.
    assert_eq!((h.pid("hup"), h.pid("scripted")), (Some(hup), Some(scripted)));
    assert_eq!(h.state("failing"), "running");
}

#[test]
fn exec_start_pre_runs_in_order_before_the_main_process_and_a_failure_fails_the_start() {
    let mut h = home();
    h.sh_unit(
        "prepared",
        "echo main >> order; exec sleep 1000",
        "ExecStartPre=/bin/sh -c 'echo first >> order'\nExecStartPre=-/bin/sh -c 'echo second >> order; exit 1'\n\
         ExecStartPre=/bin/sh -c 'echo third >> order'",
    );
    h.sh_unit("unprepared", "exec sleep 1000", "ExecStartPre=/bin/sh -c 'exit 2'");
    h.start_daemon();
    h.ok(&["start", "prepared"]);
    h.wait_until("the main process's line", || h.log("work/order").contains("main"));
    assert_eq!(
        h.log("work/order"),
        "first\nsecond\nthird\nmain\n",
        "the `-` prefix let the failing one pass"
    );
    let out = h.run(&["start", "unprepared"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unprepared: ExecStartPre /bin/sh -c \"exit 2\" exited with status 2"), "{err}");
    assert_eq!(h.state("unprepared"), "failed");
}

#[test]
fn pass_and_unset_environment_as_systemd_orders_them() {
    let mut h = home();
    h.unit(
        "envy",
        "[Service]\nExecStart=/usr/bin/printf '[%%s]\\n' \"${GV_PASSED}\" \"${GV_NOT_PASSED}\" \"${KEEP}\" \"${DROP}\" \"${PAIR}\" \"${OVER}\"\n\
         PassEnvironment=GV_PASSED GV_MISSING OVER\nEnvironment=KEEP=1 DROP=2 PAIR=a OVER=unit\n\
         UnsetEnvironment=DROP PAIR=b\n",
    );
    h.start_daemon_with(&[("GV_PASSED", "from the engine"), ("GV_NOT_PASSED", "x"), ("OVER", "engine")]);
    h.ok(&["start", "envy"]);
    h.wait_state("envy", "exited");
    let log = h.log("logs/envy.log");
    let out: Vec<&str> = log.lines().filter_map(|l| l.split_once(" out ").map(|(_, t)| t)).collect();
    // Passed only when named; Environment= wins over it; unset by name, or only the same pair.
    assert_eq!(out, ["[from the engine]", "[]", "[1]", "[]", "[a]", "[unit]"], "{log}");
}
