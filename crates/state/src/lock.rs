//! The one lock primitive for every single-writer need (SPEC section 10).
//!
//! [`Locks::with_lock`] runs an op under a key, or refuses at once: `InProgress` when this
//! engine already runs an op on the key, `Held` when someone else has it. Nothing waits for a
//! lock; the caller reports the refusal. The guard a backend returns releases on drop, and the
//! op owns it, so the lock is released on every path out of the op: a value, an error value,
//! a panic unwinding, or the future being dropped.

mod file_name;
mod local;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

pub use local::LocalLocks;

/// Why an op could not take its lock; each is one line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// This engine is already running `op` on `key`.
    #[error("{op} in progress on {key}")]
    InProgress { key: String, op: String },
    /// Another process or node holds `key`; `holder` names it (e.g. `pid 1234 (stop)`).
    #[error("{key} is locked by {holder}")]
    Held { key: String, holder: String },
    /// The backend failed (a lock file, Redis); the message names what.
    #[error("{0}")]
    Backend(String),
}

/// A place locks live: the local machine, or a fleet's Redis.
pub trait LockBackend: Send + Sync + 'static {
    /// Try once, never wait. Returns a guard whose Drop releases.
    fn try_acquire(&self, key: &str, op: &str) -> Result<Box<dyn Send>, LockError>;
}

/// The engine's handle on its locks; clones share the backend and the in-progress list.
#[derive(Clone)]
pub struct Locks {
    backend: Arc<dyn LockBackend>,
    active: Arc<Mutex<Active>>,
}

impl Locks {
    pub fn new(backend: impl LockBackend) -> Self {
        Locks { backend: Arc::new(backend), active: Arc::default() }
    }

    /// Locks for one machine, with lock files in `dir`.
    pub fn local(dir: PathBuf) -> Self {
        Self::new(LocalLocks::new(dir))
    }

    /// Runs `f` holding `key` for `op`, or refuses without running it.
    pub fn with_lock_sync<T>(&self, key: &str, op: &str, f: impl FnOnce() -> T) -> Result<T, LockError> {
        let _held = self.acquire(key, op)?;
        Ok(f())
    }

    /// Awaits `fut` holding `key` for `op`, or refuses without polling it.
    ///
    /// The lock is tried when the returned future is first polled. It is held across every
    /// await of `fut` and released when `fut` finishes, panics, or is dropped (cancelled).
    pub async fn with_lock<T, F: Future<Output = T>>(
        &self,
        key: &str,
        op: &str,
        fut: F,
    ) -> Result<T, LockError> {
        let _held = self.acquire(key, op)?;
        Ok(fut.await)
    }

    /// The `(key, op)` pairs this process is running now, sorted, for status.
    pub fn current(&self) -> Vec<(String, String)> {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current: Vec<_> = active.entries.values().cloned().collect();
        current.sort();
        current
    }

    fn acquire(&self, key: &str, op: &str) -> Result<Held, LockError> {
        let guard = self.backend.try_acquire(key, op)?;
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let id = active.next_id;
        active.next_id += 1;
        active.entries.insert(id, (key.to_owned(), op.to_owned()));
        Ok(Held { _guard: guard, active: Arc::clone(&self.active), id })
    }
}

impl fmt::Debug for Locks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locks").field("current", &self.current()).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Active {
    next_id: u64,
    entries: BTreeMap<u64, (String, String)>,
}

/// A held lock: the backend's guard plus this op's line in [`Locks::current`].
struct Held {
    _guard: Box<dyn Send>,
    active: Arc<Mutex<Active>>,
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
