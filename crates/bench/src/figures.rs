//! The figures: how each is measured, for any supervisor behind the `Supervisor` interface.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::process::{self, sweep, wait_for};
use crate::procfs;
use crate::stamps::{self, Intervals};
use crate::supervisors::gitvisor::{layer_of, Gitvisor};
use crate::supervisors::{Group, Memory, Scenario, Session, Supervisor};
use crate::Result;

/// Stamps dropped at the start of a restart series (the first start is not a restart).
const WARMUP: usize = 2;
const POLL: Duration = Duration::from_millis(20);

#[derive(Serialize, Clone, Debug)]
pub struct Restart {
    #[serde(flatten)]
    pub intervals: Intervals,
    /// Set when fewer samples than asked came within the time allowed.
    pub note: Option<String>,
    /// The floor only: the loop's own CPU per spawn (its fork and its wait; the child's exec is
    /// the child's), in ms. What the cheapest possible supervisor pays per restart on this
    /// machine today, for the engine's CPU per restart to be read against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_spawn: Option<f64>,
}

/// Restart interval: one service that exits at once, restarted with the smallest delay allowed.
pub fn restart(sup: &dyn Supervisor, dir: &Path, samples: usize, deadline: Duration) -> Result<Restart> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("stamps");
    let wanted = samples + WARMUP + 1;
    let outcome = (|| -> Result<bool> {
        let mut session = sup.launch(dir, &Scenario::Restarting { file: &file })?;
        let mut err = None;
        let done = wait_for(deadline, POLL, || match session.check() {
            Err(e) => {
                err = Some(e);
                true
            }
            Ok(()) => stamps::read(&file).len() >= wanted,
        })?;
        let stopped = session.stop();
        if let Some(e) = err {
            return Err(e);
        }
        stopped?;
        Ok(done)
    })();
    sweep(dir);
    let complete = outcome?;
    let all = stamps::read(&file);
    let intervals = stamps::intervals(&all[..all.len().min(wanted)], WARMUP)
        .ok_or_else(|| format!("only {} start(s) within {deadline:?}", all.len()))?;
    let note = (!complete).then(|| format!("{} of {samples} samples within {deadline:?}", intervals.samples));
    Ok(Restart { intervals, note, cpu_ms_per_spawn: None })
}

/// The floor: a loop that only forks, execs the stamp program and waits for it.
pub fn floor(stamp: &Path, dir: &Path, samples: usize) -> Result<Restart> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("stamps");
    let prog = CString::new(stamp.as_os_str().as_bytes())?;
    let arg = CString::new(file.as_os_str().as_bytes())?;
    let argv = [prog.as_ptr(), arg.as_ptr(), std::ptr::null()];
    let spawns = samples + WARMUP + 1;
    let cpu_before = procfs::own_thread_runtime_ns();
    for _ in 0..spawns {
        if process::interrupted() {
            return Err("interrupted".into());
        }
        // SAFETY: this process is single-threaded here; the child only calls execv and _exit,
        // with arguments prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execv(prog.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    let cpu_ms_per_spawn = procfs::own_thread_runtime_ns()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) as f64 / 1e6 / spawns as f64);
    let intervals = stamps::intervals(&stamps::read(&file), WARMUP).ok_or("the floor wrote no stamps")?;
    Ok(Restart { intervals, note: None, cpu_ms_per_spawn })
}

/// The floor of a start: what starting `services` processes costs on this machine before any
/// supervisor's work.
#[derive(Serialize, Clone, Debug)]
pub struct StartFloor {
    pub services: usize,
    pub first_s: f64,
    pub median_s: f64,
    /// From the first spawn to the last start stamp.
    pub start_s: f64,
}

/// One process spawns `n` idle `bench-stamp`s one after another, waiting for none; the figure is
/// the last start stamp minus the moment before the first spawn.
pub fn start_floor(stamp: &Path, dir: &Path, n: usize) -> Result<StartFloor> {
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(&stamps_dir)?;
    let outcome = (|| -> Result<StartFloor> {
        let launched = stamps::now_ns();
        for i in 0..n {
            std::process::Command::new(stamp)
                .arg("--idle")
                .arg(stamps_dir.join(i.to_string()))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?;
        }
        let done = wait_for(Duration::from_secs(120), Duration::from_millis(2), || {
            stamps::read_dir(&stamps_dir).len() >= n
        })?;
        let got = stamps::read_dir(&stamps_dir);
        if !done {
            return Err(format!("only {} of {n} floor processes started", got.len()).into());
        }
        let mut secs: Vec<f64> = got.iter().map(|s| s.saturating_sub(launched) as f64 / 1e9).collect();
        secs.sort_by(f64::total_cmp);
        Ok(StartFloor { services: n, first_s: secs[0], median_s: secs[n / 2], start_s: secs[n - 1] })
    })();
    sweep(dir);
    // Reap what was killed (they are this process's children).
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    outcome
}

#[derive(Serialize, Clone, Debug)]
pub struct GroupCost {
    pub role: String,
    pub processes: usize,
    /// utime + stime over the window (10 ms clock ticks), seconds.
    pub cpu_s: f64,
    /// Time on CPU over the window from schedstat (ns resolution, living threads), seconds.
    pub cpu_precise_s: f64,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// "RSS" (one process) or "PSS" (sum over several): what the table shows.
    pub memory: &'static str,
}

impl GroupCost {
    pub fn memory_kib(&self) -> u64 {
        if self.memory == "PSS" {
            self.pss_kib
        } else {
            self.rss_kib
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct Many {
    pub services: usize,
    /// From launching the supervisor to the last service's start stamp, seconds.
    pub start_s: f64,
    /// ... to the first and to the median service's start stamp.
    pub first_s: f64,
    pub median_s: f64,
    pub idle_window_s: f64,
    pub groups: Vec<GroupCost>,
    /// Services that started again during the idle window (should be 0).
    pub restarts_in_window: usize,
}

/// Start `n` idle services, then measure the supervisor at rest for `window`.
pub fn many(sup: &dyn Supervisor, dir: &Path, n: usize, window: Duration, settle: Duration) -> Result<Many> {
    std::fs::create_dir_all(dir)?;
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(&stamps_dir)?;
    let outcome = (|| -> Result<Many> {
        let mut session = sup.launch(dir, &Scenario::Idle { dir: &stamps_dir, n })?;
        let result = measure_many(session.as_mut(), &stamps_dir, n, window, settle);
        let stopped = session.stop();
        let many = result?;
        stopped?;
        Ok(many)
    })();
    sweep(dir);
    outcome
}

/// gitvisor only: `n` idle services, each with a health probe every second answered by an
/// HTTP server in this process (its cost is not the engine's), measured at rest for `window`
/// as [`many`]; and how many probes the server answered in the window.
pub fn many_probed(
    gv: &crate::supervisors::gitvisor::Gitvisor,
    dir: &Path,
    n: usize,
    window: Duration,
    settle: Duration,
) -> Result<(Many, u64)> {
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(&stamps_dir)?;
    std::fs::create_dir_all(dir.join("services"))?;
    let server = ProbeServer::start()?;
    for i in 0..n {
        let exec = format!("{} --idle {}", gv.stamp.display(), stamps_dir.join(i.to_string()).display());
        let probe = format!("HealthCheckURL=http://127.0.0.1:{}/health\nHealthCheckInterval=1s", server.port);
        std::fs::write(dir.join(format!("services/idle-{i:03}.service")), gv.unit(&exec, &probe))?;
    }
    let outcome = (|| -> Result<(Many, u64)> {
        let mut session = gv.launch_home(dir)?;
        let before = std::cell::Cell::new(0);
        let result =
            measure_many_with(&mut session, &stamps_dir, n, window, settle, || before.set(server.answered()));
        let probes = server.answered() - before.get();
        let stopped = Session::stop(&mut session);
        let many = result?;
        stopped?;
        Ok((many, probes))
    })();
    sweep(dir);
    outcome
}

/// A loopback HTTP server answering 200 to every request, counting them; stopped when dropped.
struct ProbeServer {
    port: u16,
    answered: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ProbeServer {
    fn start() -> Result<ProbeServer> {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, done) = (answered.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(ProbeServer { port, answered, stop })
    }

    fn answered(&self) -> u64 {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Start times of `n` services after launch, seconds: (first, median, last).
fn wait_stamped(
    session: &mut dyn Session,
    stamps_dir: &Path,
    n: usize,
    deadline: Duration,
) -> Result<(f64, f64, f64)> {
    let mut err = None;
    let done = wait_for(deadline, Duration::from_millis(5), || match session.check() {
        Err(e) => {
            err = Some(e);
            true
        }
        Ok(()) => stamps::read_dir(stamps_dir).len() >= n,
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    let got = stamps::read_dir(stamps_dir);
    if !done {
        return Err(format!("only {} of {n} services started within {deadline:?}", got.len()).into());
    }
    let mut secs: Vec<f64> =
        got.iter().map(|s| s.saturating_sub(session.launched_ns()) as f64 / 1e9).collect();
    secs.sort_by(f64::total_cmp);
    Ok((secs[0], secs[secs.len() / 2], secs[secs.len() - 1]))
}

fn measure_many(
    session: &mut dyn Session,
    stamps_dir: &Path,
    n: usize,
    window: Duration,
    settle: Duration,
) -> Result<Many> {
    measure_many_with(session, stamps_dir, n, window, settle, || {})
}

/// [`measure_many`], calling `at_start` as the window opens.
fn measure_many_with(
    session: &mut dyn Session,
    stamps_dir: &Path,
    n: usize,
    window: Duration,
    settle: Duration,
    at_start: impl FnOnce(),
) -> Result<Many> {
    let (first_s, median_s, start_s) = wait_stamped(session, stamps_dir, n, Duration::from_secs(120))?;
    process::sleep(settle)?;
    at_start();
    let groups = session.groups();
    let before: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
    let t = Instant::now();
    process::sleep(window)?;
    let after: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
    let idle_window_s = t.elapsed().as_secs_f64();
    session.check()?;
    let costs = groups.iter().zip(before.iter().zip(&after)).map(|(g, (b, a))| cost(g, b, a)).collect();
    let lines: usize = std::fs::read_dir(stamps_dir)?.flatten().map(|e| stamps::read(&e.path()).len()).sum();
    Ok(Many {
        services: n,
        start_s,
        first_s,
        median_s,
        idle_window_s,
        groups: costs,
        restarts_in_window: lines.saturating_sub(n),
    })
}

pub struct Snapshot {
    cpu_s: f64,
    threads: Vec<std::collections::HashMap<procfs::Pid, u64>>,
}

impl Snapshot {
    pub fn take(g: &Group) -> Snapshot {
        Snapshot {
            cpu_s: g.pids.iter().filter_map(|&p| procfs::cpu_seconds(p)).sum(),
            threads: g.pids.iter().map(|&p| procfs::thread_runtimes(p)).collect(),
        }
    }
}

pub fn cost(g: &Group, before: &Snapshot, after: &Snapshot) -> GroupCost {
    let mut ns = 0u64;
    for (b, a) in before.threads.iter().zip(&after.threads) {
        for (tid, end) in a {
            ns += end.saturating_sub(b.get(tid).copied().unwrap_or(0));
        }
    }
    GroupCost {
        role: g.role.clone(),
        processes: g.pids.len(),
        cpu_s: (after.cpu_s - before.cpu_s).max(0.0),
        cpu_precise_s: ns as f64 / 1e9,
        rss_kib: g.pids.iter().filter_map(|&p| procfs::rss_kib(p)).sum(),
        pss_kib: g.pids.iter().filter_map(|&p| procfs::pss_kib(p)).sum(),
        memory: if g.memory == Memory::PssSum { "PSS" } else { "RSS" },
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct Graph {
    pub services: usize,
    pub layers: usize,
    /// Whether units depend on the layer before (else: the same units, no dependencies).
    pub dependencies: bool,
    /// From launching the daemon to the last service's start stamp, seconds.
    pub start_s: f64,
    pub first_s: f64,
    pub median_s: f64,
    /// For each layer, when its last unit started, seconds after launch.
    pub layer_last_s: Vec<f64>,
    pub daemon_rss_kib: u64,
    pub keeper_rss_kib: u64,
    /// SIGTERM to the daemon's exit with 1000 services running, seconds.
    pub stop_s: f64,
}

/// gitvisor only: `layers` × `width` enabled units, in a layered Requires=/After= graph or flat.
pub fn graph(gv: &Gitvisor, dir: &Path, layers: usize, width: usize, dependencies: bool) -> Result<Graph> {
    std::fs::create_dir_all(dir)?;
    let stamps_dir = dir.join("stamps");
    std::fs::create_dir_all(&stamps_dir)?;
    gv.write_graph(dir, &stamps_dir, layers, width, dependencies)?;
    let n = layers * width;
    let outcome = (|| -> Result<Graph> {
        let mut session = gv.launch_home(dir)?;
        let measured = wait_stamped(&mut session, &stamps_dir, n, Duration::from_secs(120)).map(|times| {
            let daemon_rss_kib = procfs::rss_kib(session.daemon_pid()).unwrap_or(0);
            let keeper_rss_kib = session.keeper().and_then(procfs::rss_kib).unwrap_or(0);
            (times, daemon_rss_kib, keeper_rss_kib)
        });
        let t = Instant::now();
        let stopped = session.stop();
        let stop_s = t.elapsed().as_secs_f64();
        let ((first_s, median_s, start_s), daemon_rss_kib, keeper_rss_kib) = measured?;
        stopped?;
        let mut layer_last_s = vec![0.0f64; layers];
        for entry in std::fs::read_dir(&stamps_dir)?.flatten() {
            let layer = layer_of(&entry.file_name().to_string_lossy()).filter(|l| *l < layers);
            if let (Some(l), Some(stamp)) = (layer, stamps::read(&entry.path()).first()) {
                let t = stamp.saturating_sub(session.launched_ns()) as f64 / 1e9;
                layer_last_s[l] = layer_last_s[l].max(t);
            }
        }
        Ok(Graph {
            services: n,
            layers,
            dependencies,
            start_s,
            first_s,
            median_s,
            layer_last_s,
            daemon_rss_kib,
            keeper_rss_kib,
            stop_s,
        })
    })();
    sweep(dir);
    outcome
}

/// Planning the start order of 1000 units in the engine's own code (no processes): what a sync
/// or a start pays for the graph, apart from spawning.
#[derive(serde::Serialize, Debug)]
pub struct Plan {
    pub units: usize,
    pub runs: usize,
    pub median_ms: f64,
    pub max_ms: f64,
}

/// 1000 units, each requiring the one before, after the one at half its index and wanting the
/// one seven before: a dense graph, planned `runs` times.
pub fn plan(runs: usize) -> Plan {
    use gitvisor_graph::{plan, Node};
    let units = 1000;
    let nodes: Vec<Node> = (0..units)
        .rev()
        .map(|i| Node {
            name: format!("svc{i:04}"),
            requires: if i > 0 { vec![format!("svc{:04}", i - 1)] } else { vec![] },
            after: if i > 10 { vec![format!("svc{:04}", i / 2)] } else { vec![] },
            wants: if i > 10 { vec![format!("svc{:04}", i - 7)] } else { vec![] },
            ..Node::default()
        })
        .collect();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = std::time::Instant::now();
            let p = plan(&nodes);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(p.order.len(), units);
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Plan { units, runs, median_ms: times[runs / 2], max_ms: times[runs - 1] }
}
