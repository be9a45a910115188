use std::path::PathBuf;
use std::process::ExitCode;

use gitvisor_engine::Paths;
use gitvisor_units::{calendar_notes, validate_file, Severity};

use super::Result;

/// Checks a unit file, or every `*.service` and `*.timer` in a directory; exit 1 on any error.
/// A timer's calendar expressions are printed normalized with their next three elapses, as
/// `systemd-analyze calendar` does.
pub fn run(paths: &Paths, path: Option<PathBuf>) -> Result<ExitCode> {
    let path = path.unwrap_or_else(|| paths.services.clone());
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "service" || x == "timer"))
            .collect();
        v.sort();
        v
    } else if path.exists() {
        vec![path.clone()]
    } else {
        return Err(format!("{}: no such file or directory", path.display()).into());
    };
    let ctx = gitvisor_engine::units::specifier_context();
    let (mut errors, mut warnings) = (0, 0);
    for f in &files {
        for d in validate_file(f, &ctx) {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            println!("{d}");
        }
        for note in calendar_notes(f, &ctx, gitvisor_units::Timestamp::now()) {
            println!("{note}");
        }
    }
    println!(
        "{} unit file{} checked: {errors} error{}, {warnings} warning{}",
        files.len(),
        plural(files.len()),
        plural(errors),
        plural(warnings)
    );
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
