//! `gitvisor edit NAME`: edit a unit in the user's editor, validate it, commit it. An invalid
//! edit is not committed, and its text is kept in a recovery file: an edit is never lost.

use std::process::ExitCode;

use gitvisor_engine::unit_files;
use gitvisor_engine::Paths;

use super::Result;

/// The operation is the engine's (`unit.commit`, the same the window's editor makes) when an
/// engine runs; without one the same code commits here and the change applies at its start.
pub async fn run(paths: &Paths, name: &str) -> Result<ExitCode> {
    let file = unit_files::file_of(name)?;
    let current = unit_files::read(paths, &file)?;
    let before = current.text.clone();
    let scratch = std::env::temp_dir().join(format!("gitvisor-edit-{}-{}", std::process::id(), file));
    std::fs::write(&scratch, &before)?;
    let edited =
        run_editor(&scratch).and_then(|()| std::fs::read(&scratch).map_err(|e| e.to_string().into()));
    let _ = std::fs::remove_file(&scratch);
    let after = match edited {
        Ok(a) => {
            String::from_utf8(a).map_err(|_| format!("{file}: not UTF-8 text; nothing was committed"))?
        }
        Err(e) => return Err(format!("{e}; nothing was committed").into()),
    };
    if after == before && current.committed.as_deref() == Some(after.as_str()) && current.pending.is_none() {
        println!("{file}: no changes");
        return Ok(ExitCode::SUCCESS);
    }
    let checked = unit_files::check(&file, &after);
    for d in &checked.diagnostics {
        eprintln!("{}", d.text);
    }
    if checked.errors > 0 {
        let kept = keep(paths, &file, after.as_bytes())?;
        eprintln!(
            "gitvisor: {file} has {} error{}; nothing was committed. Your text is kept in {}",
            checked.errors,
            if checked.errors == 1 { "" } else { "s" },
            kept.display()
        );
        return Ok(ExitCode::from(1));
    }
    match super::connect(paths).await {
        Ok(mut client) => {
            let r = client
                .call(gitvisor_protocol::UnitCommit { name: file.clone(), text: after, message: None })
                .await?;
            match &r.commit {
                Some(c) => println!("committed {} ({})", &c[..c.len().min(10)], r.message),
                None => println!("{file}: no changes"),
            }
            if let Some(sync) = &r.sync {
                super::git::print_report(sync);
            }
        }
        Err(_) => {
            let (commit, message) = unit_files::commit(paths, &file, &after, None)?;
            if let Some(c) = commit {
                println!("committed {} ({message})", &c[..c.len().min(10)]);
            }
            println!("gitvisor is not running: the change applies when it starts");
        }
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
