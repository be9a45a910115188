//! Loading unit files end to end, good and bad.

use std::path::PathBuf;
use std::time::Duration;

use gitvisor_units::{
    load_instance, load_unit, validate_file, Diagnostic, EnvironmentFile, ExecCommand, Loaded, NotifyAccess,
    Port, PortProto, ReadyCheck, RestartPolicy, ServiceType, Severity, SpecifierContext,
};

fn ctx() -> SpecifierContext {
    SpecifierContext {
        home: PathBuf::from("/home/ann"),
        user: "ann".into(),
        uid: 1000,
        runtime_dir: PathBuf::from("/run/user/1000"),
    }
}

fn ok(text: &str) -> Loaded {
    load_unit("web.service", text.as_bytes(), &ctx())
        .unwrap_or_else(|d| panic!("should load: {:#?}", lines(&d)))
}

/// The file's errors as users read them.
fn errors(text: &str) -> Vec<String> {
    let diagnostics = load_unit("web.service", text.as_bytes(), &ctx()).unwrap_err();
    diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect()
}

fn lines(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(|d| d.to_string()).collect()
}

fn svc(body: &str) -> String {
    format!("[Service]\nExecStart=/bin/app\n{body}")
}

#[test]
fn minimal_unit_has_the_spec_defaults() {
    let loaded = ok("[Service]\nExecStart=/usr/bin/app --port 80\n");
    assert!(loaded.warnings.is_empty());
    let unit = loaded.unit;
    assert_eq!(unit.name.as_str(), "web");
    assert_eq!(
        unit.exec_start,
        ExecCommand {
            argv: vec!["/usr/bin/app".into(), "--port".into(), "80".into()],
            ignore_failure: false,
            substitute: true,
            arg0: None,
            privileged: false,
        }
    );
    assert_eq!(unit.start_limit_interval, Duration::from_secs(10));
    assert_eq!(unit.start_limit_burst, 5);
    assert_eq!(unit.restart, RestartPolicy::No);
    assert_eq!(unit.restart_sec, Duration::from_millis(100));
    assert_eq!(unit.restart_steps, 0);
    assert_eq!(unit.restart_max_delay, None);
    assert_eq!(unit.timeout_stop, Duration::from_secs(10));
    assert_eq!(unit.kill_signal, libc::SIGTERM);
    assert_eq!(unit.health.interval, Duration::from_secs(10));
    assert_eq!(unit.health.timeout, Duration::from_secs(5));
    assert_eq!(unit.health.retries, 3);
    assert_eq!(unit.ready, ReadyCheck::None);
    assert_eq!(unit.capture.enabled, None);
    assert_eq!(unit.capture.max_file_size, 1 << 20);
    assert_eq!(unit.capture.max_total_size, 64 << 20);
    assert!(!unit.enabled());
    assert!(!unit.private_pids && !unit.singleton);
}

#[test]
fn every_setting() {
    let text = r#"
[Unit]
Description=Web server %N
Requires=db.service cache
Wants=metrics.service
After=db.service network.target
Before=proxy
StartLimitIntervalSec=1min
StartLimitBurst=3

[Service]
Type=exec
ExecStart=-/usr/bin/web --name "my web" --dir %h/www
ExecStop=/usr/bin/web stop
WorkingDirectory=~/www
Environment=A=1 "B=two words" C=%u
Environment=A=3
EnvironmentFile=-~/web.env
EnvironmentFile=/etc/web.env
User=nobody
Group=root
Restart=on-failure
RestartSec=2s
RestartSteps=5
RestartMaxDelaySec=1min
TimeoutStopSec=30
KillSignal=SIGINT
MemoryLimit=512M
CPUQuota=150%
TasksMax=100
PrivatePIDs=yes
HealthCheckURL=http://localhost:8080/health
HealthCheckInterval=30s
HealthCheckTimeout=2s
HealthCheckRetries=5
ReadyCheck=health
Singleton=true

[Capture]
Enabled=no
MaxFileSize=2M
MaxTotalSize=1G
Exclude=*.log "node_modules/**"

[Install]
WantedBy=default.target
"#;
    let loaded = ok(text);
    assert_eq!(
        lines(&loaded.warnings),
        ["web.service:6: After: warning: network.target ignored: gitvisor only orders .service units"]
    );
    let u = loaded.unit;
    assert_eq!(u.description.as_deref(), Some("Web server web"));
    assert_eq!(u.requires, ["db", "cache"]);
    assert_eq!(u.wants, ["metrics"]);
    assert_eq!(u.after, ["db"]);
    assert_eq!(u.before, ["proxy"]);
    assert_eq!(u.start_limit_interval, Duration::from_secs(60));
    assert_eq!(u.start_limit_burst, 3);
    assert_eq!(u.exec_start.argv, ["/usr/bin/web", "--name", "my web", "--dir", "/home/ann/www"]);
    assert!(u.exec_start.ignore_failure);
    assert_eq!(u.exec_stop[0].argv, ["/usr/bin/web", "stop"]);
    assert_eq!(u.working_directory, Some(PathBuf::from("/home/ann/www")));
    let env: Vec<(&str, &str)> = u.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("A", "3"), ("B", "two words"), ("C", "ann")]);
    assert_eq!(
        u.environment_files,
        [
            EnvironmentFile { path: "/home/ann/web.env".into(), optional: true },
            EnvironmentFile { path: "/etc/web.env".into(), optional: false },
        ]
    );
    assert_eq!(u.user.as_deref(), Some("nobody"));
    assert_eq!(u.group.as_deref(), Some("root"));
    assert_eq!(u.restart, RestartPolicy::OnFailure);
    assert_eq!(u.restart_sec, Duration::from_secs(2));
    assert_eq!(u.restart_steps, 5);
    assert_eq!(u.restart_max_delay, Some(Duration::from_secs(60)));
    assert_eq!(u.timeout_stop, Duration::from_secs(30));
    assert_eq!(u.kill_signal, libc::SIGINT);
    assert_eq!(u.memory_max, Some(512 << 20));
    assert_eq!(u.cpu_quota, Some(150));
    assert_eq!(u.tasks_max, Some(100));
    assert!(u.private_pids);
    assert_eq!(u.health.url.as_deref(), Some("http://localhost:8080/health"));
    assert_eq!(u.health.interval, Duration::from_secs(30));
    assert_eq!(u.health.timeout, Duration::from_secs(2));
    assert_eq!(u.health.retries, 5);
    assert_eq!(u.ready, ReadyCheck::Health);
    assert!(u.singleton);
    assert_eq!(u.capture.enabled, Some(false));
    assert_eq!(u.capture.max_file_size, 2 << 20);
    assert_eq!(u.capture.max_total_size, 1 << 30);
    assert_eq!(u.capture.exclude, ["*.log", "node_modules/**"]);
    assert_eq!(u.wanted_by, ["default.target"]);
    assert!(u.enabled());
}

#[test]
fn declared_ports() {
    let tcp = |port| Port { port, proto: PortProto::Tcp };
    let udp = |port| Port { port, proto: PortProto::Udp };
    let u = ok(&svc("Ports=8080 5353/udp\nPorts=9000/tcp 8080\n")).unit;
    assert_eq!(u.ports, [tcp(8080), udp(5353), tcp(9000)], "each line adds; a repeat is one");
    assert_eq!(u.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["8080", "5353/udp", "9000"]);
    assert_eq!(ok(&svc("Ports=8080\nPorts=\nPorts=53/udp\n")).unit.ports, [udp(53)], "empty resets");
    // A template's instance may be its port.
    let inst = load_instance("web@.service", svc("Ports=%i\n").as_bytes(), "8081", &ctx()).unwrap();
    assert_eq!(inst.unit.ports, [tcp(8081)]);
    assert_eq!(
        errors(&svc("Ports=8080\nPorts=99999 80/sctp 0 http\n")),
        [
            "web.service:4: Ports: invalid port \"99999\" (expected 1 to 65535)",
            "web.service:4: Ports: invalid protocol \"sctp\" in \"80/sctp\" (expected tcp or udp)",
            "web.service:4: Ports: invalid port \"0\" (expected 1 to 65535)",
            "web.service:4: Ports: invalid port \"http\" (expected 1 to 65535)",
        ]
    );
}

#[test]
fn ready_checks() {
    assert_eq!(ok(&svc("ReadyCheck=tcp:8080\n")).unit.ready, ReadyCheck::Tcp(8080));
    assert_eq!(
        ok(&svc("ReadyCheck=log:listening on .*:\\d+\n")).unit.ready,
        ReadyCheck::Log("listening on .*:\\d+".into())
    );
    assert_eq!(ok(&svc("ReadyCheck=none\n")).unit.ready, ReadyCheck::None);
    assert_eq!(
        errors(&svc("ReadyCheck=tcp:99999\n")),
        ["web.service:3: ReadyCheck: invalid TCP port \"99999\" (expected 1 to 65535)"]
    );
    assert_eq!(
        errors(&svc("ReadyCheck=log:\n")),
        ["web.service:3: ReadyCheck: log: needs a regular expression"]
    );
    assert_eq!(
        errors(&svc("ReadyCheck=health\n")),
        ["web.service:3: ReadyCheck: ReadyCheck=health needs HealthCheckURL="]
    );
    assert_eq!(errors(&svc("ReadyCheck=soon\n")).len(), 1);
    assert_eq!(
        errors(&svc("ReadyCheck=log:listening (on\n")),
        ["web.service:3: ReadyCheck: invalid regular expression \"listening (on\": error: unclosed group"]
    );
}

#[test]
fn start_timeouts_as_systemd_reads_them() {
    assert_eq!(ok(&svc("")).unit.timeout_start, Duration::from_secs(90));
    assert_eq!(ok(&svc("TimeoutStartSec=5s\n")).unit.timeout_start, Duration::from_secs(5));
    assert_eq!(ok(&svc("TimeoutStartSec=infinity\n")).unit.timeout_start, Duration::MAX);
    // TimeoutSec= sets both.
    let u = ok(&svc("TimeoutSec=7\n")).unit;
    assert_eq!((u.timeout_start, u.timeout_stop), (Duration::from_secs(7), Duration::from_secs(7)));
    assert_eq!(errors(&svc("TimeoutStartSec=soon\n")).len(), 1);
}

#[test]
fn lists_append_and_empty_assignment_resets() {
    let text = "[Unit]\nAfter=a b\nAfter=c\nWants=x\nWants=\nWants=y\n[Service]\nExecStart=/bin/app\n\
                Environment=A=1\nEnvironment=\nEnvironment=B=2\nRestartSec=5s\nRestartSec=\n";
    let u = ok(text).unit;
    assert_eq!(u.after, ["a", "b", "c"]);
    assert_eq!(u.wants, ["y"]);
    assert_eq!(u.environment, [("B".to_string(), "2".to_string())]);
    assert_eq!(u.restart_sec, Duration::from_millis(100), "empty resets to the default");
}

#[test]
fn execstart_reset_allows_a_new_one() {
    let u = ok("[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n").unit;
    assert_eq!(u.exec_start.argv, ["/bin/b"]);
}

#[test]
fn continuation_lines_and_comments() {
    let text = "# a comment\n; another\n[Service]\nExecStart=/bin/sh -c \\\n  # skipped comment\n  'echo hi'\nUser=nobody\n";
    let u = ok(text).unit;
    assert_eq!(u.exec_start.argv, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(u.user.as_deref(), Some("nobody"));
}

#[test]
fn exec_prefixes() {
    // `@`: the second word is the program's argv[0] (systemd.service(5), "Command lines").
    let loaded = ok("[Service]\nExecStart=-@/bin/app app-name --flag\n");
    assert_eq!(loaded.unit.exec_start.argv, ["/bin/app", "--flag"]);
    assert_eq!(loaded.unit.exec_start.arg0.as_deref(), Some("app-name"));
    assert!(loaded.unit.exec_start.ignore_failure);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let loaded = ok("[Service]\nExecStart=+/bin/app\nExecStop=!!:/bin/stop\nExecReload=!/bin/r\n");
    assert_eq!(loaded.unit.exec_start.argv, ["/bin/app"]);
    // `+` and `!`: the engine's credentials, not User=; `!!` has no effect where ambient
    // capabilities exist (Linux).
    assert!(loaded.unit.exec_start.privileged && loaded.unit.exec_reload[0].privileged);
    let stop = loaded.unit.exec_stop[0].clone();
    assert_eq!(stop.argv, ["/bin/stop"]);
    assert!(!stop.privileged);
    // `:` turns substitution off.
    assert!(!stop.substitute && loaded.unit.exec_start.substitute);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(ok("[Service]\nExecStart=python3 app.py\n").unit.exec_start.argv[0], "python3");
    assert_eq!(
        errors("[Service]\nExecStart=@/bin/app\n"),
        ["web.service:2: ExecStart: prefix '@' needs the program and the argv[0] to give it"]
    );
}

#[test]
fn semicolons_separate_commands() {
    // A lone `;` separates; `\;` and `a;` are words (systemd.service(5)).
    let loaded = ok("[Service]\nExecStart=/bin/app\nExecStartPre=/bin/a x ; -/bin/b \\; c; \";\"\n");
    let pre = &loaded.unit.exec_start_pre;
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0].argv, ["/bin/a", "x"]);
    assert_eq!(pre[1].argv, ["/bin/b", ";", "c;", ";"]);
    assert!(pre[1].ignore_failure && !pre[0].ignore_failure);
    assert_eq!(
        errors("[Service]\nExecStart=/bin/a ; /bin/b\n"),
        ["web.service:2: ExecStart: only one ExecStart= command is allowed for Type=simple (several are for Type=oneshot)"]
    );
    assert_eq!(
        errors("[Service]\nExecStart=/bin/a\nExecStartPost=/bin/a ; ;\n"),
        ["web.service:3: ExecStartPost: empty command before or after a ';' separator"]
    );
}

#[test]
fn service_types() {
    let u = ok("[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b ; /bin/c\nRemainAfterExit=yes\n")
        .unit;
    assert_eq!(u.service_type, ServiceType::Oneshot);
    assert_eq!(u.exec_start.argv, ["/bin/a"]);
    let rest: Vec<_> = u.exec_start_rest.iter().map(|c| c.argv[0].as_str()).collect();
    assert_eq!(rest, ["/bin/b", "/bin/c"]);
    assert!(u.remain_after_exit);
    assert_eq!(
        errors("[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=always\n"),
        ["web.service:4: Restart: Restart=always and Restart=on-success are not allowed for Type=oneshot (systemd refuses them too)"]
    );
    assert_eq!(
        ok("[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=on-failure\n").unit.restart,
        RestartPolicy::OnFailure
    );
    let n = ok("[Service]\nType=notify\nExecStart=/bin/a\nWatchdogSec=3s\n").unit;
    assert_eq!((n.service_type, n.notify_access), (ServiceType::Notify, NotifyAccess::Main));
    assert_eq!(n.watchdog, Some(Duration::from_secs(3)));
    assert_eq!(n.watchdog_signal, libc_sigabrt());
    // A watchdog asks for notifications whatever the type; NotifyAccess=none turns it off.
    assert_eq!(ok("[Service]\nExecStart=/bin/a\nWatchdogSec=1\n").unit.notify_access, NotifyAccess::Main);
    let off = ok("[Service]\nExecStart=/bin/a\nWatchdogSec=1\nNotifyAccess=none\n");
    assert_eq!(off.unit.watchdog, None);
    assert_eq!(
        lines(&off.warnings),
        ["web.service: WatchdogSec: warning: WatchdogSec= needs notifications (NotifyAccess=none), ignored"]
    );
    assert_eq!(ok("[Service]\nExecStart=/bin/a\n").unit.notify_access, NotifyAccess::None);
    let f = ok("[Service]\nType=forking\nPIDFile=/run/x.pid\nExecStart=/bin/a\n");
    assert_eq!(f.unit.pid_file.as_deref(), Some(std::path::Path::new("/run/x.pid")));
    assert!(f.warnings.is_empty());
    assert_eq!(
        lines(&ok("[Service]\nType=forking\nExecStart=/bin/a\n").warnings),
        ["web.service:2: Type: warning: Type=forking without PIDFile=: the main process is taken to be the one process its start leaves behind"]
    );
    assert_eq!(
        errors("[Service]\nType=daemon\nExecStart=/bin/a\nNotifyAccess=some\n"),
        [
            "web.service:2: Type: invalid service type \"daemon\" (expected simple, exec, oneshot, forking or notify)",
            "web.service:4: NotifyAccess: invalid NotifyAccess= \"some\" (expected none, main, exec or all)",
        ]
    );
    let w = ok("[Service]\nType=notify\nExecStart=/bin/a\nReadyCheck=tcp:80\nRemainAfterExit=yes\n");
    assert_eq!(
        lines(&w.warnings),
        [
            "web.service:4: ReadyCheck: warning: ReadyCheck= is ignored: READY=1 says when a Type=notify service is ready",
            "web.service:5: RemainAfterExit: warning: RemainAfterExit= only applies to Type=oneshot in gitvisor, ignored for Type=notify",
        ]
    );
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn unknown_section_and_keys_are_warnings() {
    let text = "[Unit]\nFrobnicate=1\nDocumentation=man:x\nX-Custom=ok\n[Service]\nExecStart=/bin/app\n\
                Nice=1\nType=forking\n[Timer]\nOnCalendar=daily\nPersistent=yes\n[X-Mine]\nA=b\n";
    let loaded = ok(text);
    assert!(loaded.warnings.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!(
        lines(&loaded.warnings),
        [
            "web.service:2: Frobnicate: warning: unknown key Frobnicate= in [Unit], ignored",
            "web.service:3: Documentation: warning: Documentation= is not supported by gitvisor, ignored",
            "web.service:7: Nice: warning: Nice= is not supported by gitvisor, ignored",
            "web.service:8: Type: warning: Type=forking without PIDFile=: the main process is taken to be the one process its start leaves behind",
            "web.service:9: warning: unknown section [Timer], ignored",
        ]
    );
}

#[test]
fn unknown_users_and_groups_are_errors_at_their_line() {
    assert_eq!(
        errors(&svc("User=no-such-user-here\nGroup=no-such-group-here\n")),
        [
            "web.service:3: User: no user named \"no-such-user-here\" on this machine",
            "web.service:4: Group: no group named \"no-such-group-here\" on this machine",
        ]
    );
    // Numbers are taken as they are, as systemd takes them.
    let u = ok(&svc("User=4242\nGroup=4242\n")).unit;
    assert_eq!((u.user.as_deref(), u.group.as_deref()), (Some("4242"), Some("4242")));
}

#[test]
fn restart_policies() {
    for (value, want) in [
        ("no", RestartPolicy::No),
        ("on-success", RestartPolicy::OnSuccess),
        ("on-failure", RestartPolicy::OnFailure),
        ("on-abnormal", RestartPolicy::OnAbnormal),
        ("always", RestartPolicy::Always),
    ] {
        assert_eq!(ok(&svc(&format!("Restart={value}\n"))).unit.restart, want);
    }
    let loaded = ok(&svc("Restart=on-abort\n"));
    assert_eq!(loaded.unit.restart, RestartPolicy::OnAbnormal);
    assert_eq!(loaded.warnings.len(), 1);
    let loaded = ok(&svc("Restart=on-watchdog\n"));
    assert_eq!(loaded.unit.restart, RestartPolicy::OnWatchdog);
    assert!(loaded.warnings.is_empty());
    assert_eq!(errors(&svc("Restart=sometimes\n")).len(), 1);
}

#[test]
fn bad_time_span_names_file_line_and_key() {
    assert_eq!(
        errors(&svc("RestartSec=5 parsecs\n")),
        ["web.service:3: RestartSec: unknown time unit \"parsecs\" in \"5 parsecs\""]
    );
}

#[test]
fn unterminated_quote() {
    assert_eq!(
        errors("[Service]\nExecStart=/bin/echo \"hello\n"),
        ["web.service:2: ExecStart: unterminated \" quote in \"/bin/echo \\\"hello\""]
    );
}

#[test]
fn missing_exec_start() {
    assert_eq!(
        errors("[Unit]\nDescription=nothing to run\n"),
        ["web.service: ExecStart: missing ExecStart= (the command to run)"]
    );
}

#[test]
fn two_exec_starts() {
    assert_eq!(
        errors("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n"),
        ["web.service:3: ExecStart: only one ExecStart= command is allowed for Type=simple (several are for Type=oneshot)"]
    );
}

#[test]
fn relative_paths_are_errors() {
    assert_eq!(
        errors(&svc("WorkingDirectory=src/app\n")),
        ["web.service:3: WorkingDirectory: \"src/app\" is not an absolute path (use /… or ~/…)"]
    );
    assert_eq!(errors(&svc("EnvironmentFile=app.env\n")).len(), 1);
    assert_eq!(
        errors("[Service]\nExecStart=bin/app\n"),
        ["web.service:2: ExecStart: \"bin/app\" must be an absolute path or a bare program name (looked up in PATH)"]
    );
}

#[test]
fn invalid_names() {
    for name in ["../evil.service", "a/b.service", "web", "we b.service", "a@b@c.service", ".service"] {
        let d = load_unit(name, b"[Service]\nExecStart=/bin/a\n", &ctx()).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, 0);
        assert!(d[0].message.contains(&format!("{name:?}")), "{}", d[0]);
    }
    let d = load_instance("web@.service", b"[Service]\nExecStart=/bin/a\n", "../x", &ctx()).unwrap_err();
    assert!(d[0].message.contains("invalid unit name"), "{}", d[0]);
    let d = load_instance("web.service", b"[Service]\nExecStart=/bin/a\n", "x", &ctx()).unwrap_err();
    assert!(d[0].message.contains("not a template"), "{}", d[0]);
}

#[test]
fn huge_file() {
    let mut text = svc("");
    text.push_str(&"# padding\n".repeat(110_000));
    assert_eq!(errors(&text), ["web.service: file too large (over 1 MiB)"]);
}

#[test]
fn binary_garbage() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let d = load_unit("web.service", &garbage, &ctx()).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(d[0].message.starts_with("not a text file"), "{}", d[0]);
    let d = load_unit("web.service", b"[Service]\xff\xfe\nExecStart=/bin/a\n", &ctx()).unwrap_err();
    assert!(d[0].message.starts_with("not a text file"), "{}", d[0]);
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    let text = "stray line\n[Unit]\nStartLimitBurst=lots\nRequires=a/b\n[Service]\nRestartSec=soon\n\
                KillSignal=SIGNOPE\nMemoryMax=1Q\nCPUQuota=half\nPrivatePIDs=perhaps\nEnvironment=1BAD=x\n\
                HealthCheckURL=ftp://x\nUnknown=fine\n";
    let d = load_unit("web.service", text.as_bytes(), &ctx()).unwrap_err();
    let error_lines: Vec<usize> = d.iter().filter(|d| d.is_error()).map(|d| d.line).collect();
    assert_eq!(error_lines, [0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12]);
    let warnings = d.iter().filter(|d| !d.is_error()).count();
    assert_eq!(warnings, 1, "warnings come along with the errors");
}

#[test]
fn specifiers_in_values() {
    let text =
        "[Unit]\nDescription=%n %N %p %i %u %U %% done\n[Service]\nExecStart=/bin/app %t/app.sock %h\n\
                WorkingDirectory=%h/src\n";
    let u = ok(text).unit;
    assert_eq!(u.description.as_deref(), Some("web.service web web  ann 1000 % done"));
    assert_eq!(u.exec_start.argv, ["/bin/app", "/run/user/1000/app.sock", "/home/ann"]);
    assert_eq!(u.working_directory, Some(PathBuf::from("/home/ann/src")));
    assert_eq!(
        errors("[Service]\nExecStart=/bin/app %z\n"),
        ["web.service:2: ExecStart: unknown specifier %z (use %% for a literal %)"]
    );
}

#[test]
fn templates_and_instances() {
    let text =
        "[Unit]\nDescription=web on %i (%I)\nAfter=db@%i.service\n[Service]\nExecStart=/bin/web --port %i\n\
                ReadyCheck=tcp:%i\n[Install]\nWantedBy=default.target\nDefaultInstance=8080\n";
    let loaded = load_instance("web@.service", text.as_bytes(), "8080", &ctx()).unwrap();
    let u = loaded.unit;
    assert_eq!(u.name.as_str(), "web@8080");
    assert_eq!(u.name.template().unwrap().as_str(), "web@");
    assert_eq!(u.description.as_deref(), Some("web on 8080 (8080)"));
    assert_eq!(u.after, ["db@8080"]);
    assert_eq!(u.exec_start.argv, ["/bin/web", "--port", "8080"]);
    assert_eq!(u.ready, ReadyCheck::Tcp(8080));
    assert_eq!(u.default_instance.as_deref(), Some("8080"));

    // The template itself loads with an empty %i, except where %i must be a number.
    let d = load_unit("web@.service", text.as_bytes(), &ctx()).unwrap_err();
    assert_eq!(lines(&d)[0], "web@.service:3: After: \"db@.service\" is a template; name an instance");
    assert!(d.iter().any(|d| d.key.as_deref() == Some("ReadyCheck")));

    let d = load_instance(
        "web@.service",
        b"[Service]\nExecStart=/bin/a\n[Install]\nDefaultInstance=a/b\n",
        "x",
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(d[0].key.as_deref(), Some("DefaultInstance"));
}

#[test]
fn validate_file_reports_with_the_path() {
    let dir = std::env::temp_dir().join(format!("gitvisor-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("api@.service");
    std::fs::write(&good, "[Service]\nExecStart=/bin/api --port %i\nReadyCheck=tcp:%i\n[Foo]\nA=1\n")
        .unwrap();
    let d = validate_file(&good, &ctx());
    assert_eq!(lines(&d), [format!("{}:4: warning: unknown section [Foo], ignored", good.display())]);

    let bad = dir.join("bad.service");
    std::fs::write(&bad, "[Service]\nRestartSec=x\n").unwrap();
    let d = validate_file(&bad, &ctx());
    assert_eq!(d.iter().filter(|d| d.is_error()).count(), 2);
    assert!(d.iter().all(|d| d.file == bad.display().to_string()));

    let badly_named = dir.join("bad name.service");
    std::fs::write(&badly_named, "").unwrap();
    assert_eq!(validate_file(&badly_named, &ctx()).len(), 1);
    let missing = validate_file(&dir.join("missing.service"), &ctx());
    assert!(missing[0].message.starts_with("cannot read"), "{}", missing[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diagnostics_serialize() {
    let d = load_unit("web.service", b"[Unit]\n", &ctx()).unwrap_err();
    let json = serde_json::to_string(&d[0]).unwrap();
    assert_eq!(
        json,
        r#"{"file":"web.service","line":0,"key":"ExecStart","severity":"error","message":"missing ExecStart= (the command to run)"}"#
    );
}

/// Mangled versions of a full unit (bytes dropped, replaced, duplicated) never panic.
#[test]
fn mangled_input_never_panics() {
    let base = "[Unit]\nDescription=%n \\\n x\nAfter=a@%i.service\n[Service]\nExecStart=-@/bin/a \"b\\x41\" 'c'\n\
                Environment=\"A=1\" B=\\u00e9\nRestartSec=1.5min\nMemoryMax=1.5G\nReadyCheck=tcp:%i\n[Install]\nWantedBy=x\n";
    let bytes = base.as_bytes();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let interesting = b"\\%\"'=[]@-\n\xc3\xa9 ;#0x";
    for _ in 0..3000 {
        let mut mangled = bytes.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % mangled.len();
            match next() % 3 {
                0 => drop(mangled.remove(at)),
                1 => mangled[at] = interesting[(next() as usize) % interesting.len()],
                _ => mangled.insert(at, interesting[(next() as usize) % interesting.len()]),
            }
        }
        let _ = load_unit("web.service", &mangled, &ctx());
        let _ = load_instance("web@.service", &mangled, "7", &ctx());
    }
}

#[test]
fn exit_status_lists() {
    let u = ok(&svc("SuccessExitStatus=75 TEMPFAIL SIGUSR1\nSuccessExitStatus=KILL\nRestartPreventExitStatus=3\nRestartPreventExitStatus=\nRestartForceExitStatus=NOTRUNNING\n")).unit;
    assert_eq!(u.success_exit_status.codes, [75, 75]);
    assert_eq!(u.success_exit_status.signals, [libc::SIGUSR1, libc::SIGKILL]);
    assert!(u.restart_prevent_exit_status.is_empty(), "an empty assignment resets the list");
    assert_eq!(u.restart_force_exit_status.codes, [7]);
    assert_eq!(
        errors(&svc("SuccessExitStatus=300\n")),
        ["web.service:3: SuccessExitStatus: exit status 300 is out of range (0 to 255)"]
    );
    assert_eq!(
        errors(&svc("RestartForceExitStatus=SOMETIMES\n")),
        ["web.service:3: RestartForceExitStatus: \"SOMETIMES\" is neither an exit status nor a signal"]
    );
}

#[test]
fn pass_and_unset_environment_lists() {
    let u = ok(&svc("PassEnvironment=A B\nPassEnvironment=C\nUnsetEnvironment=X Y=1\nUnsetEnvironment=\nUnsetEnvironment=Z\n")).unit;
    assert_eq!(u.pass_environment, ["A", "B", "C"]);
    assert_eq!(u.unset_environment, ["Z"]);
    assert_eq!(
        errors(&svc("PassEnvironment=A=1\n")),
        ["web.service:3: PassEnvironment: invalid variable name \"A=1\""]
    );
}

#[test]
fn watch_section_with_its_defaults_and_every_key() {
    let plain = ok(&svc("WorkingDirectory=~/app\n[Watch]\nPaths=src\n"));
    let w = plain.unit.watch.expect("[Watch] turns watching on");
    assert_eq!(w.paths, ["src"]);
    assert!(w.exclude.is_empty());
    assert!(!w.ignore_gitignore);
    assert_eq!(w.debounce, Duration::from_millis(200));
    assert!(!w.restart_dependents);
    assert_eq!(ok(&svc("")).unit.watch, None, "no [Watch]: no watching");

    let full =
        ok(&svc("WorkingDirectory=~/app\n[Watch]\nPaths=src/**/*.ts package.json\nPaths=/etc/app.conf\n\
         Exclude=dist/ *.tmp\nIgnoreGitignore=yes\nDebounceSec=500ms\nRestartDependents=yes\n"));
    let w = full.unit.watch.unwrap();
    assert_eq!(w.paths, ["src/**/*.ts", "package.json", "/etc/app.conf"]);
    assert_eq!(w.exclude, ["dist/", "*.tmp"]);
    assert!(w.ignore_gitignore);
    assert_eq!(w.debounce, Duration::from_millis(500));
    assert!(w.restart_dependents);

    let reset = ok(&svc("WorkingDirectory=~/app\n[Watch]\nPaths=src\nPaths=\nPaths=lib\n"));
    assert_eq!(reset.unit.watch.unwrap().paths, ["lib"], "an empty assignment resets the list");
}

#[test]
fn bad_watch_settings_are_errors_at_their_line() {
    assert_eq!(
        errors(&svc("WorkingDirectory=~/app\n[Watch]\nPaths=src/[a-\n")),
        ["web.service:5: Paths: \"src/[a-\" is not a valid glob: unclosed character class; missing ']'"]
    );
    assert_eq!(
        errors(&svc("WorkingDirectory=~/app\n[Watch]\nExclude=../secrets\n")),
        ["web.service:5: Exclude: \"../secrets\": '..' is not allowed in a watch pattern"]
    );
    assert_eq!(
        errors(&svc("WorkingDirectory=~/app\n[Watch]\nDebounceSec=2min\n")),
        ["web.service:5: DebounceSec: DebounceSec= over 60s: a change would wait too long to apply"]
    );
    assert_eq!(
        errors(&svc("[Watch]\nPaths=src\n")),
        ["web.service:4: [Watch] needs WorkingDirectory= (its paths are relative to it)"]
    );
    // Absolute paths alone need no working directory.
    assert!(ok(&svc("[Watch]\nPaths=/etc/app.conf\n")).unit.watch.is_some());
}

#[test]
fn a_watch_header_alone_watches_the_whole_working_directory() {
    let w = ok(&svc("WorkingDirectory=~/app\n[Watch]\n")).unit.watch.expect("watching on");
    assert!(w.paths.is_empty(), "no Paths=: the whole working directory");
    assert_eq!(
        errors(&svc("[Watch]\n")),
        ["web.service:3: [Watch] needs WorkingDirectory= (its paths are relative to it)"]
    );
}
