//! One `git gc --auto` run as a tracked child process of the engine.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::settings::MaintenanceSettings;

/// The output kept of a run.
const TAIL: usize = 4096;

/// How a run ended.
pub struct Done {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub output_tail: String,
}

/// Runs gc in `repo` with the settings' threshold and prune delay; `started` gets its pid. The
/// child is killed if the run's task is dropped (the engine stopping).
pub async fn gc(repo: &Path, settings: &MaintenanceSettings, started: impl FnOnce(u32)) -> Done {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .arg("-c")
        .arg(format!("gc.auto={}", settings.auto_threshold))
        // In the foreground: the run is this child, tracked to its end (git would detach).
        .args(["-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false"])
        .args(["gc", "--auto", "--quiet"])
        .arg(format!("--prune={}", settings.prune))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Done { exit_code: None, signal: None, output_tail: format!("cannot run git: {e}") },
    };
    if let Some(pid) = child.id() {
        started(pid);
    }
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let mut output = Vec::new();
    let read_all = async {
        let mut a = Vec::new();
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut a).await;
        }
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut b).await;
        }
        (a, b)
    };
    let ((a, b), status) = tokio::join!(read_all, child.wait());
    output.extend(a);
    output.extend(b);
    let start = output.len().saturating_sub(TAIL);
    let output_tail = String::from_utf8_lossy(&output[start..]).into_owned();
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            Done { exit_code: s.code(), signal: s.signal(), output_tail }
        }
        Err(e) => Done {
            exit_code: None,
            signal: None,
            output_tail: format!("{output_tail}\nwaiting for git: {e}"),
        },
    }
}
