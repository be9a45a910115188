//! The one lock primitive for every single-writer need (SPEC section 10).
//!
//! [`Locks::with_lock`] runs an op under a key, or refuses at once: `InProgress` when this
//! engine already runs an op on the key, `Held` when someone else has it. Nothing waits for a
//! lock; the caller reports the refusal. The [`Guard`] a backend returns releases on drop, and
//! the op owns it, so the lock is released on every path out of the op: a value, an error
//! value, a panic unwinding, or the future being dropped.
//!
//! Backends are asynchronous (a fleet's Redis answers over the network) and a guard may report
//! that its lock was lost (a lease that expired or could not be renewed): the op is then
//! cancelled and answered [`LockError::Lost`]. The local backend answers at once and never
//! loses a lock.

mod file_name;
mod local;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

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
    /// The lock was lost while the op ran (a lease expired or could not be renewed); the op
    /// was cancelled.
    #[error("lost the lock on {key}: {why}")]
    Lost { key: String, why: String },
}

/// A future a backend answers with.
pub type Acquire<'a> = Pin<Box<dyn Future<Output = Result<Guard, LockError>> + Send + 'a>>;

/// A place locks live: the local machine, or a fleet's Redis.
pub trait LockBackend: Send + Sync + 'static {
    /// Try once, never wait for the holder (a remote backend awaits only its server).
    fn try_acquire<'a>(&'a self, key: &'a str, op: &'a str) -> Acquire<'a>;
}

/// A held lock as a backend hands it out: dropping it releases.
pub struct Guard {
    _release: Box<dyn Send>,
    lost: Option<Pin<Box<dyn Future<Output = String> + Send>>>,
    fencing: Option<u64>,
}

impl Guard {
    /// A lock released when `release` is dropped, never lost.
    pub fn new(release: impl Send + 'static) -> Guard {
        Guard { _release: Box::new(release), lost: None, fencing: None }
    }

    /// The lock can be lost: `lost` resolves, with why, when it is.
    pub fn losable(mut self, lost: impl Future<Output = String> + Send + 'static) -> Guard {
        self.lost = Some(Box::pin(lost));
        self
    }

    /// The acquisition's fencing token: it increases with every acquisition of the key.
    pub fn fenced(mut self, token: u64) -> Guard {
        self.fencing = Some(token);
        self
    }

    pub fn fencing(&self) -> Option<u64> {
        self.fencing
    }
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

    /// Locks for keys only this process takes (an engine's keys in the home it owns alone).
    pub fn in_process() -> Self {
        Self::new(LocalLocks::in_process())
    }

    /// Runs `f` holding `key` for `op`, or refuses without running it. Only for a backend
    /// that answers without waiting (the local one); another is a backend error.
    pub fn with_lock_sync<T>(&self, key: &str, op: &str, f: impl FnOnce() -> T) -> Result<T, LockError> {
        let _held = self.try_hold(key, op)?;
        Ok(f())
    }

    /// Takes `key` for `op` now, or refuses: the returned hold keeps it until dropped, so a
    /// task can carry it. Only for a backend that answers without waiting (the local one).
    pub fn try_hold(&self, key: &str, op: &str) -> Result<LockHold, LockError> {
        let mut acquire = pin!(self.acquire(key, op));
        match acquire.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(held) => held.map(|h| LockHold { _held: h }),
            Poll::Pending => Err(LockError::Backend("this lock backend cannot be used synchronously".into())),
        }
    }

    /// Awaits `fut` holding `key` for `op`, or refuses without polling it.
    ///
    /// The lock is tried when the returned future is first polled. It is held across every
    /// await of `fut` and released when `fut` finishes, panics, or is dropped (cancelled). If
    /// the backend loses the lock meanwhile, `fut` is dropped and the answer is `Lost`.
    pub async fn with_lock<T, F: Future<Output = T>>(
        &self,
        key: &str,
        op: &str,
        fut: F,
    ) -> Result<T, LockError> {
        let mut held = self.acquire(key, op).await?;
        let Some(mut lost) = held.guard.lost.take() else { return Ok(fut.await) };
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            lost.as_mut().poll(cx).map(|why| Err(LockError::Lost { key: key.to_owned(), why }))
        })
        .await
    }

    /// The `(key, op)` pairs this process is running now, sorted, for status.
    pub fn current(&self) -> Vec<(String, String)> {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current: Vec<_> = active.entries.values().cloned().collect();
        current.sort();
        current
    }

    async fn acquire(&self, key: &str, op: &str) -> Result<Held, LockError> {
        let guard = self.backend.try_acquire(key, op).await?;
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let id = active.next_id;
        active.next_id += 1;
        active.entries.insert(id, (key.to_owned(), op.to_owned()));
        Ok(Held { guard, active: Arc::clone(&self.active), id })
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

/// A lock taken by [`Locks::try_hold`]; released when dropped.
pub struct LockHold {
    _held: Held,
}

/// A held lock: the backend's guard plus this op's line in [`Locks::current`].
struct Held {
    guard: Guard,
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
