//! Each window command on Tauri's mock runtime, against a real engine on a temporary home:
//! the same builder, configuration and permissions as the app, no display.

mod support;

use std::time::Duration;

use gitvisor_engine::Paths;
use gitvisor_testkit::{wait_for, wait_until, Home, DEADLINE};
use gitvisor_tray::backend::Backend;
use gitvisor_tray::shell::Shell;
use serde_json::{json, Value};
use support::TRAY_BIN;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, Manager, WebviewWindow, WebviewWindowBuilder};

struct TestApp {
    app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    home: Home,
}

impl TestApp {
    fn new() -> TestApp {
        let home = support::home();
        home.enabled_sh_unit("web", "echo web says hello; while :; do sleep 1; done", "");
        home.enabled_sh_unit("api", "while :; do sleep 1; done", "");
        let app = TestApp::on(home);
        assert!(!app.shell().backend.attached(), "nothing else owns a fresh home");
        app
    }

    /// The app on `home`: it owns the home, or attaches to the daemon that does.
    fn on(home: Home) -> TestApp {
        let backend =
            tauri::async_runtime::block_on(Backend::open(Paths::under(home.path()), TRAY_BIN.into()))
                .expect("the backend opens on the temp home");
        let app = gitvisor_tray::with_commands(mock_builder())
            .manage(Shell::new(backend))
            .build(gitvisor_tray::context())
            .expect("mock app");
        let window = WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("window");
        TestApp { app, window, home }
    }

    fn shell(&self) -> tauri::State<'_, Shell> {
        self.app.state::<Shell>()
    }

    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        self.invoke_as(&self.window, cmd, args)
    }

    fn invoke_as(&self, window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().expect("json"))
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args.clone()).unwrap_or_else(|e| panic!("{cmd} {args}: {e}"))
    }

    /// The message of the error `cmd` answers with.
    fn err(&self, cmd: &str, args: Value) -> String {
        self.err_coded(cmd, args).1
    }

    /// The code and message of a command's error: `{code, message}` for the app's commands,
    /// a plain string when Tauri itself refuses (a missing argument, a denied command).
    fn err_coded(&self, cmd: &str, args: Value) -> (String, String) {
        match self.invoke(cmd, args.clone()) {
            Ok(v) => panic!("{cmd} {args} should fail, answered {v}"),
            Err(Value::String(s)) => (String::new(), s),
            Err(e) => (
                e["code"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().map(String::from).unwrap_or_else(|| e.to_string()),
            ),
        }
    }

    fn service(&self, name: &str) -> Value {
        let status = self.ok("status", json!({}));
        status["services"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().expect(name)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let shell = self.app.state::<Shell>();
        tauri::async_runtime::block_on(shell.backend.shutdown());
    }
}

#[test]
fn status_lists_the_services_of_the_home() {
    let t = TestApp::new();
    let status = t.ok("status", json!({}));
    let names: Vec<&str> =
        status["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(t.service("web")["state"], "running");
    assert!(t.service("web")["pid"].as_u64().is_some());
    // A running service's resources, read from /proc: what the window's CPU and memory show.
    assert!(t.service("web")["memory_kb"].as_u64().is_some_and(|kb| kb > 0), "{}", t.service("web"));
    assert!(t.service("web")["cpu_ms"].as_u64().is_some());
    assert!(status["branch"].as_str().is_some_and(|b| !b.is_empty()), "{status}");
    let info = t.ok("app_info", json!({}));
    assert_eq!(info["home"], t.home.path().display().to_string());
    assert_eq!(info["attached"], false);
}

#[test]
fn stop_start_and_restart_act_on_the_engine() {
    let t = TestApp::new();
    let first = t.service("web")["pid"].as_u64().unwrap();
    let reply = t.ok("stop", json!({ "name": "web" }));
    assert_eq!(reply["results"][0]["ok"], true);
    assert_eq!(t.service("web")["state"], "stopped");
    assert_eq!(
        t.home.try_state("web").as_deref(),
        Some("stopped"),
        "the CLI reaches the app's engine and agrees"
    );
    t.ok("start", json!({ "name": "web" }));
    assert_eq!(t.service("web")["state"], "running");
    let second = t.service("web")["pid"].as_u64().unwrap();
    t.ok("restart", json!({ "name": "web" }));
    let third = t.service("web")["pid"].as_u64().unwrap();
    assert!(first != second && second != third, "each start is a new process: {first} {second} {third}");
}

#[test]
fn bad_arguments_get_one_clear_error() {
    let t = TestApp::new();
    assert_eq!(
        t.err_coded("start", json!({ "name": "nope" })),
        ("unknown_service".into(), "no service named nope".into())
    );
    assert_eq!(t.err("restart", json!({ "name": "" })), "invalid unit name \"\": the name is empty");
    let missing = t.err("stop", json!({}));
    assert!(missing.contains("name"), "names the missing argument: {missing}");
    let wrong_type = t.err("history", json!({ "limit": "ten" }));
    assert!(wrong_type.contains("limit"), "{wrong_type}");
    let bad_id = t.err_coded("crash_show", json!({ "id": "../../etc/passwd" }));
    assert_eq!(bad_id.0, "crash_report");
    assert!(bad_id.1.contains("\"../../etc/passwd\" is not a crash report id"), "names the id: {bad_id:?}");
    let unknown_id = t.err_coded("crash_show", json!({ "id": "crash-web-20260101T000000Z-0001" }));
    assert_eq!(unknown_id, ("crash_report".into(), "no crash report crash-web-20260101T000000Z-0001".into()));
    let commit = t.err("commit_diff", json!({ "commit": "no-such-commit" }));
    assert!(commit.contains("no-such-commit"), "{commit}");
    let rollback = t.err("rollback", json!({ "commit": "0000000" }));
    assert!(rollback.contains("0000000"), "{rollback}");
    let logs = t.err("follow_logs", json!({ "name": "ghost", "lines": 10 }));
    assert!(logs.contains("ghost"), "{logs}");
    // The engine is untouched by all of it.
    assert_eq!(t.service("web")["state"], "running");
}

#[test]
fn a_command_outside_the_windows_permissions_is_refused() {
    let t = TestApp::new();
    // The autostart plugin's own commands are not granted: the window toggles start at login
    // through `set_autostart`, nothing else.
    let denied = t.err("plugin:autostart|enable", json!({}));
    assert!(!denied.is_empty());
    // A window other than "main" is granted nothing.
    let other = WebviewWindowBuilder::new(&t.app, "other", Default::default()).build().unwrap();
    let refused = t.invoke_as(&other, "status", json!({})).expect_err("another window has no permissions");
    assert!(refused.to_string().contains("status"), "{refused}");
}

#[test]
fn follow_logs_answers_the_tail_then_streams_new_lines_as_events() {
    let t = TestApp::new();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    t.app.listen_any("gv:log", move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    let tail = wait_for("web's first line in its log", || {
        let tail = t.ok("follow_logs", json!({ "name": "web", "lines": 50 }));
        tail.as_array().unwrap().iter().any(|l| l["text"] == "web says hello").then_some(tail)
    });
    assert!(tail.as_array().unwrap().len() <= 50);
    t.ok("restart", json!({ "name": "web" }));
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(p) = rx.recv_timeout(Duration::from_millis(100)) {
            // A batch: the lines that came within a frame.
            let batch: Value = serde_json::from_str(&p).unwrap();
            for v in batch.as_array().expect("a batch of lines") {
                assert_eq!(v["name"], "web");
                seen.push(v["text"].as_str().unwrap_or_default().to_string());
            }
            if seen.iter().any(|s| s == "web says hello") {
                break;
            }
        }
    }
    assert!(
        seen.iter().any(|s| s == "web says hello"),
        "the restarted process's line arrives as an event: {seen:?}"
    );
    t.ok("unfollow_logs", json!({}));
}

#[test]
fn history_diffs_and_rollback() {
    let t = TestApp::new();
    let history = t.ok("history", json!({ "limit": 10 }));
    let commits = history["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 1);
    let first = commits[0]["id"].as_str().unwrap().to_string();
    let diff = t.ok("commit_diff", json!({ "commit": first }));
    assert!(diff.as_str().unwrap().contains("+ExecStart=/bin/sh"), "{diff}");
    // A second commit adds a unit; rolling back to the first removes it.
    t.home.enabled_sh_unit("extra", "while :; do sleep 1; done", "");
    t.home.commit_all("Add extra");
    let sync = t.ok("sync", json!({}));
    assert_eq!(sync["applied"], true, "{sync}");
    wait_until("extra runs", || t.service("extra")["state"] == "running");
    let preview = t.ok("rollback_diff", json!({ "commit": first }));
    assert!(preview.as_str().unwrap().contains("-ExecStart"), "rolling back removes extra: {preview}");
    let rolled = t.ok("rollback", json!({ "commit": first }));
    assert_eq!(rolled["sync"]["applied"], true, "{rolled}");
    let status = t.ok("status", json!({}));
    assert!(!status["services"].as_array().unwrap().iter().any(|s| s["name"] == "extra"), "{status}");
}

#[test]
fn import_previews_then_commits() {
    let t = TestApp::new();
    let dir = t.home.work().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let procfile = dir.join("Procfile");
    std::fs::write(&procfile, "worker: sleep 1000\n").unwrap();
    let paths = json!([procfile.display().to_string()]);
    let preview = t.ok("import_units", json!({ "paths": paths, "dryRun": true }));
    assert_eq!(preview["units"][0]["file"], "worker.service", "{preview}");
    assert!(preview["commit"].is_null(), "a preview commits nothing: {preview}");
    let history = t.ok("history", json!({ "limit": 10 }));
    assert_eq!(history["commits"].as_array().unwrap().len(), 1, "{history}");
    let done = t.ok("import_units", json!({ "paths": paths, "dryRun": false }));
    assert_eq!(done["sync"]["applied"], true, "{done}");
    wait_until("worker runs", || t.service("worker")["state"] == "running");
    let again = t.err("import_units", json!({ "paths": paths, "dryRun": true }));
    assert!(again.contains("worker.service is already in the services repository"), "{again}");
}

#[test]
fn crash_reports_list_show_export_and_mark_seen() {
    let t = TestApp::new();
    let marker = t.home.work().join("crash-now");
    t.home.enabled_sh_unit(
        "crashy",
        &format!("while [ ! -f {} ]; do sleep 0.05; done; echo boom >&2; exit 3", marker.display()),
        "Restart=no",
    );
    // crashy is not in the first commit: add it through git and sync.
    t.home.commit_all("Add crashy");
    t.ok("sync", json!({}));
    wait_until("crashy runs", || t.service("crashy")["state"] == "running");
    std::fs::write(&marker, "").unwrap();
    let id = wait_for("a crash report", || {
        let list = t.ok("crash_list", json!({}));
        list["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == "crashy")
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let shown = t.ok("crash_show", json!({ "id": id }));
    assert_eq!(shown["report"]["reason"], "exited with status 3", "{shown}");
    assert!(shown["files"].as_array().unwrap().iter().any(|f| f["path"] == "report.json"));
    let out = t.home.path().join("exported.tar.gz");
    let exported = t.ok("crash_export", json!({ "id": id, "path": out.display().to_string() }));
    assert_eq!(exported["path"], out.display().to_string());
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    let again = t.err("crash_export", json!({ "id": id, "path": out.display().to_string() }));
    assert!(again.contains("exists"), "never overwrites: {again}");
    // A relative target is refused for what it is (the id is a real report's).
    let relative = t.err_coded("crash_export", json!({ "id": id, "path": "out.tar.gz" }));
    assert_eq!(relative, ("crash_report".into(), "export target out.tar.gz must be an absolute path".into()));
    let shell = t.app.state::<Shell>();
    let list =
        tauri::async_runtime::block_on(shell.backend.call(gitvisor_protocol::CrashList::default())).unwrap();
    assert_eq!(shell.count_new(&list), 1);
    t.ok("crash_seen", json!({}));
    assert_eq!(shell.count_new(&list), 0);
    assert_eq!(t.ok("snapshot", json!({}))["new_crashes"], 0);
    let captured = t.ok("capture", json!({ "name": "web" }));
    assert!(captured["id"].as_str().unwrap().contains("web"), "{captured}");
}

#[test]
fn an_attached_app_takes_the_home_over_when_its_daemon_is_gone() {
    let mut home = support::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    home.start_daemon();
    let pid = wait_for("the daemon runs web", || home.try_pid("web"));
    let mut t = TestApp::on(home);
    assert!(t.shell().backend.attached());
    // While the daemon runs, it keeps the home.
    let (code, message) = t.err_coded("take_over", json!({}));
    assert_eq!(code, "held", "{message}");
    assert!(t.shell().backend.attached());
    t.home.kill_daemon();
    t.ok("take_over", json!({}));
    assert!(!t.shell().backend.attached());
    assert_eq!(t.home.engine_pid(), Some(std::process::id()), "this process owns the home");
    let web = t.service("web");
    assert_eq!((web["state"].as_str(), web["pid"].as_u64()), (Some("running"), Some(pid as u64)), "adopted");
    assert!(t.ok("snapshot", json!({}))["attached"] == false);
}

#[test]
fn capture_of_a_service_without_a_working_directory_is_refused_with_the_reason_the_status_gives() {
    let t = TestApp::new();
    t.home.unit("nowd", "[Service]\nExecStart=/bin/sleep 1000\n");
    t.home.commit_all("Add nowd");
    t.ok("sync", json!({}));
    // What the window disables the Capture button with, and shows as its title.
    let why = t.service("nowd")["capture_off"].as_str().map(String::from).expect("a reason");
    assert!(why.contains("no WorkingDirectory="), "{why}");
    assert_eq!(t.service("web")["capture_off"], Value::Null, "web has a working directory");
    let (code, message) = t.err_coded("capture", json!({ "name": "nowd" }));
    assert_eq!((code.as_str(), message), ("crash_report", format!("cannot capture nowd: {why}")));
    assert!(t.ok("crash_list", json!({}))["reports"].as_array().unwrap().is_empty());
}
