//! The one owner of the engine's background work: the state writer, the crash reporter, the
//! capture sweeper, the git watcher (and, as they come, health probes, maintenance runs and
//! lease heartbeats). Each is a future handed to [`Background::spawn`] under a name; nothing in
//! the engine calls `tokio::spawn` for work that outlives an operation.
//!
//! [`Background::stop`] ends one task (the git watcher stops first at shutdown, so no sync
//! starts while services stop); [`Background::stop_all`] ends the rest and is awaited on
//! shutdown; dropping the owner aborts whatever is left, so an engine dropped without a
//! shutdown leaves no task running. A task is told to stop by being cancelled at its next await:
//! the futures given here keep nothing that must be flushed (the engine saves its state itself
//! before it stops them).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `stop_all` waits for a task that was told to stop before aborting it.
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Task {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

#[derive(Default)]
pub struct Background {
    tasks: Mutex<Vec<Task>>,
}

impl Background {
    pub fn new() -> Background {
        Background::default()
    }

    /// Runs `work` until it ends by itself or is stopped. Must be called within a tokio runtime.
    pub fn spawn(&self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            tokio::select! {
                () = work => {}
                _ = stopped => {}
            }
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.handle.is_finished());
        tasks.push(Task { name, stop: Some(stop), handle });
    }

    /// The names of the tasks still running, for status and tests.
    pub fn running(&self) -> Vec<&'static str> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().filter(|t| !t.handle.is_finished()).map(|t| t.name).collect()
    }

    /// Stops every task named `name` and waits for them to end.
    pub async fn stop(&self, name: &str) {
        let taken: Vec<Task> = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            let (taken, kept) = std::mem::take(&mut *tasks).into_iter().partition(|t| t.name == name);
            *tasks = kept;
            taken
        };
        finish(taken).await;
    }

    /// Stops every task and waits for them, each for a bounded time.
    pub async fn stop_all(&self) {
        let taken = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        finish(taken).await;
    }
}

async fn finish(tasks: Vec<Task>) {
    for mut t in tasks {
        if let Some(stop) = t.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(STOP_GRACE, &mut t.handle).await {
            Ok(Err(e)) if e.is_panic() => tracing::error!("{} panicked: {e}", t.name),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("{} did not stop within {STOP_GRACE:?}; aborting it", t.name);
                t.handle.abort();
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Sets its flag when dropped: tells that the future was cancelled, not leaked.
    struct Flag(Arc<AtomicBool>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Never ends; its flag is set when it is dropped, whether or not it was ever polled.
    fn forever(flag: Arc<AtomicBool>) -> impl Future<Output = ()> + Send + 'static {
        let flag = Flag(flag);
        async move {
            let _flag = flag;
            std::future::pending::<()>().await
        }
    }

    #[tokio::test]
    async fn stop_ends_only_the_named_task() {
        let bg = Background::new();
        let (a, b) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        bg.spawn("watcher", forever(a.clone()));
        bg.spawn("writer", forever(b.clone()));
        bg.stop("watcher").await;
        assert!(a.load(Ordering::SeqCst), "the watcher's future was dropped");
        assert!(!b.load(Ordering::SeqCst));
        assert_eq!(bg.running(), vec!["writer"]);
        bg.stop_all().await;
        assert!(b.load(Ordering::SeqCst));
        assert!(bg.running().is_empty());
    }

    #[tokio::test]
    async fn dropping_the_owner_aborts_what_is_left() {
        let flag = Arc::new(AtomicBool::new(false));
        let bg = Background::new();
        bg.spawn("sweeper", forever(flag.clone()));
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert_eq!(alive, 1);
        drop(bg);
        // An aborted task is dropped at one of the runtime's next turns.
        let metrics = tokio::runtime::Handle::current().metrics();
        for _ in 0..1000 {
            if flag.load(Ordering::SeqCst) && metrics.num_alive_tasks() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(flag.load(Ordering::SeqCst), "the task was aborted");
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);
    }
}
