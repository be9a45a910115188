//! gitvisor's persisted state: how files in the engine's home are written, recovered,
//! appended to, named and locked (SPEC sections 10 and 11).
//!
//! # Theory of operation
//!
//! - **Whole files or nothing.** Every state file is replaced with [`write_atomic`]: a
//!   temporary file in the same directory, fsync, rename, fsync of the directory. A crash
//!   leaves the old file or the new one. [`save`] and [`load_or_default`] add JSON on top; a
//!   file that cannot be parsed is moved aside as `NAME.bak-YYYYMMDDTHHMMSSZ` and defaults are
//!   used, so a corrupt file never stops the engine and is never silently lost.
//! - **Shared logs append under a lock.** [`append_locked`] holds an exclusive `flock` for the
//!   whole entry, so writers in different processes never interleave.
//! - **Outside input never leaves its base.** Unit names, report ids, capture entries and
//!   export targets become paths only through [`join_inside`], which refuses `..`, absolute
//!   paths and symlinks that lead out.
//! - **One owner per home.** The engine takes a [`HomeLock`] at start; it is an advisory
//!   `flock`, so the kernel releases it when the engine dies and no stale lock needs cleaning.
//! - **One lock primitive.** [`Locks`] serves every single-writer need: an op runs under a key
//!   or is refused at once with [`LockError::InProgress`] or [`LockError::Held`]. The backend
//!   is pluggable ([`LockBackend`]): [`LocalLocks`] on one machine, Redis in fleet mode.
//!
//! Nothing here depends on an async runtime: [`Locks::with_lock`] is a plain `async fn`, and
//! file I/O is blocking (the files are small; the engine may call it from a blocking task).
//! Every error is one line that names the path or key it is about.

mod append;
mod atomic;
mod error_context;
mod flock;
mod home_lock;
mod json_file;
mod lock;
mod paths;
mod swap;

pub use append::append_locked;
pub use atomic::write_atomic;
pub use home_lock::{HomeLock, HomeLockError};
pub use json_file::{load_or_default, save, save_swapped, Loaded};
pub use lock::{Acquire, Guard, LocalLocks, LockBackend, LockError, LockHold, Locks};
pub use paths::{join_inside, PathError, PathErrorReason};
pub use swap::write_swapped;

#[cfg(test)]
mod test_support;
