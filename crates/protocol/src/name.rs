//! A service's name as clients give it and the engine keys it: `web`, `web@8080`. Whether a
//! user typed `web` or `web.service`, it is the same service; this type is the one place that
//! says so. It does not validate: a name that names no service is the engine's "no service
//! named …" (the strict check of what may become a path lives in `gitvisor-units`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

const SUFFIX: &str = ".service";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

impl ServiceName {
    /// The service `name` names, with or without its `.service` suffix.
    pub fn new(name: &str) -> ServiceName {
        ServiceName(name.strip_suffix(SUFFIX).unwrap_or(name).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Names from a list of strings (command-line arguments, a window's request).
    pub fn list<S: AsRef<str>>(names: &[S]) -> Vec<ServiceName> {
        names.iter().map(|n| ServiceName::new(n.as_ref())).collect()
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ServiceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ServiceName {
    fn from(s: &str) -> ServiceName {
        ServiceName::new(s)
    }
}

impl From<String> for ServiceName {
    fn from(s: String) -> ServiceName {
        ServiceName::new(&s)
    }
}

impl PartialEq<str> for ServiceName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ServiceName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| ServiceName::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suffix_is_optional_and_dropped() {
        assert_eq!(ServiceName::new("web.service"), ServiceName::new("web"));
        assert_eq!(ServiceName::new("web@8080.service").as_str(), "web@8080");
        let parsed: ServiceName = serde_json::from_str("\"db.service\"").unwrap();
        assert_eq!(parsed, "db");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"db\"");
    }

    #[test]
    fn only_the_suffix_is_dropped() {
        assert_eq!(ServiceName::new("a.service.service").as_str(), "a.service");
        assert_eq!(ServiceName::new(".service").as_str(), "");
        assert_eq!(ServiceName::new("web.socket").as_str(), "web.socket");
    }
}
