//! Payloads of the methods and notifications. Field names are part of the protocol
//! (`status --json` prints [`ServiceStatus`] as is).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub client: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub engine: String,
    pub home: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Backoff,
    Exited,
    Failed,
    /// A oneshot whose commands finished, active on (`RemainAfterExit=yes`; systemd's
    /// "active (exited)"): no process.
    Active,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Stopped => "stopped",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Stopping => "stopping",
            ServiceState::Backoff => "backoff",
            ServiceState::Exited => "exited",
            ServiceState::Failed => "failed",
            ServiceState::Active => "active",
        }
    }

    /// A process of the service may exist in this state.
    pub fn is_active(self) -> bool {
        matches!(self, ServiceState::Starting | ServiceState::Running | ServiceState::Stopping)
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

/// How a process ended. `code` and `signal` are both `None` when the engine could not see its
/// status: the process was adopted from an earlier engine (it is not this engine's child, and
/// only a parent learns a status), or it ended while no engine was running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub core_dumped: bool,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// What the process used, from the kernel (children of this engine only).
    #[serde(default)]
    pub usage: Option<ResourceUsage>,
    /// With an unknown status: the signal the engine sent the process before it ended (a
    /// stop). What it died of is still unknown; that it was asked to stop is not.
    #[serde(default)]
    pub sent_signal: Option<i32>,
    /// With an unknown status: it ended while no engine was running (the next one found it
    /// gone).
    #[serde(default)]
    pub unwatched: bool,
}

/// What an exit means, decided once by the supervisor's policy: `Restart=` and crash reports
/// both follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExitClass {
    /// Status 0, a failing status `ExecStart=-…` ignores, or one of systemd's clean signals
    /// (SIGHUP, SIGINT, SIGTERM, SIGPIPE).
    Clean,
    /// Any other status or signal.
    Failure,
    /// The engine stopped it (a stop, a restart, a shutdown), whatever its status.
    Stopped,
    /// Its status cannot be known: it was not the engine's child.
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// User plus system CPU time.
    pub cpu_ms: u64,
    /// Peak resident memory.
    pub max_rss_kb: u64,
}

impl ExitInfo {
    /// An end with this status at `at_ms` and nothing more known of it yet (no usage, no core,
    /// no signal the engine sent).
    pub fn ended(code: Option<i32>, signal: Option<i32>, at_ms: u64) -> ExitInfo {
        ExitInfo { code, signal, core_dumped: false, at_ms, usage: None, sent_signal: None, unwatched: false }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// One line: what is known of the end, and nothing invented.
    pub fn describe(&self) -> String {
        match (self.code, self.signal, self.sent_signal) {
            (Some(c), _, _) => format!("exited with status {c}"),
            (None, Some(s), _) => format!("killed by {}", signal_name(s)),
            (None, None, Some(s)) => format!("stopped with {}", signal_name(s)),
            (None, None, None) if self.unwatched => {
                "ended while no engine was running; its exit status cannot be known".into()
            }
            (None, None, None) => "ended while adopted; its exit status cannot be known".into(),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (5, "SIGTRAP"),
        (6, "SIGABRT"),
        (7, "SIGBUS"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (10, "SIGUSR1"),
        (11, "SIGSEGV"),
        (12, "SIGUSR2"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == sig)
        .map(|(_, s)| (*s).to_string())
        .unwrap_or_else(|| format!("signal {sig}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub description: Option<String>,
    pub state: ServiceState,
    pub pid: Option<u32>,
    pub restarts: u32,
    /// What the health probes found: `unknown` without `HealthCheckURL=`, while not running,
    /// and before the first probe of a process.
    pub health: Health,
    /// Unix time in milliseconds the last probe ended.
    #[serde(default)]
    pub health_checked_ms: Option<u64>,
    /// The last probe's failure, while failures are counted ("2 of 3 probes failed: HTTP 500").
    #[serde(default)]
    pub health_error: Option<String>,
    pub ready: bool,
    pub enabled: bool,
    /// Commit the unit came from; `None` while units are read from the working tree.
    pub commit: Option<String>,
    /// Why the service is failed or not started, or the unit's validation errors.
    pub error: Option<String>,
    /// Unix time in milliseconds of the last state change.
    pub since_ms: u64,
    /// Unix time in milliseconds the current process started.
    pub started_ms: Option<u64>,
    pub last_exit: Option<ExitInfo>,
    /// How the supervisor judged the last exit (a stop and a clean end are not errors).
    #[serde(default)]
    pub last_exit_class: Option<ExitClass>,
    /// The operation holding the service's lock, if any (`stop`, `restart`...).
    pub busy: Option<String>,
    /// The process was adopted from an earlier engine.
    pub adopted: bool,
    /// CPU time the service's processes have used (user + system, with the children they
    /// reaped), while it runs.
    #[serde(default)]
    pub cpu_ms: Option<u64>,
    /// CPU use since the previous sample, in percent of one core (none at the first sample).
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// Resident memory of the service's processes in KiB, while it runs.
    #[serde(default)]
    pub memory_kb: Option<u64>,
    /// A fleet singleton: where it runs (`here`, `on node-b`) or why it does not
    /// (`waiting for its lease`, `Redis unreachable: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    /// Why the service has no workspace capture (no `WorkingDirectory=`, or `[Capture]
    /// Enabled=no`): a manual capture is refused with this reason. `None`: it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_off: Option<String>,
    /// What the unit asks for that this engine does not enforce, one sentence each naming the
    /// key (`MemoryMax= is not enforced: …`).
    #[serde(default)]
    pub unenforced: Vec<String>,
    /// For a unit with resource limits: `enforced in cgroup v1 /sys/fs/cgroup/…`, or `not
    /// enforced: <why>`.
    #[serde(default)]
    pub limits: Option<String>,
    /// `Type=` of the unit (`simple`, `oneshot`, `notify`…).
    #[serde(default)]
    pub service_type: String,
    /// What the service last said of itself (`STATUS=` over `$NOTIFY_SOCKET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// `[Watch]`: how the service's files are watched and what last restarted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchStatus>,
    /// The TCP ports its processes listen on and the UDP ports they have bound, while it
    /// runs (its whole tree), sampled by the call; sorted by port. Absent from older engines.
    #[serde(default)]
    pub ports: Vec<ListeningPort>,
}

/// A watched service's watch (`[Watch]`), in status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// `inotify`, `polling` (inotify could not be had), `off` (nothing is watched: `note` says
    /// why; also while the service is stopped) or `starting`.
    pub mode: String,
    /// Directories watched.
    pub directories: usize,
    /// Why it polls, or why nothing is watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The change that last restarted the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<FileChange>,
    /// The service crashed after that change: "crashed 0.3 s after a change to src/app.ts".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crashed_after_change: Option<String>,
}

/// A burst of file changes that restarted a watched service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The first path changed, relative to the working directory when under it.
    pub path: String,
    /// Other paths changed in the same burst.
    pub more: usize,
    /// Unix time in milliseconds the restart was asked for.
    pub at_ms: u64,
}

impl FileChange {
    /// "src/app.ts", or "src/app.ts and 3 more files".
    pub fn describe(&self) -> String {
        match self.more {
            0 => self.path.clone(),
            1 => format!("{} and 1 more file", self.path),
            n => format!("{} and {n} more files", self.path),
        }
    }
}

/// A port a service's process listens on (TCP) or has bound (UDP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListeningPort {
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The local address: `0.0.0.0`, `::` (every address), `127.0.0.1`…
    pub address: String,
}

impl ListeningPort {
    /// `8080` for TCP, `5353/udp`: as `Ports=` writes them.
    pub fn label(&self) -> String {
        if self.proto == "tcp" {
            self.port.to_string()
        } else {
            format!("{}/{}", self.port, self.proto)
        }
    }
}

/// One sample of a service's CPU and memory (`metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub at_ms: u64,
    /// Percent of one core since the previous sample.
    pub cpu_percent: f64,
    pub memory_kb: u64,
}

/// A service's recent samples, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMetrics {
    pub name: String,
    pub samples: Vec<MetricSample>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsReply {
    pub services: Vec<ServiceMetrics>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub services: Vec<ServiceStatus>,
    /// Unit files of the applied commit that could not be loaded: `file:line: message` lines.
    pub invalid: Vec<String>,
    /// Problems with the services set as a whole (dependency cycles...).
    pub problems: Vec<String>,
    /// The commit that runs (`None` before the first one).
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Uncommitted edits to unit files: shown, never run.
    pub pending: Vec<Pending>,
    /// Why the services repository cannot be followed right now (merge in progress, detached
    /// HEAD...); the last applied commit keeps running.
    pub repo_problem: Option<String>,
}

/// An uncommitted change to a unit file in the services repository's working tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub file: String,
    /// `modified`, `added`, `deleted` or `renamed`.
    pub change: String,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub at_ms: u64,
    pub old: Option<String>,
    pub new: Option<String>,
    /// What was done, in order: `stopped web (removed)`, `restarted api (changed)`...
    pub actions: Vec<String>,
    /// Invalid units kept at their previous version, operations that failed.
    pub errors: Vec<String>,
    /// The repository could not be followed; nothing was applied.
    pub problem: Option<String>,
    /// The commit is now the applied one.
    pub applied: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: String,
    pub summary: String,
    pub author: String,
    /// Unix seconds.
    pub time: i64,
    /// Unit files this commit added, changed or removed against its first parent.
    pub units: Vec<String>,
    /// This commit's content runs or ran: it is the applied commit or one of its ancestors.
    pub applied: bool,
    /// This is the commit that runs (the applied one).
    #[serde(default)]
    pub runs: bool,
}

impl CommitInfo {
    /// How a face shows it: `running`, `applied` (before the running commit) or `not applied`.
    pub fn standing(&self) -> &'static str {
        match (self.runs, self.applied) {
            (true, _) => "running",
            (false, true) => "applied",
            (false, false) => "not applied",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryReply {
    pub commits: Vec<CommitInfo>,
    /// The latest syncs, newest first.
    pub syncs: Vec<SyncReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackReply {
    /// The new commit whose tree is the target's.
    pub commit: String,
    pub sync: SyncReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpOutcome {
    pub name: String,
    pub ok: bool,
    pub error: Option<String>,
    /// Why it failed, for a program: `in_progress`, `dependency_failed`, `service_failed`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::ErrorCode>,
    pub state: Option<ServiceState>,
    pub pid: Option<u32>,
    /// For a service the operation reached though it was not named: why
    /// (`started because web requires it`, `stopped because it requires redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpReply {
    pub results: Vec<OpOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix time in microseconds when the line was read.
    pub at_us: u64,
    /// `out` or `err`.
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsReply {
    /// Oldest first; lines of several services interleaved by time.
    pub lines: Vec<ServiceLogLine>,
}

/// A line of a named service's output: in a `logs` reply, and as the `log` notification of a
/// follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLogLine {
    pub name: String,
    #[serde(flatten)]
    pub line: LogLine,
}

/// Something that happened in the engine, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    State {
        service: String,
        from: ServiceState,
        to: ServiceState,
        pid: Option<u32>,
        reason: Option<String>,
    },
    Exited {
        service: String,
        pid: u32,
        exit: ExitInfo,
        /// The service was being stopped on request (`class` is `stopped`).
        expected: bool,
        #[serde(default)]
        class: ExitClass,
        /// The exit gets a crash report (the policy's verdict).
        #[serde(default)]
        report: bool,
        /// Unix time in milliseconds the process started (kept across adoption), if known.
        #[serde(default)]
        started_ms: Option<u64>,
        /// Automatic restarts of the service before this exit.
        #[serde(default)]
        restarts: u32,
        /// Why the engine ended the process, when that is the cause ("unhealthy: 3 probes
        /// failed: connection refused").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The kernel's OOM killer ended it (the service's cgroup counted the kill).
        #[serde(default)]
        oom: bool,
        /// The process's own peak memory in KiB, when known: its cgroup's peak, or the kernel's
        /// figure when that is surely its own (see `supervisor::task`).
        #[serde(default)]
        peak_memory_kb: Option<u64>,
    },
    /// A service's health changed (its probes' verdict, or the failure being counted).
    Health {
        service: String,
        health: Health,
        error: Option<String>,
    },
    Restarting {
        service: String,
        attempt: u32,
        delay_ms: u64,
    },
    Adopted {
        service: String,
        pid: u32,
    },
    /// Files a watched service watches changed: it restarts (`[Watch]`).
    FilesChanged {
        service: String,
        change: FileChange,
    },
    SyncApplied {
        report: SyncReport,
    },
    CrashReport {
        service: String,
        id: String,
    },
    /// A git maintenance run finished.
    Maintenance {
        run: crate::MaintenanceRun,
    },
    EngineStarted {
        pid: u32,
    },
    EngineStopping,
    /// The subscriber's queue was full and it missed this many events.
    Lagged {
        missed: u64,
    },
}

impl EventKind {
    pub fn service(&self) -> Option<&str> {
        match self {
            EventKind::State { service, .. }
            | EventKind::Exited { service, .. }
            | EventKind::Restarting { service, .. }
            | EventKind::Health { service, .. }
            | EventKind::Adopted { service, .. }
            | EventKind::FilesChanged { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// A crash report (or manual capture) on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashSummary {
    pub id: String,
    /// `crash` or `capture`.
    pub kind: String,
    pub service: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub reason: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashListReply {
    pub reports: Vec<CrashSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashShowReply {
    pub id: String,
    /// report.json as written.
    pub report: serde_json::Value,
    pub files: Vec<ArchiveFile>,
}

/// What `enable` or `disable` did: the commit it made (none when every unit already was as
/// asked), the units it changed, and the sync that applied it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnableReply {
    pub commit: Option<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub sync: Option<SyncReport>,
}

/// What `import` wrote (or, in a dry run, would write): the units, what did not translate, and
/// the commit and sync that applied them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportReply {
    pub units: Vec<ImportedUnit>,
    /// Every key of the sources that was not translated as written, in source order.
    pub notes: Vec<ImportNote>,
    /// The commit message: `import: web, worker from /srv/app/Procfile`.
    pub message: String,
    /// The commit made; none in a dry run.
    pub commit: Option<String>,
    pub sync: Option<SyncReport>,
}

/// One unit file an import writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedUnit {
    /// `web.service`.
    pub file: String,
    /// The process's name in its source.
    pub process: String,
    pub source: String,
    pub enabled: bool,
    pub text: String,
}

/// A key of a source that did not translate as written: `file:line: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportNote {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ImportNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}: {}", self.file, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashRmReply {
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureReply {
    pub id: String,
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>) -> ExitInfo {
        ExitInfo::ended(code, signal, 0)
    }

    #[test]
    fn an_exit_says_what_is_known_and_invents_nothing() {
        assert_eq!(exit(Some(3), None).describe(), "exited with status 3");
        assert_eq!(exit(None, Some(11)).describe(), "killed by SIGSEGV");
        let stopped = ExitInfo { sent_signal: Some(15), ..exit(None, None) };
        assert_eq!(stopped.describe(), "stopped with SIGTERM");
        assert_eq!(exit(None, None).describe(), "ended while adopted; its exit status cannot be known");
        let unwatched = ExitInfo { unwatched: true, ..exit(None, None) };
        assert_eq!(
            unwatched.describe(),
            "ended while no engine was running; its exit status cannot be known"
        );
        // A status the engine saw wins over the signal it sent.
        let seen = ExitInfo { sent_signal: Some(15), ..exit(None, Some(9)) };
        assert_eq!(seen.describe(), "killed by SIGKILL");
    }

    #[test]
    fn an_exit_recorded_by_an_older_engine_still_reads() {
        let old = r#"{"code":null,"signal":null,"core_dumped":false,"at_ms":5,"usage":null}"#;
        let e: ExitInfo = serde_json::from_str(old).unwrap();
        assert_eq!((e.sent_signal, e.unwatched), (None, false));
    }
}

/// A unit file as an editor needs it (`unit.get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitText {
    /// The file name: `web.service`.
    pub file: String,
    /// The text as committed on the branch; `None` for a unit not committed yet.
    pub committed: Option<String>,
    /// The working tree's text when it differs from the commit (uncommitted edits: they do not
    /// run); `None` when it is as committed.
    pub pending: Option<String>,
    /// The text of an edit kept as a draft, if any.
    pub draft: Option<String>,
    /// Where to start editing: the draft, else the pending text, else the committed one, else
    /// a skeleton for a new unit.
    pub text: String,
}

/// What `unit.validate` found, as `gitvisor validate` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCheck {
    pub diagnostics: Vec<UnitDiagnostic>,
    pub errors: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDiagnostic {
    /// 1-based; 0 for the whole file.
    pub line: usize,
    /// `error` or `warning`.
    pub severity: String,
    pub key: Option<String>,
    pub message: String,
    /// The whole line as `validate` prints it: `web.service:3: ExecStart: …`.
    pub text: String,
}

/// What `unit.commit` or `unit.delete` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitCommitReply {
    pub file: String,
    /// The commit made; `None` when the text was already committed as it is.
    pub commit: Option<String>,
    pub message: String,
    /// The sync that applied it.
    pub sync: Option<SyncReport>,
}

/// The dependency graph (`graph`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphReply {
    pub units: Vec<GraphUnit>,
    /// systemd-analyze's critical chain of the last start: from the first unit to the one that
    /// became active last, each the dependency of the next that became active last.
    pub critical_chain: Vec<ChainLink>,
    /// Units on dependency cycles (never started), one list per cycle.
    pub cycles: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphUnit {
    pub name: String,
    pub state: ServiceState,
    /// The units of the set it starts after (any ordering dependency).
    pub starts_after: Vec<String>,
    /// Those of them it requires (`Requires=`, `BindsTo=`): their failure fails it.
    pub requires: Vec<String>,
    /// Unix ms its current process started (became active), while it runs.
    pub started_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub name: String,
    /// Unix ms it became active.
    pub at_ms: u64,
    /// Since the first unit of the chain became active.
    pub since_first_ms: u64,
}

/// One thing in a service's timeline (`timeline`): several of the same kind in a row, closer
/// than a second to each other (a crash loop), are one entry with their count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Unix ms of the first occurrence.
    pub at_ms: u64,
    /// Unix ms of the last one (`at_ms` when `count` is 1).
    pub last_ms: u64,
    /// `start`, `exit` (clean), `crash`, `oom`, `health-kill`, `watchdog`, `stop`, `change`
    /// (restarted after a file change), or `sync` (in `syncs`).
    pub kind: String,
    /// What the last occurrence was: `exited with status 3`, `src/app.ts`, a commit.
    pub detail: Option<String>,
    pub count: u32,
    /// The crash report of this crash, if one was written.
    pub report: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTimeline {
    pub name: String,
    pub entries: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineReply {
    pub services: Vec<ServiceTimeline>,
    /// Syncs that applied a new commit.
    pub syncs: Vec<TimelineEntry>,
}
