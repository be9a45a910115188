//! Following services' logs: the lines after a tail, for every reader (the socket's `logs -f`,
//! the tray's window), of one service or of several interleaved as they come.

use std::collections::HashMap;

use gitvisor_protocol::{LogLine, ServiceLogLine};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{StreamExt, StreamMap};

/// What the followed services print after the tail their reader was given.
pub struct LogFollow {
    streams: StreamMap<String, BroadcastStream<LogLine>>,
    /// The tail's last line: lines before it were already given.
    last_us: u64,
    /// Each service's last line in the tail: its lines up to it were given (one service's lines
    /// have strictly increasing times; two services' may share one).
    given: HashMap<String, u64>,
}

impl LogFollow {
    /// Each receiver must be subscribed before `tail` is read, so no line falls between the two.
    pub(crate) fn new(
        receivers: Vec<(String, broadcast::Receiver<LogLine>)>,
        tail: &[ServiceLogLine],
    ) -> LogFollow {
        let streams = receivers.into_iter().map(|(name, rx)| (name, BroadcastStream::new(rx))).collect();
        let last_us = tail.last().map(|l| l.line.at_us).unwrap_or(0);
        let mut given = HashMap::new();
        for l in tail {
            given.insert(l.name.clone(), l.line.at_us);
        }
        LogFollow { streams, last_us, given }
    }

    /// The next line of any followed service; a reader too slow to keep up gets a `gitvisor`
    /// note saying how many lines it missed. `None` once every followed log is gone.
    pub async fn next(&mut self) -> Option<ServiceLogLine> {
        loop {
            let (name, item) = self.streams.next().await?;
            let line = match item {
                Ok(line) if line.at_us < self.last_us => continue,
                Ok(line) if self.given.get(&name).is_some_and(|g| line.at_us <= *g) => continue,
                Ok(line) => line,
                Err(BroadcastStreamRecvError::Lagged(missed)) => LogLine {
                    at_us: crate::time::now_us(),
                    stream: "gitvisor".into(),
                    text: format!("[{missed} lines skipped: this reader is too slow]"),
                },
            };
            return Some(ServiceLogLine { name, line });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_us: u64, text: &str) -> LogLine {
        LogLine { at_us, stream: "out".into(), text: text.into() }
    }

    #[tokio::test]
    async fn a_line_already_in_the_tail_is_not_given_again() {
        let (tx, rx) = broadcast::channel(16);
        let (other_tx, other_rx) = broadcast::channel(16);
        let tail = vec![
            ServiceLogLine { name: "web".into(), line: line(5, "in the tail") },
            ServiceLogLine { name: "api".into(), line: line(7, "last of the tail") },
        ];
        let mut follow = LogFollow::new(vec![("web".into(), rx), ("api".into(), other_rx)], &tail);
        // Pushed between the subscription and the reading of the tail: sent again.
        other_tx.send(line(7, "last of the tail")).unwrap();
        // Another service's line at the very same time is new.
        tx.send(line(7, "web at the same time")).unwrap();
        other_tx.send(line(8, "new")).unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(follow.next().await.unwrap().line.text);
        }
        got.sort();
        assert_eq!(got, ["new", "web at the same time"]);
    }
}
