//! Loading a unit file: bytes in, a [`Unit`] and its warnings out, or every problem found.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use crate::build::timer::TimerBuilder;
use crate::build::Builder;
use crate::calendar::describe_calendar;
use crate::diagnostic::Diagnostic;
use crate::name::{UnitName, TIMER_SUFFIX};
use crate::specifiers::SpecifierContext;
use crate::syntax::{self, MAX_FILE_SIZE};
use crate::timer::Timer;
use crate::unit::Unit;

/// A unit that loaded, with what is worth telling the user about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loaded {
    pub unit: Unit,
    pub warnings: Vec<Diagnostic>,
}

/// Loads `NAME.service`. A template (`web@.service`) loads with an empty `%i`, as systemd
/// does; it is not runnable ([`UnitName::is_template`]), see [`load_instance`].
///
/// On failure, the list holds every error of the file and its warnings, in line order.
pub fn load_unit(file_name: &str, bytes: &[u8], ctx: &SpecifierContext) -> Result<Loaded, Vec<Diagnostic>> {
    let name = UnitName::from_file_name(file_name)
        .map_err(|err| vec![Diagnostic::error(file_name, 0, None, err.to_string())])?;
    build(file_name, name, bytes, ctx)
}

/// Loads the instance `instance` of the template `template_file_name` (`web@.service`): the
/// unit is named `web@INSTANCE` and `%i` expands to `INSTANCE`. Diagnostics name the template
/// file, since that is where the lines are.
pub fn load_instance(
    template_file_name: &str,
    bytes: &[u8],
    instance: &str,
    ctx: &SpecifierContext,
) -> Result<Loaded, Vec<Diagnostic>> {
    let whole_file = |message: String| vec![Diagnostic::error(template_file_name, 0, None, message)];
    let template = UnitName::from_file_name(template_file_name).map_err(|err| whole_file(err.to_string()))?;
    if !template.is_template() {
        return Err(whole_file(format!("{template_file_name} is not a template (NAME@.service)")));
    }
    let name = template.instantiate(instance).map_err(|err| whole_file(err.to_string()))?;
    build(template_file_name, name, bytes, ctx)
}

fn build(
    file: &str,
    name: UnitName,
    bytes: &[u8],
    ctx: &SpecifierContext,
) -> Result<Loaded, Vec<Diagnostic>> {
    let text = syntax::decode(bytes).map_err(|e| vec![Diagnostic::error(file, e.line, None, e.message)])?;
    let (entries, syntax_errors) = syntax::parse(text);
    let mut builder = Builder::new(file, name, ctx);
    builder
        .report
        .diagnostics
        .extend(syntax_errors.into_iter().map(|e| Diagnostic::error(file, e.line, None, e.message)));
    for entry in &entries {
        builder.apply(entry);
    }
    // A `[Watch]` header alone asks for watching with every default (it has no entry).
    if let Some(line) = text.lines().position(|l| l.trim() == "[Watch]") {
        builder.watch_section(line + 1);
    }
    builder.finish().map(|(unit, warnings)| Loaded { unit, warnings })
}

/// A timer that loaded, with what is worth telling the user about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedTimer {
    pub timer: Timer,
    pub warnings: Vec<Diagnostic>,
    /// The line of each of `timer.on_calendar`, in the same order.
    pub calendar_lines: Vec<usize>,
}

/// Loads `NAME.timer`. An instance (`backup@home.timer`) loads with its `%i`; a template
/// (`backup@.timer`) is refused: name an instance.
///
/// On failure, the list holds every error of the file and its warnings, in line order.
pub fn load_timer(
    file_name: &str,
    bytes: &[u8],
    ctx: &SpecifierContext,
) -> Result<LoadedTimer, Vec<Diagnostic>> {
    let whole_file = |message: String| vec![Diagnostic::error(file_name, 0, None, message)];
    let name = UnitName::from_timer_file_name(file_name).map_err(|err| whole_file(err.to_string()))?;
    if name.is_template() {
        return Err(whole_file(format!(
            "{file_name} is a template; gitvisor runs timer instances (NAME@INSTANCE.timer) only"
        )));
    }
    let text =
        syntax::decode(bytes).map_err(|e| vec![Diagnostic::error(file_name, e.line, None, e.message)])?;
    let (entries, syntax_errors) = syntax::parse(text);
    let mut builder = TimerBuilder::new(file_name, name, ctx);
    builder
        .report
        .diagnostics
        .extend(syntax_errors.into_iter().map(|e| Diagnostic::error(file_name, e.line, None, e.message)));
    for entry in &entries {
        builder.apply(entry);
    }
    builder.finish().map(|(timer, calendar_lines, warnings)| LoadedTimer { timer, warnings, calendar_lines })
}

/// What `gitvisor validate` prints under a valid timer's diagnostics: for each `OnCalendar=`,
/// `FILE:LINE: OnCalendar: ` then [`describe_calendar`] (the normalized form and the next three
/// elapses after `now`). Empty for other files and for timers that do not load.
pub fn calendar_notes(path: &Path, ctx: &SpecifierContext, now: Timestamp) -> Vec<String> {
    let Some(file_name) = path.file_name().and_then(|f| f.to_str()).filter(|f| f.ends_with(TIMER_SUFFIX))
    else {
        return Vec::new();
    };
    let Ok(bytes) = read_limited(path) else { return Vec::new() };
    let Ok(loaded) = load_timer(file_name, &bytes, ctx) else { return Vec::new() };
    let file = path.display();
    loaded
        .timer
        .on_calendar
        .iter()
        .zip(&loaded.calendar_lines)
        .map(|(spec, line)| format!("{file}:{line}: OnCalendar: {}", describe_calendar(spec, now)))
        .collect()
}

/// The instance a template is checked with when validated alone: its `DefaultInstance=` if it
/// has a valid one, otherwise this placeholder (a number, so `tcp:%i` checks out).
pub const PLACEHOLDER_INSTANCE: &str = "1";

/// Checks one unit file for `gitvisor validate`: every error and warning, naming `path`.
/// A template is checked as one of its instances (see [`PLACEHOLDER_INSTANCE`]); a `.timer`
/// file as a timer (see [`calendar_notes`] for what else to print about it).
pub fn validate_file(path: &Path, ctx: &SpecifierContext) -> Vec<Diagnostic> {
    let file = path.display().to_string();
    let whole_file = |message: String| vec![Diagnostic::error(&file, 0, None, message)];
    let Some(file_name) = path.file_name().and_then(|f| f.to_str()) else {
        return whole_file("not a unit file name (NAME.service or NAME.timer)".to_string());
    };
    let bytes = match read_limited(path) {
        Ok(bytes) => bytes,
        Err(message) => return whole_file(message),
    };
    let mut diagnostics = validate_text(file_name, &bytes, ctx);
    for d in &mut diagnostics {
        d.file.clone_from(&file);
    }
    diagnostics
}

/// What `validate` says of a unit file's text, named by its file name (`web.service`,
/// `web@.service` with its default or a placeholder instance, `nightly.timer`); diagnostics
/// name the file as given.
pub fn validate_text(file_name: &str, bytes: &[u8], ctx: &SpecifierContext) -> Vec<Diagnostic> {
    let result = if file_name.ends_with(TIMER_SUFFIX) {
        load_timer(file_name, bytes, ctx).map(|l| l.warnings)
    } else {
        let name = match UnitName::from_file_name(file_name) {
            Ok(name) => name,
            Err(err) => return vec![Diagnostic::error(file_name, 0, None, err.to_string())],
        };
        if name.is_template() {
            let instance = default_instance(bytes, &name);
            load_instance(file_name, bytes, &instance, ctx).map(|l| l.warnings)
        } else {
            load_unit(file_name, bytes, ctx).map(|l| l.warnings)
        }
    };
    match result {
        Ok(warnings) => warnings,
        Err(diagnostics) => diagnostics,
    }
}

/// Reads at most one byte more than the limit, and only regular files (a FIFO would block).
fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    Ok(bytes)
}

fn default_instance(bytes: &[u8], template: &UnitName) -> String {
    let Ok(text) = syntax::decode(bytes) else {
        return PLACEHOLDER_INSTANCE.to_string();
    };
    syntax::parse(text)
        .0
        .into_iter()
        .rev()
        .find(|e| e.section == "Install" && e.key == "DefaultInstance")
        .map(|e| e.value)
        .filter(|v| template.instantiate(v).is_ok())
        .unwrap_or_else(|| PLACEHOLDER_INSTANCE.to_string())
}
