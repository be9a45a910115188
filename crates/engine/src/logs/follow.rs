//! Following a service's log: the lines after a tail, for every reader (the socket's
//! `logs -f`, the tray's window).

use gitvisor_protocol::LogLine;
use tokio::sync::broadcast;

/// What a service prints after the tail its reader was given.
pub struct LogFollow {
    rx: broadcast::Receiver<LogLine>,
    /// The tail's last line: lines up to it were already given.
    last_us: u64,
}

impl LogFollow {
    /// `rx` must be subscribed before the tail ending at `last_us` is read, so no line falls
    /// between the two.
    pub(crate) fn new(rx: broadcast::Receiver<LogLine>, last_us: u64) -> LogFollow {
        LogFollow { rx, last_us }
    }

    /// The next line; a reader too slow to keep up gets a `gitvisor` note saying how many
    /// lines it missed. `None` once the service's log is gone.
    pub async fn next(&mut self) -> Option<LogLine> {
        loop {
            match self.rx.recv().await {
                Ok(line) if line.at_us < self.last_us => {}
                Ok(line) => return Some(line),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Some(LogLine {
                        at_us: crate::time::now_us(),
                        stream: "gitvisor".into(),
                        text: format!("[{missed} lines skipped: this reader is too slow]"),
                    })
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
