use std::path::PathBuf;

use crate::load::{calendar_notes, load_timer, validate_file, LoadedTimer};

use super::*;

fn ctx() -> SpecifierContext {
    SpecifierContext {
        home: PathBuf::from("/home/ann"),
        user: "ann".into(),
        uid: 1000,
        runtime_dir: PathBuf::from("/run/user/1000"),
    }
}

fn load(file: &str, text: &str) -> Result<LoadedTimer, Vec<Diagnostic>> {
    load_timer(file, text.as_bytes(), &ctx())
}

fn ok(text: &str) -> LoadedTimer {
    load("backup.timer", text).unwrap_or_else(|d| panic!("should load: {:#?}", lines(&d)))
}

/// The file's errors as users read them.
fn errors(text: &str) -> Vec<String> {
    let diagnostics = load("backup.timer", text).expect_err("should not load");
    diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect()
}

fn lines(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(|d| d.to_string()).collect()
}

fn name(stem: &str) -> UnitName {
    UnitName::parse(stem).unwrap()
}

#[test]
fn a_minimal_timer_has_systemds_defaults() {
    let loaded = ok("[Timer]\nOnCalendar=daily\n");
    assert!(loaded.warnings.is_empty(), "{:?}", lines(&loaded.warnings));
    assert_eq!(loaded.calendar_lines, [2]);
    let timer = loaded.timer;
    assert_eq!(timer.name.as_str(), "backup");
    assert_eq!(timer.file_name(), "backup.timer");
    assert_eq!(timer.unit.as_str(), "backup", "Unit= defaults to the service of the same name");
    assert_eq!(timer.on_calendar.iter().map(ToString::to_string).collect::<Vec<_>>(), ["*-*-* 00:00:00"]);
    assert_eq!(timer.accuracy, Duration::from_secs(60));
    assert_eq!(timer.randomized_delay, Duration::ZERO);
    assert!(!timer.fixed_random_delay && !timer.persistent && timer.remain_after_elapse);
    assert!(!timer.enabled());
    assert!(timer.has_triggers());
}

#[test]
fn every_setting() {
    let text = "\
[Unit]
Description=Nightly %n for %u

[Timer]
OnCalendar=Mon..Fri 09:00
OnCalendar=*-*-01 03:00 UTC
OnActiveSec=10min
OnBootSec=5min
OnStartupSec=1h
OnUnitActiveSec=1d
OnUnitInactiveSec=30s
AccuracySec=5s
RandomizedDelaySec=10min
FixedRandomDelay=yes
Persistent=true
Unit=db-dump.service
RemainAfterElapse=no
X-Mine=ignored

[Install]
WantedBy=default.target
";
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", lines(&loaded.warnings));
    assert_eq!(loaded.calendar_lines, [5, 6]);
    let t = loaded.timer;
    assert_eq!(t.description.as_deref(), Some("Nightly backup.timer for ann"));
    let calendars: Vec<String> = t.on_calendar.iter().map(ToString::to_string).collect();
    assert_eq!(calendars, ["Mon..Fri *-*-* 09:00:00", "*-*-01 03:00:00 UTC"]);
    let min = |m: u64| Duration::from_secs(60 * m);
    assert_eq!(t.on_active, [min(10)]);
    assert_eq!(t.on_startup, [min(5), min(60)]);
    assert_eq!(t.on_unit_active, [min(24 * 60)]);
    assert_eq!(t.on_unit_inactive, [Duration::from_secs(30)]);
    assert_eq!(t.accuracy, Duration::from_secs(5));
    assert_eq!(t.randomized_delay, min(10));
    assert!(t.fixed_random_delay && t.persistent && !t.remain_after_elapse);
    assert_eq!(t.unit, name("db-dump"));
    assert_eq!(t.wanted_by, ["default.target"]);
    assert!(t.enabled());
    // OnUnit…Sec= keeps an elapsed timer around whatever RemainAfterElapse= says.
    assert!(t.remains_after_elapse());
}

#[test]
fn an_empty_trigger_assignment_resets_every_trigger() {
    let text =
        "[Timer]\nOnCalendar=hourly\nOnActiveSec=1min\nOnBootSec=\nOnCalendar=weekly\nOnUnitActiveSec=2h\n";
    let loaded = ok(text);
    let t = &loaded.timer;
    assert_eq!(t.on_calendar.iter().map(ToString::to_string).collect::<Vec<_>>(), ["Mon *-*-* 00:00:00"]);
    assert_eq!(loaded.calendar_lines, [5]);
    assert!(t.on_active.is_empty());
    assert_eq!(t.on_unit_active, [Duration::from_secs(7200)]);
    // Other settings reset to their default.
    let t = ok(
        "[Timer]\nOnActiveSec=1\nAccuracySec=1s\nAccuracySec=\nRemainAfterElapse=no\nRemainAfterElapse=\n",
    )
    .timer;
    assert_eq!(t.accuracy, Duration::from_secs(60));
    assert!(t.remain_after_elapse);
    let t = ok("[Timer]\nOnActiveSec=1\n[Install]\nWantedBy=a b\nWantedBy=\nWantedBy=c\n").timer;
    assert_eq!(t.wanted_by, ["c"]);
}

#[test]
fn a_timer_without_triggers_is_refused() {
    let want = "backup.timer: timer has no triggers (set OnCalendar= or one of OnActiveSec=, OnBootSec=, \
                OnStartupSec=, OnUnitActiveSec=, OnUnitInactiveSec=)";
    assert_eq!(errors("[Unit]\nDescription=nothing to do\n[Timer]\nPersistent=yes\n"), [want]);
    assert_eq!(errors(""), [want]);
    assert_eq!(errors("[Timer]\nOnCalendar=daily\nOnCalendar=\n"), [want]);
}

#[test]
fn invalid_values_are_errors_at_their_line() {
    assert_eq!(
        errors("[Timer]\nPersistent=yes\nOnCalendar=*-13-01\n"),
        [r#"backup.timer:3: OnCalendar: invalid calendar expression "*-13-01": month 13 out of range 1..12"#]
    );
    let text = "[Timer]\nOnCalendar=daily\nOnCalendar=Mon..Funday\nOnActiveSec=5 parsecs\nPersistent=maybe\n\
                AccuracySec=soon\nRandomizedDelaySec=-1\nFixedRandomDelay=2\nRemainAfterElapse=x\nOnBootSec=%z\n";
    let found: Vec<(usize, Option<String>)> = load("backup.timer", text)
        .unwrap_err()
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.line, d.key.clone()))
        .collect();
    let want: Vec<(usize, Option<String>)> = [
        (3, "OnCalendar"),
        (4, "OnActiveSec"),
        (5, "Persistent"),
        (6, "AccuracySec"),
        (7, "RandomizedDelaySec"),
        (8, "FixedRandomDelay"),
        (9, "RemainAfterElapse"),
        (10, "OnBootSec"),
    ]
    .into_iter()
    .map(|(line, key)| (line, Some(key.to_string())))
    .collect();
    assert_eq!(found, want);
}

#[test]
fn the_started_unit() {
    let unit = |value: &str| ok(&format!("[Timer]\nOnActiveSec=1\nUnit={value}\n")).timer.unit;
    assert_eq!(unit("db.service"), name("db"));
    assert_eq!(unit("db"), name("db"));
    assert_eq!(unit("web@8080.service"), name("web@8080"));
    assert_eq!(unit("%p-dump.service"), name("backup-dump"));
    assert_eq!(ok("[Timer]\nOnActiveSec=1\nUnit=db.service\nUnit=\n").timer.unit, name("backup"));
    for (value, want) in [
        (
            "sleep.target",
            r#"backup.timer:3: Unit: "sleep.target" is a target unit; a timer starts a .service unit"#,
        ),
        (
            "other.timer",
            r#"backup.timer:3: Unit: "other.timer" is a timer unit; a timer starts a .service unit"#,
        ),
        ("web@.service", r#"backup.timer:3: Unit: "web@.service" is a template; name an instance"#),
        (
            "a/b.service",
            r#"backup.timer:3: Unit: invalid unit name "a/b.service": a unit name cannot contain '/'"#,
        ),
    ] {
        assert_eq!(errors(&format!("[Timer]\nOnActiveSec=1\nUnit={value}\n")), [want], "{value}");
    }
}

#[test]
fn timer_names() {
    // An instance starts the service instance of the same name, and knows its %i.
    let loaded =
        load("backup@home.timer", "[Unit]\nDescription=%i %n %N\n[Timer]\nOnCalendar=daily\n").unwrap();
    assert_eq!(loaded.timer.unit, name("backup@home"));
    assert_eq!(loaded.timer.description.as_deref(), Some("home backup@home.timer backup@home"));
    let refused = |file: &str| lines(&load(file, "[Timer]\nOnCalendar=daily\n").unwrap_err());
    assert_eq!(
        refused("backup@.timer"),
        ["backup@.timer: backup@.timer is a template; gitvisor runs timer instances (NAME@INSTANCE.timer) only"]
    );
    assert_eq!(
        refused("backup.service"),
        [r#"backup.service: invalid unit name "backup.service": a timer file name must end in .timer"#]
    );
    assert_eq!(refused("a b.timer").len(), 1);
}

#[test]
fn unknown_and_unsupported_keys_are_warnings() {
    let text = "\
[Unit]
Description=x
Documentation=man:backup(1)
After=network.target
ConditionPathExists=/srv
Colour=blue

[Timer]
OnCalendar=daily
WakeSystem=yes
OnClockChange=yes
Speed=fast

[Install]
Alias=b.timer
WantedBy=timers.target

[Service]
ExecStart=/bin/true
";
    let loaded = ok(text);
    assert_eq!(
        lines(&loaded.warnings),
        [
            "backup.timer:3: Documentation: warning: Documentation= is not supported by gitvisor, ignored",
            "backup.timer:4: After: warning: After= is not supported by gitvisor in a timer, ignored",
            "backup.timer:5: ConditionPathExists: warning: ConditionPathExists= is not supported by gitvisor in a timer, ignored",
            "backup.timer:6: Colour: warning: unknown key Colour= in [Unit], ignored",
            "backup.timer:10: WakeSystem: warning: WakeSystem= is not supported by gitvisor (it cannot wake the machine), ignored",
            "backup.timer:11: OnClockChange: warning: OnClockChange= is not supported by gitvisor, ignored",
            "backup.timer:12: Speed: warning: unknown key Speed= in [Timer], ignored",
            "backup.timer:15: Alias: warning: Alias= is not supported by gitvisor, ignored",
            "backup.timer:18: warning: unknown section [Service], ignored",
        ]
    );
    assert!(loaded.timer.enabled());
}

#[test]
fn validating_a_timer_file() {
    let dir = std::env::temp_dir().join(format!("gitvisor-units-timer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("backup.timer");
    std::fs::write(&good, "[Timer]\nOnCalendar=Mon..Fri 09:00 UTC\nOnCalendar=2003-03-05\nWakeSystem=yes\n")
        .unwrap();
    let d = validate_file(&good, &ctx());
    assert_eq!(
        lines(&d),
        [format!(
            "{}:4: WakeSystem: warning: WakeSystem= is not supported by gitvisor (it cannot wake the machine), ignored",
            good.display()
        )]
    );
    let now: jiff::Timestamp = "2026-12-04T18:00:00Z".parse().unwrap();
    assert_eq!(
        calendar_notes(&good, &ctx(), now),
        [
            format!(
                "{}:2: OnCalendar: Mon..Fri *-*-* 09:00:00 UTC, next elapses: Mon 2026-12-07 09:00:00 UTC, \
                 Tue 2026-12-08 09:00:00 UTC, Wed 2026-12-09 09:00:00 UTC",
                good.display()
            ),
            format!("{}:3: OnCalendar: 2003-03-05 00:00:00 (never elapses again)", good.display()),
        ]
    );

    let bad = dir.join("bad.timer");
    std::fs::write(&bad, "[Timer]\nOnCalendar=25:00\n").unwrap();
    let d = validate_file(&bad, &ctx());
    assert_eq!(
        lines(&d),
        [format!(
            r#"{}:2: OnCalendar: invalid calendar expression "25:00": hour 25 out of range 0..23"#,
            bad.display()
        )]
    );
    assert!(calendar_notes(&bad, &ctx(), now).is_empty());

    // Services validate as before, and have no calendar notes.
    let service = dir.join("backup.service");
    std::fs::write(&service, "[Service]\nExecStart=/bin/true\n").unwrap();
    assert!(validate_file(&service, &ctx()).is_empty());
    assert!(calendar_notes(&service, &ctx(), now).is_empty());
    let template = dir.join("backup@.timer");
    std::fs::write(&template, "[Timer]\nOnCalendar=daily\n").unwrap();
    assert_eq!(validate_file(&template, &ctx()).len(), 1);
    let missing = validate_file(&dir.join("missing.timer"), &ctx());
    assert!(missing[0].message.starts_with("cannot read"), "{}", missing[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mangled_timers_never_panic() {
    let full = "[Unit]\nDescription=%n\n[Timer]\nOnCalendar=Mon..Fri *-*~01/1 09:00:00.5 Europe/Berlin\n\
                OnActiveSec=1h 30min\nUnit=db@%i.service\nPersistent=yes\n[Install]\nWantedBy=default.target\n";
    let bytes = full.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [&b""[..], b"\\", b"\n", b"%", b"=", b"[", b"\xff", b"~", b"9999999999"] {
            let mut mangled = bytes[..i].to_vec();
            mangled.extend_from_slice(replacement);
            mangled.extend_from_slice(&bytes[i + 1..]);
            let _ = load_timer("b@x.timer", &mangled, &ctx());
        }
    }
}
