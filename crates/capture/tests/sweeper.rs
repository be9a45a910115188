//! The sweeper on tokio's paused clock.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gitvisor_capture::{Capture, Store, StoreSettings, Sweeper};

fn empty_capture() -> Capture {
    Capture {
        root: PathBuf::from("/w"),
        taken_at: SystemTime::UNIX_EPOCH,
        entries: Vec::new(),
        skipped: Vec::new(),
        total_bytes: 0,
        stamps: Default::default(),
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn evicts_expired_captures_after_the_interval_and_stops_cleanly() {
    let settings = StoreSettings { ttl: Duration::from_secs(60), ..StoreSettings::default() };
    let store = Arc::new(Mutex::new(Store::new(settings)));
    let now = tokio::time::Instant::now().into_std();
    for _ in 0..3 {
        store.lock().unwrap().add(empty_capture(), now);
    }
    let sweeper = Sweeper::spawn(Arc::clone(&store), Duration::from_secs(300));

    tokio::time::sleep(Duration::from_secs(299)).await;
    assert_eq!(store.lock().unwrap().len(), 3, "no sweep before the interval");
    assert_eq!(sweeper.evicted(), 0);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.lock().unwrap().len(), 0);
    assert_eq!(sweeper.evicted(), 3);

    tokio::time::timeout(Duration::from_secs(1), sweeper.stop())
        .await
        .expect("stop() waits for the task, which ends at once");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn dropping_the_owner_aborts_the_task() {
    let store = Arc::new(Mutex::new(Store::new(StoreSettings::default())));
    let sweeper = Sweeper::spawn(Arc::clone(&store), Duration::from_secs(1));
    assert_eq!(Arc::strong_count(&store), 2);
    drop(sweeper);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(Arc::strong_count(&store), 1, "the aborted task let go of the store");
}
