//! Restart loops (gitvisor only): one service that exits at once and is restarted with
//! `RestartSec=0`, exiting 0 (a clean end) or 1 (a crash: the engine also judges it a failure and
//! writes a crash report, thinned in a loop), beside 0, 100 or 300 idle services. The crash path
//! must cost what the clean one costs, whatever else runs.
//!
//! The service has a small working directory (20 files), so a crash report captures something and
//! each start takes a baseline, as for a real service. Figures over the same run of restarts: the
//! median interval between start stamps, and the CPU the daemon and the log keeper spent per
//! restart (schedstat of every thread, read at the first and last stamp counted).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::figures::{cost, Snapshot};
use crate::process::{sweep, wait_for};
use crate::stamps::{self, Intervals};
use crate::supervisors::gitvisor::Gitvisor;
use crate::supervisors::Session;
use crate::Result;

/// Restarts let pass before counting (the others' start, the first reports).
const WARMUP: usize = 30;

#[derive(Serialize, Clone, Debug)]
pub struct RestartLoop {
    pub exit_code: i32,
    /// Idle services running beside it.
    pub others: usize,
    #[serde(flatten)]
    pub intervals: Intervals,
    /// Restarts the CPU figures are divided by.
    pub restarts: usize,
    pub daemon_cpu_ms_per_restart: f64,
    pub keeper_cpu_ms_per_restart: f64,
    pub daemon_rss_kib: u64,
    /// Crash report files at the end (thinned: the first and the latest of a loop are kept).
    pub reports_on_disk: usize,
}

pub fn restart_loop(
    gv: &Gitvisor,
    dir: &Path,
    exit_code: i32,
    others: usize,
    samples: usize,
) -> Result<RestartLoop> {
    let services = dir.join("services");
    let idle = dir.join("idle");
    let work = dir.join("work");
    for d in [&services, &idle, &work] {
        std::fs::create_dir_all(d)?;
    }
    for i in 0..20 {
        std::fs::write(work.join(format!("file-{i:02}.txt")), format!("line {i}\n").repeat(50))?;
    }
    let file = dir.join("loop-stamps");
    let exec = format!("{} --exit {exit_code} {}", gv.stamp.display(), file.display());
    let extra =
        format!("Restart=always\nRestartSec=0\nStartLimitIntervalSec=0\nWorkingDirectory={}", work.display());
    std::fs::write(services.join("loop.service"), gv.unit(&exec, &extra))?;
    for i in 0..others {
        let exec = format!("{} --idle {}", gv.stamp.display(), idle.join(i.to_string()).display());
        std::fs::write(services.join(format!("idle-{i:03}.service")), gv.unit(&exec, ""))?;
    }
    let outcome = (|| -> Result<RestartLoop> {
        let mut session = gv.launch_home(dir)?;
        let mut err = None;
        // The idle services' stamps are read only until all are there: read every 2 ms while
        // the samples are counted, 300 files would cost this process a good part of a core and
        // be measured as the engine's slowness beside them.
        let mut all_idle = others == 0;
        let mut wait = |n: usize, what: &str, session: &mut dyn Session| -> Result<()> {
            let done =
                wait_for(Duration::from_secs(120), Duration::from_millis(2), || match session.check() {
                    Err(e) => {
                        err = Some(e);
                        true
                    }
                    Ok(()) => {
                        all_idle = all_idle || stamps::read_dir(&idle).len() >= others;
                        all_idle && stamps::read(&file).len() >= n
                    }
                })?;
            if let Some(e) = err.take() {
                return Err(e);
            }
            if !done {
                return Err(format!("{what}: {} restarts within 120 s", stamps::read(&file).len()).into());
            }
            Ok(())
        };
        wait(WARMUP, "warm-up", &mut session)?;
        let groups = session.groups();
        let from = stamps::read(&file).len();
        let before: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
        wait(from + samples, "samples", &mut session)?;
        let after: Vec<Snapshot> = groups.iter().map(Snapshot::take).collect();
        let all = stamps::read(&file);
        let restarts = all.len() - from;
        let costs: Vec<_> =
            groups.iter().zip(before.iter().zip(&after)).map(|(g, (b, a))| cost(g, b, a)).collect();
        let per = |role: &str| {
            costs.iter().find(|c| c.role == role).map_or(0.0, |c| c.cpu_precise_s * 1000.0 / restarts as f64)
        };
        let intervals = stamps::intervals(&all[from.saturating_sub(1)..], 0).ok_or("no restart intervals")?;
        let daemon_rss_kib = costs.iter().find(|c| c.role == "daemon").map_or(0, |c| c.rss_kib);
        session.stop()?;
        let reports_on_disk = std::fs::read_dir(dir.join("crash-reports"))
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz")).count())
            .unwrap_or(0);
        Ok(RestartLoop {
            exit_code,
            others,
            intervals,
            restarts,
            daemon_cpu_ms_per_restart: per("daemon"),
            keeper_cpu_ms_per_restart: per("log keeper"),
            daemon_rss_kib,
            reports_on_disk,
        })
    })();
    sweep(dir);
    outcome
}
