//! `gitvisor daemon` on the home, started and ended by the test.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::wait::poll;
use crate::Home;

impl Home {
    /// Starts `gitvisor daemon` (logging at debug level to `daemon.log`) and waits until it
    /// answers.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// [`Home::start_daemon`] with more environment (a `PATH` with a stand-in program...).
    pub fn start_daemon_with(&mut self, env: &[(&str, &str)]) {
        self.spawn_daemon_with(env);
        self.wait_until("the daemon to answer", || {
            self.try_run(&["status", "--json"]).map(|o| o.status.success()).unwrap_or(false)
        });
    }

    /// Starts `gitvisor daemon` without waiting for it (to kill it while it starts).
    pub fn spawn_daemon_with(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join("daemon.log"))
            .expect("daemon.log");
        let child = self
            .cmd()
            .arg("daemon")
            .env("GITVISOR_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("daemon.log"))
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Some(child);
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("a daemon started by the test").id()
    }

    /// SIGTERM, then waits for the daemon to exit; returns its exit code.
    pub fn stop_daemon(&mut self) -> Option<i32> {
        let mut child = self.daemon.take()?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM the daemon");
        let exited = || child.try_wait().expect("try_wait").ok_or_else(String::new);
        poll("the daemon to exit after SIGTERM", exited, || self.daemon_log_section()).code()
    }

    /// SIGKILLs the daemon (a crash).
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            child.kill().expect("SIGKILL the daemon");
            child.wait().expect("reap the daemon");
        }
    }

    pub fn daemon_log(&self) -> String {
        self.log("daemon.log")
    }

    /// The daemon log, as the end of a failure message.
    pub(crate) fn daemon_log_section(&self) -> String {
        format!("\ndaemon log:\n{}", self.daemon_log())
    }
}
