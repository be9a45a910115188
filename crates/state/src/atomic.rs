//! Atomic file replacement: a reader sees the old file or the new one, never a mix.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error_context::io_error;

/// Mode of a file this crate creates: state may hold secrets, so only the user reads it.
pub(crate) const NEW_FILE_MODE: u32 = 0o600;

/// How many temporary names to try before giving up (each attempt is a fresh counter value).
const TEMP_NAME_ATTEMPTS: u32 = 100;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` atomically and durably.
///
/// The bytes go to a temporary file in the same directory (`.NAME.tmp-PID-N`), which is
/// fsynced and renamed over `path`, then the directory is fsynced so the rename survives a
/// crash. On any error the temporary file is removed and the old file is untouched. A new
/// file gets mode 0600; an existing file keeps its mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot write {}: the path has no file name", path.display()),
        )
    })?;
    let dir = parent_dir(path);
    let (temp_path, temp_file) = create_temp(dir, name)?;
    let written = fill_temp(temp_file, &temp_path, bytes, path)
        .and_then(|()| fs::rename(&temp_path, path).map_err(|e| io_error("replace", path, e)));
    if let Err(error) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    sync_dir(dir)
}

/// The directory holding `path`; a bare file name lives in the current directory.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let mut last_error = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp_path = dir.join(temp_name);
        let opened = OpenOptions::new().write(true).create_new(true).mode(NEW_FILE_MODE).open(&temp_path);
        match opened {
            Ok(file) => return Ok((temp_path, file)),
            // A stale temporary file from a crashed process with our pid: take the next name.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                last_error = Some(io_error("create", &temp_path, error));
            }
            Err(error) => return Err(io_error("create", &temp_path, error)),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::other(format!("cannot create a temporary file in {}", dir.display()))))
}

fn fill_temp(mut file: File, temp_path: &Path, bytes: &[u8], target: &Path) -> io::Result<()> {
    if let Ok(existing) = fs::metadata(target) {
        let mode = existing.permissions().mode() & 0o7777;
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| io_error("set the mode of", temp_path, e))?;
    }
    file.write_all(bytes).map_err(|e| io_error("write", temp_path, e))?;
    file.sync_all().map_err(|e| io_error("fsync", temp_path, e))
}

/// Makes a rename or a new entry in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::names_in;

    #[test]
    fn creates_a_new_file_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(names_in(dir.path()), ["state.json"]);
    }

    #[test]
    fn replaces_an_existing_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"old old old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(names_in(dir.path()), ["state.json"]);
    }

    #[test]
    fn failed_rename_removes_the_temp_file_and_leaves_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"keep").unwrap();
        let error = write_atomic(&target, b"new").unwrap_err();
        assert!(error.to_string().contains("occupied"), "{error}");
        assert_eq!(names_in(dir.path()), ["occupied"]);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"keep");
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("state.json");
        let error = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("nope"), "{error}");
    }

    #[test]
    fn a_path_without_a_file_name_is_rejected() {
        let error = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = write_atomic(Path::new("dir/.."), b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn concurrent_writers_each_leave_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::thread::scope(|scope| {
            for writer in 0..4u8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..25 {
                        write_atomic(path, &[b'a' + writer; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]));
        assert_eq!(names_in(dir.path()), ["state.json"]);
    }
}
