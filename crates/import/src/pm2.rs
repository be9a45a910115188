//! PM2 ecosystem files: `apps[]` with name, script, args, interpreter, cwd, env, autorestart,
//! restart_delay, max_memory_restart, watch. A `.json` file is read as it is; a `.js` or `.cjs`
//! file is code, evaluated by `node` (`require`d, its export printed as JSON) with a time
//! limit.
//!
//! The command is what PM2 runs: the interpreter it picks by the script's extension (`node`
//! for `.js`, `python3` for `.py`, …; `interpreter: none` or an unknown extension runs the
//! script itself) with `interpreter_args`, the script (absolute, from `cwd`, unless it is a
//! bare program name such as `npm`) and its args. `autorestart` (PM2's default: on) is
//! `Restart=always`; `max_memory_restart` is `MemoryMax=`, a kill by the kernel that
//! `Restart=` then restarts; `watch` is the `[Watch]` section.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitvisor_units::split_command_line;

use crate::draft::{absolute, millis, UnitDraft, Watch};
use crate::tree::{self, Node, Value};
use crate::{ImportError, Translated, IGNORED};

/// How long `node` may take to evaluate an ecosystem file.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ecosystem's document: JSON as it is, JavaScript through `node`.
pub fn load(path: &Path, text: &str) -> Result<Node, ImportError> {
    let file = path.display().to_string();
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "cjs") => {
            let json = evaluate(path)?;
            let v = serde_json::from_str(&json)
                .map_err(|e| ImportError::at(&file, None, format!("node printed no JSON: {e}")))?;
            Ok(tree::from_json_value(v))
        }
        _ => tree::from_json(&file, text),
    }
}

/// `node` requires the file and prints its export as JSON.
fn evaluate(path: &Path) -> Result<String, ImportError> {
    let file = path.display().to_string();
    let mut child = Command::new("node")
        .arg("-e")
        .arg("process.stdout.write(JSON.stringify(require(process.argv[1])))")
        .arg(path)
        .current_dir(path.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "node is not installed (or not in PATH): a .js ecosystem file is code that only node can evaluate; install node, or write the file as ecosystem.config.json".to_string()
            } else {
                format!("cannot run node: {e}")
            };
            ImportError::at(&file, None, why)
        })?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // A short wait for a one-off helper: polled, since std has no wait with a timeout.
    let deadline = Instant::now() + NODE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ImportError::at(
                    &file,
                    None,
                    format!("node did not finish evaluating the file within {}s", NODE_TIMEOUT.as_secs()),
                ));
            }
            Err(e) => return Err(ImportError::at(&file, None, format!("waiting for node: {e}"))),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(ImportError::at(
            &file,
            node_error_line(&stderr, path),
            format!("node could not evaluate the file: {}", node_error(&stderr)),
        ));
    }
    Ok(stdout)
}

/// The line of the error node reports in `path` (`/x/ecosystem.config.js:7`).
fn node_error_line(stderr: &str, path: &Path) -> Option<usize> {
    let marker = format!("{}:", path.display());
    let rest = &stderr[stderr.find(&marker)? + marker.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The line of node's output that says what went wrong (`SyntaxError: …`).
fn node_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("Error") && !l.trim_start().starts_with("at "))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim()
        .to_string()
}

pub fn translate(path: &Path, doc: &Node) -> Result<Translated, ImportError> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let apps = match &doc.value {
        Value::List(_) => doc,
        Value::Map(_) => doc.get("apps").ok_or_else(|| ImportError::at(&file, doc.line, "no `apps` list"))?,
        _ => return Err(ImportError::at(&file, doc.line, "expected an object with `apps`")),
    };
    let apps = apps.as_list().ok_or_else(|| ImportError::at(&file, apps.line, "apps: expected a list"))?;
    let mut t = Translated::default();
    if let Some(m) = doc.as_map() {
        for e in m.iter().filter(|e| e.key != "apps") {
            t.note(path, e.line, &e.key, IGNORED);
        }
    }
    if apps.is_empty() {
        return Err(ImportError::at(&file, None, "apps: no app"));
    }
    for (i, app) in apps.iter().enumerate() {
        let d = translate_app(path, dir, &mut t, i, app)?;
        t.drafts.push(d);
    }
    Ok(t)
}

fn translate_app(
    path: &Path,
    dir: &Path,
    t: &mut Translated,
    i: usize,
    app: &Node,
) -> Result<UnitDraft, ImportError> {
    let file = path.display().to_string();
    let err = |line, msg: String| ImportError::at(&file, line, msg);
    let entries = app.as_map().ok_or_else(|| err(app.line, format!("apps[{i}]: expected an object")))?;
    let string = |key: &str, n: &Node| -> Result<String, ImportError> {
        n.scalar()
            .ok_or_else(|| err(n.line, format!("apps[{i}].{key}: expected a string, found {}", n.kind())))
    };
    let script = app.get("script").ok_or_else(|| err(app.line, format!("apps[{i}]: no script")))?;
    let script = string("script", script)?;
    let name = match app.get("name") {
        Some(n) => string("name", n)?,
        None => Path::new(&script)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| script.clone()),
    };
    let at = |key: &str| format!("apps[{i}].{key} ({name})");
    let mut d = UnitDraft::new(&name, app.line, path);
    d.enabled = true;
    d.restart = Some("always");
    let mut cwd = dir.to_path_buf();
    let (mut args, mut interpreter, mut interpreter_args) = (Vec::new(), None, Vec::new());
    let mut watch: Option<Watch> = None;
    let mut ignore_watch = Vec::new();
    let mut watch_delay = None;
    let words = |key: &str, n: &Node| -> Result<Vec<String>, ImportError> {
        match &n.value {
            Value::List(l) => l.iter().map(|w| string(key, w)).collect(),
            _ => {
                let s = string(key, n)?;
                split_command_line(&s).map_err(|e| err(n.line, format!("apps[{i}].{key}: {e}")))
            }
        }
    };
    for e in entries {
        let key = e.key.as_str();
        let v = &e.value;
        match key {
            "name" | "script" => {}
            "args" => args = words(key, v)?,
            "interpreter" | "exec_interpreter" => interpreter = Some(string(key, v)?),
            "interpreter_args" | "node_args" => interpreter_args = words(key, v)?,
            "cwd" => cwd = absolute(dir, &string(key, v)?),
            "env" => {
                let m =
                    v.as_map().ok_or_else(|| err(v.line, format!("apps[{i}].env: expected an object")))?;
                for kv in m {
                    d.environment.push((kv.key.clone(), kv.value.scalar().unwrap_or_default()));
                }
            }
            "autorestart" => {
                let on = v
                    .as_bool()
                    .ok_or_else(|| err(v.line, format!("apps[{i}].autorestart: expected true or false")))?;
                d.restart = Some(if on { "always" } else { "no" });
            }
            "restart_delay" => {
                let ms = v
                    .as_u64()
                    .ok_or_else(|| err(v.line, format!("apps[{i}].restart_delay: expected milliseconds")))?;
                d.restart_sec = Some(millis(ms));
            }
            "max_restarts" => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| err(v.line, format!("apps[{i}].max_restarts: expected a whole number")))?;
                d.start_limit_burst = Some(n + 1);
                d.start_limit_interval = Some("1d");
                t.note(
                    path,
                    e.line,
                    at(key),
                    "StartLimitBurst= counts starts within StartLimitIntervalSec= (set to 1d)",
                );
            }
            "kill_timeout" => {
                let ms = v
                    .as_u64()
                    .ok_or_else(|| err(v.line, format!("apps[{i}].kill_timeout: expected milliseconds")))?;
                d.timeout_stop = Some(millis(ms));
            }
            "max_memory_restart" => {
                let s = string(key, v)?;
                d.memory_max = Some(memory(&s).ok_or_else(|| {
                    err(v.line, format!("apps[{i}].max_memory_restart: {s:?} is not a size such as 300M"))
                })?);
                t.note(path, e.line, at(key), "MemoryMax=: the kernel kills the service past the limit (Restart= then restarts it), where PM2 restarts it gracefully");
            }
            "instances" => {
                let one = matches!(v.as_u64(), Some(0 | 1));
                if !one {
                    t.note(
                        path,
                        e.line,
                        at(key),
                        "several instances: not supported, one runs (a template NAME@.service can run more)",
                    );
                }
            }
            "exec_mode" => {
                if string(key, v)? != "fork" && string(key, v)? != "fork_mode" {
                    t.note(
                        path,
                        e.line,
                        at(key),
                        "cluster mode: not supported, the script runs as one process",
                    );
                }
            }
            "watch" => match &v.value {
                Value::Bool(true) => watch = Some(Watch::default()),
                Value::Bool(false) => {}
                Value::List(_) | Value::Str(_) => {
                    watch = Some(Watch { paths: words(key, v)?, ..Default::default() })
                }
                _ => {
                    return Err(err(
                        v.line,
                        format!("apps[{i}].watch: expected true, false or a list of paths"),
                    ))
                }
            },
            "ignore_watch" => ignore_watch = words(key, v)?,
            "watch_delay" => {
                let ms = v
                    .as_u64()
                    .ok_or_else(|| err(v.line, format!("apps[{i}].watch_delay: expected milliseconds")))?;
                watch_delay = Some(millis(ms.min(60_000)));
            }
            _ => t.note(path, e.line, at(key), IGNORED),
        }
    }
    if let Some(mut w) = watch {
        w.exclude = ignore_watch;
        w.debounce = watch_delay;
        d.watch = Some(w);
    } else if !ignore_watch.is_empty() || watch_delay.is_some() {
        t.note(path, app.line, at("ignore_watch"), "without watch: ignored");
    }
    d.exec_start = command(&cwd, &script, interpreter.as_deref(), interpreter_args, args);
    d.working_directory = Some(cwd);
    Ok(d)
}

/// What PM2 runs for a script.
fn command(
    cwd: &Path,
    script: &str,
    interpreter: Option<&str>,
    interpreter_args: Vec<String>,
    args: Vec<String>,
) -> Vec<String> {
    let ext = Path::new(script).extension().and_then(|e| e.to_str()).unwrap_or("");
    let by_extension = match ext {
        "js" | "cjs" | "mjs" => Some("node"),
        "py" => Some("python3"),
        "sh" => Some("bash"),
        "rb" => Some("ruby"),
        "php" => Some("php"),
        "pl" => Some("perl"),
        "ts" => Some("ts-node"),
        _ => None,
    };
    // A script is a file of the app unless it is a bare program name (`npm`).
    let is_path = script.contains('/') || by_extension.is_some() || cwd.join(script).exists();
    let program: String =
        if is_path { absolute(cwd, script).display().to_string() } else { script.to_string() };
    let interpreter = match interpreter {
        Some("none") => None,
        Some(i) => Some(i.to_string()),
        None => by_extension.map(str::to_string),
    };
    let mut argv = Vec::new();
    if let Some(i) = interpreter {
        argv.push(i);
        argv.extend(interpreter_args);
    }
    argv.push(program);
    argv.extend(args);
    argv
}

/// PM2's `300M`, `1G`, `512K` (or bytes) as `MemoryMax=`.
fn memory(s: &str) -> Option<String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let unit = match unit.trim().to_ascii_uppercase().as_str() {
        "" => "",
        "K" | "KB" => "K",
        "M" | "MB" => "M",
        "G" | "GB" => "G",
        _ => return None,
    };
    Some(format!("{n}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
  "apps": [
    {
      "name": "api",
      "script": "server.js",
      "args": ["--port", "3000"],
      "interpreter_args": "--max-old-space-size=256",
      "cwd": "./api",
      "env": {"NODE_ENV": "production", "GREETING": "hi there"},
      "autorestart": false,
      "restart_delay": 1500,
      "max_memory_restart": "300M",
      "watch": ["src"],
      "ignore_watch": ["node_modules"],
      "instances": 4,
      "exec_mode": "cluster",
      "out_file": "/tmp/out.log"
    },
    {
      "name": "tool",
      "script": "npm",
      "args": "run dev",
      "interpreter": "none"
    }
  ]
}
"#;

    #[test]
    fn every_supported_key_translates_and_the_rest_is_listed() {
        let path = Path::new("/srv/eco/ecosystem.config.json");
        let t = translate(path, &load(path, JSON).unwrap()).unwrap();
        let api = &t.drafts[0];
        assert_eq!(
            api.exec_start,
            ["node", "--max-old-space-size=256", "/srv/eco/api/server.js", "--port", "3000"]
        );
        assert_eq!(api.working_directory.as_deref(), Some(Path::new("/srv/eco/api")));
        assert_eq!(api.environment[1], ("GREETING".to_string(), "hi there".to_string()));
        assert_eq!(api.restart, Some("no"));
        assert_eq!(api.restart_sec.as_deref(), Some("1500ms"));
        assert_eq!(api.memory_max.as_deref(), Some("300M"));
        assert_eq!(
            api.watch,
            Some(Watch { paths: vec!["src".into()], exclude: vec!["node_modules".into()], debounce: None })
        );
        assert_eq!(t.drafts[1].exec_start, ["npm", "run", "dev"]);
        let notes: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
        let f = "/srv/eco/ecosystem.config.json";
        assert!(notes.contains(&format!("{f}:15: apps[0].instances (api): several instances: not supported, one runs (a template NAME@.service can run more)")), "{notes:#?}");
        assert!(notes.contains(&format!("{f}:16: apps[0].exec_mode (api): cluster mode: not supported, the script runs as one process")), "{notes:#?}");
        assert!(
            notes.contains(&format!("{f}:17: apps[0].out_file (api): not supported, ignored")),
            "{notes:#?}"
        );
        crate::tests::every_draft_loads_cleanly(&t.drafts);
    }

    #[test]
    fn sizes_and_bad_values() {
        assert_eq!(memory("300M").as_deref(), Some("300M"));
        assert_eq!(memory("1G").as_deref(), Some("1G"));
        assert_eq!(memory("2048").as_deref(), Some("2048"));
        assert_eq!(memory("lots"), None);
        let path = Path::new("/e/ecosystem.config.json");
        let e = translate(path, &load(path, "{\"apps\": [{\"name\": \"x\"}]}").unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "/e/ecosystem.config.json:1: apps[0]: no script");
    }
}
