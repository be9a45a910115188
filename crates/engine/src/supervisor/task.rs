//! One task per service: it owns the service's process, feeds what happens (commands, the exit
//! seen through the pidfd, its timer) into the pure [`Machine`] and performs the actions it
//! returns. Nothing here polls: the task sleeps until the kernel, a command or its one timer
//! wakes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitvisor_protocol::{EventKind, ExitClass, ExitInfo, ServiceState};
use gitvisor_units::{
    quote_command_line, ExecCommand, NotifyAccess, Port, PortProto, ReadyCheck, ServiceType, Unit,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::cgroup::{self, Cgroups, ServiceCgroup};
use super::containment::{Cgrouped, Containment, ProcessGroup};
use super::health::{self, HealthView, ProbePlan, Prober};
use super::machine::{Action, Input, Machine};
use super::notify::{self, NotifySocket};
use super::policy::{Policy, Verdict};
use super::process::{self, Watched};
use super::readiness::{self, Readiness};
use super::spawn;
use crate::events::EventBus;
use crate::logs::link::Note;
use crate::logs::LogLink;
use crate::store::{ServiceRecord, StateStore};

/// What an operation on a service ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub error: Option<String>,
    pub state: ServiceState,
    pub pid: Option<u32>,
}

pub enum Command {
    Start {
        manual: bool,
        reply: Option<oneshot::Sender<Outcome>>,
    },
    Stop {
        reply: Option<oneshot::Sender<Outcome>>,
        /// A user's stop: the service is meant to stay down (across an engine crash too); an
        /// engine's own (a restart's stop, a removal) leaves that as it was.
        by_user: bool,
    },
    /// `ExecReload=` (or SIGHUP) for the running process; answered when it is done.
    Reload {
        reply: oneshot::Sender<Outcome>,
    },
    Restart {
        reply: Option<oneshot::Sender<Outcome>>,
    },
    DependencyFailed(String),
    /// A new version of the unit (from a commit): taken at once; with `restart`, the running
    /// process is replaced by one of the new version.
    Replace {
        unit: Arc<Unit>,
        restart: bool,
        reply: Option<oneshot::Sender<Outcome>>,
    },
}

/// What the rest of the engine sees of a service, updated on every change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: ServiceState,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub error: Option<String>,
    pub since_ms: u64,
    pub started_ms: Option<u64>,
    pub last_exit: Option<ExitInfo>,
    pub last_exit_class: Option<ExitClass>,
    pub adopted: bool,
    /// What the health probes found (`Unknown` without probes or while not running).
    pub health: HealthView,
    /// Running and ready (`Type=`, `ReadyCheck=`); a oneshot: its commands finished well.
    pub ready: bool,
    /// What the service last said of itself (`STATUS=`).
    pub status_text: Option<String>,
    /// Meant to be up: started (or adopted) and not stopped by a user since.
    pub want_up: bool,
}

/// How the task begins.
pub enum Initial {
    Stopped {
        restarts: u32,
    },
    /// A live process left by an earlier engine.
    Adopt {
        pid: u32,
        start_time: u64,
        restarts: u32,
        started_ms: Option<u64>,
        /// Its `$INVOCATION_ID`, when the record names this process.
        invocation: Option<String>,
    },
    /// The process of an earlier engine ended while no engine watched it.
    DiedUnwatched {
        restarts: u32,
    },
}

/// How long a start waits for its own previous processes to let go of a declared port.
const OWN_HOLDER_GRACE: Duration = Duration::from_secs(2);
/// How many times (20 ms apart) a start looks again at a port whose holder it cannot see.
const UNSEEN_HOLDER_LOOKS: u32 = 10;

pub struct ServiceCtx {
    pub name: String,
    pub unit: Arc<Unit>,
    pub bus: EventBus,
    pub logs: Arc<LogLink>,
    pub store: StateStore,
    pub run_env: RunEnv,
    /// Where services with resource limits get their cgroup.
    pub cgroups: Arc<Cgroups>,
    /// Where the service's notification socket is made (`<dir>/<name>`).
    pub notify_dir: std::path::PathBuf,
    /// The home's mark in every process it starts (`$GITVISOR_HOME_ID`).
    pub home_id: String,
}

/// What the engine grants a service's starts beyond its unit, by service: environment to add,
/// and until when it may start at all. In fleet mode a singleton starts only under its lease:
/// with the lease's node and fencing token (`GITVISOR_FLEET_NODE`, `GITVISOR_FLEET_FENCE`), and
/// never once the lease is about to expire (a restart after the engine was paused past its TTL
/// must not run beside the node that took over).
#[derive(Clone, Default)]
pub struct RunEnv {
    grants: Arc<std::sync::Mutex<std::collections::HashMap<String, Grant>>>,
    /// Fleet mode: a singleton without a grant does not start.
    fleet: bool,
}

#[derive(Clone)]
pub struct Grant {
    pub env: Vec<(String, String)>,
    /// The lease's validity (each renewal moves it), and how far ahead of it a start must be.
    pub valid: Option<(watch::Receiver<tokio::time::Instant>, std::time::Duration)>,
}

impl RunEnv {
    pub fn new(fleet: bool) -> RunEnv {
        RunEnv { grants: Arc::default(), fleet }
    }

    pub fn set(&self, service: &str, grant: Grant) {
        self.grants.lock().unwrap_or_else(|e| e.into_inner()).insert(service.to_string(), grant);
    }

    pub fn clear(&self, service: &str) {
        self.grants.lock().unwrap_or_else(|e| e.into_inner()).remove(service);
    }

    /// The environment to add to a start of `unit`, or why it may not start now.
    pub fn for_start(&self, service: &str, unit: &Unit) -> Result<Vec<(String, String)>, String> {
        let grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let Some(grant) = grants.get(service) else {
            if self.fleet && unit.singleton {
                return Err("a fleet singleton starts only while this node holds its lease".into());
            }
            return Ok(Vec::new());
        };
        if let Some((valid, margin)) = &grant.valid {
            if *valid.borrow() <= tokio::time::Instant::now() + *margin {
                return Err("its fleet lease is about to expire or already has".into());
            }
        }
        Ok(grant.env.clone())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Up,
    Down,
}

struct Task {
    ctx: ServiceCtx,
    policy: Policy,
    machine: Machine,
    process: Option<Watched>,
    /// What holds the processes of the current (or last) main process: stop signals go to it,
    /// and what the main process leaves in it is cleaned.
    containment: Option<Box<dyn Containment>>,
    exec_stop: Option<Watched>,
    /// Which `ExecStop=` command runs.
    exec_stop_at: usize,
    timer: Option<tokio::time::Instant>,
    waiters: Vec<(Want, oneshot::Sender<Outcome>)>,
    snapshot: watch::Sender<Snapshot>,
    started_ms: Option<u64>,
    adopted: bool,
    /// The log note of the exit being handled, while its actions run: a restart's spawn sends
    /// it with the new process's pipes and start note (one packet to the keeper), else it goes
    /// once the actions are done.
    exit_note: Option<Note>,
    /// The last signal sent to the current process: what is known of the end of a process
    /// whose status cannot be (an adopted one).
    sent_signal: Option<i32>,
    /// Health probes of the running process (pid), when the unit has a `HealthCheckURL=`.
    prober: Option<(u32, Prober)>,
    /// The readiness of the running process (`ReadyCheck=`); none while it does not run.
    readiness: Option<Readiness>,
    /// The service's cgroup (a unit with limits, where cgroups can be used), and the OOM kills
    /// it had counted when the current process started.
    cgroup: Option<(ServiceCgroup, u64)>,
    /// When to look again whether the cgroup of a service that is down has emptied (what it
    /// held takes a moment to die), and how many looks are left.
    cleanup: Option<(tokio::time::Instant, u32)>,
    /// `Type=oneshot`: which `ExecStart=` command runs (0 is the first).
    oneshot_at: usize,
    /// `Type=forking`: the watched process is the start process, whose daemon is the main one.
    forking_start: bool,
    /// The start's subscription to the service's output, kept for a readiness check that
    /// begins later (a forking service's, once its daemon is known).
    pending_output: Option<tokio::sync::broadcast::Receiver<gitvisor_protocol::LogLine>>,
    /// `$NOTIFY_SOCKET`, while the unit takes notifications.
    notify: Option<NotifySocket>,
    /// `STATUS=` of the current process.
    status_text: Option<String>,
    /// `WatchdogSec=`: when the next `WATCHDOG=1` is due, and the period.
    watchdog: Option<(tokio::time::Instant, Duration)>,
    /// What the last end suggests to the user (a main process that forked away).
    hint: Option<String>,
    /// Meant to be up (see `ServiceRecord::want_up`).
    want_up: bool,
    /// `$INVOCATION_ID` of the current process (see `engine/orphans.rs`).
    invocation: Option<String>,
}

/// An exit to tell once its consequences (a restart) are under way.
struct Exit {
    pid: u32,
    exit: ExitInfo,
    verdict: Verdict,
    /// When the process started: a restart replaces it before the exit is told.
    started_ms: Option<u64>,
    /// Automatic restarts before this exit (the one it causes is counted once it is told).
    restarts: u32,
    /// Why the engine ended it, when that is the cause (failed health probes).
    reason: Option<String>,
    /// The kernel's OOM killer ended it (its cgroup counted the kill).
    oom: bool,
    peak_memory_kb: Option<u64>,
}

impl Exit {
    /// Its line in the service's log: "process 42 exited with status 1 (why)".
    fn note(&self) -> Note {
        let why = self.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
        Note::exit(self.pid, format!("process {} {}{why}", self.pid, self.exit.describe()))
    }
}

pub fn spawn_task(
    ctx: ServiceCtx,
    initial: Initial,
) -> (mpsc::Sender<Command>, watch::Receiver<Snapshot>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let policy = Policy::of(&ctx.unit);
    let now = Instant::now();
    let mut task = Task {
        ctx,
        policy,
        machine: Machine::default(),
        process: None,
        containment: None,
        exec_stop: None,
        exec_stop_at: 0,
        timer: None,
        waiters: Vec::new(),
        snapshot: watch::channel(blank_snapshot()).0,
        started_ms: None,
        adopted: false,
        exit_note: None,
        sent_signal: None,
        prober: None,
        readiness: None,
        cgroup: None,
        cleanup: None,
        oneshot_at: 0,
        forking_start: false,
        pending_output: None,
        notify: None,
        status_text: None,
        watchdog: None,
        hint: None,
        want_up: false,
        invocation: None,
    };
    let mut pending = None;
    match initial {
        Initial::Stopped { restarts } => task.machine.restarts = restarts,
        Initial::Adopt { pid, start_time, restarts, started_ms, invocation } => {
            task.want_up = true;
            task.invocation = invocation;
            match Watched::new(pid, start_time, false) {
                Ok(w) => {
                    task.machine = Machine::adopted(now, restarts);
                    task.process = Some(w);
                    task.cgroup = task.service_cgroup().map(|cg| {
                        let ooms = cg.oom_kills();
                        (cg, ooms)
                    });
                    task.containment = Some(task.contain(pid));
                    task.readiness = Some(Readiness::adopted());
                    // Its `$NOTIFY_SOCKET` is this engine's too (same path): pings go on.
                    task.ensure_notify();
                    task.arm_watchdog();
                    task.started_ms = started_ms;
                    task.adopted = true;
                    task.ctx.bus.publish(EventKind::Adopted { service: task.ctx.name.clone(), pid });
                    task.ctx.logs.note_about(&task.ctx.name, pid, format!("adopted running process {pid}"));
                }
                // It ended between the check and the watch: before this engine could see it.
                Err(_) => {
                    task.machine = Machine::adopted(now, restarts);
                    pending = Some(Input::Exited(process::unwatched_exit()));
                }
            }
        }
        Initial::DiedUnwatched { restarts } => {
            task.want_up = true;
            task.machine = Machine::adopted(now, restarts);
            pending = Some(Input::Exited(process::unwatched_exit()));
        }
    }
    task.sync_prober();
    task.publish_snapshot();
    let rx_snap = task.snapshot.subscribe();
    // The task's future waits for as long as the service runs: it holds the task boxed (by value
    // rustc keeps it twice, as the argument and as its moved local) and a pending first input's
    // step boxed too, or that step's 2 KiB would be part of it for good.
    let mut task = Box::new(task);
    let fut = async move {
        if let Some(input) = pending {
            Box::pin(task.apply(input)).await;
        }
        task.run(rx).await;
    };
    let handle = tokio::spawn(fut);
    (tx, rx_snap, handle)
}

fn blank_snapshot() -> Snapshot {
    Snapshot {
        state: ServiceState::Stopped,
        pid: None,
        restarts: 0,
        error: None,
        since_ms: crate::time::now_ms(),
        started_ms: None,
        last_exit: None,
        last_exit_class: None,
        adopted: false,
        health: HealthView::default(),
        ready: false,
        status_text: None,
        want_up: false,
    }
}

async fn exit_of(w: &Option<Watched>) -> ExitInfo {
    match w {
        Some(w) => w.exited().await,
        None => std::future::pending().await,
    }
}

/// One helper command (`ExecStartPre=`, `ExecReload=`…: `what`), to its end (killed past
/// `limit`), with `extra` environment; an error says which command and how it ended.
async fn run_helper(
    unit: &Unit,
    cmd: &ExecCommand,
    name: &str,
    extra: &[(&str, String)],
    what: &str,
    limit: Duration,
    logs: &LogLink,
) -> Result<(), String> {
    let spec = spawn::prepare(unit, cmd, name, extra).map_err(|e| format!("{what}: {e}"))?;
    let sp = spawn::spawn(&spec).map_err(|e| format!("{what}: {e}"))?;
    let w = Watched::with_pidfd(sp.pid, sp.start_time, true, sp.pidfd)
        .map_err(|e| format!("cannot watch process {}: {e}", sp.pid))?;
    let line = quote_command_line(&cmd.argv);
    // The note with the pipes, so it comes before the command's own lines in the log.
    let note = Note::about(sp.pid, format!("{what}: started process {}: {line}", sp.pid));
    let _ = logs.attach(name, sp.pid, sp.start_time, sp.out, sp.err, vec![note]).await;
    let exit = match tokio::time::timeout(limit, w.exited()).await {
        Ok(exit) => exit,
        Err(_) => {
            process::signal_group(sp.pid, libc::SIGKILL);
            let _ = w.exited().await;
            let limit = humantime::format_duration(limit);
            return Err(format!("{what} {line} did not finish within {limit}: killed"));
        }
    };
    if exit.code == Some(0) || (cmd.ignore_failure && exit.code.is_some()) {
        Ok(())
    } else {
        Err(format!("{what} {line} {}", exit.describe()))
    }
}

/// Runs `commands` in order, each to a good end, the first failure ending the run.
async fn run_helpers(
    unit: &Unit,
    commands: &[ExecCommand],
    name: &str,
    extra: &[(&str, String)],
    what: &str,
    limit: Duration,
    logs: &LogLink,
) -> Result<(), String> {
    for cmd in commands {
        run_helper(unit, cmd, name, extra, what, limit, logs).await?;
    }
    Ok(())
}

/// Runs every one of `commands` in order whatever the previous did (systemd runs all the stop
/// commands); failures are logged.
async fn run_all(
    unit: &Unit,
    commands: &[ExecCommand],
    name: &str,
    extra: &[(&str, String)],
    what: &str,
    limit: Duration,
    logs: &LogLink,
) {
    for cmd in commands {
        if let Err(e) = run_helper(unit, cmd, name, extra, what, limit, logs).await {
            logs.note(name, format!("{what} failed: {e}"));
        }
    }
}

/// What `ExecStopPost=` is told of the end (systemd.exec(5), "Environment Variables in Spawned
/// Processes"): `$SERVICE_RESULT`, and with an exit `$EXIT_CODE` and `$EXIT_STATUS`.
fn stop_post_env(result: &str, exit: Option<&ExitInfo>) -> Vec<(&'static str, String)> {
    let mut env = vec![("SERVICE_RESULT", result.to_string())];
    let Some(exit) = exit else { return env };
    match (exit.code, exit.signal) {
        (Some(code), _) => {
            env.push(("EXIT_CODE", "exited".into()));
            env.push(("EXIT_STATUS", code.to_string()));
        }
        (None, Some(sig)) => {
            let kind = if exit.core_dumped { "dumped" } else { "killed" };
            env.push(("EXIT_CODE", kind.into()));
            let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("");
            let name = name.strip_prefix("SIG").map(str::to_string).unwrap_or_else(|| sig.to_string());
            env.push(("EXIT_STATUS", name));
        }
        (None, None) => {}
    }
    env
}

/// `$SERVICE_RESULT` for an end: systemd's words (`success`, `exit-code`, `signal`,
/// `core-dump`, `timeout`, `watchdog`, `oom-kill`), and gitvisor's `unhealthy` for failed
/// health probes.
fn service_result(told: &Exit) -> &'static str {
    if let Some(reason) = &told.reason {
        return if told.oom {
            "oom-kill"
        } else if reason.starts_with("watchdog") {
            "watchdog"
        } else if reason.starts_with("not ready within") {
            "timeout"
        } else {
            "unhealthy"
        };
    }
    match told.verdict.class {
        ExitClass::Clean | ExitClass::Stopped => "success",
        _ if told.exit.core_dumped => "core-dump",
        _ if told.exit.code.is_some() => "exit-code",
        _ if told.exit.signal.is_some() => "signal",
        _ => "success",
    }
}

/// The main process of a forking service whose start process `start` ended: `PIDFile=`
/// once it names a live process (within `TimeoutStartSec=`), or else the one process left
/// in the start's session.
async fn find_main_pid(unit: &Unit, start: u32) -> Result<u32, String> {
    let Some(file) = &unit.pid_file else {
        let left = process::session_members(start);
        return match left.as_slice() {
            [one] => Ok(*one),
            [] => Err("Type=forking: the start process left no process in its session (a daemon that \
                       calls setsid() needs PIDFile=)"
                .into()),
            many => Err(format!(
                "Type=forking: cannot tell the main process among the {} its start left: set PIDFile=",
                many.len()
            )),
        };
    };
    let deadline = tokio::time::Instant::now().checked_add(unit.timeout_start);
    loop {
        // The daemon writes the file soon after its parent exits, or before.
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match text.trim().parse::<u32>() {
            Ok(pid) if pid > 1 && process::is_alive(pid) => return Ok(pid),
            Ok(pid) if pid > 1 && deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => {
                return Err(format!("PIDFile {} names process {pid}, which is not running", file.display()))
            }
            _ if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => {
                let limit = humantime::format_duration(unit.timeout_start);
                return Err(format!("PIDFile {} named no process within {limit}", file.display()));
            }
            _ => tokio::time::sleep(PIDFILE_RETRY).await,
        }
    }
}

/// How often a forking service's `PIDFile=` is read again while its start waits for it.
const PIDFILE_RETRY: Duration = Duration::from_millis(20);

/// How often, and how many times, the cgroup of a stopped service is looked at until empty.
const CLEANUP_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
const CLEANUP_LOOKS: u32 = 250;

/// The next readiness event; never without a check under way.
async fn readiness_of(r: &mut Option<Readiness>) -> readiness::Event {
    match r {
        Some(r) => r.next().await,
        None => std::future::pending().await,
    }
}

/// The next health probe's result; never without a prober.
async fn probe_of(prober: &mut Option<(u32, Prober)>) -> Result<(), String> {
    match prober {
        Some((_, p)) => p.next_result().await,
        None => std::future::pending().await,
    }
}

/// The next notification; never without a socket.
async fn notify_of(socket: &Option<NotifySocket>) -> std::io::Result<notify::Message> {
    match socket {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn timer_of(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self: Box<Self>, mut rx: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    // The engine let go of the service without stopping it (engine exit without
                    // shutdown): the process keeps running for the next engine to adopt.
                    None => return,
                },
                exit = exit_of(&self.process) => {
                    let w = self.process.take().expect("watched");
                    self.on_exit(w, exit).await;
                }
                _ = exit_of(&self.exec_stop) => {
                    self.exec_stop = None;
                    // The next ExecStop= command, or the stop goes on.
                    let next = self.exec_stop_at + 1;
                    if next < self.ctx.unit.exec_stop.len() && self.machine.in_exec_stop() {
                        self.exec_stop_at = next;
                        if let Err(e) = self.spawn_exec_stop().await {
                            self.ctx.logs.note(&self.ctx.name, format!("ExecStop failed: {e}"));
                            self.apply(Input::ExecStopDone).await;
                        }
                    } else {
                        self.apply(Input::ExecStopDone).await;
                    }
                }
                () = timer_of(self.timer) => {
                    self.timer = None;
                    self.apply(Input::Timer).await;
                }
                result = probe_of(&mut self.prober) => self.on_probe(result).await,
                event = readiness_of(&mut self.readiness) => self.on_readiness(event).await,
                () = timer_of(self.cleanup.map(|(at, _)| at)) => self.clean_cgroup(),
                message = notify_of(&self.notify) => self.on_notify(message).await,
                () = timer_of(self.watchdog.map(|(at, _)| at)) => self.on_watchdog().await,
            }
        }
    }

    /// The watched process ended: a step of a start (a oneshot's command, a forking service's
    /// start process) or the end of the main process.
    async fn on_exit(&mut self, w: Watched, mut exit: ExitInfo) {
        if self.machine.state == ServiceState::Starting {
            if std::mem::take(&mut self.forking_start) {
                return self.on_forking_start_exit(w.pid, exit).await;
            }
            if self.policy.oneshot && self.oneshot_step(w.pid, &exit).await {
                return;
            }
        }
        self.watchdog = None;
        let sent = self.sent_signal.take();
        if exit.code.is_none() && exit.signal.is_none() {
            exit.sent_signal = sent;
        }
        // The exit is told (log note, event) right after the actions it causes, so
        // a restart with no delay spawns before anything else is done. The machine
        // judges it with the same policy and the same inputs.
        // The kernel's OOM killer, seen in the cgroup's count.
        let oom = self.cgroup.as_ref().is_some_and(|(cg, before)| cg.oom_kills() > *before);
        if oom {
            if let Some((cg, before)) = self.cgroup.as_mut() {
                *before = cg.oom_kills();
            }
        }
        // A kill for a cause ends in a failure, whatever the signal.
        let reason = self.machine.killed_for.clone().or_else(|| {
            oom.then(|| {
                let max = self.ctx.unit.memory_max.map(|b| format!(" ({b} bytes)")).unwrap_or_default();
                format!("oom: killed by the kernel for exceeding MemoryMax={max}")
            })
        });
        let verdict = match reason {
            Some(_) => {
                Verdict { class: ExitClass::Failure, restart: self.policy.restarts_unhealthy(), report: true }
            }
            None => self.policy.judge(&exit, self.machine.stop_requested()),
        };
        self.hint = self.forked_away(w.pid, &exit, verdict.restart);
        if let Some(hint) = &self.hint {
            self.ctx.logs.note_about(&self.ctx.name, w.pid, hint.clone());
        }
        let peak_memory_kb = self.peak_memory_kb(&exit);
        let told = Exit {
            peak_memory_kb,
            pid: w.pid,
            exit: exit.clone(),
            verdict,
            started_ms: self.started_ms,
            restarts: self.machine.restarts,
            reason,
            oom,
        };
        // A service that had started and ended by itself still gets its stop commands, as in
        // systemd ("the stop operation is always performed if the service started"), without
        // $MAINPID: ExecStop= only when no stop was asked (a stop ran them already).
        let ended_by_itself = !self.machine.stop_requested() && self.machine.state == ServiceState::Running;
        let stop_commands = ended_by_itself && !self.ctx.unit.exec_stop.is_empty();
        if !stop_commands && self.ctx.unit.exec_stop_post.is_empty() {
            return self.apply_after_exit(Input::Exited(exit), Some(told)).await;
        }
        // They run before what the end causes (a restart), told of the end: so the end is told
        // first.
        let result = service_result(&told);
        let note = told.note();
        self.note_exit(told, Some(note));
        if stop_commands {
            self.stop_after_end().await;
        }
        self.stop_post(result, Some(&exit)).await;
        self.apply(Input::Exited(exit)).await;
    }

    /// `ExecStop=` for a service whose main process is already gone: each in order, within
    /// `TimeoutStopSec=`; failures are logged.
    async fn stop_after_end(&mut self) {
        let unit = self.ctx.unit.clone();
        run_all(&unit, &unit.exec_stop, &self.ctx.name, &[], "ExecStop", unit.timeout_stop, &self.ctx.logs)
            .await;
    }

    /// A main process that ended well while the processes it started live on has most likely
    /// daemonized (nginx without `daemon off;`): the service would end with it. Says what to do.
    /// Seen in its process group, its session (both led by the main process) or its cgroup; a
    /// daemon that left all three (setsid without a cgroup) cannot be told apart.
    /// The session is scanned only for an end that is not restarted (a restart must not wait
    /// for a walk of /proc).
    fn forked_away(&self, pid: u32, exit: &ExitInfo, restarts: bool) -> Option<String> {
        let simple = matches!(
            self.ctx.unit.service_type,
            ServiceType::Simple | ServiceType::Exec | ServiceType::Notify
        );
        if !simple || exit.code != Some(0) || self.machine.stop_requested() {
            return None;
        }
        let left = self.containment.as_ref().is_some_and(|c| c.occupied())
            || (!restarts && !process::session_members(pid).is_empty());
        left.then(|| {
            let kind = self.ctx.unit.service_type.as_str();
            format!(
                "the main process exited 0 but left processes running: it probably forked into the background; \
                 run it in the foreground (e.g. nginx's `daemon off;`) or use Type=forking (Type={kind} ends with its main process)"
            )
        })
    }

    async fn command(&mut self, cmd: Command) {
        let (input, want, reply) = match cmd {
            Command::Start { manual, reply } => {
                self.want_up = true;
                (Input::Start { manual }, Want::Up, reply)
            }
            Command::Stop { reply, by_user } => {
                if by_user {
                    self.want_up = false;
                }
                (Input::Stop, Want::Down, reply)
            }
            Command::Reload { reply } => {
                self.reload(reply);
                return;
            }
            Command::Restart { reply } => {
                self.want_up = true;
                (Input::Restart, Want::Up, reply)
            }
            Command::DependencyFailed(reason) => (Input::DependencyFailed(reason), Want::Down, None),
            Command::Replace { unit, restart, reply } => {
                self.policy = Policy::of(&unit);
                self.ctx.unit = unit;
                // New probe settings apply from now (a running process keeps its health so far
                // only if they did not change).
                if self
                    .prober
                    .as_ref()
                    .is_some_and(|(_, p)| Some(&p.plan) != ProbePlan::of(&self.ctx.unit).as_ref())
                {
                    self.prober = None;
                    self.sync_prober();
                    self.publish_snapshot();
                }
                if !restart {
                    self.apply(Input::Replaced).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(self.outcome(true));
                    }
                    return;
                }
                (Input::Restart, Want::Up, reply)
            }
        };
        if let Some(reply) = reply {
            self.waiters.push((want, reply));
        }
        self.apply(input).await;
    }

    /// Tells an exit: its log note (unless a restart sent it already) and its event.
    fn note_exit(&self, told: Exit, note: Option<Note>) {
        if let Some(note) = note {
            self.ctx.logs.send_note(&self.ctx.name, note);
        }
        let Exit { pid, exit, verdict, started_ms, restarts, reason, oom, peak_memory_kb } = told;
        self.ctx.bus.publish(EventKind::Exited {
            service: self.ctx.name.clone(),
            pid,
            exit,
            expected: verdict.class == ExitClass::Stopped,
            class: verdict.class,
            report: verdict.report,
            started_ms,
            restarts,
            reason,
            oom,
            peak_memory_kb,
        });
    }

    /// Feeds one input to the machine and performs the resulting actions (which may feed more).
    async fn apply(&mut self, input: Input) {
        self.apply_after_exit(input, None).await;
    }

    async fn apply_after_exit(&mut self, input: Input, mut exit: Option<Exit>) {
        if let Some(told) = &exit {
            self.exit_note = Some(told.note());
        }
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let before = self.machine.state;
            let restarts_before = self.machine.restarts;
            let actions = self.machine.step(&self.policy, input, Instant::now());
            for action in actions {
                if let Some(next) = self.perform(action).await {
                    queue.push(next);
                }
            }
            if let Some(told) = exit.take() {
                let unsent = self.exit_note.take();
                self.note_exit(told, unsent);
            }
            if self.machine.restarts != restarts_before {
                let delay_ms = self
                    .timer
                    .map(|t| t.saturating_duration_since(tokio::time::Instant::now()).as_millis() as u64);
                self.ctx.bus.publish(EventKind::Restarting {
                    service: self.ctx.name.clone(),
                    attempt: self.machine.restarts,
                    delay_ms: delay_ms.unwrap_or(0),
                });
            }
            if self.machine.state != before {
                self.ctx.bus.publish(EventKind::State {
                    service: self.ctx.name.clone(),
                    from: before,
                    to: self.machine.state,
                    pid: self.process.as_ref().map(|p| p.pid),
                    reason: self.machine.error.clone(),
                });
                if let Some(e) = &self.machine.error {
                    if matches!(self.machine.state, ServiceState::Failed) {
                        self.ctx.logs.note(&self.ctx.name, format!("failed: {e}"));
                    }
                }
            }
        }
        self.sync_prober();
        self.publish_snapshot();
        self.answer_waiters();
    }

    /// Performs one action; returns a follow-up input when the action has an immediate result.
    async fn perform(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::Spawn => self.spawn_main().await,
            Action::RunExecStop => {
                self.exec_stop_at = 0;
                if let Err(e) = self.spawn_exec_stop().await {
                    self.ctx.logs.note(&self.ctx.name, format!("ExecStop failed: {e}"));
                    return Some(Input::ExecStopDone);
                }
                None
            }
            Action::Signal(sig) => {
                if let (Some(_), Some(c)) = (&self.process, &self.containment) {
                    c.signal_all(sig);
                    self.sent_signal = Some(sig);
                }
                None
            }
            Action::Kill => {
                if let (Some(p), Some(c)) = (&self.process, &self.containment) {
                    self.ctx.logs.note_about(
                        &self.ctx.name,
                        p.pid,
                        format!("stop timed out; killing {}", c.describe()),
                    );
                    c.signal_all(libc::SIGKILL);
                    self.sent_signal = Some(libc::SIGKILL);
                }
                if let Some(p) = &self.exec_stop {
                    process::signal_group(p.pid, libc::SIGKILL);
                }
                None
            }
            Action::KillExecStop => {
                if let Some(p) = &self.exec_stop {
                    self.ctx
                        .logs
                        .note(&self.ctx.name, format!("ExecStop timed out; killing its process {}", p.pid));
                    process::signal_group(p.pid, libc::SIGKILL);
                }
                None
            }
            Action::KillLeftovers => {
                // Whatever the exited main process left behind would outlive the service.
                if let Some(c) = self.containment.take() {
                    if c.occupied() {
                        c.signal_all(libc::SIGKILL);
                    }
                }
                None
            }
            Action::ArmTimer(d) => {
                // `infinity` (Duration::MAX) never fires.
                self.timer = tokio::time::Instant::now().checked_add(d);
                None
            }
            Action::CancelTimer => {
                self.timer = None;
                None
            }
        }
    }

    /// Starts the service: `ExecStartPre=`, then the main command. Returns the input for the
    /// machine when the start's result is known now; none while it is under way (a oneshot's
    /// commands, a forking service's start process).
    async fn spawn_main(&mut self) -> Option<Input> {
        let unit = self.ctx.unit.clone();
        self.status_text = None;
        self.hint = None;
        self.forking_start = false;
        self.oneshot_at = 0;
        // Conditions hold at every start, automatic restarts too, as systemd checks them for each
        // start job (a user's start was checked already, so this is the same verdict).
        match super::conditions::check(&unit.conditions, &|v| std::env::var(v).ok()) {
            super::conditions::Verdict::Start => {}
            super::conditions::Verdict::Skip(why) => {
                self.ctx.logs.note(&self.ctx.name, format!("start skipped: {why}"));
                return Some(Input::Skipped(why));
            }
            super::conditions::Verdict::Fail(why) => return Some(self.start_failed(why).await),
        }
        // A declared port another process holds would only make the program fail on
        // EADDRINUSE, again at each restart: the start fails now, naming the holder.
        if let Err(why) = check_ports(&unit, &self.ctx.name, &self.ctx.home_id).await {
            return Some(self.start_failed(why).await);
        }
        // ExecStartPre= first, in order, each to its end: one that fails fails the start.
        let name = self.ctx.name.clone();
        let limit = unit.timeout_start;
        if let Err(e) =
            run_helpers(&unit, &unit.exec_start_pre, &name, &[], "ExecStartPre", limit, &self.ctx.logs).await
        {
            return Some(self.start_failed(e).await);
        }
        // Subscribed before the spawn: a `log:` readiness check misses none of its lines.
        let output = readiness::needs_output(&unit).then(|| self.ctx.logs.follow(&self.ctx.name));
        self.ensure_notify();
        if let Err(e) = self.spawn_command(&unit.exec_start).await {
            return Some(self.start_failed(e).await);
        }
        match unit.service_type {
            // Their start ends when the task says; `TimeoutStartSec=` bounds it meanwhile.
            ServiceType::Oneshot => {
                self.readiness = Some(Readiness::until_done(&unit, "Type=oneshot: ExecStart= still running"));
                None
            }
            ServiceType::Forking => {
                self.forking_start = true;
                self.pending_output = output;
                self.readiness =
                    Some(Readiness::until_done(&unit, "Type=forking: the start process still running"));
                None
            }
            ServiceType::Simple | ServiceType::Exec | ServiceType::Notify => {
                self.readiness = Some(Readiness::starting(&unit, output));
                self.arm_watchdog();
                if self.readiness.as_ref().is_some_and(|r| r.ready) {
                    if let Err(e) = self.start_post().await {
                        self.kill_current().await;
                        return Some(self.start_failed(e).await);
                    }
                }
                Some(Input::Spawned)
            }
        }
    }

    /// Spawns one command as the service's current process (the main one, or a oneshot's
    /// command): in the cgroup of a unit with limits, with `$NOTIFY_SOCKET` when it takes
    /// notifications.
    async fn spawn_command(&mut self, cmd: &ExecCommand) -> Result<u32, String> {
        let unit = self.ctx.unit.clone();
        // A unit with limits runs in its cgroup, limits written before the process exists.
        let cg = self.service_cgroup();
        let mut added = self.ctx.run_env.for_start(&self.ctx.name, &unit)?;
        // What marks the process (and what it starts) as this start's, so an engine that
        // crashed before recording it leaves no unknown process behind (engine/orphans.rs).
        let invocation = crate::engine::orphans::invocation_id();
        added.push(("INVOCATION_ID".into(), invocation.clone()));
        added.push((crate::engine::orphans::HOME_ID_VAR.into(), self.ctx.home_id.clone()));
        if let Some(socket) = &self.notify {
            added.push(("NOTIFY_SOCKET".into(), socket.path.display().to_string()));
            if let Some(period) = unit.watchdog {
                added.push(("WATCHDOG_USEC".into(), period.as_micros().to_string()));
            }
        }
        let added: Vec<(&str, String)> = added.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut spec = spawn::prepare(&unit, cmd, &self.ctx.name, &added)?;
        for w in std::mem::take(&mut spec.warnings) {
            self.ctx.logs.note(&self.ctx.name, w);
        }
        if let Some(cg) = &cg {
            cg.prepare(&unit)?;
            spec.join = cg.join_files()?;
        }
        let sp = spawn::spawn(&spec)?;
        let pid = sp.pid;
        match Watched::with_pidfd(pid, sp.start_time, true, sp.pidfd) {
            Ok(w) => self.process = Some(w),
            Err(e) => {
                process::signal_group(pid, libc::SIGKILL);
                return Err(format!("cannot watch process {pid}: {e}"));
            }
        }
        self.cgroup = cg.map(|cg| {
            let ooms = cg.oom_kills();
            cg.reset_peak();
            (cg, ooms)
        });
        self.cleanup = None;
        self.containment = Some(self.contain(pid));
        self.adopted = false;
        self.sent_signal = None;
        self.invocation = Some(invocation);
        self.started_ms = Some(crate::time::now_ms());
        // The record must name the new pid before anything else can go wrong, so a
        // successor engine adopts it rather than starting a duplicate.
        self.persist();
        // The exit this start follows is told first, then the start, then its output.
        let mut notes: Vec<Note> = self.exit_note.take().into_iter().collect();
        notes.push(Note::about(pid, format!("started process {pid}: {}", quote_command_line(&cmd.argv))));
        if let Err(e) = self.ctx.logs.attach(&self.ctx.name, pid, sp.start_time, sp.out, sp.err, notes).await
        {
            tracing::warn!(service = %self.ctx.name, "cannot hand output to the log keeper: {e}");
        }
        Ok(pid)
    }

    /// A start that failed (`why`): said in the log, `ExecStopPost=` run; the input for the
    /// machine.
    async fn start_failed(&mut self, why: String) -> Input {
        self.ctx.logs.note(&self.ctx.name, format!("cannot start: {why}"));
        self.stop_post("exit-code", None).await;
        Input::SpawnFailed(why)
    }

    /// SIGKILLs the current process and what it leads, and waits for its end (a start that
    /// failed after its spawn).
    async fn kill_current(&mut self) {
        if let Some(c) = self.containment.take() {
            c.signal_all(libc::SIGKILL);
        }
        if let Some(w) = self.process.take() {
            let exit = w.exited().await;
            self.ctx.logs.note_exit(&self.ctx.name, w.pid, format!("process {} {}", w.pid, exit.describe()));
        }
        self.readiness = None;
        self.watchdog = None;
    }

    /// `ExecStartPost=`, once the service started (and is ready): each must end well.
    async fn start_post(&mut self) -> Result<(), String> {
        let unit = self.ctx.unit.clone();
        if unit.exec_start_post.is_empty() {
            return Ok(());
        }
        let extra: Vec<(&str, String)> =
            self.process.as_ref().map(|p| ("MAINPID", p.pid.to_string())).into_iter().collect();
        let (name, limit) = (self.ctx.name.clone(), unit.timeout_start);
        run_helpers(&unit, &unit.exec_start_post, &name, &extra, "ExecStartPost", limit, &self.ctx.logs).await
    }

    /// `ExecStopPost=`, after the service ended (stopped, crashed, or failed to start), told how
    /// (`result`, the main process's `exit`). Failures are logged; nothing else follows from
    /// them, as in systemd.
    async fn stop_post(&mut self, result: &str, exit: Option<&ExitInfo>) {
        let unit = self.ctx.unit.clone();
        if unit.exec_stop_post.is_empty() {
            return;
        }
        let extra = stop_post_env(result, exit);
        let limit = unit.timeout_stop;
        run_all(&unit, &unit.exec_stop_post, &self.ctx.name, &extra, "ExecStopPost", limit, &self.ctx.logs)
            .await;
    }

    /// A oneshot's command ended while it starts: the next one runs, or the start is done
    /// (`ExecStartPost=`, then finished). False when the command failed: its end is the
    /// service's.
    async fn oneshot_step(&mut self, pid: u32, exit: &ExitInfo) -> bool {
        let unit = self.ctx.unit.clone();
        let cmd = match self.oneshot_at {
            0 => &unit.exec_start,
            n => &unit.exec_start_rest[n - 1],
        };
        let ok = exit.code == Some(0)
            || (cmd.ignore_failure && exit.code.is_some())
            || self.policy.success.contains(exit.code, exit.signal);
        if !ok {
            return false;
        }
        self.ctx.logs.note_exit(&self.ctx.name, pid, format!("process {pid} {}", exit.describe()));
        if let Some(next) = unit.exec_start_rest.get(self.oneshot_at) {
            self.oneshot_at += 1;
            if let Err(e) = self.spawn_command(next).await {
                let input = self.start_failed(e).await;
                self.apply(input).await;
            }
            return true;
        }
        let input = match self.start_post().await {
            Ok(()) => Input::Finished(exit.clone()),
            Err(e) => self.start_failed(e).await,
        };
        // Done and not remaining: it stops right away, as systemd stops it (ExecStop=, then
        // ExecStopPost=).
        if matches!(input, Input::Finished(_)) && !self.policy.remain_after_exit {
            if !unit.exec_stop.is_empty() {
                self.stop_after_end().await;
            }
            self.stop_post("success", Some(exit)).await;
        }
        self.apply(input).await;
        true
    }

    /// A forking service's start process ended: with success, its daemon is the main process
    /// (`PIDFile=`, or the one process left in its session); otherwise the start failed.
    async fn on_forking_start_exit(&mut self, pid: u32, exit: ExitInfo) {
        self.ctx.logs.note_exit(&self.ctx.name, pid, format!("start process {pid} {}", exit.describe()));
        let found = match exit.code {
            Some(0) => find_main_pid(&self.ctx.unit.clone(), pid).await,
            _ => Err(format!("Type=forking: the start process {}", exit.describe())),
        };
        let watched = found.and_then(|main| {
            let start_time = process::start_time(main).ok_or(format!("main process {main} is gone"))?;
            Watched::new(main, start_time, false).map_err(|e| format!("cannot watch process {main}: {e}"))
        });
        let w = match watched {
            Ok(w) => w,
            Err(e) => {
                // What the start left is not a service.
                if let Some(c) = self.containment.take() {
                    c.signal_all(libc::SIGKILL);
                }
                let input = self.start_failed(e).await;
                return self.apply(input).await;
            }
        };
        let main = w.pid;
        self.process = Some(w);
        // Its group: a daemon usually made its own (setsid).
        let group = process::pgid_of(main).unwrap_or(main);
        self.containment = Some(self.contain(group));
        self.persist();
        self.ctx.logs.note_about(&self.ctx.name, main, format!("main process {main} (Type=forking)"));
        let unit = self.ctx.unit.clone();
        self.readiness = Some(Readiness::starting(&unit, self.pending_output.take()));
        self.arm_watchdog();
        self.apply(Input::Spawned).await;
        if self.readiness.as_ref().is_some_and(|r| r.ready) {
            self.after_ready_post().await;
        }
    }

    /// The service became ready: `ExecStartPost=` runs; one that fails kills the service, a
    /// failed start.
    async fn after_ready_post(&mut self) {
        if let Err(e) = self.start_post().await {
            self.ctx.logs.note(&self.ctx.name, format!("{e}: killing it"));
            self.apply(Input::KillFor(e)).await;
        }
    }

    /// Makes the service's `$NOTIFY_SOCKET` when its unit takes notifications.
    fn ensure_notify(&mut self) {
        if self.ctx.unit.notify_access == NotifyAccess::None || self.notify.is_some() {
            return;
        }
        let path = self.ctx.notify_dir.join(&self.ctx.name);
        match NotifySocket::bind(&path) {
            Ok(socket) => self.notify = Some(socket),
            Err(e) => self
                .ctx
                .logs
                .note(&self.ctx.name, format!("cannot make $NOTIFY_SOCKET {}: {e}", path.display())),
        }
    }

    /// Starts the watchdog's clock for the current process (`WatchdogSec=`).
    fn arm_watchdog(&mut self) {
        self.watchdog = match (self.ctx.unit.watchdog, &self.notify) {
            (Some(period), Some(_)) => tokio::time::Instant::now().checked_add(period).map(|at| (at, period)),
            _ => None,
        };
    }

    /// The watchdog was not pinged in time: the service is killed with `WatchdogSignal=`.
    async fn on_watchdog(&mut self) {
        let Some((_, period)) = self.watchdog.take() else { return };
        let up = matches!(self.machine.state, ServiceState::Starting | ServiceState::Running);
        let Some(pid) = self.process.as_ref().map(|p| p.pid).filter(|_| up) else { return };
        let reason = format!("watchdog: no WATCHDOG=1 within {}", humantime::format_duration(period));
        let signal = self.policy.watchdog_signal;
        let name = nix::sys::signal::Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("a signal");
        self.ctx.logs.note_about(&self.ctx.name, pid, format!("{reason}: killing it with {name}"));
        self.apply(Input::Watchdog(reason)).await;
    }

    /// A message on `$NOTIFY_SOCKET`: taken only from the processes `NotifyAccess=` allows.
    async fn on_notify(&mut self, message: std::io::Result<notify::Message>) {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                self.ctx.logs.note(&self.ctx.name, format!("$NOTIFY_SOCKET failed, notifications off: {e}"));
                self.notify = None;
                return;
            }
        };
        let Some(main) = self.process.as_ref().map(|p| p.pid) else { return };
        let allowed = match (self.ctx.unit.notify_access, message.pid) {
            (_, None) | (NotifyAccess::None, _) => false,
            (NotifyAccess::Main, Some(pid)) => pid == main,
            (NotifyAccess::Exec | NotifyAccess::All, Some(pid)) => {
                pid == main
                    || (process::session_of(pid).is_some()
                        && process::session_of(pid) == process::session_of(main))
            }
        };
        if !allowed {
            let from = message.pid.map(|p| p.to_string()).unwrap_or_else(|| "an unknown process".into());
            let access = self.ctx.unit.notify_access;
            let note = format!(
                "notification from {from} ignored: NotifyAccess={access:?} takes main process {main}'s only"
            );
            self.ctx.logs.note(
                &self.ctx.name,
                note.replace("Main", "main").replace("Exec", "exec").replace("All", "all"),
            );
            return;
        }
        for (key, value) in message.fields {
            match (key.as_str(), value.as_str()) {
                ("READY", "1") => {
                    if let Some(event) = self.readiness.as_mut().and_then(|r| r.notified()) {
                        self.on_readiness(event).await;
                    }
                }
                ("STATUS", text) => {
                    self.status_text = (!text.is_empty()).then(|| text.to_string());
                    self.publish_snapshot();
                }
                ("RELOADING", "1") => self.ctx.logs.note(&self.ctx.name, "reloading (RELOADING=1)".into()),
                ("STOPPING", "1") => self.ctx.logs.note(&self.ctx.name, "stopping (STOPPING=1)".into()),
                ("WATCHDOG", "1") => {
                    if let Some((at, period)) = self.watchdog.as_mut() {
                        *at = tokio::time::Instant::now() + *period;
                    }
                }
                ("WATCHDOG", "trigger") => {
                    if let Some((at, _)) = self.watchdog.as_mut() {
                        *at = tokio::time::Instant::now();
                    }
                }
                ("WATCHDOG_USEC", usec) => {
                    if let Some(period) =
                        usec.parse::<u64>().ok().filter(|&u| u > 0).map(Duration::from_micros)
                    {
                        self.watchdog =
                            tokio::time::Instant::now().checked_add(period).map(|at| (at, period));
                    }
                }
                ("MAINPID", pid) if pid != main.to_string() => self.ctx.logs.note(
                    &self.ctx.name,
                    format!("MAINPID={pid} is not supported by gitvisor: the main process stays {main}"),
                ),
                _ => {}
            }
        }
    }

    /// Starts the current `ExecStop=` command (`exec_stop_at`).
    async fn spawn_exec_stop(&mut self) -> Result<(), String> {
        let unit = self.ctx.unit.clone();
        let cmd = unit.exec_stop.get(self.exec_stop_at).ok_or("no ExecStop")?;
        let main_pid = self.process.as_ref().map(|p| p.pid.to_string()).unwrap_or_default();
        let spec = spawn::prepare(&unit, cmd, &self.ctx.name, &[("MAINPID", main_pid)])?;
        let sp = spawn::spawn(&spec)?;
        self.exec_stop =
            Some(Watched::with_pidfd(sp.pid, sp.start_time, true, sp.pidfd).map_err(|e| e.to_string())?);
        let _ = self.ctx.logs.attach(&self.ctx.name, sp.pid, sp.start_time, sp.out, sp.err, Vec::new()).await;
        Ok(())
    }

    /// Reloads the running process: its `ExecReload=` commands one after the other (each must
    /// succeed, or its `-` prefix says a failure is fine), with `$MAINPID`, within
    /// `TimeoutStartSec=` each; without any, SIGHUP to the main process. The commands run in a
    /// task of their own, so this one goes on watching the service meanwhile; the operation's
    /// lock, held by the caller until the answer, keeps other operations out.
    fn reload(&mut self, reply: oneshot::Sender<Outcome>) {
        let state = self.machine.state;
        let running = self.process.as_ref().map(|p| p.pid).filter(|_| state == ServiceState::Running);
        let Some(pid) = running else {
            let error = Some(format!("cannot reload: it is {state}"));
            let _ = reply.send(Outcome { ok: false, error, state, pid: None });
            return;
        };
        let commands = self.ctx.unit.exec_reload.clone();
        if commands.is_empty() {
            // SAFETY: kill(2) of this service's own main process.
            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
            self.ctx.logs.note_about(&self.ctx.name, pid, format!("reload: SIGHUP to process {pid}"));
            let _ = reply.send(Outcome { ok: true, error: None, state, pid: Some(pid) });
            return;
        }
        let (unit, name, logs) = (self.ctx.unit.clone(), self.ctx.name.clone(), self.ctx.logs.clone());
        tokio::spawn(async move {
            let mut error = None;
            let extra = [("MAINPID", pid.to_string())];
            let limit = unit.timeout_start;
            if let Err(e) = run_helpers(&unit, &commands, &name, &extra, "ExecReload", limit, &logs).await {
                logs.note(&name, format!("reload failed: {e}"));
                error = Some(e);
            }
            let _ = reply.send(Outcome { ok: error.is_none(), error, state, pid: Some(pid) });
        });
    }

    /// Removes the cgroup of a service that is down once what it held has died (SIGKILLed
    /// again at each look); gives up after [`CLEANUP_LOOKS`] looks (it is reused by the next
    /// start).
    fn clean_cgroup(&mut self) {
        let Some((_, looks)) = self.cleanup.take() else { return };
        let down =
            matches!(self.machine.state, ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed);
        let Some((cg, _)) = self.cgroup.as_ref().filter(|_| down) else { return };
        if cg.signal_all(libc::SIGKILL) && looks > 1 {
            self.cleanup = Some((tokio::time::Instant::now() + CLEANUP_EVERY, looks - 1));
            return;
        }
        cg.remove();
        self.cgroup = None;
    }

    /// The ended process's own peak memory, in KiB, when it can be known: its cgroup's peak;
    /// else the kernel's `ru_maxrss`, but only above the engine's own peak: a process started
    /// the vfork way (`vfork.rs`) shares the engine's memory until its exec, and the kernel
    /// counts that memory's peak into the child's figure (a small `sh` "peaked" at the engine's
    /// size). Below it, the figure cannot be told apart from the engine's: unknown.
    fn peak_memory_kb(&self, exit: &ExitInfo) -> Option<u64> {
        if let Some(peak) = self.cgroup.as_ref().and_then(|(cg, _)| cg.peak_kb()) {
            return Some(peak);
        }
        let kernel = exit.usage.map(|u| u.max_rss_kb)?;
        process::above_own_peak(kernel).then_some(kernel)
    }

    /// The service's cgroup when its unit sets limits and cgroups can be used here.
    fn service_cgroup(&self) -> Option<ServiceCgroup> {
        if !cgroup::has_limits(&self.ctx.unit) {
            return None;
        }
        self.ctx.cgroups.backend().as_ref().ok().map(|b| b.cgroup(&self.ctx.name))
    }

    /// What holds the process `pid` leads: its group, and its cgroup when it has one.
    fn contain(&self, pid: u32) -> Box<dyn Containment> {
        let group = ProcessGroup::led_by(pid);
        match &self.cgroup {
            Some((cg, _)) => Box::new(Cgrouped { group, cgroup: cg.clone() }),
            None => Box::new(group),
        }
    }

    /// Keeps one prober for the running process when the unit asks for probes, none otherwise
    /// (a stopped service is never probed; a new process starts with a fresh count).
    fn sync_prober(&mut self) {
        let running =
            self.process.as_ref().map(|p| p.pid).filter(|_| self.machine.state == ServiceState::Running);
        let Some(pid) = running else {
            self.prober = None;
            // Starting: a readiness check and watchdog already run for the process.
            if self.machine.state != ServiceState::Starting {
                self.readiness = None;
                self.watchdog = None;
            }
            // Down for good (not between a stop and a start): its cgroup goes once empty.
            let down = matches!(
                self.machine.state,
                ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed
            );
            if down && self.cgroup.is_some() && self.cleanup.is_none() {
                self.cleanup = Some((tokio::time::Instant::now(), CLEANUP_LOOKS));
            }
            return;
        };
        if self.prober.as_ref().is_some_and(|(p, _)| *p == pid) {
            return;
        }
        self.prober = ProbePlan::of(&self.ctx.unit).map(|plan| (pid, Prober::new(plan)));
    }

    /// A probe ended: its result goes into the view (an event when health changes), and after
    /// `HealthCheckRetries` failures in a row the machine kills the service.
    async fn on_probe(&mut self, result: Result<(), String>) {
        let Some((_, prober)) = self.prober.as_mut() else { return };
        let before = prober.view.clone();
        let verdict = prober.take(result, crate::time::now_ms());
        let view = prober.view.clone();
        if view.health == gitvisor_protocol::Health::Healthy {
            if let Some(r) = self.readiness.as_mut() {
                if r.healthy().is_some() {
                    let what = r.describe().to_string();
                    self.ctx.logs.note(&self.ctx.name, format!("ready ({what})"));
                    self.after_ready_post().await;
                    if self.prober.is_none() {
                        return;
                    }
                }
            }
        }
        if view.health != before.health || view.error != before.error {
            self.ctx.bus.publish(EventKind::Health {
                service: self.ctx.name.clone(),
                health: view.health,
                error: view.error.clone(),
            });
        }
        match verdict {
            health::Verdict::Keep => self.publish_snapshot(),
            health::Verdict::Restart(reason) => {
                self.ctx.logs.note(&self.ctx.name, format!("{reason}: killing it"));
                self.apply(Input::KillFor(reason)).await;
            }
        }
    }

    /// The process became ready (dependents and `start --wait` go on), or was not ready in
    /// time (it is killed and its start fails).
    async fn on_readiness(&mut self, event: readiness::Event) {
        match event {
            readiness::Event::Ready => {
                let what = self.readiness.as_ref().map(|r| r.describe().to_string()).unwrap_or_default();
                self.ctx.logs.note(&self.ctx.name, format!("ready ({what})"));
                self.after_ready_post().await;
                self.publish_snapshot();
            }
            readiness::Event::TimedOut(reason) => {
                self.ctx.logs.note(&self.ctx.name, format!("{reason}: killing it"));
                self.apply(Input::KillFor(reason)).await;
            }
        }
    }

    fn publish_snapshot(&mut self) {
        let m = &self.machine;
        let pid = self.process.as_ref().map(|p| p.pid);
        let old = self.snapshot.borrow().clone();
        let since_ms = if old.state != m.state { crate::time::now_ms() } else { old.since_ms };
        if !m.state.is_active() {
            self.started_ms = None;
        }
        let snap = Snapshot {
            state: m.state,
            pid,
            restarts: m.restarts,
            // While it is killed for a cause, the cause is its error.
            error: m.error.clone().or_else(|| m.killed_for.clone()).or_else(|| self.hint.clone()),
            since_ms,
            started_ms: self.started_ms,
            last_exit: m.last_exit.clone(),
            last_exit_class: m.last_class,
            adopted: self.adopted && pid.is_some(),
            health: self.prober.as_ref().map(|(_, p)| p.view.clone()).unwrap_or_default(),
            ready: match m.state {
                ServiceState::Running => self.readiness.as_ref().is_some_and(|r| r.ready),
                ServiceState::Active => true,
                ServiceState::Exited => self.oneshot_done(),
                _ => false,
            },
            // What the process said of itself goes with it.
            status_text: self.status_text.clone().filter(|_| m.state.is_active()),
            want_up: self.want_up,
        };
        self.snapshot.send_replace(snap);
        self.persist();
    }

    fn persist(&self) {
        let p = self.process.as_ref();
        let record = ServiceRecord {
            pid: p.map(|p| p.pid),
            start_time: p.map(|p| p.start_time),
            state: self.machine.state,
            restarts: self.machine.restarts,
            started_ms: self.started_ms,
            last_exit: self.machine.last_exit.clone(),
            error: self.machine.error.clone(),
            want_up: Some(self.want_up),
            invocation: self.invocation.clone(),
        };
        self.ctx.store.set_service(&self.ctx.name, record);
    }

    fn outcome(&self, ok: bool) -> Outcome {
        let state = self.machine.state;
        Outcome {
            ok,
            error: if ok {
                None
            } else {
                self.machine.error.clone().or_else(|| Some(format!("service is {state}")))
            },
            state,
            pid: self.process.as_ref().map(|p| p.pid),
        }
    }

    /// A oneshot that ran its commands to a good end and exited (its start succeeded).
    fn oneshot_done(&self) -> bool {
        self.policy.oneshot
            && self.machine.state == ServiceState::Exited
            && self.machine.last_class == Some(ExitClass::Clean)
            && self.machine.error.is_none()
    }

    fn answer_waiters(&mut self) {
        let state = self.machine.state;
        let mut keep = Vec::new();
        for (want, tx) in std::mem::take(&mut self.waiters) {
            let settled = match want {
                Want::Up => matches!(
                    state,
                    ServiceState::Running
                        | ServiceState::Active
                        | ServiceState::Failed
                        | ServiceState::Exited
                        | ServiceState::Stopped
                ),
                Want::Down => {
                    matches!(state, ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed)
                }
            };
            if settled {
                let ok = match want {
                    Want::Up => {
                        matches!(state, ServiceState::Running | ServiceState::Active) || self.oneshot_done()
                    }
                    Want::Down => true,
                };
                let _ = tx.send(self.outcome(ok));
            } else {
                keep.push((want, tx));
            }
        }
        self.waiters = keep;
    }
}

/// The ports of `Ports=` and `ReadyCheck=tcp:` are free, or why not. A holder that is a
/// process of this very service (its previous start's, being killed) or one on its way out is
/// given a moment to end: its exit, seen through a pidfd, frees the port.
async fn check_ports(unit: &Unit, name: &str, home_id: &str) -> Result<(), String> {
    let mut ports = unit.ports.clone();
    if let ReadyCheck::Tcp(port) = unit.ready {
        let p = Port { port, proto: PortProto::Tcp };
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if ports.is_empty() {
        return Ok(());
    }
    let scan = || {
        let (ports, home_id) = (ports.clone(), home_id.to_string());
        async move {
            tokio::task::spawn_blocking(move || {
                let sockets = crate::ports::listening();
                let held =
                    ports.iter().filter_map(|p| Some((*p, crate::ports::holder(*p, &sockets, &home_id)?)));
                held.collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        }
    };
    let mut found = scan().await;
    // Its own processes, and exiting ones (whose environment can no longer be read to tell
    // whose they are): their end frees the port.
    let own: Vec<Watched> = found
        .iter()
        .flat_map(|(_, h)| h.pids.iter().map(move |p| (h, *p)))
        .filter(|(h, pid)| h.service.as_deref() == Some(name) || crate::ports::is_exiting(*pid))
        .map(|(_, pid)| pid)
        .filter_map(|pid| Watched::new(pid, process::start_time(pid)?, false).ok())
        .collect();
    if !own.is_empty() {
        let ended = async {
            for w in &own {
                w.exited().await;
            }
        };
        let _ = tokio::time::timeout(OWN_HOLDER_GRACE, ended).await;
        found = scan().await;
    }
    // An exiting process drops its descriptor table before the kernel closes the files in it:
    // for that instant its socket is listed with no process holding it. Look again briefly
    // before saying another user's process holds it (there is no exit to wait for: no pid).
    let mut looks = 0;
    while looks < UNSEEN_HOLDER_LOOKS && found.iter().any(|(_, h)| h.pids.is_empty()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        found = scan().await;
        looks += 1;
    }
    if found.is_empty() {
        return Ok(());
    }
    let said: Vec<String> = found.iter().map(|(p, h)| h.describe(*p, name)).collect();
    Err(said.join("; "))
}
