//! Opening the engine on a home: settings, state, the log keeper and the units of the commit
//! that ran last; then adoption of what an earlier engine left running, and the first start.

use std::sync::{Arc, Mutex, RwLock};

use gitvisor_protocol::{EventKind, ServiceState};
use gitvisor_state::Locks;
use gitvisor_units::Unit;

use super::registry::{Registry, Service};
use super::{Engine, EngineError, EngineOptions, Inner};
use crate::background::Background;
use crate::events::{EventBus, Priority};
use crate::git::ServicesRepo;
use crate::logs::wire::StreamInfo;
use crate::logs::LogLink;
use crate::settings::Settings;
use crate::store::{PersistedState, StateStore};
use crate::supervisor::{process, Initial, ServiceCtx};
use crate::units::{specifier_context, UnitSet};

impl Engine {
    /// Starts the engine on a home the caller owns (see `daemon::own_home`): loads settings,
    /// state and units, adopts the services an earlier engine left running, starts the enabled
    /// ones.
    pub async fn open(opts: EngineOptions) -> Result<Engine, EngineError> {
        let paths = opts.paths;
        let timeline = super::timeline::load(&paths.state);
        paths
            .create_dirs()
            .map_err(|source| EngineError::io(format!("creating {}", paths.home.display()), source))?;
        let loaded = Settings::load(&paths.config);
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let settings = loaded.settings;
        let (store, persisted, warning) = StateStore::open(paths.state.clone());
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        let (logs, streams) =
            LogLink::open(&paths.logd_socket, &paths.logs, &opts.keeper_program, settings.logs.clone())
                .await
                .map_err(|source| EngineError::io("starting the log keeper", source))?;
        let ctx = specifier_context();
        // A fleet node's repository comes from the fleet's remote.
        if let Some(remote) = settings.fleet.as_ref().map(|f| f.remote.clone()).filter(|r| !r.is_empty()) {
            match crate::fleet::remote::clone_if_missing(&remote, &paths.services) {
                Ok(true) => tracing::info!("cloned the services repository from {remote}"),
                Ok(false) => {}
                Err(e) => tracing::error!("fleet: {e}"),
            }
        }
        let repo = ServicesRepo::open_or_init(&paths.services)?;
        // Start from what ran last (so adoption matches the units the processes were started
        // with); the sync below then applies only what changed since.
        let head = repo.head();
        let applied = persisted.applied_commit.as_deref().and_then(|c| repo.resolve(c).ok());
        let start_commit = applied.or_else(|| head.as_ref().ok().map(|h| h.commit));
        let units = match start_commit {
            Some(c) => UnitSet::load_files(repo.units_at(c)?, &ctx),
            None => UnitSet::default(),
        };
        drop(repo);
        for w in &units.warnings {
            tracing::warn!("{w}");
        }
        for e in &units.invalid {
            tracing::error!("{e}");
        }
        // The caller owns the home alone (its exclusive lock): no other process takes this
        // engine's keys, so they need no lock files (see gitvisor_state's local locks).
        let locks = opts.locks.unwrap_or_else(Locks::in_process);
        let (fleet, fleet_error) = match settings.fleet.clone() {
            None => (None, None),
            Some(f) if f.redis.is_empty() => (None, Some("[fleet] redis is not set".to_string())),
            Some(f) => match crate::fleet::Fleet::new(f, paths.home.join("fleet.json")) {
                Ok(fleet) => (Some(Arc::new(fleet)), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let bus = EventBus::new();
        let maintainer = crate::git::maintenance::Maintainer::new(
            settings.maintenance.clone(),
            &paths.services,
            paths.maintenance.clone(),
            bus.clone(),
        );
        let fleet_mode = settings.fleet.is_some();
        let home_dir = paths.home.clone();
        let engine = Engine {
            inner: Arc::new(Inner {
                locks,
                paths,
                settings,
                bus,
                logs: Arc::new(logs),
                store,
                ctx,
                registry: RwLock::new(Registry::new(units)),
                background: Background::new(),
                shut_down: Mutex::new(false),
                sync_waiting: Default::default(),
                applied: RwLock::new(start_commit.map(|c| c.to_string())),
                repo_problem: RwLock::new(head.err()),
                crash: Mutex::new(None),
                maintainer,
                fleet,
                fleet_error,
                singletons: Mutex::default(),
                run_env: crate::supervisor::task::RunEnv::new(fleet_mode),
                cgroups: Arc::new(crate::supervisor::cgroup::Cgroups::new(&home_dir)),
                timers: Arc::new(super::timers::TimerTable::new(seed_of(&home_dir))),
                watches: Arc::default(),
                timeline: Arc::new(Mutex::new(timeline)),
                metrics: Default::default(),
                last_applied_sync: Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&engine.inner);
        engine.inner.background.spawn("maintenance timer", async move {
            loop {
                tokio::time::sleep(crate::git::maintenance::DAILY).await;
                let Some(inner) = weak.upgrade() else { return };
                Engine { inner }.maintain();
            }
        });
        engine.inner.background.spawn("state writer", engine.inner.store.writer());
        engine.start_crash_reporter();
        engine.start_propagation();
        // Before any service starts: the first starts are on the timeline too.
        engine.start_timeline();
        engine.inner.store.set_applied(start_commit.map(|c| c.to_string()));
        engine.inner.bus.publish(EventKind::EngineStarted { pid: std::process::id() });
        let to_start = engine.register_all(&persisted, &streams);
        engine.inner.store.begin(std::process::id());
        let results = engine.start_ordered(to_start, false, false).await;
        for r in results.results.iter().filter(|r| !r.ok) {
            tracing::warn!("{} did not start: {}", r.name, r.error.as_deref().unwrap_or("unknown error"));
        }
        engine.start_timers();
        engine.start_watches();
        engine.sync_logged().await;
        engine.start_watcher();
        engine.start_fleet();
        Ok(engine)
    }

    /// Registers every loaded unit with its task, adopting live processes; returns the enabled
    /// units to start now.
    fn register_all(&self, persisted: &PersistedState, streams: &[StreamInfo]) -> Vec<String> {
        let mut registry = self.registry_mut();
        // Instances that ran before (from a template) come back too.
        let mut units = std::mem::take(&mut registry.units);
        for name in persisted.services.keys() {
            if !units.units.contains_key(name) && name.contains('@') {
                let _ = units.instantiate(name, &self.inner.ctx);
            }
        }
        registry.set_units(units);

        // What each unit's live process is, then what runs of the home's and is nobody's.
        let live: std::collections::HashMap<String, (u32, u64)> = registry
            .units
            .units
            .keys()
            .filter_map(|n| Some((n.clone(), live_process(n, persisted.services.get(n), streams)?)))
            .collect();
        let known: std::collections::HashSet<u32> = live.values().map(|(pid, _)| *pid).collect();
        let invocations: std::collections::HashSet<&str> =
            persisted.services.values().filter_map(|r| r.invocation.as_deref()).collect();
        for o in super::orphans::find(&super::orphans::home_id(&self.inner.paths.home), &known, &invocations)
        {
            tracing::warn!(
                "{}: killing its process {} (and its group): started by an engine that crashed before recording it; \
                 the service is started again as recorded",
                o.service,
                o.pid
            );
            process::signal_group(o.pid, libc::SIGKILL);
        }

        let mut to_start = Vec::new();
        let fleet_mode = self.inner.settings.fleet.is_some();
        let names: Vec<(String, Arc<Unit>)> =
            registry.units.units.iter().map(|(n, u)| (n.clone(), u.clone())).collect();
        for (name, unit) in names {
            let record = persisted.services.get(&name);
            let enabled = registry.units.is_enabled(&name);
            let initial = match (live.get(&name).copied(), record) {
                (Some((pid, start_time)), _) => Initial::Adopt {
                    pid,
                    start_time,
                    restarts: record.map(|r| r.restarts).unwrap_or(0),
                    // The record's, when it names this process; otherwise (the keeper knew it
                    // first) derived from the kernel's start time.
                    started_ms: record
                        .filter(|r| r.pid == Some(pid) && r.start_time == Some(start_time))
                        .and_then(|r| r.started_ms)
                        .or_else(|| process::started_ms(start_time)),
                    invocation: record
                        .filter(|r| r.pid == Some(pid) && r.start_time == Some(start_time))
                        .and_then(|r| r.invocation.clone()),
                },
                // A fleet singleton whose process died meanwhile starts again only where its
                // lease is held: its driver decides, not the restart policy.
                (None, Some(r))
                    if !persisted.clean_shutdown
                        && (r.state.is_active() || r.state == ServiceState::Backoff)
                        && !(fleet_mode && unit.singleton) =>
                {
                    Initial::DiedUnwatched { restarts: r.restarts }
                }
                (None, r) => {
                    // After a crash, the record says what was meant: up (a restart caught
                    // half-way comes back, enabled or not) or down (a user's stop holds). A
                    // clean shutdown, or no record: enabled units start.
                    // (Ended by itself, exited or failed: the policy already decided, it stays.)
                    let meant = match r {
                        Some(r) if !persisted.clean_shutdown => {
                            r.want_up.unwrap_or(false) && r.state == ServiceState::Stopped
                        }
                        _ => enabled,
                    };
                    if meant && !(fleet_mode && unit.singleton) {
                        to_start.push(name.clone());
                    }
                    Initial::Stopped { restarts: r.map(|r| r.restarts).unwrap_or(0) }
                }
            };
            let service = self.spawn_service(&name, unit, enabled, initial);
            registry.services.insert(name, service);
        }
        // Processes recorded for units that no longer exist would be orphans: stop them.
        for (name, r) in &persisted.services {
            if registry.units.units.contains_key(name) {
                continue;
            }
            if let (Some(pid), Some(st)) = (r.pid, r.start_time) {
                if process::is_same_live_process(pid, st) {
                    tracing::warn!("{name}: its unit is gone; stopping its process {pid}");
                    process::signal_group(pid, libc::SIGTERM);
                }
            }
            self.inner.store.remove_service(name);
        }
        to_start
    }

    /// The crash reporter subscribes before any service starts, so every start gets its
    /// baseline capture.
    fn start_crash_reporter(&self) {
        let weak = Arc::downgrade(&self.inner);
        let lookup: crate::crash::Lookup = Arc::new(move |name: &str| {
            let inner = weak.upgrade()?;
            let registry = inner.registry.read().unwrap_or_else(|e| e.into_inner());
            let s = registry.services.get(name)?;
            let snap = s.snapshot.borrow();
            let last_change = s.unit.watch.as_ref().and_then(|_| inner.watches.last_change(name));
            Some(crate::crash::ServiceInfo {
                unit: s.unit.clone(),
                commit: s.commit.clone(),
                restarts: snap.restarts,
                last_change,
            })
        });
        let setup = crate::crash::Setup {
            paths: self.inner.paths.clone(),
            settings: self.inner.settings.clone(),
            logs: self.inner.logs.clone(),
            bus: self.inner.bus.clone(),
            lookup,
        };
        let sub = self.inner.bus.subscribe_to(Priority::CrashReporter, 1024, crate::crash::takes);
        let handle = crate::crash::start(setup, sub, &self.inner.background);
        *self.inner.crash.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// A service's task, started in `initial`.
    pub(super) fn spawn_service(
        &self,
        name: &str,
        unit: Arc<Unit>,
        enabled: bool,
        initial: Initial,
    ) -> Service {
        let ctx = ServiceCtx {
            name: name.to_string(),
            unit: unit.clone(),
            bus: self.inner.bus.clone(),
            logs: self.inner.logs.clone(),
            store: self.inner.store.clone(),
            run_env: self.inner.run_env.clone(),
            cgroups: self.inner.cgroups.clone(),
            notify_dir: self.inner.paths.home.join("notify"),
            home_id: super::orphans::home_id(&self.inner.paths.home),
        };
        let (tx, snapshot, task) = crate::supervisor::task::spawn_task(ctx, initial);
        Service { enabled, unit, tx, snapshot, task, commit: self.applied(), load_error: None, skipped: None }
    }
}

/// The process of `name` left by an earlier engine, if it still runs: from `state.json`, or
/// from the log keeper (which also knows a process started an instant before a crash).
fn live_process(
    name: &str,
    record: Option<&crate::store::ServiceRecord>,
    streams: &[StreamInfo],
) -> Option<(u32, u64)> {
    record
        .and_then(|r| Some((r.pid?, r.start_time?)))
        .filter(|(pid, st)| process::is_same_live_process(*pid, *st))
        .or_else(|| {
            streams
                .iter()
                .find(|s| s.service == name && process::is_same_live_process(s.pid, s.start_time))
                .map(|s| (s.pid, s.start_time))
        })
}

/// A seed for timers' random delays, stable for a home (systemd hashes the machine id).
fn seed_of(home: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read_to_string("/etc/machine-id").unwrap_or_default().hash(&mut h);
    home.hash(&mut h);
    h.finish()
}
