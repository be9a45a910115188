//! The in-memory tail of a service's output, bounded in lines and bytes.

use std::collections::VecDeque;

use gitvisor_protocol::LogLine;

pub const TAIL_LINES: usize = 1000;
pub const TAIL_BYTES: usize = 512 * 1024;

#[derive(Default)]
pub struct Tail {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

impl Tail {
    pub fn push(&mut self, line: LogLine) {
        self.bytes += line.text.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || self.bytes > TAIL_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len(),
                None => break,
            }
        }
    }

    pub fn last(&self, n: usize) -> Vec<LogLine> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine { at_us: 0, stream: "out".into(), text: text.into() }
    }

    #[test]
    fn keeps_the_last_lines_within_both_bounds() {
        let mut t = Tail::default();
        for i in 0..(TAIL_LINES + 10) {
            t.push(line(&i.to_string()));
        }
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t.last(1)[0].text, (TAIL_LINES + 9).to_string());
        let big = "y".repeat(TAIL_BYTES / 4);
        for _ in 0..10 {
            t.push(line(&big));
        }
        assert!(t.len() <= 4);
        assert_eq!(t.last(100).len(), t.len());
    }
}
