//! A streamed capture writes the archive a capture in memory would, byte for byte, and takes
//! the same tree: same entries, hashes, skips and reasons.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use gitvisor_capture::{
    capture_dir, diff, stream_dir, write_snapshot, BlobPool, EntryKind, Limits, Rewrite, Rewritten,
    SkipReason, StreamError, StreamOptions, Streamed,
};
use sha2::{Digest, Sha256};

fn build_tree(root: &Path) {
    fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("data.bin"), &binary).unwrap();
    fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(root.join("dir/empty-dir")).unwrap();
    fs::write(root.join("dir/b.txt"), b"beta").unwrap();
    fs::create_dir_all(root.join("dir/deeper/still")).unwrap();
    fs::write(root.join("dir/deeper/still/c.txt"), b"gamma").unwrap();
    fs::write(root.join("dir.rs"), b"mod dir;").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"odd\xfe.bin")), [0u8, 1, 2]).unwrap();
    symlink("dir/b.txt", root.join("link")).unwrap();
    symlink(format!("{}/target", "x".repeat(150)), root.join("long-link")).unwrap();
    let long: PathBuf = (0..4).map(|i| format!("{i}{}", "n".repeat(59))).collect();
    fs::create_dir_all(root.join(&long)).unwrap();
    fs::write(root.join(&long).join("deep.txt"), b"deep").unwrap();
    // Skipped: too large, a FIFO, excluded, and `.git/`.
    fs::write(root.join("huge.bin"), vec![9u8; 200_000]).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    fs::write(root.join("app.log"), b"log").unwrap();
    fs::create_dir_all(root.join(".git/objects")).unwrap();
    fs::write(root.join(".git/config"), b"[core]").unwrap();
}

fn limits() -> Limits {
    Limits { max_file_size: 100_000, exclude: vec!["*.log".into()], ..Limits::default() }
}

fn stream(root: &Path, limits: &Limits, options: &StreamOptions) -> (Streamed, Vec<u8>) {
    let mut tar = tar::Builder::new(Vec::new());
    let streamed = stream_dir(root, limits, options, &mut tar, Path::new("workdir")).unwrap();
    (streamed, tar.into_inner().unwrap())
}

/// The regular files of an uncompressed archive, in order.
fn files_in(archive: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            out.push((entry.path().unwrap().into_owned(), bytes));
        }
    }
    out
}

fn entry_paths(archive: &[u8]) -> Vec<PathBuf> {
    let mut archive = tar::Archive::new(archive);
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().into_owned()).collect()
}

#[test]
fn a_streamed_archive_is_the_in_memory_snapshot_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let limits = limits();
    let memory = capture_dir(dir.path(), &limits, &BlobPool::default()).unwrap();
    let expected = write_snapshot(&memory, Path::new("workdir"), Vec::new()).unwrap();

    let (s, archive) = stream(dir.path(), &limits, &StreamOptions::default());

    if archive != expected {
        let at = archive.iter().zip(&expected).position(|(a, b)| a != b);
        panic!("the archives differ at byte {at:?} (lengths {} and {})", archive.len(), expected.len());
    }
    assert_eq!(s.capture.manifest(), memory.manifest(), "same paths, kinds, sizes and hashes");
    assert_eq!(s.capture.skipped, memory.skipped);
    assert_eq!(s.capture.total_bytes, memory.total_bytes);
    assert!(diff(&memory, &s.capture).is_empty());
    assert!((s.complete, s.archived_bytes) == (true, memory.total_bytes));
    assert!(s.altered.is_empty() && s.rewritten.is_empty());
    assert_eq!(s.capture.held_bytes(), 0, "a streamed capture holds no file's bytes");
    let reason =
        |p: &str| s.capture.skipped.iter().find(|k| k.path == Path::new(p)).map(|k| k.reason.clone());
    assert_eq!(reason("fifo"), Some(SkipReason::Special { kind: "fifo" }));
    assert_eq!(reason("huge.bin"), Some(SkipReason::TooLarge { size: 200_000, limit: 100_000 }));
    assert_eq!(reason("app.log"), Some(SkipReason::Excluded { pattern: "*.log".into() }));
    // What the archive holds is the tree's.
    let files = files_in(&archive);
    assert_eq!(files.len(), 9, "{:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
    for (path, bytes) in files {
        let original = fs::read(dir.path().join(path.strip_prefix("workdir").unwrap())).unwrap();
        assert_eq!(bytes, original, "{path:?}");
    }
}

#[test]
fn rewritten_files_are_archived_as_rewritten_and_captured_as_found() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.env"), b"TOKEN=secret\n").unwrap();
    fs::write(dir.path().join("notes.txt"), b"TOKEN=stays\n").unwrap();
    let options = StreamOptions {
        rewrite: Some(Rewrite { paths: vec!["app.env".into()], with: |_, _| b"TOKEN=<redacted>\n".to_vec() }),
        ..StreamOptions::default()
    };

    let (s, archive) = stream(dir.path(), &Limits::default(), &options);

    let files = files_in(&archive);
    assert_eq!(files[0], ("workdir/app.env".into(), b"TOKEN=<redacted>\n".to_vec()));
    assert_eq!(files[1], ("workdir/notes.txt".into(), b"TOKEN=stays\n".to_vec()));
    let sha = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
    let found = match &s.capture.entries[0].kind {
        EntryKind::File { size, sha256, .. } => (*size, *sha256),
        other => panic!("{other:?}"),
    };
    assert_eq!(found, (13, sha(b"TOKEN=secret\n")), "the capture is the file as found, for the diff");
    let written = Rewritten { path: "app.env".into(), size: 17, sha256: sha(b"TOKEN=<redacted>\n") };
    assert_eq!(s.rewritten, vec![written]);
    assert_eq!((s.capture.total_bytes, s.archived_bytes), (13 + 12, 17 + 12));
}

#[test]
fn past_the_archive_limit_nothing_more_is_written_but_every_file_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        fs::write(dir.path().join(name), [name.as_bytes()[0]; 100]).unwrap();
    }
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/e"), [b'e'; 100]).unwrap();
    let memory = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();
    let limited = |limit| StreamOptions { archive_limit: Some(limit), ..StreamOptions::default() };

    let (s, archive) = stream(dir.path(), &Limits::default(), &limited(150));
    assert!(!s.complete);
    assert_eq!(s.archived_bytes, 400, "the whole tree is counted");
    assert_eq!(s.capture.manifest(), memory.manifest(), "and listed and hashed");
    assert_eq!(entry_paths(&archive), ["workdir", "workdir/a"].map(PathBuf::from), "written up to the limit");

    let (s, _) = stream(dir.path(), &Limits::default(), &limited(400));
    assert!(s.complete, "the limit itself is allowed");
}

#[test]
fn a_missing_root_writes_nothing_and_a_failing_archive_stops_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let gone = dir.path().join("gone");
    let error =
        stream_dir(&gone, &Limits::default(), &StreamOptions::default(), &mut tar, Path::new("workdir"));
    assert!(matches!(error, Err(StreamError::Root(_))), "{error:?}");
    assert!(tar.get_ref().is_empty());

    /// Takes 4 KiB, then fails as a full disk does.
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 + buf.len() > 4096 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    for i in 0..10 {
        fs::write(dir.path().join(format!("f{i}")), [b'x'; 1000]).unwrap();
    }
    let mut tar = tar::Builder::new(Full(0));
    let error =
        stream_dir(dir.path(), &Limits::default(), &StreamOptions::default(), &mut tar, Path::new(""));
    match error {
        Err(StreamError::Archive(e)) => assert_eq!(e.raw_os_error(), Some(28)),
        other => panic!("{other:?}"),
    }
}
