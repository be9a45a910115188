//! The daemon as a program: one per home, its state file, its socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use gitvisor_protocol::PROTOCOL_VERSION;
use gitvisor_testkit::{Home, DEADLINE};
use serde_json::{json, Value};

use crate::home;

#[test]
fn a_second_daemon_on_the_same_home_refuses_to_start() {
    let mut h = home();
    h.start_daemon();
    let o = h.run(&["daemon"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another gitvisor engine") && err.contains(&format!("pid {}", h.daemon_pid())),
        "{err}"
    );
    // The first one is unharmed.
    h.status();
}

#[test]
fn sigterm_stops_services_in_reverse_dependency_order_and_exits_0() {
    let mut h = home();
    let w = h.work();
    let stop_stamp = |n: &str| {
        format!("trap 'date +%%s%%N > {}/{n}; exit 0' TERM; while true; do sleep 0.05; done", w.display())
    };
    h.sh_unit("base", &stop_stamp("base"), "[Install]\nWantedBy=default.target");
    h.sh_unit(
        "top",
        &stop_stamp("top"),
        "[Unit]\nRequires=base\nAfter=base\n[Install]\nWantedBy=default.target",
    );
    h.start_daemon();
    h.wait_state("top", "running");
    assert_eq!(h.stop_daemon(), Some(0));
    let t = |n: &str| -> u128 { std::fs::read_to_string(w.join(n)).unwrap().trim().parse().unwrap() };
    assert!(t("top") <= t("base"), "top must stop before base");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(h.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["clean_shutdown"], true);
    assert!(!h.path().join("gitvisor.sock").exists());
}

#[test]
fn a_corrupt_state_file_is_moved_aside_and_defaults_used() {
    let mut h = home();
    std::fs::write(h.path().join("state.json"), b"{ this is not json").unwrap();
    h.sh_unit("svc", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    h.wait_state("svc", "running");
    let aside: Vec<String> = std::fs::read_dir(h.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.bak-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        aside[0].ends_with('Z') && aside[0].len() == "state.json.bak-20261122T110000Z".len(),
        "{}",
        aside[0]
    );
    assert_eq!(std::fs::read(h.path().join(&aside[0])).unwrap(), b"{ this is not json");
    assert!(h.daemon_log().contains("state.json"), "the warning is logged");
}

fn connect(h: &Home) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(h.path().join("gitvisor.sock")).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    (BufReader::new(s.try_clone().unwrap()), s)
}

fn read_json(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn send(w: &mut UnixStream, v: &Value) {
    w.write_all(format!("{v}\n").as_bytes()).unwrap();
}

#[test]
fn the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut h = home();
    h.start_daemon();
    let mode = std::fs::metadata(h.path().join("gitvisor.sock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn handshake_is_required_and_versions_are_checked() {
    let mut h = home();
    h.start_daemon();
    let (mut r, mut w) = connect(&h);
    send(&mut w, &json!({"jsonrpc": "2.0", "id": 1, "method": "status"}));
    assert_eq!(read_json(&mut r)["error"]["code"], -32001);
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "hello", "params": {"protocol": 999, "client": "t"}}),
    );
    let v = read_json(&mut r);
    assert_eq!(v["error"]["code"], -32002);
    assert!(v["error"]["message"].as_str().unwrap().contains("999"));
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "id": 3, "method": "hello", "params": {"protocol": PROTOCOL_VERSION, "client": "t"}}),
    );
    assert_eq!(read_json(&mut r)["result"]["protocol"], PROTOCOL_VERSION);
    send(&mut w, &json!({"jsonrpc": "2.0", "id": 4, "method": "nope"}));
    assert_eq!(read_json(&mut r)["error"]["code"], -32601);
    send(&mut w, &json!({"jsonrpc": "2.0", "id": 5, "method": "start", "params": {"names": "not-a-list"}}));
    assert_eq!(read_json(&mut r)["error"]["code"], -32602);
    send(&mut w, &json!({"jsonrpc": "2.0", "id": 6, "method": "stop", "params": {"names": ["ghost"]}}));
    let v = read_json(&mut r);
    assert_eq!(v["error"]["code"], 1);
    assert_eq!(v["error"]["message"], "no service named ghost");
}

#[test]
fn garbage_and_huge_frames_get_errors_while_status_still_answers() {
    let mut h = home();
    h.sh_unit("svc", "exec sleep 1000", "[Install]\nWantedBy=default.target");
    h.start_daemon();
    let (mut r, mut w) = connect(&h);
    w.write_all(b"this is not json\n").unwrap();
    assert_eq!(read_json(&mut r)["error"]["code"], -32700);
    w.write_all(b"\xff\xfe\xfd\n").unwrap();
    assert_eq!(read_json(&mut r)["error"]["code"], -32700);
    w.write_all(b"[1,2,3]\n").unwrap();
    assert_eq!(read_json(&mut r)["error"]["code"], -32600);

    // A 10 MiB frame, written from another thread while a second client asks for status.
    let mut w2 = w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            w2.write_all(&chunk).unwrap();
        }
        w2.write_all(b"\n").unwrap();
    });
    let status = h.status();
    assert_eq!(status["services"][0]["state"], "running");
    writer.join().unwrap();
    let v = read_json(&mut r);
    assert_eq!(v["error"]["code"], -32600);
    assert!(v["error"]["message"].as_str().unwrap().contains("larger than 1048576 bytes"));
    // The same connection still works.
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "id": 9, "method": "hello", "params": {"protocol": PROTOCOL_VERSION, "client": "t"}}),
    );
    assert_eq!(read_json(&mut r)["id"], 9);
}

#[test]
#[cfg_attr(not(gitvisor_test_root), ignore = "needs root: run the suite as root (CI does)")]
fn a_peer_of_another_uid_is_refused() {
    crate::need_root("acting as another uid");
    let mut h = home();
    h.start_daemon();
    let sock = h.path().join("gitvisor.sock");
    // Even with the socket's mode opened up, the peer-credential check refuses another uid.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::set_permissions(h.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(format!(
            // The engine answers a refused peer at once, before it sends anything.
            "import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\nprint(s.makefile().readline())",
            sock.display().to_string()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refused"), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("\"result\""));
}
