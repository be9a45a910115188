//! JSON state files: saved atomically, and a file that cannot be parsed is kept aside
//! rather than lost or fatal.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic::write_atomic;
use crate::error_context::io_error;
use crate::swap::write_swapped;

/// A loaded state value and, when the file could not be used, why (one line for the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    pub value: T,
    pub warning: Option<String>,
}

/// Loads `path`, falling back to `T::default()`.
///
/// A missing file is the normal first start: defaults, no warning. A file that cannot be
/// parsed is moved aside as `NAME.bak-YYYYMMDDTHHMMSSZ` (UTC; `-1`, `-2`… when taken) so the
/// next save does not destroy it. A file that cannot be read at all is left where it is.
/// Either way the warning is returned and logged.
pub fn load_or_default<T: DeserializeOwned + Default>(path: &Path) -> Loaded<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return defaults(None),
        Err(error) => {
            let warning = format!("cannot read {}: {error}; using defaults", path.display());
            tracing::warn!(path = %path.display(), %error, "state file unreadable, using defaults");
            return defaults(Some(warning));
        }
    };
    let parse_error = match serde_json::from_slice(&bytes) {
        Ok(value) => return Loaded { value, warning: None },
        Err(error) => error,
    };
    let warning = match move_aside(path, SystemTime::now()) {
        Ok(backup) => {
            tracing::warn!(
                path = %path.display(),
                backup = %backup.display(),
                error = %parse_error,
                "state file could not be parsed; moved aside, using defaults"
            );
            format!(
                "{} could not be parsed ({parse_error}); moved it to {} and using defaults",
                path.display(),
                backup.display()
            )
        }
        Err(move_error) => {
            tracing::warn!(
                path = %path.display(),
                error = %parse_error,
                move_error = %move_error,
                "state file could not be parsed nor moved aside; using defaults"
            );
            format!(
                "{} could not be parsed ({parse_error}) nor moved aside ({move_error}); using defaults",
                path.display()
            )
        }
    };
    defaults(Some(warning))
}

/// Writes `value` as pretty JSON (with a final newline) through [`write_atomic`].
pub fn save<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &pretty(path, value)?)
}

/// Writes `value` as [`save`] does, through [`write_swapped`]: for a file rewritten often.
pub fn save_swapped<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_swapped(path, &pretty(path, value)?)
}

fn pretty<T: Serialize>(path: &Path, value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("cannot serialise {}: {error}", path.display()))
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn defaults<T: Default>(warning: Option<String>) -> Loaded<T> {
    Loaded { value: T::default(), warning }
}

/// Renames `path` to a backup name that is not taken yet and returns that name.
fn move_aside(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    let stamp = backup_stamp(now);
    for attempt in 0..=u32::MAX {
        let candidate = backup_path(path, &stamp, attempt);
        if fs::symlink_metadata(&candidate).is_ok() {
            continue;
        }
        fs::rename(path, &candidate).map_err(|e| io_error("move aside", path, e))?;
        return Ok(candidate);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("cannot move aside {}: every backup name is taken", path.display()),
    ))
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn backup_stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string().chars().filter(|c| !matches!(c, '-' | ':')).collect()
}

fn backup_path(path: &Path, stamp: &str, attempt: u32) -> PathBuf {
    let mut name = OsString::from(path.file_name().unwrap_or(path.as_os_str()));
    name.push(".bak-");
    name.push(stamp);
    if attempt > 0 {
        name.push(format!("-{attempt}"));
    }
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use crate::test_support::names_in;
    use std::time::{Duration, UNIX_EPOCH};

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct State {
        units: Vec<String>,
        restarts: u32,
    }

    #[test]
    fn missing_file_gives_defaults_without_warning() {
        let dir = tempfile::tempdir().unwrap();
        let loaded: Loaded<State> = load_or_default(&dir.path().join("state.json"));
        assert_eq!(loaded, defaults(None));
    }

    #[test]
    fn save_then_load_round_trips_as_pretty_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = State { units: vec!["web".into()], restarts: 3 };
        save(&path, &state).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\n  \"restarts\": 3"), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(load_or_default::<State>(&path).value, state);
    }

    #[test]
    fn unparsable_file_is_moved_aside_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\n  \"restarts\": nope\n}").unwrap();
        let loaded: Loaded<State> = load_or_default(&path);
        assert_eq!(loaded.value, State::default());
        let warning = loaded.warning.unwrap();
        let files = names_in(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        let backup = &files[0];
        assert!(backup.starts_with("state.json.bak-"), "{backup}");
        assert!(warning.contains(&path.display().to_string()), "{warning}");
        assert!(warning.contains(backup.as_str()), "{warning}");
        assert!(warning.contains("line 2 column"), "{warning}");
        assert_eq!(fs::read(dir.path().join(backup)).unwrap(), b"{\n  \"restarts\": nope\n}");
    }

    #[test]
    fn wrong_shape_counts_as_unparsable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"[1, 2]").unwrap();
        let loaded: Loaded<State> = load_or_default(&path);
        assert!(loaded.warning.is_some());
        assert!(!path.exists());
    }

    #[test]
    fn backup_stamp_is_compact_utc() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(backup_stamp(at), "20231114T221320Z");
    }

    #[test]
    fn taken_backup_names_get_a_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for round in 0..3 {
            fs::write(&path, format!("broken {round}")).unwrap();
            move_aside(&path, at).unwrap();
        }
        assert_eq!(
            names_in(dir.path()),
            [
                "state.json.bak-20231114T221320Z",
                "state.json.bak-20231114T221320Z-1",
                "state.json.bak-20231114T221320Z-2",
            ]
        );
        let second = dir.path().join("state.json.bak-20231114T221320Z-1");
        assert_eq!(fs::read_to_string(second).unwrap(), "broken 1");
    }

    #[test]
    fn unreadable_path_warns_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::create_dir(&path).unwrap();
        let loaded: Loaded<State> = load_or_default(&path);
        let warning = loaded.warning.unwrap();
        assert!(warning.starts_with("cannot read "), "{warning}");
        assert!(path.is_dir());
    }
}
