//! The services repository of a fleet: cloned from `[fleet] remote` when the home has none,
//! then fast-forwarded from it (the git binary, as a user's clone would be).

use std::path::Path;
use std::process::Stdio;

/// Clones `remote` into `services` unless a repository is already there; true when it cloned.
pub fn clone_if_missing(remote: &str, services: &Path) -> Result<bool, String> {
    if services.join(".git").exists() {
        return Ok(false);
    }
    // An empty directory (the home's layout makes one) is fine to clone into.
    if services.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} holds files but no repository: cannot clone {remote} into it",
            services.display()
        ));
    }
    let out = std::process::Command::new("git")
        .args(["clone", "--quiet", remote])
        .arg(services)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git clone {remote}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(true)
}

/// Fast-forwards the checked-out branch from its upstream. A branch that diverged is left as
/// it is and said so (gitvisor never merges or rewrites).
pub async fn pull(services: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(services)
        .args(["pull", "--ff-only", "--quiet"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("git pull --ff-only: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}
