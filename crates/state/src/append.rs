//! Appends that several writers, in several processes, may make to one file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::atomic::NEW_FILE_MODE;
use crate::error_context::io_error;
use crate::flock::ExclusiveLock;

/// Appends `bytes` to `path` (created with mode 0600 if missing) as one entry.
///
/// `O_APPEND` alone keeps a single `write(2)` whole, but a long entry may need several; the
/// exclusive `flock` held for the whole write keeps entries from different processes and
/// threads from interleaving. Every writer of the file must use this function.
pub fn append_locked(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(NEW_FILE_MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error("open", path, e))?;
    let lock = ExclusiveLock::wait(file).map_err(|e| io_error("lock", path, e))?;
    let mut file = lock.file();
    file.write_all(bytes).map_err(|e| io_error("append to", path, e))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::test_support::TestChild;

    const CHILD_ENV: &str = "GITVISOR_STATE_TEST_APPEND_TO";
    const WRITERS: usize = 4;
    const LINES: usize = 200;
    const LINE_LEN: usize = 3000;

    fn line(writer: &str, n: usize) -> String {
        let body = format!("{writer}:{n}:");
        let fill = LINE_LEN - body.len() - 1;
        format!("{body}{}\n", "x".repeat(fill))
    }

    fn append_lines(path: &Path, writer: &str) {
        for n in 0..LINES {
            append_locked(path, line(writer, n).as_bytes()).unwrap();
        }
    }

    /// Runs only as the child of `threads_and_a_process_never_interleave`.
    #[test]
    #[ignore = "a helper: its parent test runs it in a child process"]
    fn child_appends() {
        let path = crate::test_support::parent_set(CHILD_ENV);
        crate::test_support::ready_then_wait_for_parent();
        append_lines(Path::new(&path), "child");
    }

    #[test]
    fn threads_and_a_process_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let path_text = path.to_str().unwrap();
        let child = TestChild::spawn("append::tests::child_appends", &[(CHILD_ENV, path_text)]);
        std::thread::scope(|scope| {
            let child = child;
            for writer in 0..WRITERS {
                let path = &path;
                scope.spawn(move || append_lines(path, &format!("thread{writer}")));
            }
            // The child starts appending once its stdin closes, racing the threads.
            child.finish();
        });

        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len(), (WRITERS + 1) * LINES);
        for line in &lines {
            assert_eq!(line.len(), LINE_LEN, "torn line: {:.40}…", line);
            let mut parts = line.splitn(3, ':');
            let (writer, n) = (parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(*line, super::tests::line(writer, n.parse().unwrap()));
        }
        assert_eq!(lines.iter().filter(|l| l.starts_with("child:")).count(), LINES);
    }

    #[test]
    fn creates_the_file_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.log");
        append_locked(&path, b"one\n").unwrap();
        append_locked(&path, b"two\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("x.log");
        let error = append_locked(&path, b"x").unwrap_err();
        assert!(error.to_string().contains("missing/x.log"), "{error}");
    }
}
