//! Health probes (`HealthCheckURL=`, SPEC sections 2 and 5), owned by the service's own task.
//!
//! While the service runs, its task keeps a [`Prober`]: one probe at a time, `interval` after the
//! last one ended, an HTTP GET cut at `timeout`; 2xx is healthy. The probe is a future the task
//! polls beside its exit and timer, so one service's probe never waits for another's, nothing
//! is left behind when the service stops (the future is dropped), and a service without a URL
//! has no prober at all. After `retries` consecutive failures the task hands the machine
//! `Input::Unhealthy`: the service is killed and restarted through the normal restart path.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use gitvisor_protocol::Health;
use gitvisor_units::Unit;
use http_body_util::Empty;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

/// When and how a service is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before the service is restarted.
    pub retries: u32,
}

impl ProbePlan {
    /// The unit's probe, if it asks for one the engine can make (an `https://` URL is not
    /// probed, and status says so: see `unenforced`).
    pub fn of(unit: &Unit) -> Option<ProbePlan> {
        let h = &unit.health;
        h.url.as_ref().filter(|u| u.starts_with("http://")).map(|url| ProbePlan {
            url: url.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries.max(1),
        })
    }
}

/// What the probes found so far, for status and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthView {
    pub health: Health,
    /// Unix time in milliseconds of the last probe's end.
    pub checked_ms: Option<u64>,
    /// The last probe's failure, while failures are counted.
    pub error: Option<String>,
}

/// What a probe's result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do beyond showing the view.
    Keep,
    /// `retries` probes failed in a row: restart the service, for this reason.
    Restart(String),
}

type Probe = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The probe state of one running service.
pub struct Prober {
    pub plan: ProbePlan,
    pub view: HealthView,
    failures: u32,
    next: Instant,
    inflight: Option<Probe>,
}

impl Prober {
    /// Probing of a process that started now: the first probe comes one interval later.
    pub fn new(plan: ProbePlan) -> Prober {
        let next = Instant::now() + plan.interval;
        Prober { plan, view: HealthView::default(), failures: 0, next, inflight: None }
    }

    /// The next probe's result. Cancel-safe: dropped while a probe runs, the probe is kept and
    /// awaited next time.
    pub async fn next_result(&mut self) -> Result<(), String> {
        if self.inflight.is_none() {
            tokio::time::sleep_until(self.next).await;
            self.inflight = Some(Box::pin(probe(self.plan.url.clone(), self.plan.timeout)));
        }
        let result = self.inflight.as_mut().expect("a probe in flight").await;
        self.inflight = None;
        self.next = Instant::now() + self.plan.interval;
        result
    }

    /// Takes a probe's result (pure but for the clock in `now_ms`).
    pub fn take(&mut self, result: Result<(), String>, now_ms: u64) -> Verdict {
        self.view.checked_ms = Some(now_ms);
        match result {
            Ok(()) => {
                self.failures = 0;
                self.view.health = Health::Healthy;
                self.view.error = None;
                Verdict::Keep
            }
            Err(e) => {
                self.failures += 1;
                let retries = self.plan.retries;
                if self.failures >= retries {
                    self.view.health = Health::Unhealthy;
                    self.view.error = Some(e.clone());
                    let probes =
                        if retries == 1 { "1 probe".to_string() } else { format!("{retries} probes") };
                    return Verdict::Restart(format!("unhealthy: {probes} failed: {e}"));
                }
                self.view.error = Some(format!("{} of {retries} probes failed: {e}", self.failures));
                Verdict::Keep
            }
        }
    }
}

/// One probe: GET `url`, cut at `timeout`; Ok on a 2xx answer, else why not in a few words.
pub async fn probe(url: String, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get(&url)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
    }
}

async fn get(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// probes are supported (no TLS in the engine)"));
    }
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?.trim_matches(['[', ']']).to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| io_text(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host).to_string();
    let request = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, concat!("gitvisor-health/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    // The connection is driven beside the request; both end with this probe. It may finish
    // first (the server closed after answering): the answer is then already taken.
    let send = sender.send_request(request);
    tokio::pin!(send, conn);
    let mut conn_done = false;
    let answer = loop {
        tokio::select! {
            biased;
            r = &mut send => break r.map_err(|e| e.to_string())?,
            r = &mut conn, if !conn_done => {
                conn_done = true;
                r.map_err(|e| e.to_string())?;
            }
        }
    };
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn plan(retries: u32) -> ProbePlan {
        ProbePlan {
            url: "http://127.0.0.1:1/".into(),
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(100),
            retries,
        }
    }

    #[test]
    fn a_restart_comes_after_exactly_the_retries_and_a_success_forgives() {
        let mut p = Prober::new(plan(3));
        assert_eq!(p.take(Err("HTTP 500".into()), 1), Verdict::Keep);
        assert_eq!(p.view.error.as_deref(), Some("1 of 3 probes failed: HTTP 500"));
        assert_eq!(p.view.health, Health::Unknown);
        assert_eq!(p.take(Err("HTTP 500".into()), 2), Verdict::Keep);
        // A success in between starts the count again.
        assert_eq!(p.take(Ok(()), 3), Verdict::Keep);
        assert_eq!(
            (p.view.health, p.view.error.clone(), p.view.checked_ms),
            (Health::Healthy, None, Some(3))
        );
        for _ in 0..2 {
            assert_eq!(p.take(Err("connection refused".into()), 4), Verdict::Keep);
        }
        assert_eq!(
            p.take(Err("connection refused".into()), 5),
            Verdict::Restart("unhealthy: 3 probes failed: connection refused".into())
        );
        assert_eq!(p.view.health, Health::Unhealthy);
        assert_eq!(
            Prober::new(plan(1)).take(Err("HTTP 503".into()), 1),
            Verdict::Restart("unhealthy: 1 probe failed: HTTP 503".into())
        );
    }

    /// A one-connection HTTP server answering `answer`, or never when `None`.
    fn server(answer: Option<&'static str>) -> (String, std::thread::JoinHandle<()>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/health?x=1", l.local_addr().unwrap().port());
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(head.starts_with("GET /health?x=1 HTTP/1.1\r\n"), "{head}");
            match answer {
                Some(a) => s.write_all(a.as_bytes()).unwrap(),
                None => std::thread::sleep(Duration::from_secs(60)),
            }
        });
        (url, t)
    }

    #[tokio::test]
    async fn probes_read_the_status_and_are_cut_at_their_timeout() {
        let (url, t) = server(Some("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"));
        assert_eq!(probe(url, Duration::from_secs(30)).await, Ok(()));
        t.join().unwrap();
        let (url, t) = server(Some("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"));
        assert_eq!(probe(url, Duration::from_secs(30)).await, Err("HTTP 500".into()));
        t.join().unwrap();
        let (url, _hangs) = server(None);
        let started = std::time::Instant::now();
        assert_eq!(probe(url, Duration::from_millis(200)).await, Err("no answer within 200ms".into()));
        assert!(started.elapsed() < Duration::from_secs(30), "cut at the timeout, not at the server's end");
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let refused = probe(format!("http://127.0.0.1:{free}/"), Duration::from_secs(30)).await;
        assert_eq!(refused, Err("connection refused".into()));
        let https = probe("https://127.0.0.1/".into(), Duration::from_secs(1)).await;
        assert!(https.unwrap_err().contains("only http:// probes are supported"));
    }
}
