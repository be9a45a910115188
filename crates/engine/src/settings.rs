//! The engine's settings, `config.toml` (SPEC section 12).
//!
//! Every key is optional. A missing file gives the defaults silently; an unreadable or invalid
//! file, an unknown key or a bad value gives the default for what was wrong and a warning naming
//! it, so one typo never stops the engine and never hides the rest of the file.

use std::path::Path;
use std::time::Duration;

use gitvisor_units::{parse_size, parse_timespan};
use serde::Serialize;
use toml::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub logs: LogSettings,
    pub capture: CaptureSettings,
    pub crash_reports: CrashReportSettings,
    pub maintenance: MaintenanceSettings,
    pub fleet: Option<FleetSettings>,
    pub git: GitSettings,
}

/// How the services repository is followed (not in SPEC's example file; optional like the rest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GitSettings {
    /// Quiet time after the branch moves before the sync runs: a burst is applied once.
    #[serde(with = "span")]
    pub debounce: Duration,
    /// Polling period where file events are unavailable.
    #[serde(with = "span")]
    pub poll_interval: Duration,
    /// Use file events (inotify); `false` polls instead, for file systems whose changes inotify
    /// does not see (network mounts).
    pub file_events: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSettings {
    pub max_file_size: u64,
    pub max_files: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureSettings {
    #[serde(with = "span")]
    pub ttl: Duration,
    pub max_captures: u32,
    pub max_bytes: u64,
    #[serde(with = "span")]
    pub sweep_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrashReportSettings {
    pub max_count: u32,
    pub max_bytes: u64,
    #[serde(with = "span")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaintenanceSettings {
    pub enabled: bool,
    #[serde(with = "span")]
    pub min_interval: Duration,
    pub prune: String,
    pub auto_threshold: u32,
    pub max_concurrent: u32,
    pub repos: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetSettings {
    pub remote: String,
    #[serde(with = "span")]
    pub pull_interval: Duration,
    pub redis: String,
    pub node: String,
    #[serde(with = "span")]
    pub lease_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            logs: LogSettings { max_file_size: 10 << 20, max_files: 5 },
            capture: CaptureSettings {
                ttl: Duration::from_secs(24 * 3600),
                max_captures: 100,
                max_bytes: 1 << 30,
                sweep_interval: Duration::from_secs(300),
            },
            crash_reports: CrashReportSettings {
                max_count: 100,
                max_bytes: 512 << 20,
                max_age: Duration::from_secs(30 * 86400),
            },
            maintenance: MaintenanceSettings {
                enabled: true,
                min_interval: Duration::from_secs(3600),
                prune: "2.weeks.ago".into(),
                auto_threshold: 6700,
                max_concurrent: 1,
                repos: Vec::new(),
            },
            fleet: None,
            git: GitSettings {
                debounce: Duration::from_millis(50),
                poll_interval: Duration::from_secs(2),
                file_events: true,
            },
        }
    }
}

/// Settings plus the warnings met while reading them.
#[derive(Debug, Clone)]
pub struct LoadedSettings {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn load(path: &Path) -> LoadedSettings {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                LoadedSettings { settings: Settings::default(), warnings: Vec::new() }
            }
            Err(e) => LoadedSettings {
                settings: Settings::default(),
                warnings: vec![format!("{}: cannot read ({e}); using defaults", path.display())],
            },
        }
    }

    pub fn parse(text: &str, file: &str) -> LoadedSettings {
        let mut r = Reader { file, warnings: Vec::new() };
        let mut s = Settings::default();
        let root = match text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.message().to_string();
                let line = e.span().map(|sp| text[..sp.start.min(text.len())].lines().count().max(1));
                r.warnings.push(match line {
                    Some(l) => format!("{file}:{l}: invalid TOML: {msg}; using defaults for the whole file"),
                    None => format!("{file}: invalid TOML: {msg}; using defaults for the whole file"),
                });
                return LoadedSettings { settings: s, warnings: r.warnings };
            }
        };
        for (section, value) in &root {
            let Some(table) = value.as_table() else {
                r.warn(section, "expected a table like [section]");
                continue;
            };
            match section.as_str() {
                "logs" => r.section(section, table, |r, key, v| match key {
                    "max_file_size" => r.size(v, &mut s.logs.max_file_size),
                    "max_files" => r.count(v, &mut s.logs.max_files),
                    _ => Err(Unknown),
                }),
                "capture" => r.section(section, table, |r, key, v| match key {
                    "ttl" => r.span(v, &mut s.capture.ttl),
                    "max_captures" => r.count(v, &mut s.capture.max_captures),
                    "max_bytes" => r.size(v, &mut s.capture.max_bytes),
                    "sweep_interval" => r.span(v, &mut s.capture.sweep_interval),
                    _ => Err(Unknown),
                }),
                "crash_reports" => r.section(section, table, |r, key, v| match key {
                    "max_count" => r.count(v, &mut s.crash_reports.max_count),
                    "max_bytes" => r.size(v, &mut s.crash_reports.max_bytes),
                    "max_age" => r.span(v, &mut s.crash_reports.max_age),
                    _ => Err(Unknown),
                }),
                "maintenance" => r.section(section, table, |r, key, v| match key {
                    "enabled" => r.boolean(v, &mut s.maintenance.enabled),
                    "min_interval" => r.span(v, &mut s.maintenance.min_interval),
                    "prune" => r.string(v, &mut s.maintenance.prune),
                    "auto_threshold" => r.count(v, &mut s.maintenance.auto_threshold),
                    "max_concurrent" => r.count(v, &mut s.maintenance.max_concurrent),
                    "repos" => r.strings(v, &mut s.maintenance.repos),
                    _ => Err(Unknown),
                }),
                "git" => r.section(section, table, |r, key, v| match key {
                    "debounce" => r.span(v, &mut s.git.debounce),
                    "poll_interval" => r.span(v, &mut s.git.poll_interval),
                    "file_events" => r.boolean(v, &mut s.git.file_events),
                    _ => Err(Unknown),
                }),
                "fleet" => {
                    let mut f = FleetSettings {
                        remote: String::new(),
                        pull_interval: Duration::from_secs(30),
                        redis: String::new(),
                        node: String::new(),
                        lease_ttl: Duration::from_secs(10),
                    };
                    r.section(section, table, |r, key, v| match key {
                        "remote" => r.string(v, &mut f.remote),
                        "pull_interval" => r.span(v, &mut f.pull_interval),
                        "redis" => r.string(v, &mut f.redis),
                        "node" => r.string(v, &mut f.node),
                        "lease_ttl" => r.span(v, &mut f.lease_ttl),
                        _ => Err(Unknown),
                    });
                    s.fleet = Some(f);
                }
                _ => r.warn(section, "unknown section, ignored"),
            }
        }
        LoadedSettings { settings: s, warnings: r.warnings }
    }

    /// The effective settings as TOML, for `gitvisor config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

struct Unknown;

struct Reader<'a> {
    file: &'a str,
    warnings: Vec<String>,
}

type Field = Result<Result<(), String>, Unknown>;

impl Reader<'_> {
    fn warn(&mut self, key: &str, message: &str) {
        self.warnings.push(format!("{}: {key}: {message}", self.file));
    }

    fn section(
        &mut self,
        section: &str,
        table: &toml::Table,
        mut field: impl FnMut(&mut Self, &str, &Value) -> Field,
    ) {
        for (key, value) in table {
            let name = format!("{section}.{key}");
            match field(self, key, value) {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => self.warn(&name, &format!("{msg}; using the default")),
                Err(Unknown) => self.warn(&name, "unknown key, ignored"),
            }
        }
    }

    fn span(&mut self, v: &Value, out: &mut Duration) -> Field {
        Ok(match v {
            Value::String(s) => parse_timespan(s).map(|d| *out = d).map_err(|e| e.to_string()),
            Value::Integer(i) if *i >= 0 => {
                *out = Duration::from_secs(*i as u64);
                Ok(())
            }
            other => Err(format!("expected a duration like \"5min\", found {other}")),
        })
    }

    fn size(&mut self, v: &Value, out: &mut u64) -> Field {
        Ok(match v {
            Value::String(s) => parse_size(s).map(|n| *out = n).map_err(|e| e.to_string()),
            Value::Integer(i) if *i >= 0 => {
                *out = *i as u64;
                Ok(())
            }
            other => Err(format!("expected a size like \"10M\", found {other}")),
        })
    }

    fn count(&mut self, v: &Value, out: &mut u32) -> Field {
        Ok(match v.as_integer() {
            Some(i) if (0..=u32::MAX as i64).contains(&i) => {
                *out = i as u32;
                Ok(())
            }
            _ => Err(format!("expected a non-negative whole number, found {v}")),
        })
    }

    fn boolean(&mut self, v: &Value, out: &mut bool) -> Field {
        Ok(match v.as_bool() {
            Some(b) => {
                *out = b;
                Ok(())
            }
            None => Err(format!("expected true or false, found {v}")),
        })
    }

    fn string(&mut self, v: &Value, out: &mut String) -> Field {
        Ok(match v.as_str() {
            Some(s) => {
                *out = s.to_string();
                Ok(())
            }
            None => Err(format!("expected a string, found {v}")),
        })
    }

    fn strings(&mut self, v: &Value, out: &mut Vec<String>) -> Field {
        Ok(
            match v
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
            {
                Some(Some(list)) => {
                    *out = list;
                    Ok(())
                }
                _ => Err(format!("expected a list of strings, found {v}")),
            },
        )
    }
}

/// Durations print as humantime spans ("5m", "1day") in `gitvisor config`.
mod span {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_without_warnings() {
        let l = Settings::parse("", "c.toml");
        assert_eq!(l.settings, Settings::default());
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn values_are_read() {
        let l = Settings::parse(
            "[logs]\nmax_file_size = \"1M\"\nmax_files = 2\n[capture]\nttl = \"1h\"\n[fleet]\nredis = \"redis://127.0.0.1:6379\"\n",
            "c.toml",
        );
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.settings.logs.max_file_size, 1 << 20);
        assert_eq!(l.settings.logs.max_files, 2);
        assert_eq!(l.settings.capture.ttl, Duration::from_secs(3600));
        assert_eq!(l.settings.fleet.unwrap().lease_ttl, Duration::from_secs(10));
    }

    #[test]
    fn each_bad_value_warns_and_keeps_its_default_and_the_rest() {
        let l = Settings::parse(
            "[logs]\nmax_file_size = \"huge\"\nmax_files = -1\nbogus = 1\n[capture]\nmax_captures = 7\n[nope]\nx=1\n",
            "c.toml",
        );
        assert_eq!(l.settings.logs, Settings::default().logs);
        assert_eq!(l.settings.capture.max_captures, 7);
        assert_eq!(l.warnings.len(), 4, "{:?}", l.warnings);
        assert!(
            // Said once: the value's own error already quotes it.
            l.warnings
                .iter()
                .any(|w| w == "c.toml: logs.max_file_size: invalid size \"huge\"; using the default"),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings.iter().any(|w| w.starts_with("c.toml: logs.max_files: expected a non-negative")),
            "{:?}",
            l.warnings
        );
        assert!(l.warnings.iter().any(|w| w.contains("logs.bogus: unknown key")));
        assert!(l.warnings.iter().any(|w| w.contains("nope: unknown section")));
    }

    #[test]
    fn broken_toml_names_the_line_and_uses_defaults() {
        let l = Settings::parse("[logs]\nmax_files = 3\nthis is not toml\n", "c.toml");
        assert_eq!(l.settings, Settings::default());
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].starts_with("c.toml:3: invalid TOML"), "{}", l.warnings[0]);
    }

    #[test]
    fn missing_file_is_silent() {
        let l = Settings::load(Path::new("/nonexistent/config.toml"));
        assert!(l.warnings.is_empty());
    }
}
