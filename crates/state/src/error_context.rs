//! One-line I/O errors that name the path they are about.

use std::io;
use std::path::Path;

/// Wraps `error` so its message reads `cannot ACTION PATH: ERROR`, keeping its kind.
pub(crate) fn io_error(action: &str, path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot {action} {}: {error}", path.display()))
}
