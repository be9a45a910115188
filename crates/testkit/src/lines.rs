//! A child process's output read line by line with a deadline, and the engine's event stream
//! (`gitvisor events --json`) on top of it.
//!
//! A thread reads the child's stdout into a channel, so a read can give up: a blocking
//! `read_line` on a child that never prints would hang the test instead of failing it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::wait::DEADLINE;
use crate::Home;

/// A child process whose stdout lines arrive as it prints them. Dropping it kills the child.
pub struct ChildLines {
    child: Child,
    lines: Receiver<String>,
    what: String,
}

impl ChildLines {
    /// Spawns `cmd` with its stdout piped; `what` names it in failures.
    pub fn spawn(mut cmd: Command, what: &str) -> ChildLines {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        ChildLines { child, lines, what: what.to_string() }
    }

    /// The next line, if one comes within `timeout` (and the output has not ended).
    pub fn next_within(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next line; panics if none comes within [`DEADLINE`] or the output ends.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("{} printed no line within {DEADLINE:?}", self.what),
            Err(RecvTimeoutError::Disconnected) => panic!("{} ended its output", self.what),
        }
    }
}

impl Drop for ChildLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The engine's events as `gitvisor events --json` prints them, one JSON value each.
pub struct EventStream(ChildLines);

impl EventStream {
    /// Starts following the events of the engine owning `home`. The stream is live once the
    /// client has subscribed, which cannot be seen from here: a test that needs an event caused
    /// after this call repeats its cause until the event comes.
    pub fn open(home: &Home) -> EventStream {
        let mut cmd = home.cmd();
        cmd.args(["events", "--json"]);
        EventStream(ChildLines::spawn(cmd, "gitvisor events --json"))
    }

    /// The next event, if one comes within `timeout`.
    pub fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        self.0.next_within(timeout).map(|l| parse(&l))
    }

    /// The next event for which `pred` holds, skipping the others; panics naming `what` if none
    /// comes within [`DEADLINE`].
    pub fn next_matching(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.0.next_within(left) else {
                panic!("no event {what} within {DEADLINE:?} (or the stream ended)")
            };
            let event = parse(&line);
            if pred(&event) {
                return event;
            }
        }
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("an event that is not JSON ({e}): {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_in_order_and_the_end_is_seen() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo one; echo two"]);
        let mut lines = ChildLines::spawn(cmd, "sh");
        assert_eq!(lines.next_line(), "one");
        assert_eq!(lines.next_line(), "two");
        assert_eq!(lines.next_within(DEADLINE), None, "the output ended");
    }
}
