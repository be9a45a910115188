//! How a [`Unit`] is built from syntax entries.
//!
//! Every entry is applied in file order, so later assignments win and an empty assignment resets
//! a list (or a setting to its default). Every problem becomes a [`Diagnostic`]; building goes on
//! after an error so one pass reports all of them.

use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::name::{UnitName, SUFFIX};
use crate::specifiers::{self, SpecifierContext};
use crate::syntax::Entry;
use crate::unit::*;
use crate::values::{
    parse_bool, parse_exit_statuses, parse_percent, parse_signal, parse_size, parse_timespan,
    split_command_line, split_commands, ValueError,
};

mod report;
mod service;
pub(crate) mod timer;

use report::{Report, Reports};

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

/// Lines of keys that checks made once the whole file is read point at.
#[derive(Default)]
struct Lines {
    service_type: usize,
    restart: usize,
    remain_after_exit: usize,
    pid_file: usize,
    timeout_start: usize,
    /// The first `[Watch]` key.
    watch: usize,
}

/// Builds a [`Unit`] from entries, collecting diagnostics.
pub(crate) struct Builder<'a> {
    ctx: &'a SpecifierContext,
    unit: Unit,
    /// `ExecStart=` commands so far, with their lines.
    exec_start: Vec<(usize, ExecCommand)>,
    /// An `ExecStart=` line since the last reset had an error (already reported).
    exec_start_invalid: bool,
    /// `NotifyAccess=` as written; its default depends on `Type=` and `WatchdogSec=`.
    notify_access: Option<NotifyAccess>,
    lines: Lines,
    ready_line: usize,
    default_instance_line: usize,
    pub(crate) report: Report<'a>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(file: &'a str, name: UnitName, ctx: &'a SpecifierContext) -> Self {
        Builder {
            ctx,
            unit: Unit::new(name, ExecCommand::default()),
            exec_start: Vec::new(),
            exec_start_invalid: false,
            notify_access: None,
            lines: Lines::default(),
            ready_line: 0,
            default_instance_line: 0,
            report: Report::new(file),
        }
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
            "Watch" => self.watch_key(e),
            _ => self.unknown_section(e),
        }
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
            "BindsTo" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.binds_to, e, v);
            }
            "PartOf" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.part_of, e, v);
            }
            "Requisite" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.requisite, e, v);
            }
            "OnFailure" => {
                let v = self.dependencies(e);
                update_list(&mut self.unit.on_failure, e, v);
            }
            "StartLimitIntervalSec" | "StartLimitInterval" => self.start_limit_interval(e),
            "StartLimitBurst" => self.start_limit_burst(e),
            key if condition_kind(key).is_some() => self.condition(e),
            _ => self.unknown_key(e),
        }
    }

    /// `ConditionPathExists=|!/x`: the kind from the key, `|` then `!` before the value; an
    /// empty assignment resets every condition and assertion (systemd.unit(5)).
    fn condition(&mut self, e: &Entry) {
        let key = e.key.as_str();
        let Some((kind, assert)) = condition_kind(key) else { return };
        let Some(value) = self.expand(e, &e.value.clone()) else { return };
        if value.is_empty() {
            self.unit.conditions.clear();
            return;
        }
        let (trigger, rest) = match value.strip_prefix('|') {
            Some(r) => (true, r),
            None => (false, value.as_str()),
        };
        let (negate, rest) = match rest.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let path_kind = !matches!(kind, ConditionKind::Environment);
        if path_kind && !rest.starts_with('/') {
            self.error(e, format!("{rest:?} is not an absolute path"));
            return;
        }
        if rest.is_empty() {
            self.error(e, "nothing to check");
            return;
        }
        self.unit.conditions.push(Condition {
            kind,
            assert,
            trigger,
            negate,
            value: rest.to_string(),
            key: key.to_string(),
        });
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

    fn watch_key(&mut self, e: &Entry) {
        if self.lines.watch == 0 {
            self.lines.watch = e.line;
        }
        let defaults = WatchSettings::default();
        // Any [Watch] key turns watching on (with the defaults for the rest).
        self.unit.watch.get_or_insert_with(WatchSettings::default);
        match e.key.as_str() {
            "Paths" | "Exclude" => {
                let Some(words) = self.words(e, &e.value.clone()) else { return };
                let mut ok = Vec::new();
                for w in words {
                    match check_watch_pattern(&w) {
                        Ok(()) => ok.push(w),
                        Err(why) => self.error(e, why),
                    }
                }
                let watch = self.watch();
                let list = if e.key == "Paths" { &mut watch.paths } else { &mut watch.exclude };
                update_list(list, e, Some(ok));
            }
            "IgnoreGitignore" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.watch().ignore_gitignore = v;
                }
            }
            "DebounceSec" => {
                let Some(v) = self.parsed(e, defaults.debounce, parse_timespan) else { return };
                if v > Duration::from_secs(60) {
                    self.error(e, "DebounceSec= over 60s: a change would wait too long to apply");
                    return;
                }
                self.watch().debounce = v;
            }
            "RestartDependents" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.watch().restart_dependents = v;
                }
            }
            _ => self.unknown_key(e),
        }
    }

    /// The file has a `[Watch]` section (at `line`), perhaps without keys.
    pub(crate) fn watch_section(&mut self, line: usize) {
        if self.lines.watch == 0 {
            self.lines.watch = line;
        }
        self.watch();
    }

    fn watch(&mut self) -> &mut WatchSettings {
        self.unit.watch.get_or_insert_with(WatchSettings::default)
    }

    /// Relative `[Watch]` paths need a working directory to be relative to.
    fn check_watch(&mut self) {
        let Some(w) = &self.unit.watch else { return };
        if self.unit.working_directory.is_some() {
            return;
        }
        let relative = w.paths.is_empty() || w.paths.iter().any(|p| !p.starts_with('/'));
        if relative {
            self.report.diagnostics.push(Diagnostic::error(
                self.report.file,
                self.lines.watch,
                None,
                "[Watch] needs WorkingDirectory= (its paths are relative to it)",
            ));
        }
    }

    /// Checks what needs the whole file, and hands back the unit or every error.
    pub(crate) fn finish(mut self) -> Result<(Unit, Vec<Diagnostic>), Vec<Diagnostic>> {
        self.check_exec_start();
        self.check_service_type();
        if self.unit.ready == ReadyCheck::Health && self.unit.health.url.is_none() {
            self.report.diagnostics.push(Diagnostic::error(
                self.report.file,
                self.ready_line,
                Some("ReadyCheck"),
                "ReadyCheck=health needs HealthCheckURL=",
            ));
        }
        if let Some(instance) = self.unit.default_instance.clone() {
            self.check_default_instance(&instance);
        }
        self.check_watch();
        self.report.diagnostics.sort_by_key(|d| d.line);
        if self.report.diagnostics.iter().any(Diagnostic::is_error) {
            Err(self.report.diagnostics)
        } else {
            Ok((self.unit, self.report.diagnostics))
        }
    }

    fn check_exec_start(&mut self) {
        let mut commands = std::mem::take(&mut self.exec_start).into_iter();
        match commands.next() {
            Some((_, first)) => self.unit.exec_start = first,
            None if self.exec_start_invalid => {}
            None => self.report.diagnostics.push(Diagnostic::error(
                self.report.file,
                0,
                Some("ExecStart"),
                "missing ExecStart= (the command to run)",
            )),
        }
        let rest: Vec<(usize, ExecCommand)> = commands.collect();
        if let Some((line, _)) = rest.first().filter(|_| self.unit.service_type != ServiceType::Oneshot) {
            let kind = self.unit.service_type.as_str();
            let message = format!(
                "only one ExecStart= command is allowed for Type={kind} (several are for Type=oneshot)"
            );
            self.report.diagnostics.push(Diagnostic::error(
                self.report.file,
                *line,
                Some("ExecStart"),
                message,
            ));
        }
        self.unit.exec_start_rest = rest.into_iter().map(|(_, c)| c).collect();
    }

    /// What `Type=` allows and changes, once every key is known (systemd.service(5)).
    fn check_service_type(&mut self) {
        let kind = self.unit.service_type;
        let watched = kind == ServiceType::Notify || self.unit.watchdog.is_some();
        self.unit.notify_access =
            self.notify_access.unwrap_or(if watched { NotifyAccess::Main } else { NotifyAccess::None });
        // systemd: a oneshot's start has no time limit unless one is set.
        if kind == ServiceType::Oneshot && self.lines.timeout_start == 0 {
            self.unit.timeout_start = Duration::MAX;
        }
        let file = self.report.file;
        let mut found = Vec::new();
        let mut warn = |line: usize, key: &str, message: String| {
            found.push(Diagnostic::warning(file, line, Some(key), message));
        };
        if self.unit.remain_after_exit && kind != ServiceType::Oneshot {
            let message = format!(
                "RemainAfterExit= only applies to Type=oneshot in gitvisor, ignored for Type={}",
                kind.as_str()
            );
            warn(self.lines.remain_after_exit, "RemainAfterExit", message);
        }
        if kind == ServiceType::Forking && self.unit.pid_file.is_none() {
            let message = "Type=forking without PIDFile=: the main process is taken to be the one process its start leaves behind".to_string();
            warn(self.lines.service_type, "Type", message);
        }
        if kind != ServiceType::Forking && self.unit.pid_file.is_some() {
            warn(
                self.lines.pid_file,
                "PIDFile",
                "PIDFile= only applies to Type=forking, ignored".to_string(),
            );
        }
        if matches!(kind, ServiceType::Oneshot | ServiceType::Notify) && self.unit.ready != ReadyCheck::None {
            let why = if kind == ServiceType::Oneshot {
                "a oneshot is ready once its commands finished"
            } else {
                "READY=1 says when a Type=notify service is ready"
            };
            warn(self.ready_line, "ReadyCheck", format!("ReadyCheck= is ignored: {why}"));
        }
        if self.unit.notify_access == NotifyAccess::None && self.unit.watchdog.is_some() {
            let message = "WatchdogSec= needs notifications (NotifyAccess=none), ignored".to_string();
            warn(0, "WatchdogSec", message);
            self.unit.watchdog = None;
        }
        self.report.diagnostics.extend(found);
        if kind == ServiceType::Oneshot
            && matches!(self.unit.restart, RestartPolicy::Always | RestartPolicy::OnSuccess)
        {
            let message = "Restart=always and Restart=on-success are not allowed for Type=oneshot (systemd refuses them too)";
            self.report.diagnostics.push(Diagnostic::error(
                file,
                self.lines.restart,
                Some("Restart"),
                message,
            ));
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
            self.report.diagnostics.push(if error {
                Diagnostic::error(self.report.file, self.default_instance_line, key, message)
            } else {
                Diagnostic::warning(self.report.file, self.default_instance_line, key, message)
            });
        }
    }
}

/// An empty assignment resets the list; otherwise parsed items are appended.
/// A `[Watch]` pattern: a glob the engine can compile, that does not climb out with `..`.
fn check_watch_pattern(p: &str) -> Result<(), String> {
    if p.split('/').any(|c| c == "..") {
        return Err(format!("{p:?}: '..' is not allowed in a watch pattern"));
    }
    globset::GlobBuilder::new(p.trim_start_matches('!'))
        .literal_separator(true)
        .build()
        .map(|_| ())
        .map_err(|e| format!("{p:?} is not a valid glob: {}", e.kind()))
}

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

/// The checks gitvisor makes, by key: the kind, and whether it is an assertion.
fn condition_kind(key: &str) -> Option<(ConditionKind, bool)> {
    let (assert, name) = match (key.strip_prefix("Condition"), key.strip_prefix("Assert")) {
        (Some(n), _) => (false, n),
        (_, Some(n)) => (true, n),
        _ => return None,
    };
    let kind = match name {
        "PathExists" => ConditionKind::PathExists,
        "PathIsDirectory" => ConditionKind::PathIsDirectory,
        "FileNotEmpty" => ConditionKind::FileNotEmpty,
        "DirectoryNotEmpty" => ConditionKind::DirectoryNotEmpty,
        "Environment" => ConditionKind::Environment,
        _ => return None,
    };
    Some((kind, assert))
}

impl<'a> Reports<'a> for Builder<'a> {
    fn report(&mut self) -> &mut Report<'a> {
        &mut self.report
    }
}
