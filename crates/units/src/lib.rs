//! Unit files for gitvisor: systemd's syntax, typed values, specifiers, templates and the
//! diagnostics `gitvisor validate` prints.
//!
//! # Theory of operation
//!
//! Loading a file is a pipeline of pure steps, each in its own module:
//!
//! 1. [`syntax`] checks size and encoding, joins continuation lines, drops comments and yields
//!    `(section, key, value, line)` entries in file order. It knows nothing about keys.
//! 2. [`unit`] applies the entries one by one to a [`Unit`] holding the defaults. Values are
//!    parsed by [`values`]; strings, paths and commands get their `%` specifiers expanded by
//!    [`specifiers`] for the unit's [`UnitName`].
//! 3. Every problem becomes a [`Diagnostic`] with its line and key, and reading goes on, so one
//!    load reports every error of a file. Unknown sections and keys are warnings, as in systemd,
//!    so real systemd units load; invalid values are errors.
//!
//! [`load_unit`], [`load_instance`] and [`validate_file`] (in `load.rs`) run the pipeline and
//! return a [`Loaded`] unit with its warnings, or every diagnostic of the file.
//!
//! Timers (`NAME.timer`) go through the same steps into a [`Timer`] ([`load_timer`]), whose
//! `OnCalendar=` values are [`calendar`] expressions. When a timer fires next is
//! [`next_elapse`] (in `trigger.rs`): a pure function of the timer, a [`TimerState`] the engine
//! keeps and the time it passes in.
//!
//! Environment files (`EnvironmentFile=`) are read by [`env_file`] in systemd's dialect or the
//! `.env` one, chosen by the file's name.
//!
//! Nothing here touches the file system except [`validate_file`] and [`calendar_notes`] (and
//! the system's time zone database, read through jiff), and nothing panics on any input.

mod build;
pub mod calendar;
pub mod diagnostic;
pub mod env_file;
pub mod install;
mod load;
pub mod name;
pub mod specifiers;
pub mod syntax;
mod systemd_keys;
pub mod timer;
pub mod trigger;
pub mod unit;
pub mod values;

pub use calendar::{describe_calendar, local_zone, CalendarSpec};
pub use diagnostic::{Diagnostic, Severity};
/// The time types of the timer API, so users need no jiff of their own.
pub use jiff::{tz::TimeZone, Timestamp};
pub use load::{
    calendar_notes, load_instance, load_timer, load_unit, validate_file, validate_text, Loaded, LoadedTimer,
    PLACEHOLDER_INSTANCE,
};
pub use name::{NameError, UnitName};
pub use specifiers::SpecifierContext;
pub use timer::Timer;
pub use trigger::{next_elapse, next_elapse_in, randomized_delay, TimerState};
pub use unit::{
    CaptureSettings, Condition, ConditionKind, EnvironmentFile, ExecCommand, HealthCheck, NotifyAccess, Port,
    PortProto, ReadyCheck, RestartPolicy, ServiceType, Unit, WatchSettings,
};
pub use values::{
    parse_bool, parse_exit_statuses, parse_percent, parse_signal, parse_size, parse_timespan,
    quote_command_line, split_command_line, split_commands, ExitStatusSet, ValueError,
};
