//! A capture as a deterministic tar archive: written from memory ([`write_snapshot`]) or while
//! the tree is walked ([`crate::stream_dir`]), through the same `TarSink`, so both give the same
//! bytes for the same tree.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::{Builder, EntryType, Header};

use crate::capture::{Capture, EntryKind};

/// Writes `capture` as an uncompressed tar archive with every path under `prefix` (relative,
/// such as `workdir`; empty for none), and returns `out`.
///
/// The archive depends only on the captured tree: entries in capture order (sorted component by
/// component, see [`Capture::entries`]), GNU headers with mtime 0, uid and gid 0 and empty owner
/// names, modes normalised (directories 0755, files 0644 or 0755 when executable, symlinks
/// 0777). Paths longer than a header holds use GNU long-name entries; non-UTF-8 names and
/// symlink targets are kept byte for byte. The prefix itself is the first entry, as a
/// directory.
///
/// Every file's bytes must be held: a baseline's capture (see [`Capture::keep_contents`]) is
/// refused with an error.
pub fn write_snapshot<W: Write>(capture: &Capture, prefix: &Path, out: W) -> io::Result<W> {
    let mut tar = Builder::new(out);
    let mut sink = TarSink::new(&mut tar, prefix)?;
    for entry in &capture.entries {
        match &entry.kind {
            EntryKind::File { content, executable, .. } => {
                let content = content.as_ref().ok_or_else(|| {
                    io::Error::other(format!("{}: contents not kept", entry.path.display()))
                })?;
                sink.file(&entry.path, *executable, content.len() as u64, &mut &content[..])?;
            }
            EntryKind::Dir => sink.dir(&entry.path)?,
            EntryKind::Symlink { target } => sink.symlink(&entry.path, target)?,
        }
    }
    tar.into_inner()
}

/// Writes entries of a capture, one at a time, as entries of a tar archive under a prefix.
pub(crate) struct TarSink<'a, W: Write> {
    tar: &'a mut Builder<W>,
    prefix: &'a Path,
}

impl<'a, W: Write> TarSink<'a, W> {
    /// Starts with the prefix itself, as a directory, unless it is empty.
    pub(crate) fn new(tar: &'a mut Builder<W>, prefix: &'a Path) -> io::Result<TarSink<'a, W>> {
        if !prefix.as_os_str().is_empty() {
            tar.append_data(&mut header(EntryType::Directory, 0o755, 0), prefix, io::empty())?;
        }
        Ok(TarSink { tar, prefix })
    }
}

/// Where a capture's entries go, `path` relative to the captured root. A streamed capture holds
/// one as `&mut dyn Sink`, so the walk need not be generic over the archive's writer.
pub(crate) trait Sink {
    fn dir(&mut self, path: &Path) -> io::Result<()>;
    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()>;
    /// `data` must yield exactly `size` bytes: the header that says so is written first.
    fn file(&mut self, path: &Path, executable: bool, size: u64, data: &mut dyn Read) -> io::Result<()>;
}

impl<W: Write> Sink for TarSink<'_, W> {
    fn dir(&mut self, path: &Path) -> io::Result<()> {
        let path = self.prefix.join(path);
        self.tar.append_data(&mut header(EntryType::Directory, 0o755, 0), path, io::empty())
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        append_symlink(self.tar, &self.prefix.join(path), target.as_os_str().as_bytes())
    }

    fn file(&mut self, path: &Path, executable: bool, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let mode = if executable { 0o755 } else { 0o644 };
        let path = self.prefix.join(path);
        self.tar.append_data(&mut header(EntryType::Regular, mode, size), path, data)
    }
}

/// Bytes a tar header holds of a link target; a longer one goes first in a GNU long-link entry.
const LINK_NAME_FIELD: usize = 100;

/// A symlink whose target is kept byte for byte (`tar`'s `append_link` canonicalises it as a
/// path: `/` became `//`, `a//b` and `./a` became `a/b` and `a`, and `dir/` lost its slash).
fn append_symlink<W: Write>(tar: &mut Builder<W>, path: &Path, target: &[u8]) -> io::Result<()> {
    let mut link = header(EntryType::Symlink, 0o777, 0);
    if target.len() > LINK_NAME_FIELD {
        // As GNU tar writes it: `././@LongLink`, the target and a NUL.
        let mut long = header(EntryType::GNULongLink, 0o644, target.len() as u64 + 1);
        let name = b"././@LongLink";
        if let Some(gnu) = long.as_gnu_mut() {
            gnu.name[..name.len()].copy_from_slice(name);
        }
        long.set_cksum();
        tar.append(&long, target.chain(&[0u8][..]))?;
        link.set_link_name_literal(&target[..LINK_NAME_FIELD])?;
    } else {
        link.set_link_name_literal(target)?;
    }
    tar.append_data(&mut link, path, io::empty())
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}
