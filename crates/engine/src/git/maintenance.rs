//! Git maintenance: a room for `git gc --auto` on the services repository and on opted-in
//! working directories (SPEC section 9).
//!
//! It will be a background task of the engine's owner, woken after a sync is applied and on a
//! daily timer, running gc as a tracked child process only when every safety check passes:
//! maintenance enabled, the minimum interval elapsed, no git operation in progress, fewer runs
//! than the concurrency limit, a valid prune delay, and the `maintenance:REPO` key taken through
//! the engine's lock primitive. The check that needs nothing but the repository is here now.

use std::path::Path;

/// What git is in the middle of in `git_dir`, if anything: a reason not to run gc there.
pub fn operation_in_progress(git_dir: &Path) -> Option<&'static str> {
    const MARKERS: &[(&str, &str)] = &[
        ("MERGE_HEAD", "a merge"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
        ("BISECT_LOG", "a bisect"),
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("index.lock", "another git command (index.lock)"),
    ];
    MARKERS.iter().find(|(f, _)| git_dir.join(f).exists()).map(|(_, what)| *what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_marker_is_an_operation_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(operation_in_progress(dir.path()), None);
        std::fs::create_dir(dir.path().join("rebase-merge")).unwrap();
        assert_eq!(operation_in_progress(dir.path()), Some("a rebase"));
        std::fs::remove_dir(dir.path().join("rebase-merge")).unwrap();
        std::fs::write(dir.path().join("index.lock"), "").unwrap();
        assert_eq!(operation_in_progress(dir.path()), Some("another git command (index.lock)"));
    }
}
