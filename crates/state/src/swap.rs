//! Atomic replacement of a file rewritten often, without a new file each time.
//!
//! [`crate::write_atomic`] creates a temporary file and renames it over the target: one inode
//! created and one deleted per write. A file rewritten many times a second (the engine's state
//! while a service restarts in a loop) then costs more at each write: ext4 without a journal
//! searches past every recently deleted inode before it hands out a new one, and that search
//! grew to a fifth of the engine's CPU in a restart loop. Here the bytes go to a spare file kept
//! beside the target (`.NAME.spare`), which is fsynced and *exchanged* with the target
//! (`renameat2(RENAME_EXCHANGE)`): the target now has the new bytes, the spare the old ones,
//! and the next write reuses the spare. Two inodes for the life of the file, none created or
//! deleted per write.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

use crate::atomic::{parent_dir, sync_dir, write_atomic, NEW_FILE_MODE};
use crate::error_context::io_error;

/// Replaces `path` with `bytes` atomically and durably, as [`write_atomic`] does (a reader
/// sees the old file or the new one; the file and its directory are fsynced), through the
/// spare file `.NAME.spare` in the same directory, which stays there between writes holding
/// the previous contents. The target gets the spare's mode: 0600 when this function created
/// it. Where the exchange cannot be made (a filesystem without `RENAME_EXCHANGE`, or no target
/// yet), the spare is renamed over the target instead, as `write_atomic` does.
pub fn write_swapped(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let spare_path = spare_of(path)?;
    let spare = match open_spare(&spare_path) {
        Ok(file) => file,
        // Not a regular file we may write (a directory, a link): leave it and write the usual
        // way.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EISDIR | libc::EACCES)) => {
            return write_atomic(path, bytes)
        }
        Err(e) => return Err(io_error("open", &spare_path, e)),
    };
    fill(&spare, bytes).map_err(|e| io_error("write", &spare_path, e))?;
    drop(spare);
    let exchanged = renameat2(None, &spare_path, None, path, RenameFlags::RENAME_EXCHANGE);
    match exchanged {
        Ok(()) => {}
        // No target to exchange with, or a filesystem that cannot: the spare becomes the
        // target, and the next write makes a new spare.
        Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            std::fs::rename(&spare_path, path).map_err(|e| io_error("replace", path, e))?
        }
        Err(errno) => return Err(io_error("replace", path, errno.into())),
    }
    sync_dir(parent_dir(path))
}

/// `.NAME.spare` beside `path`.
fn spare_of(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot write {}: the path has no file name", path.display()),
        )
    })?;
    let mut spare = OsString::from(".");
    spare.push(name);
    spare.push(".spare");
    Ok(parent_dir(path).join(spare))
}

fn open_spare(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(NEW_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Overwrites the file with `bytes` from its start, cuts what the old contents had past them,
/// and fsyncs it.
fn fill(file: &File, bytes: &[u8]) -> io::Result<()> {
    file.write_all_at(bytes, 0)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::names_in;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn writes_alternate_between_two_inodes_and_never_leave_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_swapped(&path, b"first, and rather long").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first, and rather long");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        write_swapped(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second", "what the spare held before is cut");
        let spare = dir.path().join(".state.json.spare");
        assert_eq!(fs::read(&spare).unwrap(), b"first, and rather long", "the previous contents");
        let inodes = |p: &Path, q: &Path| {
            let mut v = [fs::metadata(p).unwrap().ino(), fs::metadata(q).unwrap().ino()];
            v.sort();
            v
        };
        let two = inodes(&path, &spare);
        for i in 0..5 {
            let text = format!("write {i}");
            write_swapped(&path, text.as_bytes()).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
            assert_eq!(inodes(&path, &spare), two, "no inode created or deleted");
        }
        assert_eq!(names_in(dir.path()), [".state.json.spare", "state.json"]);
    }

    #[test]
    fn a_spare_that_is_not_a_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"not to be touched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".state.json.spare")).unwrap();
        write_swapped(&path, b"written").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"written");
        assert_eq!(fs::read(&elsewhere).unwrap(), b"not to be touched", "the link is never followed");
        fs::remove_file(dir.path().join(".state.json.spare")).unwrap();
        fs::create_dir(dir.path().join(".state.json.spare")).unwrap();
        write_swapped(&path, b"again").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"again");
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_one_error_naming_the_spare_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let missing = dir.path().join("missing").join("state.json");
        let e = write_swapped(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains(".state.json.spare"), "{e}");
        write_swapped(&path, b"kept").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"kept");
    }
}
