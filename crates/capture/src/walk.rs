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
use crate::capture::{Capture, Entry, EntryKind, FileStamp};
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
    capture_dir_since(root, limits, blobs, None)
}

/// Like [`capture_dir`], but a file whose [`FileStamp`] is the same as in `previous` (an
/// earlier capture of the same root, such as a service's baseline) is taken from it without
/// being read: a crash-time capture of a large, mostly unchanged tree costs a `stat` per file.
/// Files changed less than 100 ms before `previous` was taken are always read again, as a
/// change within the same clock tick could hide behind equal times.
pub fn capture_dir_since(
    root: &Path,
    limits: &Limits,
    blobs: &BlobPool,
    previous: Option<&Capture>,
) -> io::Result<Capture> {
    walk(root, limits, blobs, previous, None)
}

/// A baseline: like [`capture_dir_since`], but an unchanged file whose bytes `previous` did not
/// keep is taken as it is (size and hash, no bytes) instead of being read again, a file larger
/// than `keep_per_file` is hashed as it is read and never held whole, and then only the bytes
/// [`Capture::keep_contents`] keeps are held. A service restarting in a loop costs a stat per
/// file; one with a large tree holds its hashes, not its bytes, and taking them costs a 64 KiB
/// buffer, not the tree's size.
pub fn baseline_since(
    root: &Path,
    limits: &Limits,
    blobs: &BlobPool,
    previous: Option<&Capture>,
    keep_per_file: u64,
    keep_total: u64,
) -> io::Result<Capture> {
    let keep = Keep { per_file: keep_per_file, total: keep_total };
    Ok(walk(root, limits, blobs, previous, Some(keep))?.keep_contents(keep_per_file, keep_total))
}

fn walk(
    root: &Path,
    limits: &Limits,
    blobs: &BlobPool,
    previous: Option<&Capture>,
    baseline: Option<Keep>,
) -> io::Result<Capture> {
    let taken_at = SystemTime::now();
    let dir = Dir::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| {
            let error = io::Error::from(errno);
            io::Error::new(error.kind(), format!("cannot open {} for capture: {error}", root.display()))
        })?;
    let mut walk = Walk {
        limits,
        excludes: limits.excludes(),
        blobs,
        entries: Vec::new(),
        skipped: Vec::new(),
        total_bytes: 0,
        cap_reached: false,
        previous: previous.filter(|p| p.root == root).map(Previous::new),
        baseline,
        kept: 0,
        stamps: HashMap::new(),
    };
    walk.directory(dir, Path::new(""));
    // In walk order, which is sorted: see `Capture::entries`.
    let Walk { entries, skipped, total_bytes, stamps, .. } = walk;
    Ok(Capture { root: root.to_path_buf(), taken_at, entries, skipped, total_bytes, stamps })
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
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mtime_ns: stat.st_mtime as i128 * 1_000_000_000 + stat.st_mtime_nsec as i128,
        ctime_ns: stat.st_ctime as i128 * 1_000_000_000 + stat.st_ctime_nsec as i128,
    }
}

struct Walk<'a> {
    previous: Option<Previous<'a>>,
    /// A baseline (see `baseline_since`) and what it keeps: an unchanged file is taken from
    /// `previous` even without bytes, a file it will not keep is only hashed.
    baseline: Option<Keep>,
    /// Bytes a baseline kept so far.
    kept: u64,
    stamps: HashMap<PathBuf, FileStamp>,
    limits: &'a Limits,
    excludes: Excludes,
    blobs: &'a BlobPool,
    entries: Vec<Entry>,
    skipped: Vec<Skipped>,
    total_bytes: u64,
    cap_reached: bool,
}

/// What `fstatat` says a name is.
enum Kind {
    Dir,
    File { size: u64 },
    Symlink,
    Special(&'static str),
}

impl<'a> Walk<'a> {
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
            let path = relative.join(&name);
            if let Err(error) = self.child(fd, &name, path.clone()) {
                self.skip(path, unreadable(&error));
            }
        }
    }

    /// Captures or skips one name inside the directory `fd`.
    fn child(&mut self, fd: RawFd, name: &OsStr, path: PathBuf) -> io::Result<()> {
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
                self.entries.push(Entry { path: path.clone(), kind: EntryKind::Dir });
                self.directory(child, &path);
            }
            Kind::Symlink => {
                let target = PathBuf::from(fcntl::readlinkat(Some(fd), name)?);
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
        if let Some(reason) = self.over_a_cap(size) {
            self.skip(path, reason);
            return Ok(());
        }
        // An entry without bytes is reused only where bytes are not needed (a baseline).
        if let Some(EntryKind::File { content, sha256, size: old_size, executable }) = self
            .previous
            .as_ref()
            .and_then(|p| p.unchanged(&path, &stamp))
            .filter(|k| self.baseline.is_some() || matches!(k, EntryKind::File { content: Some(_), .. }))
        {
            let kind = EntryKind::File {
                content: content.clone(),
                sha256: *sha256,
                size: *old_size,
                executable: *executable,
            };
            self.total_bytes += *old_size;
            if self.baseline.is_some() && content.is_some() {
                self.kept += *old_size;
            }
            self.stamps.insert(path.clone(), stamp);
            self.entries.push(Entry { path, kind });
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
        let large = self.baseline.is_some_and(|k| u64::try_from(stat.st_size).unwrap_or(0) > k.per_file);
        let (bytes, hashed) = if large {
            let (sha256, n) = hash_at_most(file, self.limits.max_file_size)?;
            (Vec::new(), Some((sha256, n)))
        } else {
            (read_at_most(file, self.limits.max_file_size)?, None)
        };
        let mut size = hashed.map_or(bytes.len() as u64, |(_, n)| n);
        if size > self.limits.max_file_size {
            // It grew since `fstat`; the stat size is the better guess at how large it is now.
            size = size.max(u64::try_from(stat.st_size).unwrap_or(0));
        }
        if let Some(reason) = self.over_a_cap(size) {
            self.skip(path, reason);
            return Ok(());
        }
        // A baseline keeps text within its budget; it hashes the rest and lets the bytes go now,
        // so its peak is what it keeps, not the tree.
        let unkept = self.baseline.is_some_and(|k| {
            size > k.per_file || self.kept + size > k.total || bytes[..bytes.len().min(8192)].contains(&0)
        });
        let (content, sha256) = match hashed {
            Some((sha256, _)) => (None, sha256),
            None if unkept => {
                use sha2::{Digest, Sha256};
                (None, Sha256::digest(&bytes).into())
            }
            None => {
                if self.baseline.is_some() {
                    self.kept += size;
                }
                let (content, sha256) = self.blobs.intern(bytes);
                (Some(content), sha256)
            }
        };
        self.total_bytes += size;
        self.stamps.insert(path.clone(), file_stamp(&stat));
        self.entries.push(Entry {
            path,
            kind: EntryKind::File { content, sha256, size, executable: stat.st_mode & 0o111 != 0 },
        });
        Ok(())
    }

    /// The reason a file of `size` bytes may not be taken, if any. Reaching the total cap is
    /// sticky: every later file is refused too, so what is kept is a prefix in walk order.
    fn over_a_cap(&mut self, size: u64) -> Option<SkipReason> {
        let limits = self.limits;
        if size > limits.max_file_size {
            return Some(SkipReason::TooLarge { size, limit: limits.max_file_size });
        }
        if self.cap_reached || self.total_bytes.saturating_add(size) > limits.max_total_size {
            self.cap_reached = true;
            return Some(SkipReason::TotalCapReached { limit: limits.max_total_size });
        }
        None
    }

    fn skip(&mut self, path: PathBuf, reason: SkipReason) {
        self.skipped.push(Skipped { path, reason });
    }
}

fn unreadable(error: &io::Error) -> SkipReason {
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
        libc::S_IFREG => Kind::File { size: u64::try_from(stat.st_size).unwrap_or(0) },
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

/// Reads the whole file, or `limit + 1` bytes when it is longer than `limit` (so the caller
/// sees that it grew past the cap without reading all of it).
/// What a baseline keeps the bytes of: text files of at most `per_file` bytes, `total` in all.
#[derive(Clone, Copy)]
struct Keep {
    per_file: u64,
    total: u64,
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

fn read_at_most(file: File, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}
