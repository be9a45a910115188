//! A log file's lines: `TIMESTAMP STREAM TEXT`, written by the keeper and read back by the
//! engine (tails at start-up, `gitvisor logs`) and by a keeper that replaces another.

use std::path::{Path, PathBuf};

use gitvisor_protocol::LogLine;

use crate::time::format_us;

pub fn format_line(l: &LogLine) -> String {
    format!("{} {} {}", format_us(l.at_us), l.stream, l.text)
}

/// Log file of a service (the keeper and the engine agree on it).
pub fn log_path(logs: &Path, service: &str) -> PathBuf {
    logs.join(format!("{service}.log"))
}

/// A service's lines get strictly increasing times (a microsecond apart when they come faster,
/// or the clock steps back), so a line's time identifies it: the engine skips a forwarded line
/// it already read from the file by its time alone.
pub fn next_stamp(last: u64, now: u64) -> u64 {
    now.max(last.saturating_add(1))
}

/// The last `n` lines of the service's log files (newest file first, then rotated ones).
pub fn read_file_tail(logs_dir: &Path, service: &str, n: usize) -> Vec<LogLine> {
    let path = log_path(logs_dir, service);
    let mut out: Vec<LogLine> = Vec::new();
    let mut k = 0;
    while out.len() < n {
        let p = if k == 0 { path.clone() } else { crate::file::rotated(&path, k) };
        let Ok(text) = std::fs::read(&p) else { break };
        let text = String::from_utf8_lossy(&text);
        let mut lines: Vec<LogLine> = text.lines().rev().take(n - out.len()).filter_map(parse_line).collect();
        lines.reverse();
        lines.extend(out);
        out = lines;
        k += 1;
        if k > 1000 {
            break;
        }
    }
    out
}

/// Parses a line written by the keeper back into its parts.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let (ts, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let at = humantime::parse_rfc3339(ts).ok()?;
    let at_us = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros() as u64;
    Some(LogLine { at_us, stream: stream.to_string(), text: text.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_round_trip() {
        let l = LogLine { at_us: 1_700_000_000_000_001, stream: "out".into(), text: "a b  c".into() };
        assert_eq!(parse_line(&format_line(&l)), Some(l));
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn file_tail_spans_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |i: u64| {
            format_line(&LogLine {
                at_us: 1_700_000_000_000_000 + i,
                stream: "out".into(),
                text: i.to_string(),
            })
        };
        let main: String = (5..8).map(|i| mk(i) + "\n").collect();
        let old: String = (0..5).map(|i| mk(i) + "\n").collect();
        std::fs::write(dir.path().join("s.log"), main).unwrap();
        std::fs::write(dir.path().join("s.log.1"), old).unwrap();
        let got: Vec<String> = read_file_tail(dir.path(), "s", 6).into_iter().map(|l| l.text).collect();
        assert_eq!(got, vec!["2", "3", "4", "5", "6", "7"]);
    }

    #[test]
    fn a_services_lines_get_strictly_increasing_times() {
        assert_eq!(next_stamp(10, 50), 50);
        // Faster than the clock, or a clock stepped back: just after the newest.
        assert_eq!(next_stamp(50, 50), 51);
        assert_eq!(next_stamp(50, 20), 51);
        let mut last = 0;
        let stamps: Vec<u64> = (0..5)
            .map(|_| {
                last = next_stamp(last, 7);
                last
            })
            .collect();
        assert_eq!(stamps, [7, 8, 9, 10, 11]);
    }

    #[test]
    fn line_format_is_timestamp_stream_text() {
        let l = LogLine { at_us: 1_700_000_000_123_456, stream: "err".into(), text: "boom".into() };
        assert_eq!(format_line(&l), "2023-11-14T22:13:20.123456Z err boom");
    }
}
