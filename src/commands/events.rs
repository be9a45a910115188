use std::io::Write;
use std::process::ExitCode;

use gitvisor_protocol::{Client, Event, EventKind, EventsSubscribe};

use super::Result;

pub async fn run(client: &mut Client, json: bool) -> Result<ExitCode> {
    client.call(EventsSubscribe {}).await?;
    while let Some(ev) = client.next::<Event>().await? {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(&ev)?)?;
        } else {
            writeln!(out, "{}", describe(&ev))?;
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn health_word(h: gitvisor_protocol::Health) -> &'static str {
    match h {
        gitvisor_protocol::Health::Unknown => "unknown",
        gitvisor_protocol::Health::Healthy => "healthy",
        gitvisor_protocol::Health::Unhealthy => "unhealthy",
    }
}

fn describe(ev: &Event) -> String {
    let t = gitvisor_engine::time::format_us(ev.at_ms * 1000);
    let what = match &ev.kind {
        EventKind::State { service, from, to, pid, reason } => {
            let mut s = format!("{service}: {from} -> {to}");
            if let Some(p) = pid {
                s.push_str(&format!(" (pid {p})"));
            }
            if let Some(r) = reason {
                s.push_str(&format!(": {r}"));
            }
            s
        }
        EventKind::Exited { service, pid, exit, expected, reason, .. } => {
            format!(
                "{service}: process {pid} {}{}{}",
                exit.describe(),
                if *expected { " (stopped)" } else { "" },
                reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
            )
        }
        EventKind::Health { service, health, error } => match error {
            Some(e) => format!("{service}: health {}: {e}", health_word(*health)),
            None => format!("{service}: health {}", health_word(*health)),
        },
        EventKind::Restarting { service, attempt, delay_ms } => {
            format!("{service}: restart #{attempt} in {delay_ms} ms")
        }
        EventKind::Adopted { service, pid } => format!("{service}: adopted process {pid}"),
        EventKind::FilesChanged { service, change } => {
            format!("{service}: {} changed: restarting", change.describe())
        }
        EventKind::SyncApplied { report } => {
            let short = |c: &Option<String>| {
                c.as_deref().map(|c| c[..c.len().min(10)].to_string()).unwrap_or_else(|| "(none)".into())
            };
            let mut s = format!("sync {} -> {}", short(&report.old), short(&report.new));
            if !report.actions.is_empty() {
                s.push_str(&format!(": {}", report.actions.join(", ")));
            }
            for e in &report.errors {
                s.push_str(&format!("; error: {e}"));
            }
            s
        }
        EventKind::CrashReport { service, id } => format!("{service}: crash report {id}"),
        EventKind::Maintenance { run } => {
            format!("git maintenance of {}: {}", run.repo, super::maintenance::outcome(run))
        }
        EventKind::EngineStarted { pid } => format!("engine {pid} started"),
        EventKind::EngineStopping => "engine stopping".into(),
        EventKind::Lagged { missed } => format!("({missed} events missed: reading too slowly)"),
    };
    format!("{t} {what}")
}
