//! `Condition…=` and `Assert…=` (systemd.unit(5)), checked before a start: every regular check
//! must hold, and where there are triggering ones (`|`), at least one of them. An unmet
//! condition skips the start (the service stays down, and status says which); an unmet
//! assertion fails it. Conditions are checked first.

use std::path::Path;

use gitvisor_units::{Condition, ConditionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Start,
    /// A condition was not met: why.
    Skip(String),
    /// An assertion was not met: why.
    Fail(String),
}

/// Checks `conditions`; `env` reads the engine's environment (`ConditionEnvironment=`).
pub fn check(conditions: &[Condition], env: &dyn Fn(&str) -> Option<String>) -> Verdict {
    if let Some(why) = unmet(conditions.iter().filter(|c| !c.assert), env) {
        return Verdict::Skip(why);
    }
    if let Some(why) = unmet(conditions.iter().filter(|c| c.assert), env) {
        return Verdict::Fail(why);
    }
    Verdict::Start
}

fn written(c: &Condition) -> String {
    format!("{}={}{}{}", c.key, if c.trigger { "|" } else { "" }, if c.negate { "!" } else { "" }, c.value)
}

/// Why a group of checks does not hold, if it does not.
fn unmet<'a>(
    checks: impl Iterator<Item = &'a Condition>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut triggers = Vec::new();
    let mut any_trigger_held = false;
    for c in checks {
        let held = holds(c, env) != c.negate;
        if c.trigger {
            any_trigger_held |= held;
            triggers.push(written(c));
        } else if !held {
            return Some(format!("{} was not met", written(c)));
        }
    }
    (!triggers.is_empty() && !any_trigger_held).then(|| format!("none of {} was met", triggers.join(", ")))
}

fn holds(c: &Condition, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let path = Path::new(&c.value);
    match c.kind {
        ConditionKind::PathExists => path.exists(),
        ConditionKind::PathIsDirectory => path.is_dir(),
        ConditionKind::FileNotEmpty => std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0),
        ConditionKind::DirectoryNotEmpty => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()),
        ConditionKind::Environment => match c.value.split_once('=') {
            Some((name, value)) => env(name).as_deref() == Some(value),
            None => env(&c.value).is_some(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(lines: &str) -> Vec<Condition> {
        crate::units::test_unit(&format!("[Unit]\n{lines}\n[Service]\nExecStart=/bin/true\n")).conditions
    }

    fn env(name: &str) -> Option<String> {
        (name == "MODE").then(|| "prod".to_string())
    }

    #[test]
    fn regular_checks_all_hold_and_one_trigger_is_enough() {
        let dir = tempfile::tempdir().unwrap();
        let (full, empty) = (dir.path().join("full"), dir.path().join("empty"));
        std::fs::write(&full, "x").unwrap();
        std::fs::write(&empty, "").unwrap();
        let d = dir.path().display();
        let check = |lines: &str| super::check(&conditions(lines), &env);
        assert_eq!(
            check(&format!("ConditionPathExists={d}/full\nConditionFileNotEmpty={d}/full")),
            Verdict::Start
        );
        assert_eq!(
            check(&format!("ConditionFileNotEmpty={d}/empty")),
            Verdict::Skip(format!("ConditionFileNotEmpty={d}/empty was not met"))
        );
        assert_eq!(
            check(&format!("ConditionPathExists=!{d}/nope\nConditionDirectoryNotEmpty={d}")),
            Verdict::Start
        );
        assert_eq!(
            check(&format!("ConditionPathIsDirectory=|{d}/full\nConditionPathExists=|{d}/empty")),
            Verdict::Start
        );
        assert_eq!(
            check(&format!("ConditionPathIsDirectory=|{d}/full\nConditionPathExists=|!{d}/empty")),
            Verdict::Skip(format!(
                "none of ConditionPathIsDirectory=|{d}/full, ConditionPathExists=|!{d}/empty was met"
            ))
        );
        // An empty assignment resets them all.
        assert_eq!(check(&format!("ConditionPathExists={d}/nope\nConditionPathExists=")), Verdict::Start);
    }

    #[test]
    fn environment_and_assertions() {
        assert_eq!(check_env("ConditionEnvironment=MODE"), Verdict::Start);
        assert_eq!(check_env("ConditionEnvironment=MODE=prod\nConditionEnvironment=!DEBUG"), Verdict::Start);
        assert_eq!(
            check_env("ConditionEnvironment=MODE=dev"),
            Verdict::Skip("ConditionEnvironment=MODE=dev was not met".into())
        );
        // Conditions first: an unmet one skips before any assertion fails.
        assert_eq!(
            check_env("AssertPathExists=/nonexistent/x\nConditionEnvironment=MODE"),
            Verdict::Fail("AssertPathExists=/nonexistent/x was not met".into())
        );
        assert_eq!(
            check_env("AssertPathExists=/nonexistent/x\nConditionEnvironment=NOPE"),
            Verdict::Skip("ConditionEnvironment=NOPE was not met".into())
        );
    }

    fn check_env(lines: &str) -> Verdict {
        check(&conditions(lines), &env)
    }
}
