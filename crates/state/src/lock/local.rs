//! The local lock backend: one engine on one machine.
//!
//! Two layers, because `flock` cannot tell ops in the same process apart reliably: an
//! in-process table answers `InProgress` (this engine already runs an op on the key), and an
//! advisory `flock` on `<dir>/<key>.lock` answers `Held` (another process has it). The lock
//! file holds `PID OP` of its holder, so the refusal can name it.
//!
//! An engine that owns its home alone (the home's own exclusive lock, SPEC section 1) needs only
//! the table: [`LocalLocks::in_process`]. No other process takes its keys, and a lock file per
//! service would cost a file created at each service's first operation (about 0.8 ms each on
//! an ext4 with many recently deleted inodes: most of the start of a thousand services).

use std::collections::HashMap;
use std::fs::{DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::file_name::lock_file_name;
use super::{Acquire, Guard, LockBackend, LockError};
use crate::flock::{open_lock_file, ExclusiveLock};
use crate::paths::join_inside;

type Table = Arc<Mutex<HashMap<String, String>>>;

/// Locks for one engine, with lock files in one directory (created on first use).
#[derive(Debug, Clone)]
pub struct LocalLocks {
    /// None: the table only (see the module's note).
    dir: Option<PathBuf>,
    in_progress: Table,
    /// Each key's checked lock file path: the directory is created and the path guarded once,
    /// not on every operation (a start of a thousand services takes a thousand locks).
    paths: Arc<Mutex<HashMap<String, PathBuf>>>,
}

impl LocalLocks {
    pub fn new(dir: PathBuf) -> Self {
        LocalLocks { dir: Some(dir), in_progress: Arc::default(), paths: Arc::default() }
    }

    /// Locks kept in this process only, for keys no other process takes.
    pub fn in_process() -> Self {
        LocalLocks { dir: None, in_progress: Arc::default(), paths: Arc::default() }
    }

    fn lock_path(&self, dir: &Path, key: &str) -> Result<PathBuf, LockError> {
        if let Some(p) = self.paths.lock().unwrap_or_else(PoisonError::into_inner).get(key) {
            return Ok(p.clone());
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| backend_error("create lock directory", dir, &e))?;
        let path = join_inside(dir, &lock_file_name(key)).map_err(|e| LockError::Backend(e.to_string()))?;
        self.paths.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned(), path.clone());
        Ok(path)
    }

    /// Where the lock files are; None for locks in the process only.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn lock_file(&self, dir: &Path, key: &str) -> Result<(PathBuf, File), LockError> {
        let path = self.lock_path(dir, key)?;
        let file = open_lock_file(&path).map_err(|e| backend_error("open lock file", &path, &e))?;
        Ok((path, file))
    }
}

impl LockBackend for LocalLocks {
    /// Answers at once: a table lookup and a non-blocking `flock`.
    fn try_acquire<'a>(&'a self, key: &'a str, op: &'a str) -> Acquire<'a> {
        Box::pin(std::future::ready(self.acquire_now(key, op).map(Guard::new)))
    }
}

impl LocalLocks {
    fn acquire_now(&self, key: &str, op: &str) -> Result<LocalGuard, LockError> {
        let reservation = Reservation::take(&self.in_progress, key, op)?;
        let Some(dir) = &self.dir else {
            return Ok(LocalGuard { lock: None, _reservation: reservation });
        };
        let (path, file) = self.lock_file(dir, key)?;
        let lock = ExclusiveLock::try_now(file)
            .map_err(|e| backend_error("lock", &path, &e))?
            .ok_or_else(|| LockError::Held { key: key.to_owned(), holder: read_holder(&path) })?;
        if let Err(error) = write_holder(lock.file(), op) {
            // The lock is ours all the same; only the name in a rival's message is lost.
            tracing::warn!(path = %path.display(), %error, "cannot record lock holder");
        }
        Ok(LocalGuard { lock: Some(lock), _reservation: reservation })
    }
}

/// Releases the file lock, then the table entry (fields drop in order), so a thread of this
/// process that finds the key free in the table also finds the file free.
struct LocalGuard {
    lock: Option<ExclusiveLock>,
    _reservation: Reservation,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        // Forget the holder while still holding the lock; a failure only leaves a stale name.
        if let Some(lock) = &self.lock {
            let _ = lock.file().set_len(0);
        }
    }
}

/// A key's entry in the in-process table, removed on drop.
struct Reservation {
    table: Table,
    key: String,
}

impl Reservation {
    fn take(table: &Table, key: &str, op: &str) -> Result<Reservation, LockError> {
        let mut entries = table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = entries.get(key) {
            return Err(LockError::InProgress { key: key.to_owned(), op: running.clone() });
        }
        entries.insert(key.to_owned(), op.to_owned());
        Ok(Reservation { table: Arc::clone(table), key: key.to_owned() })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut entries = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&self.key);
    }
}

fn write_holder(file: &File, op: &str) -> io::Result<()> {
    file.set_len(0)?;
    let first_line = op.lines().next().unwrap_or_default();
    file.write_all_at(format!("{} {first_line}\n", std::process::id()).as_bytes(), 0)
}

/// `pid 1234 (stop)`, or a vaguer phrase while the holder has not written its name yet.
fn read_holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut file| file.read_to_string(&mut text));
    let line = text.lines().next().unwrap_or_default();
    let (pid, op) = line.split_once(' ').unwrap_or((line, ""));
    match (read, pid.parse::<u32>()) {
        (Ok(_), Ok(pid)) if op.is_empty() => format!("pid {pid}"),
        (Ok(_), Ok(pid)) => format!("pid {pid} ({op})"),
        _ => "another process".to_owned(),
    }
}

fn backend_error(action: &str, path: &Path, error: &io::Error) -> LockError {
    LockError::Backend(format!("cannot {action} {}: {error}", path.display()))
}
