//! Crash report of a 50 MiB, 5,000-file working tree (gitvisor only), side by side with
//! `tar -czf` of the same tree.
//!
//! The tree is generated (deterministic, mixed sizes, about half the files compressible text and
//! half random bytes, in nested directories). One unit has it as `WorkingDirectory=` and runs
//! `bench-stamp --exit-when TRIGGER 3 FILE`: once the engine has noted the baseline capture in
//! the unit's log, the benchmark creates TRIGGER, the process stamps the time and exits 3, and
//! the figure is from that stamp to the moment the final `crash-*.tar.gz` is seen in
//! `crash-reports/` (polled every 2 ms; the engine renames it into place atomically). The
//! daemon's VmRSS and VmHWM are read before the crash and after the report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::process::{self, sweep, wait_for};
use crate::procfs;
use crate::stamps::{self, now_ns};
use crate::supervisors::gitvisor::Gitvisor;
use crate::supervisors::Session;
use crate::Result;

pub const TREE_FILES: usize = 5000;
pub const TREE_BYTES: u64 = 50 << 20;
const BASELINE_NOTE: &str = "baseline capture of its working directory";

#[derive(Serialize, Clone, Debug)]
pub struct CrashReport {
    pub tree_files: usize,
    pub tree_bytes: u64,
    /// Of the tree's bytes, in files of compressible text (the rest is random).
    pub tree_text_bytes: u64,
    /// From the exit stamp to the final report seen in crash-reports/, seconds.
    pub report_s: f64,
    /// From the exit stamp to the temporary `.tmp-crash-…` file first seen (the engine creates
    /// it once the working directory has been walked into the compressed spool, then writes
    /// report.json and the other files into it and copies the spool after them), seconds; None
    /// if the 2 ms polling never saw it.
    pub tmp_seen_s: Option<f64>,
    pub report_bytes: u64,
    pub report_name: String,
    /// From report.json's `workdir`: files listed, skipped entries, note.
    pub report_workdir_files: Option<usize>,
    pub report_workdir_skipped: Option<usize>,
    pub report_workdir_note: Option<String>,
    /// From launching the daemon to the baseline note in the unit's log, seconds.
    pub baseline_s: f64,
    /// The daemon, after the baseline capture and just before the crash.
    pub daemon_rss_before_kib: u64,
    pub daemon_hwm_before_kib: u64,
    /// The daemon, 0.5 s after the report appeared.
    pub daemon_rss_after_kib: u64,
    pub daemon_hwm_after_kib: u64,
    /// `tar -czf` of the same tree, run after the daemon stopped.
    pub tar_s: f64,
    pub tar_bytes: u64,
}

/// xorshift64*: a small deterministic generator, so every run builds the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const WORDS: [&str; 32] = [
    "service",
    "restart",
    "commit",
    "branch",
    "worker",
    "request",
    "timeout",
    "status",
    "error",
    "debug",
    "info",
    "warning",
    "connection",
    "pool",
    "cache",
    "queue",
    "retry",
    "handler",
    "latency",
    "upstream",
    "config",
    "reload",
    "session",
    "token",
    "socket",
    "closed",
    "opened",
    "started",
    "stopped",
    "listening",
    "accepted",
    "failed",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let _ = write!(out, "{:06} ", rng.below(1_000_000));
        for _ in 0..8 {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// Sizes of the tree's files: 4,000 small (0.5–4 KiB), 950 medium (8–32 KiB) and 50 large ones
/// sharing the rest of the 50 MiB unevenly.
fn sizes(rng: &mut Rng) -> Vec<u64> {
    let mut sizes = vec![0u64; TREE_FILES];
    let mut large = Vec::new();
    for (i, s) in sizes.iter_mut().enumerate() {
        if i % 100 == 0 {
            large.push(i);
        } else if i % 5 == 0 {
            *s = 8192 + rng.below(24 * 1024);
        } else {
            *s = 512 + rng.below(3584);
        }
    }
    let rest = TREE_BYTES - sizes.iter().sum::<u64>();
    let weights: Vec<u64> = large.iter().map(|_| 50 + rng.below(100)).collect();
    let total: u64 = weights.iter().sum();
    let mut given = 0;
    for (k, (&i, w)) in large.iter().zip(&weights).enumerate() {
        sizes[i] = if k + 1 == large.len() { rest - given } else { rest * w / total };
        given += sizes[i];
    }
    sizes
}

/// Writes the tree under `root`: d00..d19 / e0..e4 / [deep/ for some] fNNNN.{txt,bin}.
/// Returns the bytes in text files.
pub fn build_tree(root: &Path) -> Result<u64> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sizes = sizes(&mut rng);
    let mut text_bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let mut dir = root.join(format!("d{:02}", i % 20)).join(format!("e{}", (i / 20) % 5));
        if i % 7 == 0 {
            dir = dir.join("deep").join(format!("x{}", i % 3));
        }
        std::fs::create_dir_all(&dir)?;
        let compressible = rng.below(2) == 0;
        let (name, data) = if compressible {
            text_bytes += size;
            (format!("f{i:04}.txt"), text(&mut rng, size as usize))
        } else {
            let mut buf = vec![0u8; size as usize];
            rng.fill(&mut buf);
            (format!("f{i:04}.bin"), buf)
        };
        std::fs::write(dir.join(name), data)?;
    }
    Ok(text_bytes)
}

/// What crash-reports/ holds: (a temporary report is there, the path of a final report).
fn scan_reports(reports: &Path) -> (bool, Option<PathBuf>) {
    let mut tmp = false;
    let Ok(entries) = std::fs::read_dir(reports) else { return (false, None) };
    for p in entries.flatten().map(|e| e.path()) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("crash-") && name.ends_with(".tar.gz") {
            return (tmp, Some(p));
        }
        tmp |= name.starts_with(".tmp-crash-");
    }
    (tmp, None)
}

/// report.json's `workdir` from a report tarball.
fn workdir_summary(report: &Path) -> Option<serde_json::Value> {
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(report)
        .args(["--wildcards", "*report.json"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    json.get("workdir").cloned()
}

pub fn crash_report(gv: &Gitvisor, dir: &Path) -> Result<CrashReport> {
    let services = dir.join("services");
    let tree = dir.join("tree");
    let reports = dir.join("crash-reports");
    let trigger = dir.join("crash-now");
    let exit_file = dir.join("exit-stamp");
    std::fs::create_dir_all(&services)?;
    let tree_text_bytes = build_tree(&tree)?;
    std::fs::write(
        dir.join("config.toml"),
        "[crash_reports]\nmax_bytes = \"4G\"\n\n[capture]\nmax_bytes = \"4G\"\n",
    )?;
    let exec = format!("{} --exit-when {} 3 {}", gv.stamp.display(), trigger.display(), exit_file.display());
    let extra = format!(
        "WorkingDirectory={}\nRestart=no\n\n[Capture]\nMaxFileSize=64M\nMaxTotalSize=1G\n",
        tree.display()
    );
    std::fs::write(services.join("crash.service"), gv.unit(&exec, &extra))?;
    let outcome = (|| -> Result<CrashReport> {
        let mut session = gv.launch_home(dir)?;
        let pid = session.daemon_pid();
        let result = (|| -> Result<CrashReport> {
            let log = dir.join("logs").join("crash.log");
            let mut err = None;
            let noted =
                wait_for(Duration::from_secs(60), Duration::from_millis(5), || match session.check() {
                    Err(e) => {
                        err = Some(e);
                        true
                    }
                    Ok(()) => std::fs::read_to_string(&log).is_ok_and(|t| t.contains(BASELINE_NOTE)),
                })?;
            if let Some(e) = err {
                return Err(e);
            }
            if !noted {
                return Err(format!("no baseline note in {} within 60 s", log.display()).into());
            }
            let baseline_s = now_ns().saturating_sub(session.launched_ns()) as f64 / 1e9;
            process::sleep(Duration::from_millis(500))?;
            let daemon_rss_before_kib = procfs::rss_kib(pid).unwrap_or(0);
            let daemon_hwm_before_kib = procfs::hwm_kib(pid).unwrap_or(0);
            std::fs::write(&trigger, "")?;
            let mut seen = None;
            let mut tmp_seen = None;
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(60) {
                let (tmp, done) = scan_reports(&reports);
                if tmp && tmp_seen.is_none() {
                    tmp_seen = Some(now_ns());
                }
                if let Some(p) = done {
                    seen = Some((now_ns(), p));
                    break;
                }
                if process::interrupted() {
                    return Err("interrupted".into());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let Some((seen_ns, report)) = seen else {
                session.check()?;
                return Err("no crash report within 60 s of the trigger".into());
            };
            let exited =
                stamps::read(&exit_file).first().copied().ok_or("the service wrote no exit stamp")?;
            process::sleep(Duration::from_millis(500))?;
            let daemon_rss_after_kib = procfs::rss_kib(pid).unwrap_or(0);
            let daemon_hwm_after_kib = procfs::hwm_kib(pid).unwrap_or(0);
            let workdir = workdir_summary(&report);
            let field = |k: &str| workdir.as_ref().and_then(|w| w.get(k)).cloned();
            Ok(CrashReport {
                tree_files: TREE_FILES,
                tree_bytes: TREE_BYTES,
                tree_text_bytes,
                report_s: seen_ns.saturating_sub(exited) as f64 / 1e9,
                tmp_seen_s: tmp_seen.map(|t| t.saturating_sub(exited) as f64 / 1e9),
                report_bytes: std::fs::metadata(&report)?.len(),
                report_name: report.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                report_workdir_files: field("files").and_then(|f| f.as_array().map(Vec::len)),
                report_workdir_skipped: field("skipped").and_then(|f| f.as_array().map(Vec::len)),
                report_workdir_note: field("note").and_then(|n| n.as_str().map(str::to_string)),
                baseline_s,
                daemon_rss_before_kib,
                daemon_hwm_before_kib,
                daemon_rss_after_kib,
                daemon_hwm_after_kib,
                tar_s: 0.0,
                tar_bytes: 0,
            })
        })();
        let stopped = session.stop();
        let mut r = result?;
        stopped?;
        // tar -czf of the same tree, with the daemon gone so nothing competes with it.
        let out = dir.join("tree.tar.gz");
        let t = Instant::now();
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&out)
            .arg("-C")
            .arg(dir)
            .arg("tree")
            .stdin(Stdio::null())
            .status()?;
        r.tar_s = t.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!("tar -czf failed: {status}").into());
        }
        r.tar_bytes = std::fs::metadata(&out)?.len();
        Ok(r)
    })();
    sweep(dir);
    outcome
}
