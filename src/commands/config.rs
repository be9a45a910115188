use std::process::ExitCode;

use gitvisor_engine::{Paths, Settings};

use super::Result;

/// Prints the effective settings; problems in config.toml go to stderr as warnings.
pub fn run(paths: &Paths) -> Result<ExitCode> {
    let loaded = Settings::load(&paths.config);
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    println!("# effective settings ({})", paths.config.display());
    print!("{}", loaded.settings.to_toml());
    Ok(ExitCode::SUCCESS)
}
