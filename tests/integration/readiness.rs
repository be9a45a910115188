//! Readiness observed, not assumed: a service that becomes ready only when the test says so
//! (it listens, or prints its line, once `go` exists, and notes the moment), a dependent whose
//! start time is compared with that moment, and `start --wait`.

use std::process::{Child, Stdio};

use gitvisor_testkit::{wait_exit, Home};
use serde_json::Value;

use crate::home;

/// Binds the port, notes the moment (Unix ms) in `NAME.listened`, then accepts forever.
const LISTEN: &str = r#"
import socket, sys, time
port, name = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port))
s.listen(16)
open(name + '.listened', 'w').write(str(int(time.time() * 1000)))
while True:
    s.accept()[0].close()
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_go() -> &'static str {
    "while [ ! -e go ]; do sleep 0.05; done"
}

/// A service that listens on a free port once `go` exists, with `ReadyCheck=tcp:PORT`.
fn listener(h: &Home, name: &str, extra: &str) -> u16 {
    std::fs::write(h.work().join("listen.py"), LISTEN).unwrap();
    let port = free_port();
    h.sh_unit(
        name,
        &format!("{}; exec python3 listen.py {port} {name}", wait_go()),
        &format!("ReadyCheck=tcp:{port}\n{extra}"),
    );
    port
}

/// `app`, which requires and follows `dep` and notes nothing itself: its start time is in status.
fn dependent(h: &Home, dep: &str) {
    h.unit("app", &format!("[Unit]\nRequires={dep}\nAfter={dep}\n{}", h.sh_unit_text("exec sleep 1000", "")));
}

fn spawn(h: &Home, args: &[&str]) -> Child {
    h.cmd_with(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn gitvisor")
}

fn ms_in(h: &Home, file: &str) -> u64 {
    std::fs::read_to_string(h.work().join(file)).unwrap().trim().parse().unwrap()
}

/// Lets the dependency become ready, then checks the dependent started after that moment.
fn starts_after_ready(h: &Home, mut start: Child, dep: &str, ready_file: &str) {
    h.wait_state(dep, "running");
    assert_eq!(h.service(dep)["ready"], false);
    assert!(start.try_wait().unwrap().is_none(), "start answered before {dep} was ready");
    assert_eq!(h.state("app"), "stopped", "app waits for {dep} to be ready");
    std::fs::write(h.work().join("go"), "").unwrap();
    let status = wait_exit(&mut start, "start app");
    assert!(status.success(), "start app: {status}");
    let app = h.service("app");
    let ready_ms = ms_in(h, ready_file);
    assert!(app["started_ms"].as_u64().unwrap() >= ready_ms, "app started before {dep} was ready: {app:#}");
    assert_eq!(h.service(dep)["ready"], true);
}

#[test]
fn a_dependent_starts_once_the_port_it_needs_listens() {
    let mut h = home();
    listener(&h, "db", "");
    dependent(&h, "db");
    h.start_daemon();
    let start = spawn(&h, &["start", "app"]);
    starts_after_ready(&h, start, "db", "db.listened");
    let log = h.log("logs/db.log");
    assert!(log.contains(" gitvisor ready (ReadyCheck=tcp:"), "{log}");
}

#[test]
fn a_dependent_starts_once_the_line_it_waits_for_is_printed() {
    let mut h = home();
    h.sh_unit(
        "queue",
        &format!(
            // `%%` is a literal `%` in a unit file (systemd's specifiers).
            "{}; echo warming up; date +%%s%%3N > queue.said; echo accepting connections on 5672; exec sleep 1000",
            wait_go()
        ),
        "ReadyCheck=log:accepting connections on \\d+",
    );
    dependent(&h, "queue");
    h.start_daemon();
    let start = spawn(&h, &["start", "app"]);
    starts_after_ready(&h, start, "queue", "queue.said");
}

#[test]
fn a_dependency_never_ready_fails_its_dependent_with_the_reason() {
    let mut h = home();
    let port = listener(&h, "db", "TimeoutStartSec=1s\nRestart=on-failure\nRestartSec=5min");
    dependent(&h, "db");
    h.start_daemon();
    // `go` never comes: db never listens.
    let out = h.run(&["start", "app"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let reason = format!("not ready within 1s (ReadyCheck=tcp:{port})");
    assert!(err.contains(&format!("app: requires db, which did not start: {reason}")), "{err}");
    assert_ne!(h.state("app"), "running");
    // db was killed for it, a failure Restart=on-failure restarts (after RestartSec=).
    let db = h.wait_for("db killed and waiting to restart", || {
        let s = h.service("db");
        (s["state"] == "backoff").then_some(s)
    });
    assert_eq!(
        (&db["error"], &db["last_exit_class"]),
        (&Value::from(reason.clone()), &Value::from("failure"))
    );
    let log = h.log("logs/db.log");
    assert!(log.contains(&format!("gitvisor {reason}: killing it")), "{log}");
}

#[test]
fn start_wait_returns_once_ready_and_fails_when_never() {
    let mut h = home();
    listener(&h, "db", "");
    let never = listener(&h, "never", "TimeoutStartSec=1s");
    h.start_daemon();
    let mut waiting = spawn(&h, &["start", "--wait", "db"]);
    h.wait_state("db", "running");
    assert!(waiting.try_wait().unwrap().is_none(), "--wait answered before db was ready");
    std::fs::write(h.work().join("go"), "").unwrap();
    assert!(wait_exit(&mut waiting, "start --wait db").success());
    assert_eq!(h.service("db")["ready"], true);
    // Without --wait, start answers once started.
    std::fs::remove_file(h.work().join("go")).unwrap();
    let out = h.run(&["start", "never"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    h.ok(&["stop", "never"]);
    let out = h.run(&["start", "--wait", "never"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("never: not ready within 1s (ReadyCheck=tcp:{never})")), "{err}");
}
