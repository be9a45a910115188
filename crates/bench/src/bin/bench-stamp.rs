//! The service every supervisor runs in the benchmark.
//!
//! `bench-stamp FILE` appends its own start time (CLOCK_REALTIME, nanoseconds, one line) to FILE
//! and exits 0 at once: restarting it measures the supervisor's own cost plus one fork/exec of a
//! tiny program. `bench-stamp --idle FILE` writes the stamp, then sleeps until killed: an idle
//! service whose stamp says when it started. `bench-stamp --exit-when TRIGGER CODE FILE` waits
//! (checking every millisecond) until TRIGGER exists, then appends the time to FILE and exits
//! with CODE: a crash whose stamp says when it happened.
//! `bench-stamp --flood BYTES FILE` writes the stamp, then BYTES of 100-byte lines to stdout as
//! fast as it can, then a line `FLOOD-END`, then sleeps until killed: a log flood whose end the
//! benchmark looks for in the supervisor's log file.
//! `bench-stamp --exit CODE FILE` writes the stamp and exits with CODE at once: restarting it
//! measures a crash loop (CODE 1) against the clean one (CODE 0).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn stamp(file: &OsString, now: u128) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(format!("{now}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("bench-stamp: {}: {e}", Path::new(file).display());
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: bench-stamp [--idle] FILE | bench-stamp --flood BYTES FILE | bench-stamp --exit CODE FILE | bench-stamp --exit-when TRIGGER CODE FILE");
    std::process::exit(2);
}

fn main() {
    // Read the clock first: the stamp is the moment the program began to run.
    let now = now_ns();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("--exit-when") => {
            let [_, trigger, code, file] = &args[..] else { usage() };
            let code: i32 = code.to_str().and_then(|c| c.parse().ok()).unwrap_or_else(|| usage());
            while !Path::new(trigger).exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
            stamp(file, now_ns());
            std::process::exit(code);
        }
        Some("--flood") => {
            let [_, bytes, file] = &args[..] else { usage() };
            let bytes: u64 = bytes.to_str().and_then(|c| c.parse().ok()).unwrap_or_else(|| usage());
            stamp(file, now);
            let line = [b"x".repeat(99), b"\n".to_vec()].concat();
            let chunk = line.repeat(640); // 64,000 bytes a write
            let mut out = std::io::stdout().lock();
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if out.write_all(&chunk[..n]).is_err() {
                    std::process::exit(1);
                }
                left -= n as u64;
            }
            let _ = out.write_all(b"FLOOD-END\n").and_then(|()| out.flush());
            drop(out);
            loop {
                std::thread::park();
            }
        }
        Some("--exit") => {
            let [_, code, file] = &args[..] else { usage() };
            let code: i32 = code.to_str().and_then(|c| c.parse().ok()).unwrap_or_else(|| usage());
            stamp(file, now);
            std::process::exit(code);
        }
        Some("--idle") => {
            let [_, file] = &args[..] else { usage() };
            stamp(file, now);
            loop {
                std::thread::park();
            }
        }
        _ => {
            let [file] = &args[..] else { usage() };
            stamp(file, now);
        }
    }
}
