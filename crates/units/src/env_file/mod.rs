//! Environment files (`EnvironmentFile=`) in the two dialects people write them in:
//!
//! - [`Dialect::Systemd`] ([`systemd`]): what systemd.exec(5) reads. No `$` is expanded and
//!   `export` is not a keyword, so a file written for systemd means here what it means there.
//! - [`Dialect::Dotenv`] ([`dotenv`]): the `.env` files of dotenv, docker compose, foreman and
//!   most frameworks: `export` prefixes, quotes, `#` comments after a value, `${VAR}`/`$VAR`.
//!
//! Which one a file is read in follows from its name ([`Dialect::of`]): `.env`, `.env.*` and
//! `*.env` are `.env` files, every other name is systemd's. Both parsers are pure functions of
//! the text (and, for `.env`, of the variables already defined), so the engine, the crash
//! reporter's redaction and an importer of Procfiles read files the same way.
//!
//! Neither fails on a bad line: each skips it with a warning naming its line (`line 3: …:
//! skipped`), which the engine writes to the service's log, as systemd logs its own.

pub mod dotenv;
pub mod systemd;

use std::ops::RangeInclusive;
use std::path::Path;

/// How an environment file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Systemd,
    Dotenv,
}

impl Dialect {
    /// `.env`, `.env.local`, `.env.production`, `app.env`: the `.env` dialect; any other name,
    /// systemd's.
    pub fn of(path: &Path) -> Dialect {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if name == ".env" || name.starts_with(".env.") || (name.ends_with(".env") && name.len() > 4) {
            Dialect::Dotenv
        } else {
            Dialect::Systemd
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Systemd => "systemd",
            Dialect::Dotenv => ".env",
        }
    }
}

/// One variable a file defines: its name, its value, and the lines it takes (a quoted value
/// may span several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub value: String,
    pub lines: RangeInclusive<usize>,
}

/// What a file defines, in order, and a warning for each line it skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub vars: Vec<Var>,
    pub warnings: Vec<String>,
}

impl Parsed {
    /// The variables as `(name, value)` pairs, in file order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.vars.iter().map(|v| (v.name.clone(), v.value.clone())).collect()
    }
}

/// Reads a file's bytes in `dialect`. `lookup` gives the variables defined before this file
/// (earlier files, `Environment=`, the base environment) for the `.env` dialect's `${VAR}`;
/// systemd's ignores it. An error only for a file that is not UTF-8 text.
pub fn parse(
    dialect: Dialect,
    bytes: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(match dialect {
        Dialect::Systemd => systemd::parse(text),
        Dialect::Dotenv => dotenv::parse(text, lookup),
    })
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

/// A name a shell would take: a letter or `_`, then letters, digits and `_`.
pub fn valid_name(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialect_follows_the_file_name() {
        for dotenv in [".env", ".env.local", ".env.production", "/srv/app/.env", "app.env", "x/db.env"] {
            assert_eq!(Dialect::of(Path::new(dotenv)), Dialect::Dotenv, "{dotenv}");
        }
        for systemd in ["vars", "/etc/default/app", "app.conf", ".envrc", "env", ".env-old", "environment"] {
            assert_eq!(Dialect::of(Path::new(systemd)), Dialect::Systemd, "{systemd}");
        }
    }

    #[test]
    fn bad_bytes_are_refused_and_a_bom_is_dropped() {
        let none = |_: &str| None;
        assert_eq!(parse(Dialect::Dotenv, b"\xff=1", &none).unwrap_err(), "not UTF-8 text");
        assert_eq!(parse(Dialect::Systemd, b"\xff=1", &none).unwrap_err(), "not UTF-8 text");
        let p = parse(Dialect::Dotenv, "\u{feff}A=1\n".as_bytes(), &none).unwrap();
        assert_eq!(p.pairs(), [("A".to_string(), "1".to_string())]);
    }
}
