//! A thin advisory `flock(2)` wrapper whose guard never panics.
//!
//! nix's `Flock` panics in `Drop` when unlocking fails; closing the descriptor releases the lock
//! anyway, so this guard ignores an unlock error rather than panicking.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// An exclusive advisory lock on an open file, released on drop.
#[derive(Debug)]
pub(crate) struct ExclusiveLock {
    file: File,
}

impl ExclusiveLock {
    /// Waits for the lock.
    pub(crate) fn wait(file: File) -> io::Result<Self> {
        loop {
            match flock(&file, libc::LOCK_EX) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
                Ok(()) => return Ok(Self { file }),
            }
        }
    }

    /// Tries once; `Ok(None)` when another open file holds the lock.
    pub(crate) fn try_now(file: File) -> io::Result<Option<Self>> {
        loop {
            match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) => return Err(error),
                Ok(()) => return Ok(Some(Self { file })),
            }
        }
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        // Closing the file would release the lock too; unlocking first also covers a
        // descriptor that was duplicated somewhere.
        let _ = flock(&self.file, libc::LOCK_UN);
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is valid for as long as `file` is borrowed.
    let result = unsafe { libc::flock(file.as_raw_fd(), operation) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens (creating if needed, never truncating) a lock file: private, close-on-exec, so a
/// service never inherits a lock.
pub(crate) fn open_lock_file(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(crate::atomic::NEW_FILE_MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}
