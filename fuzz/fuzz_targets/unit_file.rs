//! Arbitrary bytes as a unit file: `load_unit` (a plain unit and a template), `load_instance`
//! and `load_timer`. Never panics; what loads is consistent.
#![no_main]

use std::path::PathBuf;

use gitvisor_units::{
    load_instance, load_timer, load_unit, quote_command_line, split_command_line, Diagnostic, ExecCommand,
    Loaded, LoadedTimer, ServiceType, Severity, SpecifierContext, UnitName,
};
use libfuzzer_sys::fuzz_target;

fn ctx() -> SpecifierContext {
    SpecifierContext {
        home: PathBuf::from("/home/fuzz"),
        user: "fuzz".into(),
        uid: 1000,
        runtime_dir: PathBuf::from("/run/user/1000"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let ctx = ctx();
    match selector % 4 {
        0 => service(load_unit("fuzz.service", bytes, &ctx), || load_unit("fuzz.service", bytes, &ctx)),
        1 => service(load_unit("web@.service", bytes, &ctx), || load_unit("web@.service", bytes, &ctx)),
        2 => service(load_instance("web@.service", bytes, "srv-www", &ctx), || {
            load_instance("web@.service", bytes, "srv-www", &ctx)
        }),
        _ => timer(load_timer("backup.timer", bytes, &ctx), || load_timer("backup.timer", bytes, &ctx)),
    }
});

fn failed(diagnostics: &[Diagnostic]) {
    assert!(diagnostics.iter().any(Diagnostic::is_error), "a failed load names an error: {diagnostics:?}");
    assert!(diagnostics.windows(2).all(|w| w[0].line <= w[1].line), "diagnostics in line order");
}

fn warnings_only(warnings: &[Diagnostic]) {
    assert!(warnings.iter().all(|d| d.severity == Severity::Warning), "{warnings:?}");
    assert!(warnings.windows(2).all(|w| w[0].line <= w[1].line), "warnings in line order");
}

fn service(result: Result<Loaded, Vec<Diagnostic>>, again: impl Fn() -> Result<Loaded, Vec<Diagnostic>>) {
    assert_eq!(result, again(), "loading is deterministic");
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(diagnostics) => return failed(&diagnostics),
    };
    warnings_only(&loaded.warnings);
    let unit = &loaded.unit;
    command(&unit.exec_start);
    if unit.service_type != ServiceType::Oneshot {
        assert!(unit.exec_start_rest.is_empty(), "several ExecStart= only for oneshot");
    }
    let others = unit
        .exec_start_rest
        .iter()
        .chain(&unit.exec_start_pre)
        .chain(&unit.exec_start_post)
        .chain(&unit.exec_stop)
        .chain(&unit.exec_stop_post)
        .chain(&unit.exec_reload);
    for cmd in others {
        command(cmd);
    }
    let dependencies = [
        &unit.requires,
        &unit.wants,
        &unit.after,
        &unit.before,
        &unit.binds_to,
        &unit.part_of,
        &unit.requisite,
        &unit.on_failure,
    ];
    for dep in dependencies.into_iter().flatten() {
        let name =
            UnitName::parse(dep).unwrap_or_else(|e| panic!("dependency {dep:?} is not a unit name: {e}"));
        assert_eq!(name.as_str(), dep, "dependencies are stored without .service");
        assert!(!name.is_template(), "a dependency is never a template: {dep:?}");
    }
    for (key, value) in &unit.environment {
        assert!(is_env_name(key), "environment name {key:?}");
        assert!(!value.contains('\0'), "NUL in the value of {key}");
    }
    for name in &unit.pass_environment {
        assert!(is_env_name(name), "PassEnvironment= name {name:?}");
    }
    let paths = unit
        .working_directory
        .iter()
        .chain(&unit.pid_file)
        .chain(unit.environment_files.iter().map(|f| &f.path));
    for path in paths {
        assert!(path.is_absolute(), "{path:?} is absolute");
    }
    if let Some(instance) = &unit.default_instance {
        let template = if unit.name.is_template() { Some(unit.name.clone()) } else { unit.name.template() };
        if let Some(template) = template {
            assert!(template.instantiate(instance).is_ok(), "DefaultInstance={instance:?} instantiates");
        }
    }
}

/// A command that loaded can run: a program, no NUL anywhere (execve would refuse it), and its
/// quoted form (as logs show it) reads back to the same words, both with `split_command_line`
/// and pasted back into `ExecStart=` (specifiers escaped, `:` so nothing is substituted).
fn command(cmd: &ExecCommand) {
    let program = cmd.argv.first().expect("a command has a program");
    assert!(!program.is_empty(), "empty program");
    assert!(program.starts_with('/') || !program.contains('/'), "program {program:?}");
    for word in cmd.argv.iter().chain(&cmd.arg0) {
        assert!(!word.contains('\0'), "NUL in {word:?}");
    }
    let line = quote_command_line(&cmd.argv);
    assert_eq!(split_command_line(&line).as_ref(), Ok(&cmd.argv), "{line:?}");
    let file = format!("[Service]\nExecStart=:{}\n", line.replace('%', "%%"));
    match load_unit("paste.service", file.as_bytes(), &ctx()) {
        Ok(pasted) => assert_eq!(pasted.unit.exec_start.argv, cmd.argv, "pasted back as {file:?}"),
        Err(d) => panic!("{file:?} does not load back: {d:?}"),
    }
}

fn timer(
    result: Result<LoadedTimer, Vec<Diagnostic>>,
    again: impl Fn() -> Result<LoadedTimer, Vec<Diagnostic>>,
) {
    assert_eq!(result, again(), "loading is deterministic");
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(diagnostics) => return failed(&diagnostics),
    };
    warnings_only(&loaded.warnings);
    let timer = &loaded.timer;
    assert!(timer.has_triggers(), "a timer that loads has a trigger");
    assert_eq!(timer.on_calendar.len(), loaded.calendar_lines.len(), "one line per OnCalendar=");
    assert!(!timer.unit.is_template(), "a timer starts a runnable unit: {}", timer.unit);
    for spec in &timer.on_calendar {
        let text = spec.to_string();
        let again = text.parse::<gitvisor_units::CalendarSpec>();
        assert_eq!(again.as_ref(), Ok(spec), "OnCalendar= normalized as {text:?} reads back");
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
