//! A small adversarial tree (odd names: long, non-UTF-8, newlines, dots; modes 000 and setuid;
//! symlinks out of the tree, dangling and to themselves; hard links; FIFOs) built in a temporary
//! directory, captured, written as a tar snapshot and read back.
//!
//! Properties: the capture holds exactly what the tree holds (every path either captured or
//! skipped with a reason that is true of it), never anything from outside the root, within
//! `MaxFileSize`/`MaxTotalSize` (what the total cap keeps is a prefix in walk order); the tar
//! reads back to the same entries with normalized headers, every path inside the root; the tree
//! streamed (`stream_dir`) is the same tree with no changes, and its archive is the snapshot's,
//! byte for byte.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use arbitrary::Arbitrary;
use gitvisor_capture::{
    capture_dir, diff, stream_dir, write_snapshot, BlobPool, EntryKind, Limits, SkipReason, StreamOptions,
};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 48;
const SECRET: &[u8] = b"a secret outside the captured root";

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    max_file_size: u16,
    max_total_size: u16,
    exclude: Option<Pattern>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    File {
        name: Name,
        size: u16,
        fill: u8,
        mode: Mode,
    },
    /// Creates a directory and goes into it.
    Dir {
        name: Name,
        mode: Mode,
    },
    /// Back to the parent directory.
    Up,
    Symlink {
        name: Name,
        target: Target,
    },
    /// Another name for the `n`th file made so far.
    HardLink {
        name: Name,
        to: u8,
    },
    Fifo {
        name: Name,
    },
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// Short names, so some collide (a collision skips the operation).
    Short(u8),
    Bytes(Vec<u8>),
    /// Up to the file system's 255 bytes.
    Long(u8, u8),
    Odd(OddName),
}

#[derive(Arbitrary, Debug)]
enum OddName {
    Dots,
    DotsThenName,
    Git,
    Newline,
    Backslash,
    Invalid,
    Dash,
    Space,
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// The `n`th path made so far, relative to the root, from this directory.
    Inside(u8),
    /// The secret outside the root, by a relative path.
    OutsideRelative,
    OutsideAbsolute,
    Root,
    Parents(u8),
    Itself,
    Dangling,
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mode {
    Default,
    Nothing,
    Setuid,
    Executable,
    ReadOnly,
    Bits(u16),
}

#[derive(Arbitrary, Debug)]
enum Pattern {
    Logs,
    DirsOnly,
    DeepX,
    Arbitrary(String),
}

impl Mode {
    fn bits(self, dir: bool) -> Option<u32> {
        match self {
            Mode::Default => None,
            Mode::Nothing => Some(0),
            Mode::Setuid => Some(0o4755),
            Mode::Executable => Some(0o755),
            Mode::ReadOnly => Some(if dir { 0o555 } else { 0o444 }),
            Mode::Bits(b) => Some(u32::from(b) & 0o7777),
        }
    }
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        let mut name = match self {
            Name::Short(n) => vec![b'a' + n % 4],
            Name::Bytes(b) => b.clone(),
            Name::Long(len, fill) => vec![b'a' + fill % 26; 100 + usize::from(*len) % 156],
            Name::Odd(odd) => match odd {
                OddName::Dots => b"...".to_vec(),
                OddName::DotsThenName => b"..x".to_vec(),
                OddName::Git => b".git".to_vec(),
                OddName::Newline => b"line\nbreak".to_vec(),
                OddName::Backslash => b"back\\slash".to_vec(),
                OddName::Invalid => b"inv\xff\xfealid".to_vec(),
                OddName::Dash => b"-rf".to_vec(),
                OddName::Space => b" ".to_vec(),
            },
        };
        name.retain(|&b| b != b'/' && b != 0);
        name.truncate(255);
        match name.as_slice() {
            b"" => b"empty".to_vec(),
            b"." | b".." => b"dots".to_vec(),
            _ => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Made {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Fifo,
}

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

fuzz_target!(|input: Input| {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let root = scratch.path().join("root");
    let outside = scratch.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), SECRET).unwrap();

    let made = build(&root, &input.ops);
    let exclude: Vec<String> = match &input.exclude {
        None => Vec::new(),
        Some(Pattern::Logs) => vec!["*.log".into()],
        Some(Pattern::DirsOnly) => vec!["a*/".into()],
        Some(Pattern::DeepX) => vec!["**/b".into()],
        Some(Pattern::Arbitrary(p)) => vec![p.clone()],
    };
    let limits = Limits {
        max_file_size: u64::from(input.max_file_size),
        max_total_size: u64::from(input.max_total_size),
        exclude,
    };
    check(&root, &made, &limits, &scratch.path().join("unpacked"));

    // Put modes back so the temporary directory can go (when not root).
    for (path, m) in &made {
        if *m == Made::Dir {
            let _ = fs::set_permissions(root.join(os(path)), fs::Permissions::from_mode(0o755));
        }
    }
});

/// Makes the tree; returns what it holds, by path relative to the root.
fn build(root: &Path, ops: &[Op]) -> BTreeMap<Vec<u8>, Made> {
    let mut made: BTreeMap<Vec<u8>, Made> = BTreeMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut dir_modes: Vec<(Vec<u8>, u32)> = Vec::new();
    let mut cwd: Vec<u8> = Vec::new();
    for op in ops.iter().take(MAX_OPS) {
        if let Op::Up = op {
            cwd.truncate(cwd.iter().rposition(|&b| b == b'/').unwrap_or(0));
            continue;
        }
        let name = match op {
            Op::File { name, .. }
            | Op::Dir { name, .. }
            | Op::Symlink { name, .. }
            | Op::HardLink { name, .. }
            | Op::Fifo { name } => name.bytes(),
            Op::Up => unreachable!(),
        };
        let rel = join(&cwd, &name);
        let path = root.join(os(&rel));
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let what = match op {
            Op::File { size, fill, mode, .. } => {
                let content = vec![*fill; usize::from(*size) % 4097];
                fs::write(&path, &content).unwrap();
                if let Some(bits) = mode.bits(false) {
                    fs::set_permissions(&path, fs::Permissions::from_mode(bits)).unwrap();
                }
                files.push(rel.clone());
                Made::File(content)
            }
            Op::Dir { mode, .. } => {
                fs::create_dir(&path).unwrap();
                if let Some(bits) = mode.bits(true) {
                    dir_modes.push((rel.clone(), bits));
                }
                cwd.clone_from(&rel);
                Made::Dir
            }
            Op::Symlink { target, .. } => {
                let depth = cwd.split(|&b| b == b'/').filter(|c| !c.is_empty()).count();
                let up = "../".repeat(depth).into_bytes();
                let mut target = match target {
                    Target::Inside(n) if !order.is_empty() => {
                        [up.as_slice(), &order[usize::from(*n) % order.len()]].concat()
                    }
                    Target::Inside(_) | Target::Root => up.clone(),
                    Target::OutsideRelative => [up.as_slice(), b"../outside/secret"].concat(),
                    Target::OutsideAbsolute => {
                        root.parent().unwrap().join("outside/secret").into_os_string().into_vec()
                    }
                    Target::Parents(n) => "../".repeat(usize::from(*n % 8) + 1).into_bytes(),
                    Target::Itself => name.clone(),
                    Target::Dangling => b"does/not/exist".to_vec(),
                    Target::Bytes(b) => b.clone(),
                };
                target.retain(|&b| b != 0);
                target.truncate(4000);
                if target.is_empty() {
                    target = b".".to_vec();
                }
                symlink(os(&target), &path).unwrap();
                Made::Symlink(target)
            }
            Op::HardLink { to, .. } => {
                if files.is_empty() {
                    continue;
                }
                let original = &files[usize::from(*to) % files.len()];
                fs::hard_link(root.join(os(original)), &path).unwrap();
                let content = made[original].clone();
                files.push(rel.clone());
                content
            }
            Op::Fifo { .. } => {
                let c = CString::new(path.as_os_str().as_bytes()).unwrap();
                // SAFETY: a valid C string; mkfifo only reads it.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {path:?}");
                Made::Fifo
            }
            Op::Up => unreachable!(),
        };
        order.push(rel.clone());
        made.insert(rel, what);
    }
    // Directory modes last, deepest first, so making the tree was not refused.
    for (rel, bits) in dir_modes.iter().rev() {
        fs::set_permissions(root.join(os(rel)), fs::Permissions::from_mode(*bits)).unwrap();
    }
    made
}

/// The walk visits names sorted by bytes, depth first: compare component by component.
fn walk_key(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/').collect()
}

fn under_git_dir(path: &[u8], made: &BTreeMap<Vec<u8>, Made>) -> bool {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    (1..=parts.len())
        .any(|n| parts[n - 1] == b".git" && made.get(&parts[..n].join(&b'/')) == Some(&Made::Dir))
}

fn check(root: &Path, made: &BTreeMap<Vec<u8>, Made>, limits: &Limits, unpack_to: &Path) {
    let pool = BlobPool::default();
    let capture = capture_dir(root, limits, &pool).expect("the root opens");
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;

    let entries: BTreeMap<&[u8], &EntryKind> =
        capture.entries.iter().map(|e| (e.path.as_os_str().as_bytes(), &e.kind)).collect();
    let skipped: BTreeMap<&[u8], &SkipReason> =
        capture.skipped.iter().map(|s| (s.path.as_os_str().as_bytes(), &s.reason)).collect();
    assert_eq!(entries.len(), capture.entries.len(), "each path once");
    assert_eq!(skipped.len(), capture.skipped.len(), "each skipped path once");
    // In walk order: sorted component by component.
    assert!(capture.entries.windows(2).all(|w| w[0].path < w[1].path));
    assert!(capture.skipped.windows(2).all(|w| w[0].path < w[1].path));

    let mut total = 0;
    for (path, kind) in &entries {
        assert!(!skipped.contains_key(path), "{:?} both captured and skipped", os(path));
        assert!(
            Path::new(os(path)).components().all(|c| matches!(c, Component::Normal(_))),
            "{:?} is a plain relative path",
            os(path)
        );
        let expected = made.get(*path).unwrap_or_else(|| panic!("{:?} is not in the tree", os(path)));
        assert!(!under_git_dir(path, made), "{:?} is in a .git directory", os(path));
        match (kind, expected) {
            (EntryKind::File { content, size, executable, .. }, Made::File(bytes)) => {
                let content = content.as_ref().expect("a capture holds every file's bytes");
                assert_eq!(&content[..], &bytes[..], "{:?}", os(path));
                assert_ne!(&content[..], SECRET);
                assert_eq!(*size, bytes.len() as u64);
                assert!(*size <= limits.max_file_size, "{:?}: {size} over MaxFileSize", os(path));
                let mode = fs::symlink_metadata(root.join(os(path))).unwrap().mode();
                assert_eq!(*executable, mode & 0o111 != 0, "{:?} mode {mode:o}", os(path));
                total += size;
            }
            (EntryKind::Dir, Made::Dir) => {}
            (EntryKind::Symlink { target }, Made::Symlink(t)) => {
                assert_eq!(target.as_os_str().as_bytes(), &t[..])
            }
            (kind, expected) => panic!("{:?}: captured {kind:?}, made {expected:?}", os(path)),
        }
    }
    assert_eq!(capture.total_bytes, total);
    assert!(total <= limits.max_total_size, "{total} over MaxTotalSize");

    for (path, reason) in &skipped {
        let expected = made.get(*path).unwrap_or_else(|| panic!("skipped {:?} is not in the tree", os(path)));
        match (reason, expected) {
            (SkipReason::TooLarge { size, limit }, Made::File(bytes)) => {
                assert_eq!(*size, bytes.len() as u64);
                assert_eq!(*limit, limits.max_file_size);
                assert!(size > limit);
            }
            (SkipReason::TotalCapReached { limit }, Made::File(bytes)) => {
                assert_eq!(*limit, limits.max_total_size);
                assert!(bytes.len() as u64 <= limits.max_file_size, "too large goes first");
            }
            (SkipReason::Special { kind }, Made::Fifo) => assert_eq!(*kind, "fifo"),
            (SkipReason::Excluded { pattern }, _) => assert!(limits.exclude.contains(pattern)),
            (SkipReason::Unreadable { error }, _) => {
                assert!(!is_root, "{:?} unreadable as root: {error}", os(path))
            }
            (reason, expected) => panic!("{:?}: skipped as {reason:?}, made {expected:?}", os(path)),
        }
    }

    // Every path of the tree is accounted for: captured, skipped, under a skipped directory or
    // under a .git directory.
    for path in made.keys() {
        let covered = entries.contains_key(path.as_slice())
            || under_git_dir(path, made)
            || (0..path.len()).filter(|&i| path[i] == b'/').any(|i| skipped.contains_key(&path[..i]))
            || skipped.contains_key(path.as_slice());
        assert!(covered, "{:?} is neither captured nor skipped", os(path));
    }

    // The total cap keeps a prefix of the walk: no file after the first one it refused.
    let first_refused = skipped
        .iter()
        .filter(|(_, r)| matches!(r, SkipReason::TotalCapReached { .. }))
        .map(|(p, _)| walk_key(p))
        .min();
    if let Some(first) = first_refused {
        for (path, kind) in &entries {
            if matches!(kind, EntryKind::File { .. }) {
                assert!(walk_key(path) < first, "{:?} captured after the total cap was reached", os(path));
            }
        }
    }

    snapshot(&capture, unpack_to);

    // Again, streamed: the same tree, nothing changed, and the same archive.
    let mut tar = tar::Builder::new(Vec::new());
    let prefix = Path::new("workdir");
    let again =
        stream_dir(root, limits, &StreamOptions::default(), &mut tar, prefix).expect("the root opens");
    assert_eq!(again.capture.manifest(), capture.manifest());
    assert_eq!(again.capture.skipped, capture.skipped);
    assert!(again.altered.is_empty() && again.complete);
    assert!(diff(&capture, &again.capture).is_empty());
    let streamed = tar.into_inner().expect("the archive ends");
    let in_memory = write_snapshot(&capture, prefix, Vec::new()).expect("the snapshot writes");
    assert!(streamed == in_memory, "the streamed archive is the snapshot, byte for byte");
}

fn snapshot(capture: &gitvisor_capture::Capture, unpack_to: &Path) {
    let prefix = Path::new("workdir");
    let bytes = write_snapshot(capture, prefix, Vec::new()).expect("the snapshot writes");
    let again = write_snapshot(capture, prefix, Vec::new()).expect("the snapshot writes");
    assert!(bytes == again, "the snapshot is deterministic");

    fs::create_dir(unpack_to).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut read = archive.entries().expect("the archive reads");
    let expected = std::iter::once(None).chain(capture.entries.iter().map(Some));
    for entry in expected {
        let mut got = read.next().expect("one tar entry per captured entry").expect("the entry reads");
        let (want_path, want_kind): (PathBuf, Option<&EntryKind>) = match entry {
            None => (prefix.to_path_buf(), None),
            Some(e) => (prefix.join(&e.path), Some(&e.kind)),
        };
        let path_bytes = got.path_bytes().into_owned();
        let path = path_bytes.strip_suffix(b"/").unwrap_or(&path_bytes);
        assert_eq!(os(path), want_path.as_os_str(), "tar path");
        for part in path.split(|&b| b == b'/') {
            assert!(
                !matches!(part, b"" | b"." | b".."),
                "tar path {:?} has a {:?} component",
                os(path),
                os(part)
            );
        }
        let header = got.header().clone();
        assert_eq!(header.mtime().unwrap(), 0);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        let mode = header.mode().unwrap();
        match want_kind {
            None | Some(EntryKind::Dir) => {
                assert!(header.entry_type().is_dir());
                assert_eq!(mode, 0o755);
            }
            Some(EntryKind::File { content, executable, .. }) => {
                let content = content.as_ref().expect("a capture holds every file's bytes");
                assert!(header.entry_type().is_file());
                assert_eq!(mode, if *executable { 0o755 } else { 0o644 });
                let mut data = Vec::new();
                got.read_to_end(&mut data).unwrap();
                assert!(data == content[..], "file data of {want_path:?}");
            }
            Some(EntryKind::Symlink { target }) => {
                assert!(header.entry_type().is_symlink());
                assert_eq!(mode, 0o777);
                let link = got.link_name_bytes().expect("a symlink has a target");
                assert_eq!(os(&link), target.as_os_str());
            }
        }
        assert!(got.unpack_in(unpack_to).expect("unpacks"), "{want_path:?} would unpack outside");
    }
    assert!(read.next().is_none(), "nothing more in the archive");
}
