//! Unit names: `NAME.service` files, templates (`web@.service`) and instances
//! (`web@8080.service`).
//!
//! A name is the only part of a unit that becomes a path, so it is checked strictly: 1 to 128
//! characters of `[A-Za-z0-9_.@-]`, at most one `@`, never `..`.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The suffix every service file carries.
pub const SUFFIX: &str = ".service";

/// The suffix of timer files; a timer's name follows the same rules as a service's.
pub const TIMER_SUFFIX: &str = ".timer";

const MAX_LEN: usize = 128;

/// A valid unit name, stored without the `.service` suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

/// Why a name is not a unit name. The message quotes the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid unit name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: String,
}

impl UnitName {
    /// Parses a file name, which must end in `.service`.
    pub fn from_file_name(file_name: &str) -> Result<Self, NameError> {
        match file_name.strip_suffix(SUFFIX) {
            Some(stem) => Self::check(stem).map_err(|reason| fail(file_name, reason)),
            None => Err(fail(file_name, "a unit file name must end in .service")),
        }
    }

    /// Parses a timer's file name (`backup.timer`) into its stem (`backup`), with the rules of
    /// service names. [`from_file_name`](Self::from_file_name) still takes services only.
    pub fn from_timer_file_name(file_name: &str) -> Result<Self, NameError> {
        match file_name.strip_suffix(TIMER_SUFFIX) {
            Some(stem) => Self::check(stem).map_err(|reason| fail(file_name, reason)),
            None => Err(fail(file_name, "a timer file name must end in .timer")),
        }
    }

    /// Parses a name given by a user: `web`, `web@8080`, with or without `.service`.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let stem = name.strip_suffix(SUFFIX).unwrap_or(name);
        Self::check(stem).map_err(|reason| fail(name, reason))
    }

    fn check(stem: &str) -> Result<Self, &'static str> {
        if stem.is_empty() {
            return Err("the name is empty");
        }
        if stem.len() > MAX_LEN {
            return Err("the name is longer than 128 characters");
        }
        if let Some(bad) =
            stem.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-')))
        {
            return Err(if bad == '/' {
                "a unit name cannot contain '/'"
            } else {
                "only letters, digits and _ . @ - are allowed"
            });
        }
        if stem.contains("..") {
            return Err("a unit name cannot contain '..'");
        }
        if stem.matches('@').count() > 1 {
            return Err("a unit name has at most one '@'");
        }
        if stem.starts_with('@') {
            return Err("nothing before '@'");
        }
        Ok(UnitName(stem.to_string()))
    }

    /// The name without `.service`, e.g. `web@8080`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name, e.g. `web@8080.service`.
    pub fn file_name(&self) -> String {
        format!("{}{SUFFIX}", self.0)
    }

    /// The part before `@`, or the whole name (systemd's `%p`).
    pub fn prefix(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(prefix, _)| prefix)
    }

    /// `web@` (from `web@.service`): not runnable by itself.
    pub fn is_template(&self) -> bool {
        self.0.ends_with('@')
    }

    /// `web@8080`: an instance of a template.
    pub fn is_instance(&self) -> bool {
        self.instance().is_some()
    }

    /// The template an instance comes from (`web@` for `web@8080`); None for other names.
    pub fn template(&self) -> Option<UnitName> {
        self.instance().map(|_| UnitName(format!("{}@", self.prefix())))
    }

    /// The instance (`8080` for `web@8080`), in its escaped form; None unless an instance.
    pub fn instance(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, instance)| instance).filter(|instance| !instance.is_empty())
    }

    /// The instance `instance` of this template.
    pub fn instantiate(&self, instance: &str) -> Result<UnitName, NameError> {
        let full = format!("{}{instance}", self.0);
        if !self.is_template() {
            return Err(fail(&full, "only a template (NAME@) has instances"));
        }
        if instance.is_empty() {
            return Err(fail(&full, "the instance is empty"));
        }
        Self::check(&full).map_err(|reason| fail(&full, reason))
    }
}

fn fail(name: &str, reason: &str) -> NameError {
    NameError { name: name.to_string(), reason: reason.to_string() }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UnitName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for UnitName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for UnitName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// systemd's unescaping of a name part (`%I`): `-` becomes `/` and `\xNN` becomes that byte.
pub fn unescape(escaped: &str) -> String {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'-' => bytes.push(b'/'),
            b'\\' if tail.len() >= 3 && tail[0] == b'x' => {
                let hex = std::str::from_utf8(&tail[1..3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        bytes.push(byte);
                        rest = &tail[3..];
                    }
                    None => bytes.push(b),
                }
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_template_and_instance_file_names() {
        let web = UnitName::from_file_name("web.service").unwrap();
        assert_eq!(web.as_str(), "web");
        assert_eq!(web.file_name(), "web.service");
        assert!(!web.is_template() && !web.is_instance());
        assert_eq!(web.template(), None);
        assert_eq!(web.prefix(), "web");

        let template = UnitName::from_file_name("web@.service").unwrap();
        assert!(template.is_template() && !template.is_instance());
        assert_eq!(template.instance(), None);
        assert_eq!(template.prefix(), "web");

        let instance = UnitName::from_file_name("web@8080.service").unwrap();
        assert_eq!(instance.as_str(), "web@8080");
        assert_eq!(instance.instance(), Some("8080"));
        assert_eq!(instance.template(), Some(template.clone()));
        assert_eq!(template.instantiate("8080"), Ok(instance));
    }

    #[test]
    fn user_names_with_or_without_suffix() {
        assert_eq!(UnitName::parse("web").unwrap().as_str(), "web");
        assert_eq!(UnitName::parse("web.service").unwrap().as_str(), "web");
        assert_eq!(UnitName::parse("web@8080").unwrap().as_str(), "web@8080");
        assert_eq!("my.app_v2-x".parse::<UnitName>().unwrap().as_str(), "my.app_v2-x");
    }

    #[test]
    fn invalid_names_are_refused_with_the_name() {
        for bad in
            ["", "../etc/passwd", "a/b", "..", "a..b", "we b", "web@a@b", "@x", "été", "a\\x2d", ".service"]
        {
            let err = UnitName::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(UnitName::parse(&"a".repeat(129)).is_err());
        assert!(UnitName::parse(&"a".repeat(128)).is_ok());
        assert!(UnitName::from_file_name("web").is_err());
        assert!(UnitName::from_file_name("web.timer").is_err());
        let plain = UnitName::parse("web").unwrap();
        assert!(plain.instantiate("x").is_err());
        let template = UnitName::parse("web@").unwrap();
        assert!(template.instantiate("").is_err());
        assert!(template.instantiate("a/b").is_err());
        assert!(template.instantiate("..").is_err());
    }

    #[test]
    fn timer_file_names() {
        assert_eq!(UnitName::from_timer_file_name("backup.timer").unwrap().as_str(), "backup");
        assert_eq!(UnitName::from_timer_file_name("backup@home.timer").unwrap().instance(), Some("home"));
        assert!(UnitName::from_timer_file_name("backup@.timer").unwrap().is_template());
        for bad in ["backup.service", "backup", ".timer", "a/b.timer", "a..b.timer", "we b.timer"] {
            let err = UnitName::from_timer_file_name(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(UnitName::from_file_name("backup.timer").is_err(), "services stay .service");
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape("home-user-src"), "home/user/src");
        assert_eq!(unescape("a\\x2db"), "a-b");
        assert_eq!(unescape("8080"), "8080");
        assert_eq!(unescape("bad\\xZZ"), "bad\\xZZ");
    }
}
