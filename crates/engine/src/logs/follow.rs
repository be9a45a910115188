//! Following services' logs: the lines after a tail, for every reader (the socket's `logs -f`,
//! the tray's window), of one service or of several interleaved as they come.

use gitvisor_protocol::{LogLine, ServiceLogLine};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{StreamExt, StreamMap};

/// What the followed services print after the tail their reader was given.
pub struct LogFollow {
    streams: StreamMap<String, BroadcastStream<LogLine>>,
    /// The tail's last line: lines up to it were already given.
    last_us: u64,
}

impl LogFollow {
    /// Each receiver must be subscribed before the tail ending at `last_us` is read, so no
    /// line falls between the two.
    pub(crate) fn new(receivers: Vec<(String, broadcast::Receiver<LogLine>)>, last_us: u64) -> LogFollow {
        let streams = receivers.into_iter().map(|(name, rx)| (name, BroadcastStream::new(rx))).collect();
        LogFollow { streams, last_us }
    }

    /// The next line of any followed service; a reader too slow to keep up gets a `gitvisor`
    /// note saying how many lines it missed. `None` once every followed log is gone.
    pub async fn next(&mut self) -> Option<ServiceLogLine> {
        loop {
            let (name, item) = self.streams.next().await?;
            let line = match item {
                Ok(line) if line.at_us < self.last_us => continue,
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
