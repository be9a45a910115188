use std::io::Write;
use std::process::ExitCode;

use gitvisor_engine::logs::keeper::format_line;
use gitvisor_protocol::{Client, LogNotification, LogsParams, LogsReply};

use super::Result;

pub async fn run(client: &mut Client, name: String, lines: usize, follow: bool) -> Result<ExitCode> {
    let params = LogsParams { name, lines, follow };
    let reply: LogsReply = client.call("logs", serde_json::to_value(params)?).await?;
    let mut out = std::io::stdout().lock();
    for l in &reply.lines {
        writeln!(out, "{}", format_line(l))?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    while let Some((method, params)) = client.notification().await? {
        if method == "log" {
            let n: LogNotification = serde_json::from_value(params)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", format_line(&n.line))?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
