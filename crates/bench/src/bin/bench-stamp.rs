//! The service every supervisor runs in the benchmark.
//!
//! `bench-stamp FILE` appends its own start time (CLOCK_REALTIME, nanoseconds, one line) to FILE
//! and exits 0 at once: restarting it measures the supervisor's own cost plus one fork/exec of a
//! tiny program. `bench-stamp --idle FILE` writes the stamp, then sleeps until killed: an idle
//! service whose stamp says when it started.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    // Read the clock first: the stamp is the moment the program began to run.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut args = std::env::args_os().skip(1);
    let mut idle = false;
    let mut file = args.next();
    if file.as_deref() == Some("--idle".as_ref()) {
        idle = true;
        file = args.next();
    }
    let Some(file) = file else {
        eprintln!("usage: bench-stamp [--idle] FILE");
        std::process::exit(2);
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(format!("{now}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("bench-stamp: {}: {e}", std::path::Path::new(&file).display());
        std::process::exit(1);
    }
    if idle {
        loop {
            std::thread::park();
        }
    }
}
