//! A real `gitvisor daemon` in a temporary home, driven through the real CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_gitvisor");
/// Generous: CI machines are slow and shared. Tests wait for events, never for fixed times.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Home {
    pub dir: tempfile::TempDir,
    pub daemon: Option<Child>,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::Builder::new().prefix("gitvisor-test-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("services")).unwrap();
        Home { dir, daemon: None }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn services(&self) -> PathBuf {
        self.path().join("services")
    }

    /// A scratch directory for what services write.
    pub fn work(&self) -> PathBuf {
        let w = self.path().join("work");
        std::fs::create_dir_all(&w).unwrap();
        w
    }

    pub fn unit(&self, name: &str, text: &str) {
        std::fs::write(self.services().join(format!("{name}.service")), text).unwrap();
    }

    /// A unit running `sh -c SCRIPT` with extra `[Service]` lines.
    /// Runs in the home's work directory, so the test's clean-up finds what it left.
    pub fn sh_unit(&self, name: &str, script: &str, extra: &str) {
        let script = script.replace('\'', "'\\''");
        let work = self.work();
        self.unit(
            name,
            &format!(
                "[Service]\nExecStart=/bin/sh -c '{script}'\nWorkingDirectory={}\n{extra}\n",
                work.display()
            ),
        );
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("GITVISOR_HOME", self.path()).env_remove("GITVISOR_LOG");
        c
    }

    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("daemon.log"))
            .unwrap();
        let child = self
            .cmd()
            .arg("daemon")
            .env("GITVISOR_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Some(child);
        self.wait_until("the daemon answers", || {
            self.try_run(&["status", "--json"]).map(|o| o.status.success()).unwrap_or(false)
        });
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon").id()
    }

    /// SIGTERM, then wait for the daemon to exit; returns its exit code.
    pub fn stop_daemon(&mut self) -> Option<i32> {
        let mut child = self.daemon.take()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(start.elapsed() < DEADLINE, "daemon did not exit after SIGTERM\n{}", self.daemon_log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL the daemon (a crash).
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn try_run(&self, args: &[&str]) -> std::io::Result<Output> {
        self.cmd().args(args).stdin(Stdio::null()).output()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.try_run(args).expect("run gitvisor")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "gitvisor {args:?} failed: {}\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.daemon_log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status json")
    }

    pub fn service(&self, name: &str) -> Value {
        let s = self.status();
        s["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no service {name} in {s:#}"))
    }

    pub fn state(&self, name: &str) -> String {
        self.service(name)["state"].as_str().unwrap().to_string()
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.service(name)["pid"].as_u64().map(|p| p as u32)
    }

    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            last = self.service(name);
            if last["state"] == state {
                return last;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{name} never reached {state}; last: {last:#}\ndaemon log:\n{}", self.daemon_log());
    }

    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting until {what}\ndaemon log:\n{}", self.daemon_log());
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            self.stop_daemon();
        }
        // Anything a test left running in this home (an abandoned daemon's services) goes too.
        kill_processes_in(self.path());
    }
}

/// Kills processes whose command line or working directory is in this home (services of a test
/// whose daemon was SIGKILLed and never replaced, and its log keeper).
fn kill_processes_in(home: &Path) {
    let needle = home.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.starts_with(home) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

pub fn alive(pid: u32) -> bool {
    // A zombie is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

pub fn wait_dead(pid: u32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < DEADLINE, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(start.elapsed() < DEADLINE, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}
