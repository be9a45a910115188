use std::process::ExitCode;
use std::time::Duration;

use gitvisor_protocol::{Client, ServiceName, Status};

use super::Result;
use crate::output::{short_duration, table};

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
            let mut note = s.error.clone().unwrap_or_default();
            if let Some(op) = &s.busy {
                note = format!("{op} in progress {note}").trim().to_string();
            }
            vec![
                s.name.clone(),
                s.state.to_string(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                if uptime.is_empty() { "-".into() } else { uptime },
                s.restarts.to_string(),
                format!("{:?}", s.health).to_lowercase(),
                if s.enabled { "yes" } else { "no" }.into(),
                note,
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No services. Add NAME.service files to the services directory.");
    } else {
        println!(
            "{}",
            table(&["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "ENABLED", "NOTE"], &rows)
        );
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
    Ok(ExitCode::SUCCESS)
}
