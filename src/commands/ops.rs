use std::process::ExitCode;

use gitvisor_protocol::{Client, Method, OpReply};

use super::Result;

/// `start`, `stop` or `restart`: one line per service; exit 1 if any failed.
pub async fn run<M: Method<Reply = OpReply>>(client: &mut Client, op: M) -> Result<ExitCode> {
    let reply = client.call(op).await?;
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
