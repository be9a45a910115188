use std::io::Write;
use std::process::ExitCode;

use gitvisor_engine::logs::keeper::format_line;
use gitvisor_protocol::{Client, LogNotification, Logs, ServiceName};

use super::Result;

pub async fn run(client: &mut Client, name: String, lines: usize, follow: bool) -> Result<ExitCode> {
    let reply = client.call(Logs { name: ServiceName::new(&name), lines, follow }).await?;
    let mut out = std::io::stdout().lock();
    for l in &reply.lines {
        writeln!(out, "{}", format_line(l))?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    while let Some(n) = client.next::<LogNotification>().await? {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", format_line(&n.line))?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
