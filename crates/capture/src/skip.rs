//! Why a path is missing from a capture: one record per skipped file or directory.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// A path (relative to the captured root) that the capture left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Serialised lossily (invalid UTF-8 becomes U+FFFD) so `report.json` always renders.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// Why a path was skipped. Serialised as `{"type": "too_large", "size": …, "limit": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SkipReason {
    /// The file is larger than the per-file cap (`MaxFileSize=`).
    TooLarge { size: u64, limit: u64 },
    /// The path matches an exclude pattern (`Exclude=`); `pattern` is the pattern as written.
    Excluded { pattern: String },
    /// A FIFO, socket or device; never opened. `kind` is `fifo`, `socket`, `block device` or
    /// `char device`.
    Special { kind: &'static str },
    /// The file or directory could not be opened or read; `error` is the OS error.
    Unreadable { error: String },
    /// Taking this file would have gone over the per-capture cap (`MaxTotalSize=`); this file
    /// and every file after it in walk order are skipped.
    TotalCapReached { limit: u64 },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooLarge { size, limit } => {
                write!(f, "too large: {size} bytes, over the {limit}-byte limit per file")
            }
            SkipReason::Excluded { pattern } => write!(f, "excluded by pattern {pattern:?}"),
            SkipReason::Special { kind } => write!(f, "special file ({kind}), not read"),
            SkipReason::Unreadable { error } => write!(f, "unreadable: {error}"),
            SkipReason::TotalCapReached { limit } => {
                write!(f, "capture full: the {limit}-byte limit per capture was reached")
            }
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

pub(crate) fn lossy_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_one_line() {
        let reasons = [
            SkipReason::TooLarge { size: 5, limit: 4 },
            SkipReason::Excluded { pattern: "*.log".into() },
            SkipReason::Special { kind: "fifo" },
            SkipReason::Unreadable { error: "Permission denied (os error 13)".into() },
            SkipReason::TotalCapReached { limit: 9 },
        ];
        for reason in reasons {
            let line = reason.to_string();
            assert!(!line.contains('\n') && !line.is_empty(), "{line:?}");
        }
    }

    #[test]
    fn serialises_non_utf8_paths_lossily() {
        use std::os::unix::ffi::OsStrExt;
        let skipped = Skipped {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(b"a\xffb")),
            reason: SkipReason::Special { kind: "fifo" },
        };
        let json = serde_json::to_string(&skipped).unwrap();
        assert_eq!(json, "{\"path\":\"a\u{fffd}b\",\"reason\":{\"type\":\"special\",\"kind\":\"fifo\"}}");
    }
}
