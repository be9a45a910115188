//! Commit-to-running (gitvisor only): how long after `git commit` returns the new version of a
//! unit is running.
//!
//! One enabled unit runs `bench-stamp --idle stamps/vNNN`, so the stamp file's name says which
//! version started and its content when. With the daemon running, each sample rewrites the
//! unit's ExecStart for the next version and commits it with the git binary; the figure is the
//! new process's start stamp minus the time taken right after `git commit` exited (the branch
//! ref is updated by then). Commits are spaced out, each waited for, so each is one sync.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::process::{self, sweep, wait_for};
use crate::stamps::{self, now_ns, Intervals};
use crate::supervisors::gitvisor::Gitvisor;
use crate::supervisors::Session;
use crate::Result;

/// Quiet time after each new version started, before the next commit: well over the 50 ms
/// debounce, so two commits never fall into one sync.
const SPACING: Duration = Duration::from_millis(150);

#[derive(Serialize, Clone, Debug)]
pub struct CommitToRunning {
    /// From `git commit` exiting to the new version's start stamp (ms).
    #[serde(flatten)]
    pub latency: Intervals,
    /// How long the `git commit` processes themselves took (median), ms: not in the figure.
    pub git_commit_median_ms: f64,
    /// Lines of sync-history.jsonl at the end: one per sync the engine recorded.
    pub syncs_recorded: usize,
}

fn version_exec(gv: &Gitvisor, stamps_dir: &Path, v: usize) -> String {
    format!("{} --idle {}", gv.stamp.display(), stamps_dir.join(format!("v{v:03}")).display())
}

fn git_commit(services: &Path, message: &str) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(services)
        .args(["-c", "user.name=gitvisor-bench", "-c", "user.email=bench@localhost"])
        .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"])
        .args(["commit", "-q", "-a", "-m", message])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(
            format!("git commit failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)).into()
        );
    }
    Ok(())
}

pub fn commit_to_running(gv: &Gitvisor, dir: &Path, samples: usize) -> Result<CommitToRunning> {
    let services = dir.join("services");
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(&services)?;
    std::fs::create_dir_all(&stamps_dir)?;
    let unit = services.join("app.service");
    std::fs::write(&unit, gv.unit(&version_exec(gv, &stamps_dir, 0), ""))?;
    let outcome = (|| -> Result<CommitToRunning> {
        let mut session = gv.launch_home(dir)?;
        let result = (|| -> Result<CommitToRunning> {
            // The daemon creates the repository (committing app.service) and starts version 0.
            let first = stamps_dir.join("v000");
            let mut err = None;
            let up = wait_for(Duration::from_secs(30), Duration::from_millis(5), || match session.check() {
                Err(e) => {
                    err = Some(e);
                    true
                }
                Ok(()) => first.exists() && services.join(".git").exists(),
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            if !up {
                return Err("version 0 did not start within 30 s".into());
            }
            process::sleep(SPACING)?;
            let mut latencies = Vec::with_capacity(samples);
            let mut git_ms = Vec::with_capacity(samples);
            for v in 1..=samples {
                std::fs::write(&unit, gv.unit(&version_exec(gv, &stamps_dir, v), ""))?;
                let t = Instant::now();
                git_commit(&services, &format!("bench: version {v}"))?;
                let committed = now_ns();
                git_ms.push(t.elapsed().as_secs_f64() * 1e3);
                let file = stamps_dir.join(format!("v{v:03}"));
                let started = wait_for(Duration::from_secs(10), Duration::from_millis(1), || {
                    !stamps::read(&file).is_empty()
                })?;
                session.check()?;
                if !started {
                    return Err(format!("version {v} did not start within 10 s of its commit").into());
                }
                let stamp = stamps::read(&file)[0];
                latencies.push((stamp as f64 - committed as f64) / 1e6);
                process::sleep(SPACING)?;
            }
            let latency = stamps::summary(latencies).ok_or("no samples")?;
            git_ms.sort_by(f64::total_cmp);
            let history = std::fs::read_to_string(dir.join("sync-history.jsonl")).unwrap_or_default();
            Ok(CommitToRunning {
                latency,
                git_commit_median_ms: git_ms[git_ms.len() / 2],
                syncs_recorded: history.lines().count(),
            })
        })();
        let stopped = session.stop();
        let r = result?;
        stopped?;
        Ok(r)
    })();
    sweep(dir);
    outcome
}
