//! `maintenance status|run`: git maintenance of the repositories the engine keeps.

use std::process::ExitCode;

use gitvisor_protocol::{Client, MaintenanceRun, MaintenanceRunNow, MaintenanceStatus};

use super::Result;
use crate::args::MaintenanceCmd;
use crate::output::table;

/// How a finished run ended, in a few words.
pub fn outcome(r: &MaintenanceRun) -> String {
    match (r.duration_ms, r.exit_code, r.signal) {
        (None, _, _) => "running".into(),
        (Some(ms), Some(0), _) => format!("done in {ms} ms"),
        (Some(ms), Some(c), _) => format!("failed with status {c} after {ms} ms"),
        (Some(ms), None, Some(s)) => format!("killed by {} after {ms} ms", gitvisor_protocol::signal_name(s)),
        (Some(ms), None, None) => format!("could not run ({ms} ms)"),
    }
}

fn when(ms: u64) -> String {
    let s = gitvisor_engine::time::format_us(ms * 1000);
    s[..19].replace('T', " ")
}

pub async fn run(client: &mut Client, cmd: MaintenanceCmd) -> Result<ExitCode> {
    match cmd {
        MaintenanceCmd::Status { json } => {
            let s = client.call(MaintenanceStatus {}).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(ExitCode::SUCCESS);
            }
            let set = &s.settings;
            println!(
                "maintenance: {}; at most every {}; prune {}; gc.auto {}; {} at a time",
                if set["enabled"] == true { "enabled" } else { "disabled" },
                set["min_interval"].as_str().unwrap_or("?"),
                set["prune"].as_str().unwrap_or("?"),
                set["auto_threshold"],
                set["max_concurrent"],
            );
            println!("repositories: {}", s.repos.join(", "));
            let rows: Vec<Vec<String>> = s
                .running
                .iter()
                .chain(&s.runs)
                .map(|r| {
                    let last = r.output_tail.lines().last().unwrap_or("").to_string();
                    vec![
                        when(r.started_ms),
                        r.repo.clone(),
                        outcome(r),
                        if r.forced { "yes" } else { "no" }.into(),
                        last,
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no runs yet");
            } else {
                println!("{}", table(&["STARTED (UTC)", "REPOSITORY", "OUTCOME", "FORCED", "OUTPUT"], &rows));
            }
            if let Some(k) = &s.last_skip {
                println!("last skipped: {} at {}: {}", k.repo, when(k.at_ms), k.reason);
            }
        }
        MaintenanceCmd::Run => {
            let r = client.call(MaintenanceRunNow {}).await?;
            for repo in &r.started {
                println!("started: git gc --auto in {repo}");
            }
            for k in &r.skipped {
                println!("skipped {}: {}", k.repo, k.reason);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
