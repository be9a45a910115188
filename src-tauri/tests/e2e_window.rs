//! The window end to end: tauri-driver starts the real app binary on a virtual display and
//! drives its webview through WebKitWebDriver, against real services in a temporary home.
//! Each view's screenshot is kept in target/e2e-artifacts/.

mod support;

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use gitvisor_testkit::{alive, wait_until, RedisServer, DEADLINE};
use support::desktop::{desktop_env, Bus, Display, Driver};
use support::tray_bus::Desktop;
use support::{artifacts_dir, TRAY_BIN};

/// Waits until the element at `css` has text satisfying `ok`; returns the text.
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < DEADLINE {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if ok(&t) {
                    return t;
                }
                last = Some(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never had the text expected; last: {last:?}");
}

async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never appeared");
}

/// Clicks the element at `css`. A click WebKit refuses while the row is being redrawn (the
/// element moved or was covered for a moment) is tried again, until the deadline.
async fn click(c: &Client, css: &str) {
    let start = Instant::now();
    loop {
        let err = match wait_css(c, css).await.click().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if start.elapsed() > DEADLINE {
            screenshot(c, "click-failed").await;
            let probe = c
                .execute(
                    "const b = document.querySelector(arguments[0]); const r = b.getBoundingClientRect(); \
                     const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); \
                     return JSON.stringify({rect: [r.x, r.y, r.width, r.height], top: top && top.outerHTML.slice(0, 200), \
                     vis: getComputedStyle(b).visibility, disp: getComputedStyle(b).display, dis: b.disabled});",
                    vec![serde_json::json!(css)],
                )
                .await;
            eprintln!("click probe: {probe:?}");
            panic!("click {css}: {err:?} (see click-failed.png)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    // WebKit takes a snapshot on the page's next paint, and a page where nothing changes (no
    // timer, no new line) is never painted again under Xvfb: change something invisible first.
    let _ = c
        .execute(
            "document.body.style.opacity = document.body.style.opacity ? '' : '0.999'; return 1;",
            vec![],
        )
        .await;
    let png = tokio::time::timeout(DEADLINE, c.screenshot())
        .await
        .unwrap_or_else(|_| panic!("the {name} screenshot never came"))
        .expect("screenshot");
    std::fs::write(artifacts_dir().join(format!("{name}.png")), png).expect("save screenshot");
}

/// Prints 2,000 lines a second (coloured) for 3 s once `flood-now` exists, then `flood done`.
const FLOOD: &str = r#"
import os, sys, time
while not os.path.exists('flood-now'):
    time.sleep(0.05)
start, n = time.time(), 0
while time.time() - start < 3:
    due = int((time.time() - start) * 2000)
    while n < due:
        sys.stdout.write('\x1b[32mline %d\x1b[0m of the flood\n' % n)
        n += 1
    sys.stdout.flush()
    time.sleep(0.005)
print('flood done', flush=True)
while True:
    time.sleep(1)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_shows_services_logs_crash_reports_and_history() {
    let home = support::home();
    // web prints what the test writes to `say`, so the test knows a line is new.
    home.enabled_sh_unit(
        "web",
        "echo web ready; while :; do if [ -f say ]; then cat say; rm -f say; fi; sleep 0.05; done",
        "",
    );
    // An https:// health URL is not probed (the engine has no TLS): the page says so on the row.
    home.enabled_sh_unit("api", "while :; do sleep 1; done", "HealthCheckURL=https://127.0.0.1:1/health");
    home.enabled_sh_unit(
        "crashy",
        "echo crashy waits; while [ ! -f crash-now ]; do sleep 0.05; done; echo giving up >&2; exit 3",
        "Restart=no",
    );
    // chatty prints 2,000 coloured lines a second for 3 s once `flood-now` exists.
    std::fs::write(home.work().join("flood.py"), FLOOD).unwrap();
    home.enabled_sh_unit("chatty", "exec python3 flood.py", "");
    // No WorkingDirectory=: it has no capture, and the page says so on its Capture button.
    home.unit("nowd", "[Service]\nExecStart=/bin/sleep 1000\n");
    // A nightly timer: the page lists it with when it elapses next.
    home.unit("report", "[Service]\nType=oneshot\nExecStart=/bin/true\n");
    std::fs::write(
        home.services().join("nightly.timer"),
        "[Timer]\nOnCalendar=*-*-* 03:00:00 UTC\nUnit=report.service\n[Install]\nWantedBy=timers.target\n",
    )
    .unwrap();
    // A fleet singleton that another node (a headless engine beside the app's) runs: the page
    // says where.
    let redis = RedisServer::start();
    let fleet =
        |node: &str| format!("[fleet]\nredis = \"{}\"\nnode = \"{node}\"\nlease_ttl = \"5s\"\n", redis.url());
    let mut other = support::home();
    std::fs::write(other.path().join("config.toml"), fleet("node-b")).unwrap();
    other.enabled_sh_unit("solo", "exec sleep 1000", "Singleton=yes");
    other.start_daemon();
    other.wait_until("node-b to run the singleton", || other.service("solo")["fleet"] == "here");
    std::fs::write(home.path().join("config.toml"), fleet("node-a")).unwrap();
    home.enabled_sh_unit("solo", "exec sleep 1000", "Singleton=yes");
    // A watched service: a change to its files restarts it, and its row names the file.
    std::fs::create_dir_all(home.work().join("src")).unwrap();
    home.enabled_sh_unit("dev", "exec sleep 1000", "[Watch]\nPaths=src\n");
    // A service listening on a port: the page links it; a click opens it in the browser (a
    // stand-in xdg-open records what it was asked to open).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    home.enabled_sh_unit("site", &format!("exec python3 -m http.server {port} --bind 127.0.0.1"), "");
    let fake_bin = home.path().join("fake-bin");
    std::fs::create_dir_all(&fake_bin).unwrap();
    let opened = home.path().join("opened-url");
    std::fs::write(fake_bin.join("xdg-open"), format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()))
        .unwrap();
    std::fs::set_permissions(fake_bin.join("xdg-open"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    // A unit that requires dev: the page draws the dependency.
    home.unit(
        "devworker",
        &format!(
            "[Unit]\nRequires=dev\nAfter=dev\n{}[Install]\nWantedBy=default.target\n",
            home.sh_unit_text("exec sleep 1000", "")
        ),
    );
    let display = Display::start();
    let bus = Bus::start();
    let desktop = Desktop::serve(&bus.address).await;
    let mut env = home.env();
    env.extend(desktop_env(&display, &bus));
    env.push((
        "PATH".into(),
        format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap_or_default()),
    ));
    let driver = Driver::start(&env, home.path().join("driver.log"));
    let c = driver.session(TRAY_BIN).await;

    // Services: what the engine runs, in the page.
    wait_css(&c, "body[data-ready='1']").await;
    for name in ["web", "api", "crashy"] {
        wait_text(&c, &format!("tr[data-service='{name}'] .cell-state"), |t| t == "running").await;
    }
    let web_pid = home.try_pid("web").expect("the CLI reaches the app's engine");
    wait_text(&c, "tr[data-service='web'] .cell-pid", |t| t == web_pid.to_string()).await;
    screenshot(&c, "services").await;
    let capture = wait_css(&c, "tr[data-service='nowd'] button[data-action='capture'][disabled]").await;
    let title = capture.attr("title").await.unwrap().unwrap_or_default();
    assert!(title.starts_with("No capture: it has no WorkingDirectory="), "{title}");
    let tag = wait_css(&c, "tr[data-service='api'] .tag-warn").await;
    assert_eq!(tag.text().await.unwrap(), "not enforced");
    let title = tag.attr("title").await.unwrap().unwrap_or_default();
    assert!(title.starts_with("HealthCheckURL= is not probed: only http:// URLs are"), "{title}");
    let solo = wait_text(&c, "tr[data-service='solo'] .tag", |t| t == "on node-b").await;
    assert_eq!(solo, "on node-b");
    // The dependency graph: each unit coloured by its state, an arrow from dev to what requires it.
    wait_css(&c, "#services-graph:not([hidden]) svg.dep-graph").await;
    wait_css(&c, "g.dep-node[data-unit='devworker'][data-state='running']").await;
    wait_css(&c, "path.dep-edge.dep-requires[data-from='dev'][data-to='devworker']").await;
    screenshot(&c, "services-graph").await;
    click(&c, &format!("tr[data-service='site'] a.port-link[data-port='{port}']")).await;
    wait_until("the browser asked to open the port", || {
        std::fs::read_to_string(&opened).is_ok_and(|t| t.trim() == format!("http://localhost:{port}"))
    });
    home.wait_until("dev's files watched", || home.service("dev")["watch"]["mode"] == "inotify");
    wait_text(&c, "tr[data-service='dev'] .tag-watch", |t| t == "watching").await;
    let dev_pid = home.try_pid("dev").unwrap();
    std::fs::write(home.work().join("src/app.ts"), "v2").unwrap();
    wait_text(&c, "tr[data-service='dev'] .tag-watch", |t| t == "changed: src/app.ts").await;
    assert_ne!(home.try_pid("dev"), Some(dev_pid), "the change restarted dev");
    let title = wait_css(&c, "tr[data-service='dev'] .tag-watch")
        .await
        .attr("title")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(title.contains("after a change to src/app.ts"), "{title}");

    // Units: a new service from the form, checked as typed by the engine's validator, committed
    // only once valid; a draft kept in the home; a deletion that stops it.
    click(&c, "#nav-units").await;
    // Timers are unit files too: listed, and opened with their text.
    click(&c, "#units-list a[data-file='nightly.timer']").await;
    wait_text(&c, "#unit-file", |t| t == "nightly.timer").await;
    wait_text(&c, "#unit-check", |t| t == "valid").await;
    click(&c, "#unit-new").await;
    wait_css(&c, "#unit-form:not([hidden])").await;
    wait_css(&c, "#unit-form-name").await.send_keys("fresh").await.unwrap();
    wait_css(&c, "#unit-form-command").await.send_keys("/bin/sleep 1000").await.unwrap();
    wait_css(&c, "#unit-form-dir").await.send_keys(&home.work().display().to_string()).await.unwrap();
    wait_text(&c, "#unit-check", |t| t == "valid").await;
    click(&c, "#unit-mode").await;
    // A mistake typed into the text: its line is marked with validate's words.
    let edit = |from: &str, to: &str| {
        format!(
            "const t = document.getElementById('unit-text'); t.value = t.value.replace({from:?}, {to:?});              t.dispatchEvent(new Event('input'));"
        )
    };
    c.execute(&edit("Restart=on-failure", "Restart=on-failure\nRestartSec=soon"), vec![]).await.unwrap();
    let diag = wait_text(&c, "#unit-diagnostics .diag-error", |t| t.contains("RestartSec")).await;
    assert!(diag.contains("line 8") && diag.contains("fresh.service:8: RestartSec:"), "{diag}");
    wait_css(&c, "#unit-gutter .gutter-error[data-line='8']").await;
    wait_css(&c, "#unit-commit[disabled]").await;
    c.execute(&edit("\nRestartSec=soon", ""), vec![]).await.unwrap();
    wait_text(&c, "#unit-check", |t| t == "valid").await;
    let review = wait_css(&c, "#unit-review summary").await;
    review.click().await.unwrap();
    wait_text(&c, "#unit-diff", |t| t.contains("+ExecStart=/bin/sleep 1000")).await;
    click(&c, "#unit-commit:not([disabled])").await;
    wait_text(&c, "#unit-result", |t| t.starts_with("Committed ")).await;
    home.wait_state("fresh", "running");
    assert_eq!(home.git(&["log", "-1", "--format=%s"]), "Add fresh.service");
    // An edit not committed is a draft in the home: it outlives the window and the app.
    c.execute(&edit("sleep 1000", "sleep 2000"), vec![]).await.unwrap();
    let draft = home.path().join("edit-recovery/drafts/fresh.service");
    home.wait_until("the draft kept in the home", || {
        std::fs::read_to_string(&draft).is_ok_and(|t| t.contains("sleep 2000"))
    });
    click(&c, "#unit-forget").await;
    home.wait_until("the draft forgotten", || !draft.exists());
    let pid = home.try_pid("fresh").unwrap();
    click(&c, "#unit-delete").await;
    let explain = wait_text(&c, "#unit-delete-explain", |t| !t.is_empty()).await;
    assert!(explain.contains(&format!("fresh stops (it is running, pid {pid})")), "{explain}");
    click(&c, "#unit-delete-ok").await;
    home.wait_until("fresh removed", || home.try_service("fresh").is_none());
    assert_eq!(home.git(&["log", "-1", "--format=%s"]), "Remove fresh.service");
    screenshot(&c, "units").await;
    click(&c, "#nav-services").await;
    assert_eq!(home.try_state("solo").as_deref(), Some("stopped"), "not run on this node");
    // CPU and memory sparklines, from the samples the engine took while the window looked.
    let spark = wait_css(&c, "tr[data-service='web'] .cell-mem svg.spark[data-samples]").await;
    let n: usize = spark.attr("data-samples").await.unwrap().unwrap().parse().unwrap();
    assert!(n >= 2, "{n}");
    screenshot(&c, "services-sparklines").await;
    // The window reaches only what its capability grants: a forged call of a plugin command the
    // app has (autostart) but the window is not given is refused by the IPC layer, and so is a
    // command nobody declared.
    for (command, expected) in [
        ("status", "allowed"),
        ("plugin:autostart|enable", "refused: "),
        ("plugin:notification|notify", "refused: "),
        ("no_such_command", "refused: "),
    ] {
        let refused = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 window.__TAURI_INTERNALS__.invoke(arguments[0], {}).then(() => done('allowed'), (e) => done('refused: ' + e));",
                vec![serde_json::json!(command)],
            )
            .await
            .expect("the forged call ran");
        let refused = refused.as_str().unwrap_or_default().to_string();
        assert!(refused.starts_with(expected), "{command}: {refused}");
    }
    let timer = wait_text(&c, "tr[data-timer='nightly']", |t| t.contains("report.service")).await;
    assert!(timer.contains("OnCalendar=*-*-* 03:00:00 UTC"), "{timer}");
    let next = wait_css(&c, "tr[data-timer='nightly'] td:nth-child(3)").await.text().await.unwrap();
    assert!(next.contains(':') && next.contains('-'), "the next elapse is shown: {next}");
    let web_capture = wait_css(&c, "tr[data-service='web'] button[data-action='capture']").await;
    assert_eq!(web_capture.attr("disabled").await.unwrap(), None, "web has a working directory");

    // Stop api from the page: the page and `gitvisor status` agree.
    click(&c, "tr[data-service='api'] button[data-action='stop']").await;
    wait_text(&c, "tr[data-service='api'] .cell-state", |t| t == "stopped").await;
    assert_eq!(home.try_state("api").as_deref(), Some("stopped"));
    assert_eq!(home.try_state("web").as_deref(), Some("running"));
    wait_text(&c, "tr[data-service='web'] .cell-state", |t| t == "running").await;

    // Logs: a line web prints after the page opened arrives live.
    click(&c, "tr[data-service='web'] button[data-action='logs']").await;
    wait_text(&c, "#logs-lines", |t| t.contains("web ready")).await;
    let marker = format!("hello from the test {}", std::process::id());
    std::fs::write(home.work().join("say"), format!("{marker}\n")).unwrap();
    wait_text(&c, "#logs-lines", |t| t.contains(&marker)).await;
    // Terminal colours render as styled text, and no escape character reaches the page.
    std::fs::write(
        home.work().join("say"),
        "\x1b[31mred alert\x1b[0m then \x1b[1;38;5;33mbold blue\x1b[0m plain\x1b[K\n",
    )
    .unwrap();
    let red = wait_text(&c, "#logs-lines .log-text .ansi-fg-1", |t| t == "red alert").await;
    assert_eq!(red, "red alert");
    let blue = wait_css(&c, "#logs-lines .log-text .ansi-bold").await;
    assert_eq!(blue.text().await.unwrap(), "bold blue");
    let colour = blue.css_value("color").await.unwrap();
    assert_eq!(colour, "rgb(0, 135, 255)", "xterm colour 33");
    let lines = wait_text(&c, "#logs-lines", |t| t.contains("red alert then bold blue plain")).await;
    assert!(!lines.contains('\x1b') && !lines.contains("[31m"), "{lines:?}");
    let search = wait_css(&c, "#logs-search").await;
    search.send_keys("hello from").await.unwrap();
    let shown = c.find_all(Locator::Css("#logs-lines .log-line")).await.unwrap();
    let mut visible = Vec::new();
    for l in &shown {
        if l.is_displayed().await.unwrap_or(false) {
            visible.push(l.text().await.unwrap_or_default());
        }
    }
    assert!(
        !visible.is_empty() && visible.iter().all(|t| t.contains("hello from")),
        "search filters: {visible:?}"
    );
    screenshot(&c, "logs").await;
    // Every service at once: the search runs across them, each hit named by its service.
    click(&c, "#logs-service option[value='*']").await;
    let hit = wait_text(&c, "#logs-lines .log-line:not([hidden])", |t| t.contains("hello from")).await;
    assert!(hit.contains(" web "), "the hit names its service: {hit:?}");
    let named = wait_css(&c, "#logs-lines .log-line:not([hidden]) .log-svc").await;
    assert_eq!(named.text().await.unwrap(), "web");

    // A flood of 2,000 lines a second: the page keeps at most 5,000 lines and keeps drawing
    // frames (their gaps are measured and printed, not asserted: this machine's speed is not
    // the page's property).
    search.clear().await.unwrap();
    c.execute("const s = document.getElementById('logs-search'); s.value = ''; s.dispatchEvent(new Event('input'));", vec![])
        .await
        .unwrap();
    click(&c, "#logs-service option[value='chatty']").await;
    wait_text(&c, "#logs-status", |t| t.ends_with("lines") || t.ends_with("line")).await;
    c.execute(
        "window.__gaps = []; let last = performance.now(); window.__sampling = true; \
         const f = (t) => { window.__gaps.push(t - last); last = t; if (window.__sampling) requestAnimationFrame(f); }; \
         requestAnimationFrame(f);",
        vec![],
    )
    .await
    .unwrap();
    std::fs::write(home.work().join("flood-now"), "").unwrap();
    wait_text(&c, "#logs-lines", |t| t.contains("flood done")).await;
    let measured = c
        .execute(
            "window.__sampling = false; const g = window.__gaps.slice(1).sort((a, b) => a - b); \
             return JSON.stringify({frames: g.length, p50: g[Math.floor(g.length / 2)], p95: g[Math.floor(g.length * 0.95)], \
             max: g[g.length - 1], lines: document.querySelectorAll('#logs-lines .log-line').length});",
            vec![],
        )
        .await
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(measured.as_str().unwrap()).unwrap();
    eprintln!("log flood of 6,000 lines at 2,000/s in the page: {m}");
    // The page keeps 5,000 of the 6,000 lines, and only those in view exist as rows.
    wait_text(&c, "#logs-status", |t| t == "5000 lines").await;
    assert!(m["lines"].as_u64().unwrap() < 200, "only the rows in view are drawn: {m}");
    assert!(m["frames"].as_u64().unwrap() > 0, "frames drawn during the flood: {m}");

    // A real crash: the report appears in the page (the window hears the engine's event).
    std::fs::write(home.work().join("crash-now"), "").unwrap();
    click(&c, "#nav-crashes").await;
    let row = wait_css(&c, "tr[data-crash-id]").await;
    let id = row.attr("data-crash-id").await.unwrap().expect("report id");
    assert!(id.contains("crashy"), "{id}");
    row.click().await.unwrap();
    wait_text(&c, "#crash-detail-reason", |t| t.contains("exited with status 3")).await;
    wait_text(&c, "#crash-detail-service", |t| t.contains("crashy")).await;
    screenshot(&c, "crash-report").await;
    let out = home.path().join("exported-report.tar.gz");
    let path_input = wait_css(&c, "#crash-export-path").await;
    path_input.clear().await.unwrap();
    path_input.send_keys(&out.display().to_string()).await.unwrap();
    click(&c, "#crash-export").await;
    wait_until("the export exists", || out.exists());
    wait_text(&c, "#crash-export-result", |t| t.contains(&out.display().to_string())).await;
    // The crash was also a desktop notification.
    wait_until("a notification for the crash", || {
        desktop.notifications().iter().any(|(s, _)| s == "crashy crashed")
    });
    // The crash is on crashy's last 24 hours in the services table, a marker that opens it.
    click(&c, "#crash-detail-close").await;
    click(&c, "#nav-services").await;
    let marker =
        format!("tr[data-service='crashy'] svg.timeline a.tl-report[data-report='{id}'] rect.tl-hit");
    wait_css(&c, "tr[data-service='crashy'] svg.timeline rect.tl-start").await;
    click(&c, &marker).await;
    wait_text(&c, "#crash-detail-service", |t| t.contains("crashy")).await;
    // From the report to the service's log around the exit: its last words are marked.
    click(&c, "#crash-detail-logs").await;
    wait_css(&c, "#logs-lines .log-line.log-focus").await;
    let mut focused = Vec::new();
    for f in c.find_all(Locator::Css("#logs-lines .log-line.log-focus")).await.unwrap() {
        focused.push(f.text().await.unwrap_or_default());
    }
    assert!(focused.iter().any(|t| t.contains("giving up")), "{focused:?}");
    assert!(focused.iter().all(|t| !t.contains("hello from")), "only crashy's lines: {focused:?}");

    // History: a second commit arrives while the page is open; its diff shows; rolling back
    // to the first commit (after a confirmation showing what changes) removes its unit.
    click(&c, "#nav-history").await;
    wait_text(&c, "#history-body", |t| t.contains("Create the services repository")).await;
    // Import: a Procfile previewed (nothing written), then imported in one commit that runs.
    let proj = home.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("Procfile"), "imported: sleep 1000\n").unwrap();
    let before = home.git(&["rev-parse", "HEAD"]);
    wait_css(&c, "#import-paths")
        .await
        .send_keys(&proj.join("Procfile").display().to_string())
        .await
        .unwrap();
    click(&c, "#import-preview").await;
    wait_text(&c, "#import-result", |t| t.starts_with("Preview: 1 unit")).await;
    wait_text(&c, "#import-units", |t| t.contains("imported.service") && t.contains("ExecStart=")).await;
    assert_eq!(home.git(&["rev-parse", "HEAD"]), before, "a preview writes nothing");
    click(&c, "#import-run").await;
    wait_text(&c, "#import-result", |t| t.contains("import: imported from")).await;
    home.wait_state("imported", "running");
    wait_text(&c, "#history-body", |t| t.contains("import: imported from")).await;
    // The first commit (the units' editor made newer ones above).
    let mut row = None;
    for r in c.find_all(Locator::Css("#history-body tr[data-commit]")).await.unwrap() {
        if r.text().await.unwrap_or_default().contains("Create the services repository") {
            row = Some(r);
        }
    }
    let row = row.expect("the first commit's row");
    let first = row.attr("data-commit").await.unwrap().expect("commit id");
    row.find(Locator::Css("button[data-action='diff']")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#view-history", |t| t.contains("+ExecStart=/bin/sh")).await;
    screenshot(&c, "history").await;
    home.enabled_sh_unit("extra", "while :; do sleep 1; done", "");
    home.commit_all("Add extra");
    wait_until("the engine runs extra", || home.try_state("extra").as_deref() == Some("running"));
    wait_text(&c, "#history-body", |t| t.contains("Add extra")).await;
    let newest = wait_css(&c, "#history-body tr[data-commit]").await;
    newest.find(Locator::Css("button[data-action='diff']")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#view-history", |t| t.contains("+ExecStart=/bin/sh -c 'while :; do sleep 1; done'")).await;
    click(&c, &format!("tr[data-commit='{first}'] button[data-action='rollback']")).await;
    wait_text(&c, "#confirm-diff", |t| t.contains("-ExecStart")).await;
    click(&c, "#confirm-ok").await;
    wait_until("extra is gone after the rollback", || {
        home.try_status()
            .is_some_and(|s| !s["services"].as_array().unwrap().iter().any(|x| x["name"] == "extra"))
    });
    wait_text(&c, "#rollback-result", |t| !t.trim().is_empty()).await;

    // Quit (SIGTERM works as the menu's Quit): services stop, the app exits.
    let app = home.engine_pid().expect("the app owns the home");
    unsafe { libc::kill(app as i32, libc::SIGTERM) };
    wait_until("the app exits", || !alive(app));
    assert!(!alive(web_pid), "web stopped with the app");
    let _ = c.close().await;
}
