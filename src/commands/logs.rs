//! `logs`: one service's output, or several services' interleaved by time with each line
//! prefixed by its service; `-f` follows them.

use std::io::Write;
use std::process::ExitCode;

use gitvisor_engine::logs::lines::format_line;
use gitvisor_protocol::{Client, Logs, ServiceLogLine, ServiceName};

use super::Result;

pub async fn run(
    client: &mut Client,
    names: Vec<ServiceName>,
    lines: usize,
    follow: bool,
) -> Result<ExitCode> {
    // One service reads as its own log; several (or all) carry a name column.
    let one = names.len() == 1;
    let reply = client.call(Logs { names, lines, follow }).await?;
    let width = reply.lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for l in &reply.lines {
        writeln!(out, "{}", line(l, one, width))?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut width = width;
    while let Some(l) = client.next::<ServiceLogLine>().await? {
        width = width.max(l.name.len());
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", line(&l, one, width))?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn line(l: &ServiceLogLine, one: bool, width: usize) -> String {
    if one {
        format_line(&l.line)
    } else {
        format!("{:<width$} | {}", l.name, format_line(&l.line))
    }
}
