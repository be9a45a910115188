//! `report.json`: what a crash report says (docs/crash-reports.md).

use gitvisor_capture::{hex, Capture, Changes, EntryKind};
use gitvisor_protocol::ExitInfo;
use serde::Serialize;

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: u32,
    /// `crash`, or `capture` for a manual `gitvisor capture`.
    pub kind: String,
    pub id: String,
    pub service: String,
    pub unit_file: String,
    pub commit: Option<String>,
    pub pid: Option<u32>,
    /// One line: `exited with status 3`, `killed by SIGSEGV`...
    pub reason: String,
    pub exit: Option<ExitInfo>,
    pub oom: bool,
    pub started_at: Option<String>,
    pub exited_at: Option<String>,
    pub uptime_ms: Option<u64>,
    pub restarts: u32,
    pub peak_memory_kb: Option<u64>,
    pub cpu_time_ms: Option<u64>,
    pub host: String,
    pub engine_version: String,
    pub workdir: Workdir,
    /// Against the capture taken when the service started; `None` without a baseline.
    pub changes: Option<Changes>,
    pub baseline_taken_at: Option<String>,
    /// Reports of this crash loop not kept (only the first and latest few are).
    pub suppressed: u64,
    pub log_lines: usize,
    /// `[Watch]`: the crash came after a change to the service's files restarted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_change: Option<AfterChange>,
}

/// The change that restarted a watched service before it crashed.
#[derive(Debug, Clone, Serialize)]
pub struct AfterChange {
    /// The first path changed, relative to the working directory when under it.
    pub path: String,
    /// Other paths changed with it.
    pub more: usize,
    /// From the restart the change asked for to the crash.
    pub seconds_before_crash: f64,
    /// "crashed 0.3 s after a change to src/app.ts".
    pub summary: String,
}

impl AfterChange {
    /// The change, if the crash at `exit_ms` came after it.
    pub fn of(change: Option<&crate::watch::Change>, exit_ms: u64) -> Option<AfterChange> {
        let c = change.filter(|c| exit_ms >= c.at_ms)?;
        let seconds = (exit_ms - c.at_ms) as f64 / 1000.0;
        Some(AfterChange {
            path: c.path.clone(),
            more: c.more,
            seconds_before_crash: seconds,
            summary: format!("crashed {seconds:.1} s after a change to {}", c.describe()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Workdir {
    pub root: Option<String>,
    /// `workdir/` is in the archive.
    pub included: bool,
    /// Why it is not (capture disabled, over the budget, unreadable...).
    pub note: Option<String>,
    pub total_bytes: u64,
    pub files: Vec<FileInfo>,
    pub skipped: Vec<SkipInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkipInfo {
    pub path: String,
    pub reason: String,
}

/// The file list and skips of a capture, for report.json.
pub fn describe(capture: &Capture) -> (Vec<FileInfo>, Vec<SkipInfo>) {
    let files = capture
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { sha256, size, .. } => Some(FileInfo {
                path: e.path.to_string_lossy().into_owned(),
                size: *size,
                sha256: hex(sha256),
            }),
            _ => None,
        })
        .collect();
    let skipped = capture
        .skipped
        .iter()
        .map(|s| SkipInfo { path: s.path.to_string_lossy().into_owned(), reason: s.reason.to_string() })
        .collect();
    (files, skipped)
}
