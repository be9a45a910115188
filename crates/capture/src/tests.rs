//! Races inside the walk, made to happen with the test hooks between stat and open, and between
//! a file's `fstat` and its read.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::test_hooks::set_before_open;
use crate::{capture_dir, BlobPool, EntryKind, Limits, SkipReason};

fn reason_of<'a>(capture: &'a crate::Capture, path: &str) -> Option<&'a SkipReason> {
    capture.skipped.iter().find(|s| s.path == Path::new(path)).map(|s| &s.reason)
}

#[test]
fn a_file_removed_before_its_open_is_unreadable_with_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("gone"), b"soon gone").unwrap();
    fs::write(dir.path().join("kept"), b"kept").unwrap();
    let root = dir.path().to_path_buf();
    let _hook = set_before_open(move |path| {
        if path == Path::new("gone") {
            fs::remove_file(root.join("gone")).unwrap();
        }
    });

    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();

    match reason_of(&capture, "gone") {
        Some(SkipReason::Unreadable { error }) => {
            assert!(error.contains("No such file or directory"), "{error}")
        }
        other => panic!("expected unreadable, got {other:?}"),
    }
    assert_eq!(capture.entries.len(), 1);
    assert_eq!(capture.total_bytes, 4);
}

/// A root whose directory `sub` is swapped, just before the walk opens it, for a symlink to a
/// directory outside holding `secret` ("outside the root"). Keep all three alive.
fn sub_swapped_for_a_link_when_opened() -> (tempfile::TempDir, tempfile::TempDir, crate::test_hooks::HookGuard)
{
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"outside the root").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/inner"), b"inner").unwrap();
    let root = dir.path().to_path_buf();
    let target = outside.path().to_path_buf();
    let hook = set_before_open(move |path| {
        if path == Path::new("sub") {
            fs::rename(root.join("sub"), root.join("sub.moved")).unwrap();
            symlink(&target, root.join("sub")).unwrap();
        }
    });
    (dir, outside, hook)
}

#[test]
fn a_directory_swapped_for_a_symlink_mid_walk_is_not_followed() {
    let (dir, _outside, _hook) = sub_swapped_for_a_link_when_opened();

    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();

    assert!(
        matches!(reason_of(&capture, "sub"), Some(SkipReason::Unreadable { .. })),
        "{:?}",
        capture.skipped
    );
    for entry in &capture.entries {
        assert!(!entry.path.starts_with("sub"), "followed into {entry:?}");
        if let EntryKind::File { content: Some(content), .. } = &entry.kind {
            assert_ne!(&content[..], b"outside the root");
        }
    }
}

/// A root whose regular file `f` is swapped, just before the walk opens it, for a FIFO that
/// nothing writes (opening it to read would block). Keep both alive.
fn file_swapped_for_a_fifo_when_opened() -> (tempfile::TempDir, crate::test_hooks::HookGuard) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"regular").unwrap();
    let root = dir.path().to_path_buf();
    let hook = set_before_open(move |path| {
        if path == Path::new("f") {
            fs::remove_file(root.join("f")).unwrap();
            nix::unistd::mkfifo(&root.join("f"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        }
    });
    (dir, hook)
}

#[test]
fn a_file_swapped_for_a_fifo_is_not_read() {
    let (dir, _hook) = file_swapped_for_a_fifo_when_opened();

    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();

    assert_eq!(reason_of(&capture, "f"), Some(&SkipReason::Special { kind: "fifo" }));
    assert!(capture.entries.is_empty());
}

#[test]
fn the_total_cap_skips_that_file_and_every_later_one() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), [0u8; 60]).unwrap();
    fs::write(dir.path().join("b"), [1u8; 60]).unwrap();
    fs::write(dir.path().join("c"), [2u8; 10]).unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    symlink("a", dir.path().join("e")).unwrap();
    let limits = Limits { max_total_size: 100, ..Limits::default() };

    let capture = capture_dir(dir.path(), &limits, &BlobPool::default()).unwrap();

    let paths: Vec<_> = capture.entries.iter().map(|e| e.path.clone()).collect();
    assert_eq!(paths, ["a", "d", "e"].map(std::path::PathBuf::from));
    let cap = SkipReason::TotalCapReached { limit: 100 };
    assert_eq!(reason_of(&capture, "b"), Some(&cap));
    assert_eq!(reason_of(&capture, "c"), Some(&cap), "c fits, but comes after b");
    assert_eq!(capture.total_bytes, 60);
}

#[test]
fn a_baseline_since_the_previous_one_reads_only_what_changed() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("same.txt"), b"unchanged").unwrap();
    fs::write(p("grown.txt"), b"short").unwrap();
    fs::write(p("rewritten.txt"), b"aaaa").unwrap();
    let pool = BlobPool::default();
    let mut baseline = capture_dir(dir.path(), &Limits::default(), &pool).unwrap();
    // As if taken well after the files last changed.
    baseline.taken_at += std::time::Duration::from_secs(10);

    fs::write(p("grown.txt"), b"much longer now").unwrap();
    // Same size, and its modification time put back: only the status-change time tells.
    let old = fs::metadata(p("rewritten.txt")).unwrap();
    fs::write(p("rewritten.txt"), b"bbbb").unwrap();
    let mtime = nix::sys::time::TimeSpec::new(
        std::os::unix::fs::MetadataExt::mtime(&old),
        std::os::unix::fs::MetadataExt::mtime_nsec(&old),
    );
    nix::sys::stat::utimensat(
        None,
        &p("rewritten.txt"),
        &mtime,
        &mtime,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .unwrap();

    let opened = Rc::new(RefCell::new(Vec::new()));
    let seen = opened.clone();
    let _hook = set_before_open(move |path| seen.borrow_mut().push(path.to_string_lossy().into_owned()));
    let now = baseline_since(dir.path(), &pool, Some(&baseline));
    let mut opened = opened.borrow().clone();
    opened.sort();
    assert_eq!(opened, vec!["grown.txt", "rewritten.txt"], "the unchanged file is not read again");
    let content = |c: &crate::Capture, n: &str| match &c
        .entries
        .iter()
        .find(|e| e.path == Path::new(n))
        .unwrap()
        .kind
    {
        EntryKind::File { content: Some(content), .. } => content.to_vec(),
        _ => panic!("not a file"),
    };
    assert_eq!(content(&now, "same.txt"), b"unchanged");
    assert_eq!(content(&now, "grown.txt"), b"much longer now");
    assert_eq!(content(&now, "rewritten.txt"), b"bbbb");
    assert_eq!(now.total_bytes, 9 + 15 + 4);
}

#[test]
fn files_changed_just_before_the_baseline_are_read_again() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("fresh.txt"), b"fresh").unwrap();
    let pool = BlobPool::default();
    // Taken at once: a change in the same clock tick could hide behind equal times.
    let baseline = capture_dir(dir.path(), &Limits::default(), &pool).unwrap();
    let opened = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = opened.clone();
    let _hook = set_before_open(move |_| seen.set(seen.get() + 1));
    baseline_since(dir.path(), &pool, Some(&baseline));
    assert_eq!(opened.get(), 1);
}

#[test]
fn a_baseline_within_a_budget_gives_up_past_it_and_is_the_same_baseline_within_it() {
    use crate::Budget;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    for n in ["a.txt", "b.txt", "sub/c.txt"] {
        fs::write(dir.path().join(n), n.repeat(10)).unwrap();
    }
    let pool = BlobPool::default();
    let mut previous = baseline_since(dir.path(), &pool, None);
    previous.taken_at += std::time::Duration::from_secs(10);
    let within = |budget: Budget| {
        crate::baseline_within(
            dir.path(),
            &Limits::default(),
            &pool,
            Some(&previous),
            64 * 1024,
            8 << 20,
            Some(budget),
        )
        .unwrap()
    };
    // Four names (a.txt, b.txt, sub, sub/c.txt), all unchanged: nothing to read.
    let taken = within(Budget { names: 4, read_bytes: 0 }).expect("within its budget");
    let unbounded = baseline_since(dir.path(), &pool, Some(&previous));
    assert_eq!(taken.entries, unbounded.entries);
    assert_eq!(taken.total_bytes, unbounded.total_bytes);
    assert_eq!(taken.stamps, unbounded.stamps);
    assert!(within(Budget { names: 3, read_bytes: 0 }).is_none(), "one name too many");

    // A changed file must be read: within the bytes it may read, or not at all.
    fs::write(dir.path().join("sub/c.txt"), b"changed, and 28 bytes long..").unwrap();
    assert!(within(Budget { names: 4, read_bytes: 27 }).is_none(), "one byte short");
    let taken = within(Budget { names: 4, read_bytes: 28 }).expect("within its budget");
    assert_eq!(file_content(&taken, "sub/c.txt").unwrap(), b"changed, and 28 bytes long..");
}

/// A baseline of `root` since `previous`, keeping every small text file.
fn baseline_since(root: &Path, pool: &BlobPool, previous: Option<&crate::Capture>) -> crate::Capture {
    crate::baseline_since(root, &Limits::default(), pool, previous, 64 * 1024, 8 << 20).unwrap()
}

fn file_content(c: &crate::Capture, n: &str) -> Option<Vec<u8>> {
    match &c.entries.iter().find(|e| e.path == Path::new(n)).unwrap().kind {
        EntryKind::File { content, .. } => content.as_ref().map(|b| b.to_vec()),
        _ => panic!("not a file"),
    }
}

#[test]
fn a_baseline_keeps_the_bytes_of_small_text_files_only_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("a.conf"), b"port = 8080\n").unwrap();
    fs::write(p("b.bin"), b"\x7fELF\0\0\0binary").unwrap();
    fs::write(p("c.log"), vec![b'x'; 5000]).unwrap();
    fs::write(p("d.txt"), vec![b'y'; 800]).unwrap();
    fs::write(p("e.txt"), vec![b'z'; 300]).unwrap();
    let pool = BlobPool::default();
    let base = crate::baseline_since(dir.path(), &Limits::default(), &pool, None, 1000, 1000).unwrap();
    assert_eq!(file_content(&base, "a.conf").as_deref(), Some(&b"port = 8080\n"[..]));
    assert_eq!(file_content(&base, "b.bin"), None, "binary: no bytes");
    assert_eq!(file_content(&base, "c.log"), None, "over the per-file bound");
    assert_eq!(file_content(&base, "d.txt").map(|b| b.len()), Some(800));
    assert_eq!(file_content(&base, "e.txt"), None, "over the total: 12 + 800 + 300 > 1000");
    assert_eq!(base.held_bytes(), 812);
    // Sizes and hashes stay for every file: a change is still seen.
    assert_eq!(base.file_count(), 5);
    assert_eq!(base.total_bytes, 12 + 13 + 5000 + 800 + 300);
    let store_bytes = {
        let mut store = crate::Store::new(crate::StoreSettings {
            ttl: std::time::Duration::from_secs(60),
            max_captures: 10,
            max_bytes: 1 << 30,
        });
        store.add(base, std::time::Instant::now());
        store.total_bytes()
    };
    assert_eq!(store_bytes, 812, "the store counts the bytes held");
}

#[test]
fn a_baseline_takes_unchanged_files_without_bytes_and_a_crash_capture_hashes_them_alike() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("big.log"), vec![b'x'; 100_000]).unwrap();
    fs::write(p("app.conf"), b"a = 1\n").unwrap();
    let pool = BlobPool::default();
    let (per_file, total) = (64 * 1024, 8 << 20);
    let mut first =
        crate::baseline_since(dir.path(), &Limits::default(), &pool, None, per_file, total).unwrap();
    first.taken_at += std::time::Duration::from_secs(10);
    assert_eq!(file_content(&first, "big.log"), None);

    let opened = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = opened.clone();
    let _hook = set_before_open(move |path| seen.borrow_mut().push(path.to_string_lossy().into_owned()));
    // The next start's baseline: nothing changed, nothing is read.
    let mut second =
        crate::baseline_since(dir.path(), &Limits::default(), &pool, Some(&first), per_file, total).unwrap();
    second.taken_at += std::time::Duration::from_secs(10);
    assert!(opened.borrow().is_empty(), "read again: {:?}", opened.borrow());
    assert_eq!(file_content(&second, "app.conf").as_deref(), Some(&b"a = 1\n"[..]));
    // At the crash every file is read into the archive, hashed as the baseline hashed it.
    let (now, files) = stream(dir.path());
    assert_eq!(*opened.borrow(), ["app.conf", "big.log"]);
    assert_eq!(files[1].1.len(), 100_000);
    assert!(crate::diff(&second, &now.capture).is_empty(), "unchanged: same sizes and hashes");
}

/// Streams `root` with the default limits; returns what was taken and the archive's files.
fn stream(root: &Path) -> (crate::Streamed, Vec<(std::path::PathBuf, Vec<u8>)>) {
    use std::io::Read;
    let mut tar = tar::Builder::new(Vec::new());
    let streamed =
        crate::stream_dir(root, &Limits::default(), &Default::default(), &mut tar, Path::new("")).unwrap();
    let bytes = tar.into_inner().unwrap();
    let mut files = Vec::new();
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.push((entry.path().unwrap().into_owned(), content));
        }
    }
    (streamed, files)
}

fn sha_of(s: &crate::Streamed, name: &str) -> (u64, [u8; 32]) {
    match &s.capture.entries.iter().find(|e| e.path == Path::new(name)).unwrap().kind {
        EntryKind::File { size, sha256, content: None, .. } => (*size, *sha256),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_file_that_grows_while_streamed_is_cut_at_its_size_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("grows"), b"0123456789").unwrap();
    fs::write(dir.path().join("next"), b"after it").unwrap();
    let root = dir.path().to_path_buf();
    let _hook = crate::test_hooks::set_before_read(move |path| {
        if path == Path::new("grows") {
            use std::io::Write;
            fs::OpenOptions::new().append(true).open(root.join("grows")).unwrap().write_all(b"more").unwrap();
        }
    });

    let (s, files) = stream(dir.path());

    let names = |p: &str| std::path::PathBuf::from(p);
    assert_eq!(files, vec![(names("grows"), b"0123456789".to_vec()), (names("next"), b"after it".to_vec())]);
    assert_eq!(
        sha_of(&s, "grows"),
        (10, crate::walk::sha256(b"0123456789")),
        "the hash is of what was written"
    );
    let grew = crate::Altered { path: names("grows"), size: 10, how: crate::Alteration::Grew };
    assert_eq!(s.altered, vec![grew]);
    assert_eq!(s.archived_bytes, 18);
}

#[test]
fn a_file_that_shrinks_while_streamed_is_padded_with_nul_bytes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("shrinks"), b"0123456789").unwrap();
    fs::write(dir.path().join("tail"), b"after it").unwrap();
    let root = dir.path().to_path_buf();
    let _hook = crate::test_hooks::set_before_read(move |path| {
        if path == Path::new("shrinks") {
            fs::OpenOptions::new().write(true).open(root.join("shrinks")).unwrap().set_len(4).unwrap();
        }
    });

    let (s, files) = stream(dir.path());

    let padded = b"0123\0\0\0\0\0\0".to_vec();
    assert_eq!(files[0], ("shrinks".into(), padded.clone()));
    assert_eq!(files[1], ("tail".into(), b"after it".to_vec()), "the archive stays aligned after it");
    assert_eq!(sha_of(&s, "shrinks"), (10, crate::walk::sha256(&padded)));
    let how = crate::Alteration::Shrank { read: 4 };
    assert_eq!(s.altered, vec![crate::Altered { path: "shrinks".into(), size: 10, how }]);
    assert!(s.altered[0].to_string().starts_with("shrank while captured: 4 bytes read"), "{}", s.altered[0]);
}

#[test]
fn a_streamed_file_swapped_for_a_fifo_is_not_read() {
    let (dir, _hook) = file_swapped_for_a_fifo_when_opened();

    let (s, files) = stream(dir.path());

    assert_eq!(reason_of(&s.capture, "f"), Some(&SkipReason::Special { kind: "fifo" }));
    assert!(files.is_empty() && s.capture.entries.is_empty());
}

#[test]
fn a_streamed_directory_swapped_for_a_symlink_is_not_followed() {
    let (dir, _outside, _hook) = sub_swapped_for_a_link_when_opened();

    let (s, files) = stream(dir.path());

    assert!(matches!(reason_of(&s.capture, "sub"), Some(SkipReason::Unreadable { .. })), "{s:?}");
    assert!(files.iter().all(|(_, bytes)| bytes != b"outside the root"), "{files:?}");
    assert!(s.capture.entries.iter().all(|e| !e.path.starts_with("sub")), "{s:?}");
}

#[test]
fn a_changed_file_that_shrinks_while_streamed_keeps_no_text() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config"), b"a: 1\nb: 2\n").unwrap();
    let limits = crate::Limits::default();
    let baseline =
        crate::baseline_since(dir.path(), &limits, &BlobPool::default(), None, 1024, 4096).unwrap();
    fs::write(dir.path().join("config"), b"a: 1\nb: 3\n").unwrap();
    let root = dir.path().to_path_buf();
    let _hook = crate::test_hooks::set_before_read(move |path| {
        if path == Path::new("config") {
            fs::OpenOptions::new().write(true).open(root.join("config")).unwrap().set_len(4).unwrap();
        }
    });
    let keep = crate::KeepText { baseline: std::sync::Arc::new(baseline), per_file: 1024, total: 4096 };
    let options = crate::StreamOptions { keep_text: Some(keep), ..crate::StreamOptions::default() };

    let mut tar = tar::Builder::new(Vec::new());
    let s = crate::stream_dir(dir.path(), &limits, &options, &mut tar, Path::new("")).unwrap();

    // Its archived bytes are padded with NULs: no text to diff, and the report says why.
    assert_eq!(s.texts, vec![("config".into(), crate::NewText::Altered)]);
    let mut changes = crate::diff(&options.keep_text.as_ref().unwrap().baseline, &s.capture);
    crate::text_diffs(&mut changes, options.keep_text.as_ref().unwrap(), &s, None);
    assert_eq!(changes.modified[0].diff_note.as_deref(), Some("changed while it was captured: not diffed"));
}
