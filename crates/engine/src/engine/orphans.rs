//! Processes of the home that no engine knows: a start whose engine was killed after the spawn
//! and before the process was recorded (in the state file, or by the log keeper). A successor
//! would start the service again beside it. Every process a service starts carries the home's
//! mark (`$GITVISOR_HOME_ID`) and its start's `$INVOCATION_ID` (systemd's name for it), kept in
//! the service's record; at start the engine looks for session leaders (each start makes one)
//! with the home's mark, and kills those it neither adopts nor finds in a record.

use std::collections::HashSet;
use std::path::Path;

/// The environment variable naming the home a process belongs to.
pub const HOME_ID_VAR: &str = "GITVISOR_HOME_ID";

/// The home's mark: a short stable hash of its path.
pub fn home_id(home: &Path) -> String {
    crate::supervisor::cgroup::home_id(home)
}

/// A fresh `$INVOCATION_ID`: 128 random bits in hex, as systemd gives one to each start.
pub fn invocation_id() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom(2) writes at most the buffer's length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // No entropy source: time and pid still tell starts apart.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A process of the home no engine knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub pid: u32,
    pub service: String,
}

/// The home's session leaders (`home_id` in their environment) that are not `known` (to be
/// adopted) and whose invocation no record names.
pub fn find(home_id: &str, known: &HashSet<u32>, invocations: &HashSet<&str>) -> Vec<Orphan> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mark = format!("{HOME_ID_VAR}={home_id}");
    let own = std::process::id();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own && !known.contains(pid))
        .filter(|pid| crate::supervisor::process::session_of(*pid) == Some(*pid))
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
            let get = |name: &str| {
                vars.iter()
                    .find_map(|v| v.strip_prefix(format!("{name}=").as_bytes()))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            if !vars.contains(&mark.as_bytes()) {
                return None;
            }
            let invocation = get("INVOCATION_ID").unwrap_or_default();
            if invocations.contains(invocation.as_str()) {
                return None;
            }
            let service = get("GITVISOR_SERVICE").unwrap_or_else(|| "?".into());
            crate::supervisor::process::is_alive(pid).then_some(Orphan { pid, service })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_ids_are_128_bits_of_hex_and_differ() {
        let (a, b) = (invocation_id(), invocation_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_marked_session_leader_nobody_knows_is_found_and_a_known_one_is_not() {
        use std::os::unix::process::CommandExt;
        let home = format!("test-{}", invocation_id());
        let mut child = std::process::Command::new("sleep");
        child.arg("100").env(HOME_ID_VAR, &home).env("INVOCATION_ID", "abc").env("GITVISOR_SERVICE", "web");
        // SAFETY: setsid only, between fork and exec.
        unsafe {
            child.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let mut child = child.spawn().unwrap();
        let pid = child.id();
        let found = find(&home, &HashSet::new(), &HashSet::new());
        assert_eq!(found, [Orphan { pid, service: "web".into() }]);
        assert!(find(&home, &HashSet::from([pid]), &HashSet::new()).is_empty(), "adopted");
        assert!(find(&home, &HashSet::new(), &HashSet::from(["abc"])).is_empty(), "recorded");
        assert!(find("another-home", &HashSet::new(), &HashSet::new()).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
