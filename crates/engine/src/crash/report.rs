//! `report.json`: what a crash report says (docs/crash-reports.md).

use std::collections::HashMap;
use std::path::Path;

use gitvisor_capture::{hex, Changes, EntryKind, Streamed};
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
    /// The file changed size, or failed to read, while it was captured: what `workdir/` holds
    /// of it (cut, or padded with NUL bytes, to its size when opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkipInfo {
    pub path: String,
    pub reason: String,
}

/// The file list and skips of a capture, for report.json: each file as `workdir/` holds it (an
/// environment file redacted).
pub fn describe(streamed: &Streamed) -> (Vec<FileInfo>, Vec<SkipInfo>) {
    let rewritten: HashMap<&Path, _> = streamed.rewritten.iter().map(|r| (r.path.as_path(), r)).collect();
    let altered: HashMap<&Path, _> = streamed.altered.iter().map(|a| (a.path.as_path(), a)).collect();
    let capture = &streamed.capture;
    let files = capture
        .entries
        .iter()
        .filter_map(|e| {
            let EntryKind::File { sha256, size, .. } = &e.kind else { return None };
            let (size, sha256) = match rewritten.get(e.path.as_path()) {
                Some(r) => (r.size, &r.sha256),
                None => (*size, sha256),
            };
            Some(FileInfo {
                path: e.path.to_string_lossy().into_owned(),
                size,
                sha256: hex(sha256),
                note: altered.get(e.path.as_path()).map(|a| a.to_string()),
            })
        })
        .collect();
    let skipped = capture
        .skipped
        .iter()
        .map(|s| SkipInfo { path: s.path.to_string_lossy().into_owned(), reason: s.reason.to_string() })
        .collect();
    (files, skipped)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::SystemTime;

    use gitvisor_capture::{Alteration, Altered, Capture, Entry, Rewritten};

    use super::*;

    fn file(path: &str, size: u64, byte: u8) -> Entry {
        let kind = EntryKind::File { content: None, sha256: [byte; 32], size, executable: false };
        Entry { path: path.into(), kind }
    }

    #[test]
    fn files_are_listed_as_archived_with_a_note_when_they_changed_while_captured() {
        let capture = Capture {
            root: PathBuf::from("/srv/app"),
            taken_at: SystemTime::now(),
            entries: vec![file("app.env", 20, 1), file("grows.log", 10, 2), file("same.txt", 5, 3)],
            skipped: Vec::new(),
            total_bytes: 35,
            stamps: Default::default(),
        };
        let streamed = Streamed {
            capture,
            rewritten: vec![Rewritten { path: "app.env".into(), size: 24, sha256: [9; 32] }],
            altered: vec![Altered { path: "grows.log".into(), size: 10, how: Alteration::Grew }],
            archived_bytes: 39,
            complete: true,
        };
        let (files, _) = describe(&streamed);
        let json = serde_json::to_value(&files).unwrap();
        assert_eq!(json[0], serde_json::json!({"path": "app.env", "size": 24, "sha256": hex(&[9; 32])}));
        assert_eq!(
            json[1]["note"], "grew while captured: cut at the 10 bytes it had when opened",
            "{json:#}"
        );
        assert_eq!(json[2], serde_json::json!({"path": "same.txt", "size": 5, "sha256": hex(&[3; 32])}));
    }
}
