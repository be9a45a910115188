//! What changed between a baseline capture and a later one.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::capture::{Capture, EntryKind};

/// Files that appeared, vanished or changed between two captures, each list in entry order
/// (sorted as paths sort, component by component: [`Capture::entries`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub added: Vec<FileChange>,
    pub removed: Vec<FileChange>,
    pub modified: Vec<Modified>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Relative to the captured root; invalid UTF-8 shown as U+FFFD.
    pub path: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Modified {
    pub path: String,
    pub old_size: u64,
    pub new_size: u64,
    /// A unified diff of its text ([`crate::text_diffs`]); `None` from [`diff`] alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why it has no diff (binary, too large, …), or what to know of the one it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_note: Option<String>,
}

impl Modified {
    /// A modified path, without a text diff yet.
    pub fn new(path: impl Into<String>, old_size: u64, new_size: u64) -> Modified {
        Modified { path: path.into(), old_size, new_size, diff: None, diff_note: None }
    }
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    /// Every diff of the modified files, one after the other in entry order: a patch.
    pub fn patch(&self) -> String {
        self.modified.iter().filter_map(|m| m.diff.as_deref()).collect()
    }
}

/// A file-like entry as the diff sees it: a file by its hash, a symlink by its target.
#[derive(PartialEq, Eq)]
enum Content<'a> {
    File { sha256: &'a [u8; 32], size: u64 },
    Symlink { target: &'a Path },
}

impl Content<'_> {
    fn size(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            Content::Symlink { .. } => 0,
        }
    }
}

/// Compares files (by SHA-256) and symlinks (by target) of `now` against `baseline`.
///
/// - Directories are not compared.
/// - A symlink whose target changed, or a path that turned from file to symlink or back, is
///   modified; a symlink counts as size 0. Symlinks that appear or vanish are added/removed
///   with size 0.
/// - Only captured entries count. A path captured in one capture but skipped in the other
///   (grown past the size cap, unreadable, over the total cap) is known to exist in both, so
///   it is reported neither as added nor as removed; it shows in the other capture's
///   `skipped` list instead.
pub fn diff(baseline: &Capture, now: &Capture) -> Changes {
    let old = contents(baseline);
    let new = contents(now);
    let skipped_before = skipped_paths(baseline);
    let skipped_now = skipped_paths(now);
    let mut changes = Changes::default();
    for (path, before) in &old {
        match new.get(path) {
            None if skipped_now.contains(path) => {}
            None => changes.removed.push(FileChange { path: lossy(path), size: before.size() }),
            Some(after) if after != before => {
                changes.modified.push(Modified::new(lossy(path), before.size(), after.size()))
            }
            Some(_) => {}
        }
    }
    for (path, after) in &new {
        if !old.contains_key(path) && !skipped_before.contains(path) {
            changes.added.push(FileChange { path: lossy(path), size: after.size() });
        }
    }
    changes
}

/// Files and symlinks by path, in entry order.
fn contents(capture: &Capture) -> BTreeMap<&Path, Content<'_>> {
    capture
        .entries
        .iter()
        .filter_map(|entry| {
            let content = match &entry.kind {
                EntryKind::File { sha256, size, .. } => Content::File { sha256, size: *size },
                EntryKind::Symlink { target } => Content::Symlink { target },
                EntryKind::Dir => return None,
            };
            Some((entry.path.as_path(), content))
        })
        .collect()
}

fn skipped_paths(capture: &Capture) -> HashSet<&Path> {
    capture.skipped.iter().map(|s| s.path.as_path()).collect()
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
