//! runit: `runsvdir` on a directory of 100 service directories (one `runsv` each), or a single
//! `runsv` for the restart figure. Each `run` script is `#!/bin/sh` + `exec` of the service, as
//! runit expects; runsv waits 1 s before restarting a service that ran for less than 1 s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{run_script as service, sh_quote, supervision_tree, Group, Scenario, Session, Supervisor};
use crate::process::Spawned;
use crate::procfs;
use crate::stamps::now_ns;
use crate::Result;

pub struct Runit {
    pub runsv: PathBuf,
    pub runsvdir: PathBuf,
    pub stamp: PathBuf,
}

impl Runit {
    pub fn find(stamp: &Path) -> Option<Runit> {
        Some(Runit {
            runsv: super::which("runsv")?,
            runsvdir: super::which("runsvdir")?,
            stamp: stamp.to_path_buf(),
        })
    }
}

impl Supervisor for Runit {
    fn version(&self) -> String {
        let out = Command::new("dpkg-query").args(["-W", "-f=${Version}", "runit"]).output();
        out.ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| format!("runit {v}"))
            .unwrap_or_else(|| "runit".into())
    }

    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>> {
        let mut cmd;
        let single;
        match scenario {
            Scenario::Restarting { file } => {
                let svc = dir.join("stamp");
                service(&svc, &format!("{} {}", sh_quote(&self.stamp), sh_quote(file)))?;
                cmd = Command::new(&self.runsv);
                cmd.arg(&svc);
                single = true;
            }
            Scenario::Flood { .. } => {
                return Err("not measured: runit logs through a separate svlogd service per service".into())
            }
            Scenario::Idle { dir: stamps, n } => {
                let sv = dir.join("sv");
                for i in 0..*n {
                    let exec =
                        format!("{} --idle {}", sh_quote(&self.stamp), sh_quote(&stamps.join(i.to_string())));
                    service(&sv.join(format!("idle-{i:03}")), &exec)?;
                }
                // runsvdir waits a second before trusting a directory modified in the current
                // second; configuration is normally written long before the supervisor starts.
                let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
                std::fs::File::open(&sv)?.set_modified(an_hour_ago)?;
                cmd = Command::new(&self.runsvdir);
                cmd.arg(&sv);
                single = false;
            }
        }
        cmd.current_dir(dir);
        let launched = now_ns();
        let proc = Spawned::start(cmd, &dir.join("runit.log"))?;
        Ok(Box::new(RunitSession { proc, launched, single }))
    }
}

struct RunitSession {
    proc: Spawned,
    launched: u64,
    single: bool,
}

impl Session for RunitSession {
    fn launched_ns(&self) -> u64 {
        self.launched
    }

    fn groups(&self) -> Vec<Group> {
        let role = if self.single { "runsv" } else { "runsvdir + runsv" };
        supervision_tree(self.proc.pid(), self.single, role)
    }

    fn check(&mut self) -> Result<()> {
        match self.proc.exited() {
            Some(s) => Err(format!("runit exited ({s})").into()),
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> Result<()> {
        // runsvdir: HUP makes it TERM every runsv (each stops its service and exits), then exit.
        // runsv: TERM stops the service and exits.
        let runsvs = if self.single { Vec::new() } else { procfs::children(self.proc.pid()) };
        let sig = if self.single { libc::SIGTERM } else { libc::SIGHUP };
        self.proc.stop(sig, Duration::from_secs(10));
        crate::process::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            runsvs.iter().all(|&p| !procfs::alive(p))
        })?;
        Ok(())
    }
}
