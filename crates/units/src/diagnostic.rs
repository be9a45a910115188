//! Problems found in a unit file, as users read them: `file:line: key: message`.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file. `line` is 1-based; 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub key: Option<String>,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &str, line: usize, key: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, file, line, key, message)
    }

    pub fn warning(file: &str, line: usize, key: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, file, line, key, message)
    }

    fn new(
        severity: Severity,
        file: &str,
        line: usize,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_string(),
            line,
            key: key.map(str::to_string),
            severity,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 is the whole file: `web.service: ...`, not a line that does not exist.
        match self.line {
            0 => write!(f, "{}: ", self.file)?,
            n => write!(f, "{}:{n}: ", self.file)?,
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_key() {
        let e = Diagnostic::error("web.service", 4, Some("RestartSec"), "invalid time span");
        assert_eq!(e.to_string(), "web.service:4: RestartSec: invalid time span");
        let w = Diagnostic::warning("web.service", 0, None, "whole file");
        assert_eq!(w.to_string(), "web.service: warning: whole file");
    }
}
