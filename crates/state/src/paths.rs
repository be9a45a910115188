//! Path guards: a path built from outside input stays inside its base directory.

use std::io;
use std::path::{Path, PathBuf};

/// Why `relative` may not be used under `base`; the message names both.
#[derive(Debug, thiserror::Error)]
#[error("path {input:?} is not allowed under {}: {reason}", base.display())]
pub struct PathError {
    pub input: String,
    pub base: PathBuf,
    pub reason: PathErrorReason,
}

#[derive(Debug, thiserror::Error)]
pub enum PathErrorReason {
    #[error("it is empty")]
    Empty,
    #[error("it contains a NUL byte")]
    Nul,
    #[error("it is absolute")]
    Absolute,
    #[error("it has an empty name between slashes")]
    EmptyComponent,
    #[error("it has a \".\" component")]
    CurrentDir,
    #[error("it has a \"..\" component")]
    ParentDir,
    #[error("through a symlink it resolves to {}, outside the base", .0.display())]
    Escapes(PathBuf),
    #[error("cannot resolve {}: {error}", path.display())]
    Unresolvable { path: PathBuf, error: io::Error },
}

/// Joins `relative` (slash-separated plain names) onto `base`, refusing anything that could
/// leave `base`.
///
/// Refused lexically: empty input, NUL bytes, absolute paths, and `..`, `.` or empty
/// components. Then the deepest part of the result that exists is resolved, and must still be
/// inside the resolved base: a symlink that leads out is refused, including one in the middle
/// of a path whose end does not exist yet. A dangling symlink is refused as unresolvable,
/// since writing through it could create a file anywhere.
pub fn join_inside(base: &Path, relative: &str) -> Result<PathBuf, PathError> {
    let refuse = |reason| PathError { input: relative.to_owned(), base: base.to_owned(), reason };
    check_lexically(relative).map_err(refuse)?;
    let joined = base.join(relative);
    check_resolved(base, &joined).map_err(refuse)?;
    Ok(joined)
}

fn check_lexically(relative: &str) -> Result<(), PathErrorReason> {
    if relative.is_empty() {
        return Err(PathErrorReason::Empty);
    }
    if relative.contains('\0') {
        return Err(PathErrorReason::Nul);
    }
    if relative.starts_with('/') {
        return Err(PathErrorReason::Absolute);
    }
    for name in relative.split('/') {
        match name {
            "" => return Err(PathErrorReason::EmptyComponent),
            "." => return Err(PathErrorReason::CurrentDir),
            ".." => return Err(PathErrorReason::ParentDir),
            _ => {}
        }
    }
    Ok(())
}

fn check_resolved(base: &Path, joined: &Path) -> Result<(), PathErrorReason> {
    let Some(existing) = deepest_existing(base, joined) else {
        // Nothing below the base exists yet, so no symlink can lead out.
        return Ok(());
    };
    let unresolvable = |path: &Path| {
        let path = path.to_owned();
        move |error| PathErrorReason::Unresolvable { path, error }
    };
    let resolved = existing.canonicalize().map_err(unresolvable(existing))?;
    let resolved_base = base.canonicalize().map_err(unresolvable(base))?;
    if resolved.starts_with(&resolved_base) {
        Ok(())
    } else {
        Err(PathErrorReason::Escapes(resolved))
    }
}

/// The longest prefix of `joined`, strictly below `base`, that exists (symlinks not followed).
fn deepest_existing<'a>(base: &Path, joined: &'a Path) -> Option<&'a Path> {
    joined
        .ancestors()
        .take_while(|ancestor| *ancestor != base)
        .find(|ancestor| ancestor.symlink_metadata().is_ok())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn reason(base: &Path, relative: &str) -> PathErrorReason {
        join_inside(base, relative).unwrap_err().reason
    }

    #[test]
    fn plain_names_join() {
        let base = Path::new("/home/u/.local/state/gitvisor");
        assert_eq!(join_inside(base, "units/web.service").unwrap(), base.join("units/web.service"));
        assert_eq!(join_inside(base, "a..b").unwrap(), base.join("a..b"));
        assert_eq!(join_inside(base, ".hidden").unwrap(), base.join(".hidden"));
    }

    #[test]
    fn every_bad_input_is_refused() {
        let base = Path::new("/base");
        assert!(matches!(reason(base, ""), PathErrorReason::Empty));
        assert!(matches!(reason(base, "a\0b"), PathErrorReason::Nul));
        assert!(matches!(reason(base, "/etc/passwd"), PathErrorReason::Absolute));
        assert!(matches!(reason(base, "//x"), PathErrorReason::Absolute));
        assert!(matches!(reason(base, ".."), PathErrorReason::ParentDir));
        assert!(matches!(reason(base, "../x"), PathErrorReason::ParentDir));
        assert!(matches!(reason(base, "a/../../x"), PathErrorReason::ParentDir));
        assert!(matches!(reason(base, "a/.."), PathErrorReason::ParentDir));
        assert!(matches!(reason(base, "."), PathErrorReason::CurrentDir));
        assert!(matches!(reason(base, "./a"), PathErrorReason::CurrentDir));
        assert!(matches!(reason(base, "a//b"), PathErrorReason::EmptyComponent));
        assert!(matches!(reason(base, "a/"), PathErrorReason::EmptyComponent));
    }

    #[test]
    fn the_message_names_input_and_base() {
        let error = join_inside(Path::new("/base/dir"), "../secret").unwrap_err();
        assert_eq!(
            error.to_string(),
            "path \"../secret\" is not allowed under /base/dir: it has a \"..\" component"
        );
        let error = join_inside(Path::new("/base"), "a\0b").unwrap_err();
        assert_eq!(error.to_string(), "path \"a\\0b\" is not allowed under /base: it contains a NUL byte");
    }

    #[test]
    fn a_symlink_leading_out_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"x").unwrap();
        symlink(outside.path().join("secret"), base.path().join("file")).unwrap();
        symlink(outside.path(), base.path().join("dir")).unwrap();

        assert!(matches!(reason(base.path(), "file"), PathErrorReason::Escapes(_)));
        assert!(matches!(reason(base.path(), "dir/secret"), PathErrorReason::Escapes(_)));
        // The end does not exist yet, but writing it would land outside.
        assert!(matches!(reason(base.path(), "dir/new"), PathErrorReason::Escapes(_)));
        assert!(matches!(reason(base.path(), "dir/new/deeper"), PathErrorReason::Escapes(_)));
    }

    #[test]
    fn a_dangling_symlink_is_refused() {
        let base = tempfile::tempdir().unwrap();
        symlink("/nonexistent/gitvisor-test", base.path().join("dangling")).unwrap();
        let error = join_inside(base.path(), "dangling").unwrap_err();
        assert!(matches!(error.reason, PathErrorReason::Unresolvable { .. }));
        assert!(error.to_string().contains("dangling"), "{error}");
    }

    #[test]
    fn symlinks_that_stay_inside_are_fine() {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir(base.path().join("real")).unwrap();
        symlink(base.path().join("real"), base.path().join("alias")).unwrap();
        symlink("real", base.path().join("relative-alias")).unwrap();
        assert!(join_inside(base.path(), "alias/new").is_ok());
        assert!(join_inside(base.path(), "relative-alias").is_ok());
    }

    #[test]
    fn a_symlinked_base_is_resolved_too() {
        let real = tempfile::tempdir().unwrap();
        let links = tempfile::tempdir().unwrap();
        let base = links.path().join("home");
        symlink(real.path(), &base).unwrap();
        fs::write(real.path().join("state.json"), b"{}").unwrap();
        assert_eq!(join_inside(&base, "state.json").unwrap(), base.join("state.json"));
    }

    #[test]
    fn a_missing_base_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("not-yet");
        assert_eq!(join_inside(&base, "a/b").unwrap(), base.join("a/b"));
    }
}
