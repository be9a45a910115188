//! The `[Service]` section's keys.

use super::*;

impl Builder<'_> {
    pub(super) fn service_key(&mut self, e: &Entry) {
        match e.key.as_str() {
            "Type" => self.service_type(e),
            "ExecStart" => self.exec_start(e),
            // Each line adds commands, an empty one resets (systemd.service(5)).
            "ExecReload" | "ExecStartPre" | "ExecStartPost" | "ExecStop" | "ExecStopPost" => {
                let commands = if e.value.is_empty() { Vec::new() } else { self.exec_commands(e) };
                let list = match e.key.as_str() {
                    "ExecReload" => &mut self.unit.exec_reload,
                    "ExecStartPre" => &mut self.unit.exec_start_pre,
                    "ExecStartPost" => &mut self.unit.exec_start_post,
                    "ExecStop" => &mut self.unit.exec_stop,
                    _ => &mut self.unit.exec_stop_post,
                };
                if e.value.is_empty() {
                    list.clear();
                }
                list.extend(commands);
            }
            "RemainAfterExit" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.unit.remain_after_exit = v;
                    self.lines.remain_after_exit = e.line;
                }
            }
            "PIDFile" => {
                if e.value.is_empty() {
                    self.unit.pid_file = None;
                } else if let Some(path) = self.path(e, &e.value.clone()) {
                    self.unit.pid_file = Some(path);
                    self.lines.pid_file = e.line;
                }
            }
            "WatchdogSec" => {
                if let Some(v) = self.parsed(e, None, |s| parse_timespan(s).map(finite)) {
                    // 0 turns it off, as in systemd.
                    self.unit.watchdog = v.filter(|d| !d.is_zero());
                }
            }
            "WatchdogSignal" => {
                if let Some(v) = self.parsed(e, libc::SIGABRT, parse_signal) {
                    self.unit.watchdog_signal = v;
                }
            }
            "NotifyAccess" => {
                let access = match e.value.as_str() {
                    "" => None,
                    "none" => Some(NotifyAccess::None),
                    "main" => Some(NotifyAccess::Main),
                    "exec" => Some(NotifyAccess::Exec),
                    "all" => Some(NotifyAccess::All),
                    other => {
                        self.error(
                            e,
                            format!("invalid NotifyAccess= {other:?} (expected none, main, exec or all)"),
                        );
                        return;
                    }
                };
                self.notify_access = access;
            }
            "WorkingDirectory" => self.working_directory(e),
            "Environment" => self.environment(e),
            "EnvironmentFile" => self.environment_file(e),
            "PassEnvironment" | "UnsetEnvironment" => self.environment_names(e),
            "User" | "Group" => {
                let Some(v) = self.string(e) else { return };
                let user = e.key == "User";
                // Checked here, so `validate` and a sync say it at file:line rather than a
                // start failing later.
                if let Some(name) = v.as_deref().filter(|n| !exists(n, user)) {
                    let what = if user { "user" } else { "group" };
                    self.error(e, format!("no {what} named {name:?} on this machine"));
                    return;
                }
                if user {
                    self.unit.user = v;
                } else {
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
            "TimeoutStopSec" => {
                if let Some(v) = self.parsed(e, DEFAULT_TIMEOUT_STOP, parse_timeout) {
                    self.unit.timeout_stop = v;
                }
            }
            "TimeoutStartSec" => {
                if let Some(v) = self.parsed(e, DEFAULT_TIMEOUT_START, parse_timeout) {
                    self.unit.timeout_start = v;
                    self.lines.timeout_start = e.line;
                }
            }
            // systemd: both at once.
            "TimeoutSec" => {
                if let Some(v) = self.parsed(e, DEFAULT_TIMEOUT_STOP, parse_timeout) {
                    self.unit.timeout_stop = v;
                    self.unit.timeout_start = v;
                    self.lines.timeout_start = e.line;
                }
            }
            // Lists: each assignment adds, an empty one resets (systemd.service(5)).
            "SuccessExitStatus" | "RestartPreventExitStatus" | "RestartForceExitStatus" => {
                let key = e.key.as_str();
                let set = match key {
                    "SuccessExitStatus" => &mut self.unit.success_exit_status,
                    "RestartPreventExitStatus" => &mut self.unit.restart_prevent_exit_status,
                    _ => &mut self.unit.restart_force_exit_status,
                };
                if e.value.is_empty() {
                    *set = Default::default();
                } else {
                    match parse_exit_statuses(&e.value) {
                        Ok(more) => {
                            set.codes.extend(more.codes);
                            set.signals.extend(more.signals);
                        }
                        Err(err) => self.error(e, err.message),
                    }
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
            "Ports" => self.ports(e),
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
        self.unit.service_type = match e.value.as_str() {
            "" | "simple" => ServiceType::Simple,
            "exec" => ServiceType::Exec,
            "oneshot" => ServiceType::Oneshot,
            "forking" => ServiceType::Forking,
            "notify" => ServiceType::Notify,
            "notify-reload" => {
                self.warn(e, "Type=notify-reload is run as Type=notify: reload runs ExecReload= (or SIGHUP)");
                ServiceType::Notify
            }
            "dbus" | "idle" => {
                let other = &e.value;
                self.warn(
                    e,
                    format!("Type={other} is not supported by gitvisor; the service is run as Type=simple"),
                );
                ServiceType::Simple
            }
            other => {
                let message = format!(
                    "invalid service type {other:?} (expected simple, exec, oneshot, forking or notify)"
                );
                self.error(e, message);
                return;
            }
        };
        self.lines.service_type = e.line;
    }

    /// Each line adds its commands (several only for `Type=oneshot`, checked at the end), an
    /// empty one resets.
    fn exec_start(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.exec_start.clear();
            self.exec_start_invalid = false;
            return;
        }
        let before = self.report.diagnostics.len();
        let commands = self.exec_commands(e);
        if self.report.diagnostics[before..].iter().any(Diagnostic::is_error) {
            self.exec_start_invalid = true;
        }
        self.exec_start.extend(commands.into_iter().map(|c| (e.line, c)));
    }

    /// The commands of one line: systemd separates them with `;` as a word of its own.
    fn exec_commands(&mut self, e: &Entry) -> Vec<ExecCommand> {
        let parts = split_commands(&e.value);
        if parts.iter().any(|p| p.trim().is_empty()) {
            let why = if parts.len() > 1 {
                "empty command before or after a ';' separator"
            } else {
                "empty command"
            };
            self.error(e, why);
            return Vec::new();
        }
        parts.into_iter().filter_map(|part| self.exec_command(e, part)).collect()
    }

    /// systemd's command prefixes, then the words.
    fn exec_command(&mut self, e: &Entry, text: &str) -> Option<ExecCommand> {
        let mut rest = text.trim_start();
        let mut ignore_failure = false;
        let mut own_argv0 = false;
        let mut substitute = true;
        let mut privileged = false;
        loop {
            let prefix = if rest.starts_with("!!") { "!!" } else { rest.get(..1).unwrap_or("") };
            match prefix {
                "-" => ignore_failure = true,
                "@" => own_argv0 = true,
                ":" => substitute = false,
                // Full privileges / credentials not dropped: the engine's own user.
                "+" | "!" => privileged = true,
                // Only meant for systems without ambient capabilities, which Linux has: no effect.
                "!!" => {}
                _ => break,
            }
            rest = &rest[prefix.len()..];
        }
        let mut argv = self.words(e, rest)?;
        let arg0 = if own_argv0 {
            if argv.len() < 2 {
                self.error(e, "prefix '@' needs the program and the argv[0] to give it");
                return None;
            }
            Some(argv.remove(1))
        } else {
            None
        };
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
        Some(ExecCommand { argv, ignore_failure, substitute, arg0, privileged })
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

    /// `PassEnvironment=` names, `UnsetEnvironment=` names or pairs: lists (an empty
    /// assignment resets).
    fn environment_names(&mut self, e: &Entry) {
        let pass = e.key == "PassEnvironment";
        if e.value.is_empty() {
            if pass {
                self.unit.pass_environment.clear();
            } else {
                self.unit.unset_environment.clear();
            }
            return;
        }
        let Some(words) = self.words(e, &e.value.clone()) else { return };
        for word in words {
            let name =
                if pass { word.as_str() } else { word.split_once('=').map_or(word.as_str(), |(k, _)| k) };
            if !is_env_name(name) || (pass && word.contains('=')) {
                self.error(e, format!("invalid variable name {word:?}"));
                continue;
            }
            if pass {
                self.unit.pass_environment.push(word);
            } else {
                self.unit.unset_environment.push(word);
            }
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
        self.lines.restart = e.line;
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
            "on-watchdog" => RestartPolicy::OnWatchdog,
            other => {
                self.error(
                    e,
                    format!("invalid restart policy {other:?} (expected no, on-success, on-failure, on-abnormal, on-watchdog or always)"),
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

    /// `Ports=8080 5353/udp`: a list (each assignment adds, an empty one resets).
    fn ports(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.unit.ports.clear();
            return;
        }
        let Some(words) = self.words(e, &e.value.clone()) else { return };
        for word in words {
            match word.parse::<Port>() {
                Ok(p) if !self.unit.ports.contains(&p) => self.unit.ports.push(p),
                Ok(_) => {}
                Err(why) => self.error(e, why),
            }
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
            Some(("log", pattern)) if !pattern.is_empty() => match regex::Regex::new(pattern) {
                Ok(_) => ReadyCheck::Log(pattern.to_string()),
                Err(err) => {
                    // The regex crate's message spans lines (the pattern, a caret, the error).
                    let why = err.to_string().lines().last().unwrap_or_default().trim().to_string();
                    self.error(e, format!("invalid regular expression {pattern:?}: {why}"));
                    return;
                }
            },
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
}

/// A user (or group) of this name or number exists here (a number always does, as systemd
/// takes it).
fn exists(name: &str, user: bool) -> bool {
    if name.parse::<u32>().is_ok() {
        return true;
    }
    let Ok(c) = std::ffi::CString::new(name) else { return false };
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: the _r variants write only into the given structs and buffer.
    unsafe {
        if user {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut found);
            !found.is_null()
        } else {
            let mut grp: libc::group = std::mem::zeroed();
            let mut found: *mut libc::group = std::ptr::null_mut();
            libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut found);
            !found.is_null()
        }
    }
}
