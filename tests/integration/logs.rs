//! Service output: timestamped files, rotation, tail and follow.

use std::time::{Duration, Instant};

use gitvisor_testkit::{alive, wait_line, ChildLines, Home};

use crate::home;

#[test]
fn output_lines_are_timestamped_with_their_stream() {
    let mut h = home();
    h.sh_unit("talker", "echo to-out; echo to-err >&2; printf partial; exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "talker"]);
    h.wait_until("three lines in the file", || {
        let t = std::fs::read_to_string(h.path().join("logs/talker.log")).unwrap_or_default();
        t.contains(" out to-out") && t.contains(" err to-err")
    });
    let text = std::fs::read_to_string(h.path().join("logs/talker.log")).unwrap();
    for line in text.lines() {
        let ts = line.split(' ').next().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "bad timestamp in {line:?}"
        );
    }
    // The keeper runs from its own small executable installed beside the CLI, not from the
    // CLI's (whose whole engine would count in its memory for as long as services run).
    let keeper = keeper_pid(&h).expect("a keeper runs");
    let exe = std::fs::read_link(format!("/proc/{keeper}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "gitvisor-keeper", "{}", exe.display());
    let logs = h.ok(&["logs", "talker", "-n", "10"]);
    assert!(logs.contains("out to-out") && logs.contains("err to-err"), "{logs}");
    assert!(logs.contains("gitvisor started process"), "the engine's own notes are in the log: {logs}");
    // The partial line is written when the process ends.
    h.ok(&["stop", "talker"]);
    wait_line(&h.path().join("logs/talker.log"), |l| l.contains(" out partial"));
}

#[test]
fn logs_n_limits_and_unknown_service_is_an_error() {
    let mut h = home();
    h.sh_unit("counter", "for i in $(seq 1 20); do echo line $i; done; exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "counter"]);
    // The engine's own note about the baseline capture may come after the output: wait for both.
    h.wait_until("all lines", || {
        let all = h.ok(&["logs", "counter", "-n", "100"]);
        all.contains("line 20") && all.contains("baseline capture")
    });
    let all = h.ok(&["logs", "counter", "-n", "100"]);
    let all: Vec<&str> = all.lines().collect();
    let out = h.ok(&["logs", "counter", "-n", "3"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, all[all.len() - 3..].to_vec(), "the last three of {all:#?}");
    let outs: Vec<&&str> = all.iter().filter(|l| l.contains(" out ")).collect();
    assert_eq!(outs.len(), 20);
    assert!(outs[0].ends_with("line 1") && outs[19].ends_with("line 20"));
    let o = h.run(&["logs", "ghost"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "gitvisor: no service named ghost");
}

#[test]
fn follow_shows_lines_printed_after_it_started() {
    let mut h = home();
    let trigger = h.work().join("go");
    h.sh_unit(
        "later",
        &format!(
            "echo before; while [ ! -e {} ]; do sleep 0.02; done; echo after-follow; exec sleep 1000",
            trigger.display()
        ),
        "",
    );
    h.start_daemon();
    h.ok(&["start", "later"]);
    h.wait_until("first line", || h.ok(&["logs", "later"]).contains("before"));
    let mut follow = h.cmd();
    follow.args(["logs", "later", "-f", "-n", "1"]);
    let mut follower = ChildLines::spawn(follow, "gitvisor logs -f");
    follower.next_line();
    std::fs::write(&trigger, "").unwrap();
    let mut seen = String::new();
    for _ in 0..10 {
        let line = follower.next_line();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("after-follow") {
            break;
        }
    }
    drop(follower);
    assert!(seen.contains("after-follow"), "{seen}");
}

#[test]
fn log_files_rotate_with_a_bounded_count() {
    let mut h = home();
    std::fs::write(h.path().join("config.toml"), "[logs]\nmax_file_size = \"4K\"\nmax_files = 2\n").unwrap();
    h.sh_unit("flood", "i=0; while [ $i -lt 2000 ]; do echo \"line $i padding padding padding\"; i=$((i+1)); done; exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "flood"]);
    // The engine's own notes may follow the output and rotate the last line into flood.log.1.
    h.wait_until("the last line is written", || {
        ["logs/flood.log", "logs/flood.log.1"]
            .iter()
            .any(|f| std::fs::read_to_string(h.path().join(f)).unwrap_or_default().contains("line 1999 "))
    });
    let logs = h.path().join("logs");
    assert!(std::fs::metadata(logs.join("flood.log")).unwrap().len() <= 4096);
    assert!(logs.join("flood.log.1").exists() && logs.join("flood.log.2").exists());
    assert!(!logs.join("flood.log.3").exists());
}

#[test]
fn a_service_flooding_output_does_not_slow_the_engine() {
    let mut h = home();
    h.sh_unit("firehose", "exec yes firehose-line-of-some-length", "");
    h.sh_unit("other", "exec sleep 1000", "");
    h.start_daemon();
    // Five start/stop cycles of another service and a status, timed: the slowest cycle.
    let cycles = |h: &Home| -> Duration {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                h.ok(&["start", "other"]);
                h.ok(&["stop", "other"]);
                h.ok(&["status", "--json"]);
                t.elapsed()
            })
            .max()
            .unwrap()
    };
    let quiet = cycles(&h);
    h.ok(&["start", "firehose"]);
    h.wait_until("the flood reaches its log", || {
        std::fs::metadata(h.path().join("logs/firehose.log")).is_ok_and(|m| m.len() > 1 << 20)
    });
    // While it floods, the engine still starts, stops and answers. The bound is loose on
    // purpose (a 2-core machine shares its cores with the flood and the keeper writing it),
    // but an engine that read the flood itself, or waited on its keeper, is far slower.
    let flooded = cycles(&h);
    let bound = quiet * 10 + Duration::from_secs(2);
    assert!(flooded < bound, "a cycle took {flooded:?} while flooding, {quiet:?} before");
    h.ok(&["stop", "firehose"]);
}

#[test]
fn a_killed_log_keeper_is_replaced_and_output_flows_again() {
    let mut h = home();
    h.sh_unit("chatty", "while true; do echo chat $$$$; sleep 0.05; done", "Restart=always\nRestartSec=0");
    h.start_daemon();
    h.ok(&["start", "chatty"]);
    let first = h.pid("chatty").unwrap();
    let keeper = keeper_pid(&h).expect("a keeper runs");
    unsafe { libc::kill(keeper as i32, libc::SIGKILL) };
    // Its next write gets SIGPIPE; the restarted process logs through a new keeper.
    h.wait_until("a new process logs again", || {
        h.pid("chatty").is_some_and(|p| p != first)
            && std::fs::read_to_string(h.path().join("logs/chatty.log"))
                .unwrap_or_default()
                .contains(&format!("chat {}", h.pid("chatty").unwrap()))
    });
    assert_ne!(keeper_pid(&h), Some(keeper));
}

pub(crate) fn keeper_pid(h: &Home) -> Option<u32> {
    let needle = format!("__log-keeper\0{}", h.path().join("logs").display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        (String::from_utf8_lossy(&cmd).contains(&needle) && alive(pid)).then_some(pid)
    })
}

#[test]
fn lines_the_engine_was_too_slow_to_take_are_counted_in_a_gap_marker() {
    let mut h = home();
    let (go, release) = (h.work().join("go"), h.work().join("release"));
    // A flood when the test says, then a line now and then when it says again.
    let wait = |f: &std::path::Path| format!("while [ ! -e {} ]; do sleep 0.05; done", f.display());
    let script = format!(
        "{}; yes firehose-line | head -n 100000; {}; while :; do echo after; sleep 0.2; done",
        wait(&go),
        wait(&release)
    );
    h.sh_unit("firehose", &script, "");
    h.start_daemon();
    // The engine cannot read while stopped: what the keeper forwards meanwhile overflows.
    let engine = nix::unistd::Pid::from_raw(h.daemon_pid() as i32);
    h.ok(&["start", "firehose"]);
    nix::sys::signal::kill(engine, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::fs::write(&go, "").unwrap();
    let log = h.path().join("logs/firehose.log");
    gitvisor_testkit::wait_until("the whole flood is in the file", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.matches(" out firehose-line").count() >= 100_000)
    });
    nix::sys::signal::kill(engine, nix::sys::signal::Signal::SIGCONT).unwrap();
    std::fs::write(&release, "").unwrap();
    // A line the keeper forwards once the engine reads again brings the count of those it
    // could not.
    let marker = h.wait_for("the gap marker", || {
        let out = h.ok(&["logs", "firehose", "-n", "50"]);
        out.lines()
            .find(|l| l.contains(" lines not shown here: the engine was too slow; they are in the file]"))
            .map(str::to_string)
    });
    let missed: u64 = marker.split('[').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(missed > 0 && missed <= 100_000, "{marker}");
}

#[test]
fn a_line_over_64_kib_is_split() {
    let mut h = home();
    // 200,000 bytes and no newline until the end: four pieces of at most 64 KiB.
    h.sh_unit("long", "yes x | head -c 400000 | tr -d [:space:]; echo; exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "long"]);
    let log = h.path().join("logs/long.log");
    let output_xs = |t: &str| -> usize {
        t.lines().filter(|l| l.contains(" out x")).map(|l| l.matches('x').count()).sum()
    };
    h.wait_until("the whole line is written", || {
        std::fs::read_to_string(&log).is_ok_and(|t| output_xs(&t) == 200_000)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let pieces: Vec<usize> =
        text.lines().filter(|l| l.contains(" out x")).map(|l| l.matches('x').count()).collect();
    assert_eq!(pieces, [65536, 65536, 65536, 3392], "split at 64 KiB, however the line arrived");
}

#[test]
fn the_log_keeper_leaves_when_it_has_nothing_to_hold() {
    let mut h = home();
    h.sh_unit("svc", "exec sleep 1000", "");
    h.start_daemon();
    h.ok(&["start", "svc"]);
    let keeper = keeper_pid(&h).expect("a keeper runs");
    // The engine killed: the keeper holds the service's output and stays.
    h.kill_daemon();
    assert!(alive(keeper));
    h.start_daemon();
    assert_eq!(keeper_pid(&h), Some(keeper), "the next engine finds it");
    // A clean stop ends the services: with no pipe to hold and no engine, it leaves.
    assert_eq!(h.stop_daemon(), Some(0));
    gitvisor_testkit::wait_dead(keeper);
}

#[test]
fn logs_after_a_crash_loop_print_each_line_once() {
    let mut h = home();
    // Each process prints a burst, so lines are on their way to the engine when the crash
    // reporter first reads a tail (after the first crash). Three services: three chances.
    let names = ["loop-a", "loop-b", "loop-c"];
    for name in names {
        h.sh_unit(
            name,
            "i=0; while [ $i -lt 150 ]; do echo \"$$$$ line $i\"; i=$((i+1)); done; exit 1",
            "Restart=always\nRestartSec=0",
        );
    }
    h.start_daemon();
    h.ok(&["start", "loop-a", "loop-b", "loop-c"]);
    for name in names {
        h.wait_state(name, "failed");
        // The last thing written about it is the note of its fifth crash report.
        let file = h.path().join(format!("logs/{name}.log"));
        h.wait_until("five crash reports noted", || {
            std::fs::read_to_string(&file).unwrap().matches(" gitvisor crash report ").count() == 5
        });
        let text = std::fs::read_to_string(&file).unwrap();
        let written: Vec<&str> = text.lines().collect();
        assert!(written.len() < 1000, "all of it fits in the in-memory tail: {}", written.len());
        let logs = h.ok(&["logs", name, "-n", "1000"]);
        let printed: Vec<&str> = logs.lines().collect();
        assert_eq!(
            printed,
            written,
            "{name}: logs printed {} lines, the file has {}",
            printed.len(),
            written.len()
        );
    }
}
