//! Readiness (`ReadyCheck=`): when a started process counts as ready, for the units that
//! require or want it (they start only then) and for `gitvisor start --wait`.
//!
//! - `none`: ready once started;
//! - `tcp:PORT`: once a connection to the port on the loopback address succeeds (tried every
//!   50 ms, IPv4 then IPv6);
//! - `log:REGEX`: once a line of the process's output matches (the task subscribes to the
//!   service's lines before the spawn, so no line is missed);
//! - `health`: at the first healthy probe (the task tells it, see `health.rs`);
//! - `Type=notify` (whatever `ReadyCheck=` says): at its `READY=1` (the task tells it, see
//!   `notify.rs`).
//!
//! A process not ready within `TimeoutStartSec=` (90 s by default; `infinity` waits forever) is
//! killed and its start fails, as systemd does with a start that times out.

use std::time::Duration;

use gitvisor_protocol::LogLine;
use gitvisor_units::{ReadyCheck, ServiceType, Unit};
use tokio::sync::broadcast;
use tokio::time::Instant;

const TCP_RETRY: Duration = Duration::from_millis(50);

enum Check {
    Tcp(u16),
    Log(regex::Regex, broadcast::Receiver<LogLine>),
    /// Told by the health probes.
    Health,
    /// Told by the service's `READY=1`.
    Notify,
    /// Told by the task when the start is done (a oneshot's commands, a forking service's
    /// start process): only the deadline runs here.
    Done,
}

/// What became of a readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ready,
    /// Not ready within `TimeoutStartSec=`: the reason to kill it for.
    TimedOut(String),
}

/// The readiness of one process.
pub struct Readiness {
    check: Option<Check>,
    pub ready: bool,
    deadline: Option<Instant>,
    /// `ReadyCheck=…` as written, for messages.
    what: String,
    timeout: Duration,
}

/// What the unit's readiness check needs before the spawn: the subscription to its output.
pub fn needs_output(unit: &Unit) -> bool {
    matches!(unit.ready, ReadyCheck::Log(_))
}

impl Readiness {
    /// The readiness of a process of `unit` that starts now; `output`: its lines, subscribed
    /// before the spawn (for `log:`).
    pub fn starting(unit: &Unit, output: Option<broadcast::Receiver<LogLine>>) -> Readiness {
        if unit.service_type == ServiceType::Notify {
            let timeout = unit.timeout_start;
            let deadline = Instant::now().checked_add(timeout);
            let what = "Type=notify, READY=1".to_string();
            return Readiness { check: Some(Check::Notify), ready: false, deadline, what, timeout };
        }
        let (check, what) = match &unit.ready {
            ReadyCheck::None => (None, String::new()),
            ReadyCheck::Tcp(port) => (Some(Check::Tcp(*port)), format!("ReadyCheck=tcp:{port}")),
            ReadyCheck::Health => (Some(Check::Health), "ReadyCheck=health".into()),
            ReadyCheck::Log(pattern) => {
                // Validated when the unit was loaded; a failure here leaves the check to time out.
                let check = regex::Regex::new(pattern).ok().zip(output).map(|(r, rx)| Check::Log(r, rx));
                (check, format!("ReadyCheck=log:{pattern}"))
            }
        };
        let ready = matches!(unit.ready, ReadyCheck::None);
        let timeout = unit.timeout_start;
        let deadline = (!ready).then(|| Instant::now().checked_add(timeout)).flatten();
        Readiness { check, ready, deadline, what, timeout }
    }

    /// A start the task ends itself (a oneshot's commands, a forking service's start process):
    /// never ready here, timed out past `TimeoutStartSec=` (`what` says what is awaited).
    pub fn until_done(unit: &Unit, what: &str) -> Readiness {
        let timeout = unit.timeout_start;
        let deadline = Instant::now().checked_add(timeout);
        Readiness { check: Some(Check::Done), ready: false, deadline, what: what.to_string(), timeout }
    }

    /// A process adopted from an earlier engine: it was started long ago; ready.
    pub fn adopted() -> Readiness {
        Readiness { check: None, ready: true, deadline: None, what: String::new(), timeout: Duration::MAX }
    }

    /// The health probes found it healthy.
    pub fn healthy(&mut self) -> Option<Event> {
        if !self.ready && matches!(self.check, Some(Check::Health)) {
            self.ready = true;
            return Some(Event::Ready);
        }
        None
    }

    /// The service sent `READY=1`.
    pub fn notified(&mut self) -> Option<Event> {
        if !self.ready && matches!(self.check, Some(Check::Notify)) {
            self.ready = true;
            return Some(Event::Ready);
        }
        None
    }

    pub fn describe(&self) -> &str {
        &self.what
    }

    /// The next event: never once ready. Cancel-safe (each attempt starts over).
    pub async fn next(&mut self) -> Event {
        if self.ready {
            return std::future::pending().await;
        }
        let deadline = self.deadline;
        let check = &mut self.check;
        let timed_out = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let became_ready = async {
            match check {
                Some(Check::Tcp(port)) => loop {
                    if connects(*port).await {
                        return;
                    }
                    tokio::time::sleep(TCP_RETRY).await;
                },
                Some(Check::Log(regex, rx)) => loop {
                    match rx.recv().await {
                        Ok(line) if line.stream != "gitvisor" && regex.is_match(&line.text) => return,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    }
                },
                Some(Check::Health | Check::Notify | Check::Done) | None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = became_ready => {
                self.ready = true;
                Event::Ready
            }
            () = timed_out => Event::TimedOut(format!(
                "not ready within {} ({})",
                humantime::format_duration(self.timeout),
                self.what
            )),
        }
    }
}

async fn connects(port: u16) -> bool {
    for host in ["127.0.0.1", "::1"] {
        if tokio::net::TcpStream::connect((host, port)).await.is_ok() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::units::test_service as unit;

    #[tokio::test]
    async fn tcp_is_ready_once_the_port_listens_and_times_out_otherwise() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r =
            Readiness::starting(&unit(&format!("ReadyCheck=tcp:{port}\nTimeoutStartSec=200ms")), None);
        assert!(!r.ready);
        assert_eq!(
            r.next().await,
            Event::TimedOut(format!("not ready within 200ms (ReadyCheck=tcp:{port})"))
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut r = Readiness::starting(&unit(&format!("ReadyCheck=tcp:{port}")), None);
        assert_eq!(r.next().await, Event::Ready);
        assert!(r.ready);
    }

    #[tokio::test]
    async fn log_is_ready_at_a_matching_line_of_the_service_not_of_the_engine() {
        let (tx, rx) = broadcast::channel(16);
        let mut r = Readiness::starting(&unit("ReadyCheck=log:listening on :\\d+"), Some(rx));
        let line = |stream: &str, text: &str| LogLine { at_us: 1, stream: stream.into(), text: text.into() };
        tx.send(line("gitvisor", "started process 1: app listening on :80")).unwrap();
        tx.send(line("out", "loading")).unwrap();
        tx.send(line("err", "listening on :8080")).unwrap();
        assert_eq!(r.next().await, Event::Ready);
    }

    #[test]
    fn none_is_ready_at_once_and_health_when_told() {
        assert!(Readiness::starting(&unit(""), None).ready);
        let mut r = Readiness::starting(&unit("HealthCheckURL=http://127.0.0.1:1/\nReadyCheck=health"), None);
        assert!(!r.ready);
        assert_eq!(r.healthy(), Some(Event::Ready));
        assert_eq!(r.healthy(), None, "told once");
    }

    #[test]
    fn notify_is_ready_when_told_whatever_ready_check_says() {
        let mut r = Readiness::starting(&unit("Type=notify\nReadyCheck=tcp:1"), None);
        assert!(!r.ready);
        assert_eq!(r.healthy(), None);
        assert_eq!(r.notified(), Some(Event::Ready));
        assert_eq!(r.notified(), None, "told once");
        assert_eq!(Readiness::starting(&unit(""), None).notified(), None);
    }
}
