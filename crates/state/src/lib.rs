//! gitvisor's persisted state.

mod append;
mod atomic;
mod error_context;
mod flock;
mod home_lock;
mod json_file;
mod lock;
mod paths;

pub use append::append_locked;
pub use atomic::write_atomic;
pub use home_lock::{HomeLock, HomeLockError};
pub use json_file::{load_or_default, save, Loaded};
pub use lock::{LocalLocks, LockBackend, LockError, Locks};
pub use paths::{join_inside, PathError, PathErrorReason};

#[cfg(test)]
mod test_support;
