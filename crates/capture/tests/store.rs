//! Blob sharing between captures and the store's caps, with explicit instants.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gitvisor_capture::{
    capture_dir, BlobPool, Capture, CaptureId, Entry, EntryKind, Limits, Store, StoreSettings,
};

const MIB: usize = 1024 * 1024;

fn file_content(capture: &Capture, name: &str) -> Arc<[u8]> {
    match capture.entries.iter().find(|e| e.path == std::path::Path::new(name)) {
        Some(Entry { kind: EntryKind::File { content: Some(content), .. }, .. }) => Arc::clone(content),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn an_unchanged_file_is_shared_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("big"), vec![42u8; MIB]).unwrap();
    let mut store = Store::new(StoreSettings::default());
    let now = Instant::now();

    let first = capture_dir(dir.path(), &Limits::default(), store.blobs()).unwrap();
    let second = capture_dir(dir.path(), &Limits::default(), store.blobs()).unwrap();
    assert!(Arc::ptr_eq(&file_content(&first, "big"), &file_content(&second, "big")));
    let (a, _) = store.add(first, now);
    let (b, _) = store.add(second, now);
    assert_eq!(store.total_bytes(), MIB as u64);
    assert_eq!(store.blobs().len(), 1);

    store.release(a);
    assert_eq!(store.total_bytes(), MIB as u64, "still held by the second capture");
    store.release(b);
    assert_eq!(store.total_bytes(), 0);
    assert_eq!(store.blobs().len(), 0, "the bytes are freed with the last capture");
}

/// A capture of one file with `content`, interned in `pool`.
fn capture(pool: &BlobPool, content: &[u8]) -> Capture {
    let (content, sha256) = pool.intern(content.to_vec());
    let size = content.len() as u64;
    Capture {
        root: PathBuf::from("/w"),
        taken_at: SystemTime::UNIX_EPOCH,
        entries: vec![Entry {
            path: PathBuf::from("f"),
            kind: EntryKind::File { content: Some(content), sha256, size, executable: false },
        }],
        skipped: Vec::new(),
        total_bytes: size,
        stamps: Default::default(),
    }
}

fn store(ttl_secs: u64, max_captures: usize, max_bytes: u64) -> Store {
    Store::new(StoreSettings { ttl: Duration::from_secs(ttl_secs), max_captures, max_bytes })
}

#[test]
fn expired_captures_are_swept() {
    let mut store = store(60, 100, 1 << 30);
    let t0 = Instant::now();
    let (old, _) = store.add(capture(&store.blobs().clone(), b"old"), t0);
    let (young, _) = store.add(capture(&store.blobs().clone(), b"young"), t0 + secs(30));

    assert_eq!(store.sweep(t0 + secs(59)), 0);
    assert_eq!(store.sweep(t0 + secs(60)), 1);
    assert!(store.get(old).is_none());
    assert!(store.get(young).is_some());
    assert_eq!(store.total_bytes(), 5);
}

#[test]
fn the_count_cap_evicts_the_oldest_on_add() {
    let mut store = store(3600, 2, 1 << 30);
    let pool = store.blobs().clone();
    let t0 = Instant::now();
    let (a, _) = store.add(capture(&pool, b"a"), t0);
    let (b, _) = store.add(capture(&pool, b"b"), t0);
    let (c, evicted) = store.add(capture(&pool, b"c"), t0);
    assert_eq!(evicted, 1);
    assert_eq!(store.ids(), vec![b, c]);
    assert!(store.get(a).is_none());
    assert_eq!(c, CaptureId(3));
    assert_eq!(c.to_string(), "3");
}

#[test]
fn the_byte_cap_evicts_the_oldest_until_under() {
    let mut store = store(3600, 100, 10);
    let pool = store.blobs().clone();
    let t0 = Instant::now();
    let (_a, _) = store.add(capture(&pool, b"aaaa"), t0);
    let (b, _) = store.add(capture(&pool, b"bbbb"), t0);
    let (c, evicted) = store.add(capture(&pool, b"ccc"), t0);
    assert_eq!(evicted, 1, "4 + 4 + 3 is over 10 bytes until the oldest goes");
    assert_eq!(store.ids(), vec![b, c]);
    let (d, evicted) = store.add(capture(&pool, b"dddddddd"), t0);
    assert_eq!(evicted, 2, "8 bytes leave room for nothing older");
    assert_eq!(store.ids(), vec![d]);
    assert_eq!(store.total_bytes(), 8);
}

#[test]
fn expired_go_before_older_ones() {
    let mut store = store(100, 2, 1 << 30);
    let pool = store.blobs().clone();
    let t0 = Instant::now();
    let (oldest, _) = store.add(capture(&pool, b"1"), t0);
    let (short, _) = store.add(capture(&pool, b"2"), t0 + secs(10));
    // At t0 + 105 the first has expired; adding a third must evict only that one.
    let (third, evicted) = store.add(capture(&pool, b"3"), t0 + secs(105));
    assert_eq!(evicted, 1);
    assert_eq!(store.ids(), vec![short, third]);
    assert!(store.get(oldest).is_none());
}

#[test]
fn a_capture_over_the_byte_cap_alone_is_kept_until_the_sweep() {
    let mut store = store(3600, 100, 4);
    let pool = store.blobs().clone();
    let t0 = Instant::now();
    let (small, _) = store.add(capture(&pool, b"ab"), t0);
    let (huge, evicted) = store.add(capture(&pool, b"0123456789"), t0);
    assert_eq!(evicted, 1);
    assert!(store.get(small).is_none());
    assert!(store.get(huge).is_some());
    assert_eq!(store.sweep(t0), 1);
    assert!(store.is_empty());
}

#[test]
fn release_drops_one_capture() {
    let mut store = store(3600, 100, 1 << 30);
    let pool = store.blobs().clone();
    let (a, _) = store.add(capture(&pool, b"a"), Instant::now());
    assert!(store.release(a));
    assert!(!store.release(a));
    assert!(store.is_empty());
    assert_eq!(store.total_bytes(), 0);
}

#[test]
fn invalid_settings_fall_back_to_defaults_with_warnings() {
    let (settings, warnings) =
        StoreSettings { ttl: Duration::ZERO, max_captures: 0, max_bytes: 0 }.sanitized();
    assert_eq!(settings, StoreSettings::default());
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let (_, none) = StoreSettings::default().sanitized();
    assert!(none.is_empty());
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
