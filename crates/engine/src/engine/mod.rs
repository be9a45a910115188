//! The engine API: one implementation of every operation, called by the socket server, the CLI
//! (through the socket) and the tray app alike.
//!
//! The API is split by concern, each file an `impl Engine` block: opening and adoption
//! (`open.rs`), start/stop/restart under the service's lock (`lifecycle.rs`), what the engine
//! shows (`status.rs`), applying commits (`sync.rs`), history and rollback (`history.rs`), crash
//! report operations (`crash_ops.rs`). The unit set, the services and the set's problems live
//! together in the [`registry`]; background work has one owner ([`Background`]).

mod crash_ops;
mod enable;
mod error;
mod fleet_ops;
mod history;
mod import;
mod lifecycle;
mod open;
pub(crate) mod orphans;
mod propagation;
mod registry;
mod status;
mod sync;
mod timeline;
mod timers;
mod units_edit;
mod watches;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use gitvisor_protocol::EventKind;
use gitvisor_state::Locks;
use gitvisor_units::SpecifierContext;

pub use error::EngineError;
pub use lifecycle::lock_key;

use crate::background::Background;
use crate::crash::CrashHandle;
use crate::events::{EventBus, Priority, Subscription};
use crate::git::maintenance::Maintainer;
use crate::logs::LogLink;
use crate::paths::Paths;
use crate::settings::Settings;
use crate::store::StateStore;
use registry::Registry;

pub struct EngineOptions {
    pub paths: Paths,
    /// The binary that runs the log keeper when given its argument (usually this one).
    pub keeper_program: PathBuf,
    /// Where the engine's locks live; `None`: this machine (lock files in the home).
    pub locks: Option<Locks>,
}

impl EngineOptions {
    /// An engine on `paths` with local locks.
    pub fn new(paths: Paths, keeper_program: PathBuf) -> EngineOptions {
        EngineOptions { paths, keeper_program, locks: None }
    }
}

struct Inner {
    paths: Paths,
    settings: Settings,
    bus: EventBus,
    logs: Arc<LogLink>,
    store: StateStore,
    locks: Locks,
    ctx: SpecifierContext,
    registry: RwLock<Registry>,
    background: Background,
    shut_down: Mutex<bool>,
    /// A sync found a service busy with a user's operation and left its commit unapplied: the
    /// end of that operation syncs again.
    sync_waiting: std::sync::atomic::AtomicBool,
    /// The commit that runs.
    applied: RwLock<Option<String>>,
    /// Why the repository cannot be followed now, if it cannot.
    repo_problem: RwLock<Option<String>>,
    /// The crash reporter's handle; gone once the engine stops.
    crash: Mutex<Option<CrashHandle>>,
    maintainer: Maintainer,
    /// Fleet mode: the fleet's Redis and leases (`None` without `[fleet]`, or when it cannot be
    /// used: then `fleet_error` says why, and singletons do not run).
    fleet: Option<Arc<crate::fleet::Fleet>>,
    fleet_error: Option<String>,
    /// The timer units the timer keeper schedules.
    timers: Arc<timers::TimerTable>,
    /// What happened to each service over the last day (`timeline`).
    timeline: Arc<Mutex<crate::timeline::Timeline>>,
    /// The services whose files the watch keeper watches (`[Watch]`).
    watches: Arc<watches::WatchTable>,
    /// Services' CPU and memory, sampled while someone asks.
    metrics: crate::metrics::Metrics,
    /// The last sync that applied a new commit: what a `sync` that finds it applied answers.
    last_applied_sync: Mutex<Option<gitvisor_protocol::SyncReport>>,
    /// The singletons that have a driver.
    singletons: Mutex<std::collections::HashSet<String>>,
    /// What the engine adds to services' environment (a singleton's lease).
    run_env: crate::supervisor::task::RunEnv,
    /// Where services with resource limits get their cgroups.
    cgroups: Arc<crate::supervisor::cgroup::Cgroups>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn subscribe(&self, priority: Priority, capacity: usize) -> Subscription {
        self.inner.bus.subscribe(priority, capacity)
    }

    /// The state of git maintenance: settings, last runs, why the last skip was skipped.
    pub fn maintenance_status(&self) -> gitvisor_protocol::MaintenanceStatusReply {
        self.inner.maintainer.status()
    }

    /// Runs git maintenance now where its safety checks (all but the interval) allow.
    pub fn maintenance_run(&self) -> gitvisor_protocol::MaintenanceRunReply {
        let (started, skipped) = self.inner.maintainer.consider(true, &self.inner.background);
        gitvisor_protocol::MaintenanceRunReply { started, skipped }
    }

    /// After a sync applied a new commit, and daily: maintenance where it is due.
    fn maintain(&self) {
        self.inner.maintainer.consider(false, &self.inner.background);
    }

    /// The names of the background tasks still running (the state writer, the crash
    /// reporter...).
    pub fn background_tasks(&self) -> Vec<&'static str> {
        self.inner.background.running()
    }

    fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.inner.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.inner.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn applied(&self) -> Option<String> {
        self.inner.applied.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What a user is told has happened survives an engine crash right after: user operations
    /// answer once the state they produced is on disk.
    async fn durable(&self) {
        self.inner.store.flushed().await;
    }

    /// Stops every service in reverse dependency order, saves the state, stops the background
    /// work and lets the log keeper go. Idempotent.
    pub async fn shutdown(&self) {
        {
            let mut done = self.inner.shut_down.lock().unwrap_or_else(|e| e.into_inner());
            if *done {
                return;
            }
            *done = true;
        }
        self.inner.bus.publish(EventKind::EngineStopping);
        // No sync may start while services are being stopped.
        self.stop_watcher().await;
        let names: Vec<String> = self.registry().services.keys().cloned().collect();
        let reply = self.stop_ordered(names, false, false).await;
        for r in reply.results.iter().filter(|r| !r.ok) {
            tracing::warn!("{}: {}", r.name, r.error.as_deref().unwrap_or("did not stop"));
        }
        self.release_leases().await;
        self.inner.crash.lock().unwrap_or_else(|e| e.into_inner()).take();
        // A git gc under way gets a moment to finish; the rest is stopped with the tasks.
        self.inner.maintainer.finish(std::time::Duration::from_secs(5)).await;
        self.inner.background.stop_all().await;
        self.save_timeline();
        // Each task recorded its final state before answering the stop; save it synchronously.
        if let Err(e) = self.inner.store.save_now(true) {
            tracing::error!("cannot save {}: {e}", self.inner.paths.state.display());
        }
        self.inner.logs.goodbye().await;
        for s in self.registry().services.values() {
            s.task.abort();
        }
    }
}
