//! `gitvisor import`: Procfiles, process-compose files, PM2 ecosystem files and systemd units
//! turned into units by a real engine, committed, run, and behaving as their sources said.

use std::path::{Path, PathBuf};

use gitvisor_testkit::Home;

use crate::home;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn head(h: &Home) -> String {
    h.git(&["rev-parse", "HEAD"])
}

fn unit_files(h: &Home) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(h.services())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".service") || n.ends_with(".timer"))
        .collect();
    v.sort();
    v
}

/// Runs `gitvisor import ARGS`, expecting failure: its one-line error.
fn import_fails(h: &Home, args: &[&str]) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = h.run(&all);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn a_procfile_with_its_env_runs_as_foreman_ran_it_and_keeps_secrets_out_of_git() {
    let mut h = home();
    h.start_daemon();
    let app = h.work().join("app");
    write(&app, ".env", "GREETING=hello\nexport SECRET=\"s3 cret\"\nnot a line\n");
    let procfile = write(
        &app,
        "Procfile",
        "# dev\nweb: echo \"$GREETING $PORT $SECRET 100%\" > web.out; exec sleep 1000\nworker: sleep 1000\n",
    );
    let out = h.ok(&["import", procfile.to_str().unwrap()]);
    let env = app.join(".env");
    assert!(out.contains(&format!("{}:3: line: ", env.display())), "the skipped .env line is listed: {out}");
    assert_eq!(
        h.git(&["log", "-1", "--format=%s"]),
        format!("import: web, worker from {}", procfile.display())
    );
    h.wait_state("web", "running");
    h.wait_state("worker", "running");
    h.wait_until("web.out", || read(&app.join("web.out")) == "hello 5000 s3 cret 100%\n");
    let unit = read(&h.services().join("web.service"));
    assert!(unit.contains(&format!("EnvironmentFile={}\n", env.display())), "{unit}");
    assert!(!unit.contains("s3 cret"), "the secret stays in .env: {unit}");
    assert!(unit.contains(&format!("WorkingDirectory={}\n", app.display())), "{unit}");
    assert_eq!(h.ok(&["validate"]).lines().last().unwrap(), "3 unit files checked: 0 errors, 0 warnings");
}

#[test]
fn a_process_compose_file_keeps_its_order_restarts_and_environment() {
    let mut h = home();
    h.start_daemon();
    let dir = h.work().join("pc");
    let file = write(
        &dir,
        "process-compose.yaml",
        r#"version: "0.5"
environment:
  - "SHARED=yes"
log_level: debug
processes:
  migrate:
    command: "sleep 0.5; date +%s > migrated"
    working_dir: ./
  db:
    command: "sleep 0.3; touch db-ready; exec sleep 1000"
    readiness_probe:
      exec:
        command: "test -e db-ready"
      period_seconds: 0.1
  api:
    command: "test -e migrated && test -e db-ready && echo $SHARED > api-saw; exec sleep 1000"
    depends_on:
      migrate:
        condition: process_completed_successfully
      db:
        condition: process_healthy
    shutdown:
      signal: 15
  crasher:
    command: "echo x >> crashes; exit 3"
    availability:
      restart: on_failure
      backoff_seconds: 0.2
      max_restarts: 2
  steady:
    command: "echo x >> steady-runs; exit 3"
    availability:
      restart: "no"
  off:
    command: sleep 100
    disabled: true
"#,
    );
    let out = h.ok(&["import", file.to_str().unwrap()]);
    let f = file.display();
    assert!(out.contains(&format!("{f}:4: log_level: not supported, ignored")), "{out}");
    assert!(out.contains(&format!("{f}:23: processes.api.shutdown.signal: not supported, ignored")), "{out}");
    // api started only once migrate had finished and db was ready: it checks both itself.
    h.wait_state("api", "running");
    h.wait_until("api-saw", || read(&dir.join("api-saw")) == "yes\n");
    assert_eq!(h.state("migrate"), "exited");
    // on_failure with max_restarts 2: three runs, then failed; "no": one run.
    h.wait_state("crasher", "failed");
    assert_eq!(read(&dir.join("crashes")).lines().count(), 3);
    h.wait_state("steady", "exited");
    assert_eq!(read(&dir.join("steady-runs")).lines().count(), 1);
    assert_eq!(h.state("off"), "stopped");
    assert_eq!(h.service("off")["enabled"], false);
}

#[test]
fn pm2_ecosystem_files_in_json_and_in_javascript() {
    let mut h = home();
    h.start_daemon();
    let app = "require('fs').writeFileSync('seen', process.argv.slice(2).join('|') + ' ' + process.env.MODE); setInterval(() => {}, 1000);\n";
    let json_dir = h.work().join("json");
    write(&json_dir, "app.js", app);
    let json = write(
        &json_dir,
        "ecosystem.config.json",
        r#"{
  "apps": [{
    "name": "json-app",
    "script": "app.js",
    "args": ["--greet", "hi there"],
    "env": {"MODE": "json"},
    "autorestart": false,
    "max_memory_restart": "300M",
    "instances": 2,
    "watch": ["src"],
    "ignore_watch": ["tmp"],
    "log_date_format": "YYYY"
  }]
}
"#,
    );
    let js_dir = h.work().join("js");
    write(&js_dir, "app.js", app);
    let js = write(
        &js_dir,
        "ecosystem.config.js",
        "const mode = ['j', 's'].join('');\nmodule.exports = { apps: [{ name: 'js-app', script: './app.js', args: '--greet hey', env: { MODE: mode }, restart_delay: 200 }] };\n",
    );
    let out = h.ok(&["import", json.to_str().unwrap(), js.to_str().unwrap()]);
    assert!(
        out.contains(&format!("{}:9: apps[0].instances (json-app): several instances", json.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:12: apps[0].log_date_format (json-app): not supported, ignored",
            json.display()
        )),
        "{out}"
    );
    assert_eq!(
        h.git(&["log", "-1", "--format=%s"]),
        format!("import: json-app from {}; js-app from {}", json.display(), js.display())
    );
    h.wait_until("json-app's output", || read(&json_dir.join("seen")) == "--greet|hi there json");
    h.wait_until("js-app's output", || read(&js_dir.join("seen")) == "--greet|hey js");
    let unit = read(&h.services().join("json-app.service"));
    for line in ["Restart=no\n", "MemoryMax=300M\n", "\n[Watch]\nPaths=src\nExclude=tmp\n"] {
        assert!(unit.contains(line), "{line:?} in {unit}");
    }
    assert!(read(&h.services().join("js-app.service")).contains("Restart=always\nRestartSec=200ms\n"));
}

#[test]
fn systemd_units_are_copied_and_checked() {
    let mut h = home();
    h.start_daemon();
    let dir = h.work().join("user-units");
    let svc = write(
        &dir,
        "hello.service",
        "[Service]\nExecStart=/bin/sleep 1000\nProtectSystem=strict\n[Install]\nWantedBy=default.target\n",
    );
    let timer = write(&dir, "hello.timer", "[Timer]\nOnCalendar=daily\n");
    let out = h.ok(&["import", svc.to_str().unwrap(), timer.to_str().unwrap()]);
    assert!(out.contains(&format!("{}:3: ProtectSystem: ", svc.display())), "{out}");
    assert_eq!(read(&h.services().join("hello.service")), read(&svc));
    h.wait_state("hello", "running");
    assert!(h.ok(&["timers"]).contains("hello.timer"));
    let bad = write(&dir, "bad.service", "[Service]\nExecStart=/bin/true\nRestartSec=soon\n");
    let err = import_fails(&h, &["--dry-run", bad.to_str().unwrap()]);
    assert!(err.contains(&format!("{}:3: bad.service: RestartSec: ", bad.display())), "{err}");
}

#[test]
fn a_dry_run_a_malformed_source_and_a_clash_change_nothing() {
    let mut h = home();
    h.start_daemon();
    let dir = h.work().join("app");
    let procfile = write(&dir, "Procfile", "web: sleep 1000\n");
    let before = (head(&h), unit_files(&h));

    let out = h.ok(&["import", "--dry-run", procfile.to_str().unwrap()]);
    assert!(out.contains("# web.service (enabled)") && out.contains("ExecStart=sleep 1000"), "{out}");
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert_eq!((head(&h), unit_files(&h)), before);

    let yaml = write(&dir, "process-compose.yaml", "processes:\n  web:\n    command: [unclosed\n  db:\n");
    let err = import_fails(&h, &[procfile.to_str().unwrap(), yaml.to_str().unwrap()]);
    assert!(
        err.starts_with(&format!("gitvisor: {}:", yaml.display())) && err.contains("invalid YAML"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let bad = write(&dir, "Procfile.dev", "web: sleep 1\nworker sleep 1\n");
    let err = import_fails(&h, &[bad.to_str().unwrap()]);
    assert_eq!(
        err,
        format!("gitvisor: {}:2: expected `name: command`, found \"worker sleep 1\"", bad.display())
    );
    assert_eq!((head(&h), unit_files(&h)), before, "nothing written");

    h.sh_unit("web", "exec sleep 1000", "");
    h.commit_all("a web of our own");
    let before = (head(&h), unit_files(&h), read(&h.services().join("web.service")));
    let err = import_fails(&h, &[procfile.to_str().unwrap()]);
    assert!(err.contains("web.service is already in the services repository: nothing was imported"), "{err}");
    assert_eq!((head(&h), unit_files(&h), read(&h.services().join("web.service"))), before);
    h.ok(&["import", "--prefix", "app-", procfile.to_str().unwrap()]);
    h.wait_state("app-web", "running");
}
