//! Processes the benchmark starts, and how it is sure to end them: each supervisor runs in its
//! own process group (so a Ctrl-C at the terminal reaches only the benchmark, which then stops
//! everything in order), and every run ends with a sweep of whatever still names its directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::procfs::{self, Pid};
use crate::Result;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP set a flag that every wait of the benchmark checks.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps, waking early (with an error) on Ctrl-C.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        if interrupted() {
            return Err("interrupted".into());
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Polls `done` every `every` until it holds, the deadline passes (Ok(false)) or Ctrl-C.
pub fn wait_for(deadline: Duration, every: Duration, mut done: impl FnMut() -> bool) -> Result<bool> {
    let end = Instant::now() + deadline;
    loop {
        if done() {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        sleep(every)?;
    }
}

/// A command in its own process group, output to a log file; killed with its group on drop.
pub struct Spawned {
    child: Option<Child>,
}

impl Spawned {
    pub fn start(mut cmd: Command, log: &Path) -> Result<Spawned> {
        let out = std::fs::File::create(log)?;
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        Ok(Spawned { child: Some(child) })
    }

    pub fn pid(&self) -> Pid {
        self.child.as_ref().map(|c| c.id() as Pid).unwrap_or(0)
    }

    /// Whether it has exited (and its exit status, reaped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Sends `sig`, waits up to `grace` for the exit, then kills the whole group.
    pub fn stop(&mut self, sig: libc::c_int, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id() as Pid;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, sig) };
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                kill_group(pid);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        kill_group(pid);
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id() as Pid);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn kill_group(pgid: Pid) {
    // SAFETY: kill(2) of a process group we created (the leader's pid is the group id).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Kills (SIGKILL) every process left that belongs to the run directory, until none is left.
/// Returns how many it found on its first pass.
pub fn sweep(dir: &Path) -> usize {
    let first = procfs::pids_under(dir).len();
    for _ in 0..50 {
        let left = procfs::pids_under(dir);
        if left.is_empty() {
            break;
        }
        for pid in left {
            // SAFETY: kill(2); these processes name our private temporary directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    first
}
