//! A capture written to its archive while the tree is walked: each file's bytes go from its
//! descriptor into the tar stream through the archive's copy buffer, hashed as they pass, so
//! taking a capture of any size holds a buffer and the entries' metadata, never the tree (and,
//! when asked, the bounded text of the files changed since a baseline: `text.rs`).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;
use sha2::{Digest, Sha256};
use tar::Builder;

use crate::capture::{Capture, EntryKind};
use crate::limits::Limits;
use crate::skip::SkipReason;
use crate::snapshot::{Sink, TarSink};
use crate::text::{KeepText, Keeper, NewText, Watch};
use crate::walk::{self, executable, grown_size, read_at_most, sha256, stat_size, unreadable, Caps, Take};

/// What a streamed capture does besides writing the tree as it is.
#[derive(Default)]
pub struct StreamOptions {
    pub rewrite: Option<Rewrite>,
    /// Bytes of file contents the archive may hold. Once the files written would pass it, the
    /// archive is abandoned: nothing more is written to it and [`Streamed::complete`] is false,
    /// while the walk goes on to list and hash every file, so the caller can say how large the
    /// tree was and drop what was written. `None`: no limit.
    pub archive_limit: Option<u64>,
    /// Keep the text of the files changed since a baseline, within bounds, for
    /// [`crate::text_diffs`]: [`Streamed::texts`]. `None`: nothing is kept.
    pub keep_text: Option<KeepText>,
}

/// Files that go into the archive rewritten, such as a crash report's redacted environment
/// files: each is read whole (it is under the per-file cap, as every file taken is) and
/// `with(path, bytes)` is written in its place. Its entry in [`Streamed::capture`] still
/// describes the file as found; [`Streamed::rewritten`] describes what was written.
pub struct Rewrite {
    /// Relative to the captured root.
    pub paths: Vec<PathBuf>,
    pub with: fn(&Path, &[u8]) -> Vec<u8>,
}

/// What [`stream_dir`] took and wrote.
#[derive(Debug)]
pub struct Streamed {
    /// The tree as found, without any bytes: each file's size and the SHA-256 of the bytes read
    /// from it, what to compare with a baseline ([`crate::diff`]).
    pub capture: Capture,
    /// The rewritten files (see [`Rewrite`]), in walk order, as written.
    pub rewritten: Vec<Rewritten>,
    /// Files that changed size, or failed to read, while they were written.
    pub altered: Vec<Altered>,
    /// Bytes of file contents the archive holds, rewritten files at their new size; counted on
    /// past an abandoned archive's limit.
    pub archived_bytes: u64,
    /// Every entry taken was written (see [`StreamOptions::archive_limit`]).
    pub complete: bool,
    /// With [`StreamOptions::keep_text`], in walk order, each file that changed since the
    /// baseline (by SHA-256, a file the baseline has too) and what was kept of its text.
    pub texts: Vec<(PathBuf, NewText)>,
}

/// A rewritten file as the archive holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A file that did not keep the size it had when it was opened while it was read. Its tar
/// header, written first, gave that size, so the archive holds exactly `size` bytes: the first
/// `size` bytes of a file that grew, or what could be read of one that shrank (or whose read
/// failed) followed by NUL bytes. Its entry's size and SHA-256 describe those bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Altered {
    pub path: PathBuf,
    pub size: u64,
    pub how: Alteration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alteration {
    Grew,
    Shrank { read: u64 },
    ReadFailed { read: u64, error: String },
}

impl fmt::Display for Altered {
    /// One line, for a report: what the archive holds of the file and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = self.size;
        match &self.how {
            Alteration::Grew => write!(f, "grew while captured: cut at the {size} bytes it had when opened"),
            Alteration::Shrank { read } => write!(
                f,
                "shrank while captured: {read} bytes read, padded with NUL bytes to the {size} it had when opened"
            ),
            Alteration::ReadFailed { read, error } => write!(
                f,
                "read failed after {read} bytes ({error}): padded with NUL bytes to the {size} it had when opened"
            ),
        }
    }
}

/// Captures the tree under `root` as [`crate::capture_dir`] does (the same walk, rules and
/// skips) and writes it to `tar` as it goes, under `prefix`, as [`crate::write_snapshot`]
/// would write that capture: the same entries, bytes and headers. Holds no file's bytes
/// beyond the copy buffer, except those of the files `options` rewrites and the text it keeps
/// ([`StreamOptions::keep_text`]: at most its bounds, and one file being read).
///
/// A file's header is written before its bytes are read, with its size when opened: one whose
/// size changes while it is read is cut or padded to that size and listed in
/// [`Streamed::altered`]. Every file's SHA-256 is of the bytes written.
///
/// Every problem below `root` becomes a skip, as in [`crate::capture_dir`]; the errors are the
/// root's and the archive's ([`StreamError`]).
pub fn stream_dir<W: Write>(
    root: &Path,
    limits: &Limits,
    options: &StreamOptions,
    tar: &mut Builder<W>,
    prefix: &Path,
) -> Result<Streamed, StreamError> {
    let dir = walk::open_root(root).map_err(StreamError::Root)?;
    stream(dir, root, limits, options, tar, prefix).map_err(StreamError::Archive)
}

/// Why [`stream_dir`] took nothing.
#[derive(Debug)]
pub enum StreamError {
    /// The root could not be opened as a directory; nothing was written.
    Root(io::Error),
    /// Writing to the archive failed; what was written is incomplete.
    Archive(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Root(error) | StreamError::Archive(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Root(error) | StreamError::Archive(error) => Some(error),
        }
    }
}

fn stream<W: Write>(
    dir: nix::dir::Dir,
    root: &Path,
    limits: &Limits,
    options: &StreamOptions,
    tar: &mut Builder<W>,
    prefix: &Path,
) -> io::Result<Streamed> {
    let mut sink = TarSink::new(tar, prefix)?;
    let streaming = Streaming {
        sink: &mut sink,
        rewrite: options.rewrite.as_ref(),
        limit: options.archive_limit.unwrap_or(u64::MAX),
        archived_bytes: 0,
        complete: true,
        rewritten: Vec::new(),
        altered: Vec::new(),
        keeper: options.keep_text.as_ref().map(Keeper::new),
    };
    let (capture, s) = walk::walk(dir, root, limits, streaming)?;
    Ok(Streamed {
        capture,
        rewritten: s.rewritten,
        altered: s.altered,
        archived_bytes: s.archived_bytes,
        complete: s.complete,
        texts: s.keeper.map(|k| k.texts).unwrap_or_default(),
    })
}

/// Takes files by writing them to a [`Sink`].
struct Streaming<'a> {
    sink: &'a mut dyn Sink,
    rewrite: Option<&'a Rewrite>,
    limit: u64,
    archived_bytes: u64,
    complete: bool,
    rewritten: Vec<Rewritten>,
    altered: Vec<Altered>,
    keeper: Option<Keeper<'a>>,
}

impl Take for Streaming<'_> {
    fn file(
        &mut self,
        caps: &mut Caps,
        path: &Path,
        file: File,
        stat: &FileStat,
    ) -> io::Result<Result<EntryKind, SkipReason>> {
        if let Some(rewrite) = self.rewrite.filter(|r| r.paths.iter().any(|p| p == path)) {
            return self.rewritten(rewrite.with, caps, path, file, stat);
        }
        let size = stat_size(stat);
        if let Some(reason) = caps.over(size) {
            return Ok(Err(reason));
        }
        let plan = self.keeper.as_ref().and_then(|k| k.plan(path, size));
        let watch = plan.as_ref().map(|p| Watch::new(size, p.keep));
        let mut exact = Exact::new(file, size, watch);
        self.write(path, executable(stat), size, &mut exact)?;
        let (sha256, how, watch) = exact.finish();
        if let (Some(keeper), Some(plan), Some(watch)) = (&mut self.keeper, plan, watch) {
            keeper.read(path, plan, &sha256, watch.seen(how.is_some()));
        }
        if let Some(how) = how {
            self.altered.push(Altered { path: path.to_path_buf(), size, how });
        }
        Ok(Ok(EntryKind::File { content: None, sha256, size, executable: executable(stat) }))
    }

    fn dir(&mut self, path: &Path) -> io::Result<()> {
        if !self.complete {
            return Ok(());
        }
        self.sink.dir(path)
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        if !self.complete {
            return Ok(());
        }
        self.sink.symlink(path, target)
    }
}

impl Streaming<'_> {
    /// A file read whole and written as `with` rewrites it; sized and capped as a capture in
    /// memory does it.
    fn rewritten(
        &mut self,
        with: fn(&Path, &[u8]) -> Vec<u8>,
        caps: &mut Caps,
        path: &Path,
        file: File,
        stat: &FileStat,
    ) -> io::Result<Result<EntryKind, SkipReason>> {
        let limit = caps.limits.max_file_size;
        let bytes = match read_at_most(file, limit) {
            Ok(bytes) => bytes,
            Err(error) => return Ok(Err(unreadable(&error))),
        };
        let size = grown_size(bytes.len() as u64, limit, stat);
        if let Some(reason) = caps.over(size) {
            return Ok(Err(reason));
        }
        let out = with(path, &bytes);
        let found = sha256(&bytes);
        let written = Rewritten { path: path.to_path_buf(), size: out.len() as u64, sha256: sha256(&out) };
        self.write(path, executable(stat), written.size, &mut &out[..])?;
        // Its text is the rewritten one (what the archive holds), text or not as found.
        if let Some(keeper) = &mut self.keeper {
            if let Some(plan) = keeper.plan(path, written.size) {
                let mut watch = Watch::new(0, false);
                watch.saw(&bytes);
                let mut seen = watch.seen(false);
                seen.bytes = plan.keep.then_some(out);
                keeper.read(path, plan, &found, seen);
            }
        }
        self.rewritten.push(written);
        Ok(Ok(EntryKind::File { content: None, sha256: found, size, executable: executable(stat) }))
    }

    /// Writes a file of `size` bytes, read from `data` (which yields exactly that many), unless
    /// the archive passed its limit; `data` is read to its end either way, for its hash.
    fn write(&mut self, path: &Path, executable: bool, size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.archived_bytes += size;
        if self.archived_bytes > self.limit {
            self.complete = false;
        }
        if self.complete {
            self.sink.file(path, executable, size, data)
        } else {
            io::copy(data, &mut io::sink()).map(drop)
        }
    }
}

/// A file read for a tar entry whose header already gave its size: yields exactly `left` bytes
/// and hashes them (and shows them to a [`Watch`], if any). Past the end of a file that shrank,
/// or after a read error, it yields NUL bytes; it never returns an error, so an error from the
/// archive's copy is the archive's.
struct Exact {
    file: File,
    left: u64,
    read: u64,
    hasher: Sha256,
    ended: Option<Alteration>,
    watch: Option<Watch>,
}

impl Exact {
    fn new(file: File, size: u64, watch: Option<Watch>) -> Exact {
        Exact { file, left: size, read: 0, hasher: Sha256::new(), ended: None, watch }
    }

    /// The SHA-256 of what was yielded, how the file differed from its size if it did, and the
    /// watch.
    fn finish(mut self) -> ([u8; 32], Option<Alteration>, Option<Watch>) {
        // A byte past the size the header gave: the file grew while it was read.
        if self.ended.is_none() && matches!(self.file.read(&mut [0u8; 1]), Ok(1)) {
            self.ended = Some(Alteration::Grew);
        }
        (self.hasher.finalize().into(), self.ended, self.watch)
    }

    fn read_file(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let failed = match self.file.read(buf) {
                Ok(0) => Alteration::Shrank { read: self.read },
                Ok(n) => {
                    self.read += n as u64;
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Alteration::ReadFailed { read: self.read, error: e.to_string() },
            };
            self.ended = Some(failed);
            buf.fill(0);
            return buf.len();
        }
    }
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let buf = &mut buf[..want];
        let n = match self.ended {
            _ if want == 0 => 0,
            None => self.read_file(buf),
            Some(_) => {
                buf.fill(0);
                want
            }
        };
        self.hasher.update(&buf[..n]);
        if let Some(watch) = &mut self.watch {
            watch.saw(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}
