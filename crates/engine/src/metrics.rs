//! Per-service CPU and memory with a short history, sampled only while someone looks: a
//! `status` or `metrics` call samples every running service at most once a second (the window
//! asks every 2 s while it is open, `status --watch` likewise); nothing samples on a timer, so
//! an engine nobody asks costs nothing.
//!
//! A service's figures are its whole tree: every live process in its session (each service
//! leads its own) or its cgroup, counting for CPU the time of the children they reaped
//! (`cutime`/`cstime`), so work a service hands to short-lived children is its own. CPU % is
//! the growth of that total between two samples over the wall time between them (100 % is one
//! core). Each service keeps the last [`RING`] samples.
//!
//! The same read gives each running service's listening ports: the sockets its tree's
//! processes hold among the kernel's listening ones (`ports.rs`), kept with the figures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gitvisor_protocol::{ListeningPort, MetricSample};

/// Samples kept per service: 10 minutes at the window's 2 s.
pub const RING: usize = 300;
/// Calls closer than this share a sample.
const MIN_INTERVAL: Duration = Duration::from_millis(900);

/// What the engine knows to sample: a running service's main process and, with a cgroup, its
/// members.
pub struct Target {
    pub name: String,
    pub main_pid: u32,
    pub cgroup_pids: Vec<u32>,
}

/// A service's figures now: CPU time so far (ms), CPU % since the previous sample (none at the
/// first), resident memory (KiB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub cpu_ms: u64,
    pub cpu_percent: Option<f64>,
    pub memory_kb: u64,
}

#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: Option<Instant>,
    series: HashMap<String, Series>,
}

/// One service's samples.
#[derive(Default)]
struct Series {
    ring: VecDeque<MetricSample>,
    /// The tree's CPU total at the previous sample, with when and for which main process (a
    /// new process starts a new count).
    previous: Option<(Instant, u32, u64)>,
    latest: Option<Latest>,
    /// The ports its processes listened on at the last sample.
    ports: Vec<ListeningPort>,
}

impl Series {
    /// Adds a sample of the tree of `main_pid`: `cpu_ms` so far and `memory_kb`, at `now`.
    fn push(&mut self, now: Instant, at_ms: u64, main_pid: u32, cpu_ms: u64, memory_kb: u64) {
        let cpu_percent = match self.previous {
            Some((then, pid, before)) if pid == main_pid && now > then => {
                let wall = now.duration_since(then).as_secs_f64() * 1000.0;
                // A process of the tree that ended unreaped takes its time with it: never below 0.
                Some((cpu_ms.saturating_sub(before) as f64 / wall * 100.0).max(0.0))
            }
            _ => None,
        };
        self.previous = Some((now, main_pid, cpu_ms));
        self.latest = Some(Latest { cpu_ms, cpu_percent, memory_kb });
        if let Some(cpu_percent) = cpu_percent {
            if self.ring.len() == RING {
                self.ring.pop_front();
            }
            self.ring.push_back(MetricSample { at_ms, cpu_percent, memory_kb });
        }
    }
}

impl Metrics {
    /// Samples `targets` unless a sample was taken less than a second ago; services not among
    /// them (not running) get no sample and lose their current figures.
    /// Within that second, a service that started since (no figures yet, or a new main
    /// process) is sampled alone, so a status right after a start shows it.
    pub fn sample(&self, targets: impl FnOnce() -> Vec<Target>) {
        let now = Instant::now();
        let recent = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.last.is_some_and(|t| now.duration_since(t) < MIN_INTERVAL)
        };
        let mut targets = targets();
        if recent {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            targets.retain(|t| {
                let known = state.series.get(&t.name).and_then(|s| s.previous.filter(|_| s.latest.is_some()));
                known.is_none_or(|(_, pid, _)| pid != t.main_pid)
            });
            if targets.is_empty() {
                return;
            }
        }
        let usage = scan(&targets);
        let at_ms = crate::time::now_ms();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !recent {
            state.last = Some(now);
        }
        let running: HashSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        for (name, series) in state.series.iter_mut().filter(|_| !recent) {
            if !running.contains(name.as_str()) {
                series.latest = None;
                series.previous = None;
                series.ports.clear();
            }
        }
        for (t, (cpu_ms, memory_kb, ports)) in targets.iter().zip(usage) {
            let series = state.series.entry(t.name.clone()).or_default();
            series.push(now, at_ms, t.main_pid, cpu_ms, memory_kb);
            series.ports = ports;
        }
    }

    /// The service's figures at the last sample, while it runs.
    pub fn latest(&self, name: &str) -> Option<Latest> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).series.get(name).and_then(|s| s.latest)
    }

    /// The ports the service listened on at the last sample, while it runs.
    pub fn ports(&self, name: &str) -> Vec<ListeningPort> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.series.get(name).filter(|s| s.latest.is_some()).map(|s| s.ports.clone()).unwrap_or_default()
    }

    /// The service's samples, oldest first.
    pub fn history(&self, name: &str) -> Vec<MetricSample> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.series.get(name).map(|s| s.ring.iter().copied().collect()).unwrap_or_default()
    }

    /// A service that went away.
    pub fn forget(&self, name: &str) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).series.remove(name);
    }
}

/// One read of /proc: for each target, the CPU ms (with reaped children), resident KiB and
/// listening ports of the live processes in its main process's session or its cgroup.
fn scan(targets: &[Target]) -> Vec<(u64, u64, Vec<ListeningPort>)> {
    let mut out = vec![(0u64, 0u64); targets.len()];
    if targets.is_empty() {
        return Vec::new();
    }
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); targets.len()];
    // Which target a session or a cgroup member belongs to.
    let mut by_session: HashMap<u32, usize> = HashMap::new();
    let mut by_pid: HashMap<u32, usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        if let Some(sid) = crate::supervisor::process::session_of(t.main_pid) {
            by_session.insert(sid, i);
        }
        by_pid.insert(t.main_pid, i);
        for p in &t.cgroup_pids {
            by_pid.insert(*p, i);
        }
    }
    let (hz, page_kb) = clock_and_page();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some(stat) = crate::supervisor::process::parse_stat(&text) else { continue };
            let Some(&i) = by_pid.get(&pid).or_else(|| by_session.get(&stat.session)) else { continue };
            out[i].0 += stat.ticks * 1000 / hz;
            out[i].1 += stat.rss_pages * page_kb;
            members[i].push(pid);
        }
    }
    let sockets = crate::ports::listening();
    out.into_iter()
        .zip(members)
        .map(|((cpu_ms, memory_kb), pids)| (cpu_ms, memory_kb, crate::ports::of_processes(&pids, &sockets)))
        .collect()
}

fn clock_and_page() -> (u64, u64) {
    // SAFETY: sysconf reads constants.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    };
    let page_kb = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64 / 1024,
        _ => 4,
    };
    (hz, page_kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_the_growth_over_the_wall_time_and_the_ring_is_bounded() {
        let mut s = Series::default();
        let t0 = Instant::now();
        s.push(t0, 0, 7, 1000, 100);
        assert_eq!(s.latest.unwrap().cpu_percent, None, "no percent without a previous sample");
        assert!(s.ring.is_empty());
        s.push(t0 + Duration::from_secs(2), 2000, 7, 2000, 120);
        assert_eq!(s.latest.unwrap().cpu_percent, Some(50.0));
        assert_eq!(s.ring.back().unwrap().memory_kb, 120);
        // A new main process starts a new count; a total that shrank (an unreaped child's time
        // left with it) is 0 %, not negative.
        s.push(t0 + Duration::from_secs(4), 4000, 8, 10, 10);
        assert_eq!(s.latest.unwrap().cpu_percent, None);
        s.push(t0 + Duration::from_secs(6), 6000, 8, 5, 10);
        assert_eq!(s.latest.unwrap().cpu_percent, Some(0.0));
        for i in 0..(RING as u64 + 50) {
            s.push(t0 + Duration::from_secs(8 + 2 * i), 8000 + i, 8, 5 + i, 10);
        }
        assert_eq!(s.ring.len(), RING);
        assert_eq!(s.ring.back().unwrap().at_ms, 8000 + RING as u64 + 49);
    }

    #[test]
    fn stat_lines_are_read_past_a_command_name_with_spaces() {
        let text = "42 (my (odd) name) S 1 42 42 0 -1 4194304 100 0 0 0 30 20 5 5 20 0 1 0 12345 1000000 250 18446744073709551615";
        let s = crate::supervisor::process::parse_stat(text).unwrap();
        assert_eq!((s.pgid, s.session, s.ticks, s.rss_pages, s.start_time), (42, 42, 60, 250, 12345));
    }

    #[test]
    fn calls_within_a_second_share_one_sample() {
        let m = Metrics::default();
        let me = std::process::id();
        let target = |name: &str| Target { name: name.into(), main_pid: me, cgroup_pids: Vec::new() };
        for _ in 0..3 {
            m.sample(|| vec![target("me")]);
        }
        let sampled_at = m.state.lock().unwrap().series["me"].previous.unwrap().0;
        // Within the second: the known service is not sampled again, a new one is.
        m.sample(|| vec![target("me"), target("new")]);
        assert_eq!(m.state.lock().unwrap().series["me"].previous.unwrap().0, sampled_at);
        assert!(m.latest("new").is_some());
        let latest = m.latest("me").unwrap();
        assert!(latest.memory_kb > 0 && latest.cpu_percent.is_none());
        // Not running any more: no figures.
        m.state.lock().unwrap().last = None;
        m.sample(Vec::new);
        assert_eq!(m.latest("me"), None);
    }
}
