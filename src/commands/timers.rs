use std::process::ExitCode;
use std::time::Duration;

use gitvisor_protocol::{Client, Timers};

use super::Result;
use crate::output::{short_duration, table};

/// `gitvisor timers`: as `systemctl list-timers`, next elapse first.
pub async fn run(client: &mut Client, json: bool) -> Result<ExitCode> {
    let mut reply = client.call(Timers {}).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    if reply.timers.is_empty() {
        println!("No timers. Add NAME.timer files to the services directory.");
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let now = now.as_millis() as u64;
    reply.timers.sort_by_key(|t| (t.next_ms.is_none(), t.next_ms));
    let when = |ms: Option<u64>| ms.map(local_time).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = reply
        .timers
        .iter()
        .map(|t| {
            let left = t.next_ms.map(|n| short_duration(Duration::from_millis(n.saturating_sub(now))));
            let passed = t
                .last_ms
                .map(|l| format!("{} ago", short_duration(Duration::from_millis(now.saturating_sub(l)))));
            let mut note = t.error.clone().unwrap_or_default();
            if !t.enabled {
                note = "not enabled (add [Install] WantedBy=timers.target)".into();
            }
            vec![
                when(t.next_ms),
                left.unwrap_or_else(|| "-".into()),
                when(t.last_ms),
                passed.unwrap_or_else(|| "-".into()),
                format!("{}.timer", t.name),
                format!("{}.service", t.unit),
                t.triggers.join(", "),
                note,
            ]
        })
        .collect();
    let header = ["NEXT", "LEFT", "LAST", "PASSED", "TIMER", "ACTIVATES", "TRIGGERS", "NOTE"];
    println!("{}", table(&header, &rows));
    Ok(ExitCode::SUCCESS)
}

/// Unix milliseconds as local `YYYY-MM-DD HH:MM:SS`.
fn local_time(ms: u64) -> String {
    gitvisor_units::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.to_zoned(gitvisor_units::local_zone()).strftime("%a %Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|_| "-".into())
}
