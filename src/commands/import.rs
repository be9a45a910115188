//! `gitvisor import PATH… [--dry-run] [--prefix P] [--json]`: the engine reads the sources and
//! commits the units; this prints them, what did not translate, and the sync.

use std::path::PathBuf;
use std::process::ExitCode;

use gitvisor_protocol::{Client, Import, ImportReply};

use super::Result;

/// The request, with paths made absolute here: the engine may run in another directory.
pub fn request(files: Vec<PathBuf>, dry_run: bool, prefix: Option<String>) -> Result<Import> {
    let mut paths = Vec::with_capacity(files.len());
    for f in files {
        let abs = std::path::absolute(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        paths.push(abs.display().to_string());
    }
    Ok(Import { paths, dry_run, prefix })
}

pub async fn run(client: &mut Client, request: Import, json: bool) -> Result<ExitCode> {
    let dry_run = request.dry_run;
    let reply = client.call(request).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_units(&reply, dry_run);
    print_notes(&reply);
    if dry_run {
        println!("dry run: nothing written; the commit would say \"{}\"", reply.message);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(c) = &reply.commit {
        println!("committed {} ({})", &c[..c.len().min(10)], reply.message);
    }
    let applied = reply.sync.as_ref().is_none_or(|s| super::git::print_report(s) && s.applied);
    Ok(if applied { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_units(reply: &ImportReply, dry_run: bool) {
    for u in &reply.units {
        let state = if u.enabled { "enabled" } else { "not enabled" };
        if dry_run {
            println!("# {} ({state}), from {} ({})", u.file, u.source, u.process);
            println!("{}", u.text);
        } else {
            println!("{} ({state}) from {}", u.file, u.source);
        }
    }
}

fn print_notes(reply: &ImportReply) {
    if reply.notes.is_empty() {
        println!("everything translated");
        return;
    }
    println!("not translated as written ({}):", reply.notes.len());
    for n in &reply.notes {
        println!("  {n}");
    }
}
