//! `gitvisor edit NAME`: edit a unit in the user's editor, validate it, commit it. An invalid
//! edit is not committed, and its text is kept in a recovery file: an edit is never lost.

use std::process::ExitCode;

use gitvisor_engine::git::ServicesRepo;
use gitvisor_engine::Paths;
use gitvisor_units::{load_instance, load_unit, Severity, UnitName, PLACEHOLDER_INSTANCE};

use super::Result;

const SKELETON: &str = "[Unit]\nDescription=\n\n[Service]\nExecStart=\nRestart=on-failure\n\n[Install]\nWantedBy=default.target\n";

pub async fn run(paths: &Paths, name: &str) -> Result<ExitCode> {
    let unit = UnitName::parse(name)?;
    let file = unit.file_name();
    let repo = ServicesRepo::open_or_init(&paths.services)?;
    let path = paths.services.join(&file);
    let before = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SKELETON.as_bytes().to_vec(),
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    };
    let scratch = std::env::temp_dir().join(format!("gitvisor-edit-{}-{}", std::process::id(), file));
    std::fs::write(&scratch, &before)?;
    let edited =
        run_editor(&scratch).and_then(|()| std::fs::read(&scratch).map_err(|e| e.to_string().into()));
    let after = match edited {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(format!("{e}; nothing was committed").into());
        }
    };
    let _ = std::fs::remove_file(&scratch);
    if after == before && path.exists() {
        println!("{file}: no changes");
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = gitvisor_engine::units::specifier_context();
    let checked = if unit.is_template() {
        load_instance(&file, &after, PLACEHOLDER_INSTANCE, &ctx).map(|l| l.warnings)
    } else {
        load_unit(&file, &after, &ctx).map(|l| l.warnings)
    };
    match checked {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("{w}");
            }
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let kept = keep(paths, &file, &after)?;
            let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
            eprintln!(
                "gitvisor: {file} has {errors} error{}; nothing was committed. Your text is kept in {}",
                if errors == 1 { "" } else { "s" },
                kept.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    let id = repo.commit_file(&file, &after, &format!("Edit {file}"))?;
    println!("committed {} (Edit {file})", &id.to_string()[..10]);
    match super::connect(paths).await {
        Ok(mut client) => {
            let r = client.call(gitvisor_protocol::SyncNow {}).await?;
            super::git::print_report(&r);
        }
        Err(_) => println!("gitvisor is not running: the change applies when it starts"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `$VISUAL`, `$EDITOR` or `vi`, through the shell so an editor given with arguments works.
fn run_editor(file: &std::path::Path) -> Result<()> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
        .map_err(|e| format!("cannot run the editor {editor:?}: {e}"))?;
    if !status.success() {
        return Err(format!("the editor {editor:?} failed ({status})").into());
    }
    Ok(())
}

fn keep(paths: &Paths, file: &str, text: &[u8]) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&paths.edit_recovery)?;
    let stamp = gitvisor_engine::time::format_us(gitvisor_engine::time::now_us());
    let stamp: String = stamp.chars().filter(|c| c.is_ascii_alphanumeric()).take(15).collect();
    let kept = paths.edit_recovery.join(format!("{file}.{stamp}"));
    gitvisor_state::write_atomic(&kept, text)?;
    Ok(kept)
}
