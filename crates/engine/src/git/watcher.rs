//! Watches the services repository for its branch moving: inotify (the `notify` crate) on the
//! git directory, filtered to the files that move with the branch; a move is applied at once,
//! and a burst (a rebase, a series of commits) once more at its end. Where file events are unavailable
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

/// Calls `on_change` when the branch moves (at once, then once more after a burst).
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
    let (tx, rx) = mpsc::channel::<()>(1);
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
                debounced(rx, debounce, on_change).await;
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

/// Calls `on_change` at once for the first event of a burst (a single commit runs in
/// milliseconds), then once more when the burst is over if more events came (each restarts a
/// quiet period of `debounce`): a rebase of twenty commits is applied once or twice, never
/// twenty times. Ends when the events' sender is gone.
async fn debounced<F, Fut>(mut rx: mpsc::Receiver<()>, debounce: Duration, on_change: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    while rx.recv().await.is_some() {
        on_change().await;
        // What came during the call or comes before a quiet period is one more change.
        let mut more = false;
        loop {
            match tokio::time::timeout(debounce, rx.recv()).await {
                Ok(Some(())) => more = true,
                Ok(None) => {
                    if more {
                        on_change().await;
                    }
                    return;
                }
                Err(_quiet) => break,
            }
        }
        if more {
            on_change().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The debounce on tokio's paused clock: the same answer whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn a_burst_is_applied_at_its_first_event_and_once_more_after_its_quiet_period() {
        let (tx, rx) = mpsc::channel(1);
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(debounced(rx, Duration::from_millis(300), move || {
            let seen = seen.clone();
            async move { seen.lock().unwrap().push(start.elapsed().as_millis()) }
        }));
        for _ in 0..10 {
            tx.send(()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The first event is applied at once; the rest of the burst (to 900 ms) waits.
        assert_eq!(*calls.lock().unwrap(), [0]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(*calls.lock().unwrap(), [0, 1200], "once more, a quiet period after the last event");
        // A single later event (at 1250 ms) is applied at once, and only once.
        tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(*calls.lock().unwrap(), [0, 1200, 1250]);
        drop(tx);
        task.await.unwrap();
    }

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
    async fn branch_moves_wake_it_and_index_writes_do_not() {
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
        // Writes to the index (and reads) do not wake it: nothing is called for them (no other
        // write is pending, so a slow machine cannot make this fail).
        std::fs::write(git.join("index"), "x").unwrap();
        let _ = std::fs::read(git.join("index"));
        assert!(tokio::time::timeout(Duration::from_millis(600), rx.recv()).await.is_err());
        // A branch move does, once its burst is over (how many calls a burst makes on a loaded
        // machine is the debounce's business, tested above on a paused clock).
        for i in 0..10 {
            std::fs::write(git.join("refs/heads/main"), format!("{i}")).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("a call").unwrap();
        let mut calls = 1;
        while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(600), rx.recv()).await {
            calls += 1;
        }
        assert!(calls <= 10, "at most one call per write: {calls}");
        task.abort();
    }
}
