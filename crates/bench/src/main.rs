//! gitvisor's benchmark suite: gitvisor side by side with the anchor supervisors (supervisord,
//! PM2, runit, s6) and a fork/exec floor, in one run, reported as figures and ratios.
//!
//! Theory of operation: every service in every scenario is `bench-stamp`, which appends its own
//! start time (CLOCK_REALTIME ns) to a file. Times are read from those stamps, never from when
//! the benchmark happened to notice them, so polling neither slows nor blurs what is measured:
//! a restart interval is the gap between two stamps, a start time is the last stamp minus the
//! moment the supervisor was launched. CPU and memory come from /proc. Each supervisor runs in
//! its own process group under a private temporary directory, and every figure ends with a
//! sweep of whatever still names that directory. The benchmark reports; it never fails a run
//! for being slow.

mod commit;
mod crash;
mod failover;
mod figures;
mod flood;
mod process;
mod procfs;
mod report;
mod restarts;
mod stamps;
mod supervisors;
mod tray;

use std::path::{Path, PathBuf};
use std::time::Duration;

use supervisors::gitvisor::Gitvisor;
use supervisors::pm2::Pm2;
use supervisors::runit::Runit;
use supervisors::s6::S6;
use supervisors::supervisord::Supervisord;
use supervisors::Supervisor;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: gitvisor-bench [--quick] [--idle-seconds N] [--no-anchors] [--json FILE]
                      [--anchors-dir DIR] [--gitvisor BIN] [--stamp BIN] [--only FIGURES]
                      [--anchors NAMES] [--tray BIN]
  FIGURES: comma-separated of restart, loops, many, graph, flood, commit, crash, failover, tray
           (default: all; tray needs the release gitvisor-tray, beside this binary or --tray)
  NAMES: comma-separated of supervisord, PM2, runit, s6 (default: all installed)";

pub struct Options {
    pub quick: bool,
    pub idle_seconds: u64,
    pub anchors: bool,
    pub json: Option<PathBuf>,
    pub anchors_dir: PathBuf,
    pub gitvisor: PathBuf,
    pub stamp: PathBuf,
    pub only: Vec<String>,
    pub with: Vec<String>,
    /// The tray app for the tray figure (release build).
    pub tray: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Options> {
        let exe_dir = std::env::current_exe()?.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut o = Options {
            quick: false,
            idle_seconds: 0,
            anchors: true,
            json: None,
            anchors_dir: PathBuf::from("bench"),
            gitvisor: exe_dir.join("gitvisor"),
            stamp: exe_dir.join("bench-stamp"),
            only: Vec::new(),
            with: Vec::new(),
            tray: tray::default_binary(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--idle-seconds" => {
                    o.idle_seconds = value()?.parse().map_err(|e| format!("--idle-seconds: {e}"))?
                }
                "--no-anchors" => o.anchors = false,
                "--json" => o.json = Some(value()?.into()),
                "--anchors-dir" => o.anchors_dir = value()?.into(),
                "--gitvisor" => o.gitvisor = value()?.into(),
                "--stamp" => o.stamp = value()?.into(),
                "--only" => o.only = value()?.split(',').map(str::to_string).collect(),
                "--tray" => o.tray = Some(value()?.into()),
                "--anchors" => o.with = value()?.split(',').map(str::to_string).collect(),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {a}\n{USAGE}").into()),
            }
        }
        if o.idle_seconds == 0 {
            o.idle_seconds = if o.quick { 10 } else { 60 };
        }
        o.anchors_dir = std::fs::canonicalize(&o.anchors_dir).unwrap_or(o.anchors_dir);
        o.gitvisor =
            std::fs::canonicalize(&o.gitvisor).map_err(|e| format!("{}: {e}", o.gitvisor.display()))?;
        o.stamp = std::fs::canonicalize(&o.stamp).map_err(|e| format!("{}: {e}", o.stamp.display()))?;
        Ok(o)
    }

    fn wants(&self, figure: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|f| f == figure)
    }
}

/// One column of the table: a supervisor (or the floor) and what was measured of it.
#[derive(serde::Serialize, Default)]
pub struct Column {
    pub name: String,
    pub version: Option<String>,
    /// "ok", or why it was not measured ("not installed", "not applicable").
    pub status: String,
    pub restart: Option<figures::Restart>,
    pub many: Option<figures::Many>,
    pub graph: Option<figures::Graph>,
    /// The same 1000 units without dependencies, to tell the graph's cost from the services'.
    pub flat: Option<figures::Graph>,
    /// gitvisor only: planning 1000 units' start order, in process.
    pub plan: Option<figures::Plan>,
    /// gitvisor only: from `git commit` to the new version running.
    pub commit: Option<commit::CommitToRunning>,
    /// gitvisor only: crash report of a 50 MiB, 5,000-file working tree.
    pub crash: Option<crash::CrashReport>,
    /// gitvisor only: the 100 idle services, each probed every second.
    pub probed: Option<figures::Many>,
    /// Probes the benchmark's server answered during that window.
    pub probes_answered: Option<u64>,
    /// One service writing to stdout as fast as it can: how fast it reaches the log file.
    pub flood: Option<flood::Flood>,
    /// floor only: spawning 100 and 1000 idle processes from one loop.
    pub start_floor: Vec<figures::StartFloor>,
    /// gitvisor only: a service restarted in a loop, exiting 0 or 1, beside 0/100/300 others.
    pub restart_loops: Vec<restarts::RestartLoop>,
    /// gitvisor only: fleet failover after the holder's engine is killed, by lease TTL.
    pub failover: Vec<failover::Failover>,
    /// gitvisor only: Redis commands per minute of a fleet in steady state.
    pub fleet_round_trips: Option<failover::RoundTrips>,
    /// gitvisor only: the tray app's memory hidden, with its window open, and after closing it,
    /// next to the daemon alone.
    pub tray: Option<tray::TrayMemory>,
    pub errors: Vec<String>,
}

/// Runs one figure in `dir`; a failed attempt is recorded and tried once more in a fresh
/// directory (a shared machine can disturb a run), so an error stays visible in the report.
fn record<T>(
    col: &mut Column,
    figure: &str,
    dir: &Path,
    f: impl Fn(&Path) -> Result<T>,
) -> Result<Option<T>> {
    for attempt in 1..=2 {
        let d = if attempt == 1 { dir.to_path_buf() } else { dir.with_extension("retry") };
        match f(&d) {
            Ok(v) => return Ok(Some(v)),
            Err(e) if process::interrupted() => return Err(e),
            Err(e) => {
                let what = if attempt == 1 { "failed, trying once more" } else { "failed again" };
                eprintln!("  {}: {figure}: {what}: {e}", col.name);
                col.errors.push(format!("{figure}, attempt {attempt}: {e}"));
            }
        }
    }
    Ok(None)
}

fn run(o: &Options, scratch: &Path) -> Result<Vec<Column>> {
    let gv = Gitvisor { bin: o.gitvisor.clone(), stamp: o.stamp.clone() };
    let mut anchors: Vec<(&str, Option<Box<dyn Supervisor>>)> = Vec::new();
    let wanted =
        |name: &str| o.anchors && (o.with.is_empty() || o.with.iter().any(|w| w.eq_ignore_ascii_case(name)));
    anchors.push((
        "supervisord",
        wanted("supervisord")
            .then(|| Supervisord::find(&o.anchors_dir, &o.stamp).map(|s| Box::new(s) as _))
            .flatten(),
    ));
    anchors.push((
        "PM2",
        wanted("PM2").then(|| Pm2::find(&o.anchors_dir, &o.stamp).map(|s| Box::new(s) as _)).flatten(),
    ));
    anchors
        .push(("runit", wanted("runit").then(|| Runit::find(&o.stamp).map(|s| Box::new(s) as _)).flatten()));
    anchors.push(("s6", wanted("s6").then(|| S6::find(&o.stamp).map(|s| Box::new(s) as _)).flatten()));

    let (fast, slow) = if o.quick { (50, 5) } else { (200, 20) };
    let window = Duration::from_secs(o.idle_seconds);
    let settle = Duration::from_secs(2);

    let mut gcol = Column {
        name: "gitvisor".into(),
        version: Some(gv.version()),
        status: "ok".into(),
        ..Default::default()
    };
    let mut fcol = Column {
        name: "floor".into(),
        version: Some("fork/exec/wait loop".into()),
        status: "ok".into(),
        ..Default::default()
    };
    let mut acols: Vec<Column> = anchors
        .iter()
        .map(|(name, s)| Column {
            name: name.to_string(),
            version: s.as_ref().map(|s| s.version()),
            status: if s.is_some() {
                "ok".into()
            } else if wanted(name) {
                "not installed".into()
            } else {
                "skipped".into()
            },
            ..Default::default()
        })
        .collect();

    if o.wants("restart") {
        eprintln!("restart interval: floor ({fast} samples)");
        let dir = scratch.join("floor-restart");
        fcol.restart = record(&mut fcol, "restart", &dir, |d| figures::floor(&o.stamp, d, fast))?;
        eprintln!("restart interval: gitvisor ({fast} samples)");
        let dir = scratch.join("gitvisor-restart");
        let deadline = Duration::from_secs(60);
        gcol.restart = record(&mut gcol, "restart", &dir, |d| figures::restart(&gv, d, fast, deadline))?;
        for ((name, sup), col) in anchors.iter().zip(acols.iter_mut()) {
            let Some(sup) = sup else { continue };
            // supervisord, runit and s6 wait about 1 s per restart: fewer samples keep the run short.
            let samples = if *name == "PM2" { fast } else { slow };
            eprintln!("restart interval: {name} ({samples} samples)");
            let deadline = Duration::from_secs(if *name == "PM2" { 60 } else { samples as u64 * 2 + 15 });
            let dir = scratch.join(format!("{name}-restart"));
            col.restart =
                record(col, "restart", &dir, |d| figures::restart(sup.as_ref(), d, samples, deadline))?;
        }
    }
    if o.wants("loops") {
        let samples = if o.quick { 100 } else { 400 };
        for others in [0, 100, 300] {
            for code in [0, 1] {
                let what = if code == 0 { "clean exits" } else { "crashes" };
                eprintln!("restart loop of {what} beside {others} services: gitvisor ({samples} restarts)");
                let dir = scratch.join(format!("gitvisor-loop-{code}-{others}"));
                if let Some(l) = record(&mut gcol, "loops", &dir, |d| {
                    restarts::restart_loop(&gv, d, code, others, samples)
                })? {
                    gcol.restart_loops.push(l);
                }
            }
        }
    }
    if o.wants("many") || o.wants("graph") {
        for n in [100, 1000] {
            eprintln!("start {n} processes: floor");
            let dir = scratch.join(format!("floor-start-{n}"));
            if let Some(f) = record(&mut fcol, "start floor", &dir, |d| figures::start_floor(&o.stamp, d, n))?
            {
                fcol.start_floor.push(f);
            }
        }
    }
    if o.wants("many") {
        eprintln!("100 services: gitvisor (idle window {}s)", window.as_secs());
        let dir = scratch.join("gitvisor-100");
        gcol.many = record(&mut gcol, "many", &dir, |d| figures::many(&gv, d, 100, window, settle))?;
        eprintln!("100 services probed every second: gitvisor (window {}s)", window.as_secs());
        let dir = scratch.join("gitvisor-100-probed");
        if let Some((m, probes)) =
            record(&mut gcol, "probed", &dir, |d| figures::many_probed(&gv, d, 100, window, settle))?
        {
            gcol.probed = Some(m);
            gcol.probes_answered = Some(probes);
        }
        for ((name, sup), col) in anchors.iter().zip(acols.iter_mut()) {
            let Some(sup) = sup else { continue };
            eprintln!("100 services: {name} (idle window {}s)", window.as_secs());
            let dir = scratch.join(format!("{name}-100"));
            col.many = record(col, "many", &dir, |d| figures::many(sup.as_ref(), d, 100, window, settle))?;
        }
    }
    if o.wants("graph") {
        eprintln!("1000 services with a dependency graph: gitvisor");
        let dir = scratch.join("gitvisor-1000");
        gcol.graph = record(&mut gcol, "graph", &dir, |d| figures::graph(&gv, d, 20, 50, true))?;
        eprintln!("1000 services without dependencies: gitvisor");
        let dir = scratch.join("gitvisor-1000-flat");
        gcol.flat = record(&mut gcol, "flat", &dir, |d| figures::graph(&gv, d, 20, 50, false))?;
        eprintln!("planning 1000 units: gitvisor's graph code");
        gcol.plan = Some(figures::plan(if o.quick { 20 } else { 200 }));
    }
    if o.wants("flood") {
        let bytes: u64 = if o.quick { 32 << 20 } else { 256 << 20 };
        eprintln!("log flood of {} MiB: gitvisor", bytes >> 20);
        let dir = scratch.join("gitvisor-flood");
        gcol.flood = record(&mut gcol, "flood", &dir, |d| flood::flood(&gv, d, bytes))?;
        for ((name, sup), col) in anchors.iter().zip(acols.iter_mut()) {
            let Some(sup) = sup else { continue };
            // runit and s6 log through a separate logger service per service: not set up here.
            if *name == "runit" || *name == "s6" {
                continue;
            }
            eprintln!("log flood of {} MiB: {name}", bytes >> 20);
            let dir = scratch.join(format!("{name}-flood"));
            col.flood = record(col, "flood", &dir, |d| flood::flood(sup.as_ref(), d, bytes))?;
        }
    }
    if o.wants("commit") {
        let samples = if o.quick { 10 } else { 50 };
        eprintln!("commit to running: gitvisor ({samples} commits)");
        let dir = scratch.join("gitvisor-commit");
        gcol.commit = record(&mut gcol, "commit", &dir, |d| commit::commit_to_running(&gv, d, samples))?;
    }
    if o.wants("crash") {
        eprintln!("crash report of a 50 MiB, 5,000-file tree: gitvisor, then tar -czf");
        let dir = scratch.join("gitvisor-crash");
        gcol.crash = record(&mut gcol, "crash", &dir, |d| crash::crash_report(&gv, d))?;
    }
    if o.wants("failover") {
        let trials = if o.quick { 3 } else { 10 };
        for ttl_s in [2, 10] {
            eprintln!("fleet failover, lease TTL {ttl_s} s: gitvisor ({trials} trials)");
            let dir = scratch.join(format!("gitvisor-failover-{ttl_s}"));
            let ttl = Duration::from_secs(ttl_s);
            if let Some(f) = record(&mut gcol, "failover", &dir, |d| failover::failover(&gv, d, ttl, trials))?
            {
                gcol.failover.push(f);
            }
        }
        let window = Duration::from_secs(if o.quick { 20 } else { 60 });
        eprintln!("fleet round trips in steady state: gitvisor ({} s)", window.as_secs());
        let dir = scratch.join("gitvisor-fleet-steady");
        let ttl = Duration::from_secs(10);
        gcol.fleet_round_trips =
            record(&mut gcol, "round trips", &dir, |d| failover::round_trips(&gv, d, ttl, window))?;
    }
    if o.wants("tray") {
        match &o.tray {
            Some(bin) => {
                eprintln!("tray app memory: hidden, window open, closed; the daemon alone");
                let dir = scratch.join("gitvisor-tray");
                gcol.tray = record(&mut gcol, "tray", &dir, |d| tray::tray_memory(&gv, bin, d))?;
            }
            None => gcol.errors.push(
                "tray: not measured: no release gitvisor-tray beside gitvisor-bench (cargo build --release -p gitvisor-tray, or --tray BIN)".into(),
            ),
        }
    }
    let mut cols = vec![gcol, fcol];
    cols.extend(acols);
    Ok(cols)
}

fn main() {
    process::catch_interrupts();
    let o = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gitvisor-bench: {e}");
            std::process::exit(2);
        }
    };
    let scratch = match tempfile::Builder::new().prefix("gitvisor-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gitvisor-bench: temporary directory: {e}");
            std::process::exit(1);
        }
    };
    let load_before = report::loadavg();
    let outcome = run(&o, scratch.path());
    // Whatever happened, nothing started by this run outlives it.
    let left = process::sweep(scratch.path());
    if left > 0 {
        eprintln!("gitvisor-bench: killed {left} leftover process(es)");
    }
    match outcome {
        Ok(cols) => {
            let mut rep = report::Report::new(&o, cols);
            rep.machine.insert("loadavg_before", load_before);
            println!("{}", rep.markdown());
            if let Some(path) = &o.json {
                let written = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(path, rep.json()));
                match written {
                    Ok(()) => eprintln!("results written to {}", path.display()),
                    Err(e) => eprintln!("gitvisor-bench: {}: {e}", path.display()),
                }
            }
        }
        Err(e) => {
            eprintln!("gitvisor-bench: {e}");
            drop(scratch);
            std::process::exit(if process::interrupted() { 130 } else { 1 });
        }
    }
}
