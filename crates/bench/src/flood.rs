//! Log throughput: one service writing as fast as it can, and how fast its output reaches the
//! supervisor's log file, with the supervisor's CPU and memory meanwhile.
//!
//! The service (`bench-stamp --flood`) stamps its start, writes the payload, then a last line
//! `FLOOD-END`. The figure is the payload divided by the time from that start stamp to the
//! moment the benchmark finds `FLOOD-END` at the end of a `*.log` file under the scenario's
//! directory (polled every 10 ms), so a supervisor that buffers or throttles is measured as a
//! user sees it: until the last line is on disk.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::figures::{cost, GroupCost, Snapshot};
use crate::process::{sweep, wait_for};
use crate::procfs;
use crate::stamps::{self, now_ns};
use crate::supervisors::{Scenario, Supervisor};
use crate::Result;

const MARKER: &[u8] = b"FLOOD-END\n";

#[derive(Serialize, Clone, Debug)]
pub struct Flood {
    pub payload_bytes: u64,
    /// From the writer's start to its last line found in the log file, seconds.
    pub seconds: f64,
    pub mib_per_s: f64,
    /// The supervisor's processes over the flood (CPU from the writer's start to the end).
    pub groups: Vec<GroupCost>,
    /// The largest RSS sum of the supervisor's processes seen while polling, KiB.
    pub peak_rss_kib: u64,
    /// Bytes of `*.log` files at the end (the payload plus each supervisor's own line prefixes).
    pub log_bytes: u64,
}

fn logs_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => logs_under(&p, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "log") => out.push(p),
            _ => {}
        }
    }
}

fn ends_with_marker(p: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(p) else { return false };
    let Ok(len) = f.seek(SeekFrom::End(0)) else { return false };
    if len < MARKER.len() as u64 + 64 {
        return false;
    }
    let mut tail = vec![0u8; 64 + MARKER.len()];
    if f.seek(SeekFrom::Start(len - tail.len() as u64)).is_err() || f.read_exact(&mut tail).is_err() {
        return false;
    }
    // A supervisor may end the line with its own suffix or put a prefix before it: look for the
    // marker's text in the last bytes.
    tail.windows(MARKER.len() - 1).any(|w| w == &MARKER[..MARKER.len() - 1])
}

pub fn flood(sup: &dyn Supervisor, dir: &Path, bytes: u64) -> Result<Flood> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("flood-stamp");
    let outcome = (|| -> Result<Flood> {
        let mut session = sup.launch(dir, &Scenario::Flood { file: &file, bytes })?;
        // The supervisor's processes exist once the writer has started.
        let started = wait_for(Duration::from_secs(60), Duration::from_millis(2), || {
            !stamps::read(&file).is_empty() || session.check().is_err()
        })?;
        session.check()?;
        if !started {
            return Err("the flood service did not start within 60 s".into());
        }
        let groups = session.groups();
        let before: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
        let mut peak_rss_kib = 0;
        let mut err = None;
        let mut logs = Vec::new();
        let done = wait_for(Duration::from_secs(600), Duration::from_millis(10), || {
            if let Err(e) = session.check() {
                err = Some(e);
                return true;
            }
            let rss: u64 = groups.iter().flat_map(|g| &g.pids).filter_map(|&p| procfs::rss_kib(p)).sum();
            peak_rss_kib = peak_rss_kib.max(rss);
            logs.clear();
            logs_under(dir, &mut logs);
            logs.iter().any(|p| ends_with_marker(p))
        })?;
        let end = now_ns();
        if let Some(e) = err {
            return Err(e);
        }
        if !done {
            return Err("the flood's last line did not reach a log file within 600 s".into());
        }
        let after: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
        let costs = groups.iter().zip(before.iter().zip(&after)).map(|(g, (b, a))| cost(g, b, a)).collect();
        let start = stamps::read(&file).first().copied().unwrap_or(end);
        let seconds = end.saturating_sub(start) as f64 / 1e9;
        let log_bytes = logs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        session.stop()?;
        Ok(Flood {
            payload_bytes: bytes,
            seconds,
            mib_per_s: bytes as f64 / (1024.0 * 1024.0) / seconds.max(1e-9),
            groups: costs,
            peak_rss_kib,
            log_bytes,
        })
    })();
    sweep(dir);
    outcome
}
