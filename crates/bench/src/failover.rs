//! Fleet failover (gitvisor only): two engines, each in its own home, share a `redis-server` (on
//! a Unix socket in the scenario's directory). A `Singleton=yes` unit runs `bench-stamp --idle
//! FILE` on the node holding its lease, so each start of it is a stamp.
//!
//! A trial SIGKILLs the holder's engine alone (its log keeper lives on and kills the singleton a
//! third of a TTL before the lease could expire) and measures from the kill to the stamp of the
//! copy the other node starts once the lease expired. The killed node's engine is then started
//! again and becomes the stand-by. After the trials, the commands Redis served in a quiet window
//! (`MONITOR`, without what scripts ran) give the round trips of the steady state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::process::{wait_for, Spawned};
use crate::stamps::{self, now_ns};
use crate::supervisors::gitvisor::{Gitvisor, GitvisorSession};
use crate::Result;

#[derive(Serialize, Clone, Debug)]
pub struct Failover {
    pub lease_ttl_s: f64,
    pub trials: usize,
    /// From the SIGKILL of the holder's engine to the other node's copy started, seconds.
    pub samples_s: Vec<f64>,
    pub median_s: f64,
    pub max_s: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct RoundTrips {
    pub lease_ttl_s: f64,
    pub window_s: f64,
    pub nodes: usize,
    pub singletons: usize,
    /// Round trips per minute (commands clients sent, not those scripts ran), by command:
    /// EVALSHA is an acquisition attempt or a renewal, SET a node's heartbeat, GET and PTTL a
    /// stand-by reading who holds the lease.
    pub per_minute: BTreeMap<String, f64>,
    pub total_per_minute: f64,
}

struct Redis {
    _server: Spawned,
    socket: PathBuf,
}

impl Redis {
    fn start(dir: &Path) -> Result<Redis> {
        let socket = dir.join("redis.sock");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .arg("--dir")
            .arg(dir);
        let server = Spawned::start(cmd, &dir.join("redis.log"))
            .map_err(|e| format!("{e} (scripts/setup installs redis-server)"))?;
        let redis = Redis { _server: server, socket };
        if !wait_for(Duration::from_secs(10), Duration::from_millis(20), || redis.cli(&["ping"]) == "PONG")? {
            return Err("redis-server did not answer within 10 s".into());
        }
        Ok(redis)
    }

    fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    /// The node holding the singleton's lease.
    fn holder(&self) -> Option<String> {
        let token = self.cli(&["GET", "gitvisor:lock:lease:solo"]);
        token.split(' ').next().filter(|n| !n.is_empty()).map(str::to_string)
    }
}

struct Node {
    name: String,
    home: PathBuf,
    session: GitvisorSession,
    /// Engines of this node killed by a trial: kept (not dropped) so their process group, which
    /// holds the log keeper the next engine reconnects to, lives on until the figure ends.
    killed: Vec<GitvisorSession>,
    /// Its engine was killed and not started again yet.
    down: bool,
}

fn setup(gv: &Gitvisor, dir: &Path, ttl: Duration, stamp_file: &Path) -> Result<(Redis, Vec<Node>)> {
    std::fs::create_dir_all(dir)?;
    let redis = Redis::start(dir)?;
    let exec = format!("{} --idle {}", gv.stamp.display(), stamp_file.display());
    let unit = gv.unit(&exec, "Singleton=yes");
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let home = dir.join(name);
        std::fs::create_dir_all(home.join("services"))?;
        std::fs::write(home.join("services/solo.service"), &unit)?;
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[fleet]\nredis = \"redis+unix://{}\"\nnode = \"{name}\"\nlease_ttl = \"{}ms\"\n",
                redis.socket.display(),
                ttl.as_millis()
            ),
        )?;
        let session = gv.launch_home(&home)?;
        nodes.push(Node { name: name.into(), home, session, killed: Vec::new(), down: false });
    }
    Ok((redis, nodes))
}

pub fn failover(gv: &Gitvisor, dir: &Path, ttl: Duration, trials: usize) -> Result<Failover> {
    let out = measure_failover(gv, dir, ttl, trials);
    // Singletons run in process groups of their own: whatever is left goes.
    crate::process::sweep(dir);
    out
}

fn measure_failover(gv: &Gitvisor, dir: &Path, ttl: Duration, trials: usize) -> Result<Failover> {
    let stamp_file = dir.join("solo.stamps");
    let (redis, mut nodes) = setup(gv, dir, ttl, &stamp_file)?;
    let deadline = ttl * 3 + Duration::from_secs(30);
    let mut samples = Vec::new();
    let mut killed_ns: Option<u64> = None;
    for trial in 0..=trials {
        // The singleton's start number `trial + 1`: the first, then one per trial.
        let started = trial + 1;
        if !wait_for(deadline, Duration::from_millis(5), || stamps::read(&stamp_file).len() >= started)? {
            return Err(format!("the singleton's start {started} did not come within {deadline:?}").into());
        }
        if let Some(killed) = killed_ns.take() {
            samples.push(stamps::read(&stamp_file)[trial].saturating_sub(killed) as f64 / 1e9);
        }
        // The node killed last comes back as the stand-by (only now: started before the other
        // took over, its engine would take its own lease back, as a restarted engine does).
        if let Some(node) = nodes.iter_mut().find(|n| n.down) {
            let relaunched = gv.launch_home(&node.home)?;
            node.killed.push(std::mem::replace(&mut node.session, relaunched));
            node.down = false;
        }
        if trial == trials {
            break;
        }
        let holder = redis.holder().ok_or("nobody holds the singleton's lease")?;
        let node = nodes.iter_mut().find(|n| n.name == holder).ok_or("an unknown node holds the lease")?;
        // The engine alone: its keeper stays, as after a crash of the engine.
        killed_ns = Some(now_ns());
        // SAFETY: kill(2) of the daemon this figure started.
        unsafe { libc::kill(node.session.daemon_pid(), libc::SIGKILL) };
        node.down = true;
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median_s = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let max_s = sorted.last().copied().unwrap_or(0.0);
    drop(nodes);
    Ok(Failover { lease_ttl_s: ttl.as_secs_f64(), trials, samples_s: samples, median_s, max_s })
}

pub fn round_trips(gv: &Gitvisor, dir: &Path, ttl: Duration, window: Duration) -> Result<RoundTrips> {
    let out = measure_round_trips(gv, dir, ttl, window);
    crate::process::sweep(dir);
    out
}

fn measure_round_trips(gv: &Gitvisor, dir: &Path, ttl: Duration, window: Duration) -> Result<RoundTrips> {
    let stamp_file = dir.join("solo.stamps");
    let (redis, nodes) = setup(gv, dir, ttl, &stamp_file)?;
    if !wait_for(ttl * 3 + Duration::from_secs(30), Duration::from_millis(5), || {
        !stamps::read(&stamp_file).is_empty()
    })? {
        return Err("the singleton did not start".into());
    }
    // MONITOR shows every command a client sent, and (marked `[0 lua]`) those a script ran:
    // only the first are round trips.
    let trace = dir.join("monitor.txt");
    let mut cmd = Command::new("redis-cli");
    cmd.arg("-s").arg(&redis.socket).arg("monitor");
    let mut monitor = Spawned::start(cmd, &trace)?;
    crate::process::sleep(window)?;
    monitor.stop(libc::SIGTERM, Duration::from_secs(2));
    drop(nodes);
    let scale = 60.0 / window.as_secs_f64();
    let mut per_minute: BTreeMap<String, f64> = BTreeMap::new();
    for line in std::fs::read_to_string(&trace)?.lines() {
        // 1764680000.123456 [0 unix:/tmp/.../redis.sock] "EVALSHA" "..." ...
        let Some((source, rest)) = line.split_once("] ") else { continue };
        if source.ends_with(" lua") {
            continue;
        }
        let name = rest.split('"').nth(1).unwrap_or_default().to_ascii_lowercase();
        *per_minute.entry(name).or_default() += scale;
    }
    let total_per_minute = per_minute.values().sum();
    Ok(RoundTrips {
        lease_ttl_s: ttl.as_secs_f64(),
        window_s: window.as_secs_f64(),
        nodes: 2,
        singletons: 1,
        per_minute,
        total_per_minute,
    })
}
