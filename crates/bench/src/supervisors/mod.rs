//! The supervisors under test, each behind the same two-step interface: write its configuration
//! for a scenario, launch it, and hand back a session that knows its processes and how to stop.

pub mod gitvisor;
pub mod pm2;
pub mod runit;
pub mod s6;
pub mod supervisord;

use std::path::{Path, PathBuf};

use crate::procfs::Pid;
use crate::Result;

/// How a group of supervisor processes is weighed: one process by its RSS, or many processes by
/// the sum of their PSS (so shared pages are not counted a hundred times).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Memory {
    Rss,
    PssSum,
}

/// Supervisor processes measured together, under one name ("daemon", "log keeper", ...).
pub struct Group {
    pub role: String,
    pub pids: Vec<Pid>,
    pub memory: Memory,
}

/// The services of a scenario.
pub enum Scenario<'a> {
    /// One service that exits at once and is restarted as fast as the supervisor allows, each
    /// start appending a stamp to `file`.
    Restarting { file: &'a Path },
    /// `n` idle services; the i-th writes its start stamp to `dir/i`.
    Idle { dir: &'a Path, n: usize },
    /// One service (`flood`) that stamps `file`, writes `bytes` of 100-byte lines to its stdout as
    /// fast as it can, then a last line `FLOOD-END`, then idles. Its log goes, without rotation
    /// and unprefixed where the supervisor allows, to a file named `*.log` under the scenario's
    /// directory.
    Flood { file: &'a Path, bytes: u64 },
}

pub trait Supervisor {
    /// Version or other identification, for the report.
    fn version(&self) -> String;
    /// Writes the configuration into `dir` (a fresh directory) and launches the supervisor.
    /// The launch time is taken just before the first process is spawned.
    fn launch(&self, dir: &Path, scenario: &Scenario) -> Result<Box<dyn Session>>;
}

pub trait Session {
    /// Realtime nanoseconds just before the supervisor was spawned.
    fn launched_ns(&self) -> u64;
    /// The supervisor's own processes (not its services), by role.
    fn groups(&self) -> Vec<Group>;
    /// An error if the supervisor has died, with what it said.
    fn check(&mut self) -> Result<()>;
    /// Stops the supervisor and its services in its own orderly way.
    fn stop(&mut self) -> Result<()>;
}

/// The end of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A daemontools-style supervision tree weighed together by the sum of its PSS: the scanner
/// (`top`) and its one supervisor per service, or a single supervisor (`single`).
pub fn supervision_tree(top: Pid, single: bool, role: &str) -> Vec<Group> {
    let mut pids = vec![top];
    if !single {
        pids.extend(crate::procfs::children(top));
    }
    vec![Group { role: role.into(), pids, memory: Memory::PssSum }]
}

/// A daemontools-style service directory: `dir/run`, `#!/bin/sh` + `exec` of the service.
pub fn run_script(dir: &Path, exec: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let run = dir.join("run");
    std::fs::write(&run, format!("#!/bin/sh\nexec {exec}\n"))?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `p` quoted for sh.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// An executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first line of `PROGRAM ARGS` output, or "unknown".
pub fn first_line_of(cmd: &mut std::process::Command) -> String {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
