//! Taking a capture: a sorted depth-first walk that never follows a link and never blocks.
//!
//! Every open is relative to the directory already open (`openat`), with `O_NOFOLLOW`, so a
//! directory swapped for a symlink during the walk fails to open instead of leading outside
//! the root. Types come from `fstatat(AT_SYMLINK_NOFOLLOW)` before anything is opened, and an
//! opened file is checked again with `fstat`, so a FIFO is never opened for reading (and a
//! file swapped for one is never read: `O_NONBLOCK` keeps that open from waiting).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::dir::Dir;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};

use crate::blobs::BlobPool;
use crate::capture::{is_text, Capture, Entry, EntryKind, FileStamp};
use crate::limits::{Excludes, Limits};
use crate::skip::{SkipReason, Skipped};

/// Captures the tree under `root` into memory, following the rules of [`Limits`].
///
/// Blocking; run it on a blocking thread from async code. `root` itself may be a symlink (a
/// working directory often is); nothing below it is followed. Directories named `.git` are
/// left out silently at any depth (a `.git` *file*, as in a git worktree, is captured).
/// Every other path left out is listed in [`Capture::skipped`] with its reason.
///
/// Returns an error only when `root` cannot be opened as a directory; every problem below it
/// becomes a [`Skipped`] entry. One descriptor stays open per directory level being walked,
/// so a tree deeper than the descriptor limit shows its deepest directories as unreadable
/// ("Too many open files") rather than failing the capture.
pub fn capture_dir(root: &Path, limits: &Limits, blobs: &BlobPool) -> io::Result<Capture> {
    Ok(walk(open_root(root)?, root, limits, Memory { blobs, baseline: None, budget: None })?.0)
}

/// A baseline: a capture as [`capture_dir`] takes it that holds only the bytes
/// [`Capture::keep_contents`] keeps, and hashes the rest. A file larger than `keep_per_file` is
/// hashed as it is read and never held whole. A file whose [`FileStamp`] is the same as in
/// `previous` (the previous start's baseline of the same root) is taken from it without being
/// read, bytes or not; files changed less than 100 ms before `previous` was taken are always
/// read again, as a change within the same clock tick could hide behind equal times. A service
/// restarting in a loop costs a stat per file; one with a large tree holds its hashes, not its
/// bytes, and taking them costs a 64 KiB buffer, not the tree's size.
pub fn baseline_since(
    root: &Path,
    limits: &Limits,
    blobs: &BlobPool,
    previous: Option<&Capture>,
    keep_per_file: u64,
    keep_total: u64,
) -> io::Result<Capture> {
    let taken = baseline_within(root, limits, blobs, previous, keep_per_file, keep_total, None)?;
    Ok(taken.expect("a walk without a budget is never over it"))
}

/// How much a walk may do before it gives up: names looked at, and bytes read from files it
/// could not take from the previous baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub names: usize,
    pub read_bytes: u64,
}

/// [`baseline_since`] within `budget`: `Ok(None)` when the tree turned out to need more (and
/// nothing is kept of the walk so far). A caller that expects a small, mostly unchanged tree
/// can so take it where it is (a stat per name) and fall back to a blocking thread only when
/// the tree has grown or changed a lot.
pub fn baseline_within(
    root: &Path,
    limits: &Limits,
    blobs: &BlobPool,
    previous: Option<&Capture>,
    keep_per_file: u64,
    keep_total: u64,
    budget: Option<Budget>,
) -> io::Result<Option<Capture>> {
    let previous = previous.filter(|p| p.root == root).map(Previous::new);
    let baseline = Baseline { previous, per_file: keep_per_file, total: keep_total, kept: 0 };
    match walk(open_root(root)?, root, limits, Memory { blobs, baseline: Some(baseline), budget }) {
        Ok((capture, _)) => Ok(Some(capture.keep_contents(keep_per_file, keep_total))),
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<OverBudget>()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The error that stops a walk over its [`Budget`].
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the walk needs more than its budget")
    }
}

impl std::error::Error for OverBudget {}

/// Opens the root of a capture: the one error a walk has of its own (a taker may have others).
pub(crate) fn open_root(root: &Path) -> io::Result<Dir> {
    Dir::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        let error = io::Error::from(errno);
        io::Error::new(error.kind(), format!("cannot open {} for capture: {error}", root.display()))
    })
}

/// What a walk does with what it finds: holds the files in memory ([`Memory`]) or writes them
/// to an archive as it reads them (`crate::stream::Streaming`).
pub(crate) trait Take {
    /// Whether the walk may go on to the next name, and (`read`: its size) read a file it
    /// could not reuse. No stops the walk with an [`OverBudget`] error.
    fn allow(&mut self, _read: Option<u64>) -> bool {
        true
    }

    /// An unchanged file taken from an earlier capture without being opened, if it may be.
    fn reuse(&mut self, _path: &Path, _stamp: &FileStamp) -> Option<EntryKind> {
        None
    }

    /// Takes the regular file open as `file`, whose `fstat` is `stat`, unless a cap of `caps`
    /// says no: `Ok(Err(reason))` skips it. An error stops the walk: it is not the file's
    /// (those are skips) but the taker's, such as an archive that cannot be written.
    fn file(
        &mut self,
        caps: &mut Caps,
        path: &Path,
        file: File,
        stat: &FileStat,
    ) -> io::Result<Result<EntryKind, SkipReason>>;

    /// A directory taken (it opened), before what it holds.
    fn dir(&mut self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn symlink(&mut self, _path: &Path, _target: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// Walks the open directory `dir` (the root, as given) with `take`, and returns the capture
/// and the taker.
pub(crate) fn walk<T: Take>(dir: Dir, root: &Path, limits: &Limits, take: T) -> io::Result<(Capture, T)> {
    let taken_at = SystemTime::now();
    let mut walk = Walk {
        caps: Caps { limits, total_bytes: 0, reached: false },
        excludes: limits.excludes(),
        take,
        failed: None,
        entries: Vec::new(),
        skipped: Vec::new(),
        stamps: HashMap::new(),
    };
    walk.directory(dir, Path::new(""));
    if let Some(error) = walk.failed {
        return Err(error);
    }
    // In walk order, which is sorted: see `Capture::entries`.
    let Walk { entries, skipped, caps, stamps, take, .. } = walk;
    let capture = Capture {
        root: root.to_path_buf(),
        taken_at,
        entries,
        skipped,
        total_bytes: caps.total_bytes,
        stamps,
    };
    Ok((capture, take))
}

/// The files of an earlier capture that may be reused.
struct Previous<'a> {
    files: HashMap<&'a Path, (&'a EntryKind, FileStamp)>,
    /// Files changed after this instant (nanoseconds since the epoch) are read again.
    trusted_before_ns: i128,
}

impl<'a> Previous<'a> {
    fn new(c: &'a Capture) -> Previous<'a> {
        let files = c
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .filter_map(|e| c.stamps.get(&e.path).map(|s| (e.path.as_path(), (&e.kind, *s))))
            .collect();
        let taken_ns =
            c.taken_at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        Previous { files, trusted_before_ns: taken_ns - 100_000_000 }
    }

    fn unchanged(&self, path: &Path, stamp: &FileStamp) -> Option<&'a EntryKind> {
        let (kind, old) = self.files.get(path)?;
        let settled = stamp.mtime_ns < self.trusted_before_ns && stamp.ctime_ns < self.trusted_before_ns;
        (old == stamp && settled).then_some(*kind)
    }
}

fn file_stamp(stat: &FileStat) -> FileStamp {
    FileStamp {
        dev: stat.st_dev,
        ino: stat.st_ino,
        size: stat_size(stat),
        mtime_ns: stat.st_mtime as i128 * 1_000_000_000 + stat.st_mtime_nsec as i128,
        ctime_ns: stat.st_ctime as i128 * 1_000_000_000 + stat.st_ctime_nsec as i128,
    }
}

pub(crate) fn stat_size(stat: &FileStat) -> u64 {
    u64::try_from(stat.st_size).unwrap_or(0)
}

pub(crate) fn executable(stat: &FileStat) -> bool {
    stat.st_mode & 0o111 != 0
}

/// The per-file and total caps of [`Limits`], and what counts against them.
pub(crate) struct Caps<'a> {
    pub(crate) limits: &'a Limits,
    /// Bytes of the files taken so far.
    total_bytes: u64,
    /// The total cap was reached: every later file is refused.
    reached: bool,
}

impl Caps<'_> {
    /// The reason a file of `size` bytes may not be taken, if any. Reaching the total cap is
    /// sticky: every later file is refused too, so what is kept is a prefix in walk order.
    pub(crate) fn over(&mut self, size: u64) -> Option<SkipReason> {
        let limits = self.limits;
        if size > limits.max_file_size {
            return Some(SkipReason::TooLarge { size, limit: limits.max_file_size });
        }
        if self.reached || self.total_bytes.saturating_add(size) > limits.max_total_size {
            self.reached = true;
            return Some(SkipReason::TotalCapReached { limit: limits.max_total_size });
        }
        None
    }
}

struct Walk<'a, T> {
    caps: Caps<'a>,
    excludes: Excludes,
    take: T,
    /// The taker's error that stopped the walk.
    failed: Option<io::Error>,
    entries: Vec<Entry>,
    skipped: Vec<Skipped>,
    stamps: HashMap<PathBuf, FileStamp>,
}

/// What `fstatat` says a name is.
enum Kind {
    Dir,
    File { size: u64 },
    Symlink,
    Special(&'static str),
}

impl<T: Take> Walk<'_, T> {
    /// Walks the open directory `dir`, whose path relative to the root is `relative`.
    fn directory(&mut self, mut dir: Dir, relative: &Path) {
        let names = match read_names(&mut dir) {
            Ok(names) => names,
            Err((names, error)) => {
                self.skip(relative.to_path_buf(), unreadable(&error));
                names
            }
        };
        let fd = dir.as_raw_fd();
        for name in names {
            if self.failed.is_some() {
                return;
            }
            let path = relative.join(&name);
            if let Err(error) = self.child(fd, &name, path.clone()) {
                self.skip(path, unreadable(&error));
            }
        }
    }

    /// Captures or skips one name inside the directory `fd`.
    fn child(&mut self, fd: RawFd, name: &OsStr, path: PathBuf) -> io::Result<()> {
        if !self.take.allow(None) {
            self.taken(Err(io::Error::other(OverBudget)));
            return Ok(());
        }
        let stat = stat::fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = classify(&stat);
        if matches!(kind, Kind::Dir) && name == ".git" {
            return Ok(());
        }
        if let Some(pattern) = self.excludes.matching(&path, matches!(kind, Kind::Dir)) {
            let pattern = pattern.to_owned();
            self.skip(path, SkipReason::Excluded { pattern });
            return Ok(());
        }
        match kind {
            Kind::Dir => {
                #[cfg(test)]
                crate::test_hooks::before_open(&path);
                let child = Dir::openat(
                    Some(fd),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let taken = self.take.dir(&path);
                self.taken(taken);
                self.entries.push(Entry { path: path.clone(), kind: EntryKind::Dir });
                self.directory(child, &path);
            }
            Kind::Symlink => {
                let target = PathBuf::from(fcntl::readlinkat(Some(fd), name)?);
                let taken = self.take.symlink(&path, &target);
                self.taken(taken);
                self.entries.push(Entry { path, kind: EntryKind::Symlink { target } });
            }
            Kind::Special(kind) => self.skip(path, SkipReason::Special { kind }),
            Kind::File { size } => self.file(fd, name, path, size, file_stamp(&stat))?,
        }
        Ok(())
    }

    /// Captures one regular file whose `fstatat` size was `size`, unless a cap says no.
    fn file(
        &mut self,
        fd: RawFd,
        name: &OsStr,
        path: PathBuf,
        size: u64,
        stamp: FileStamp,
    ) -> io::Result<()> {
        if let Some(reason) = self.caps.over(size) {
            self.skip(path, reason);
            return Ok(());
        }
        if let Some(kind) = self.take.reuse(&path, &stamp) {
            self.push_file(path, kind, stamp);
            return Ok(());
        }
        if !self.take.allow(Some(size)) {
            self.taken(Err(io::Error::other(OverBudget)));
            return Ok(());
        }
        #[cfg(test)]
        crate::test_hooks::before_open(&path);
        let file = open_file(fd, name)?;
        let stat = stat::fstat(file.as_raw_fd())?;
        match classify(&stat) {
            Kind::File { .. } => {}
            Kind::Special(kind) => {
                self.skip(path, SkipReason::Special { kind });
                return Ok(());
            }
            Kind::Dir | Kind::Symlink => {
                return Err(io::Error::other("replaced by another kind of file while captured"))
            }
        }
        #[cfg(test)]
        crate::test_hooks::before_read(&path);
        match self.take.file(&mut self.caps, &path, file, &stat) {
            Ok(Ok(kind)) => self.push_file(path, kind, file_stamp(&stat)),
            Ok(Err(reason)) => self.skip(path, reason),
            Err(error) => self.taken(Err(error)),
        }
        Ok(())
    }

    fn push_file(&mut self, path: PathBuf, kind: EntryKind, stamp: FileStamp) {
        if let EntryKind::File { size, .. } = &kind {
            self.caps.total_bytes += size;
        }
        self.stamps.insert(path.clone(), stamp);
        self.entries.push(Entry { path, kind });
    }

    /// Keeps the taker's first error: the walk stops at the next name.
    fn taken(&mut self, result: io::Result<()>) {
        if let Err(error) = result {
            self.failed.get_or_insert(error);
        }
    }

    fn skip(&mut self, path: PathBuf, reason: SkipReason) {
        self.skipped.push(Skipped { path, reason });
    }
}

/// Takes every file into memory: its bytes interned in a [`BlobPool`], or for a baseline only
/// those of small text files (see [`baseline_since`]).
struct Memory<'a> {
    blobs: &'a BlobPool,
    baseline: Option<Baseline<'a>>,
    /// What is left of the walk's budget; `None`: no bound.
    budget: Option<Budget>,
}

/// A baseline: the previous one, whose unchanged files it takes without reading them, and what
/// it keeps the bytes of: text files of at most `per_file` bytes, `total` in all (`kept` so
/// far). A file it will not keep is only hashed.
struct Baseline<'a> {
    previous: Option<Previous<'a>>,
    per_file: u64,
    total: u64,
    kept: u64,
}

impl Take for Memory<'_> {
    fn allow(&mut self, read: Option<u64>) -> bool {
        let Some(budget) = &mut self.budget else { return true };
        let left = match read {
            None => budget.names.checked_sub(1).map(|names| Budget { names, ..*budget }),
            Some(size) => {
                budget.read_bytes.checked_sub(size).map(|read_bytes| Budget { read_bytes, ..*budget })
            }
        };
        left.map(|left| *budget = left).is_some()
    }

    fn reuse(&mut self, path: &Path, stamp: &FileStamp) -> Option<EntryKind> {
        let baseline = self.baseline.as_mut()?;
        let kind = baseline.previous.as_ref()?.unchanged(path, stamp)?;
        if let EntryKind::File { content: Some(_), size, .. } = kind {
            baseline.kept += size;
        }
        Some(kind.clone())
    }

    fn file(
        &mut self,
        caps: &mut Caps,
        _path: &Path,
        file: File,
        stat: &FileStat,
    ) -> io::Result<Result<EntryKind, SkipReason>> {
        // A file that cannot be read is skipped; nothing here can fail the walk.
        Ok(self.read(caps, file, stat).unwrap_or_else(|error| Err(unreadable(&error))))
    }
}

impl Memory<'_> {
    fn read(
        &mut self,
        caps: &mut Caps,
        file: File,
        stat: &FileStat,
    ) -> io::Result<Result<EntryKind, SkipReason>> {
        let limit = caps.limits.max_file_size;
        let large = self.baseline.as_ref().is_some_and(|b| stat_size(stat) > b.per_file);
        let (bytes, hashed) = if large {
            let (sha256, n) = hash_at_most(file, limit)?;
            (Vec::new(), Some((sha256, n)))
        } else {
            (read_at_most(file, limit)?, None)
        };
        let size = grown_size(hashed.map_or(bytes.len() as u64, |(_, n)| n), limit, stat);
        if let Some(reason) = caps.over(size) {
            return Ok(Err(reason));
        }
        // A baseline keeps text within its budget; it hashes the rest and lets the bytes go now,
        // so its peak is what it keeps, not the tree.
        let unkept = self
            .baseline
            .as_ref()
            .is_some_and(|b| size > b.per_file || b.kept + size > b.total || !is_text(&bytes));
        let (content, sha256) = match hashed {
            Some((sha256, _)) => (None, sha256),
            None if unkept => (None, sha256(&bytes)),
            None => {
                if let Some(baseline) = &mut self.baseline {
                    baseline.kept += size;
                }
                let (content, sha256) = self.blobs.intern(bytes);
                (Some(content), sha256)
            }
        };
        Ok(Ok(EntryKind::File { content, sha256, size, executable: executable(stat) }))
    }
}

/// The size of a file read as `read` bytes (at most `limit + 1`): past the cap, it grew since
/// `fstat`, and the stat size is the better guess at how large it is now.
pub(crate) fn grown_size(read: u64, limit: u64, stat: &FileStat) -> u64 {
    if read > limit {
        read.max(stat_size(stat))
    } else {
        read
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

pub(crate) fn unreadable(error: &io::Error) -> SkipReason {
    SkipReason::Unreadable { error: error.to_string() }
}

/// The names in `dir` other than `.` and `..`, sorted by bytes. On a read error, the names
/// read so far come back with the error.
fn read_names(dir: &mut Dir) -> Result<Vec<OsString>, (Vec<OsString>, io::Error)> {
    let mut names = Vec::new();
    let mut failure = None;
    for entry in dir.iter() {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(OsStr::from_bytes(name).to_owned());
                }
            }
            Err(errno) => {
                failure = Some(io::Error::from(errno));
                break;
            }
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    match failure {
        None => Ok(names),
        Some(error) => Err((names, error)),
    }
}

fn classify(stat: &FileStat) -> Kind {
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFREG => Kind::File { size: stat_size(stat) },
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Special("fifo"),
        libc::S_IFSOCK => Kind::Special("socket"),
        libc::S_IFBLK => Kind::Special("block device"),
        libc::S_IFCHR => Kind::Special("char device"),
        _ => Kind::Special("unknown file type"),
    }
}

fn open_file(dir: RawFd, name: &OsStr) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = fcntl::openat(Some(dir), name, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// SHA-256 and length of at most `limit + 1` bytes of `file`, read through a small buffer.
fn hash_at_most(file: File, limit: u64) -> io::Result<([u8; 32], u64)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut reader = file.take(limit.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                hasher.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((hasher.finalize().into(), n))
}

/// Reads the whole file, or `limit + 1` bytes when it is longer than `limit` (so the caller
/// sees that it grew past the cap without reading all of it).
pub(crate) fn read_at_most(file: File, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}
