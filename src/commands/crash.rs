//! `crash list|show|export|rm` and `capture`.

use std::process::ExitCode;

use gitvisor_protocol::{
    Capture, Client, CrashExport, CrashList, CrashRm, CrashShow, CrashShowReply, ServiceName,
};
use serde_json::Value;

use super::Result;
use crate::args::CrashCmd;
use crate::output::{table, visible};

pub async fn run(client: &mut Client, cmd: CrashCmd) -> Result<ExitCode> {
    match cmd {
        CrashCmd::List { service, json } => {
            let reply = client.call(CrashList { service: service.as_deref().map(ServiceName::new) }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply.reports)?);
            } else if reply.reports.is_empty() {
                println!("No crash reports.");
            } else {
                let rows: Vec<Vec<String>> = reply
                    .reports
                    .iter()
                    .map(|r| {
                        vec![r.id.clone(), r.service.clone(), r.time.clone(), r.reason.clone(), size(r.size)]
                    })
                    .collect();
                println!("{}", table(&["ID", "SERVICE", "TIME", "REASON", "SIZE"], &rows));
            }
        }
        CrashCmd::Show { id, json } => {
            let reply = client.call(CrashShow { id }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
                return Ok(ExitCode::SUCCESS);
            }
            show(&reply);
        }
        CrashCmd::Export { id, path } => {
            let path = if path.is_absolute() { path } else { std::env::current_dir()?.join(path) };
            let reply = client.call(CrashExport { id, path: path.display().to_string() }).await?;
            println!("exported to {}", reply.path);
        }
        CrashCmd::Rm { id, all } => {
            let reply = client.call(CrashRm { id, all }).await?;
            println!(
                "removed {} report{}",
                reply.removed.len(),
                if reply.removed.len() == 1 { "" } else { "s" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn capture(client: &mut Client, name: String) -> Result<ExitCode> {
    let reply = client.call(Capture { name: ServiceName::new(&name) }).await?;
    println!("{} ({})", reply.id, reply.path);
    Ok(ExitCode::SUCCESS)
}

fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// A modified file's diff under it, as report.json holds it, and the note on it (why there is
/// none, or that it was cut). The file's text is shown, never sent to the terminal as it is: its
/// control characters (an escape sequence, a CR) are written visibly.
fn print_diff(m: &Value) {
    if let Some(diff) = m["diff"].as_str() {
        // Split on LF only: a CRLF line keeps its CR, shown as ^M.
        for line in diff.strip_suffix('\n').unwrap_or(diff).split('\n') {
            println!("        {}", visible(line));
        }
    }
    if let Some(note) = m["diff_note"].as_str() {
        println!("        ({})", visible(note));
    }
}

fn show(r: &CrashShowReply) {
    let rep = &r.report;
    let s = |k: &str| rep.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    println!("{}", r.id);
    println!("  service:    {} ({})", s("service"), s("unit_file"));
    println!("  reason:     {}", s("reason"));
    println!("  commit:     {}", s("commit"));
    println!("  started:    {}", s("started_at"));
    println!("  exited:     {}", s("exited_at"));
    if let Some(u) = rep.get("uptime_ms").and_then(Value::as_u64) {
        println!("  uptime:     {} ms", u);
    }
    if let Some(m) = rep.get("peak_memory_kb").and_then(Value::as_u64) {
        println!("  peak RSS:   {m} KiB");
    }
    if let Some(c) = rep.get("cpu_time_ms").and_then(Value::as_u64) {
        println!("  CPU time:   {c} ms");
    }
    if let Some(n) = rep.get("suppressed").and_then(Value::as_u64).filter(|n| *n > 0) {
        println!("  suppressed: {n} reports of this crash loop not kept");
    }
    if let Some(note) = rep.pointer("/workdir/note").and_then(Value::as_str) {
        println!("  workdir:    {note}");
    }
    if let Some(ch) = rep.get("changes").filter(|c| !c.is_null()) {
        let list = |k: &str| ch.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        println!("  changes since start:");
        for a in list("added") {
            println!("    + {} ({} B)", a["path"].as_str().unwrap_or(""), a["size"]);
        }
        for m in list("modified") {
            println!(
                "    ~ {} ({} B -> {} B)",
                m["path"].as_str().unwrap_or(""),
                m["old_size"],
                m["new_size"]
            );
            print_diff(&m);
        }
        for d in list("removed") {
            println!("    - {} ({} B)", d["path"].as_str().unwrap_or(""), d["size"]);
        }
    }
    println!("  files:");
    for f in &r.files {
        println!("    {} ({})", f.path, size(f.size));
    }
}
