//! The real `gitvisor` CLI on the home, and what `gitvisor status --json` says.
//!
//! Two flavours read the status. The plain ones (`status`, `service`, `state`, `pid`) panic when
//! the engine does not answer or has no such service: a test that expects an engine. The `try_`
//! ones give `None` instead: a test that looks whether an engine answers at all.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::wait::{poll, DEADLINE};
use crate::Home;

impl Home {
    /// `gitvisor` with the home's environment and no stdin. The CLI's own log filter is left at
    /// its default, so its errors stay one line.
    pub fn cmd(&self) -> Command {
        assert!(
            self.bin.exists(),
            "{} is missing: build the gitvisor binary first (cargo build --workspace)",
            self.bin.display()
        );
        let mut c = Command::new(&self.bin);
        c.envs(self.env()).env_remove("GITVISOR_LOG").stdin(Stdio::null());
        c
    }

    /// [`Home::cmd`] with `args`: for a command a test spawns or runs with more environment.
    pub fn cmd_with(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(args);
        c
    }

    /// Runs `gitvisor ARGS` to its end; one that does not end within [`DEADLINE`] (a hung
    /// engine) is killed and fails the test instead of hanging it.
    pub fn try_run(&self, args: &[&str]) -> std::io::Result<Output> {
        self.run_within(args, DEADLINE)
    }

    /// Like [`Home::try_run`] with its own bound.
    pub fn run_within(&self, args: &[&str], limit: Duration) -> std::io::Result<Output> {
        let mut child = self.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let read = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = read(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        let err = read(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gitvisor {args:?} did not finish within {limit:?}{}", self.daemon_log_section());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.try_run(args).expect("run gitvisor")
    }

    /// Runs and asserts success; returns stdout. A failure shows stdout, stderr and the daemon
    /// log.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "gitvisor {args:?} failed: {}\nstdout: {}\nstderr: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.daemon_log_section()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status json")
    }

    pub fn service(&self, name: &str) -> Value {
        let s = self.status();
        find_service(&s, name).unwrap_or_else(|| panic!("no service {name} in {s:#}"))
    }

    pub fn state(&self, name: &str) -> String {
        self.service(name)["state"].as_str().expect("state is a string").to_string()
    }

    /// The service's pid; `None` when it runs no process.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.service(name)["pid"].as_u64().map(|p| p as u32)
    }

    /// The status, or `None` when no engine answers.
    pub fn try_status(&self) -> Option<Value> {
        let o = self.run(&["status", "--json"]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).expect("status json"))
    }

    /// The service, or `None` when no engine answers or it has no such service.
    pub fn try_service(&self, name: &str) -> Option<Value> {
        find_service(&self.try_status()?, name)
    }

    pub fn try_state(&self, name: &str) -> Option<String> {
        self.try_service(name).and_then(|s| s["state"].as_str().map(String::from))
    }

    pub fn try_pid(&self, name: &str) -> Option<u32> {
        self.try_service(name).and_then(|s| s["pid"].as_u64()).map(|p| p as u32)
    }

    /// Waits until `f` gives a value; a timeout shows the daemon log.
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        poll(what, || f().ok_or_else(String::new), || self.daemon_log_section())
    }

    /// Waits until `cond` holds; a timeout shows the daemon log.
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        self.wait_for(what, || cond().then_some(()))
    }

    /// Waits until the service is in `state`; returns its status. A timeout shows the last
    /// status seen and the daemon log.
    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        poll(
            &format!("{name} to be {state}"),
            || {
                let s = self.service(name);
                if s["state"] == state {
                    Ok(s)
                } else {
                    Err(format!("{s:#}"))
                }
            },
            || self.daemon_log_section(),
        )
    }
}

fn find_service(status: &Value, name: &str) -> Option<Value> {
    status["services"].as_array()?.iter().find(|s| s["name"] == name).cloned()
}
