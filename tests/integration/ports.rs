//! Ports: what a service listens on (its whole tree) in status, and `Ports=` held by someone
//! else failing the start with the holder named. Real processes on real sockets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use gitvisor_testkit::{wait_file, Home};

use crate::home;

/// Listens on TCP (the port given, or any) and binds a UDP port on 127.0.0.1, writes
/// `TCP UDP` to the file once both are open (renamed into place: never seen half written),
/// then sleeps.
const LISTENER: &str = r#"import socket, sys, os, time
out, tcp_port = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", tcp_port))
t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
with open(out + ".tmp", "w") as f:
    f.write("%d %d\n" % (t.getsockname()[1], u.getsockname()[1]))
os.rename(out + ".tmp", out)
while True:
    time.sleep(1000)
"#;

fn listener_script(h: &Home) -> PathBuf {
    let path = h.work().join("listen.py");
    std::fs::write(&path, LISTENER).unwrap();
    path
}

/// The TCP and UDP ports a listener wrote.
fn ports_in(file: &Path) -> (u16, u16) {
    let text = wait_file(file);
    let mut words = text.split_whitespace().map(|w| w.parse::<u16>().unwrap());
    (words.next().unwrap(), words.next().unwrap())
}

/// A free TCP port on 127.0.0.1 at the time of asking.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process of the test's own, outside gitvisor; killed when dropped.
struct Foreign(Child);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_child_s_ports_show_in_status() {
    let mut h = home();
    let script = listener_script(&h);
    let out = h.work().join("ports");
    // The shell is the main process; the listener is its child.
    h.sh_unit("web", &format!("python3 {} {} & wait", script.display(), out.display()), "");
    h.start_daemon();
    h.ok(&["start", "web"]);
    let (tcp, udp) = ports_in(&out);
    let main = h.pid("web").unwrap();
    let listed = h.wait_for("the listener's ports in status", || {
        let s = h.service("web");
        let ports = s["ports"].as_array()?.clone();
        (ports.len() == 2).then_some(ports)
    });
    // Sorted by port: find each by its protocol.
    let find =
        |proto: &str| listed.iter().find(|p| p["proto"] == proto).unwrap_or_else(|| panic!("{listed:?}"));
    assert_eq!(
        (find("tcp")["port"].as_u64(), find("tcp")["address"].as_str()),
        (Some(tcp.into()), Some("127.0.0.1"))
    );
    assert_eq!(
        (find("udp")["port"].as_u64(), find("udp")["address"].as_str()),
        (Some(udp.into()), Some("127.0.0.1"))
    );
    // The listener is not the main process: the tree counts.
    let holder_is_main = std::fs::read_dir(format!("/proc/{main}/fd"))
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")));
    assert!(!holder_is_main, "the shell holds no socket");
    let table = h.ok(&["status"]);
    assert!(table.contains("PORTS"), "{table}");
    let cell = if tcp < udp { format!("{tcp},{udp}/udp") } else { format!("{udp}/udp,{tcp}") };
    assert!(table.contains(&cell), "{table}");
    // Stopped: no ports.
    h.ok(&["stop", "web"]);
    assert_eq!(h.service("web")["ports"], serde_json::json!([]));
}

#[test]
fn a_declared_port_held_by_a_foreign_process_fails_the_start_naming_it() {
    let mut h = home();
    let script = listener_script(&h);
    let out = h.work().join("foreign-ports");
    let foreign = Foreign(Command::new("python3").arg(&script).arg(&out).spawn().unwrap());
    let (tcp, udp) = ports_in(&out);
    let pid = foreign.0.id();
    h.unit("web", &format!("[Service]\nExecStart=/bin/sleep 1000\nPorts={tcp} {udp}/udp\nRestart=always\n"));
    h.start_daemon();
    let o = h.run(&["start", "web"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    // Its command line as /proc has it (python3 may be a launcher that execs a full path).
    let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let program = String::from_utf8_lossy(command.split(|b| *b == 0).next().unwrap()).into_owned();
    for said in [
        format!("port {tcp} is held by pid {pid} ({program} {}", script.display()),
        format!("port {udp}/udp is held by pid {pid} ({program} {}", script.display()),
    ] {
        assert!(err.contains(&said), "no {said:?} in {err}");
    }
    // Failed at once, not restarted into EADDRINUSE.
    let s = h.wait_state("web", "failed");
    assert!(s["error"].as_str().unwrap().contains(&format!("port {tcp} is held by pid {pid}")), "{s}");
    assert_eq!(s["restarts"], 0);
    // Free again: the start goes ahead.
    drop(foreign);
    h.ok(&["start", "web"]);
    assert_eq!(h.state("web"), "running");
}

#[test]
fn a_declared_port_held_by_another_service_names_that_service() {
    let mut h = home();
    let script = listener_script(&h);
    let out = h.work().join("api-ports");
    let port = free_port();
    // The listener is a child of api's shell, and api declares its port too.
    h.sh_unit(
        "api",
        &format!("rm -f {1}; python3 {0} {1} {port} & wait", script.display(), out.display()),
        &format!("Ports={port}"),
    );
    // The port of a ReadyCheck=tcp: counts as declared.
    h.unit("web", &format!("[Service]\nExecStart=/bin/sleep 1000\nReadyCheck=tcp:{port}\n"));
    h.start_daemon();
    h.ok(&["start", "api"]);
    ports_in(&out);
    let o = h.run(&["start", "web"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("port {port} is held by service api")), "{err}");
    assert_eq!(h.state("web"), "failed");
    // api's own previous process is no obstacle to its restart: the start waits for it to end.
    for _ in 0..3 {
        h.ok(&["restart", "api"]);
        ports_in(&out);
    }
    assert_eq!(h.state("api"), "running");
}

#[test]
fn a_bad_ports_value_is_an_error_at_its_line() {
    let mut h = home();
    h.unit("bad", "[Service]\nExecStart=/bin/sleep 1000\nPorts=8080 99999\nPorts=80/sctp\n");
    let file = h.services().join("bad.service");
    let o = h.run(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("bad.service:3: Ports: invalid port \"99999\" (expected 1 to 65535)"), "{said}");
    assert!(
        said.contains("bad.service:4: Ports: invalid protocol \"sctp\" in \"80/sctp\" (expected tcp or udp)"),
        "{said}"
    );
    h.start_daemon();
    let o = h.run(&["start", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad is invalid: bad.service:3: Ports: invalid port \"99999\""), "{err}");
}
