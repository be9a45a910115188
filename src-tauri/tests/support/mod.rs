//! What the tray app's tests run against: a real home with real services, the real `gitvisor`
//! CLI, and for the end-to-end tests a virtual display (Xvfb), a private D-Bus session bus, a
//! minimal StatusNotifierWatcher (where the app's tray registers) and tauri-driver.
#![allow(dead_code)]

pub mod desktop;
pub mod tray_bus;
pub mod xwindows;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: CI machines are slow and shared. Tests wait for events, never for fixed times.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub const TRAY_BIN: &str = env!("CARGO_BIN_EXE_gitvisor-tray");

/// The cargo target profile directory this test runs from (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The `gitvisor` CLI built beside this test (the workspace's test build builds it).
pub fn cli_bin() -> PathBuf {
    let p = profile_dir().join("gitvisor");
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace, or ./scripts/test)",
        p.display()
    );
    p
}

/// Where the end-to-end tests keep their screenshots (test artifacts, not committed).
pub fn artifacts_dir() -> PathBuf {
    let d = profile_dir().parent().expect("target").join("e2e-artifacts");
    std::fs::create_dir_all(&d).expect("artifacts dir");
    d
}

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::Builder::new().prefix("gitvisor-tray-test-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("services")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn work(&self) -> PathBuf {
        self.path().join("work")
    }

    /// An enabled unit running `sh -c SCRIPT` in the home's work directory, with `extra`
    /// lines in `[Service]`. Written before the first start, it is in the first commit (the
    /// engine commits what it finds when it creates the repository).
    pub fn sh_unit(&self, name: &str, script: &str, extra: &str) {
        let script = script.replace('\'', "'\\''");
        std::fs::write(
            self.path().join("services").join(format!("{name}.service")),
            format!(
                "[Unit]\nDescription={name} of the test\n[Service]\nExecStart=/bin/sh -c '{script}'\nWorkingDirectory={}\n{extra}\n[Install]\nWantedBy=default.target\n",
                self.work().display()
            ),
        )
        .unwrap();
    }

    /// Commits a unit file written after the first start (with the git binary, as a user would).
    pub fn commit_unit(&self, name: &str, message: &str) {
        let file = format!("{name}.service");
        for args in [vec!["add", file.as_str()], vec!["commit", "-q", "-m", message]] {
            let o = Command::new("git")
                .arg("-C")
                .arg(self.path().join("services"))
                .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
                .args(&args)
                .output()
                .expect("git");
            assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }

    /// Environment of every process of a test: this home, and no user-level side effects.
    pub fn env(&self) -> Vec<(String, String)> {
        let xdg = self.path().join("xdg");
        std::fs::create_dir_all(xdg.join("config")).unwrap();
        std::fs::create_dir_all(xdg.join("data")).unwrap();
        std::fs::create_dir_all(self.path().join("user")).unwrap();
        vec![
            ("GITVISOR_HOME".into(), self.path().display().to_string()),
            // The autostart entry goes to $HOME/.config/autostart whatever XDG_CONFIG_HOME says.
            ("HOME".into(), self.path().join("user").display().to_string()),
            ("XDG_CONFIG_HOME".into(), xdg.join("config").display().to_string()),
            ("XDG_DATA_HOME".into(), xdg.join("data").display().to_string()),
            // GITVISOR_TEST_LOG=debug shows more in the app logs a failing test prints.
            ("GITVISOR_LOG".into(), std::env::var("GITVISOR_TEST_LOG").unwrap_or_else(|_| "info".into())),
        ]
    }

    pub fn cli(&self) -> Command {
        let mut c = Command::new(cli_bin());
        c.envs(self.env()).stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cli().args(args).output().expect("run gitvisor")
    }

    pub fn status(&self) -> Option<Value> {
        let o = self.run(&["status", "--json"]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).expect("status json"))
    }

    pub fn service(&self, name: &str) -> Option<Value> {
        self.status()?["services"].as_array()?.iter().find(|s| s["name"] == name).cloned()
    }

    pub fn state(&self, name: &str) -> Option<String> {
        self.service(name).and_then(|s| s["state"].as_str().map(String::from))
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.service(name).and_then(|s| s["pid"].as_u64()).map(|p| p as u32)
    }

    /// The pid of the engine owning the home (from its lock file).
    pub fn engine_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path().join("engine.lock")).ok()?.trim().parse().ok()
    }

    pub fn log(&self, file: &str) -> String {
        std::fs::read_to_string(self.path().join(file)).unwrap_or_default()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        kill_processes_in(self.path());
        // GITVISOR_TEST_KEEP=1 keeps the home (logs, reports) of a test to look at it.
        if std::env::var_os("GITVISOR_TEST_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            eprintln!("kept {}", dir.keep().display());
        }
    }
}

/// Waits until `cond` holds; panics naming `what` after the deadline.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out waiting until {what}");
}

/// Waits until `f` gives a value.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out waiting for {what}");
}

pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Kills what a test left running in its home (services, log keeper, app).
pub fn kill_processes_in(home: &Path) {
    let needle = home.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let in_home = String::from_utf8_lossy(&cmdline).contains(&needle)
            || cwd.starts_with(home)
            || String::from_utf8_lossy(&environ).contains(&format!("GITVISOR_HOME={needle}\0"));
        if in_home {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
