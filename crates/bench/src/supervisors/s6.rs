//! s6: `s6-svscan` on a scan directory of 100 service directories (one `s6-supervise` each), or
//! a single `s6-supervise` for the restart figure. Each `run` script is `#!/bin/sh` + `exec` of
//! the service; s6-supervise waits at least a second between two launches of a service.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{run_script, sh_quote, supervision_tree, Group, Scenario, Session, Supervisor};
use crate::process::Spawned;
use crate::procfs;
use crate::stamps::now_ns;
use crate::Result;

pub struct S6 {
    pub supervise: PathBuf,
    pub svscan: PathBuf,
    pub svscanctl: PathBuf,
    pub svc: PathBuf,
    pub stamp: PathBuf,
}

impl S6 {
    pub fn find(stamp: &Path) -> Option<S6> {
        Some(S6 {
            supervise: super::which("s6-supervise")?,
            svscan: super::which("s6-svscan")?,
            svscanctl: super::which("s6-svscanctl")?,
            svc: super::which("s6-svc")?,
            stamp: stamp.to_path_buf(),
        })
    }
}

impl Supervisor for S6 {
    fn version(&self) -> String {
        let out = Command::new("dpkg-query").args(["-W", "-f=${Version}", "s6"]).output();
        out.ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| format!("s6 {v}"))
            .unwrap_or_else(|| "s6".into())
    }

    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>> {
        let (mut cmd, target, single) = match scenario {
            Scenario::Restarting { file } => {
                let svc = dir.join("stamp");
                run_script(&svc, &format!("{} {}", sh_quote(&self.stamp), sh_quote(file)))?;
                let mut cmd = Command::new(&self.supervise);
                cmd.arg(&svc);
                (cmd, svc, true)
            }
            Scenario::Idle { dir: stamps, n } => {
                let scan = dir.join("scan");
                for i in 0..*n {
                    let exec =
                        format!("{} --idle {}", sh_quote(&self.stamp), sh_quote(&stamps.join(i.to_string())));
                    run_script(&scan.join(format!("idle-{i:03}")), &exec)?;
                }
                let mut cmd = Command::new(&self.svscan);
                cmd.arg(&scan);
                (cmd, scan, false)
            }
            Scenario::Flood { .. } => {
                return Err("not measured: s6 logs through a separate s6-log service per service".into())
            }
        };
        cmd.current_dir(dir);
        let launched = now_ns();
        let proc = Spawned::start(cmd, &dir.join("s6.log"))?;
        Ok(Box::new(S6Session {
            proc,
            launched,
            single,
            target,
            svscanctl: self.svscanctl.clone(),
            svc: self.svc.clone(),
        }))
    }
}

struct S6Session {
    proc: Spawned,
    launched: u64,
    single: bool,
    /// The service directory (single) or the scan directory.
    target: PathBuf,
    svscanctl: PathBuf,
    svc: PathBuf,
}

impl Session for S6Session {
    fn launched_ns(&self) -> u64 {
        self.launched
    }

    fn groups(&self) -> Vec<Group> {
        let role = if self.single { "s6-supervise" } else { "s6-svscan + s6-supervise" };
        supervision_tree(self.proc.pid(), self.single, role)
    }

    fn check(&mut self) -> Result<()> {
        match self.proc.exited() {
            Some(s) => Err(format!("s6 exited ({s})").into()),
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> Result<()> {
        // s6-svscanctl -t: every s6-supervise gets SIGTERM (brings its service down and exits),
        // then s6-svscan exits. s6-svc -xd: the service down, then s6-supervise exits.
        let (prog, args) = if self.single { (&self.svc, "-xd") } else { (&self.svscanctl, "-t") };
        let asked = Command::new(prog)
            .arg(args)
            .arg(&self.target)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let supervisors = if self.single { Vec::new() } else { procfs::children(self.proc.pid()) };
        let ended = crate::process::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            self.proc.exited().is_some() && supervisors.iter().all(|&p| !procfs::alive(p))
        })?;
        if !ended {
            self.proc.stop(libc::SIGKILL, Duration::from_secs(2));
            return Err(format!("s6 did not stop on {} {args} ({asked:?})", prog.display()).into());
        }
        Ok(())
    }
}
