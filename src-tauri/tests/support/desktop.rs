//! A desktop for the end-to-end tests: a virtual X display, a private D-Bus session bus, and
//! tauri-driver (WebDriver for the app's own webview, through WebKitWebDriver).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn need(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|p| p.is_file()));
    let cargo_bin = dirs_home().join(".cargo/bin").join(tool);
    found.or_else(|| cargo_bin.is_file().then_some(cargo_bin)).unwrap_or_else(|| {
        panic!("{tool} is not installed: run ./scripts/setup (it installs what the end-to-end tests need)")
    })
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

fn first_line(child: &mut Child, what: &str) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap_or_else(|e| panic!("reading {what}: {e}"));
    let line = line.trim().to_string();
    assert!(!line.is_empty(), "{what} printed nothing");
    line
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Xvfb on a display number it picks itself.
pub struct Display {
    _child: Killed,
    pub name: String,
}

impl Display {
    pub fn start() -> Display {
        let mut child = Command::new(need("Xvfb"))
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let n = first_line(&mut child, "Xvfb -displayfd");
        Display { _child: Killed(child), name: format!(":{n}") }
    }
}

/// A private session bus: what the app's tray, single-instance lock and notifications use.
pub struct Bus {
    _child: Killed,
    pub address: String,
}

impl Bus {
    pub fn start() -> Bus {
        let mut child = Command::new(need("dbus-daemon"))
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let address = first_line(&mut child, "dbus-daemon --print-address");
        Bus { _child: Killed(child), address }
    }
}

/// The environment a desktop app needs here.
pub fn desktop_env(display: &Display, bus: &Bus) -> Vec<(String, String)> {
    vec![
        ("DISPLAY".into(), display.name.clone()),
        ("DBUS_SESSION_BUS_ADDRESS".into(), bus.address.clone()),
        // Xvfb has no GPU: WebKit's compositing would render the page blank.
        ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
        ("NO_AT_BRIDGE".into(), "1".into()),
        ("GDK_BACKEND".into(), "x11".into()),
    ]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// tauri-driver on free ports, with the environment the app it launches will have.
pub struct Driver {
    _child: Killed,
    pub url: String,
}

impl Driver {
    pub fn start(env: &[(String, String)], log: PathBuf) -> Driver {
        let (port, native) = (free_port(), free_port());
        let log = std::fs::File::create(log).expect("driver log");
        let child = Command::new(need("tauri-driver"))
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .args(["--native-driver", need("WebKitWebDriver").to_str().expect("utf-8 path")])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tauri-driver");
        let child = Killed(child);
        // tauri-driver forwards a session to the native driver it started: both must listen
        // (the native one is slow to come up on a cold machine, and a session asked for before
        // fails at once).
        gitvisor_testkit::wait_until("tauri-driver and WebKitWebDriver listen", || {
            [port, native].iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        Driver { _child: child, url: format!("http://127.0.0.1:{port}") }
    }

    /// A WebDriver session: tauri-driver starts the app and drives its window.
    pub async fn session(&self, app: &str) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert("tauri:options".into(), serde_json::json!({ "application": app }));
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("WebDriver session (tauri-driver + WebKitWebDriver)")
    }
}
