//! The engine's persisted state, `state.json`: per service the process it runs (pid and start
//! time, so a successor engine can adopt it), restarts, last exit. Written atomically by one
//! writer task that coalesces bursts of changes; nothing waits for the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gitvisor_protocol::{ExitInfo, ServiceState};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceRecord {
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
    pub state: ServiceState,
    pub restarts: u32,
    pub started_ms: Option<u64>,
    pub last_exit: Option<ExitInfo>,
    pub error: Option<String>,
    /// Whether it is meant to be up: a start or restart asked for it, a user's stop did not.
    /// What a successor engine brings back after a crash: a service caught half-way through a
    /// restart (or a dependency's) comes back; one a user stopped stays down. None: a record
    /// of an engine that did not keep it (stopped means stopped by the user).
    #[serde(default)]
    pub want_up: Option<bool>,
    /// The `$INVOCATION_ID` its current process got: what it (and anything it started) carries.
    #[serde(default)]
    pub invocation: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PersistedState {
    /// The last engine stopped its services and exited cleanly.
    #[serde(default)]
    pub clean_shutdown: bool,
    #[serde(default)]
    pub engine_pid: u32,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRecord>,
    /// The services repository commit whose units run.
    #[serde(default)]
    pub applied_commit: Option<String>,
    /// When each timer last elapsed (Unix ms): what `Persistent=` remembers.
    #[serde(default)]
    pub timers: BTreeMap<String, u64>,
}

/// The least time between two state writes (see [`StateStore::writer`]).
pub const WRITE_GAP: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Clone)]
pub struct StateStore {
    path: Arc<PathBuf>,
    state: Arc<Mutex<(PersistedState, u64)>>,
    dirty: Arc<Notify>,
    /// Serialises writes and remembers the newest generation written, so a slow write of an
    /// older snapshot never lands after a newer one.
    written: Arc<Mutex<u64>>,
    /// The newest generation on disk, for those who wait for durability.
    saved: watch::Sender<u64>,
}

impl StateStore {
    /// Loads `path`; a corrupt file is moved aside and reported in the returned warning.
    pub fn open(path: PathBuf) -> (StateStore, PersistedState, Option<String>) {
        let loaded = gitvisor_state::load_or_default::<PersistedState>(&path);
        let store = StateStore {
            path: Arc::new(path),
            state: Arc::new(Mutex::new((loaded.value.clone(), 0))),
            dirty: Arc::new(Notify::new()),
            written: Arc::new(Mutex::new(0)),
            saved: watch::channel(0).0,
        };
        (store, loaded.value, loaded.warning)
    }

    /// Changes the state and wakes the writer.
    fn change(&self, f: impl FnOnce(&mut PersistedState) -> bool) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if f(&mut guard.0) {
            guard.1 += 1;
            self.dirty.notify_one();
        }
    }

    fn snapshot(&self) -> (PersistedState, u64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_service(&self, name: &str, record: ServiceRecord) {
        self.change(|s| {
            if s.services.get(name) == Some(&record) {
                return false;
            }
            s.services.insert(name.to_string(), record);
            true
        });
    }

    pub fn remove_service(&self, name: &str) {
        self.change(|s| s.services.remove(name).is_some());
    }

    pub fn set_timer(&self, name: &str, last_ms: u64) {
        self.change(|s| s.timers.insert(name.to_string(), last_ms) != Some(last_ms));
    }

    /// When the timer last elapsed, as stored.
    pub fn timer(&self, name: &str) -> Option<u64> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0.timers.get(name).copied()
    }

    pub fn set_applied(&self, commit: Option<String>) {
        self.change(|s| {
            if s.applied_commit == commit {
                return false;
            }
            s.applied_commit = commit;
            true
        });
    }

    pub fn begin(&self, pid: u32) {
        self.change(|s| {
            s.clean_shutdown = false;
            s.engine_pid = pid;
            true
        });
    }

    /// Writes the current state unless a newer one is already on disk.
    fn write(&self, (state, generation): (PersistedState, u64)) -> std::io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if generation < *written {
            return Ok(());
        }
        test_hooks::slow_state_write();
        gitvisor_state::save_swapped(&self.path, &state)?;
        *written = generation;
        self.saved.send_replace(generation);
        Ok(())
    }

    /// Resolves once every change made before the call is on disk.
    pub async fn flushed(&self) {
        let target = self.snapshot().1;
        let mut rx = self.saved.subscribe();
        let _ = rx.wait_for(|g| *g >= target).await;
    }

    /// Writes now, on the calling thread (used at shutdown).
    pub fn save_now(&self, clean_shutdown: bool) -> std::io::Result<()> {
        self.change(|s| {
            s.clean_shutdown = clean_shutdown;
            true
        });
        self.write(self.snapshot())
    }

    /// The writer's work, run as a task of the engine's background owner: waits for a change,
    /// writes the latest state, repeats, at most once per [`WRITE_GAP`]. Changes made while a
    /// write runs or within the gap are coalesced into the next one: a service restarting in a
    /// loop changes its record several times a millisecond, and each write costs two fsyncs.
    /// What the gap may leave unwritten when the engine is killed is recovered at the next
    /// start (processes carry their home's and their start's ids: see `engine/orphans.rs`).
    pub fn writer(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let me = self.clone();
        async move {
            loop {
                me.dirty.notified().await;
                let store = me.clone();
                let result = tokio::task::spawn_blocking(move || store.write(store.snapshot())).await;
                if let Ok(Err(e)) = result {
                    tracing::error!("cannot write {}: {e}", me.path.display());
                }
                tokio::time::sleep(WRITE_GAP).await;
            }
        }
    }
}

/// Hooks the chaos tests use to widen a window (debug builds only: a release engine reads no
/// such variable).
mod test_hooks {
    /// `GITVISOR_TEST_STATE_WRITE_DELAY_MS`: each state write waits this long first, so a kill
    /// lands while the state on disk lags behind the engine's.
    pub fn slow_state_write() {
        #[cfg(debug_assertions)]
        if let Some(ms) =
            std::env::var("GITVISOR_TEST_STATE_WRITE_DELAY_MS").ok().and_then(|v| v.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}
