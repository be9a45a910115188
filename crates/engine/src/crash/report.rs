//! `report.json`: what a crash report says (docs/crash-reports.md).

use std::collections::HashMap;
use std::path::Path;

use gitvisor_capture::{hex, Changes, EntryKind, Streamed};
use gitvisor_protocol::ExitInfo;
use serde::Serialize;

pub const FORMAT: u32 = 1;

/// Diff text report.json holds of one file, and of all: it is read first, and whole, by every
/// listing of the reports, so it stays small; `changes.patch` in the archive has every diff
/// whole. A config's diff is rarely more than a few hundred bytes.
pub const DIFF_IN_REPORT_PER_FILE: usize = 16 * 1024;
pub const DIFF_IN_REPORT_TOTAL: usize = 64 * 1024;

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
    /// Against the capture taken when the service started; `None` without a baseline. The
    /// modified files' diffs bounded ([`bound_diffs`]).
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

/// Bounds the diffs `changes` holds, for report.json: each cut at a line end within
/// [`DIFF_IN_REPORT_PER_FILE`], [`DIFF_IN_REPORT_TOTAL`] in all, in entry order; a diff cut, or
/// left out once the total is spent, gets a `diff_note` saying so and that `changes.patch` has
/// it whole.
pub fn bound_diffs(changes: &mut Changes) {
    let mut left = DIFF_IN_REPORT_TOTAL;
    for m in &mut changes.modified {
        let Some(diff) = &mut m.diff else { continue };
        let room = left.min(DIFF_IN_REPORT_PER_FILE);
        if diff.len() > room {
            let whole = diff.len();
            // Up to the last line end within the room (a line end is a character boundary).
            match diff.as_bytes()[..room].iter().rposition(|b| *b == b'\n') {
                Some(end) => {
                    diff.truncate(end + 1);
                    m.diff_note = Some(format!(
                        "cut here at {} of its {whole} bytes: changes.patch in the report has it whole",
                        diff.len()
                    ));
                }
                None => {
                    m.diff = None;
                    m.diff_note = Some(format!(
                        "left out here ({} KiB of diffs at most): changes.patch in the report has it",
                        DIFF_IN_REPORT_TOTAL / 1024
                    ));
                    continue;
                }
            }
        }
        left -= diff.len();
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::SystemTime;

    use gitvisor_capture::{Alteration, Altered, Capture, Entry, Modified, Rewritten};

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
            texts: Vec::new(),
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

    fn with_diff(path: &str, diff: String) -> Modified {
        Modified { diff: Some(diff), ..Modified::new(path, 1, 2) }
    }

    /// A diff of `lines` lines of 100 bytes each.
    fn diff_of(lines: usize) -> String {
        (0..lines).map(|i| format!("+{i:098}\n")).collect()
    }

    #[test]
    fn diffs_are_cut_at_a_line_end_and_bounded_in_all() {
        let mut changes = Changes {
            modified: vec![
                with_diff("small", diff_of(3)),
                Modified { diff_note: Some("binary".into()), ..Modified::new("logo.png", 1, 2) },
                with_diff("large", diff_of(1000)),
                with_diff("more-1", diff_of(160)),
                with_diff("more-2", diff_of(160)),
                with_diff("more-3", diff_of(160)),
                with_diff("late", diff_of(160)),
                with_diff("tiny", diff_of(1)),
            ],
            ..Changes::default()
        };
        let whole = changes.patch();

        bound_diffs(&mut changes);

        let m = &changes.modified;
        assert_eq!((m[0].diff.as_deref(), m[0].diff_note.as_deref()), (Some(diff_of(3).as_str()), None));
        assert_eq!((m[1].diff.as_deref(), m[1].diff_note.as_deref()), (None, Some("binary")));
        // 16 KiB holds 163 lines of 100 bytes: cut after the last of them.
        assert_eq!(m[2].diff.as_deref(), Some(diff_of(163).as_str()));
        assert_eq!(
            m[2].diff_note.as_deref(),
            Some("cut here at 16300 of its 100000 bytes: changes.patch in the report has it whole")
        );
        let held: usize = m.iter().filter_map(|m| m.diff.as_ref()).map(String::len).sum();
        assert!(held <= DIFF_IN_REPORT_TOTAL, "{held}");
        // The total is spent within "late": what fits of it, then nothing of "tiny".
        assert!(m[6].diff_note.as_deref().is_some_and(|n| n.starts_with("cut here at")), "{:?}", m[6]);
        assert_eq!(m[7].diff, None);
        assert_eq!(
            m[7].diff_note.as_deref(),
            Some("left out here (64 KiB of diffs at most): changes.patch in the report has it")
        );
        // Every line kept is a whole line of the patch.
        assert!(changes.patch().lines().all(|l| l.len() == 99), "cut inside a line");
        assert!(whole.len() > changes.patch().len());
    }
}
