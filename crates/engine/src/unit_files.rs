//! Editing unit files: read one with its uncommitted edits and draft, check a text as
//! `validate` does, commit a text (never one with errors), remove a unit, keep or forget a draft,
//! discard uncommitted edits. Written once for the engine's `unit.*` methods (the window's
//! editor) and for `gitvisor edit` when no engine runs. Drafts live in the home
//! (`edit-recovery/drafts/FILE`, the user's only), so an edit survives the window and the app.

use std::path::PathBuf;

use gitvisor_protocol::{UnitCheck, UnitDiagnostic, UnitText};
use gitvisor_units::{validate_text, Severity, UnitName};

use crate::git::{GitError, ServicesRepo};
use crate::paths::Paths;

/// What a new unit starts as.
pub const SKELETON: &str =
    "[Unit]\nDescription=\n\n[Service]\nExecStart=\nRestart=on-failure\n\n[Install]\nWantedBy=default.target\n";

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The name is not a unit file's.
    #[error("{0}")]
    Name(String),
    /// The text has errors: nothing was written.
    #[error("{file} has {n} error{s}; nothing was committed:\n{lines}", n = .errors.len(), s = if .errors.len() == 1 { "" } else { "s" }, lines = .errors.join("\n"))]
    Invalid { file: String, errors: Vec<String> },
    #[error("{0}")]
    Git(#[from] GitError),
    #[error("{0}")]
    Io(String),
}

/// The file name of a unit named `name`: `web` and `web.service` are `web.service`, `web@`
/// is the template `web@.service`, `nightly.timer` stays.
pub fn file_of(name: &str) -> Result<String, EditError> {
    let name = name.trim();
    if let Some(stem) = name.strip_suffix(".timer") {
        // The same naming rules as services.
        UnitName::parse(stem).map_err(|e| EditError::Name(format!("{name}: {e}")))?;
        return Ok(name.to_string());
    }
    let unit = UnitName::parse(name).map_err(|e| EditError::Name(format!("{name}: {e}")))?;
    if unit.instance().is_some() {
        let template = unit.template().map(|t| t.file_name()).unwrap_or_default();
        return Err(EditError::Name(format!("{name} is an instance: edit its template {template}")));
    }
    Ok(unit.file_name())
}

/// `text` checked as `gitvisor validate` checks a file named `file`.
pub fn check(file: &str, text: &str) -> UnitCheck {
    let ctx = crate::units::specifier_context();
    let diagnostics: Vec<UnitDiagnostic> = validate_text(file, text.as_bytes(), &ctx)
        .into_iter()
        .map(|d| UnitDiagnostic {
            line: d.line,
            severity: match d.severity {
                Severity::Error => "error".into(),
                Severity::Warning => "warning".into(),
            },
            key: d.key.clone(),
            message: d.message.clone(),
            text: d.to_string(),
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.severity == "error").count();
    UnitCheck { diagnostics, errors }
}

fn draft_path(paths: &Paths, file: &str) -> Result<PathBuf, EditError> {
    gitvisor_state::join_inside(&paths.edit_recovery.join("drafts"), file)
        .map_err(|e| EditError::Io(e.to_string()))
}

fn read_draft(paths: &Paths, file: &str) -> Result<Option<String>, EditError> {
    match std::fs::read(draft_path(paths, file)?) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EditError::Io(format!("draft of {file}: {e}"))),
    }
}

/// The unit file as an editor needs it.
pub fn read(paths: &Paths, file: &str) -> Result<UnitText, EditError> {
    let repo = ServicesRepo::open_or_init(&paths.services)?;
    let head = repo.head().map_err(GitError::Refused)?;
    let committed = repo.file_at(head.commit, file)?.map(|b| String::from_utf8_lossy(&b).into_owned());
    let on_disk = match std::fs::read(paths.services.join(file)) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(EditError::Io(format!("{file}: {e}"))),
    };
    let pending = on_disk.filter(|t| Some(t) != committed.as_ref());
    let draft = read_draft(paths, file)?;
    let text = draft.clone().or_else(|| pending.clone()).or_else(|| committed.clone()).unwrap_or_else(|| {
        if file.ends_with(".timer") {
            String::new()
        } else {
            SKELETON.to_string()
        }
    });
    Ok(UnitText { file: file.to_string(), committed, pending, draft, text })
}

/// Keeps `text` as the draft of `file`, or forgets the draft.
pub fn set_draft(paths: &Paths, file: &str, text: Option<&str>) -> Result<(), EditError> {
    let path = draft_path(paths, file)?;
    match text {
        Some(t) => {
            use std::os::unix::fs::DirBuilderExt;
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| EditError::Io(format!("{}: {e}", dir.display())))?;
            }
            gitvisor_state::write_atomic(&path, t.as_bytes())
                .map_err(|e| EditError::Io(format!("draft of {file}: {e}")))
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EditError::Io(format!("draft of {file}: {e}"))),
        },
    }
}

/// Commits `text` as `file` (with `message`, or `Add …`/`Edit …`): refused while it has
/// errors. Returns the commit (none when the text is already committed as it is, and the
/// working tree agrees) and the message. The draft goes either way once committed.
pub fn commit(
    paths: &Paths,
    file: &str,
    text: &str,
    message: Option<&str>,
) -> Result<(Option<String>, String), EditError> {
    let found = check(file, text);
    if found.errors > 0 {
        let errors =
            found.diagnostics.iter().filter(|d| d.severity == "error").map(|d| d.text.clone()).collect();
        return Err(EditError::Invalid { file: file.to_string(), errors });
    }
    let current = read(paths, file)?;
    let verb = if current.committed.is_some() { "Edit" } else { "Add" };
    let message = message
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or(format!("{verb} {file}"));
    if current.committed.as_deref() == Some(text) && current.pending.is_none() {
        set_draft(paths, file, None)?;
        return Ok((None, message));
    }
    let repo = ServicesRepo::open_or_init(&paths.services)?;
    let id = repo.commit_file(file, text.as_bytes(), &message)?;
    set_draft(paths, file, None)?;
    Ok((Some(id.to_string()), message))
}

/// Removes `file` in a commit (and its draft).
pub fn delete(paths: &Paths, file: &str, message: Option<&str>) -> Result<(String, String), EditError> {
    let repo = ServicesRepo::open_or_init(&paths.services)?;
    let head = repo.head().map_err(GitError::Refused)?;
    if repo.file_at(head.commit, file)?.is_none() {
        return Err(EditError::Name(format!(
            "{file} is not committed: nothing to delete (discard it instead)"
        )));
    }
    let message = message
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or(format!("Remove {file}"));
    let id = repo.commit_removal(file, &message)?;
    set_draft(paths, file, None)?;
    Ok((id.to_string(), message))
}

/// Puts `file` back as committed in the working tree (an uncommitted new file goes).
pub fn discard(paths: &Paths, file: &str) -> Result<(), EditError> {
    let current = read(paths, file)?;
    let path = paths.services.join(file);
    match current.committed {
        Some(text) => gitvisor_state::write_atomic(&path, text.as_bytes())
            .map_err(|e| EditError::Io(format!("{file}: {e}"))),
        None => match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EditError::Io(format!("{file}: {e}"))),
        },
    }
}
