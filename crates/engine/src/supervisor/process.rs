//! Kernel-level handling of service processes: exit notification through pidfd (no polling),
//! identity by pid plus start time (pids are reused), signals to whole process groups.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use gitvisor_protocol::{ExitInfo, ResourceUsage};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

/// A process this engine watches: its own child, or one adopted from an earlier engine.
pub struct Watched {
    pub pid: u32,
    pub start_time: u64,
    /// Readable once the process has exited.
    pidfd: AsyncFd<OwnedFd>,
    /// A child of this engine: its exit status can be collected.
    pub child: bool,
}

impl Watched {
    pub fn new(pid: u32, start_time: u64, child: bool) -> io::Result<Watched> {
        Watched::with_pidfd(pid, start_time, child, None)
    }

    /// With the pidfd its start made, if any (else one is opened).
    pub fn with_pidfd(pid: u32, start_time: u64, child: bool, pidfd: Option<OwnedFd>) -> io::Result<Watched> {
        let pidfd = match pidfd {
            Some(fd) => fd,
            None => pidfd_open(pid)?,
        };
        Ok(Watched { pid, start_time, pidfd: crate::logs::seqpacket::register(pidfd)?, child })
    }

    /// Waits for the exit and returns how it ended (status unknown for adopted processes).
    pub async fn exited(&self) -> ExitInfo {
        loop {
            match self.pidfd.readable().await {
                Ok(mut guard) => {
                    if let Some(exit) = self.try_collect() {
                        return exit;
                    }
                    guard.clear_ready();
                }
                Err(_) => return unknown_exit(),
            }
        }
    }

    fn try_collect(&self) -> Option<ExitInfo> {
        if !self.child {
            return Some(unknown_exit());
        }
        // wait4 rather than waitpid: the kernel also reports the CPU time and peak memory the
        // process used, which crash reports show.
        let mut status: libc::c_int = 0;
        // SAFETY: plain system call with valid pointers to locals.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(self.pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if r == 0 {
            return None;
        }
        if r < 0 {
            return Some(unknown_exit());
        }
        let tv_ms = |tv: libc::timeval| tv.tv_sec as u64 * 1000 + tv.tv_usec as u64 / 1000;
        let usage = ResourceUsage {
            cpu_ms: tv_ms(usage.ru_utime) + tv_ms(usage.ru_stime),
            max_rss_kb: usage.ru_maxrss.max(0) as u64,
        };
        let mut info = if libc::WIFEXITED(status) {
            exit_info(Some(libc::WEXITSTATUS(status)), None, false)
        } else if libc::WIFSIGNALED(status) {
            exit_info(None, Some(libc::WTERMSIG(status)), libc::WCOREDUMP(status))
        } else {
            return None;
        };
        info.usage = Some(usage);
        Some(info)
    }
}

fn exit_info(code: Option<i32>, signal: Option<i32>, core_dumped: bool) -> ExitInfo {
    ExitInfo { core_dumped, ..ExitInfo::ended(code, signal, crate::time::now_ms()) }
}

/// The end of a process whose status this engine cannot learn (it is not its parent).
pub fn unknown_exit() -> ExitInfo {
    exit_info(None, None, false)
}

/// The end of a process that ended while no engine was running.
pub fn unwatched_exit() -> ExitInfo {
    ExitInfo { unwatched: true, ..unknown_exit() }
}

pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The fields of `/proc/PID/stat` the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Exited and not yet reaped.
    pub zombie: bool,
    pub pgid: u32,
    pub session: u32,
    /// CPU time in clock ticks: user + system, with the children it reaped.
    pub ticks: u64,
    /// Clock ticks since boot.
    pub start_time: u64,
    pub rss_pages: u64,
}

/// `/proc/PID/stat` read; `None` if there is no such process.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The text of `/proc/PID/stat` read.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `f[0]` is field 3 (the state).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let state = *f.first()?;
    Some(Stat {
        zombie: state == "Z" || state == "X",
        pgid: num(2)? as u32,
        session: num(3)? as u32,
        ticks: num(11)? + num(12)? + num(13)? + num(14)?,
        start_time: num(19)?,
        rss_pages: num(21)?,
    })
}

/// The process's start time in clock ticks since boot, and whether it is a zombie.
pub fn proc_stat(pid: u32) -> Option<(u64, bool)> {
    stat(pid).map(|s| (s.start_time, s.zombie))
}

/// The session a process belongs to: a service's processes share its main process's session
/// unless they left it.
pub fn session_of(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.session)
}

/// When a process with this start time (clock ticks since boot) started, in Unix milliseconds,
/// to about a hundredth of a second: for a process adopted without a record of its start.
pub fn started_ms(start_time: u64) -> Option<u64> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let uptime_s: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    let age_ms = ((uptime_s - start_time as f64 / hz) * 1000.0).max(0.0) as u64;
    Some(crate::time::now_ms().saturating_sub(age_ms))
}

/// The process group of a process.
pub fn pgid_of(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.pgid)
}

/// The live processes of session `sid` (what a service's start left behind).
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(stat(pid), Some(s) if s.session == sid && !s.zombie))
        .collect()
}

pub fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(t, _)| t)
}

/// The same process still runs: same pid and same start time, not a zombie.
pub fn is_same_live_process(pid: u32, start_time: u64) -> bool {
    matches!(proc_stat(pid), Some((t, false)) if t == start_time)
}

/// A process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((_, false)))
}

/// Sends `signal` to one process; false when there is none.
pub fn signal_process(pid: u32, signal: i32) -> bool {
    let Ok(sig) = Signal::try_from(signal) else { return false };
    nix::sys::signal::kill(Pid::from_raw(pid as i32), sig).is_ok()
}

/// Sends `signal` to every process of the group; false when the group is empty.
pub fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(sig) = Signal::try_from(signal) else { return false };
    killpg(Pid::from_raw(pgid as i32), sig).is_ok()
}

/// Some process of the group is still alive (zombies excluded only by their reaper).
pub fn group_alive(pgid: u32) -> bool {
    nix::sys::signal::killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// Reaps a child nobody else waits for (the log keeper), without blocking anything. The caller
/// owns the returned task.
pub fn reap_in_background(pid: u32) -> Option<tokio::task::JoinHandle<()>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(handle.spawn(async move {
        if let Ok(w) = Watched::new(pid, 0, true) {
            w.exited().await;
        }
    }))
}

/// The engine's own peak resident memory (`VmHWM`), in KiB.
pub fn own_peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// Whether `kb` is above the engine's own peak resident memory. A peak never falls, so a
/// figure at or below the last one read is answered without reading `/proc/self/status` again
/// (asked at every exit: a restart loop must not pay for it).
pub fn above_own_peak(kb: u64) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static KNOWN: AtomicU64 = AtomicU64::new(0);
    if kb <= KNOWN.load(Ordering::Relaxed) {
        return false;
    }
    match own_peak_kb() {
        Some(peak) => {
            KNOWN.fetch_max(peak, Ordering::Relaxed);
            kb > peak
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_identifies_this_process() {
        let me = std::process::id();
        let t = start_time(me).expect("own stat");
        assert!(is_same_live_process(me, t));
        assert!(!is_same_live_process(me, t + 1));
        assert!(start_time(u32::MAX / 2).is_none());
    }

    #[test]
    fn a_process_session_and_group_are_read_from_proc() {
        let me = std::process::id();
        assert_eq!(session_of(me), Some(nix::unistd::getsid(None).unwrap().as_raw() as u32));
        assert_eq!(pgid_of(me), Some(nix::unistd::getpgrp().as_raw() as u32));
        assert_eq!(session_of(u32::MAX), None);
    }

    #[allow(clippy::zombie_processes)]
    #[test]
    fn a_start_time_gives_the_wall_clock_start() {
        let before = crate::time::now_ms();
        let mut child = std::process::Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let ticks = start_time(child.id()).unwrap();
        let after = crate::time::now_ms();
        let _ = child.kill();
        let _ = child.wait();
        let at = started_ms(ticks).unwrap();
        // Ticks and /proc/uptime are hundredths of a second.
        assert!(at + 50 >= before && at <= after + 50, "{before} <= {at} <= {after}");
    }

    // The Child handles are dropped on purpose: the exit is collected through the pidfd.
    #[allow(clippy::zombie_processes)]
    #[tokio::test]
    async fn exit_status_comes_from_the_kernel() {
        let child = std::process::Command::new("/bin/sh").args(["-c", "exit 7"]).spawn().unwrap();
        let w = Watched::new(child.id(), 0, true).unwrap();
        let exit = w.exited().await;
        assert_eq!(exit.code, Some(7));
        let child = std::process::Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let w = Watched::new(child.id(), 0, true).unwrap();
        nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        assert_eq!(w.exited().await.signal, Some(9));
    }
}
