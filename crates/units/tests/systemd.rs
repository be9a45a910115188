//! Real systemd units must load: unknown keys are warnings, never a panic.

use std::path::{Path, PathBuf};

use gitvisor_units::{load_instance, load_unit, Diagnostic, SpecifierContext, UnitName};

fn ctx() -> SpecifierContext {
    SpecifierContext {
        home: PathBuf::from("/home/ann"),
        user: "ann".into(),
        uid: 1000,
        runtime_dir: PathBuf::from("/run/user/1000"),
    }
}

/// Loads a file as gitvisor would: templates as an instance.
fn load(path: &Path) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let file_name = path.file_name().unwrap().to_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let result = match UnitName::from_file_name(file_name) {
        Ok(name) if name.is_template() => load_instance(file_name, &bytes, "1", &ctx()),
        _ => load_unit(file_name, &bytes, &ctx()),
    };
    result.map(|loaded| loaded.warnings)
}

fn service_files(dir: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "service") && p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_installed_systemd_service_loads_without_panicking() {
    let mut loaded = 0;
    let mut refused = 0;
    for dir in ["/lib/systemd/system", "/usr/lib/systemd/user"] {
        for path in service_files(dir) {
            match load(&path) {
                Ok(_) => loaded += 1,
                Err(diagnostics) => {
                    refused += 1;
                    let errors: Vec<String> =
                        diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect();
                    assert!(!errors.is_empty(), "{path:?} refused without an error");
                    eprintln!("{}: {}", path.display(), errors.join(" | "));
                }
            }
        }
    }
    eprintln!("{loaded} loaded, {refused} refused for features gitvisor lacks");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/systemd").join(name)
}

fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(|d| d.to_string()).collect()
}

#[test]
fn fixtures_load_with_warnings_only() {
    for name in [
        "postgresql@.service",
        "e2scrub@.service",
        "systemd-journal-flush.service",
        "ssh-agent.service",
        "gpg-agent.service",
        "dbus.service",
    ] {
        let warnings = load(&fixture(name))
            .unwrap_or_else(|errors| panic!("{name} should load: {:#?}", messages(&errors)));
        assert!(!warnings.is_empty(), "{name}: systemd-only keys should warn");
        assert!(warnings.iter().all(|w| !w.is_error()));
    }
}

#[test]
fn postgresql_template_instance() {
    let bytes = std::fs::read(fixture("postgresql@.service")).unwrap();
    let loaded = load_instance("postgresql@.service", &bytes, "15-main", &ctx()).unwrap();
    let unit = loaded.unit;
    assert_eq!(unit.name.as_str(), "postgresql@15-main");
    assert_eq!(unit.description.as_deref(), Some("PostgreSQL Cluster 15-main"));
    assert_eq!(
        unit.exec_start.argv,
        ["/usr/bin/pg_ctlcluster", "--skip-systemctl-redirect", "15-main", "start"]
    );
    assert!(unit.exec_start.ignore_failure);
    assert_eq!(unit.exec_stop[0].argv[5], "stop");
    assert_eq!(unit.timeout_stop, std::time::Duration::from_secs(3600));
    assert_eq!(unit.before, ["postgresql"]);
    assert!(unit.after.is_empty(), "network.target is dropped");
    assert!(unit.enabled());
    let text = messages(&loaded.warnings).join("\n");
    assert_eq!(unit.service_type, gitvisor_units::ServiceType::Forking);
    assert_eq!(unit.pid_file.as_deref(), Some(std::path::Path::new("/run/postgresql/15-main.pid")));
    assert!(!text.contains("Type"), "{text}");
    assert!(text.contains("network.target ignored"), "{text}");
}

#[test]
fn e2scrub_environment_and_unescaped_instance() {
    let bytes = std::fs::read(fixture("e2scrub@.service")).unwrap();
    let unit = load_instance("e2scrub@.service", &bytes, "home-data", &ctx()).unwrap().unit;
    assert_eq!(unit.environment, [("SERVICE_MODE".to_string(), "1".to_string())]);
    assert_eq!(unit.exec_start.argv, ["/sbin/e2scrub", "-t", "home/data"]);
    assert_eq!(unit.working_directory, Some(PathBuf::from("/")));
    assert_eq!(unit.user.as_deref(), Some("root"));
}

#[test]
fn journal_flush_bare_program_names_and_timeout_sec() {
    let bytes = std::fs::read(fixture("systemd-journal-flush.service")).unwrap();
    let unit = load_unit("systemd-journal-flush.service", &bytes, &ctx()).unwrap().unit;
    assert_eq!(unit.exec_start.argv, ["journalctl", "--flush"]);
    assert_eq!(unit.exec_stop[0].argv, ["journalctl", "--smart-relinquish-var"]);
    assert_eq!(unit.timeout_stop, std::time::Duration::from_secs(90));
    assert_eq!(unit.wants, ["systemd-journald"]);
    assert_eq!(unit.after, ["systemd-journald", "systemd-remount-fs"]);
}

/// A oneshot of three commands, the first with full privileges (`+`): loads as systemd reads it.
#[test]
fn man_db_oneshot_loads_with_its_commands_in_order() {
    let bytes = std::fs::read(fixture("man-db.service")).unwrap();
    let unit = load_unit("man-db.service", &bytes, &ctx()).unwrap().unit;
    assert_eq!(unit.service_type, gitvisor_units::ServiceType::Oneshot);
    assert!(unit.exec_start.privileged);
    assert_eq!(unit.exec_start.argv[0], "/usr/bin/install");
    let rest: Vec<&str> = unit.exec_start_rest.iter().map(|c| c.argv[0].as_str()).collect();
    assert_eq!(rest, ["/usr/bin/find", "/usr/bin/mandb"]);
    assert!(unit.exec_start_rest.iter().all(|c| !c.privileged));
    assert_eq!(unit.exec_start_rest[0].argv[5], "*.gz");
}

/// Units that use what gitvisor lacks are refused, with the reason on the right line.
#[test]
fn fixtures_needing_missing_features_are_refused_explicitly() {
    let errors = load(&fixture("systemd-fsck@.service")).unwrap_err();
    let errors: Vec<String> = errors.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        [
            "systemd-fsck@.service:11: Description: specifier %f is not supported by gitvisor (use %%f for a literal)",
            "systemd-fsck@.service:23: ExecStart: specifier %f is not supported by gitvisor (use %%f for a literal)",
        ]
    );
}
