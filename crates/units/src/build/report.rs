//! What the service and timer builders share: problems reported against their file, at an
//! entry's line and key, and the warnings for what they do not know.

use std::collections::BTreeSet;

use crate::diagnostic::Diagnostic;
use crate::syntax::Entry;
use crate::systemd_keys;
use crate::values::ValueError;

/// A builder's diagnostics: the file, what was found so far, the sections warned about once.
pub(crate) struct Report<'a> {
    pub file: &'a str,
    pub diagnostics: Vec<Diagnostic>,
    warned_sections: BTreeSet<String>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str) -> Self {
        Report { file, diagnostics: Vec::new(), warned_sections: BTreeSet::new() }
    }
}

/// Reporting for a builder holding a [`Report`].
pub(crate) trait Reports<'a> {
    fn report(&mut self) -> &mut Report<'a>;

    fn error(&mut self, e: &Entry, message: impl Into<String>) {
        let r = self.report();
        let d = Diagnostic::error(r.file, e.line, Some(&e.key), message);
        r.diagnostics.push(d);
    }

    fn warn(&mut self, e: &Entry, message: impl Into<String>) {
        let r = self.report();
        let d = Diagnostic::warning(r.file, e.line, Some(&e.key), message);
        r.diagnostics.push(d);
    }

    /// Parses a non-empty value; an empty one gives `default` (systemd's reset).
    fn parsed<T>(
        &mut self,
        e: &Entry,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        if e.value.is_empty() {
            return Some(default);
        }
        parse(&e.value).map_err(|err| self.error(e, err.message)).ok()
    }

    /// A section the builder does not read: one warning for the file, at its header.
    fn unknown_section(&mut self, e: &Entry) {
        let r = self.report();
        if r.warned_sections.insert(e.section.clone()) {
            let message = format!("unknown section [{}], ignored", e.section);
            let d = Diagnostic::warning(r.file, e.section_line, None, message);
            r.diagnostics.push(d);
        }
    }

    fn unknown_key(&mut self, e: &Entry) {
        let message = if systemd_keys::is_known(&e.section, &e.key) {
            format!("{}= is not supported by gitvisor, ignored", e.key)
        } else {
            format!("unknown key {}= in [{}], ignored", e.key, e.section)
        };
        self.warn(e, message);
    }
}
