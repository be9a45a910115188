//! Procfiles (foreman, honcho, Overmind): `name: command` lines, `#` comments, and the `.env`
//! beside the file.
//!
//! Each process becomes a unit running its command through `/bin/sh -c` (as foreman does)
//! unless the command has nothing a shell would interpret, in its directory, enabled, with
//! `Restart=no` (foreman stops everything when one process ends; gitvisor leaves the rest
//! running). The `.env` is referenced by `EnvironmentFile=`, never copied, so its secrets stay
//! out of git and an edit to it applies at the next start, as with foreman. Foreman gives
//! each process a `PORT` (5000, 5100, …, in file order); the units get the same with
//! `Environment=PORT=`, which a `PORT` in the `.env` overrides (files win over
//! `Environment=`).

use std::path::{Path, PathBuf};

use gitvisor_units::env_file::{self, Dialect};

use crate::draft::{shell_command, UnitDraft};
use crate::{ImportError, Translated};

/// The `.env` beside a Procfile, read with the units crate's `.env` parser: its path and the
/// lines it skipped; none when there is no `.env`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DotEnv {
    pub path: Option<PathBuf>,
    pub warnings: Vec<String>,
}

pub fn read_dotenv(procfile: &Path) -> Result<DotEnv, ImportError> {
    let path = procfile.with_file_name(".env");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DotEnv::default()),
        Err(e) => return Err(ImportError::at(path.display().to_string(), None, e.to_string())),
    };
    let parsed = env_file::parse(Dialect::Dotenv, &bytes, &|_| None)
        .map_err(|e| ImportError::at(path.display().to_string(), None, e))?;
    Ok(DotEnv { path: Some(path), warnings: parsed.warnings })
}

/// `name: command`, as foreman reads a line; none for anything else.
pub fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (name, command) = line.split_once(':')?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let command = command.trim();
    (name_ok && !command.is_empty()).then_some((name, command))
}

const FOREMAN_BASE_PORT: u64 = 5000;

pub fn translate(path: &Path, text: &str, dotenv: &DotEnv) -> Result<Translated, ImportError> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut t = Translated::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = parse_line(line) else {
            return Err(ImportError::at(
                &file,
                Some(i + 1),
                format!("expected `name: command`, found {line:?}"),
            ));
        };
        if t.drafts.iter().any(|d| d.process == name) {
            return Err(ImportError::at(&file, Some(i + 1), format!("process {name} is defined twice")));
        }
        let mut d = UnitDraft::new(name, Some(i + 1), path);
        d.exec_start = shell_command(command, "/bin/sh");
        d.working_directory = Some(dir.to_path_buf());
        d.environment_files.extend(dotenv.path.clone());
        let port = FOREMAN_BASE_PORT + 100 * t.drafts.len() as u64;
        d.environment.push(("PORT".to_string(), port.to_string()));
        d.restart = Some("no");
        d.enabled = true;
        t.drafts.push(d);
    }
    if t.drafts.is_empty() {
        return Err(ImportError::at(&file, None, "no process: expected `name: command` lines"));
    }
    if let Some(env) = &dotenv.path {
        for w in &dotenv.warnings {
            let (line, message) = split_line_note(w);
            t.note(env, line, "line", message);
        }
    }
    Ok(t)
}

/// `line 7: unterminated quote: skipped` as its line and the rest.
fn split_line_note(w: &str) -> (Option<usize>, String) {
    let parsed = w.strip_prefix("line ").and_then(|rest| {
        let (n, msg) = rest.split_once(": ")?;
        Some((n.parse().ok()?, msg.to_string()))
    });
    match parsed {
        Some((n, msg)) => (Some(n), msg),
        None => (None, w.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use gitvisor_units::{load_unit, SpecifierContext};

    use super::*;

    #[test]
    fn each_line_is_a_unit_with_its_port_and_the_env_file() {
        let env =
            DotEnv { path: Some("/srv/app/.env".into()), warnings: vec!["line 3: no '=': skipped".into()] };
        let text = "# the app\nweb: bundle exec puma -p $PORT\n\nworker: node worker.js --queue=default\n";
        let t = translate(Path::new("/srv/app/Procfile"), text, &env).unwrap();
        assert_eq!(t.drafts.len(), 2);
        let web = &t.drafts[0];
        assert_eq!(web.exec_start, ["/bin/sh", "-c", "bundle exec puma -p $PORT"]);
        assert_eq!(web.line, Some(2));
        assert_eq!(web.environment, [("PORT".to_string(), "5000".to_string())]);
        assert_eq!(t.drafts[1].exec_start, ["node", "worker.js", "--queue=default"]);
        assert_eq!(t.drafts[1].environment[0].1, "5100");
        let unit = web.render(&|p| p.to_string());
        assert!(unit.contains("ExecStart=/bin/sh -c \"bundle exec puma -p $$PORT\"\n"), "{unit}");
        assert!(unit.contains("WorkingDirectory=/srv/app\nEnvironmentFile=/srv/app/.env\n"), "{unit}");
        load_unit("web.service", unit.as_bytes(), &SpecifierContext::current()).unwrap();
        assert_eq!(t.notes.len(), 1);
        assert_eq!(t.notes[0].to_string(), "/srv/app/.env:3: line: no '=': skipped");
    }

    #[test]
    fn a_line_that_is_not_name_command_is_an_error_with_its_line() {
        let e = translate(Path::new("/p/Procfile"), "web: a\nworker b\n", &DotEnv::default()).unwrap_err();
        assert_eq!(e.to_string(), "/p/Procfile:2: expected `name: command`, found \"worker b\"");
        let e = translate(Path::new("/p/Procfile"), "web: a\nweb: b\n", &DotEnv::default()).unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = translate(Path::new("/p/Procfile"), "# nothing\n", &DotEnv::default()).unwrap_err();
        assert!(e.message.starts_with("no process"), "{e}");
    }
}
