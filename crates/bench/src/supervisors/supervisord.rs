//! supervisord, run in the foreground (`-n`) on a configuration in the scenario's directory.
//! `startsecs=0` and `autorestart=true` give its smallest restart delay; its main loop still
//! only looks at exited children about once a second.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{log_tail, Group, Memory, Scenario, Session, Supervisor};
use crate::process::Spawned;
use crate::stamps::now_ns;
use crate::Result;

pub struct Supervisord {
    pub bin: PathBuf,
    pub stamp: PathBuf,
}

impl Supervisord {
    /// bench/venv/bin/supervisord (from scripts/install-bench-anchors), else PATH.
    pub fn find(anchors: &Path, stamp: &Path) -> Option<Supervisord> {
        let local = anchors.join("venv/bin/supervisord");
        let bin = if super::is_executable(&local) { Some(local) } else { super::which("supervisord") }?;
        Some(Supervisord { bin, stamp: stamp.to_path_buf() })
    }
}

/// `%` is supervisord's interpolation character.
fn esc(p: &Path) -> String {
    p.display().to_string().replace('%', "%%")
}

impl Supervisor for Supervisord {
    fn version(&self) -> String {
        super::first_line_of(Command::new(&self.bin).arg("--version"))
    }

    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut conf = format!(
            "[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
             childlogdir={l}\n\n[unix_http_server]\nfile={d}/supervisor.sock\n\n",
            d = esc(dir),
            l = esc(&logs)
        );
        match scenario {
            Scenario::Restarting { file } => conf.push_str(&format!(
                "[program:stamp]\ncommand={} {}\nautorestart=true\nstartsecs=0\nstartretries=1000000\n",
                esc(&self.stamp),
                esc(file)
            )),
            Scenario::Flood { file, bytes } => conf.push_str(&format!(
                "[program:flood]\ncommand={} --flood {bytes} {}\nautorestart=true\nstartsecs=0\n\
                 stdout_logfile={}/flood.log\nstdout_logfile_maxbytes=0\nredirect_stderr=true\n",
                esc(&self.stamp),
                esc(file),
                esc(&logs)
            )),
            Scenario::Idle { dir: stamps, n } => conf.push_str(&format!(
                "[program:idle]\ncommand={} --idle {}/%(process_num)d\nnumprocs={n}\n\
                 process_name=%(program_name)s-%(process_num)03d\nautorestart=true\nstartsecs=0\n",
                esc(&self.stamp),
                esc(stamps)
            )),
        }
        let path = dir.join("supervisord.conf");
        std::fs::write(&path, conf)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-n").arg("-c").arg(&path).current_dir(dir);
        let log = dir.join("stdout.log");
        let launched = now_ns();
        let proc = Spawned::start(cmd, &log)?;
        Ok(Box::new(SupervisordSession { proc, log, launched }))
    }
}

struct SupervisordSession {
    proc: Spawned,
    log: PathBuf,
    launched: u64,
}

impl Session for SupervisordSession {
    fn launched_ns(&self) -> u64 {
        self.launched
    }

    fn groups(&self) -> Vec<Group> {
        vec![Group { role: "supervisord".into(), pids: vec![self.proc.pid()], memory: Memory::Rss }]
    }

    fn check(&mut self) -> Result<()> {
        match self.proc.exited() {
            Some(s) => Err(format!("supervisord exited ({s}):\n{}", log_tail(&self.log)).into()),
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> Result<()> {
        self.proc.stop(libc::SIGTERM, Duration::from_secs(20));
        Ok(())
    }
}
