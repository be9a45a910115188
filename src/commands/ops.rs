use std::process::ExitCode;

use gitvisor_protocol::{Client, NamesParams, OpReply};

use super::Result;

/// `start`, `stop` or `restart`: one line per service; exit 1 if any failed.
pub async fn run(client: &mut Client, method: &str, names: Vec<String>) -> Result<ExitCode> {
    let reply: OpReply = client.call(method, serde_json::to_value(NamesParams { names })?).await?;
    let mut failed = false;
    for r in &reply.results {
        if r.ok {
            let state = r.state.map(|s| s.to_string()).unwrap_or_default();
            match r.pid {
                Some(pid) => println!("{}: {state} (pid {pid})", r.name),
                None => println!("{}: {state}", r.name),
            }
        } else {
            failed = true;
            eprintln!("gitvisor: {}: {}", r.name, r.error.as_deref().unwrap_or("failed"));
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
