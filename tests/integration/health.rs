//! Health probes against a real HTTP server run as a service: a small Python server that
//! answers each probed service by its path (`/web` for web), with the answer the test switches
//! through a file (`web.mode`: a status code, or `hang`), and records each probe (the service,
//! the answer, the time). The server is started and listening before any probed service, so no
//! probe finds it not yet up.

use gitvisor_testkit::{wait_for, Home};
use serde_json::Value;

use crate::crash_reports::{report_json, reports_of};
use crate::home;

const SERVER: &str = r#"
import http.server, os, sys, time
class Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.strip('/')
        try:
            mode = open(name + '.mode').read().strip()
        except OSError:
            mode = '200'
        with open('hits', 'a') as f:
            f.write('%s %s %d\n' % (name, mode, int(time.time() * 1000)))
        if mode == 'hang':
            time.sleep(3600)
        self.send_response(int(mode))
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Probe).serve_forever()
"#;

/// Starts the server (service `srv`) and waits until it listens; its port.
fn server(h: &mut Home) -> u16 {
    std::fs::write(h.work().join("server.py"), SERVER).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    h.sh_unit("srv", &format!("exec python3 server.py {port}"), "");
    h.start_daemon();
    h.ok(&["start", "srv"]);
    h.wait_until("the server to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    port
}

/// A service `name` probed at the server with `probes` (the unit's `HealthCheck*` lines besides
/// the URL) and `extra` lines; written to the services repository (the engine picks it up).
fn probed(h: &Home, port: u16, name: &str, probes: &str, extra: &str) {
    h.sh_unit(
        name,
        "exec sleep 1000",
        &format!("HealthCheckURL=http://127.0.0.1:{port}/{name}\n{probes}\n{extra}"),
    );
    let commit = h.commit_all(&format!("add {name}"));
    h.wait_commit(&commit);
}

fn set_answer(h: &Home, name: &str, answer: &str) {
    std::fs::write(h.work().join(format!("{name}.mode")), answer).unwrap();
}

/// The probes of `name` the server got: (answer, unix ms) each.
fn hits(h: &Home, name: &str) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(h.work().join("hits")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            (w.next()? == name).then_some(())?;
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

fn healthy(h: &Home, name: &str) -> Value {
    h.wait_for(&format!("{name} to be healthy"), || {
        let s = h.service(name);
        (s["health"] == "healthy").then_some(s)
    })
}

#[test]
fn failing_probes_restart_the_service_after_exactly_the_retries_with_a_crash_report() {
    let mut h = home();
    let port = server(&mut h);
    let probes = "HealthCheckInterval=100ms\nHealthCheckTimeout=5s\nHealthCheckRetries=3";
    probed(&h, port, "web", probes, "Restart=on-failure\nRestartSec=0");
    h.ok(&["start", "web"]);
    let s = healthy(&h, "web");
    assert!(s["health_checked_ms"].as_u64().is_some(), "{s:#}");
    assert_eq!(s["health_error"], Value::Null);
    let pid = s["pid"].as_u64().unwrap();
    set_answer(&h, "web", "500");
    let s = h.wait_for("web to be restarted", || {
        let s = h.service("web");
        s["pid"].as_u64().filter(|p| *p != pid && s["state"] == "running").map(|_| s)
    });
    set_answer(&h, "web", "200");
    // SIGTERM is a clean end for Restart=on-failure: it restarted because the kill was for
    // health, counted as a failure.
    assert_eq!((&s["restarts"], &s["last_exit_class"]), (&Value::from(1), &Value::from("failure")), "{s:#}");
    let restarted_ms = s["started_ms"].as_u64().unwrap();
    let failed = hits(&h, "web").into_iter().filter(|(m, at)| m == "500" && *at < restarted_ms).count();
    assert_eq!(failed, 3, "restarted after exactly 3 failed probes, not before: {:?}", hits(&h, "web"));
    let report = wait_for("the health kill's crash report", || reports_of(&h, "web").pop());
    let reason = report_json(&report)["reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("unhealthy: 3 probes failed: HTTP 500 ("), "{reason}");
    let log = h.log("logs/web.log");
    assert!(log.contains("gitvisor unhealthy: 3 probes failed: HTTP 500: killing it"), "{log}");
    healthy(&h, "web");
}

#[test]
fn a_hanging_probe_is_cut_at_its_timeout_and_delays_no_other_service() {
    let mut h = home();
    let port = server(&mut h);
    set_answer(&h, "slow", "hang");
    probed(&h, port, "slow", "HealthCheckInterval=100ms\nHealthCheckTimeout=3s\nHealthCheckRetries=1", "");
    probed(&h, port, "quick", "HealthCheckInterval=100ms", "");
    h.ok(&["start", "slow", "quick"]);
    h.wait_until("slow's first probe", || !hits(&h, "slow").is_empty());
    // While that probe hangs, quick is probed again and again.
    let before = hits(&h, "quick").len();
    h.wait_until("10 more probes of quick", || hits(&h, "quick").len() >= before + 10);
    assert_eq!(hits(&h, "slow").len(), 1, "one probe at a time: the hanging one");
    let s = h.wait_for("slow to be killed at its probe's timeout", || {
        let s = h.service("slow");
        (s["state"] == "exited").then_some(s)
    });
    assert_eq!(s["error"], "unhealthy: 1 probe failed: no answer within 3s", "{s:#}");
    assert_eq!(h.state("quick"), "running");
}

#[test]
fn no_probe_runs_for_a_service_that_is_not_running() {
    let mut h = home();
    let port = server(&mut h);
    probed(&h, port, "a", "HealthCheckInterval=100ms", "");
    probed(&h, port, "b", "HealthCheckInterval=100ms", "");
    h.ok(&["start", "a", "b"]);
    healthy(&h, "a");
    h.ok(&["stop", "a"]);
    let s = h.service("a");
    assert_eq!((&s["health"], &s["health_checked_ms"]), (&Value::from("unknown"), &Value::Null), "{s:#}");
    let (a, b) = (hits(&h, "a").len(), hits(&h, "b").len());
    h.wait_until("10 more probes of b", || hits(&h, "b").len() >= b + 10);
    assert_eq!(hits(&h, "a").len(), a, "no probe of a stopped service");
}
