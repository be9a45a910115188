//! Workspace captures (SPEC section 6): in-memory copies of a service's working directory,
//! kept in a bounded store, turned into deterministic tar archives for crash reports
//! (section 7) and compared against the baseline taken when the service started.
//!
//! # Theory of operation
//!
//! - **Capture** ([`capture_dir`]) is a blocking, sorted, depth-first walk. It opens every
//!   name relative to its already-open parent (`openat` with `O_NOFOLLOW`), learns the type
//!   with `fstatat(AT_SYMLINK_NOFOLLOW)` before opening anything, and checks an opened file
//!   again with `fstat`. So it never follows a symlink (links are recorded with their target,
//!   which is never read), never leaves the root even if a directory is swapped for a link
//!   mid-walk, and never opens a FIFO or device, so it cannot hang. Everything it leaves out
//!   is recorded in [`Capture::skipped`] with a [`SkipReason`], except `.git` directories,
//!   which are always left out silently. The caps of [`Limits`] bound each file and the whole
//!   capture; once the total cap is hit, every later file is skipped, so what is kept is a
//!   deterministic prefix of the walk.
//! - **Blobs** are shared: file contents are interned by SHA-256 in a [`BlobPool`] holding
//!   weak references, so a file unchanged since the last capture costs nothing again, and
//!   the bytes are freed when the last capture holding them goes.
//! - **The store** ([`Store`]) keeps captures by [`CaptureId`] in insertion order and counts
//!   its memory once per distinct blob. Adding enforces the caps at once; the [`Sweeper`]
//!   task does it on a timer. Eviction takes expired captures first, then the oldest. Time is
//!   passed in as an `Instant`, so the store is tested without a clock and the sweeper with
//!   tokio's paused clock.
//! - **Snapshots** ([`write_snapshot`]) are tar archives whose bytes depend only on the
//!   captured tree: sorted entries, fixed owner and times, normalised modes.
//! - **Diffs** ([`diff`]) compare files by hash and symlinks by target; directories and
//!   skipped paths are not compared.
//!
//! Nothing here touches the engine: the engine decides when to capture (at start, for the
//! baseline, and at a crash), parses the settings and writes the report.

mod blobs;
mod capture;
mod diff;
mod limits;
mod skip;
mod snapshot;
mod store;
mod sweeper;
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
pub use snapshot::{append_snapshot, write_snapshot};
pub use store::{CaptureId, Store, StoreSettings, DEFAULT_MAX_BYTES, DEFAULT_MAX_CAPTURES, DEFAULT_TTL};
pub use sweeper::{sweep_every, Sweeper, DEFAULT_SWEEP_INTERVAL};
pub use walk::{baseline_since, capture_dir, capture_dir_since};
