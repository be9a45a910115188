//! Watches the services repository for its branch moving: inotify (the `notify` crate) on the
//! git directory, filtered to the files that move with the branch, debounced so a burst (a
//! rebase, a series of commits) is applied once, at its end. Where file events are unavailable
//! it polls instead, and says so. Idle, it costs nothing: it sleeps until the kernel reports a
//! change.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Names in the git directory whose change may move what runs.
const INTERESTING: &[&str] = &[
    "HEAD",
    "packed-refs",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "rebase-merge",
    "rebase-apply",
    "BISECT_LOG",
];

/// A watch of the repository: `work` is run by its owner as a task (it holds the inotify
/// watch; dropping it stops everything).
pub struct RepoWatch<W> {
    pub work: W,
    /// File events are unavailable: the repository is polled.
    pub polling: bool,
}

fn interesting(git_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(git_dir) else { return false };
    if rel.starts_with("refs/heads") {
        return true;
    }
    rel.components().next().is_some_and(|c| INTERESTING.iter().any(|n| c.as_os_str() == *n))
}

/// Calls `on_change` after the branch moved and `debounce` passed without another move.
pub fn watch<F, Fut>(
    git_dir: PathBuf,
    file_events: bool,
    debounce: Duration,
    poll: Duration,
    on_change: F,
) -> RepoWatch<Pin<Box<dyn Future<Output = ()> + Send>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let dir = git_dir.clone();
    let made = if !file_events {
        Err(notify::Error::generic("file events are turned off ([git] file_events = false)"))
    } else {
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                // Reads (our own included: every sync opens HEAD) must not wake us, or we would loop.
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                if ev.paths.iter().any(|p| interesting(&dir, p)) {
                    let _ = tx.try_send(());
                }
            }
        })
        .and_then(|mut w| {
            w.watch(&git_dir, RecursiveMode::NonRecursive)?;
            let heads = git_dir.join("refs/heads");
            if heads.is_dir() {
                w.watch(&heads, RecursiveMode::Recursive)?;
            }
            Ok(w)
        })
    };
    match made {
        Ok(w) => {
            let work = async move {
                let _watch = w;
                while rx.recv().await.is_some() {
                    // Quiet period: every new event restarts it.
                    while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
                    on_change().await;
                }
            };
            RepoWatch { work: Box::pin(work), polling: false }
        }
        Err(e) => {
            tracing::warn!(
                "file events are unavailable for {} ({e}); polling every {}",
                git_dir.display(),
                humantime::format_duration(poll)
            );
            let work = async move {
                loop {
                    tokio::time::sleep(poll).await;
                    on_change().await;
                }
            };
            RepoWatch { work: Box::pin(work), polling: true }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_branch_moves_are_interesting() {
        let g = Path::new("/r/.git");
        assert!(interesting(g, Path::new("/r/.git/HEAD")));
        assert!(interesting(g, Path::new("/r/.git/refs/heads/main")));
        assert!(interesting(g, Path::new("/r/.git/refs/heads/feature/x")));
        assert!(interesting(g, Path::new("/r/.git/packed-refs")));
        assert!(interesting(g, Path::new("/r/.git/rebase-merge/done")));
        assert!(!interesting(g, Path::new("/r/.git/index")));
        assert!(!interesting(g, Path::new("/r/.git/index.lock")));
        assert!(!interesting(g, Path::new("/r/.git/objects/ab/cdef")));
        assert!(!interesting(g, Path::new("/r/.git/refs/tags/v1")));
    }

    #[tokio::test]
    async fn a_burst_of_branch_moves_is_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().to_path_buf();
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let w = watch(git.clone(), true, Duration::from_millis(300), Duration::from_secs(2), move || {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
            }
        });
        assert!(!w.polling);
        let task = tokio::spawn(w.work);
        for i in 0..10 {
            std::fs::write(git.join("refs/heads/main"), format!("{i}")).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("one call").unwrap();
        // Nothing more arrives for a while after the burst.
        assert!(tokio::time::timeout(Duration::from_millis(600), rx.recv()).await.is_err());
        // Writes to the index do not wake it.
        std::fs::write(git.join("index"), "x").unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(600), rx.recv()).await.is_err());
        task.abort();
    }
}
