//! gitvisor: `gitvisor daemon` with GITVISOR_HOME in the scenario's directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{log_tail, Group, Memory, Scenario, Session, Supervisor};
use crate::process::Spawned;
use crate::procfs::{self, Pid};
use crate::stamps::now_ns;
use crate::Result;

pub struct Gitvisor {
    pub bin: PathBuf,
    pub stamp: PathBuf,
}

impl Gitvisor {
    /// An enabled unit running `exec`, with `extra` lines in its [Service] section.
    pub fn unit(&self, exec: &str, extra: &str) -> String {
        format!("[Service]\nExecStart={exec}\n{extra}\n[Install]\nWantedBy=default.target\n")
    }

    /// Launches a daemon on a home whose units are already written.
    pub fn launch_home(&self, home: &Path) -> Result<GitvisorSession> {
        let log = home.join("daemon.log");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("daemon").env("GITVISOR_HOME", home).env_remove("GITVISOR_LOG");
        let launched = now_ns();
        let daemon = Spawned::start(cmd, &log)?;
        Ok(GitvisorSession { daemon, log, launched })
    }

    /// A layered dependency graph: `layers` layers of `width` units; with `with_deps`, each unit of a
    /// layer after the first Requires= and is After= three units of the layer before it.
    pub fn write_graph(
        &self,
        home: &Path,
        stamps: &Path,
        layers: usize,
        width: usize,
        with_deps: bool,
    ) -> Result<()> {
        let services = home.join("services");
        std::fs::create_dir_all(&services)?;
        for layer in 0..layers {
            for i in 0..width {
                let mut deps = String::new();
                if with_deps && layer > 0 {
                    let names: Vec<String> =
                        [i, (i + 17) % width, (i + 33) % width].iter().map(|j| name(layer - 1, *j)).collect();
                    let list: Vec<String> = names.iter().map(|n| format!("{n}.service")).collect();
                    let _ = write!(deps, "[Unit]\nRequires={0}\nAfter={0}\n", list.join(" "));
                }
                let n = name(layer, i);
                let exec = format!("{} --idle {}", self.stamp.display(), stamps.join(&n).display());
                std::fs::write(
                    services.join(format!("{n}.service")),
                    format!("{deps}{}", self.unit(&exec, "")),
                )?;
            }
        }
        Ok(())
    }
}

/// Unit (and stamp file) name of the i-th unit of a layer; `layer_of` reads the layer back.
fn name(layer: usize, i: usize) -> String {
    format!("g{layer:02}-{i:03}")
}

pub fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix('g')?.split('-').next()?.parse().ok()
}

impl Supervisor for Gitvisor {
    fn version(&self) -> String {
        super::first_line_of(Command::new(&self.bin).arg("--version"))
    }

    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>> {
        let services = dir.join("services");
        std::fs::create_dir_all(&services)?;
        match scenario {
            Scenario::Restarting { file } => {
                let exec = format!("{} {}", self.stamp.display(), file.display());
                let unit = self.unit(&exec, "Restart=always\nRestartSec=0\nStartLimitIntervalSec=0");
                std::fs::write(services.join("stamp.service"), unit)?;
            }
            Scenario::Flood { file, bytes } => {
                let exec = format!("{} --flood {bytes} {}", self.stamp.display(), file.display());
                std::fs::write(services.join("flood.service"), self.unit(&exec, ""))?;
                // No rotation within the flood: the whole output stays in logs/flood.log.
                std::fs::write(dir.join("config.toml"), "[logs]\nmax_file_size = \"16G\"\n")?;
            }
            Scenario::Idle { dir: stamps, n } => {
                for i in 0..*n {
                    let exec =
                        format!("{} --idle {}", self.stamp.display(), stamps.join(i.to_string()).display());
                    std::fs::write(services.join(format!("idle-{i:03}.service")), self.unit(&exec, ""))?;
                }
            }
        }
        Ok(Box::new(self.launch_home(dir)?))
    }
}

pub struct GitvisorSession {
    daemon: Spawned,
    log: PathBuf,
    launched: u64,
}

impl GitvisorSession {
    /// The log keeper: the daemon's child running `__log-keeper`.
    pub fn keeper(&self) -> Option<Pid> {
        procfs::children(self.daemon.pid()).into_iter().find(|&p| procfs::cmdline(p).contains("__log-keeper"))
    }

    pub fn daemon_pid(&self) -> Pid {
        self.daemon.pid()
    }
}

impl Session for GitvisorSession {
    fn launched_ns(&self) -> u64 {
        self.launched
    }

    fn groups(&self) -> Vec<Group> {
        let mut groups =
            vec![Group { role: "daemon".into(), pids: vec![self.daemon.pid()], memory: Memory::Rss }];
        if let Some(k) = self.keeper() {
            groups.push(Group { role: "log keeper".into(), pids: vec![k], memory: Memory::Rss });
        }
        groups
    }

    fn check(&mut self) -> Result<()> {
        match self.daemon.exited() {
            Some(status) => {
                Err(format!("gitvisor daemon exited ({status}):\n{}", log_tail(&self.log)).into())
            }
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> Result<()> {
        match self.daemon.stop(libc::SIGTERM, Duration::from_secs(20)) {
            Some(s) if s.success() => Ok(()),
            other => Err(format!("gitvisor daemon did not exit 0 on SIGTERM: {other:?}").into()),
        }
    }
}
