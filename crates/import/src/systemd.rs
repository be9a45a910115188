//! systemd user units (`*.service`, `*.timer`): gitvisor reads systemd's syntax, so they are
//! copied as they are and checked by the same loader `gitvisor validate` uses ([`check`]):
//! an error refuses the import, a warning (a key gitvisor does not implement) is listed.

use std::path::Path;

use gitvisor_units::{load_timer, load_unit, Diagnostic, Severity, SpecifierContext, UnitName};

use crate::{ImportError, Note, Translated};

pub fn translate(path: &Path, text: &str) -> Result<Translated, ImportError> {
    let file = path.display().to_string();
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let valid = if name.ends_with(".timer") {
        UnitName::from_timer_file_name(&name).map(|_| ())
    } else {
        UnitName::from_file_name(&name).map(|_| ())
    };
    valid.map_err(|e| ImportError::at(&file, None, e.to_string()))?;
    Ok(Translated { copies: vec![(name, text.to_string())], ..Default::default() })
}

/// Loads a unit file the import writes: whether it is enabled, and its warnings as notes
/// against `source`; its errors refuse the import, the first with its line and the count of
/// the others.
pub fn check(
    source: &Path,
    file_name: &str,
    text: &str,
    ctx: &SpecifierContext,
) -> Result<(bool, Vec<Note>), ImportError> {
    let loaded = if file_name.ends_with(".timer") {
        load_timer(file_name, text.as_bytes(), ctx).map(|l| (l.timer.enabled(), l.warnings))
    } else {
        load_unit(file_name, text.as_bytes(), ctx).map(|l| (l.unit.enabled(), l.warnings))
    };
    let src = source.display().to_string();
    match loaded {
        Ok((enabled, warnings)) => {
            Ok((enabled, warnings.into_iter().map(|w| note(&src, file_name, w)).collect()))
        }
        Err(diags) => {
            let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
            let Some(first) = errors.first() else {
                return Err(ImportError::at(&src, None, format!("{file_name} does not load")));
            };
            let mut message = format!("{file_name}: ");
            if let Some(k) = &first.key {
                message.push_str(&format!("{k}: "));
            }
            message.push_str(&first.message);
            if errors.len() > 1 {
                message
                    .push_str(&format!(" (and {} more errors: gitvisor validate {src})", errors.len() - 1));
            }
            Err(ImportError::at(&src, (first.line > 0).then_some(first.line), message))
        }
    }
}

fn note(src: &str, file_name: &str, w: Diagnostic) -> Note {
    Note {
        file: src.to_string(),
        line: (w.line > 0).then_some(w.line),
        key: w.key.unwrap_or_else(|| file_name.to_string()),
        message: w.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SpecifierContext {
        SpecifierContext::current()
    }

    #[test]
    fn units_are_copied_and_checked() {
        let t = translate(Path::new("/u/web.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
        assert_eq!(t.copies, [("web.service".to_string(), "[Service]\nExecStart=/bin/true\n".to_string())]);
        let text =
            "[Service]\nExecStart=/bin/true\nProtectSystem=strict\n[Install]\nWantedBy=default.target\n";
        let (enabled, notes) = check(Path::new("/u/web.service"), "web.service", text, &ctx()).unwrap();
        assert!(enabled);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].line, Some(3));
        assert_eq!(notes[0].key, "ProtectSystem");
        let e = check(
            Path::new("/u/web.service"),
            "web.service",
            "[Service]\nExecStart=/bin/true\nRestartSec=soon\n",
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("/u/web.service:3: web.service: RestartSec: "), "{e}");
        assert!(translate(Path::new("/u/bad name.service"), "").is_err());
    }

    #[test]
    fn timers_are_checked_as_timers() {
        let (enabled, _) = check(
            Path::new("/u/b.timer"),
            "b.timer",
            "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
            &ctx(),
        )
        .unwrap();
        assert!(enabled);
        assert!(check(Path::new("/u/b.timer"), "b.timer", "[Timer]\nPersistent=yes\n", &ctx()).is_err());
    }
}
