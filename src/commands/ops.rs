use std::process::ExitCode;

use gitvisor_protocol::{Client, Method, OpReply, ServiceName, Status};

use super::Result;
use crate::args::Names;

/// The services a command names, or every service for `--all`.
pub async fn names(client: &mut Client, n: Names) -> Result<Vec<ServiceName>> {
    if !n.all {
        return Ok(ServiceName::list(&n.names));
    }
    let status = client.call(Status::all()).await?;
    Ok(status.services.into_iter().map(|s| ServiceName::new(&s.name)).collect())
}

/// `start`, `stop` or `restart`: one line per service; exit 1 if any failed.
pub async fn run<M: Method<Reply = OpReply>>(client: &mut Client, op: M) -> Result<ExitCode> {
    let reply = client.call(op).await?;
    let mut failed = false;
    for r in &reply.results {
        let cause = r.cause.as_deref().map(|c| format!(" — {c}")).unwrap_or_default();
        if r.ok {
            let state = r.state.map(crate::output::state_label).unwrap_or_default();
            match r.pid {
                Some(pid) => println!("{}: {state} (pid {pid}){cause}", r.name),
                None => println!("{}: {state}{cause}", r.name),
            }
        } else {
            failed = true;
            eprintln!("gitvisor: {}: {}{cause}", r.name, r.error.as_deref().unwrap_or("failed"));
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
