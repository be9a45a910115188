//! The typed [`Unit`] and how it is built from syntax entries.
//!
//! Every entry is applied in file order, so later assignments win and an empty assignment resets
//! a list (or a setting to its default). Every problem becomes a [`Diagnostic`]; building goes on
//! after an error so one pass reports all of them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::name::{UnitName, SUFFIX};
use crate::specifiers::{self, SpecifierContext};
use crate::syntax::Entry;
use crate::systemd_keys;
use crate::values::{
    parse_bool, parse_percent, parse_signal, parse_size, parse_timespan, split_command_line, ValueError,
};

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
    /// Zero disables the start limit.
    pub start_limit_interval: Duration,
    pub start_limit_burst: u32,
    pub exec_start: ExecCommand,
    pub exec_stop: Option<ExecCommand>,
    /// Absolute (`~/` already expanded). None means the home directory.
    pub working_directory: Option<PathBuf>,
    /// In assignment order; a variable assigned twice keeps its place and its last value.
    pub environment: Vec<(String, String)>,
    pub environment_files: Vec<EnvironmentFile>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    pub restart_steps: u32,
    pub restart_max_delay: Option<Duration>,
    /// [`Duration::MAX`] for `infinity` (or 0, as in systemd): never SIGKILL.
    pub timeout_stop: Duration,
    pub kill_signal: i32,
    pub memory_max: Option<u64>,
    /// Percent of one CPU.
    pub cpu_quota: Option<u32>,
    pub tasks_max: Option<u64>,
    pub private_pids: bool,
    pub health: HealthCheck,
    pub ready: ReadyCheck,
    pub singleton: bool,
    pub capture: CaptureSettings,
    pub wanted_by: Vec<String>,
    pub default_instance: Option<String>,
}

/// A command: `argv[0]` is an absolute path or a bare name to look up in PATH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecCommand {
    pub argv: Vec<String>,
    /// The `-` prefix: a failing exit status counts as success.
    pub ignore_failure: bool,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureSettings {
    /// None: enabled when WorkingDirectory= is set.
    pub enabled: Option<bool>,
    pub max_file_size: u64,
    pub max_total_size: u64,
    /// Globs to skip, in addition to `.git/`.
    pub exclude: Vec<String>,
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

const DEFAULT_START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_START_LIMIT_BURST: u32 = 5;
const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);
const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(10);

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
            start_limit_interval: DEFAULT_START_LIMIT_INTERVAL,
            start_limit_burst: DEFAULT_START_LIMIT_BURST,
            exec_start,
            exec_stop: None,
            working_directory: None,
            environment: Vec::new(),
            environment_files: Vec::new(),
            user: None,
            group: None,
            restart: RestartPolicy::No,
            restart_sec: DEFAULT_RESTART_SEC,
            restart_steps: 0,
            restart_max_delay: None,
            timeout_stop: DEFAULT_TIMEOUT_STOP,
            kill_signal: libc::SIGTERM,
            memory_max: None,
            cpu_quota: None,
            tasks_max: None,
            private_pids: false,
            health: HealthCheck::default(),
            ready: ReadyCheck::None,
            singleton: false,
            capture: CaptureSettings::default(),
            wanted_by: Vec::new(),
            default_instance: None,
        }
    }

    /// Enabled units start with the engine: `[Install] WantedBy=` names anything.
    pub fn enabled(&self) -> bool {
        !self.wanted_by.is_empty()
    }
}

/// Unit types other than services: gitvisor only orders services, so these are dropped.
const OTHER_UNIT_TYPES: &[&str] = &[
    ".target",
    ".socket",
    ".mount",
    ".automount",
    ".swap",
    ".path",
    ".timer",
    ".slice",
    ".scope",
    ".device",
];

/// Where an `ExecStart=` stands while the file is read.
enum ExecStart {
    Unset,
    Invalid,
    Set(ExecCommand),
}

/// Builds a [`Unit`] from entries, collecting diagnostics.
pub(crate) struct Builder<'a> {
    file: &'a str,
    ctx: &'a SpecifierContext,
    unit: Unit,
    exec_start: ExecStart,
    ready_line: usize,
    default_instance_line: usize,
    warned_sections: BTreeSet<String>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(file: &'a str, name: UnitName, ctx: &'a SpecifierContext) -> Self {
        Builder {
            file,
            ctx,
            unit: Unit::new(name, ExecCommand::default()),
            exec_start: ExecStart::Unset,
            ready_line: 0,
            default_instance_line: 0,
            warned_sections: BTreeSet::new(),
            diagnostics: Vec::new(),
        }
    }

    fn error(&mut self, e: &Entry, message: impl Into<String>) {
        let d = Diagnostic::error(self.file, e.line, Some(&e.key), message);
        self.diagnostics.push(d);
    }

    fn warn(&mut self, e: &Entry, message: impl Into<String>) {
        let d = Diagnostic::warning(self.file, e.line, Some(&e.key), message);
        self.diagnostics.push(d);
    }

    /// Parses a non-empty value; an empty one gives `default` (systemd's reset).
    fn parsed<T>(
        &mut self,
        e: &Entry,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        if e.value.is_empty() {
            return Some(default);
        }
        parse(&e.value).map_err(|err| self.error(e, err.message)).ok()
    }

    fn expand(&mut self, e: &Entry, text: &str) -> Option<String> {
        specifiers::expand(text, &self.unit.name, self.ctx).map_err(|err| self.error(e, err.message)).ok()
    }

    /// Splits into words, then expands specifiers in each (as systemd does).
    fn words(&mut self, e: &Entry, text: &str) -> Option<Vec<String>> {
        let words = split_command_line(text).map_err(|err| self.error(e, err.message)).ok()?;
        words.iter().map(|w| self.expand(e, w)).collect()
    }

    /// An expanded string; empty means unset.
    fn string(&mut self, e: &Entry) -> Option<Option<String>> {
        let value = self.expand(e, &e.value.clone())?;
        Some((!value.is_empty()).then_some(value))
    }

    fn path(&mut self, e: &Entry, text: &str) -> Option<PathBuf> {
        let text = self.expand(e, text)?;
        if text == "~" {
            return Some(self.ctx.home.clone());
        }
        if let Some(rest) = text.strip_prefix("~/") {
            return Some(self.ctx.home.join(rest));
        }
        if text.starts_with('/') {
            return Some(PathBuf::from(text));
        }
        self.error(e, format!("{text:?} is not an absolute path (use /… or ~/…)"));
        None
    }

    /// Applies one entry.
    pub(crate) fn apply(&mut self, e: &Entry) {
        if e.section.starts_with("X-") || e.key.starts_with("X-") {
            return; // systemd's extension namespace: ignored silently
        }
        match e.section.as_str() {
            "Unit" => self.unit_key(e),
            "Service" => self.service_key(e),
            "Install" => self.install_key(e),
            "Capture" => self.capture_key(e),
            other => {
                if self.warned_sections.insert(other.to_string()) {
                    let message = format!("unknown section [{other}], ignored");
                    let d = Diagnostic::warning(self.file, e.section_line, None, message);
                    self.diagnostics.push(d);
                }
            }
        }
    }

    fn unknown_key(&mut self, e: &Entry) {
        let message = if systemd_keys::is_known(&e.section, &e.key) {
            format!("{}= is not supported by gitvisor, ignored", e.key)
        } else {
            format!("unknown key {}= in [{}], ignored", e.key, e.section)
        };
        self.warn(e, message);
    }

    fn unit_key(&mut self, e: &Entry) {
        match e.key.as_str() {
            "Description" => {
                if let Some(v) = self.string(e) {
                    self.unit.description = v;
                }
            }
            "Requires" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.requires, e, v);
            }
            "Wants" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.wants, e, v);
            }
            "After" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.after, e, v);
            }
            "Before" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.before, e, v);
            }
            "StartLimitIntervalSec" | "StartLimitInterval" => self.start_limit_interval(e),
            "StartLimitBurst" => self.start_limit_burst(e),
            _ => self.unknown_key(e),
        }
    }

    fn start_limit_interval(&mut self, e: &Entry) {
        if let Some(v) = self.parsed(e, DEFAULT_START_LIMIT_INTERVAL, parse_timespan) {
            self.unit.start_limit_interval = v;
        }
    }

    fn start_limit_burst(&mut self, e: &Entry) {
        if let Some(v) = self.parsed(e, DEFAULT_START_LIMIT_BURST, parse_count) {
            self.unit.start_limit_burst = v;
        }
    }

    /// Dependency names without `.service`; other unit types are dropped with a warning.
    fn dependencies(&mut self, e: &Entry) -> Option<Vec<String>> {
        let words = self.words(e, &e.value.clone())?;
        let mut names = Vec::with_capacity(words.len());
        let mut dropped = Vec::new();
        for word in words {
            if OTHER_UNIT_TYPES.iter().any(|t| word.ends_with(t)) {
                dropped.push(word);
                continue;
            }
            match UnitName::parse(&word) {
                Ok(name) if name.is_template() => {
                    self.error(e, format!("{word:?} is a template; name an instance"))
                }
                Ok(name) => names.push(name.as_str().to_string()),
                Err(err) => self.error(e, err.to_string()),
            }
        }
        if !dropped.is_empty() {
            let message = format!("{} ignored: gitvisor only orders {SUFFIX} units", dropped.join(", "));
            self.warn(e, message);
        }
        Some(names)
    }

    fn service_key(&mut self, e: &Entry) {
        match e.key.as_str() {
            "Type" => self.service_type(e),
            "ExecStart" => self.exec_start(e),
            "ExecStop" => self.exec_stop(e),
            "WorkingDirectory" => self.working_directory(e),
            "Environment" => self.environment(e),
            "EnvironmentFile" => self.environment_file(e),
            "User" => {
                if let Some(v) = self.string(e) {
                    self.unit.user = v;
                }
            }
            "Group" => {
                if let Some(v) = self.string(e) {
                    self.unit.group = v;
                }
            }
            "Restart" => self.restart(e),
            "RestartSec" => {
                if let Some(v) = self.parsed(e, DEFAULT_RESTART_SEC, parse_timespan) {
                    self.unit.restart_sec = v;
                }
            }
            "RestartSteps" => {
                if let Some(v) = self.parsed(e, 0, parse_count) {
                    self.unit.restart_steps = v;
                }
            }
            "RestartMaxDelaySec" => {
                if let Some(v) = self.parsed(e, None, |s| parse_timespan(s).map(finite)) {
                    self.unit.restart_max_delay = v;
                }
            }
            "TimeoutStopSec" | "TimeoutSec" => {
                if let Some(v) = self.parsed(e, DEFAULT_TIMEOUT_STOP, parse_timeout) {
                    self.unit.timeout_stop = v;
                }
            }
            "KillSignal" => {
                if let Some(v) = self.parsed(e, libc::SIGTERM, parse_signal) {
                    self.unit.kill_signal = v;
                }
            }
            "MemoryMax" | "MemoryLimit" => {
                if let Some(v) = self.parsed(e, None, |s| parse_size(s).map(limited)) {
                    self.unit.memory_max = v;
                }
            }
            "CPUQuota" => {
                if let Some(v) = self.parsed(e, None, parse_cpu_quota) {
                    self.unit.cpu_quota = v;
                }
            }
            "TasksMax" => {
                if let Some(v) = self.parsed(e, None, parse_tasks_max) {
                    self.unit.tasks_max = v;
                }
            }
            "PrivatePIDs" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.unit.private_pids = v;
                }
            }
            "HealthCheckURL" => self.health_url(e),
            "HealthCheckInterval" => {
                if let Some(v) = self.parsed(e, HealthCheck::default().interval, parse_positive) {
                    self.unit.health.interval = v;
                }
            }
            "HealthCheckTimeout" => {
                if let Some(v) = self.parsed(e, HealthCheck::default().timeout, parse_positive) {
                    self.unit.health.timeout = v;
                }
            }
            "HealthCheckRetries" => {
                let parse = |s: &str| match parse_count(s)? {
                    0 => Err(ValueError::new("HealthCheckRetries= must be at least 1")),
                    n => Ok(n),
                };
                if let Some(v) = self.parsed(e, HealthCheck::default().retries, parse) {
                    self.unit.health.retries = v;
                }
            }
            "ReadyCheck" => self.ready_check(e),
            "Singleton" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.unit.singleton = v;
                }
            }
            // Accepted in [Service] by systemd for compatibility.
            "StartLimitInterval" | "StartLimitIntervalSec" => self.start_limit_interval(e),
            "StartLimitBurst" => self.start_limit_burst(e),
            _ => self.unknown_key(e),
        }
    }

    fn service_type(&mut self, e: &Entry) {
        match e.value.as_str() {
            "" | "simple" | "exec" => {}
            other => self.warn(
                e,
                format!("Type={other} is not supported by gitvisor; the service is run as Type=simple"),
            ),
        }
    }

    fn exec_start(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.exec_start = ExecStart::Unset;
            return;
        }
        if !matches!(self.exec_start, ExecStart::Unset) {
            self.error(e, "only one ExecStart= allowed for Type=simple");
            return;
        }
        self.exec_start = match self.exec_command(e) {
            Some(command) => ExecStart::Set(command),
            None => ExecStart::Invalid,
        };
    }

    fn exec_stop(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.unit.exec_stop = None;
            return;
        }
        if self.unit.exec_stop.is_some() {
            self.error(e, "only one ExecStop= is supported by gitvisor");
            return;
        }
        self.unit.exec_stop = self.exec_command(e);
    }

    /// systemd's command prefixes, then the words.
    fn exec_command(&mut self, e: &Entry) -> Option<ExecCommand> {
        let mut rest = e.value.as_str();
        let mut ignore_failure = false;
        let mut own_argv0 = false;
        loop {
            let prefix = if rest.starts_with("!!") { "!!" } else { rest.get(..1).unwrap_or("") };
            match prefix {
                "-" => ignore_failure = true,
                "@" => own_argv0 = true,
                ":" => self.warn(e, "prefix ':' is not supported by gitvisor, ignored"),
                "+" | "!" | "!!" => self.warn(
                    e,
                    format!("prefix '{prefix}' (privileged execution) is not supported by gitvisor, ignored"),
                ),
                _ => break,
            }
            rest = &rest[prefix.len()..];
        }
        let mut argv = self.words(e, rest)?;
        if own_argv0 && argv.len() >= 2 {
            argv.remove(1);
            self.warn(e, "prefix '@' is not supported by gitvisor: the program gets its own path as argv[0]");
        }
        let Some(program) = argv.first() else {
            self.error(e, "empty command");
            return None;
        };
        if program.is_empty() || (program.contains('/') && !program.starts_with('/')) {
            let message =
                format!("{program:?} must be an absolute path or a bare program name (looked up in PATH)");
            self.error(e, message);
            return None;
        }
        Some(ExecCommand { argv, ignore_failure })
    }

    fn working_directory(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.unit.working_directory = None;
            return;
        }
        // `-` (a missing directory is not an error) is accepted; the engine reports it anyway.
        let text = e.value.strip_prefix('-').unwrap_or(&e.value).to_string();
        if let Some(path) = self.path(e, &text) {
            self.unit.working_directory = Some(path);
        }
    }

    fn environment(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.unit.environment.clear();
            return;
        }
        let Some(words) = self.words(e, &e.value.clone()) else {
            return;
        };
        for word in words {
            match word.split_once('=') {
                Some((key, value)) if is_env_name(key) => {
                    let env = &mut self.unit.environment;
                    match env.iter_mut().find(|(k, _)| k == key) {
                        Some(existing) => existing.1 = value.to_string(),
                        None => env.push((key.to_string(), value.to_string())),
                    }
                }
                _ => self.error(e, format!("invalid environment assignment {word:?} (expected NAME=value)")),
            }
        }
    }

    fn environment_file(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.unit.environment_files.clear();
            return;
        }
        let (optional, text) = match e.value.strip_prefix('-') {
            Some(rest) => (true, rest.to_string()),
            None => (false, e.value.clone()),
        };
        if let Some(path) = self.path(e, &text) {
            self.unit.environment_files.push(EnvironmentFile { path, optional });
        }
    }

    fn restart(&mut self, e: &Entry) {
        self.unit.restart = match e.value.as_str() {
            "" | "no" => RestartPolicy::No,
            "on-success" => RestartPolicy::OnSuccess,
            "on-failure" => RestartPolicy::OnFailure,
            "on-abnormal" => RestartPolicy::OnAbnormal,
            "always" => RestartPolicy::Always,
            "on-abort" => {
                self.warn(e, "Restart=on-abort is not supported by gitvisor; using on-abnormal");
                RestartPolicy::OnAbnormal
            }
            "on-watchdog" => {
                self.warn(e, "Restart=on-watchdog is not supported by gitvisor (no watchdog); using no");
                RestartPolicy::No
            }
            other => {
                self.error(
                    e,
                    format!("invalid restart policy {other:?} (expected no, on-success, on-failure, on-abnormal or always)"),
                );
                return;
            }
        };
    }

    fn health_url(&mut self, e: &Entry) {
        let Some(url) = self.string(e) else { return };
        match url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                self.error(e, format!("{url:?} is not an http:// or https:// URL"))
            }
            url => self.unit.health.url = url,
        }
    }

    fn ready_check(&mut self, e: &Entry) {
        let Some(value) = self.expand(e, &e.value.clone()) else {
            return;
        };
        self.ready_line = e.line;
        let ready = match value.split_once(':') {
            _ if value.is_empty() || value == "none" => ReadyCheck::None,
            _ if value == "health" => ReadyCheck::Health,
            Some(("tcp", port)) => match port.trim().parse::<u16>() {
                Ok(port) if port > 0 => ReadyCheck::Tcp(port),
                _ => {
                    self.error(e, format!("invalid TCP port {port:?} (expected 1 to 65535)"));
                    return;
                }
            },
            Some(("log", regex)) if !regex.is_empty() => ReadyCheck::Log(regex.to_string()),
            Some(("log", _)) => {
                self.error(e, "log: needs a regular expression");
                return;
            }
            _ => {
                self.error(
                    e,
                    format!("invalid ready check {value:?} (expected none, health, tcp:PORT or log:REGEX)"),
                );
                return;
            }
        };
        self.unit.ready = ready;
    }

    fn install_key(&mut self, e: &Entry) {
        match e.key.as_str() {
            "WantedBy" => {
                let v = self.words(e, &e.value.clone());
                update_list(&mut self.unit.wanted_by, e, v);
            }
            "DefaultInstance" => {
                self.default_instance_line = e.line;
                if let Some(v) = self.string(e) {
                    self.unit.default_instance = v;
                }
            }
            _ => self.unknown_key(e),
        }
    }

    fn capture_key(&mut self, e: &Entry) {
        let defaults = CaptureSettings::default();
        match e.key.as_str() {
            "Enabled" => {
                if let Some(v) = self.parsed(e, None, |s| parse_bool(s).map(Some)) {
                    self.unit.capture.enabled = v;
                }
            }
            "MaxFileSize" => {
                if let Some(v) = self.parsed(e, defaults.max_file_size, parse_size) {
                    self.unit.capture.max_file_size = v;
                }
            }
            "MaxTotalSize" => {
                if let Some(v) = self.parsed(e, defaults.max_total_size, parse_size) {
                    self.unit.capture.max_total_size = v;
                }
            }
            "Exclude" => {
                let v = self.words(e, &e.value.clone());
                update_list(&mut self.unit.capture.exclude, e, v);
            }
            _ => self.unknown_key(e),
        }
    }

    /// Checks what needs the whole file, and hands back the unit or every error.
    pub(crate) fn finish(mut self) -> Result<(Unit, Vec<Diagnostic>), Vec<Diagnostic>> {
        match std::mem::replace(&mut self.exec_start, ExecStart::Unset) {
            ExecStart::Set(command) => self.unit.exec_start = command,
            ExecStart::Invalid => {}
            ExecStart::Unset => self.diagnostics.push(Diagnostic::error(
                self.file,
                0,
                Some("ExecStart"),
                "missing ExecStart= (the command to run)",
            )),
        }
        if self.unit.ready == ReadyCheck::Health && self.unit.health.url.is_none() {
            self.diagnostics.push(Diagnostic::error(
                self.file,
                self.ready_line,
                Some("ReadyCheck"),
                "ReadyCheck=health needs HealthCheckURL=",
            ));
        }
        if let Some(instance) = self.unit.default_instance.clone() {
            self.check_default_instance(&instance);
        }
        self.diagnostics.sort_by_key(|d| d.line);
        if self.diagnostics.iter().any(Diagnostic::is_error) {
            Err(self.diagnostics)
        } else {
            Ok((self.unit, self.diagnostics))
        }
    }

    fn check_default_instance(&mut self, instance: &str) {
        let name = &self.unit.name;
        let template = if name.is_template() { Some(name.clone()) } else { name.template() };
        let problem = match &template {
            Some(template) => template.instantiate(instance).err().map(|e| e.to_string()),
            None => Some("DefaultInstance= only applies to templates (NAME@.service), ignored".to_string()),
        };
        if let Some(message) = problem {
            let error = template.is_some();
            let key = Some("DefaultInstance");
            self.diagnostics.push(if error {
                Diagnostic::error(self.file, self.default_instance_line, key, message)
            } else {
                Diagnostic::warning(self.file, self.default_instance_line, key, message)
            });
        }
    }
}

/// An empty assignment resets the list; otherwise parsed items are appended.
fn update_list<T>(list: &mut Vec<T>, e: &Entry, items: Option<Vec<T>>) {
    if e.value.is_empty() {
        list.clear();
    } else if let Some(items) = items {
        list.extend(items);
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_count(s: &str) -> Result<u32, ValueError> {
    s.parse().map_err(|_| ValueError::new(format!("invalid number {s:?}")))
}

fn parse_positive(s: &str) -> Result<Duration, ValueError> {
    match parse_timespan(s)? {
        Duration::ZERO => Err(ValueError::new("must be greater than zero")),
        d => Ok(d),
    }
}

fn parse_cpu_quota(s: &str) -> Result<Option<u32>, ValueError> {
    match parse_percent(s)? {
        0 => Err(ValueError::new("CPUQuota= must be above 0%")),
        n => Ok(Some(n)),
    }
}

fn parse_tasks_max(s: &str) -> Result<Option<u64>, ValueError> {
    if s == "infinity" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ValueError::new(format!("invalid task count {s:?} (expected a number or infinity)")))
}

/// For timeouts, systemd reads 0 as `infinity`.
fn parse_timeout(s: &str) -> Result<Duration, ValueError> {
    match parse_timespan(s)? {
        Duration::ZERO => Ok(Duration::MAX),
        d => Ok(d),
    }
}

/// `infinity` means no limit.
fn finite(d: Duration) -> Option<Duration> {
    (d != Duration::MAX).then_some(d)
}

fn limited(bytes: u64) -> Option<u64> {
    (bytes != u64::MAX).then_some(bytes)
}
