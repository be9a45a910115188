use std::process::ExitCode;
use std::time::Duration;

use gitvisor_protocol::{Client, ServiceName, Status};

use super::Result;
use crate::output::{cpu_time, memory, short_duration, table};

/// `8080,5353/udp`: each port once, whatever addresses it is bound on.
fn ports(list: &[gitvisor_protocol::ListeningPort]) -> String {
    let mut labels: Vec<String> = Vec::new();
    for p in list {
        let label = p.label();
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels.join(",")
}

/// `status --watch`: the table again every 2 s, from the top of the screen, until Ctrl-C.
pub async fn watch(client: &mut Client, names: Vec<String>) -> Result<ExitCode> {
    loop {
        // Clear the screen and go home, as `watch(1)` does.
        print!("\x1b[H\x1b[2J");
        run(client, names.clone(), false).await?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

pub async fn run(client: &mut Client, names: Vec<String>, json: bool) -> Result<ExitCode> {
    let reply = client.call(Status { names: ServiceName::list(&names) }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
            as u64;
    let rows: Vec<Vec<String>> = reply
        .services
        .iter()
        .map(|s| {
            let uptime = s
                .started_ms
                .map(|t| short_duration(Duration::from_millis(now.saturating_sub(t))))
                .unwrap_or_default();
            // What the service says of itself (`STATUS=`) unless something is wrong.
            let mut note = s.error.clone().or_else(|| s.status_text.clone()).unwrap_or_default();
            if let Some(op) = &s.busy {
                note = format!("{op} in progress {note}").trim().to_string();
            }
            // A watched service that crashed after a change: the change is the likely cause.
            if let Some(c) = s.watch.as_ref().and_then(|w| w.crashed_after_change.as_ref()) {
                note = format!("{c}; {note}").trim_end_matches("; ").to_string();
            }
            // The last exit and how long ago, as the window shows it.
            let last_exit = s
                .last_exit
                .as_ref()
                .map(|e| {
                    let ago = short_duration(Duration::from_millis(now.saturating_sub(e.at_ms)));
                    format!("{} ({ago} ago)", e.describe())
                })
                .unwrap_or_else(|| "-".into());
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                s.name.clone(),
                crate::output::state_label(s.state),
                dash(s.pid.map(|p| p.to_string())),
                if uptime.is_empty() { "-".into() } else { uptime },
                s.restarts.to_string(),
                dash(s.cpu_ms.map(cpu_time)),
                dash(s.cpu_percent.map(|p| format!("{p:.0}%"))),
                dash(s.memory_kb.map(memory)),
                dash(Some(ports(&s.ports)).filter(|p| !p.is_empty())),
                format!("{:?}", s.health).to_lowercase(),
                if s.enabled { "yes" } else { "no" }.into(),
                last_exit,
                note,
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No services. Add NAME.service files to the services directory.");
    } else {
        let header = [
            "NAME",
            "STATE",
            "PID",
            "UPTIME",
            "RESTARTS",
            "CPU",
            "CPU%",
            "MEM",
            "PORTS",
            "HEALTH",
            "ENABLED",
            "LAST EXIT",
            "NOTE",
        ];
        println!("{}", table(&header, &rows));
    }
    if let Some(c) = &reply.commit {
        println!("commit: {} on {}", &c[..c.len().min(10)], reply.branch.as_deref().unwrap_or("?"));
    }
    if let Some(p) = &reply.repo_problem {
        println!("repository: {p}");
    }
    for p in &reply.pending {
        println!("pending ({}): {} (uncommitted, not running)", p.change, p.file);
    }
    for p in &reply.problems {
        println!("problem: {p}");
    }
    for i in &reply.invalid {
        println!("invalid: {i}");
    }
    // How watched services' files are watched, and what last restarted them.
    for s in &reply.services {
        let Some(w) = &s.watch else { continue };
        let dirs = if w.directories == 1 {
            "1 directory".to_string()
        } else {
            format!("{} directories", w.directories)
        };
        let mut line = match w.mode.as_str() {
            "inotify" => format!("watch: {}: {dirs}", s.name),
            "polling" => format!("watch: {}: polling {dirs}", s.name),
            other => format!("watch: {}: {other}", s.name),
        };
        if let Some(n) = &w.note {
            line.push_str(&format!(" ({n})"));
        }
        if let Some(c) = &w.last_change {
            let ago = short_duration(Duration::from_millis(now.saturating_sub(c.at_ms)));
            line.push_str(&format!("; restarted {ago} ago after a change to {}", c.describe()));
        }
        println!("{line}");
    }
    // What a unit asks for and does not get: said each time, so nobody believes otherwise.
    for s in &reply.services {
        for u in &s.unenforced {
            println!("not enforced: {}: {u}", s.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
