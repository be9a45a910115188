//! Importing what other tools run: a Procfile (with the `.env` beside it), a
//! `process-compose.yaml`, a PM2 ecosystem file, or systemd user units, turned into gitvisor
//! unit files.
//!
//! # Theory of operation
//!
//! [`read`] takes source files and returns a [`Plan`]: the unit files to write and a [`Note`]
//! for every key that did not translate, naming its file and line. It writes nothing; the
//! engine checks the plan against the services repository (name clashes) and commits it in one
//! commit, so an import is all or nothing.
//!
//! Each source kind has a translator of its own (`procfile`, `compose`, `pm2`, `systemd`),
//! chosen by the file's name, else by its content (`detect`). Structured sources are read
//! into one tree whose nodes know their line (`tree`), so a translator walks maps and lists
//! and reports what it leaves behind the same way for YAML and JSON. Translators produce
//! [`draft::UnitDraft`]s, which render the unit text; a process's name becomes its unit's
//! name here, after the whole import is known (a `--prefix`, characters a unit name cannot
//! hold, two sources naming the same process).
//!
//! Reading touches the file system (the sources, the `.env` files beside them) and may run
//! `node` to evaluate a `.js` ecosystem file; everything else is a pure function of the text.

pub mod compose;
mod detect;
pub mod draft;
pub mod pm2;
pub mod procfile;
pub mod systemd;
pub mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use detect::{detect, Kind};
use draft::UnitDraft;
use gitvisor_units::SpecifierContext;

/// A source that cannot be imported: malformed, unreadable, or naming what cannot be. One
/// error, with its file and (when there is one) line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ImportError {
    pub fn at(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> ImportError {
        ImportError { file: file.into(), line, message: message.into() }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Something of a source that was not translated as written: a key gitvisor has no
/// equivalent for (ignored), or one translated with a difference worth knowing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub line: Option<usize>,
    /// Where in the source: `processes.web.shutdown.signal`, `apps[0].instances`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}: {}", self.file, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// What a translator got from one source.
#[derive(Debug, Default)]
pub struct Translated {
    pub drafts: Vec<UnitDraft>,
    /// Unit files taken as they are (systemd units): file name and text.
    pub copies: Vec<(String, String)>,
    pub notes: Vec<Note>,
}

impl Translated {
    pub(crate) fn note(
        &mut self,
        file: &Path,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.notes.push(Note {
            file: file.display().to_string(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }
}

/// How to read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Put before every unit name (`app-` makes `web` `app-web.service`).
    pub prefix: Option<String>,
}

/// A unit file the import writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    /// `web.service`, `backup.timer`.
    pub file: String,
    pub process: String,
    pub source: PathBuf,
    pub text: String,
    pub enabled: bool,
}

/// What an import writes, and what it could not translate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub units: Vec<PlannedUnit>,
    pub notes: Vec<Note>,
    /// Each source with the processes taken from it, in the order given.
    pub sources: Vec<(PathBuf, Vec<String>)>,
}

impl Plan {
    /// The commit message: `import: web, worker from /srv/app/Procfile`, one clause per source.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .sources
            .iter()
            .map(|(path, names)| format!("{} from {}", names.join(", "), path.display()))
            .collect();
        format!("import: {}", parts.join("; "))
    }
}

/// Reads and translates each source. Paths should be absolute (relative ones are taken from
/// the current directory); the units' working directories are the sources' directories unless
/// a source says otherwise.
pub fn read(paths: &[PathBuf], options: &Options, ctx: &SpecifierContext) -> Result<Plan, ImportError> {
    if paths.is_empty() {
        return Err(ImportError::at("import", None, "name at least one file to import"));
    }
    let mut plan = Plan::default();
    let mut taken: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in &expand(paths)? {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|e| ImportError::at(&file, None, io_message(&e)))?;
        let text = String::from_utf8(bytes).map_err(|_| ImportError::at(&file, None, "not UTF-8 text"))?;
        let t = match detect(&path, &text) {
            Some(Kind::Procfile) => procfile::translate(&path, &text, &procfile::read_dotenv(&path)?)?,
            Some(Kind::Compose) => compose::translate(&path, &tree::from_yaml(&file, &text)?)?,
            Some(Kind::Pm2) => pm2::translate(&path, &pm2::load(&path, &text)?)?,
            Some(Kind::Systemd) => systemd::translate(&path, &text)?,
            None => {
                return Err(ImportError::at(
                    &file,
                    None,
                    "cannot tell what this file is: expected a Procfile, a process-compose.yaml, a PM2 ecosystem file (.json, .js, .cjs) or a systemd unit (.service, .timer)",
                ))
            }
        };
        add(&mut plan, &mut taken, &path, t, options, ctx)?;
    }
    Ok(plan)
}

/// The sources `paths` name: a file as it is, a directory as the files in it that are
/// sources by their names (Procfile, process-compose*.yaml, ecosystem*.json/.js/.cjs,
/// *.service, *.timer), in name order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let dir = path.display().to_string();
        let entries = std::fs::read_dir(path).map_err(|e| ImportError::at(&dir, None, io_message(&e)))?;
        let mut found: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && detect(p, "").is_some()).collect();
        if found.is_empty() {
            return Err(ImportError::at(
                &dir,
                None,
                "no Procfile, process-compose.yaml, PM2 ecosystem file or systemd unit in this directory",
            ));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn add(
    plan: &mut Plan,
    taken: &mut BTreeMap<String, PathBuf>,
    path: &Path,
    t: Translated,
    options: &Options,
    ctx: &SpecifierContext,
) -> Result<(), ImportError> {
    let file = path.display().to_string();
    let prefix = options.prefix.as_deref().unwrap_or("");
    let mut names = BTreeMap::new();
    for d in &t.drafts {
        let unit = unit_name(prefix, &d.process).ok_or_else(|| {
            ImportError::at(&file, d.line, format!("{:?} cannot be a unit name", d.process))
        })?;
        if unit != format!("{prefix}{}", d.process) {
            plan.notes.push(Note {
                file: file.clone(),
                line: d.line,
                key: d.process.clone(),
                message: format!("renamed {unit}: a unit name holds only letters, digits, '_', '.' and '-'"),
            });
        }
        names.insert(d.process.clone(), unit);
    }
    let mut taken_here = Vec::new();
    let mut claim = |unit_file: String, line: Option<usize>| -> Result<(), ImportError> {
        if let Some(other) = taken.get(&unit_file) {
            let whence = if other == path {
                "twice in this file".to_string()
            } else {
                format!("by {}", other.display())
            };
            return Err(ImportError::at(&file, line, format!("{unit_file} is also imported {whence}")));
        }
        taken.insert(unit_file, path.to_path_buf());
        Ok(())
    };
    for d in &t.drafts {
        let unit = &names[&d.process];
        claim(format!("{unit}.service"), d.line)?;
        let text = d.render(&|p: &str| names.get(p).cloned().unwrap_or_else(|| p.to_string()));
        let file_name = format!("{unit}.service");
        let (enabled, warnings) = systemd::check(path, &file_name, &text, ctx)?;
        plan.notes.extend(warnings);
        plan.units.push(PlannedUnit {
            file: file_name,
            process: d.process.clone(),
            source: path.to_path_buf(),
            text,
            enabled,
        });
        taken_here.push(d.process.clone());
    }
    for (name, text) in t.copies {
        let target = format!("{prefix}{name}");
        claim(target.clone(), None)?;
        let (enabled, warnings) = systemd::check(path, &target, &text, ctx)?;
        plan.notes.extend(warnings);
        taken_here.push(name.clone());
        plan.units.push(PlannedUnit {
            file: target,
            process: name,
            source: path.to_path_buf(),
            text,
            enabled,
        });
    }
    plan.notes.extend(t.notes);
    plan.sources.push((path.to_path_buf(), taken_here));
    Ok(())
}

/// `prefix` + `process`, with what a unit name cannot hold (`@` included: it would make a
/// template) replaced by `-`; none when nothing is left.
fn unit_name(prefix: &str, process: &str) -> Option<String> {
    let clean: String = process
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' })
        .collect();
    let name = format!("{prefix}{clean}");
    let ok = !clean.trim_matches('-').is_empty() && name.len() <= 128 && !name.starts_with('.');
    ok.then_some(name)
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    }
}

/// The note for a key no translator knows: `KEY: not supported, ignored`.
pub(crate) const IGNORED: &str = "not supported, ignored";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Each translated unit loads through the units crate without a warning.
    pub(crate) fn every_draft_loads_cleanly(drafts: &[UnitDraft]) {
        use gitvisor_units::{load_unit, SpecifierContext};
        for d in drafts {
            let text = d.render(&|p| p.to_string());
            let l =
                load_unit(&format!("{}.service", d.process), text.as_bytes(), &SpecifierContext::current())
                    .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        }
    }

    #[test]
    fn names_are_cleaned_and_prefixed() {
        assert_eq!(unit_name("", "web").as_deref(), Some("web"));
        assert_eq!(unit_name("app-", "my worker").as_deref(), Some("app-my-worker"));
        assert_eq!(unit_name("", "a@b").as_deref(), Some("a-b"));
        assert_eq!(unit_name("", "@@"), None);
    }

    #[test]
    fn a_directory_stands_for_the_sources_in_it() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "Procfile",
            "process-compose.yaml",
            "ecosystem.config.js",
            "web.service",
            "README.md",
            "notes.yaml",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let names: Vec<String> = expand(&[d.path().to_path_buf()])
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Procfile", "ecosystem.config.js", "process-compose.yaml", "web.service"]);
        let empty = tempfile::tempdir().unwrap();
        let e = expand(&[empty.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("no Procfile, process-compose.yaml"), "{e}");
    }

    #[test]
    fn the_summary_names_each_source() {
        let plan = Plan {
            sources: vec![("/srv/Procfile".into(), vec!["web".into(), "worker".into()])],
            ..Default::default()
        };
        assert_eq!(plan.summary(), "import: web, worker from /srv/Procfile");
    }
}
