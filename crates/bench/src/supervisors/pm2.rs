//! PM2: `pm2 start` of an ecosystem file with PM2_HOME in the scenario's directory. The CLI
//! launches PM2's daemon ("God Daemon"), which is the process measured; `pm2 kill` ends it.
//! `restart_delay: 0` and a huge `max_restarts` keep it restarting as fast as it can.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::{Group, Memory, Scenario, Session, Supervisor};
use crate::procfs::{self, Pid};
use crate::stamps::now_ns;
use crate::Result;

pub struct Pm2 {
    pub bin: PathBuf,
    pub stamp: PathBuf,
}

impl Pm2 {
    /// bench/node_modules/.bin/pm2 (from scripts/install-bench-anchors), else PATH.
    pub fn find(anchors: &Path, stamp: &Path) -> Option<Pm2> {
        let local = anchors.join("node_modules/.bin/pm2");
        let bin = if super::is_executable(&local) { Some(local) } else { super::which("pm2") }?;
        Some(Pm2 { bin, stamp: stamp.to_path_buf() })
    }

    fn app(&self, name: String, args: Vec<String>) -> serde_json::Value {
        json!({
            "name": name,
            "script": self.stamp,
            "args": args,
            "interpreter": "none",
            "exec_mode": "fork",
            "autorestart": true,
            "restart_delay": 0,
            "min_uptime": 0,
            "max_restarts": 1_000_000_000u64,
            "watch": false,
        })
    }
}

fn pm2(bin: &Path, home: &Path, args: &[&str], log: &Path) -> Result<()> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = Command::new(bin)
        .args(args)
        .env("PM2_HOME", home)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pm2 {args:?} failed ({status}):\n{}", super::log_tail(log)).into())
    }
}

impl Supervisor for Pm2 {
    fn version(&self) -> String {
        // `pm2 --version` would start a daemon in ~/.pm2: read the package instead.
        let real = std::fs::canonicalize(&self.bin).unwrap_or_else(|_| self.bin.clone());
        let package = real.ancestors().nth(2).map(|d| d.join("package.json"));
        let version = package
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string));
        format!("PM2 {}", version.unwrap_or_else(|| "unknown".into()))
    }

    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>> {
        let home = dir.join("pm2home");
        std::fs::create_dir_all(&home)?;
        let apps: Vec<serde_json::Value> = match scenario {
            Scenario::Restarting { file } => vec![self.app("stamp".into(), vec![file.display().to_string()])],
            Scenario::Flood { file, bytes } => {
                let mut app = self.app(
                    "flood".into(),
                    vec!["--flood".into(), bytes.to_string(), file.display().to_string()],
                );
                let logs = dir.join("logs");
                std::fs::create_dir_all(&logs)?;
                app["out_file"] = json!(logs.join("flood-out.log"));
                app["error_file"] = json!(logs.join("flood-err.log"));
                vec![app]
            }
            Scenario::Idle { dir: stamps, n } => (0..*n)
                .map(|i| {
                    let args = vec!["--idle".into(), stamps.join(i.to_string()).display().to_string()];
                    self.app(format!("idle-{i:03}"), args)
                })
                .collect(),
        };
        let eco = dir.join("ecosystem.json");
        std::fs::write(&eco, serde_json::to_vec_pretty(&json!({ "apps": apps }))?)?;
        let log = dir.join("pm2-cli.log");
        let launched = now_ns();
        let mut session = Pm2Session { bin: self.bin.clone(), home, log, launched, stopped: false };
        pm2(&self.bin, &session.home, &["start", &eco.display().to_string()], &session.log)?;
        session.check()?;
        Ok(Box::new(session))
    }
}

struct Pm2Session {
    bin: PathBuf,
    home: PathBuf,
    log: PathBuf,
    launched: u64,
    stopped: bool,
}

impl Pm2Session {
    fn god(&self) -> Option<Pid> {
        std::fs::read_to_string(self.home.join("pm2.pid")).ok()?.trim().parse().ok()
    }
}

impl Session for Pm2Session {
    fn launched_ns(&self) -> u64 {
        self.launched
    }

    fn groups(&self) -> Vec<Group> {
        let pids = self.god().into_iter().collect();
        vec![Group { role: "God daemon".into(), pids, memory: Memory::Rss }]
    }

    fn check(&mut self) -> Result<()> {
        match self.god() {
            Some(p) if procfs::alive(p) => Ok(()),
            _ => Err(format!("PM2 daemon is not running:\n{}", super::log_tail(&self.log)).into()),
        }
    }

    fn stop(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        pm2(&self.bin, &self.home, &["kill"], &self.log)
    }
}

impl Drop for Pm2Session {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
