//! Streaming a capture holds a buffer, not the tree: while a 40 MiB tree is streamed into an
//! archive, the heap grows by a few hundred KiB (entries, names, hashes). The same tree captured
//! in memory grows it past the tree's size, which shows that the count sees file bytes. Keeping
//! the text of changed files for a crash report's diffs adds what it keeps, within its bound.
//!
//! A test binary of its own: the counting allocator is global. Its tests take turns (`SERIAL`),
//! so that one's allocations are not counted in the other's peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gitvisor_capture::{
    baseline_since, capture_dir, stream_dir, write_snapshot, BlobPool, KeepText, Limits, NewText,
    StreamOptions,
};
use sha2::{Digest, Sha256};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call goes to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `f` returns, and the most heap it held at once beyond what was held before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - before)
}

/// An archive's SHA-256, without holding the archive.
#[derive(Default)]
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MIB: usize = 1 << 20;

/// 40 MiB, no two files alike (a capture in memory shares equal ones): four files of 6 MiB,
/// sixteen of 1 MiB, and 1,000 small text files in 20 directories.
fn build_tree(root: &Path) {
    let bytes = |seed: usize, len: usize| -> Vec<u8> {
        (0..len).map(|i| ((i + seed).wrapping_mul(2_654_435_761) >> 13) as u8).collect()
    };
    for i in 0..4 {
        fs::write(root.join(format!("large-{i}.bin")), bytes(i, 6 * MIB)).unwrap();
    }
    fs::create_dir(root.join("mid")).unwrap();
    for i in 0..16 {
        fs::write(root.join(format!("mid/{i:02}.bin")), bytes(100 + i, MIB)).unwrap();
    }
    for d in 0..20 {
        let dir = root.join(format!("small/d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..50 {
            fs::write(dir.join(format!("f{f:02}.txt")), format!("line {d} {f}\n").repeat(20)).unwrap();
        }
    }
}

#[test]
fn streaming_a_40_mib_tree_holds_a_buffer_not_the_tree() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let limits = Limits { max_file_size: 8 * MIB as u64, ..Limits::default() };
    let prefix = Path::new("workdir");

    let (streamed, stream_peak) = peak_of(|| {
        let mut tar = tar::Builder::new(Hashing::default());
        let s = stream_dir(dir.path(), &limits, &StreamOptions::default(), &mut tar, prefix).unwrap();
        (s, tar.into_inner().unwrap().0.finalize())
    });
    let (in_memory, memory_peak) = peak_of(|| {
        let capture = capture_dir(dir.path(), &limits, &BlobPool::default()).unwrap();
        write_snapshot(&capture, prefix, Hashing::default()).unwrap().0.finalize()
    });

    let (s, archive_sha) = streamed;
    assert!(s.capture.total_bytes >= 40 * MIB as u64, "{} bytes taken", s.capture.total_bytes);
    assert_eq!(s.capture.file_count(), 1020);
    assert!(stream_peak < 2 * MIB, "streaming held {stream_peak} bytes at its peak");
    assert!(memory_peak > 40 * MIB, "in memory, {memory_peak} bytes: the count misses file bytes");
    assert_eq!(archive_sha, in_memory, "the same archive");
}

#[test]
fn the_text_kept_of_changed_files_stays_within_its_bound() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    // 3 MiB more of text: 48 files of 64 KiB, each line telling its file apart.
    let text = |i: usize, word: &str| -> String {
        let line = format!("{word} {i:02} {}\n", "x".repeat(53));
        line.repeat(64 * 1024 / line.len())
    };
    fs::create_dir(dir.path().join("text")).unwrap();
    for i in 0..48 {
        fs::write(dir.path().join(format!("text/{i:02}.conf")), text(i, "before")).unwrap();
    }
    let limits = Limits { max_file_size: 8 * MIB as u64, ..Limits::default() };
    let (per_file, total) = (64 * 1024, 8 * MIB as u64);
    let baseline = baseline_since(dir.path(), &limits, &BlobPool::default(), None, per_file, total).unwrap();
    assert!(baseline.held_bytes() > 3 * MIB as u64, "the baseline holds the text: {}", baseline.held_bytes());
    // Every text file changes, and so does every binary one; a report keeps 1 MiB of the text.
    for i in 0..48 {
        fs::write(dir.path().join(format!("text/{i:02}.conf")), text(i, "after")).unwrap();
    }
    for d in 0..20 {
        for f in 0..50 {
            fs::write(dir.path().join(format!("small/d{d:02}/f{f:02}.txt")), format!("changed {d} {f}\n"))
                .unwrap();
        }
    }
    fs::write(dir.path().join("large-0.bin"), vec![0u8; 6 * MIB]).unwrap();
    let keep_total = MIB as u64;
    let keep = KeepText { baseline: Arc::new(baseline), per_file, total: keep_total };
    let options = StreamOptions { keep_text: Some(keep), ..StreamOptions::default() };

    let (s, peak) = peak_of(|| {
        let mut tar = tar::Builder::new(Hashing::default());
        stream_dir(dir.path(), &limits, &options, &mut tar, Path::new("workdir")).unwrap()
    });

    let kept: u64 =
        s.texts.iter().map(|(_, t)| if let NewText::Kept(b) = t { b.len() as u64 } else { 0 }).sum();
    let past = s.texts.iter().filter(|(_, t)| *t == NewText::PastTotal).count();
    assert!(kept <= keep_total && kept > keep_total - per_file, "{kept} bytes kept");
    assert!(past > 30, "most of the changed text is past the bound: {past} files");
    assert!(s.texts.iter().any(|(p, t)| p == Path::new("large-0.bin") && *t == NewText::Binary));
    // The peak is what is kept plus what streaming alone holds (below 2 MiB, as above).
    assert!(peak as u64 >= kept, "the count sees the kept text: {peak} < {kept}");
    assert!((peak as u64) < kept + 2 * MIB as u64, "kept {kept} bytes, held {peak} at the peak");
}
