//! The engine API: one implementation of every operation, called by the socket server, the CLI
//! (through the socket) and the tray app alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use gitvisor_protocol::{
    EventKind, Health, LogLine, OpOutcome, OpReply, ServiceState, ServiceStatus, StatusReply,
};
use gitvisor_state::{LockError, Locks};
use gitvisor_units::{SpecifierContext, Unit};
use tokio::sync::{mpsc, oneshot, watch};

use crate::events::{EventBus, Priority, Subscription};
use crate::git::ServicesRepo;
use crate::logs::LogLink;
use crate::ordered::run_ordered;
use crate::paths::Paths;
use crate::settings::Settings;
use crate::store::{PersistedState, StateStore};
use crate::supervisor::process;
use crate::supervisor::{Command, Initial, Outcome, ServiceCtx, Snapshot};
use crate::units::{specifier_context, UnitSet};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no service named {0}")]
    UnknownService(String),
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("{0}")]
    Failed(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub struct EngineOptions {
    pub paths: Paths,
    /// The binary that runs the log keeper when given its argument (usually this one).
    pub keeper_program: PathBuf,
}

mod crash_ops;
mod sync;

struct Service {
    unit: Arc<Unit>,
    enabled: bool,
    /// The commit this service's unit came from.
    commit: Option<String>,
    /// The unit's file in the applied commit is invalid; the previous version runs.
    load_error: Option<String>,
    tx: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Snapshot>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    paths: Paths,
    settings: Settings,
    bus: EventBus,
    logs: Arc<LogLink>,
    store: StateStore,
    locks: Locks,
    ctx: SpecifierContext,
    units: Mutex<UnitSet>,
    services: RwLock<BTreeMap<String, Service>>,
    /// Problems with the set as a whole: cycles, missing requirements.
    problems: RwLock<Vec<String>>,
    /// Units on a dependency cycle, with the cycle's description.
    on_cycle: RwLock<HashMap<String, String>>,
    writer: tokio::task::JoinHandle<()>,
    shut_down: Mutex<bool>,
    /// The commit that runs.
    applied: RwLock<Option<String>>,
    /// Why the repository cannot be followed now, if it cannot.
    repo_problem: RwLock<Option<String>>,
    watcher: Mutex<Option<crate::git::watcher::RepoWatcher>>,
    crash: Mutex<Option<crate::crash::CrashReporter>>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the engine on a home the caller owns (see `daemon::own_home`): loads settings,
    /// state and units, adopts the services an earlier engine left running, starts the enabled
    /// ones.
    pub async fn open(opts: EngineOptions) -> Result<Engine, EngineError> {
        let paths = opts.paths;
        paths.create_dirs().map_err(|source| EngineError::Io {
            context: format!("creating {}", paths.home.display()),
            source,
        })?;
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
                .map_err(|source| EngineError::Io { context: "starting the log keeper".into(), source })?;
        let ctx = specifier_context();
        let repo =
            ServicesRepo::open_or_init(&paths.services).map_err(|e| EngineError::Failed(e.to_string()))?;
        // Start from what ran last (so adoption matches the units the processes were started
        // with); the sync below then applies only what changed since.
        let head = repo.head();
        let applied = persisted.applied_commit.as_deref().and_then(|c| repo.resolve(c).ok());
        let start_commit = applied.or_else(|| head.as_ref().ok().map(|h| h.commit));
        let units = match start_commit {
            Some(c) => {
                UnitSet::load_files(repo.units_at(c).map_err(|e| EngineError::Failed(e.to_string()))?, &ctx)
            }
            None => UnitSet::default(),
        };
        drop(repo);
        for w in &units.warnings {
            tracing::warn!("{w}");
        }
        for e in &units.invalid {
            tracing::error!("{e}");
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                locks: Locks::local(paths.locks.clone()),
                paths,
                settings,
                bus: EventBus::new(),
                logs: Arc::new(logs),
                writer: store.spawn_writer(),
                store,
                ctx,
                units: Mutex::new(units),
                services: RwLock::new(BTreeMap::new()),
                problems: RwLock::new(Vec::new()),
                on_cycle: RwLock::new(HashMap::new()),
                shut_down: Mutex::new(false),
                applied: RwLock::new(start_commit.map(|c| c.to_string())),
                repo_problem: RwLock::new(head.err()),
                watcher: Mutex::new(None),
                crash: Mutex::new(None),
            }),
        };
        engine.start_crash_reporter();
        engine.inner.store.set_applied(start_commit.map(|c| c.to_string()));
        engine.inner.bus.publish(EventKind::EngineStarted { pid: std::process::id() });
        let to_start = engine.register_all(&persisted, &streams);
        engine.inner.store.begin(std::process::id());
        let results = engine.start_ordered(to_start, false).await;
        for r in results.results.iter().filter(|r| !r.ok) {
            tracing::warn!("{} did not start: {}", r.name, r.error.as_deref().unwrap_or("unknown error"));
        }
        engine.sync_logged().await;
        engine.start_watcher();
        Ok(engine)
    }

    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn subscribe(&self, priority: Priority, capacity: usize) -> Subscription {
        self.inner.bus.subscribe(priority, capacity)
    }

    /// Registers every loaded unit with its task, adopting live processes; returns the enabled
    /// units to start now.
    fn register_all(
        &self,
        persisted: &PersistedState,
        streams: &[crate::logs::wire::StreamInfo],
    ) -> Vec<String> {
        let mut units = self.inner.units.lock().unwrap_or_else(|e| e.into_inner());
        // Instances that ran before (from a template) come back too.
        for name in persisted.services.keys() {
            if !units.units.contains_key(name) && name.contains('@') {
                let _ = units.instantiate(name, &self.inner.ctx);
            }
        }
        self.update_graph(&units);

        let mut to_start = Vec::new();
        let mut services = self.inner.services.write().unwrap_or_else(|e| e.into_inner());
        for (name, unit) in &units.units {
            let record = persisted.services.get(name);
            let live = record
                .and_then(|r| Some((r.pid?, r.start_time?)))
                .filter(|(pid, st)| process::is_same_live_process(*pid, *st))
                .or_else(|| {
                    streams
                        .iter()
                        .find(|s| &s.service == name && process::is_same_live_process(s.pid, s.start_time))
                        .map(|s| (s.pid, s.start_time))
                });
            let restarts = record.map(|r| r.restarts).unwrap_or(0);
            let initial = match (live, record) {
                (Some((pid, start_time)), _) => Initial::Adopt {
                    pid,
                    start_time,
                    restarts,
                    started_ms: record.and_then(|r| r.started_ms),
                },
                (None, Some(r))
                    if !persisted.clean_shutdown
                        && (r.state.is_active() || r.state == ServiceState::Backoff) =>
                {
                    Initial::DiedUnwatched { restarts }
                }
                (None, r) => {
                    let user_stopped = !persisted.clean_shutdown && r.is_some();
                    if units.is_enabled(name) && !user_stopped {
                        to_start.push(name.clone());
                    }
                    Initial::Stopped { restarts }
                }
            };
            let service = self.spawn_service(name, unit.clone(), units.is_enabled(name), initial);
            services.insert(name.clone(), service);
        }
        // Processes recorded for units that no longer exist would be orphans: stop them.
        for (name, r) in &persisted.services {
            if units.units.contains_key(name) {
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

    /// Recomputes the dependency problems (cycles, missing requirements) of a unit set.
    fn update_graph(&self, units: &UnitSet) {
        let plan = units.plan();
        let mut problems = Vec::new();
        let mut on_cycle = HashMap::new();
        for cycle in &plan.cycles {
            let text = format!("dependency cycle: {} -> {}", cycle.join(" -> "), cycle[0]);
            for u in cycle {
                on_cycle.insert(u.clone(), text.clone());
            }
            problems.push(text);
        }
        for (unit, dep) in &plan.missing {
            problems.push(format!("{unit} requires {dep}, which does not exist"));
        }
        *self.inner.problems.write().unwrap_or_else(|e| e.into_inner()) = problems;
        *self.inner.on_cycle.write().unwrap_or_else(|e| e.into_inner()) = on_cycle;
    }

    /// The crash reporter subscribes before any service starts, so every start gets its
    /// baseline capture.
    fn start_crash_reporter(&self) {
        let weak = Arc::downgrade(&self.inner);
        let lookup: crate::crash::Lookup = Arc::new(move |name: &str| {
            let inner = weak.upgrade()?;
            let services = inner.services.read().unwrap_or_else(|e| e.into_inner());
            let s = services.get(name)?;
            let snap = s.snapshot.borrow();
            Some(crate::crash::ServiceInfo {
                unit: s.unit.clone(),
                commit: s.commit.clone(),
                restarts: snap.restarts,
                started_ms: snap.started_ms,
            })
        });
        let sub = self.inner.bus.subscribe(Priority::CrashReporter, 1024);
        let reporter = crate::crash::CrashReporter::spawn(
            self.inner.paths.clone(),
            self.inner.settings.clone(),
            self.inner.logs.clone(),
            self.inner.bus.clone(),
            lookup,
            sub,
        );
        *self.inner.crash.lock().unwrap_or_else(|e| e.into_inner()) = Some(reporter);
    }

    fn applied(&self) -> Option<String> {
        self.inner.applied.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spawn_service(&self, name: &str, unit: Arc<Unit>, enabled: bool, initial: Initial) -> Service {
        let ctx = ServiceCtx {
            name: name.to_string(),
            unit: unit.clone(),
            bus: self.inner.bus.clone(),
            logs: self.inner.logs.clone(),
            store: self.inner.store.clone(),
        };
        let (tx, snapshot, task) = crate::supervisor::task::spawn_task(ctx, initial);
        Service { enabled, unit, tx, snapshot, task, commit: self.applied(), load_error: None }
    }

    /// The service, instantiating a template on first use (`web@8080`).
    fn ensure_service(&self, name: &str) -> Result<(), EngineError> {
        let name = name.strip_suffix(".service").unwrap_or(name);
        if self.inner.services.read().unwrap_or_else(|e| e.into_inner()).contains_key(name) {
            return Ok(());
        }
        let unit = {
            let mut units = self.inner.units.lock().unwrap_or_else(|e| e.into_inner());
            units.instantiate(name, &self.inner.ctx).map_err(|e| {
                if e.starts_with("no unit named") {
                    EngineError::UnknownService(name.to_string())
                } else {
                    // The error names the unit already.
                    EngineError::Failed(e)
                }
            })?
        };
        let service = self.spawn_service(name, unit, false, Initial::Stopped { restarts: 0 });
        self.inner
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_insert(service);
        Ok(())
    }

    fn normalise(names: &[String]) -> Vec<String> {
        names.iter().map(|n| n.strip_suffix(".service").unwrap_or(n).to_string()).collect()
    }

    pub fn status(&self, names: &[String]) -> Result<StatusReply, EngineError> {
        let names = Self::normalise(names);
        let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
        for n in &names {
            if !services.contains_key(n) {
                return Err(EngineError::UnknownService(n.clone()));
            }
        }
        let busy: HashMap<String, String> = self.inner.locks.current().into_iter().collect();
        let on_cycle = self.inner.on_cycle.read().unwrap_or_else(|e| e.into_inner());
        let list = services
            .iter()
            .filter(|(n, _)| names.is_empty() || names.contains(n))
            .map(|(name, s)| {
                let snap = s.snapshot.borrow().clone();
                let usage = snap.pid.filter(|_| snap.state.is_active()).and_then(process::live_usage);
                ServiceStatus {
                    name: name.clone(),
                    description: s.unit.description.clone(),
                    state: snap.state,
                    pid: snap.pid,
                    restarts: snap.restarts,
                    health: Health::Unknown,
                    ready: snap.state == ServiceState::Running,
                    enabled: s.enabled,
                    commit: s.commit.clone(),
                    error: s
                        .load_error
                        .clone()
                        .or_else(|| snap.error.clone())
                        .or_else(|| on_cycle.get(name).cloned()),
                    since_ms: snap.since_ms,
                    started_ms: snap.started_ms,
                    last_exit: snap.last_exit.clone(),
                    busy: busy.get(&lock_key(name)).cloned(),
                    adopted: snap.adopted,
                    cpu_ms: usage.map(|u| u.0),
                    memory_kb: usage.map(|u| u.1),
                }
            })
            .collect();
        drop(services);
        let invalid = self.inner.units.lock().unwrap_or_else(|e| e.into_inner()).invalid.clone();
        let (branch, pending) = match ServicesRepo::open(&self.inner.paths.services) {
            Ok(repo) => (repo.head().ok().map(|h| h.branch), repo.pending()),
            Err(_) => (None, Vec::new()),
        };
        Ok(StatusReply {
            services: list,
            invalid,
            problems: self.inner.problems.read().unwrap_or_else(|e| e.into_inner()).clone(),
            commit: self.applied(),
            branch,
            pending,
            repo_problem: self.inner.repo_problem.read().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }

    /// Starts the services and what they require or want, in dependency order.
    pub async fn start(&self, names: &[String]) -> Result<OpReply, EngineError> {
        let names = Self::normalise(names);
        for n in &names {
            self.ensure_service(n)?;
        }
        let mut reply = self.start_ordered(names.clone(), true).await;
        // Answer for what was asked, dependencies' failures folded into their dependents' errors.
        reply.results.retain(|r| names.contains(&r.name));
        self.durable().await;
        Ok(reply)
    }

    async fn start_ordered(&self, names: Vec<String>, manual: bool) -> OpReply {
        let (set, follows, requires) = {
            let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
            // The closure of Requires= and Wants=.
            let mut set: BTreeSet<String> = BTreeSet::new();
            let mut stack = names.clone();
            while let Some(n) = stack.pop() {
                if !set.insert(n.clone()) {
                    continue;
                }
                if let Some(s) = services.get(&n) {
                    stack.extend(
                        s.unit
                            .requires
                            .iter()
                            .chain(&s.unit.wants)
                            .filter(|d| services.contains_key(*d))
                            .cloned(),
                    );
                }
            }
            let mut follows: HashMap<String, Vec<String>> = HashMap::new();
            let mut requires: HashMap<String, Vec<String>> = HashMap::new();
            for n in &set {
                let Some(s) = services.get(n) else { continue };
                let u = &s.unit;
                follows
                    .entry(n.clone())
                    .or_default()
                    .extend(u.requires.iter().chain(&u.wants).chain(&u.after).cloned());
                for b in &u.before {
                    follows.entry(b.clone()).or_default().push(n.clone());
                }
                requires.insert(n.clone(), u.requires.clone());
            }
            (set.into_iter().collect::<Vec<_>>(), follows, requires)
        };
        let (follows, on_cycle) = self.outside_cycles(follows);
        let me = self.clone();
        let results = run_ordered(&set, &follows, move |name, done: Vec<(String, OpOutcome)>| {
            let me = me.clone();
            let requires = requires.get(&name).cloned().unwrap_or_default();
            let cycle = on_cycle.get(&name).cloned();
            async move {
                if let Some(c) = cycle {
                    return me.fail_dependency(&name, format!("not started: {c}")).await;
                }
                let services_known: Vec<String> =
                    requires.iter().filter(|r| !me.has_service(r)).cloned().collect();
                if let Some(missing) = services_known.first() {
                    return me
                        .fail_dependency(&name, format!("requires {missing}, which does not exist"))
                        .await;
                }
                if let Some((dep, o)) = done.iter().find(|(d, o)| requires.contains(d) && !o.ok) {
                    let why = o.error.clone().unwrap_or_else(|| "it is not running".into());
                    return me
                        .fail_dependency(&name, format!("requires {dep}, which did not start: {why}"))
                        .await;
                }
                me.locked_op(&name, "start", |reply| Command::Start { manual, reply: Some(reply) }).await
            }
        })
        .await;
        OpReply { results: results.into_values().collect() }
    }

    /// Drops ordering edges through units on a dependency cycle: those never start, so waiting
    /// for them would deadlock. Returns the edges and the cycle units with their cycle.
    fn outside_cycles(
        &self,
        follows: HashMap<String, Vec<String>>,
    ) -> (HashMap<String, Vec<String>>, HashMap<String, String>) {
        let on_cycle = self.inner.on_cycle.read().unwrap_or_else(|e| e.into_inner()).clone();
        let follows = follows
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().filter(|d| !on_cycle.contains_key(d)).collect()))
            .collect();
        (follows, on_cycle)
    }

    fn has_service(&self, name: &str) -> bool {
        self.inner.services.read().unwrap_or_else(|e| e.into_inner()).contains_key(name)
    }

    async fn fail_dependency(&self, name: &str, reason: String) -> OpOutcome {
        if let Some(tx) = self.sender(name) {
            let _ = tx.send(Command::DependencyFailed(reason.clone())).await;
        }
        OpOutcome {
            name: name.to_string(),
            ok: false,
            error: Some(reason),
            state: Some(ServiceState::Failed),
            pid: None,
        }
    }

    fn sender(&self, name: &str) -> Option<mpsc::Sender<Command>> {
        self.inner.services.read().unwrap_or_else(|e| e.into_inner()).get(name).map(|s| s.tx.clone())
    }

    /// Runs one lifecycle operation under the service's lock and waits for it to settle.
    async fn locked_op(
        &self,
        name: &str,
        op: &str,
        make: impl FnOnce(oneshot::Sender<Outcome>) -> Command,
    ) -> OpOutcome {
        let fail = |e: String| OpOutcome {
            name: name.to_string(),
            ok: false,
            error: Some(e),
            state: None,
            pid: None,
        };
        let Some(tx) = self.sender(name) else { return fail(format!("no service named {name}")) };
        let result = self
            .inner
            .locks
            .with_lock(&lock_key(name), op, async {
                let (reply_tx, reply_rx) = oneshot::channel();
                tx.send(make(reply_tx)).await.map_err(|_| "the service's task has ended".to_string())?;
                reply_rx.await.map_err(|_| "the service's task has ended".to_string())
            })
            .await;
        match result {
            Ok(Ok(o)) => OpOutcome {
                name: name.to_string(),
                ok: o.ok,
                error: o.error,
                state: Some(o.state),
                pid: o.pid,
            },
            Ok(Err(e)) => fail(e),
            Err(e) => fail(e.to_string()),
        }
    }

    /// Stops the services, after the units that require them (which stop too).
    pub async fn stop(&self, names: &[String]) -> Result<OpReply, EngineError> {
        let names = Self::normalise(names);
        self.check_known(&names)?;
        let mut reply = self.stop_ordered(names.clone(), true).await;
        reply.results.retain(|r| names.contains(&r.name));
        self.durable().await;
        Ok(reply)
    }

    /// What a user is told has happened survives an engine crash right after: user operations
    /// answer once the state they produced is on disk.
    async fn durable(&self) {
        self.inner.store.flushed().await;
    }

    fn check_known(&self, names: &[String]) -> Result<(), EngineError> {
        let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
        match names.iter().find(|n| !services.contains_key(*n)) {
            Some(n) => Err(EngineError::UnknownService(n.clone())),
            None => Ok(()),
        }
    }

    async fn stop_ordered(&self, names: Vec<String>, with_dependents: bool) -> OpReply {
        let (set, follows) = {
            let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
            let mut set: BTreeSet<String> = names.iter().cloned().collect();
            if with_dependents {
                // Whatever requires a stopped unit stops too (systemd's Requires=).
                loop {
                    let more: Vec<String> = services
                        .iter()
                        .filter(|(n, s)| !set.contains(*n) && s.unit.requires.iter().any(|r| set.contains(r)))
                        .filter(|(_, s)| s.snapshot.borrow().state != ServiceState::Stopped)
                        .map(|(n, _)| n.clone())
                        .collect();
                    if more.is_empty() {
                        break;
                    }
                    set.extend(more);
                }
            }
            // Reverse order: X stops after every unit that follows X has stopped.
            let mut follows: HashMap<String, Vec<String>> = HashMap::new();
            for n in &set {
                let Some(s) = services.get(n) else { continue };
                let u = &s.unit;
                for d in u.requires.iter().chain(&u.wants).chain(&u.after) {
                    follows.entry(d.clone()).or_default().push(n.clone());
                }
                for b in &u.before {
                    follows.entry(n.clone()).or_default().push(b.clone());
                }
            }
            (set.into_iter().collect::<Vec<_>>(), follows)
        };
        let (follows, _) = self.outside_cycles(follows);
        let me = self.clone();
        let results = run_ordered(&set, &follows, move |name, _| {
            let me = me.clone();
            async move { me.locked_op(&name, "stop", |reply| Command::Stop { reply: Some(reply) }).await }
        })
        .await;
        OpReply { results: results.into_values().collect() }
    }

    pub async fn restart(&self, names: &[String]) -> Result<OpReply, EngineError> {
        let names = Self::normalise(names);
        for n in &names {
            self.ensure_service(n)?;
        }
        let mut results = Vec::new();
        for n in &names {
            results.push(self.locked_op(n, "restart", |reply| Command::Restart { reply: Some(reply) }).await);
        }
        self.durable().await;
        Ok(OpReply { results })
    }

    pub fn logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>, EngineError> {
        let name = name.strip_suffix(".service").unwrap_or(name);
        self.check_known(&[name.to_string()])?;
        Ok(self.inner.logs.tail(name, lines))
    }

    /// The last `lines` lines of a service's log, then what it prints from there on.
    pub fn follow_logs(
        &self,
        name: &str,
        lines: usize,
    ) -> Result<(Vec<LogLine>, crate::logs::LogFollow), EngineError> {
        let name = name.strip_suffix(".service").unwrap_or(name);
        self.check_known(&[name.to_string()])?;
        // Subscribe before reading the tail so no line falls between the two.
        let rx = self.inner.logs.follow(name);
        let tail = self.inner.logs.tail(name, lines);
        let last = tail.last().map(|l| l.at_us).unwrap_or(0);
        Ok((tail, crate::logs::LogFollow::new(rx, last)))
    }

    /// Stops every service in reverse dependency order, saves the state and lets the log keeper
    /// go. Idempotent.
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
        self.stop_watcher();
        let names: Vec<String> =
            self.inner.services.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        let reply = self.stop_ordered(names, false).await;
        for r in reply.results.iter().filter(|r| !r.ok) {
            tracing::warn!("{}: {}", r.name, r.error.as_deref().unwrap_or("did not stop"));
        }
        // Each task recorded its final state before answering the stop; save it synchronously.
        self.inner.writer.abort();
        if let Err(e) = self.inner.store.save_now(true) {
            tracing::error!("cannot save {}: {e}", self.inner.paths.state.display());
        }
        let reporter = self.inner.crash.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = reporter {
            r.stop().await;
        }
        self.inner.logs.goodbye().await;
        for s in self.inner.services.read().unwrap_or_else(|e| e.into_inner()).values() {
            s.task.abort();
        }
    }

    /// Leaves every service running and stops supervising (used by tests that simulate an
    /// engine crash in-process; a real crash needs nothing).
    pub fn abandon(&self) {
        self.inner.writer.abort();
        for s in self.inner.services.read().unwrap_or_else(|e| e.into_inner()).values() {
            s.task.abort();
        }
    }
}

pub fn lock_key(service: &str) -> String {
    format!("service:{service}")
}
