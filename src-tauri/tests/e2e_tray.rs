//! The tray end to end: the real app binary on a virtual display, its StatusNotifierItem and
//! menu read and clicked over a private D-Bus session bus, as a desktop's tray host would.

mod support;

use std::process::{Child, Command, Stdio};

use gitvisor_testkit::{alive, wait_for, wait_line, wait_until, Home, DEADLINE};
use support::desktop::{desktop_env, Bus, Display};
use support::tray_bus::{Desktop, Node};
use support::xwindows::X;
use support::TRAY_BIN;

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A desktop for one test: a virtual display, a private bus with the watcher and the
/// notification server, and the environment an app needs on them and on `home`.
struct Session {
    display: Display,
    _bus: Bus,
    desktop: Desktop,
    env: Vec<(String, String)>,
}

async fn session(home: &Home) -> Session {
    let display = Display::start();
    let bus = Bus::start();
    let desktop = Desktop::serve(&bus.address).await;
    let mut env = home.env();
    env.extend(desktop_env(&display, &bus));
    Session { display, _bus: bus, desktop, env }
}

fn launch(home: &Home, env: &[(String, String)], args: &[&str], log: &str) -> App {
    let log = std::fs::File::create(home.path().join(log)).unwrap();
    App(Command::new(TRAY_BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start gitvisor-tray"))
}

/// Waits for a menu for which `f` gives a value; says what the menu was if it never does.
async fn wait_menu<T>(desktop: &Desktop, home: &Home, what: &str, f: impl Fn(&Node) -> Option<T>) -> T {
    let start = std::time::Instant::now();
    let mut last = None;
    while start.elapsed() < DEADLINE {
        if let Ok(menu) = desktop.layout().await {
            if let Some(v) = f(&menu) {
                return v;
            }
            last = Some(menu.labels());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the tray menu never showed {what}; last menu: {last:?}\napp log:\n{}", home.log("app.log"));
}

fn submenu<'a>(menu: &'a Node, prefix: &str) -> Option<&'a Node> {
    menu.children.iter().find(|n| n.label.starts_with(prefix))
}

fn child<'a>(node: &'a Node, label: &str) -> &'a Node {
    node.children
        .iter()
        .find(|n| n.label == label)
        .unwrap_or_else(|| panic!("no {label:?} in {:?}", node.labels()))
}

fn top<'a>(menu: &'a Node, prefix: &str) -> &'a Node {
    menu.children
        .iter()
        .find(|n| n.label.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {:?}", menu.labels()))
}

/// The XDG autostart entry the app writes (one per home: its name carries the home's key).
fn wait_for_entry(home: &Home) -> std::path::PathBuf {
    let dir = home.path().join("user/.config/autostart");
    wait_for("an autostart entry", || {
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "desktop"))
    })
}

fn wait_exit(app: &mut App) -> std::process::ExitStatus {
    gitvisor_testkit::wait_exit(&mut app.0, "the app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_menu_drives_the_services_and_quit_stops_them() {
    let home = support::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    home.enabled_sh_unit("api", "while :; do sleep 1; done", "");
    let Session { desktop, env, .. } = &session(&home).await;
    let mut app = launch(&home, env, &["--hidden"], "app.log");

    wait_until("the app's tray registers with the watcher", || desktop.item().is_some());
    let menu = wait_menu(desktop, &home, "two running services", |m| {
        (m.children.first()?.label == "gitvisor: 2 running").then(|| m.clone())
    })
    .await;
    assert!(!menu.children[0].enabled, "the header is disabled");
    for label in ["Open gitvisor", "Crash reports", "Sync now", "Start at login", "Quit"] {
        top(&menu, label);
    }
    let web = submenu(&menu, "web: running (pid ").expect("web's submenu");
    let old_pid = home.try_pid("web").expect("web runs, says the CLI");
    assert_eq!(web.label, format!("web: running (pid {old_pid})"));
    let labels: Vec<&str> = web.children.iter().map(|n| n.label.as_str()).collect();
    assert_eq!(labels, ["Start", "Stop", "Restart", "Show logs"]);
    assert!(!child(web, "Start").enabled && child(web, "Stop").enabled);

    // Restart from the menu: a new process, and the menu follows without being reopened.
    desktop.click(child(web, "Restart").id).await.expect("click Restart");
    let new_pid = {
        let mut pid = None;
        wait_until("web has a new pid", || {
            pid = home.try_pid("web").filter(|p| *p != old_pid);
            pid.is_some()
        });
        pid.unwrap()
    };
    assert!(!alive(old_pid), "the old process is gone");
    wait_menu(desktop, &home, "web's new pid", |m| {
        submenu(m, &format!("web: running (pid {new_pid})")).map(|_| ())
    })
    .await;

    // Stop from the menu: the header counts follow, Start becomes the only action.
    let menu = desktop.layout().await.unwrap();
    let api = submenu(&menu, "api: running").expect("api's submenu");
    desktop.click(child(api, "Stop").id).await.expect("click Stop");
    let menu = wait_menu(desktop, &home, "api stopped", |m| {
        (m.children.first()?.label == "gitvisor: 1 running, 1 stopped").then(|| m.clone())
    })
    .await;
    let api = submenu(&menu, "api: stopped").expect("api stopped in the menu");
    assert!(child(api, "Start").enabled && !child(api, "Stop").enabled && !child(api, "Restart").enabled);
    assert_eq!(home.try_state("api").as_deref(), Some("stopped"), "the CLI agrees");

    // Start at login, a check item: an XDG autostart entry that starts the app hidden.
    desktop.click(top(&menu, "Start at login").id).await.unwrap();
    let entry = wait_for_entry(&home);
    // The plugin writes the file in place: wait for its whole text.
    let text = wait_for("the entry's Exec line", || {
        std::fs::read_to_string(&entry).ok().filter(|t| t.contains("Terminal="))
    });
    let exec = text.lines().find(|l| l.starts_with("Exec=")).unwrap_or_default();
    assert!(exec.contains("gitvisor-tray --hidden --home"), "{text}");
    wait_menu(desktop, &home, "Start at login checked", |m| {
        (top(m, "Start at login").toggle_state == Some(1)).then_some(())
    })
    .await;
    desktop.click(top(&menu, "Start at login").id).await.unwrap();
    wait_until("the autostart entry is gone", || !entry.exists());

    // A second launch on the same home hands over to the first and exits 0.
    let mut second = launch(&home, env, &[], "second.log");
    let status = wait_exit(&mut second);
    assert!(status.success(), "second instance: {status}\n{}", home.log("second.log"));
    assert!(app.0.try_wait().unwrap().is_none(), "the first instance still runs");

    // Quit: every service stopped, the app exits 0.
    let menu = desktop.layout().await.unwrap();
    desktop.click(top(&menu, "Quit").id).await.expect("click Quit");
    let status = wait_exit(&mut app);
    assert!(status.success(), "quit exits 0: {status}\n{}", home.log("app.log"));
    assert!(!alive(new_pid), "web was stopped");
    assert!(home.try_status().is_none(), "no engine owns the home any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_to_a_daemon_the_tray_drives_it_and_quit_leaves_it_running() {
    let mut home = support::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    home.start_daemon();
    wait_until("the daemon runs web", || home.try_state("web").as_deref() == Some("running"));
    let Session { desktop, env, .. } = &session(&home).await;
    let mut app = launch(&home, env, &["--hidden"], "app.log");
    wait_until("the tray registers", || desktop.item().is_some());
    let menu =
        wait_menu(desktop, &home, "the daemon's service", |m| submenu(m, "web: running").map(|_| m.clone()))
            .await;
    assert!(home.log("app.log").contains("attaching"), "{}", home.log("app.log"));
    let web = submenu(&menu, "web: running").unwrap();
    desktop.click(child(web, "Stop").id).await.unwrap();
    wait_until("the daemon stopped web", || home.try_state("web").as_deref() == Some("stopped"));
    // The tray hears the daemon's events: its menu follows.
    let menu =
        wait_menu(desktop, &home, "web stopped", |m| submenu(m, "web: stopped").map(|_| m.clone())).await;
    desktop.click(top(&menu, "Quit").id).await.unwrap();
    let status = wait_exit(&mut app);
    assert!(status.success(), "{status}\n{}", home.log("app.log"));
    assert!(alive(home.daemon_pid()), "the daemon still runs");
    assert_eq!(home.try_state("web").as_deref(), Some("stopped"), "and still answers");
    assert_eq!(home.stop_daemon(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_tray_whose_daemon_died_offers_to_start_the_engine_here() {
    let mut home = support::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    home.start_daemon();
    let pid = wait_for("the daemon runs web", || home.try_pid("web"));
    let Session { desktop, env, .. } = &session(&home).await;
    let mut app = launch(&home, env, &["--hidden"], "app.log");
    wait_until("the tray registers", || desktop.item().is_some());
    wait_menu(desktop, &home, "the daemon's service", |m| submenu(m, "web: running").map(|_| ())).await;
    home.kill_daemon();
    let offer = wait_menu(desktop, &home, "the offer to run the engine here", |m| {
        m.children.iter().find(|n| n.label == "Start the engine here").map(|n| n.id)
    })
    .await;
    desktop.click(offer).await.unwrap();
    // The app owns the home now and adopted the daemon's service: the same process runs.
    wait_until("the app owns the home", || home.engine_pid() == Some(app.0.id()));
    let label = format!("web: running (pid {pid})");
    let menu =
        wait_menu(desktop, &home, "the adopted service", |m| submenu(m, &label).map(|_| m.clone())).await;
    assert!(menu.children.iter().all(|n| n.label != "Start the engine here"), "{:?}", menu.labels());
    assert_eq!(home.try_pid("web"), Some(pid), "the CLI reaches the app's engine");
    // Owning it now, Quit stops the services.
    desktop.click(top(&menu, "Quit").id).await.unwrap();
    assert!(wait_exit(&mut app).success(), "{}", home.log("app.log"));
    wait_until("web stopped with the app", || !alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_window_leaves_the_app_in_the_tray_and_the_menu_reopens_it() {
    let home = support::home();
    home.enabled_sh_unit("web", "while :; do sleep 1; done", "");
    let Session { display, desktop, env, .. } = &session(&home).await;
    // Started without --hidden: the window opens.
    let mut app = launch(&home, env, &[], "app.log");
    let x = X::open(&display.name);
    let window = wait_for("the window", || x.shown("gitvisor").first().copied());
    wait_until("the tray registers", || desktop.item().is_some());

    // Closed as a window manager closes it: gone from the screen, the app and services stay.
    x.request_close(window);
    wait_until("the window is gone", || x.shown("gitvisor").is_empty());
    wait_line(&home.path().join("app.log"), |l| l.contains("window closed"));
    wait_until("web runs, says the CLI", || home.try_state("web").as_deref() == Some("running"));
    assert!(app.0.try_wait().unwrap().is_none(), "closing the window does not quit\n{}", home.log("app.log"));

    // Open gitvisor in the tray menu creates it again.
    let menu = desktop.layout().await.unwrap();
    desktop.click(top(&menu, "Open gitvisor").id).await.unwrap();
    let window = wait_for("the window again", || x.shown("gitvisor").first().copied());

    // A second launch shows the first one's window (closed again first) and exits 0.
    x.request_close(window);
    wait_until("the window is gone again", || x.shown("gitvisor").is_empty());
    let mut second = launch(&home, env, &[], "second.log");
    assert!(wait_exit(&mut second).success(), "{}", home.log("second.log"));
    wait_for("the first app's window", || x.shown("gitvisor").first().copied());
    assert!(app.0.try_wait().unwrap().is_none());

    let menu = desktop.layout().await.unwrap();
    desktop.click(top(&menu, "Quit").id).await.unwrap();
    assert!(wait_exit(&mut app).success(), "{}", home.log("app.log"));
}
