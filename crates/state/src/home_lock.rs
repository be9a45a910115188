//! The lock that makes one engine the owner of a home directory.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::flock::{open_lock_file, ExclusiveLock};

/// Why a home could not be locked; each message is one line naming the lock file.
#[derive(Debug, thiserror::Error)]
pub enum HomeLockError {
    #[error("{} is held by another gitvisor engine ({})", path.display(), describe_pid(*pid))]
    Held { path: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

fn describe_pid(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

/// Ownership of a home by this process, until dropped.
///
/// An advisory `flock` on the lock file, so the kernel releases it when the process dies,
/// however it dies: no stale lock to clean up. The file holds the owner's pid, for messages.
/// The descriptor is close-on-exec, so supervised children never keep the home locked.
#[derive(Debug)]
pub struct HomeLock {
    path: PathBuf,
    _lock: ExclusiveLock,
}

impl HomeLock {
    /// Takes the lock at `path` (creating the file, not its directory) without waiting.
    pub fn acquire(path: &Path) -> Result<HomeLock, HomeLockError> {
        let io = |error| HomeLockError::Io { path: path.to_owned(), error };
        let file = open_lock_file(path).map_err(io)?;
        let Some(lock) = ExclusiveLock::try_now(file).map_err(io)? else {
            let pid = File::open(path).ok().and_then(|file| read_pid(&file));
            return Err(HomeLockError::Held { path: path.to_owned(), pid });
        };
        write_pid(lock.file(), std::process::id()).map_err(io)?;
        Ok(HomeLock { path: path.to_owned(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) fn write_pid(file: &File, pid: u32) -> io::Result<()> {
    file.set_len(0)?;
    file.write_all_at(format!("{pid}\n").as_bytes(), 0)
}

/// The pid written by the holder; `None` while it is being rewritten or if it is garbage.
pub(crate) fn read_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestChild;

    const CHILD_ENV: &str = "GITVISOR_STATE_TEST_HOME_LOCK";

    /// Runs only as the child of `another_process_holding_it_is_named`.
    #[test]
    #[ignore = "a helper: its parent test runs it in a child process"]
    fn child_holds_home() {
        let path = crate::test_support::parent_set(CHILD_ENV);
        let _lock = HomeLock::acquire(Path::new(&path)).unwrap();
        crate::test_support::ready_then_wait_for_parent();
    }

    #[test]
    fn another_process_holding_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.lock");
        let child =
            TestChild::spawn("home_lock::tests::child_holds_home", &[(CHILD_ENV, path.to_str().unwrap())]);
        let error = HomeLock::acquire(&path).unwrap_err();
        match &error {
            HomeLockError::Held { path: held, pid } => {
                assert_eq!(held, &path);
                assert_eq!(*pid, Some(child.pid()));
            }
            other => panic!("expected Held, got {other}"),
        }
        let message = error.to_string();
        assert!(message.contains("engine.lock"), "{message}");
        assert!(message.contains(&format!("pid {}", child.pid())), "{message}");

        child.finish();
        let lock = HomeLock::acquire(&path).unwrap();
        assert_eq!(lock.path(), path);
    }

    #[test]
    fn acquire_writes_our_pid_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.lock");
        let lock = HomeLock::acquire(&path).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(read_pid(&file), Some(std::process::id()));
        // A second open file in the same process conflicts too: one owner per home.
        assert!(matches!(HomeLock::acquire(&path), Err(HomeLockError::Held { .. })));
        drop(lock);
        HomeLock::acquire(&path).unwrap();
    }

    #[test]
    fn a_longer_stale_pid_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.lock");
        std::fs::write(&path, "4294967295999\n").unwrap();
        let _lock = HomeLock::acquire(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
    }

    #[test]
    fn the_descriptor_is_close_on_exec() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let lock = HomeLock::acquire(&dir.path().join("engine.lock")).unwrap();
        let fd = lock._lock.file().as_raw_fd();
        // SAFETY: F_GETFD only reads the flags of a descriptor we own.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("engine.lock");
        let error = HomeLock::acquire(&path).unwrap_err();
        assert!(matches!(error, HomeLockError::Io { .. }));
        assert!(error.to_string().contains("missing/engine.lock"), "{error}");
    }
}
