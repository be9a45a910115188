//! A unit being written by a translator, and how it is written: what a careful person would put
//! in the file, key by key, with values quoted as the units crate reads them back.

use std::path::{Path, PathBuf};

use gitvisor_units::quote_command_line;

/// One process of a source, as gitvisor will run it. Dependencies name processes of the same
/// source; they become unit names when the unit is rendered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitDraft {
    pub process: String,
    pub line: Option<usize>,
    pub source: PathBuf,
    pub requires: Vec<String>,
    pub after: Vec<String>,
    pub exec_start: Vec<String>,
    pub exec_start_post: Vec<Vec<String>>,
    pub exec_stop: Vec<Vec<String>>,
    pub working_directory: Option<PathBuf>,
    pub environment: Vec<(String, String)>,
    pub environment_files: Vec<PathBuf>,
    pub oneshot: bool,
    pub restart: Option<&'static str>,
    pub restart_sec: Option<String>,
    pub start_limit_burst: Option<u64>,
    pub start_limit_interval: Option<&'static str>,
    pub timeout_stop: Option<String>,
    pub memory_max: Option<String>,
    pub health: Option<Health>,
    pub ready_check: Option<String>,
    pub watch: Option<Watch>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub url: String,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watch {
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub debounce: Option<String>,
}

impl UnitDraft {
    pub fn new(process: &str, line: Option<usize>, source: &Path) -> UnitDraft {
        UnitDraft { process: process.to_string(), line, source: source.to_path_buf(), ..Default::default() }
    }

    /// The unit file's text; `unit` gives the unit name of a process of the same source.
    pub fn render(&self, unit: &dyn Fn(&str) -> String) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &str| {
            s.push_str(k);
            s.push('=');
            s.push_str(v);
            s.push('\n');
        };
        let at = self.line.map(|l| format!(":{l}")).unwrap_or_default();
        line(
            "[Unit]\nDescription",
            &format!("{} (imported from {}{at})", self.process, self.source.display()),
        );
        for r in &self.requires {
            line("Requires", &format!("{}.service", unit(r)));
        }
        for a in &self.after {
            line("After", &format!("{}.service", unit(a)));
        }
        if let Some(b) = self.start_limit_burst {
            line("StartLimitBurst", &b.to_string());
            if let Some(i) = self.start_limit_interval {
                line("StartLimitIntervalSec", i);
            }
        }
        s.push_str("\n[Service]\n");
        let mut line = |k: &str, v: &str| {
            s.push_str(k);
            s.push('=');
            s.push_str(v);
            s.push('\n');
        };
        if self.oneshot {
            line("Type", "oneshot");
        }
        line("ExecStart", &exec_line(&self.exec_start));
        for c in &self.exec_start_post {
            line("ExecStartPost", &exec_line(c));
        }
        for c in &self.exec_stop {
            line("ExecStop", &exec_line(c));
        }
        if let Some(d) = &self.working_directory {
            line("WorkingDirectory", &path_value(d));
        }
        for f in &self.environment_files {
            line("EnvironmentFile", &path_value(f));
        }
        for (k, v) in &self.environment {
            line("Environment", &quote_command_line(&[escape_percent(&format!("{k}={v}"))]));
        }
        if let Some(r) = self.restart {
            line("Restart", r);
        }
        if let Some(r) = &self.restart_sec {
            line("RestartSec", r);
        }
        if let Some(t) = &self.timeout_stop {
            line("TimeoutStopSec", t);
        }
        if let Some(m) = &self.memory_max {
            line("MemoryMax", m);
        }
        if let Some(h) = &self.health {
            line("HealthCheckURL", &escape_percent(&h.url));
            if let Some(i) = &h.interval {
                line("HealthCheckInterval", i);
            }
            if let Some(t) = &h.timeout {
                line("HealthCheckTimeout", t);
            }
            if let Some(r) = h.retries {
                line("HealthCheckRetries", &r.to_string());
            }
        }
        if let Some(r) = &self.ready_check {
            line("ReadyCheck", r);
        }
        if let Some(w) = &self.watch {
            s.push_str("\n[Watch]\n");
            if !w.paths.is_empty() {
                s.push_str(&format!("Paths={}\n", words(&w.paths)));
            }
            if !w.exclude.is_empty() {
                s.push_str(&format!("Exclude={}\n", words(&w.exclude)));
            }
            if let Some(d) = &w.debounce {
                s.push_str(&format!("DebounceSec={d}\n"));
            }
        }
        if self.enabled {
            s.push_str("\n[Install]\nWantedBy=default.target\n");
        }
        s
    }
}

/// `ExecStart=`'s value for an argv: `%` and `$` written so the program gets them as they are
/// (gitvisor expands specifiers and substitutes variables in command lines, as systemd does).
pub fn exec_line(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| escape_percent(w).replace('$', "$$")).collect();
    quote_command_line(&words)
}

fn words(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|w| quote_command_line(&[escape_percent(w)])).collect();
    quoted.join(" ")
}

fn escape_percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// Paths are taken as written, spaces included: only `%` needs escaping.
fn path_value(p: &Path) -> String {
    escape_percent(&p.display().to_string())
}

/// A shell command line as an argv: split into words when it has nothing a shell would
/// interpret, else run by `shell -c` (Procfiles and process-compose run every command through
/// a shell).
pub fn shell_command(command: &str, shell: &str) -> Vec<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c) || c == ' ';
    let command = command.trim();
    if !command.is_empty() && command.chars().all(plain) {
        command.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect()
    } else {
        vec![shell.to_string(), "-c".to_string(), command.to_string()]
    }
}

/// Seconds as a time span gitvisor reads: `5s`, `1500ms`.
pub fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{}ms", (s * 1000.0).round() as u64)
    }
}

/// Milliseconds as a time span: `1500ms`, `2s`.
pub fn millis(ms: u64) -> String {
    let (whole, rest) = (ms / 1000, ms % 1000);
    if rest == 0 {
        format!("{whole}s")
    } else {
        format!("{ms}ms")
    }
}

/// `path` as an absolute path, relative ones taken from `base` (the source file's directory).
pub fn absolute(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    normalize(&joined)
}

/// `a/./b/../c` as `a/c`, without touching the file system (the path may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use gitvisor_units::{load_unit, split_command_line, SpecifierContext};

    use super::*;

    fn ctx() -> SpecifierContext {
        SpecifierContext::current()
    }

    #[test]
    fn plain_commands_are_words_and_the_rest_goes_through_a_shell() {
        assert_eq!(shell_command("node server.js --port=80", "/bin/sh"), ["node", "server.js", "--port=80"]);
        assert_eq!(
            shell_command("bundle exec puma -p $PORT", "/bin/sh"),
            ["/bin/sh", "-c", "bundle exec puma -p $PORT"]
        );
        assert_eq!(shell_command("a && b", "bash"), ["bash", "-c", "a && b"]);
    }

    #[test]
    fn a_rendered_unit_loads_back_with_the_same_values() {
        let mut d = UnitDraft::new("web", Some(3), Path::new("/srv/app/Procfile"));
        d.exec_start = vec!["/bin/sh".into(), "-c".into(), "echo \"100%\" $HOME 'x'".into()];
        d.working_directory = Some("/srv/my app".into());
        d.environment = vec![("GREETING".into(), "hello \"world\" 50%".into())];
        d.environment_files = vec!["/srv/app/.env".into()];
        d.restart = Some("always");
        d.restart_sec = Some(seconds(1.5));
        d.enabled = true;
        d.requires = vec!["db".into()];
        d.after = vec!["db".into()];
        d.watch =
            Some(Watch { paths: vec!["src".into()], exclude: vec!["node_modules".into()], debounce: None });
        let text = d.render(&|p| format!("x-{p}"));
        let loaded =
            load_unit("x-web.service", text.as_bytes(), &ctx()).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let u = loaded.unit;
        assert_eq!(u.description.as_deref(), Some("web (imported from /srv/app/Procfile:3)"));
        assert_eq!(u.working_directory.as_deref(), Some(Path::new("/srv/my app")));
        assert_eq!(u.environment, [("GREETING".to_string(), "hello \"world\" 50%".to_string())]);
        assert_eq!(u.exec_start.argv[2], "echo \"100%\" $$HOME 'x'", "$ is doubled for the substitution");
        assert!(text.contains("Requires=x-db.service\nAfter=x-db.service\n"), "{text}");
        assert!(text.contains("\n[Install]\nWantedBy=default.target\n"), "{text}");
        let argv = split_command_line(&exec_line(&["a b".into(), "c".into()])).unwrap();
        assert_eq!(argv, ["a b", "c"]);
    }

    #[test]
    fn spans_and_paths() {
        assert_eq!(seconds(2.0), "2s");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(millis(1500), "1500ms");
        assert_eq!(millis(3000), "3s");
        assert_eq!(absolute(Path::new("/srv/app"), "./api/../web"), Path::new("/srv/app/web"));
        assert_eq!(absolute(Path::new("/srv/app"), "/opt/x"), Path::new("/opt/x"));
    }
}
