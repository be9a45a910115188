//! Workspace captures (SPEC section 6): copies of a service's working directory, kept in a
//! bounded in-memory store or written straight into a deterministic tar archive for a crash
//! report (section 7), and compared against the baseline taken when the service started.
//!
//! # Theory of operation
//!
//! - **The walk** is blocking, sorted and depth-first. It opens every name relative to its
//!   already-open parent (`openat` with `O_NOFOLLOW`), learns the type with
//!   `fstatat(AT_SYMLINK_NOFOLLOW)` before opening anything, and checks an opened file again
//!   with `fstat`. So it never follows a symlink (links are recorded with their target, which
//!   is never read), never leaves the root even if a directory is swapped for a link mid-walk,
//!   and never opens a FIFO or device, so it cannot hang. Everything it leaves out is recorded
//!   in [`Capture::skipped`] with a [`SkipReason`], except `.git` directories, which are always
//!   left out silently. The caps of [`Limits`] bound each file and the whole capture; once the
//!   total cap is hit, every later file is skipped, so what is kept is a deterministic prefix
//!   of the walk. Names are visited in byte order, so the walk's order is the entries' order:
//!   sorted component by component, a directory just before what it holds.
//! - **What the walk does with a file** is its taker's (`walk::Take`): [`capture_dir`] holds
//!   every file's bytes; [`baseline_since`] holds small text files only and hashes the rest
//!   through a small buffer; [`stream_dir`] writes each file into a tar archive as it reads it.
//! - **Streaming** ([`stream_dir`]) is how a crash report takes its capture: each entry goes to
//!   the archive as the walk reaches it, a file's bytes copied from its descriptor through the
//!   archive's buffer and hashed on the way, so the capture costs its entries' metadata, not
//!   the tree. A tar header gives the size before the bytes: a file is written at its size when
//!   opened, cut if it grew and padded with NUL bytes if it shrank, and listed as
//!   [`Altered`]; its hash is of what was written. Files the caller rewrites ([`Rewrite`], a
//!   report's redacted environment files) are read whole, within the per-file cap. Past an
//!   optional limit on the archive's size the walk stops writing but still lists and hashes
//!   every file. The archive is the one [`write_snapshot`] writes for the same tree.
//! - **Blobs** are shared: file contents held in memory are interned by SHA-256 in a
//!   [`BlobPool`] holding weak references, so a file unchanged since the last capture costs
//!   nothing again, and the bytes are freed when the last capture holding them goes.
//! - **The store** ([`Store`]) keeps captures by [`CaptureId`] in insertion order and counts
//!   its memory once per distinct blob. Adding enforces the caps at once; the [`Sweeper`]
//!   task does it on a timer. Eviction takes expired captures first, then the oldest. Time is
//!   passed in as an `Instant`, so the store is tested without a clock and the sweeper with
//!   tokio's paused clock.
//! - **Snapshots** ([`write_snapshot`]) are tar archives whose bytes depend only on the
//!   captured tree: sorted entries, fixed owner and times, normalised modes.
//! - **Diffs** ([`diff`]) compare files by hash and symlinks by target; directories and
//!   skipped paths are not compared. **Text diffs** ([`text_diffs`]) show how a changed text
//!   file changed: the baseline holds the text of small text files, a streamed capture keeps
//!   the text of those that changed ([`KeepText`], bounded per file and in all), and each
//!   modified file gets a unified diff or a note saying why it has none.
//!
//! Nothing here touches the engine: the engine decides when to capture (at start, for the
//! baseline, and at a crash), what to rewrite and how large an archive may be, parses the
//! settings and writes the report.

mod blobs;
mod capture;
mod diff;
mod limits;
mod skip;
mod snapshot;
mod store;
mod stream;
mod sweeper;
mod text;
mod walk;

#[cfg(test)]
mod test_hooks;
#[cfg(test)]
mod tests;

pub use blobs::BlobPool;
pub use capture::{hex, Capture, Entry, EntryKind, FileStamp, ManifestEntry};
pub use diff::{diff, Changes, FileChange, Modified};
pub use limits::{Limits, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE};
pub use skip::{SkipReason, Skipped};
pub use snapshot::write_snapshot;
pub use store::{CaptureId, Store, StoreSettings, DEFAULT_MAX_BYTES, DEFAULT_MAX_CAPTURES, DEFAULT_TTL};
pub use stream::{stream_dir, Alteration, Altered, Rewrite, Rewritten, StreamError, StreamOptions, Streamed};
pub use sweeper::{sweep_every, Sweeper, DEFAULT_SWEEP_INTERVAL};
pub use text::{text_diffs, unified_diff, KeepText, NewText};
pub use walk::{baseline_since, baseline_within, capture_dir, Budget};
