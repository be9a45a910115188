//! A hostile working directory: links out and in circles, a FIFO, a socket, unreadable
//! entries, a huge file, odd names, deep paths, `.git/` and excluded files.
//!
//! Unreadability must be real. As root (the usual CI case) permission bits do not stop us, so
//! the test re-runs itself as `nobody` in a child process and makes every assertion there.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use gitvisor_capture::{capture_dir, BlobPool, Capture, EntryKind, Limits, SkipReason};

const CHILD_ROOT: &str = "GITVISOR_CAPTURE_TEST_ROOT";
const NOBODY: u32 = 65534;

fn long_dir() -> PathBuf {
    (0..7).map(|i| format!("{i}{}", "d".repeat(49))).collect()
}

fn build_tree(root: &Path) {
    fs::write(root.join("normal.txt"), b"hello\n").unwrap();
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    symlink("../../..", root.join("up")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::mem::forget(UnixListener::bind(root.join("socket")).unwrap());
    fs::write(root.join("secret"), b"no one may read this").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::create_dir(root.join("locked")).unwrap();
    fs::write(root.join("locked/inside"), b"hidden").unwrap();
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::write(root.join("big.bin"), vec![7u8; 5 * 1024 * 1024]).unwrap();
    fs::write(root.join(OsStr::from_bytes(b"bad\xffname.txt")), b"latin-1").unwrap();
    fs::create_dir_all(root.join(long_dir())).unwrap();
    fs::write(root.join(long_dir()).join("leaf.txt"), b"deep").unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir_all(root.join(".git/objects")).unwrap();
    fs::write(root.join(".git/config"), b"[core]").unwrap();
    fs::write(root.join("app.log"), b"log").unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    fs::write(root.join("sub/deep.log"), b"log").unwrap();
    fs::create_dir(root.join("target")).unwrap();
    fs::write(root.join("target/out"), b"build output").unwrap();
}

fn limits() -> Limits {
    Limits { exclude: vec!["*.log".into(), "target/".into()], ..Limits::default() }
}

/// Captures on another thread so a hang fails the test instead of stalling it.
fn capture_with_deadline(root: &Path) -> Capture {
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(capture_dir(&root, &limits(), &BlobPool::default()));
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("capture hung").unwrap()
}

fn entry(capture: &Capture, path: impl AsRef<Path>) -> Option<&EntryKind> {
    let path = path.as_ref();
    capture.entries.iter().find(|e| e.path == path).map(|e| &e.kind)
}

fn reason<'a>(capture: &'a Capture, path: &str) -> &'a SkipReason {
    let found = capture.skipped.iter().find(|s| s.path == Path::new(path));
    &found.unwrap_or_else(|| panic!("{path} not skipped: {:?}", capture.skipped)).reason
}

fn link_target(capture: &Capture, path: &str) -> PathBuf {
    match entry(capture, path) {
        Some(EntryKind::Symlink { target }) => target.clone(),
        other => panic!("{path}: expected a symlink, got {other:?}"),
    }
}

/// Every assertion, made by a process that cannot read `secret` or enter `locked`.
fn check(root: &Path) {
    let capture = capture_with_deadline(root);

    assert_eq!(link_target(&capture, "passwd"), Path::new("/etc/passwd"));
    assert_eq!(link_target(&capture, "loop_a"), Path::new("loop_b"));
    assert_eq!(link_target(&capture, "loop_b"), Path::new("loop_a"));
    assert_eq!(link_target(&capture, "up"), Path::new("../../.."));
    let passwd = fs::read("/etc/passwd").unwrap();
    for e in &capture.entries {
        if let EntryKind::File { content: Some(content), .. } = &e.kind {
            assert_ne!(&content[..], &passwd[..], "{:?} holds /etc/passwd", e.path);
            assert!(!content.windows(5).any(|w| w == b"root:"), "{:?}", e.path);
        }
    }

    assert_eq!(reason(&capture, "fifo"), &SkipReason::Special { kind: "fifo" });
    assert_eq!(reason(&capture, "socket"), &SkipReason::Special { kind: "socket" });
    for path in ["secret", "locked"] {
        match reason(&capture, path) {
            SkipReason::Unreadable { error } => {
                assert!(error.contains("Permission denied (os error 13)"), "{error}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(entry(&capture, "locked").is_none());
    assert_eq!(
        reason(&capture, "big.bin"),
        &SkipReason::TooLarge { size: 5 * 1024 * 1024, limit: 1024 * 1024 }
    );

    let odd = Path::new(OsStr::from_bytes(b"bad\xffname.txt"));
    assert!(matches!(entry(&capture, odd), Some(EntryKind::File { size: 7, .. })));
    let leaf = long_dir().join("leaf.txt");
    assert!(leaf.as_os_str().len() > 300);
    assert!(matches!(entry(&capture, &leaf), Some(EntryKind::File { size: 4, .. })));
    assert_eq!(entry(&capture, "empty"), Some(&EntryKind::Dir));

    assert!(capture.entries.iter().all(|e| !e.path.starts_with(".git")));
    assert!(capture.skipped.iter().all(|s| !s.path.starts_with(".git")));

    let log = SkipReason::Excluded { pattern: "*.log".into() };
    assert_eq!(reason(&capture, "app.log"), &log);
    assert_eq!(reason(&capture, "sub/deep.log"), &log);
    assert_eq!(reason(&capture, "target"), &SkipReason::Excluded { pattern: "target/".into() });
    assert!(entry(&capture, "target/out").is_none());

    let files: u64 = [6, 7, 4].iter().sum();
    assert_eq!(capture.total_bytes, files, "normal.txt, the odd name and leaf.txt");
    for skipped in &capture.skipped {
        assert!(!skipped.to_string().contains('\n'));
    }
    let json = serde_json::to_string(&capture.skipped).unwrap();
    assert!(json.contains(r#""path":"big.bin","reason":{"type":"too_large""#), "{json}");
    let sorted = capture.entries.windows(2).all(|w| w[0].path < w[1].path);
    assert!(sorted, "entries are sorted component by component");
}

#[test]
fn adversarial_tree() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    // As another user, the tree is checked as that user; as root, as `nobody` (for whom the
    // unreadable parts of the tree really are unreadable).
    if nix::unistd::geteuid().is_root() {
        check_as_nobody(dir.path());
    } else {
        check(dir.path());
    }
}

fn check_as_nobody(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["adversarial_tree_as_nobody", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROOT, dir)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    // Let the root-owned temporary directory be removed.
    fs::set_permissions(dir.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// The unprivileged half of [`adversarial_tree`], run by it as `nobody`.
#[test]
#[ignore = "a helper: its parent test runs it in a child process"]
fn adversarial_tree_as_nobody() {
    let root = std::env::var_os(CHILD_ROOT).expect("a helper run by adversarial_tree, which sets its root");
    assert!(!nix::unistd::geteuid().is_root());
    check(Path::new(&root));
}
