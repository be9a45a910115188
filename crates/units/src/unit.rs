//! The typed [`Unit`]: every setting of a service with its default. How a unit is built from
//! a file's entries is in `build.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::name::UnitName;

/// A service as gitvisor runs it. Defaults are those of the spec (section 2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unit {
    /// The instance name for instances (`web@8080`), the template name (`web@`) for templates.
    pub name: UnitName,
    pub description: Option<String>,
    /// Unit names without `.service`. Non-service targets (`network.target`) are dropped.
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    pub before: Vec<String>,
    /// `BindsTo=`: as `Requires=`, and this unit stops whenever one of them stops, for any
    /// reason (a crash, an exit).
    pub binds_to: Vec<String>,
    /// `PartOf=`: stopping or restarting one of them stops or restarts this one; nothing else.
    pub part_of: Vec<String>,
    /// `Requisite=`: these must already be active when this one starts (never started for it).
    pub requisite: Vec<String>,
    /// `OnFailure=`: started when this unit fails.
    pub on_failure: Vec<String>,
    /// Zero disables the start limit.
    pub start_limit_interval: Duration,
    pub start_limit_burst: u32,
    /// `Type=`: when the service counts as started, and what its end means.
    pub service_type: ServiceType,
    pub exec_start: ExecCommand,
    /// A oneshot's further `ExecStart=` commands, run in order after `exec_start`.
    pub exec_start_rest: Vec<ExecCommand>,
    /// `ExecStartPost=`: run in order once the service has started (and is ready); one that
    /// fails fails the start.
    pub exec_start_post: Vec<ExecCommand>,
    /// `ExecStop=` commands, run in order to stop the service gracefully (with `$MAINPID`),
    /// before the stop signal; the whole within `TimeoutStopSec=`.
    pub exec_stop: Vec<ExecCommand>,
    /// `ExecStopPost=`: run in order after the service stopped, crashed or failed to start.
    pub exec_stop_post: Vec<ExecCommand>,
    /// `RemainAfterExit=`: a oneshot whose commands finished stays active.
    pub remain_after_exit: bool,
    /// `PIDFile=` of a `Type=forking` service: where its daemon writes its pid.
    pub pid_file: Option<PathBuf>,
    /// `WatchdogSec=`: a `Type=notify` (or any service sending `WATCHDOG=1`) must ping at least
    /// this often; none is off.
    pub watchdog: Option<Duration>,
    /// `WatchdogSignal=`: what a missed watchdog is killed with (SIGABRT, for a core dump).
    pub watchdog_signal: i32,
    /// `NotifyAccess=`: who may send notifications.
    pub notify_access: NotifyAccess,
    /// `ExecStartPre=` lines, run in order before each start of the main process.
    pub exec_start_pre: Vec<ExecCommand>,
    /// `ExecReload=` lines, run in order by `gitvisor reload` (none: SIGHUP to the main process).
    pub exec_reload: Vec<ExecCommand>,
    /// Absolute (`~/` already expanded). None means the home directory.
    pub working_directory: Option<PathBuf>,
    /// In assignment order; a variable assigned twice keeps its place and its last value.
    pub environment: Vec<(String, String)>,
    pub environment_files: Vec<EnvironmentFile>,
    /// `PassEnvironment=`: variables taken from the engine's environment (if set there), below
    /// `Environment=` and `EnvironmentFile=`.
    pub pass_environment: Vec<String>,
    /// `UnsetEnvironment=`: `NAME` (any value) or `NAME=value` (that pair), removed last.
    pub unset_environment: Vec<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    pub restart_steps: u32,
    pub restart_max_delay: Option<Duration>,
    /// [`Duration::MAX`] for `infinity` (or 0, as in systemd): never SIGKILL.
    pub timeout_stop: Duration,
    /// How long the service may take to become ready (`ReadyCheck=`) before it is killed and
    /// its start fails; [`Duration::MAX`] for `infinity` or 0.
    pub timeout_start: Duration,
    pub kill_signal: i32,
    /// More clean ends besides status 0 and SIGHUP/SIGINT/SIGTERM/SIGPIPE.
    pub success_exit_status: crate::values::ExitStatusSet,
    /// Ends never restarted, whatever `Restart=` says.
    pub restart_prevent_exit_status: crate::values::ExitStatusSet,
    /// Ends always restarted, whatever `Restart=` says (a requested stop aside).
    pub restart_force_exit_status: crate::values::ExitStatusSet,
    pub memory_max: Option<u64>,
    /// Percent of one CPU.
    pub cpu_quota: Option<u32>,
    pub tasks_max: Option<u64>,
    pub private_pids: bool,
    pub health: HealthCheck,
    pub ready: ReadyCheck,
    /// `Ports=`: ports the service listens on; one already held makes a start fail at once,
    /// naming the holder.
    pub ports: Vec<Port>,
    pub singleton: bool,
    /// `Condition…=` and `Assert…=` checks made before each start a user or the engine asks
    /// for, in file order.
    pub conditions: Vec<Condition>,
    pub capture: CaptureSettings,
    /// `[Watch]`: restart the service when files under its working directory change.
    pub watch: Option<WatchSettings>,
    pub wanted_by: Vec<String>,
    pub default_instance: Option<String>,
}

/// `Type=` (systemd.service(5)): when a start is done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// Started once the process exists (gitvisor knows whether its exec succeeded, and says so).
    #[default]
    Simple,
    /// Started once the program was executed; an exec failure is a start failure.
    Exec,
    /// Started once every `ExecStart=` command ran to a successful end.
    Oneshot,
    /// Started once the first process exited successfully, leaving its daemon (the main process).
    Forking,
    /// Started once the process sends `READY=1` to `$NOTIFY_SOCKET`.
    Notify,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Simple => "simple",
            ServiceType::Exec => "exec",
            ServiceType::Oneshot => "oneshot",
            ServiceType::Forking => "forking",
            ServiceType::Notify => "notify",
        }
    }
}

/// `NotifyAccess=`: which processes' messages on `$NOTIFY_SOCKET` are taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyAccess {
    /// None: no socket is given (unless `Type=notify` or `WatchdogSec=` asks for `main`).
    #[default]
    None,
    /// The main process only.
    Main,
    /// The main process and the commands the engine runs for the service (`ExecStartPost=`…).
    Exec,
    /// Any process of the service (its process group or cgroup).
    All,
}

/// A command: `argv[0]` is an absolute path or a bare name to look up in PATH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecCommand {
    pub argv: Vec<String>,
    /// The `-` prefix: a failing exit status counts as success.
    pub ignore_failure: bool,
    /// The `@` prefix: the second word is what the program sees as `argv[0]` (kept here as
    /// `arg0`, not in `argv`).
    pub arg0: Option<String>,
    /// The `+` or `!` prefix: run with the engine's own credentials, not `User=`/`Group=`.
    pub privileged: bool,
    /// Without the `:` prefix, `${VAR}`, `$VAR` (a word of its own) and `$$` are substituted
    /// from the service's environment when it starts (systemd.service(5), "Command lines").
    pub substitute: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentFile {
    pub path: PathBuf,
    /// The `-` prefix: a missing file is not an error.
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    /// Only after a missed watchdog (`WatchdogSec=`).
    OnWatchdog,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub url: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failed probes before a restart.
    pub retries: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            url: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyCheck {
    /// Ready once started.
    #[default]
    None,
    /// Ready at the first healthy probe.
    Health,
    /// Ready once the port accepts a connection.
    Tcp(u16),
    /// Ready when a line of output matches this regular expression (not compiled here).
    Log(String),
}

/// A port a service listens on (`Ports=8080 5353/udp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Port {
    pub port: u16,
    pub proto: PortProto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProto {
    Tcp,
    Udp,
}

impl PortProto {
    pub fn as_str(self) -> &'static str {
        match self {
            PortProto::Tcp => "tcp",
            PortProto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Port {
    /// `8080` for TCP, `5353/udp`: as written in `Ports=`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.proto {
            PortProto::Tcp => write!(f, "{}", self.port),
            PortProto::Udp => write!(f, "{}/udp", self.port),
        }
    }
}

impl std::str::FromStr for Port {
    type Err = String;

    /// `8080`, `8080/tcp`, `5353/udp`.
    fn from_str(s: &str) -> Result<Port, String> {
        let (number, proto) = match s.split_once('/') {
            None => (s, PortProto::Tcp),
            Some((n, "tcp")) => (n, PortProto::Tcp),
            Some((n, "udp")) => (n, PortProto::Udp),
            Some((_, other)) => {
                return Err(format!("invalid protocol {other:?} in {s:?} (expected tcp or udp)"));
            }
        };
        match number.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Port { port, proto }),
            _ => Err(format!("invalid port {number:?} (expected 1 to 65535)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureSettings {
    /// None: enabled when WorkingDirectory= is set.
    pub enabled: Option<bool>,
    pub max_file_size: u64,
    pub max_total_size: u64,
    /// Globs to skip, in addition to `.git/`.
    pub exclude: Vec<String>,
}

/// `[Watch]`: which file changes restart the service (docs/units.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchSettings {
    /// `Paths=`: globs (`src/**/*.ts`) or plain paths (a directory means everything under it),
    /// relative to `WorkingDirectory=` or absolute. Empty: the whole working directory.
    pub paths: Vec<String>,
    /// `Exclude=`: patterns in `.gitignore` syntax, relative to the working directory.
    pub exclude: Vec<String>,
    /// `IgnoreGitignore=yes`: `.gitignore` files in the watched tree are not honoured.
    pub ignore_gitignore: bool,
    /// `DebounceSec=`: a burst of changes restarts once this long after its last change.
    pub debounce: Duration,
    /// `RestartDependents=yes`: the units that require this one restart with it.
    pub restart_dependents: bool,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            paths: Vec::new(),
            exclude: Vec::new(),
            ignore_gitignore: false,
            debounce: Duration::from_millis(200),
            restart_dependents: false,
        }
    }
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings {
            enabled: None,
            max_file_size: 1 << 20,
            max_total_size: 64 << 20,
            exclude: Vec::new(),
        }
    }
}

pub(crate) const DEFAULT_START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_START_LIMIT_BURST: u32 = 5;
pub(crate) const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);
pub(crate) const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(10);
/// systemd's DefaultTimeoutStartSec=.
pub(crate) const DEFAULT_TIMEOUT_START: Duration = Duration::from_secs(90);

impl Unit {
    /// A unit with every setting at its default.
    pub fn new(name: UnitName, exec_start: ExecCommand) -> Self {
        Unit {
            name,
            description: None,
            requires: Vec::new(),
            wants: Vec::new(),
            after: Vec::new(),
            before: Vec::new(),
            binds_to: Vec::new(),
            part_of: Vec::new(),
            requisite: Vec::new(),
            on_failure: Vec::new(),
            start_limit_interval: DEFAULT_START_LIMIT_INTERVAL,
            start_limit_burst: DEFAULT_START_LIMIT_BURST,
            service_type: ServiceType::Simple,
            exec_start,
            exec_start_rest: Vec::new(),
            exec_start_post: Vec::new(),
            exec_stop: Vec::new(),
            exec_stop_post: Vec::new(),
            remain_after_exit: false,
            pid_file: None,
            watchdog: None,
            watchdog_signal: libc::SIGABRT,
            notify_access: NotifyAccess::None,
            exec_reload: Vec::new(),
            exec_start_pre: Vec::new(),
            working_directory: None,
            environment: Vec::new(),
            environment_files: Vec::new(),
            pass_environment: Vec::new(),
            unset_environment: Vec::new(),
            user: None,
            group: None,
            restart: RestartPolicy::No,
            restart_sec: DEFAULT_RESTART_SEC,
            restart_steps: 0,
            restart_max_delay: None,
            timeout_stop: DEFAULT_TIMEOUT_STOP,
            timeout_start: DEFAULT_TIMEOUT_START,
            kill_signal: libc::SIGTERM,
            success_exit_status: Default::default(),
            restart_prevent_exit_status: Default::default(),
            restart_force_exit_status: Default::default(),
            memory_max: None,
            cpu_quota: None,
            tasks_max: None,
            private_pids: false,
            health: HealthCheck::default(),
            ready: ReadyCheck::None,
            ports: Vec::new(),
            singleton: false,
            conditions: Vec::new(),
            capture: CaptureSettings::default(),
            watch: None,
            wanted_by: Vec::new(),
            default_instance: None,
        }
    }

    /// Enabled units start with the engine: `[Install] WantedBy=` names anything.
    pub fn enabled(&self) -> bool {
        !self.wanted_by.is_empty()
    }
}

/// What a `Condition…=`/`Assert…=` checks (systemd.unit(5)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ConditionKind {
    PathExists,
    PathIsDirectory,
    FileNotEmpty,
    DirectoryNotEmpty,
    /// `NAME` set, or `NAME=VALUE`, in the engine's environment.
    Environment,
}

/// One check: unmet, a condition skips the start (the service stays down, and says why); an
/// assertion fails it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: ConditionKind,
    /// `Assert…=` rather than `Condition…=`.
    pub assert: bool,
    /// `|`: a triggering condition (at least one of them must hold).
    pub trigger: bool,
    /// `!`: holds when the check fails.
    pub negate: bool,
    pub value: String,
    /// The key as written, for messages (`ConditionPathExists`).
    pub key: String,
}
