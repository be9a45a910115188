//! The text of files that changed since a baseline, and their unified diffs: what a crash
//! report shows of a config someone edited while the service ran.
//!
//! A baseline holds the bytes of small text files ([`Capture::keep_contents`]). A streamed
//! capture given a [`KeepText`] looks at each file the baseline has as its bytes go by: it
//! tells whether the file is text, and keeps the bytes written to the archive of a text file
//! that changed and whose text the baseline holds, at most `per_file` bytes each and `total`
//! in all, in walk order. Whether a file changed is known once it is hashed, so the bytes of an
//! unchanged one are let go then: the capture holds its buffer, the text it keeps and one file
//! of at most `per_file` bytes, never the tree. [`text_diffs`] then gives each modified file a
//! unified diff (`--- a/PATH`, `+++ b/PATH`, 3 lines of context, as `git diff` writes it) or a
//! note saying why it has none.
//!
//! A file the capture rewrites ([`Rewrite`], a report's redacted environment file) is compared
//! rewritten on both sides: its new text is what the archive holds, and the baseline's bytes go
//! through the same rewrite. What the rewrite hides shows in neither.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use similar::TextDiff;

use crate::capture::{is_text, Capture, EntryKind, TEXT_HEAD};
use crate::diff::{Changes, Modified};
use crate::stream::{Rewrite, Streamed};

/// Lines of context around each change, as `diff -u` and `git diff` show.
const CONTEXT: usize = 3;

/// How long [`text_diffs`] spends finding the shortest diffs of a capture's files in all. Past
/// it, the diff algorithm gives up on minimal diffs and approximates: a diff is still exact
/// (applying it gives the new text), only longer. Text diffs cost a report a bounded time.
const DIFF_TIME: Duration = Duration::from_millis(500);

/// What a streamed capture keeps of the text of changed files
/// ([`crate::StreamOptions::keep_text`]).
#[derive(Clone, Debug)]
pub struct KeepText {
    /// The baseline to compare with, as [`crate::diff`] does: a file changed when its SHA-256
    /// differs from the one the baseline has at its path.
    pub baseline: Arc<Capture>,
    /// Bytes kept of one file at most (a larger one is [`NewText::TooLarge`]).
    pub per_file: u64,
    /// Bytes kept in all at most (once a changed file would pass it, [`NewText::PastTotal`]).
    pub total: u64,
}

/// What a streamed capture holds of a file that changed since the baseline
/// ([`Streamed::texts`]).
#[derive(Clone, PartialEq, Eq)]
pub enum NewText {
    /// Its bytes as written to the archive (a rewritten file's rewritten bytes): text, within
    /// the bounds, and the baseline holds its earlier text.
    Kept(Vec<u8>),
    /// A NUL byte in its first 8 KiB.
    Binary,
    /// Text over the per-file bound.
    TooLarge,
    /// Text, but the baseline holds none of it to compare with.
    NoBaselineText,
    /// Text within the per-file bound, past the total.
    PastTotal,
    /// It changed size, or failed to read, while it was written ([`crate::Altered`]).
    Altered,
}

impl fmt::Debug for NewText {
    /// The size of kept text, never the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewText::Kept(bytes) => write!(f, "Kept({} bytes)", bytes.len()),
            NewText::Binary => f.write_str("Binary"),
            NewText::TooLarge => f.write_str("TooLarge"),
            NewText::NoBaselineText => f.write_str("NoBaselineText"),
            NewText::PastTotal => f.write_str("PastTotal"),
            NewText::Altered => f.write_str("Altered"),
        }
    }
}

/// Keeps text as a streamed capture reads its files (see [`KeepText`]).
pub(crate) struct Keeper<'a> {
    spec: &'a KeepText,
    /// Bytes of [`NewText::Kept`] so far.
    kept: u64,
    pub(crate) texts: Vec<(PathBuf, NewText)>,
}

/// What the keeper wants of one file about to be read: its bytes (`keep`), or only to know
/// whether it is text.
pub(crate) struct Plan {
    /// The baseline's SHA-256 of the file.
    was: [u8; 32],
    baseline_text: bool,
    /// As the archive will hold it.
    size: u64,
    pub(crate) keep: bool,
}

/// What was seen of a file as it was read for the keeper.
pub(crate) struct Seen {
    pub(crate) text: bool,
    pub(crate) altered: bool,
    /// Its bytes, when the plan was to keep them.
    pub(crate) bytes: Option<Vec<u8>>,
}

impl<'a> Keeper<'a> {
    pub(crate) fn new(spec: &'a KeepText) -> Keeper<'a> {
        Keeper { spec, kept: 0, texts: Vec::new() }
    }

    /// What to take of the file at `path`, to be written as `size` bytes; `None` when the
    /// baseline has no file there (it was added, or was not a file).
    pub(crate) fn plan(&self, path: &Path, size: u64) -> Option<Plan> {
        let EntryKind::File { content, sha256, .. } = &self.spec.baseline.entry(path)?.kind else {
            return None;
        };
        let baseline_text = content.is_some();
        let keep =
            baseline_text && size <= self.spec.per_file && self.kept.saturating_add(size) <= self.spec.total;
        Some(Plan { was: *sha256, baseline_text, size, keep })
    }

    /// The file planned for was read, its SHA-256 being `sha256` (of the file as found, as the
    /// baseline's is): unchanged, it is let go; changed, what the capture holds of it is noted.
    pub(crate) fn read(&mut self, path: &Path, plan: Plan, sha256: &[u8; 32], seen: Seen) {
        if *sha256 == plan.was {
            return;
        }
        let text = match seen {
            Seen { altered: true, .. } => NewText::Altered,
            Seen { text: false, .. } => NewText::Binary,
            _ if plan.size > self.spec.per_file => NewText::TooLarge,
            _ if !plan.baseline_text => NewText::NoBaselineText,
            Seen { bytes: Some(bytes), .. } if plan.keep => {
                self.kept += bytes.len() as u64;
                NewText::Kept(bytes)
            }
            _ => NewText::PastTotal,
        };
        self.texts.push((path.to_path_buf(), text));
    }
}

/// Watches the bytes of a file as they are written for the keeper: whether its first 8 KiB
/// hold a NUL byte, and its bytes when they are to be kept.
pub(crate) struct Watch {
    seen: u64,
    binary: bool,
    bytes: Option<Vec<u8>>,
}

impl Watch {
    /// For a file of `size` bytes, kept when `keep`.
    pub(crate) fn new(size: u64, keep: bool) -> Watch {
        let bytes = keep.then(|| Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
        Watch { seen: 0, binary: false, bytes }
    }

    pub(crate) fn saw(&mut self, bytes: &[u8]) {
        let head = (TEXT_HEAD as u64).saturating_sub(self.seen);
        let head = usize::try_from(head).unwrap_or(usize::MAX).min(bytes.len());
        self.binary |= !is_text(&bytes[..head]);
        self.seen += bytes.len() as u64;
        if let Some(kept) = &mut self.bytes {
            kept.extend_from_slice(bytes);
        }
    }

    pub(crate) fn seen(self, altered: bool) -> Seen {
        Seen { text: !self.binary, altered, bytes: self.bytes }
    }
}

/// Gives each modified file of `changes` (against `keep.baseline`) its unified diff or, when it
/// has none, a note saying why: what `streamed` (taken with `keep`, rewritten by `rewrite`)
/// kept of it is compared with the baseline's text, rewritten too. Symlinks get a note saying
/// how they changed. Invalid UTF-8 in a text shows as U+FFFD.
pub fn text_diffs(changes: &mut Changes, keep: &KeepText, streamed: &Streamed, rewrite: Option<&Rewrite>) {
    let deadline = Instant::now() + DIFF_TIME;
    let texts: HashMap<String, (&Path, &NewText)> = streamed
        .texts
        .iter()
        .map(|(path, text)| (path.to_string_lossy().into_owned(), (path.as_path(), text)))
        .collect();
    for m in &mut changes.modified {
        let (diff, note) = match texts.get(&m.path) {
            Some((path, NewText::Kept(new))) => diff_of(m, path, new, keep, rewrite, deadline),
            Some((_, text)) => (None, Some(why_not(text, m, keep))),
            None => (None, Some(not_files(Path::new(&m.path), &keep.baseline, &streamed.capture))),
        };
        m.diff = diff;
        m.diff_note = note;
    }
}

/// The diff of a kept file against the baseline's text, or why it shows nothing.
fn diff_of(
    m: &Modified,
    path: &Path,
    new: &[u8],
    keep: &KeepText,
    rewrite: Option<&Rewrite>,
    deadline: Instant,
) -> (Option<String>, Option<String>) {
    let old = match keep.baseline.entry(path).map(|e| &e.kind) {
        Some(EntryKind::File { content: Some(old), .. }) => old,
        _ => return (None, Some("the baseline holds no text of it".into())),
    };
    let rewritten = rewrite.filter(|r| r.paths.iter().any(|p| p == path));
    let old = match rewritten {
        Some(r) => (r.with)(path, old),
        None => old.to_vec(),
    };
    let diff = unified_diff(&m.path, &old, new, Some(deadline));
    match (diff.is_empty(), rewritten.is_some()) {
        (false, _) => (Some(diff), None),
        (true, true) => (None, Some("only what its redaction hides changed".into())),
        (true, false) => {
            (None, Some("its text reads the same: only bytes that are not valid UTF-8 changed".into()))
        }
    }
}

/// Why a changed file has no diff, as one line for a report.
fn why_not(text: &NewText, m: &Modified, keep: &KeepText) -> String {
    match text {
        NewText::Kept(_) => "diffed".into(),
        NewText::Binary => "binary".into(),
        NewText::TooLarge => format!("too large for a text diff (over {})", amount(keep.per_file)),
        NewText::NoBaselineText if m.old_size > keep.per_file => {
            format!("too large for a text diff when the service started (over {})", amount(keep.per_file))
        }
        NewText::NoBaselineText => format!(
            "the baseline kept no text of it (binary when the service started, or past the {} of text it keeps)",
            amount(keep.total)
        ),
        NewText::PastTotal => format!("not diffed: past the {} of changed text a report keeps", amount(keep.total)),
        NewText::Altered => "changed while it was captured: not diffed".into(),
    }
}

/// How a modified path that is not a file on both sides changed.
fn not_files(path: &Path, baseline: &Capture, now: &Capture) -> String {
    let kind = |c: &Capture| c.entry(path).map(|e| e.kind.clone());
    let shown = |target: &Path| target.to_string_lossy().into_owned();
    match (kind(baseline), kind(now)) {
        (Some(EntryKind::Symlink { target: old }), Some(EntryKind::Symlink { target: new })) => {
            format!("a symlink: its target changed from {} to {}", shown(&old), shown(&new))
        }
        (Some(EntryKind::File { .. }), Some(EntryKind::Symlink { target })) => {
            format!("a file when the service started, now a symlink to {}", shown(&target))
        }
        (Some(EntryKind::Symlink { target }), Some(EntryKind::File { .. })) => {
            format!("a symlink to {} when the service started, now a file", shown(&target))
        }
        _ => "not diffed".into(),
    }
}

/// `64 KiB`, `8 MiB`, `100 bytes`.
fn amount(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// A unified diff of two texts named `path`, as `git diff` writes one: `--- a/PATH`,
/// `+++ b/PATH`, hunks with 3 lines of context, `\ No newline at end of file` after a last
/// line without one. Empty when the texts are the same. Invalid UTF-8 shows as U+FFFD; a line
/// ending in CRLF keeps its CR. Past `deadline` the diff is exact but may not be the shortest.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8], deadline: Option<Instant>) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let mut config = TextDiff::configure();
    if let Some(deadline) = deadline {
        config.deadline(deadline);
    }
    let diff = config.diff_lines(old.as_ref(), new.as_ref());
    diff.unified_diff().context_radius(CONTEXT).header(&format!("a/{path}"), &format!("b/{path}")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udiff(old: &str, new: &str) -> String {
        unified_diff("config.yaml", old.as_bytes(), new.as_bytes(), None)
    }

    #[test]
    fn a_changed_line_shows_with_three_lines_of_context_and_git_headers() {
        let old: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 5\n", "line five\n");
        assert_eq!(
            udiff(&old, &new),
            "--- a/config.yaml\n+++ b/config.yaml\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"
        );
    }

    #[test]
    fn the_same_text_has_an_empty_diff() {
        assert_eq!(udiff("a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn a_last_line_without_a_newline_says_so() {
        assert_eq!(
            udiff("port: 80\nhost: a", "port: 80\nhost: b"),
            "--- a/config.yaml\n+++ b/config.yaml\n@@ -1,2 +1,2 @@\n port: 80\n-host: a\n\\ No newline at end of file\n+host: b\n\\ No newline at end of file\n"
        );
        // Only the newline added at the end.
        assert_eq!(
            udiff("a\nb", "a\nb\n"),
            "--- a/config.yaml\n+++ b/config.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }

    #[test]
    fn crlf_lines_keep_their_cr_and_a_change_of_line_ends_shows() {
        assert_eq!(
            udiff("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"),
            "--- a/config.yaml\n+++ b/config.yaml\n@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n"
        );
        let d = udiff("a\r\nb\r\n", "a\nb\n");
        assert!(d.contains("-a\r\n-b\r\n+a\n+b\n"), "{d:?}");
    }

    #[test]
    fn invalid_utf8_shows_as_replacement_characters() {
        let d = unified_diff("latin1.txt", b"caf\xe9\n", b"cafe\n", None);
        assert!(d.contains("-caf\u{fffd}\n+cafe\n"), "{d:?}");
    }

    /// `diff` applied to `old`, as `patch` would (texts ending in a newline).
    fn apply(old: &str, diff: &str) -> String {
        let old: Vec<&str> = old.split_inclusive('\n').collect();
        let (mut out, mut at) = (String::new(), 0);
        for line in diff.split_inclusive('\n').skip(2) {
            if let Some(header) = line.strip_prefix("@@ -") {
                let range = header.split(' ').next().unwrap();
                let (start, len) = range.split_once(',').unwrap_or((range, "1"));
                let start: usize = start.parse().unwrap();
                // An empty old range names the line after which the new lines go.
                let before = if len == "0" { start } else { start - 1 };
                out.extend(old[at..before].iter().copied());
                at = before;
            } else if let Some(kept) = line.strip_prefix(' ') {
                out.push_str(kept);
                at += 1;
            } else if line.starts_with('-') {
                at += 1;
            } else if let Some(added) = line.strip_prefix('+') {
                out.push_str(added);
            }
        }
        out.extend(old[at..].iter().copied());
        out
    }

    #[test]
    fn a_passed_deadline_still_gives_an_exact_diff() {
        let old: String = (0..3000).map(|i| format!("{}\n", i * 7 % 13)).collect();
        let new: String = (0..3000).map(|i| format!("{}\n", i * 5 % 11)).collect();
        let rushed = unified_diff("x", old.as_bytes(), new.as_bytes(), Some(Instant::now()));
        assert_eq!(apply(&old, &rushed), new);
        let patient = unified_diff("x", old.as_bytes(), new.as_bytes(), None);
        assert_eq!(apply(&old, &patient), new);
        assert!(patient.len() <= rushed.len(), "{} > {}", patient.len(), rushed.len());
    }

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(amount(64 * 1024), "64 KiB");
        assert_eq!(amount(8 << 20), "8 MiB");
        assert_eq!(amount(100), "100 bytes");
    }
}
