//! process-compose files: `processes.NAME` with its command, directory, environment,
//! dependencies, probes and restart policy, and the top-level `environment`.
//!
//! Commands run through `bash -c` as process-compose runs them (unless they have nothing a
//! shell would interpret). Dependencies keep their meaning: `process_started` is
//! `Requires=`+`After=`; `process_healthy` the same, the dependency being ready only once its
//! readiness probe passes (an HTTP probe becomes `HealthCheckURL=` with `ReadyCheck=health`, an
//! exec probe an `ExecStartPost=` that retries it until it succeeds, within
//! `TimeoutStartSec=`); `process_completed_successfully` makes the dependency a oneshot, which a
//! unit ordered after it waits for, and whose failure fails it.

use std::path::Path;

use crate::draft::{absolute, seconds, shell_command, Health, UnitDraft};
use crate::tree::{Entry, Node, Value};
use crate::{ImportError, Translated, IGNORED};

struct Ctx<'a> {
    path: &'a Path,
    file: String,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, line: Option<usize>, msg: impl Into<String>) -> ImportError {
        ImportError::at(&self.file, line, msg)
    }

    fn expect_str(&self, key: &str, n: &Node) -> Result<String, ImportError> {
        match &n.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.err(n.line, format!("{key}: expected a string, found {}", n.kind()))),
        }
    }

    fn expect_map<'n>(&self, key: &str, n: &'n Node) -> Result<&'n [Entry], ImportError> {
        n.as_map().ok_or_else(|| self.err(n.line, format!("{key}: expected a mapping, found {}", n.kind())))
    }

    fn expect_seconds(&self, key: &str, n: &Node) -> Result<f64, ImportError> {
        n.as_seconds().ok_or_else(|| self.err(n.line, format!("{key}: expected a number of seconds")))
    }

    fn expect_count(&self, key: &str, n: &Node) -> Result<u64, ImportError> {
        n.as_u64().ok_or_else(|| self.err(n.line, format!("{key}: expected a whole number")))
    }
}

pub fn translate(path: &Path, doc: &Node) -> Result<Translated, ImportError> {
    let c = Ctx { path, file: path.display().to_string(), dir: path.parent().unwrap_or(Path::new("/")) };
    let top = c.expect_map("the document", doc)?;
    let mut t = Translated::default();
    let mut global_env = Vec::new();
    let mut processes = None;
    for e in top {
        match e.key.as_str() {
            "version" => {}
            "processes" => processes = Some(e),
            "environment" => global_env = environment(&c, "environment", &e.value)?,
            _ => t.note(path, e.line, &e.key, IGNORED),
        }
    }
    let Some(processes) = processes else {
        return Err(c.err(None, "no `processes:` mapping"));
    };
    let procs = c.expect_map("processes", &processes.value)?;
    if procs.is_empty() {
        return Err(c.err(processes.line, "processes: no process"));
    }
    for p in procs {
        let mut d = process(&c, &mut t, p)?;
        let mut env = global_env.clone();
        env.append(&mut d.environment);
        d.environment = env;
        t.drafts.push(d);
    }
    dependencies(&c, &mut t, procs)?;
    Ok(t)
}

fn process(c: &Ctx, t: &mut Translated, p: &Entry) -> Result<UnitDraft, ImportError> {
    let name = &p.key;
    let at = |k: &str| format!("processes.{name}.{k}");
    let mut d = UnitDraft::new(name, p.line, c.path);
    d.working_directory = Some(c.dir.to_path_buf());
    d.enabled = true;
    d.restart = Some("no");
    let mut command = None;
    for e in c.expect_map(&format!("processes.{name}"), &p.value)? {
        let key = at(&e.key);
        match e.key.as_str() {
            "command" => command = Some(c.expect_str(&key, &e.value)?),
            "description" => {}
            "working_dir" => d.working_directory = Some(absolute(c.dir, &c.expect_str(&key, &e.value)?)),
            "environment" => d.environment = environment(c, &key, &e.value)?,
            "env_file" => {
                let files = match &e.value.value {
                    Value::List(l) => {
                        l.iter().map(|n| c.expect_str(&key, n)).collect::<Result<Vec<_>, _>>()?
                    }
                    _ => vec![c.expect_str(&key, &e.value)?],
                };
                d.environment_files.extend(files.iter().map(|f| absolute(c.dir, f)));
            }
            "depends_on" => {} // after every process is known
            "disabled" => {
                d.enabled = !e
                    .value
                    .as_bool()
                    .ok_or_else(|| c.err(e.value.line, format!("{key}: expected true or false")))?
            }
            "availability" => availability(c, t, &mut d, name, &e.value)?,
            "readiness_probe" => probe(c, t, &mut d, name, "readiness_probe", &e.value)?,
            "liveness_probe" => probe(c, t, &mut d, name, "liveness_probe", &e.value)?,
            "shutdown" => {
                for s in c.expect_map(&key, &e.value)? {
                    let skey = format!("{key}.{}", s.key);
                    match s.key.as_str() {
                        "timeout_seconds" => {
                            d.timeout_stop = Some(seconds(c.expect_seconds(&skey, &s.value)?))
                        }
                        "command" => {
                            d.exec_stop.push(shell_command(&c.expect_str(&skey, &s.value)?, "bash"));
                        }
                        _ => t.note(c.path, s.line, skey, IGNORED),
                    }
                }
            }
            _ => t.note(c.path, e.line, key, IGNORED),
        }
    }
    let command = command.ok_or_else(|| c.err(p.line, format!("processes.{name}: no command")))?;
    d.exec_start = shell_command(&command, "bash");
    Ok(d)
}

/// A list of `K=V` (or a mapping, which process-compose also reads).
fn environment(c: &Ctx, key: &str, n: &Node) -> Result<Vec<(String, String)>, ImportError> {
    let bad = |line| c.err(line, format!("{key}: expected a list of KEY=VALUE"));
    match &n.value {
        Value::List(items) => items
            .iter()
            .map(|i| {
                let s = i.scalar().ok_or_else(|| bad(i.line))?;
                let (k, v) = s.split_once('=').ok_or_else(|| bad(i.line))?;
                Ok((k.to_string(), v.to_string()))
            })
            .collect(),
        Value::Map(entries) => {
            entries.iter().map(|e| Ok((e.key.clone(), e.value.scalar().unwrap_or_default()))).collect()
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(bad(n.line)),
    }
}

fn availability(
    c: &Ctx,
    t: &mut Translated,
    d: &mut UnitDraft,
    name: &str,
    n: &Node,
) -> Result<(), ImportError> {
    for e in c.expect_map(&format!("processes.{name}.availability"), n)? {
        let key = format!("processes.{name}.availability.{}", e.key);
        match e.key.as_str() {
            "restart" => {
                d.restart = Some(match c.expect_str(&key, &e.value)?.as_str() {
                    "always" => "always",
                    "on_failure" => "on-failure",
                    "no" => "no",
                    "exit_on_failure" => {
                        t.note(c.path, e.value.line, &key, "exit_on_failure stops every process: not supported, Restart=no (the others keep running)");
                        "no"
                    }
                    other => return Err(c.err(e.value.line, format!("{key}: unknown policy {other:?}"))),
                })
            }
            "backoff_seconds" => d.restart_sec = Some(seconds(c.expect_seconds(&key, &e.value)?)),
            "max_restarts" => {
                // Burst counts starts: the first one and then each restart.
                d.start_limit_burst = Some(c.expect_count(&key, &e.value)? + 1);
                d.start_limit_interval = Some("1d");
                t.note(c.path, e.line, &key, "StartLimitBurst= counts starts within StartLimitIntervalSec= (set to 1d), not restarts ever");
            }
            _ => t.note(c.path, e.line, key, IGNORED),
        }
    }
    Ok(())
}

fn probe(
    c: &Ctx,
    t: &mut Translated,
    d: &mut UnitDraft,
    name: &str,
    kind: &str,
    n: &Node,
) -> Result<(), ImportError> {
    let base = format!("processes.{name}.{kind}");
    let readiness = kind == "readiness_probe";
    let mut health = Health::default();
    let mut exec = None;
    let mut period = None;
    for e in c.expect_map(&base, n)? {
        let key = format!("{base}.{}", e.key);
        match e.key.as_str() {
            "http_get" => health.url = http_url(c, t, &key, &e.value)?,
            "exec" => {
                let cmd =
                    e.value.get("command").ok_or_else(|| c.err(e.line, format!("{key}: no command")))?;
                exec = Some(c.expect_str(&format!("{key}.command"), cmd)?);
                for x in c.expect_map(&key, &e.value)? {
                    if x.key != "command" {
                        t.note(c.path, x.line, format!("{key}.{}", x.key), IGNORED);
                    }
                }
            }
            "period_seconds" => {
                let s = c.expect_seconds(&key, &e.value)?;
                period = Some(s);
                health.interval = Some(seconds(s));
            }
            "timeout_seconds" => health.timeout = Some(seconds(c.expect_seconds(&key, &e.value)?)),
            "failure_threshold" => health.retries = Some(c.expect_count(&key, &e.value)?),
            _ => t.note(c.path, e.line, key, IGNORED),
        }
    }
    if let Some(cmd) = exec {
        if !readiness {
            t.note(
                c.path,
                n.line,
                format!("{base}.exec"),
                "a liveness probe that runs a command: not supported, ignored",
            );
            return Ok(());
        }
        // Ready once the command succeeds: the start waits for ExecStartPost=.
        let sleep = period.unwrap_or(1.0);
        d.exec_start_post.push(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("until {cmd}; do sleep {sleep}; done"),
        ]);
        return Ok(());
    }
    if health.url.is_empty() {
        return Err(c.err(n.line, format!("{base}: neither http_get nor exec")));
    }
    match &d.health {
        Some(h) if h.url != health.url => {
            t.note(
                c.path,
                n.line,
                base,
                format!("a second HTTP probe ({}): gitvisor checks one URL, kept {}", health.url, h.url),
            );
        }
        _ => {
            if readiness {
                d.ready_check = Some("health".into());
                t.note(c.path, n.line, base, "HealthCheckURL= with ReadyCheck=health: after HealthCheckRetries= failed probes the service is also killed (and restarted by its Restart=), where process-compose only marks it not ready");
            }
            d.health = Some(health);
        }
    }
    Ok(())
}

fn http_url(c: &Ctx, t: &mut Translated, key: &str, n: &Node) -> Result<String, ImportError> {
    let (mut host, mut port, mut path, mut scheme) =
        ("127.0.0.1".to_string(), None, "/".to_string(), "http".to_string());
    for e in c.expect_map(key, n)? {
        let k = format!("{key}.{}", e.key);
        match e.key.as_str() {
            "host" => host = c.expect_str(&k, &e.value)?,
            "port" => {
                port =
                    Some(e.value.as_u64().filter(|p| (1..=65535).contains(p)).ok_or_else(|| {
                        c.err(e.value.line, format!("{k}: expected a port from 1 to 65535"))
                    })?)
            }
            "path" => path = c.expect_str(&k, &e.value)?,
            "scheme" => scheme = c.expect_str(&k, &e.value)?.to_ascii_lowercase(),
            _ => t.note(c.path, e.line, k, IGNORED),
        }
    }
    if scheme != "http" {
        return Err(
            c.err(n.line, format!("{key}: scheme {scheme}: gitvisor's health checks speak http only"))
        );
    }
    let port = port.ok_or_else(|| c.err(n.line, format!("{key}: no port")))?;
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(format!("http://{host}:{port}{path}"))
}

fn dependencies(c: &Ctx, t: &mut Translated, procs: &[Entry]) -> Result<(), ImportError> {
    for p in procs {
        let Some(deps) = p.value.get("depends_on") else { continue };
        let base = format!("processes.{}.depends_on", p.key);
        for dep in c.expect_map(&base, deps)? {
            let key = format!("{base}.{}", dep.key);
            if !procs.iter().any(|q| q.key == dep.key) {
                return Err(c.err(dep.line, format!("{key}: no process named {}", dep.key)));
            }
            let mut condition = "process_started".to_string();
            if let Some(m) = dep.value.as_map() {
                for e in m {
                    match e.key.as_str() {
                        "condition" => condition = c.expect_str(&format!("{key}.condition"), &e.value)?,
                        _ => t.note(c.path, e.line, format!("{key}.{}", e.key), IGNORED),
                    }
                }
            }
            let target =
                t.drafts.iter().position(|d| d.process == dep.key).expect("every process has a draft");
            match condition.as_str() {
                "process_started" => {}
                "process_healthy" => {
                    let probed = t.drafts[target].ready_check.is_some()
                        || !t.drafts[target].exec_start_post.is_empty();
                    if !probed {
                        t.note(c.path, dep.line, format!("{key}.condition"), format!("process_healthy, but {} has no readiness_probe: ordered after its start only", dep.key));
                    }
                }
                "process_completed_successfully" | "process_completed" => {
                    let d = &mut t.drafts[target];
                    d.oneshot = true;
                    d.restart = match d.restart {
                        Some("always") => {
                            t.notes.push(crate::Note {
                                file: c.file.clone(),
                                line: dep.line,
                                key: format!("{key}.condition"),
                                message: format!(
                                    "{} becomes a oneshot, which Restart=always cannot be: Restart=no",
                                    dep.key
                                ),
                            });
                            Some("no")
                        }
                        r => r,
                    };
                    if condition == "process_completed" {
                        t.note(c.path, dep.line, format!("{key}.condition"), "process_completed: treated as process_completed_successfully (a failure of the dependency fails this one)");
                    }
                }
                other => return Err(c.err(dep.line, format!("{key}.condition: unknown condition {other:?}"))),
            }
            let me = t.drafts.iter_mut().find(|d| d.process == p.key).expect("every process has a draft");
            me.requires.push(dep.key.clone());
            me.after.push(dep.key.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::from_yaml;

    const YAML: &str = r#"version: "0.5"
environment:
  - "SHARED=1"
log_location: /tmp/pc.log
processes:
  db:
    command: "python3 -m http.server 8080"
    readiness_probe:
      http_get:
        host: 127.0.0.1
        port: 8080
        path: /ready
      period_seconds: 2
      failure_threshold: 5
  migrate:
    command: ./migrate.sh && echo done
    working_dir: ./tools
  web:
    command: node web.js
    environment:
      - "MODE=dev"
    env_file: .env.web
    depends_on:
      db:
        condition: process_healthy
      migrate:
        condition: process_completed_successfully
    availability:
      restart: on_failure
      backoff_seconds: 2
      max_restarts: 3
    shutdown:
      signal: 15
      timeout_seconds: 5
  off:
    command: sleep 1
    disabled: true
"#;

    #[test]
    fn every_supported_key_translates_and_the_rest_is_listed() {
        let t =
            translate(Path::new("/srv/app/process-compose.yaml"), &from_yaml("pc", YAML).unwrap()).unwrap();
        let get = |n: &str| t.drafts.iter().find(|d| d.process == n).unwrap();
        let web = get("web");
        assert_eq!(web.exec_start, ["node", "web.js"]);
        assert_eq!(web.environment, [("SHARED".into(), "1".into()), ("MODE".into(), "dev".into())]);
        assert_eq!(web.environment_files, [Path::new("/srv/app/.env.web")]);
        assert_eq!(web.requires, ["db", "migrate"]);
        assert_eq!(web.restart, Some("on-failure"));
        assert_eq!(web.restart_sec.as_deref(), Some("2s"));
        assert_eq!(web.start_limit_burst, Some(4));
        assert_eq!(web.timeout_stop.as_deref(), Some("5s"));
        let db = get("db");
        assert_eq!(db.health.as_ref().unwrap().url, "http://127.0.0.1:8080/ready");
        assert_eq!(db.ready_check.as_deref(), Some("health"));
        let migrate = get("migrate");
        assert!(migrate.oneshot);
        assert_eq!(migrate.exec_start, ["bash", "-c", "./migrate.sh && echo done"]);
        assert_eq!(migrate.working_directory.as_deref(), Some(Path::new("/srv/app/tools")));
        assert!(!get("off").enabled);
        let notes: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
        let path = "/srv/app/process-compose.yaml";
        assert!(notes.contains(&format!("{path}:4: log_location: not supported, ignored")), "{notes:#?}");
        assert!(
            notes.contains(&format!("{path}:33: processes.web.shutdown.signal: not supported, ignored")),
            "{notes:#?}"
        );
        crate::tests::every_draft_loads_cleanly(&t.drafts);
    }

    #[test]
    fn an_exec_probe_is_retried_before_the_start_is_done() {
        let yaml = "processes:\n  db:\n    command: db\n    readiness_probe:\n      exec:\n        command: test -e /tmp/ready\n      period_seconds: 1\n";
        let t = translate(Path::new("/p/process-compose.yaml"), &from_yaml("pc", yaml).unwrap()).unwrap();
        assert_eq!(
            t.drafts[0].exec_start_post,
            [vec!["/bin/sh".to_string(), "-c".into(), "until test -e /tmp/ready; do sleep 1; done".into()]]
        );
    }

    #[test]
    fn wrong_shapes_are_errors_with_their_lines() {
        let bad = |yaml: &str| {
            translate(Path::new("/p/pc.yaml"), &from_yaml("pc", yaml).unwrap()).unwrap_err().to_string()
        };
        assert_eq!(
            bad("processes:\n  web:\n    working_dir: /x\n"),
            "/p/pc.yaml:2: processes.web: no command"
        );
        assert_eq!(
            bad("processes:\n  web:\n    command: [a]\n"),
            "/p/pc.yaml:3: processes.web.command: expected a string, found a list"
        );
        assert_eq!(
            bad("processes:\n  web:\n    command: a\n    depends_on:\n      db: {}\n"),
            "/p/pc.yaml:5: processes.web.depends_on.db: no process named db"
        );
        assert!(bad("version: 1\n").contains("no `processes:`"));
    }
}
