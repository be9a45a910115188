//! systemd's `%` specifiers in unit values.

use std::path::PathBuf;

use crate::name::{self, UnitName};
use crate::values::ValueError;

/// What the specifiers expand to besides the unit name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecifierContext {
    pub home: PathBuf,
    pub user: String,
    pub uid: u32,
    pub runtime_dir: PathBuf,
}

impl SpecifierContext {
    /// The context of the current process: `$HOME`, `$USER`, the real uid and
    /// `$XDG_RUNTIME_DIR` (or `/run/user/UID`).
    pub fn current() -> Self {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let env = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
        SpecifierContext {
            home: env("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from),
            user: env("USER").and_then(|u| u.into_string().ok()).unwrap_or_else(|| uid.to_string()),
            uid,
            runtime_dir: env("XDG_RUNTIME_DIR")
                .map_or_else(|| PathBuf::from(format!("/run/user/{uid}")), PathBuf::from),
        }
    }
}

/// systemd specifiers gitvisor does not expand; named in the error so users know why.
const UNSUPPORTED: &str = "aAbBCdEfgGHjJlLmMoPqsSTvVwWyY";

/// Expands `%n %N %p %i %I %h %u %U %t %%` in `value` for the unit `name`.
pub fn expand(value: &str, name: &UnitName, ctx: &SpecifierContext) -> Result<String, ValueError> {
    expand_for(value, name, name::SUFFIX, ctx)
}

/// [`expand`] in a unit of another type: `%n` ends in `suffix` (`.timer`).
pub(crate) fn expand_for(
    value: &str,
    name: &UnitName,
    suffix: &str,
    ctx: &SpecifierContext,
) -> Result<String, ValueError> {
    if !value.contains('%') {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => {
                out.push_str(name.as_str());
                out.push_str(suffix);
            }
            Some('N') => out.push_str(name.as_str()),
            Some('p') => out.push_str(name.prefix()),
            Some('i') => out.push_str(name.instance().unwrap_or("")),
            Some('I') => out.push_str(&name::unescape(name.instance().unwrap_or(""))),
            Some('h') => out.push_str(&ctx.home.to_string_lossy()),
            Some('u') => out.push_str(&ctx.user),
            Some('U') => out.push_str(&ctx.uid.to_string()),
            Some('t') => out.push_str(&ctx.runtime_dir.to_string_lossy()),
            Some(other) if UNSUPPORTED.contains(other) => {
                return Err(ValueError::new(format!(
                    "specifier %{other} is not supported by gitvisor (use %%{other} for a literal)"
                )))
            }
            Some(other) => {
                return Err(ValueError::new(format!("unknown specifier %{other} (use %% for a literal %)")))
            }
            None => return Err(ValueError::new("lone % at the end (use %% for a literal %)")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SpecifierContext {
        SpecifierContext {
            home: PathBuf::from("/home/ann"),
            user: "ann".into(),
            uid: 1000,
            runtime_dir: PathBuf::from("/run/user/1000"),
        }
    }

    fn expand_for(name: &str, value: &str) -> Result<String, ValueError> {
        expand(value, &UnitName::parse(name).unwrap(), &ctx())
    }

    #[test]
    fn every_specifier() {
        assert_eq!(
            expand_for("web@srv-www", "%n|%N|%p|%i|%I|%h|%u|%U|%t|100%%").unwrap(),
            "web@srv-www.service|web@srv-www|web|srv-www|srv/www|/home/ann|ann|1000|/run/user/1000|100%"
        );
        assert_eq!(expand_for("db", "%n %N %p [%i] [%I]").unwrap(), "db.service db db [] []");
        assert_eq!(expand_for("db", "no specifiers").unwrap(), "no specifiers");
    }

    #[test]
    fn unknown_and_unsupported_specifiers_are_errors() {
        assert!(expand_for("db", "%z").unwrap_err().message.contains("unknown specifier %z"));
        assert!(expand_for("db", "%H").unwrap_err().message.contains("not supported"));
        assert!(expand_for("db", "50%").is_err());
    }
}
