//! A capture as a deterministic tar archive.

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
pub fn write_snapshot<W: Write>(capture: &Capture, prefix: &Path, out: W) -> io::Result<W> {
    let mut tar = Builder::new(out);
    append_snapshot(&mut tar, capture, prefix)?;
    tar.into_inner()
}

/// Appends the capture's entries (as [`write_snapshot`] writes them) to an archive being built,
/// so a crash report holds `workdir/…` beside its other files.
pub fn append_snapshot<W: Write>(tar: &mut Builder<W>, capture: &Capture, prefix: &Path) -> io::Result<()> {
    if !prefix.as_os_str().is_empty() {
        tar.append_data(&mut header(EntryType::Directory, 0o755, 0), prefix, io::empty())?;
    }
    for entry in &capture.entries {
        let path = prefix.join(&entry.path);
        match &entry.kind {
            EntryKind::File { content, executable, .. } => {
                // A baseline that kept no bytes of this file is never archived.
                let content = content
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other(format!("{}: contents not kept", path.display())))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut header = header(EntryType::Regular, mode, content.len() as u64);
                tar.append_data(&mut header, &path, &content[..])?;
            }
            EntryKind::Dir => {
                tar.append_data(&mut header(EntryType::Directory, 0o755, 0), &path, io::empty())?;
            }
            EntryKind::Symlink { target } => append_symlink(tar, &path, target.as_os_str().as_bytes())?,
        }
    }
    Ok(())
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
