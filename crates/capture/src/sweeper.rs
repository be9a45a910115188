//! The background task that applies the store's TTL and caps on a timer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{self, Instant, MissedTickBehavior};

use crate::store::Store;

/// Default time between sweeps: 5 minutes.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Owner of the sweeper task: [`Sweeper::stop`] ends it and waits; dropping it aborts it.
///
/// The clock is tokio's, so a test can drive the sweeper with `tokio::time::pause()` and
/// `advance`; the `Instant` handed to [`Store::sweep`] is that clock's `now()`.
pub struct Sweeper {
    task: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    evicted: Arc<AtomicU64>,
}

impl Sweeper {
    /// Starts sweeping `store` every `interval` (the first sweep one interval from now).
    /// A zero interval is replaced by [`DEFAULT_SWEEP_INTERVAL`]. Must be called within a
    /// tokio runtime.
    pub fn spawn(store: Arc<Mutex<Store>>, interval: Duration) -> Sweeper {
        let (stop, stopped) = oneshot::channel();
        let evicted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(store, interval, stopped, Arc::clone(&evicted)));
        Sweeper { task: Some(task), stop: Some(stop), evicted }
    }

    /// How many captures the sweeps have evicted so far, in total.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Stops the task and waits for it to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                if error.is_panic() {
                    tracing::error!("capture sweeper panicked: {error}");
                }
            }
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run(
    store: Arc<Mutex<Store>>,
    interval: Duration,
    stopped: oneshot::Receiver<()>,
    evicted: Arc<AtomicU64>,
) {
    tokio::select! {
        _ = stopped => {}
        () = sweep_every(store, interval, evicted) => {}
    }
}

/// Sweeps `store` every `interval` (the first sweep one interval from now), forever, adding
/// what it evicts to `evicted`: the sweeper's work, for an owner that runs it as its own task
/// and stops it by dropping it. A zero interval is replaced by [`DEFAULT_SWEEP_INTERVAL`].
pub async fn sweep_every(store: Arc<Mutex<Store>>, interval: Duration, evicted: Arc<AtomicU64>) {
    let interval = if interval.is_zero() {
        tracing::warn!("capture sweep interval must be more than 0; using 5min");
        DEFAULT_SWEEP_INTERVAL
    } else {
        interval
    };
    let mut ticks = time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Instant::now().into_std();
        let n = store.lock().unwrap_or_else(PoisonError::into_inner).sweep(now);
        if n > 0 {
            evicted.fetch_add(n as u64, Ordering::Relaxed);
            tracing::info!(evicted = n, "evicted {n} captures");
        }
    }
}
