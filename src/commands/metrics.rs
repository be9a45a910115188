use std::process::ExitCode;

use gitvisor_protocol::{Client, Metrics, ServiceName};

use super::Result;
use crate::output::{memory, table};

/// `gitvisor metrics`: per service the last CPU % and memory, their peaks over the samples
/// kept, and a sparkline of each (oldest on the left).
pub async fn run(client: &mut Client, names: Vec<String>, json: bool) -> Result<ExitCode> {
    let reply = client.call(Metrics { names: ServiceName::list(&names) }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = reply
        .services
        .iter()
        .map(|m| {
            let cpu: Vec<f64> = m.samples.iter().map(|s| s.cpu_percent).collect();
            let mem: Vec<f64> = m.samples.iter().map(|s| s.memory_kb as f64).collect();
            let last = m.samples.last();
            let peak = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                m.name.clone(),
                m.samples.len().to_string(),
                dash(last.map(|s| format!("{:.0}%", s.cpu_percent))),
                dash((!cpu.is_empty()).then(|| format!("{:.0}%", peak(&cpu)))),
                spark(&cpu, 100.0),
                dash(last.map(|s| memory(s.memory_kb))),
                dash((!mem.is_empty()).then(|| memory(peak(&mem) as u64))),
                spark(&mem, 0.0),
            ]
        })
        .collect();
    let header = ["NAME", "SAMPLES", "CPU%", "PEAK", "CPU", "MEM", "PEAK", "MEMORY"];
    println!("{}", table(&header, &rows));
    Ok(ExitCode::SUCCESS)
}

/// The last 30 values as block characters, scaled to `max` (at least the largest value).
fn spark(values: &[f64], max: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = &values[values.len().saturating_sub(30)..];
    let top = values.iter().copied().fold(max, f64::max);
    if values.is_empty() || top <= 0.0 {
        return "-".into();
    }
    values.iter().map(|v| BARS[((v / top) * 7.0).round().clamp(0.0, 7.0) as usize]).collect()
}
