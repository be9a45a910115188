//! Socket abuse: what a peer of the engine's own user can throw at its socket — random bytes,
//! truncated JSON, a 100 MiB line, a thousand idle connections, a subscriber that never reads —
//! gets an error or is dropped, the engine's memory stays bounded, and a `status` beside it keeps
//! answering. The figures are printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use gitvisor_testkit::Home;

use crate::home;

fn connect(h: &Home) -> UnixStream {
    let s = UnixStream::connect(h.path().join("gitvisor.sock")).expect("connect to the engine");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How long a `gitvisor status` takes, and that it answers.
fn status_time(h: &Home) -> Duration {
    let t = Instant::now();
    let out = h.run_within(&["status", "--json"], Duration::from_secs(30)).expect("status ran");
    assert!(out.status.success(), "status failed: {out:?}");
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn first_line(s: &UnixStream) -> String {
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap()).read_line(&mut line).expect("a reply");
    line
}

#[test]
fn garbage_huge_lines_idle_crowds_and_deaf_subscribers_get_errors_and_status_keeps_answering() {
    let mut h = home();
    h.sh_unit("ticker", "while :; do echo tick; sleep 0.01; done", "");
    h.start_daemon();
    h.ok(&["start", "ticker"]);
    let engine = h.daemon_pid();
    let baseline = median((0..5).map(|_| status_time(&h)).collect());
    let rss_before = rss_kb(engine);

    // Random bytes (some newlines among them): a parse error, the connection goes on.
    let mut s = connect(&h);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .chain([b'\n'])
        .collect();
    s.write_all(&garbage).unwrap();
    let reply = first_line(&s);
    assert!(reply.contains("\"error\""), "{reply}");

    // Truncated JSON: a parse error naming it.
    let mut s = connect(&h);
    s.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"hel\n").unwrap();
    let reply = first_line(&s);
    assert!(reply.contains("invalid JSON"), "{reply}");

    // A 100 MiB line: refused as too large, read past without being held.
    let s = connect(&h);
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..100 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"\n");
        })
    };
    let mut during = Vec::new();
    while !writer.is_finished() {
        during.push(status_time(&h));
    }
    writer.join().unwrap();
    let reply = first_line(&s);
    assert!(reply.contains("frame larger than"), "{reply}");
    let rss_huge = rss_kb(engine);
    s.shutdown(std::net::Shutdown::Both).ok();

    // A thousand idle connections: served or refused, never starving the rest.
    raise_own_open_files();
    let idle: Vec<UnixStream> =
        (0..1000).filter_map(|_| UnixStream::connect(h.path().join("gitvisor.sock")).ok()).collect();
    assert_eq!(idle.len(), 1000);
    let with_idle: Vec<Duration> = (0..5).map(|_| status_time(&h)).collect();
    let rss_idle = rss_kb(engine);
    drop(idle);

    // A subscriber that never reads, while the engine makes events: the engine does not hold
    // them for it without bound.
    let mut deaf = connect(&h);
    deaf.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"protocol\":2,\"client\":\"deaf\"}}\n").unwrap();
    deaf.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\"}\n").unwrap();
    let mut follow = connect(&h);
    follow.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"protocol\":2,\"client\":\"deaf\"}}\n").unwrap();
    follow.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"logs\",\"params\":{\"names\":[\"ticker\"],\"lines\":10,\"follow\":true}}\n").unwrap();
    let mut with_deaf = Vec::new();
    for _ in 0..30 {
        h.ok(&["restart", "ticker"]);
        with_deaf.push(status_time(&h));
    }
    let rss_deaf = rss_kb(engine);
    // It is still there, and a reader that starts reading gets what was kept.
    let mut buf = [0u8; 4096];
    deaf.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(deaf.read(&mut buf).unwrap_or(0) > 0);

    println!(
        "status: {baseline:?} alone, {:?} (median) during the 100 MiB line, {:?} with 1000 idle connections, \
         {:?} with deaf subscribers; engine RSS {rss_before} KiB before, {rss_huge} after the huge line, \
         {rss_idle} with 1000 connections, {rss_deaf} with deaf subscribers",
        median(during.clone()),
        median(with_idle.clone()),
        median(with_deaf.clone()),
    );
    // Bounded: at most a frame buffer for the line; a few KiB a connection; the bus's queues.
    assert!(rss_huge < rss_before + 16 * 1024, "the 100 MiB line grew the engine to {rss_huge} KiB");
    assert!(rss_idle < rss_before + 48 * 1024, "1000 idle connections took the engine to {rss_idle} KiB");
    assert!(rss_deaf < rss_before + 48 * 1024, "deaf subscribers took the engine to {rss_deaf} KiB");
    let worst = [during, with_idle, with_deaf].concat().into_iter().max().unwrap();
    assert!(worst < Duration::from_secs(10), "a status took {worst:?} under abuse");
    assert_eq!(h.stop_daemon(), Some(0));
}

/// The test opens a thousand sockets: more than a 1024 soft limit allows.
fn raise_own_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 && hard >= 4096 {
        setrlimit(Resource::RLIMIT_NOFILE, 4096, hard).unwrap();
    }
}
