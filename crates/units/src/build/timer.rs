//! How a [`Timer`] is built from a `NAME.timer` file's entries (systemd.timer(5)), in the manner
//! of the service [`Builder`]: entries in file order, an empty assignment resets, every problem
//! a [`Diagnostic`], unknown sections and keys warnings.

use super::*;
use crate::calendar::CalendarSpec;
use crate::name::TIMER_SUFFIX;
use crate::timer::{Timer, DEFAULT_ACCURACY};

/// `[Unit]` keys a service reads that mean nothing to a timer in gitvisor.
const SERVICE_UNIT_KEYS: &[&str] = &[
    "Requires",
    "Wants",
    "After",
    "Before",
    "StartLimitIntervalSec",
    "StartLimitInterval",
    "StartLimitBurst",
];

/// Builds a [`Timer`] from entries, collecting diagnostics.
pub(crate) struct TimerBuilder<'a> {
    ctx: &'a SpecifierContext,
    timer: Timer,
    /// The line of each `OnCalendar=` kept in `timer.on_calendar`.
    calendar_lines: Vec<usize>,
    /// An `On…=` assignment was invalid (since the last reset): the file meant a trigger.
    invalid_trigger: bool,
    pub(crate) report: Report<'a>,
}

impl<'a> TimerBuilder<'a> {
    pub(crate) fn new(file: &'a str, name: UnitName, ctx: &'a SpecifierContext) -> Self {
        TimerBuilder {
            ctx,
            timer: Timer::new(name),
            calendar_lines: Vec::new(),
            invalid_trigger: false,
            report: Report::new(file),
        }
    }

    /// `text` with its specifiers expanded (`%n` is `NAME.timer`).
    fn expand(&mut self, e: &Entry, text: &str) -> Option<String> {
        specifiers::expand_for(text, &self.timer.name, TIMER_SUFFIX, self.ctx)
            .map_err(|err| self.error(e, err.message))
            .ok()
    }

    fn expanded(&mut self, e: &Entry) -> Option<String> {
        self.expand(e, &e.value.clone())
    }

    /// Applies one entry.
    pub(crate) fn apply(&mut self, e: &Entry) {
        if e.section.starts_with("X-") || e.key.starts_with("X-") {
            return; // systemd's extension namespace: ignored silently
        }
        match e.section.as_str() {
            "Unit" => self.unit_key(e),
            "Timer" => self.timer_key(e),
            "Install" => self.install_key(e),
            _ => self.unknown_section(e),
        }
    }

    fn unit_key(&mut self, e: &Entry) {
        if e.key == "Description" {
            if let Some(v) = self.expanded(e) {
                self.timer.description = (!v.is_empty()).then_some(v);
            }
        } else if SERVICE_UNIT_KEYS.contains(&e.key.as_str()) || condition_kind(&e.key).is_some() {
            self.warn(e, format!("{}= is not supported by gitvisor in a timer, ignored", e.key));
        } else {
            self.unknown_key(e);
        }
    }

    fn timer_key(&mut self, e: &Entry) {
        match e.key.as_str() {
            "OnCalendar" | "OnActiveSec" | "OnBootSec" | "OnStartupSec" | "OnUnitActiveSec"
            | "OnUnitInactiveSec" => self.trigger(e),
            "AccuracySec" => {
                if let Some(v) = self.parsed(e, DEFAULT_ACCURACY, parse_timespan) {
                    self.timer.accuracy = v;
                }
            }
            "RandomizedDelaySec" => {
                if let Some(v) = self.parsed(e, Duration::ZERO, parse_timespan) {
                    self.timer.randomized_delay = v;
                }
            }
            "FixedRandomDelay" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.timer.fixed_random_delay = v;
                }
            }
            "Persistent" => {
                if let Some(v) = self.parsed(e, false, parse_bool) {
                    self.timer.persistent = v;
                }
            }
            "RemainAfterElapse" => {
                if let Some(v) = self.parsed(e, true, parse_bool) {
                    self.timer.remain_after_elapse = v;
                }
            }
            "Unit" => self.unit(e),
            "WakeSystem" => {
                self.warn(e, "WakeSystem= is not supported by gitvisor (it cannot wake the machine), ignored")
            }
            _ => self.unknown_key(e),
        }
    }

    /// `On…=`: each assignment adds a trigger; an empty one removes every trigger of the file so
    /// far, of any kind (systemd.timer(5)).
    fn trigger(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.timer.clear_triggers();
            self.calendar_lines.clear();
            self.invalid_trigger = false;
            return;
        }
        let Some(value) = self.expanded(e) else {
            self.invalid_trigger = true;
            return;
        };
        if e.key == "OnCalendar" {
            match CalendarSpec::parse(&value) {
                Ok(spec) => {
                    self.timer.on_calendar.push(spec);
                    self.calendar_lines.push(e.line);
                }
                Err(err) => {
                    self.error(e, err.message);
                    self.invalid_trigger = true;
                }
            }
            return;
        }
        let span = match parse_timespan(&value) {
            Ok(span) => span,
            Err(err) => {
                self.error(e, err.message);
                self.invalid_trigger = true;
                return;
            }
        };
        let list = match e.key.as_str() {
            "OnActiveSec" => &mut self.timer.on_active,
            "OnBootSec" | "OnStartupSec" => &mut self.timer.on_startup,
            "OnUnitActiveSec" => &mut self.timer.on_unit_active,
            _ => &mut self.timer.on_unit_inactive,
        };
        list.push(span);
    }

    /// `Unit=NAME.service`; empty means the service of the timer's own name.
    fn unit(&mut self, e: &Entry) {
        if e.value.is_empty() {
            self.timer.unit = self.timer.name.clone();
            return;
        }
        let Some(value) = self.expanded(e) else { return };
        if let Some(kind) = OTHER_UNIT_TYPES.iter().find(|t| value.ends_with(*t)) {
            self.error(e, format!("{value:?} is a {} unit; a timer starts a {SUFFIX} unit", &kind[1..]));
            return;
        }
        match UnitName::parse(&value) {
            Ok(name) if name.is_template() => {
                self.error(e, format!("{value:?} is a template; name an instance"))
            }
            Ok(name) => self.timer.unit = name,
            Err(err) => self.error(e, err.to_string()),
        }
    }

    fn install_key(&mut self, e: &Entry) {
        if e.key != "WantedBy" {
            return self.unknown_key(e);
        }
        // Split into words, then expand specifiers in each, as the service builder does.
        let words = split_command_line(&e.value).map_err(|err| self.error(e, err.message)).ok();
        let words =
            words.and_then(|words| words.iter().map(|w| self.expand(e, w)).collect::<Option<Vec<String>>>());
        update_list(&mut self.timer.wanted_by, e, words);
    }

    /// Checks what needs the whole file, and hands back the timer (with the line of each
    /// `OnCalendar=`) or every error.
    pub(crate) fn finish(mut self) -> Result<(Timer, Vec<usize>, Vec<Diagnostic>), Vec<Diagnostic>> {
        // An invalid `On…=` is its own error; "no triggers" is for a file that set none.
        if !self.timer.has_triggers() && !self.invalid_trigger {
            self.report.diagnostics.push(Diagnostic::error(
                self.report.file,
                0,
                None,
                "timer has no triggers (set OnCalendar= or one of OnActiveSec=, OnBootSec=, OnStartupSec=, \
                 OnUnitActiveSec=, OnUnitInactiveSec=)",
            ));
        }
        self.report.diagnostics.sort_by_key(|d| d.line);
        if self.report.diagnostics.iter().any(Diagnostic::is_error) {
            Err(self.report.diagnostics)
        } else {
            Ok((self.timer, self.calendar_lines, self.report.diagnostics))
        }
    }
}

#[cfg(test)]
mod tests;

impl<'a> Reports<'a> for TimerBuilder<'a> {
    fn report(&mut self) -> &mut Report<'a> {
        &mut self.report
    }
}
