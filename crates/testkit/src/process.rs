//! Processes, as `/proc` shows them.

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Whether the process `pid` runs. A zombie does not: it has exited and waits to be reaped.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// SIGKILLs every process that belongs to the home at `home`: its command line names the home,
/// its working directory is in it, or its environment has `GITVISOR_HOME=<home>`. That is what a
/// test leaves behind when its engine was SIGKILLed and never replaced: services, the log
/// keeper, an app. The calling process is spared.
pub fn kill_processes_in(home: &Path) {
    let needle = home.to_string_lossy().into_owned();
    let in_env = format!("GITVISOR_HOME={needle}\0");
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let in_home = String::from_utf8_lossy(&cmdline).contains(&needle)
            || cwd.starts_with(home)
            || String::from_utf8_lossy(&environ).contains(&in_env);
        if in_home {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive_and_this_process_is() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        // Not reaped yet: a zombie once it has exited.
        crate::wait_until("true to exit", || !alive(child.id()));
        child.wait().unwrap();
        assert!(!alive(child.id()));
    }

    #[test]
    fn processes_working_in_a_home_are_killed() {
        let home = tempfile::tempdir().unwrap();
        let mut child =
            std::process::Command::new("/bin/sleep").arg("1000").current_dir(home.path()).spawn().unwrap();
        kill_processes_in(home.path());
        let status = crate::wait_exit(&mut child, "sleep");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }
}
