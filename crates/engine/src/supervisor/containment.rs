//! What holds every process of a service, so that a stop leaves nothing behind.
//!
//! The first implementation is the process group the service's main process leads (each
//! service runs in its own session): a signal to the group reaches everything the service
//! forked, except a process that left the group (`setsid`, a double fork). The second will be a
//! cgroup per service (v2 in a delegated subtree, v1 as the fallback): it also holds processes
//! that left the group, carries the resource limits (`MemoryMax=`, `CPUQuota=`, `TasksMax=`),
//! and reports OOM kills. The service task only speaks to this trait.

use super::process;

pub trait Containment: Send + Sync {
    /// Sends `signal` to every process inside; false when none received it.
    fn signal_all(&self, signal: i32) -> bool;
    /// Some process is still inside.
    fn occupied(&self) -> bool;
    /// One line for logs: `process group 1234`.
    fn describe(&self) -> String;
}

/// The process group led by a service's main process.
pub struct ProcessGroup {
    pgid: u32,
}

impl ProcessGroup {
    /// The group a service's main process `pid` leads (it was started in its own session).
    pub fn led_by(pid: u32) -> ProcessGroup {
        ProcessGroup { pgid: pid }
    }
}

impl Containment for ProcessGroup {
    fn signal_all(&self, signal: i32) -> bool {
        process::signal_group(self.pgid, signal)
    }

    fn occupied(&self) -> bool {
        process::group_alive(self.pgid)
    }

    fn describe(&self) -> String {
        format!("process group {}", self.pgid)
    }
}

/// A service with limits: its process group, and its cgroup, which also holds what left the
/// group.
pub struct Cgrouped {
    pub group: ProcessGroup,
    pub cgroup: super::cgroup::ServiceCgroup,
}

impl Containment for Cgrouped {
    fn signal_all(&self, signal: i32) -> bool {
        let group = self.group.signal_all(signal);
        self.cgroup.signal_all(signal) || group
    }

    fn occupied(&self) -> bool {
        self.group.occupied() || !self.cgroup.pids().is_empty()
    }

    fn describe(&self) -> String {
        format!("{} and {}", self.group.describe(), self.cgroup.describe())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn a_group_is_signalled_as_a_whole() {
        // A leader and a child it forked, in a group of their own.
        let mut leader = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .expect("sh");
        let group = ProcessGroup::led_by(leader.id());
        assert!(group.occupied());
        assert_eq!(group.describe(), format!("process group {}", leader.id()));
        assert!(group.signal_all(libc::SIGKILL));
        leader.wait().expect("reaped");
        // The sleeping child died too (reaped by init): the group empties.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while group.occupied() {
            assert!(std::time::Instant::now() < deadline, "the group's child survived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!group.signal_all(libc::SIGTERM));
    }
}
