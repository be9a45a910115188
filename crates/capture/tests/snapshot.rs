//! Snapshots are byte-for-byte deterministic and unpack with the real `tar`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use gitvisor_capture::{capture_dir, hex, write_snapshot, BlobPool, Limits};
use sha2::{Digest, Sha256};

fn long_dir() -> PathBuf {
    (0..4).map(|i| format!("{i}{}", "n".repeat(59))).collect()
}

fn build_tree(root: &Path) {
    fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(root.join("dir/empty")).unwrap();
    fs::write(root.join("dir/b.txt"), b"beta").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"odd\xfe.bin")), [0u8, 1, 2]).unwrap();
    symlink("dir/b.txt", root.join("link")).unwrap();
    symlink(format!("{}/target", "x".repeat(150)), root.join("long-link")).unwrap();
    fs::create_dir_all(root.join(long_dir())).unwrap();
    fs::write(root.join(long_dir()).join("deep.txt"), b"deep").unwrap();
}

fn snapshot_sha(root: &Path) -> String {
    let capture = capture_dir(root, &Limits::default(), &BlobPool::default()).unwrap();
    let tar = write_snapshot(&capture, Path::new("workdir"), Vec::new()).unwrap();
    hex(&Sha256::digest(&tar))
}

#[test]
fn the_same_tree_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let first = snapshot_sha(dir.path());
    assert_eq!(first, snapshot_sha(dir.path()));

    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let file = fs::File::options().write(true).open(dir.path().join("a.txt")).unwrap();
    file.set_modified(old).unwrap();
    assert_eq!(first, snapshot_sha(dir.path()), "an mtime alone changes nothing");

    fs::write(dir.path().join("a.txt"), b"alphA\n").unwrap();
    assert_ne!(first, snapshot_sha(dir.path()), "one byte changes the archive");
}

#[test]
fn an_identical_tree_elsewhere_gives_the_same_bytes() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    build_tree(one.path());
    build_tree(two.path());
    assert_eq!(snapshot_sha(one.path()), snapshot_sha(two.path()));
}

#[test]
fn gnu_tar_unpacks_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("snapshot.tar");
    let file = fs::File::create(&archive).unwrap();
    write_snapshot(&capture, Path::new("workdir"), file).unwrap();

    let status = Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(out.path()).status().unwrap();
    assert!(status.success());

    let unpacked = out.path().join("workdir");
    for name in [
        PathBuf::from("a.txt"),
        PathBuf::from("run.sh"),
        PathBuf::from("dir/b.txt"),
        PathBuf::from(OsStr::from_bytes(b"odd\xfe.bin")),
        long_dir().join("deep.txt"),
    ] {
        let original = fs::read(dir.path().join(&name)).unwrap();
        let restored = fs::read(unpacked.join(&name)).unwrap();
        assert_eq!(original, restored, "{name:?}");
    }
    let mode = |p: &str| fs::metadata(unpacked.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(mode("a.txt"), 0o644);
    assert!(unpacked.join("dir/empty").is_dir());
    assert_eq!(fs::read_link(unpacked.join("link")).unwrap(), Path::new("dir/b.txt"));
    assert_eq!(
        fs::read_link(unpacked.join("long-link")).unwrap(),
        PathBuf::from(format!("{}/target", "x".repeat(150)))
    );
}

// Found by the capture_tar fuzz target: targets went through `tar`'s path canonicalisation, so a
// link to `/` read back as `//`, `a//b` as `a/b`, `dir/` as `dir`.
#[test]
fn symlink_targets_are_kept_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let long_with_slashes = format!("a{}b", "/".repeat(150));
    let long_odd = [b"x".repeat(120), b"/\xff/./".to_vec()].concat();
    let targets: Vec<Vec<u8>> =
        [b"/".to_vec(), b"a//b".to_vec(), b"./x".to_vec(), b"dir/".to_vec(), b"a/./b".to_vec()]
            .into_iter()
            .chain([long_with_slashes.into_bytes(), long_odd, b"y".repeat(100), b"z".repeat(101)])
            .collect();
    for (i, target) in targets.iter().enumerate() {
        symlink(OsStr::from_bytes(target), dir.path().join(format!("link{i}"))).unwrap();
    }
    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();
    let bytes = write_snapshot(&capture, Path::new("workdir"), Vec::new()).unwrap();

    let mut archive = tar::Archive::new(&bytes[..]);
    let mut links = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if let Some(target) = entry.link_name_bytes() {
            links.insert(entry.path_bytes().into_owned(), target.into_owned());
        }
    }
    for (i, target) in targets.iter().enumerate() {
        let path = format!("workdir/link{i}").into_bytes();
        assert_eq!(links.get(&path), Some(target), "link{i}");
    }

    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("snapshot.tar");
    fs::write(&archive, &bytes).unwrap();
    let status = Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(out.path()).status().unwrap();
    assert!(status.success());
    for (i, target) in targets.iter().enumerate() {
        let read = fs::read_link(out.path().join(format!("workdir/link{i}"))).unwrap();
        assert_eq!(read.as_os_str().as_bytes(), &target[..], "GNU tar unpacks link{i}");
    }
}

#[test]
fn entries_follow_the_walk_a_directory_then_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("lib")).unwrap();
    fs::write(dir.path().join("lib/x"), b"x").unwrap();
    fs::create_dir_all(dir.path().join("lib-old")).unwrap();
    fs::write(dir.path().join("lib-old/y"), b"y").unwrap();
    fs::write(dir.path().join("lib.rs"), b"mod x;").unwrap();
    fs::write(dir.path().join("a"), b"a").unwrap();
    let capture = capture_dir(dir.path(), &Limits::default(), &BlobPool::default()).unwrap();
    // By path bytes, `lib-old` and `lib.rs` would come between `lib` and `lib/x` ('-' and '.'
    // sort before '/'); component by component, as `tar --sort=name` and the walk have it, they
    // come after everything under `lib`.
    let order = ["a", "lib", "lib/x", "lib-old", "lib-old/y", "lib.rs"];
    let paths: Vec<&Path> = capture.entries.iter().map(|e| e.path.as_path()).collect();
    assert_eq!(paths, order.map(Path::new));
    let bytes = write_snapshot(&capture, Path::new("workdir"), Vec::new()).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let in_archive: Vec<PathBuf> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().into_owned()).collect();
    let want: Vec<PathBuf> = std::iter::once(PathBuf::from("workdir"))
        .chain(order.map(|p| Path::new("workdir").join(p)))
        .collect();
    assert_eq!(in_archive, want);
}
