//! What a capture holds: the tree's entries, what was skipped, and a manifest for reports.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::skip::{lossy_path, Skipped};

/// One capture of a directory tree, taken by [`crate::capture_dir`].
#[derive(Clone, Debug)]
pub struct Capture {
    /// The directory that was captured, as given.
    pub root: PathBuf,
    pub taken_at: SystemTime,
    /// In walk order: sorted as [`Path`](std::path::Path) sorts, component by component (names
    /// by their bytes), so a directory comes just before what it contains (`lib`, `lib/x`,
    /// `lib.rs`), as `tar --sort=name` has it. A streamed capture writes its archive in this
    /// order as it walks, without holding a subtree back.
    pub entries: Vec<Entry>,
    /// In walk order, as `entries`.
    pub skipped: Vec<Skipped>,
    /// Bytes of file contents captured (each file counted, even when two share a blob).
    pub total_bytes: u64,
    /// Each captured file's identity and times when it was read, so a later capture of the
    /// same tree can take an unchanged file from this one without reading it again.
    pub stamps: HashMap<PathBuf, FileStamp>,
}

/// What says a file has not changed: same inode, size, modification and status-change times
/// (ctime cannot be set back by a process, so a rewrite always shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

/// One captured path, relative to the root; may be non-UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: EntryKind,
}

#[derive(Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file and its contents, shared through a [`crate::BlobPool`]. `None`: a
    /// baseline's file whose bytes were not kept (see [`Capture::keep_contents`]); its size and
    /// hash still tell whether it changed.
    File {
        content: Option<Arc<[u8]>>,
        sha256: [u8; 32],
        size: u64,
        executable: bool,
    },
    Dir,
    /// The link's target as read with `readlink`; the link is never followed.
    Symlink {
        target: PathBuf,
    },
}

impl fmt::Debug for EntryKind {
    /// Shows the size and hash, never the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryKind::File { sha256, size, executable, .. } => f
                .debug_struct("File")
                .field("size", size)
                .field("sha256", &hex(sha256))
                .field("executable", executable)
                .finish(),
            EntryKind::Dir => f.write_str("Dir"),
            EntryKind::Symlink { target } => f.debug_struct("Symlink").field("target", target).finish(),
        }
    }
}

/// One line of a capture's manifest, for `report.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ManifestEntry {
    File {
        #[serde(serialize_with = "lossy_path")]
        path: PathBuf,
        size: u64,
        /// Lower-case hex.
        sha256: String,
        executable: bool,
    },
    Dir {
        #[serde(serialize_with = "lossy_path")]
        path: PathBuf,
    },
    Symlink {
        #[serde(serialize_with = "lossy_path")]
        path: PathBuf,
        #[serde(serialize_with = "lossy_path")]
        target: PathBuf,
    },
}

impl Capture {
    /// The captured entries without their contents, in entry order.
    pub fn manifest(&self) -> Vec<ManifestEntry> {
        self.entries.iter().map(Entry::manifest).collect()
    }

    /// Keeps the bytes of small text files only — each at most `per_file` bytes, `total` in
    /// all, in entry order — and drops the others' (their size and hash stay): what a baseline
    /// needs to tell what changed and to show a changed config as a text diff, without holding
    /// the whole tree for as long as the service runs. A file is text when its first 8 KiB hold
    /// no NUL byte.
    pub fn keep_contents(mut self, per_file: u64, total: u64) -> Capture {
        let mut kept = 0u64;
        for e in &mut self.entries {
            let EntryKind::File { content, size, .. } = &mut e.kind else { continue };
            let keep =
                content.as_ref().is_some_and(|c| *size <= per_file && kept + *size <= total && is_text(c));
            if keep {
                kept += *size;
            } else {
                *content = None;
            }
        }
        self
    }

    /// Bytes of file contents this capture holds (what [`Capture::keep_contents`] kept).
    pub fn held_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::File { content: Some(c), .. } => Some(c.len() as u64),
                _ => None,
            })
            .sum()
    }

    /// The entry at `path`, found by its place in [`Capture::entries`] (sorted as `Path` sorts).
    pub(crate) fn entry(&self, path: &Path) -> Option<&Entry> {
        let i = self.entries.binary_search_by(|e| e.path.as_path().cmp(path)).ok()?;
        Some(&self.entries[i])
    }

    /// Number of captured regular files.
    pub fn file_count(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count()
    }
}

impl Entry {
    fn manifest(&self) -> ManifestEntry {
        let path = self.path.clone();
        match &self.kind {
            EntryKind::File { sha256, size, executable, .. } => {
                ManifestEntry::File { path, size: *size, sha256: hex(sha256), executable: *executable }
            }
            EntryKind::Dir => ManifestEntry::Dir { path },
            EntryKind::Symlink { target } => ManifestEntry::Symlink { path, target: target.clone() },
        }
    }
}

/// How much of a file's start [`is_text`] looks at.
pub(crate) const TEXT_HEAD: usize = 8192;

/// A file is text when its first 8 KiB hold no NUL byte (as git and grep tell binary files).
pub(crate) fn is_text(bytes: &[u8]) -> bool {
    !bytes[..bytes.len().min(TEXT_HEAD)].contains(&0)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
