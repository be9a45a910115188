//! Crash reports (SPEC section 7) and workspace captures (section 6).
//!
//! The reporter is an event subscriber, not something the supervisor calls: when a service
//! becomes running, or its process is adopted from an earlier engine, it captures the
//! service's working directory (its baseline, off the start path); when the supervisor judged
//! an exit worth a report (`policy.rs`: a failure, or an unknown end restarted as one) it writes
//! `crash-NAME-STAMP-ID.tar.gz` with report.json, the unit as committed, the log tail as it
//! stood at that exit, the environment and a fresh capture of the working directory with what
//! changed since the baseline (and how the text of its changed files changed: `changes.patch`),
//! secrets redacted (`redact.rs`). Reports are written atomically,
//! bounded on disk, and thinned in crash loops. Any failure is logged and supervision goes on.

pub mod archive;
mod error;
pub mod names;
pub mod redact;
pub mod report;
pub mod retention;
pub mod workdir;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gitvisor_capture::{
    baseline_within, diff, sweep_every, text_diffs, Budget, Capture, CaptureId, KeepText, Store,
    StoreSettings, StreamError, StreamOptions,
};
use gitvisor_protocol::{EventKind, ExitInfo};
use gitvisor_units::Unit;

pub use error::CrashError;

use crate::background::Background;
use crate::events::{EventBus, Subscription};
use crate::logs::LogLink;
use crate::paths::Paths;
use crate::settings::Settings;
use names::ReportName;
use report::{Report, Workdir};
use retention::Loop;

/// A baseline keeps the bytes of small text files only (each at most this, this much in all
/// per service: enough to show a changed config as a diff); of the rest, sizes and hashes. The
/// crash-time capture streams the current files and keeps, within the same bounds, the text of
/// those that changed, for the report's diffs.
const BASELINE_KEEP_PER_FILE: u64 = 64 * 1024;
const BASELINE_KEEP_TOTAL: u64 = 8 * 1024 * 1024;

/// A baseline whose previous one had at most this many names is taken on the engine's thread,
/// within [`INLINE_BUDGET`] (see `Ctx::baseline`).
const INLINE_NAMES: usize = 256;
const INLINE_BUDGET: Budget = Budget { names: 2 * INLINE_NAMES, read_bytes: 256 * 1024 };

/// Walks `root` for a baseline (see [`baseline_within`]) and stores it: its id and number of
/// entries, or `None` when it needed more than `budget`.
fn take_baseline(
    store: &Mutex<Store>,
    root: &Path,
    limits: &gitvisor_capture::Limits,
    previous: Option<&Capture>,
    budget: Option<Budget>,
) -> std::io::Result<Option<(CaptureId, usize)>> {
    let blobs = store.lock().unwrap_or_else(|e| e.into_inner()).blobs().clone();
    let Some(capture) =
        baseline_within(root, limits, &blobs, previous, BASELINE_KEEP_PER_FILE, BASELINE_KEEP_TOTAL, budget)?
    else {
        return Ok(None);
    };
    let files = capture.entries.len();
    let (id, _) = store.lock().unwrap_or_else(|e| e.into_inner()).add(capture, Instant::now());
    Ok(Some((id, files)))
}

/// What the reporter needs to know of a service, from the engine.
pub struct ServiceInfo {
    pub unit: Arc<Unit>,
    pub commit: Option<String>,
    pub restarts: u32,
    /// `[Watch]`: the change that last restarted it.
    pub last_change: Option<crate::watch::Change>,
}

pub type Lookup = Arc<dyn Fn(&str) -> Option<ServiceInfo> + Send + Sync>;

/// The exit being reported, as the `Exited` event told it: frozen at the exit, whatever the
/// service did since (a crash loop restarts it before the report is written).
struct Exit {
    pid: u32,
    exit: ExitInfo,
    started_ms: Option<u64>,
    /// Automatic restarts before this exit.
    restarts: u32,
    /// Why the engine ended it, when that is the cause (failed health probes).
    reason: Option<String>,
    oom: bool,
    peak_memory_kb: Option<u64>,
}

#[derive(Clone)]
struct Ctx {
    paths: Paths,
    settings: Settings,
    logs: Arc<LogLink>,
    bus: EventBus,
    lookup: Lookup,
    store: Arc<Mutex<Store>>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    baselines: HashMap<String, CaptureId>,
    loops: HashMap<String, Loop>,
    /// Per service, the latest crash of a loop held back (see [`retention::LOOP_REPORT_EVERY`])
    /// and when it is due.
    held: HashMap<String, (Instant, Held)>,
}

/// A crash whose report waits: what must be taken at the exit (the exit, the log tail as it
/// stood); the rest (capture, archive) is done when it is written.
struct Held {
    exit: Exit,
    tail: Vec<Arc<gitvisor_protocol::LogLine>>,
}

/// What the reporter is given to work with.
pub struct Setup {
    pub paths: Paths,
    pub settings: Settings,
    pub logs: Arc<LogLink>,
    pub bus: EventBus,
    pub lookup: Lookup,
}

/// The events the crash reporter acts on (its subscription's filter): a start (a baseline of
/// the working directory) and an exit that wants a report.
pub fn takes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::State { to: gitvisor_protocol::ServiceState::Running, .. }
            | EventKind::Adopted { .. }
            | EventKind::Exited { report: true, .. }
    )
}

/// Starts the reporter (reading `sub`) and the capture store's sweeper as tasks of
/// `background`; returns the handle the engine's operations use.
pub fn start(setup: Setup, mut sub: Subscription, background: &Background) -> CrashHandle {
    let Setup { paths, settings, logs, bus, lookup } = setup;
    let (store_settings, warnings) = StoreSettings {
        ttl: settings.capture.ttl,
        max_captures: settings.capture.max_captures as usize,
        max_bytes: settings.capture.max_bytes,
    }
    .sanitized();
    for w in warnings {
        tracing::warn!("[capture] {w}");
    }
    let store = Arc::new(Mutex::new(Store::new(store_settings)));
    background.spawn(
        "capture sweeper",
        sweep_every(store.clone(), settings.capture.sweep_interval, Arc::default()),
    );
    let ctx =
        Ctx { paths, settings, logs, bus, lookup, store, state: Arc::new(Mutex::new(State::default())) };
    let _ = std::fs::create_dir_all(&ctx.paths.crash_reports);
    retention::enforce(&ctx.paths.crash_reports, &ctx.settings.crash_reports);
    let me = ctx.clone();
    background.spawn("crash reporter", async move {
        loop {
            let due = me.state().held.values().map(|(due, _)| *due).min();
            let ev = tokio::select! {
                ev = sub.recv() => ev,
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                    me.write_held().await;
                    continue;
                }
            };
            let Some(ev) = ev else { break };
            match ev.kind {
                // An adopted service begins running without a State event.
                EventKind::State { service, to: gitvisor_protocol::ServiceState::Running, .. }
                | EventKind::Adopted { service, .. } => {
                    me.baseline(&service).await;
                }
                // The supervisor's policy judged the exit (policy.rs): a report is due or not.
                EventKind::Exited {
                    service,
                    pid,
                    exit,
                    report: true,
                    started_ms,
                    restarts,
                    reason,
                    oom,
                    peak_memory_kb,
                    ..
                } => {
                    let exit = Exit { pid, exit, started_ms, restarts, reason, oom, peak_memory_kb };
                    me.crash(&service, exit).await;
                }
                EventKind::Lagged { missed } => {
                    tracing::warn!("crash reporter: {missed} events missed; some crashes may have no report");
                }
                _ => {}
            }
        }
    });
    CrashHandle { ctx }
}

/// What the engine's operations use of the reporter, cheap to clone.
#[derive(Clone)]
pub struct CrashHandle {
    ctx: Ctx,
}

impl CrashHandle {
    /// A manual capture of a service's working directory, written like a report
    /// (`capture-NAME-STAMP-ID.tar.gz`). Returns its id.
    pub async fn capture_now(&self, service: &str) -> Result<String, CrashError> {
        let info = (self.ctx.lookup)(service)
            .ok_or_else(|| CrashError::Capture(format!("no service named {service}")))?;
        if let Some(why) = workdir::capture_off(&info.unit) {
            return Err(CrashError::CaptureOff { service: service.to_string(), why });
        }
        let root = workdir::root(&info.unit);
        let me = self.ctx.clone();
        let service = service.to_string();
        tokio::task::spawn_blocking(move || {
            let name = ReportName::new("capture", &service, SystemTime::now());
            let cannot_write =
                |e: std::io::Error| CrashError::Capture(format!("cannot write the capture: {e}"));
            let mut spool = archive::Spool::new(&me.paths.crash_reports).map_err(cannot_write)?;
            let options = workdir_options(&info.unit, &root, None, None);
            let streamed =
                spool.workdir(&root, &workdir::limits(&info.unit), &options).map_err(|e| match e {
                    StreamError::Root(e) => {
                        CrashError::Capture(format!("cannot capture {}: {e}", root.display()))
                    }
                    StreamError::Archive(e) => cannot_write(e),
                })?;
            let (files, skipped) = report::describe(&streamed);
            let r = Report {
                format: report::FORMAT,
                kind: "capture".into(),
                id: name.id(),
                service: service.clone(),
                unit_file: info.unit.name.file_name(),
                commit: info.commit.clone(),
                pid: None,
                reason: "manual capture".into(),
                exit: None,
                oom: false,
                started_at: None,
                exited_at: None,
                uptime_ms: None,
                restarts: info.restarts,
                peak_memory_kb: None,
                cpu_time_ms: None,
                host: host(),
                engine_version: env!("CARGO_PKG_VERSION").into(),
                workdir: Workdir {
                    root: Some(root.display().to_string()),
                    included: true,
                    note: None,
                    total_bytes: streamed.archived_bytes,
                    files,
                    skipped,
                },
                changes: None,
                baseline_taken_at: None,
                after_change: None,
                suppressed: 0,
                log_lines: 0,
            };
            let parts = vec![archive::Part {
                path: "report.json".into(),
                bytes: serde_json::to_vec_pretty(&r).unwrap_or_default(),
            }];
            archive::write(&me.paths.crash_reports, &name.file_name(), &parts, spool)
                .map_err(cannot_write)?;
            retention::enforce(&me.paths.crash_reports, &me.settings.crash_reports);
            Ok(name.id())
        })
        .await
        .map_err(|e| CrashError::Capture(format!("the capture failed: {e}")))?
    }
}

fn host() -> String {
    crate::time::host_name()
}

/// How a service's working directory goes into a report: its environment files redacted
/// (`redact.rs`), at most `archive_limit` bytes of it, and with a baseline the text of the
/// files changed since, for their diffs.
fn workdir_options(
    unit: &Unit,
    root: &Path,
    archive_limit: Option<u64>,
    baseline: Option<Arc<Capture>>,
) -> StreamOptions {
    let files: Vec<PathBuf> = unit.environment_files.iter().map(|f| f.path.clone()).collect();
    let keep_text = baseline.map(|baseline| KeepText {
        baseline,
        per_file: BASELINE_KEEP_PER_FILE,
        total: BASELINE_KEEP_TOTAL,
    });
    StreamOptions { rewrite: Some(redact::env_files_in_workdir(&files, root)), archive_limit, keep_text }
}

fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl Ctx {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn baseline(&self, service: &str) {
        let Some(info) = (self.lookup)(service) else { return };
        if workdir::capture_off(&info.unit).is_some() {
            return;
        }
        let root = workdir::root(&info.unit);
        let limits = workdir::limits(&info.unit);
        // The previous start's baseline lends the bytes of the files that have not changed
        // since (same size, times and inode): a service restarting in a loop costs a stat per
        // file, not a read of its whole tree at every start.
        let previous = self.state().baselines.get(service).copied();
        let previous = previous.and_then(|id| self.store.lock().unwrap_or_else(|e| e.into_inner()).get(id));
        let previous_entries = previous.as_ref().map(|c| c.entries.len());
        // A small tree seen before is taken here, on the engine's thread: a stat per name, about
        // what the start's own spawn costs, where a hand-off to a blocking thread and back
        // cost more than the walk. Past the budget (the tree grew, or changed files must be
        // read) it is taken again on a blocking thread.
        let small = previous.as_ref().is_some_and(|p| p.entries.len() + p.skipped.len() <= INLINE_NAMES);
        let inline = small
            .then(|| take_baseline(&self.store, &root, &limits, previous.as_deref(), Some(INLINE_BUDGET)));
        let taken = match inline {
            Some(Ok(Some(taken))) => Ok(Ok(taken)),
            Some(Err(e)) => Ok(Err(e)),
            None | Some(Ok(None)) => {
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || {
                    take_baseline(&store, &root, &limits, previous.as_deref(), None)
                        .map(|taken| taken.expect("a walk without a budget is never over it"))
                })
                .await
            }
        };
        match taken {
            Ok(Ok((id, files))) => {
                // Said when it is news, not at every start of a restart loop.
                if previous_entries != Some(files) {
                    self.logs
                        .note(service, format!("baseline capture of its working directory: {files} entries"));
                }
                let old = self.state().baselines.insert(service.to_string(), id);
                if let Some(old) = old {
                    self.store.lock().unwrap_or_else(|e| e.into_inner()).release(old);
                }
            }
            Ok(Err(e)) => tracing::warn!(service, "no baseline capture of its working directory: {e}"),
            Err(e) => tracing::warn!(service, "baseline capture failed: {e}"),
        }
    }

    async fn crash(&self, service: &str, exit: Exit) {
        let Some(info) = (self.lookup)(service) else { return };
        let uptime_ms = exit.started_ms.map(|s| exit.exit.at_ms.saturating_sub(s));
        // A crash after the service stayed up long enough starts a new loop.
        let reset_after = info.unit.restart_max_delay.unwrap_or(Duration::from_secs(10));
        if uptime_ms.is_some_and(|u| u >= reset_after.as_millis() as u64) {
            self.state().loops.remove(service);
        }
        // Let the last lines it printed and the note of its exit arrive first (bounded: a child
        // may hold its pipes); then take the tail as it stood at this exit.
        self.logs.wait_exit_told(service, exit.pid, Duration::from_millis(500)).await;
        let tail = self.logs.tail_at_exit(service, exit.pid, 200);
        let held = Held { exit, tail };
        // A loop whose kept reports are all written and whose last is recent: this crash waits,
        // replacing one that waited (counted as suppressed). A crash loop's reports after the
        // kept ones cost a copy of the tail, not a capture and an archive each.
        let earlier = {
            let mut st = self.state();
            let due = st.loops.get(service).and_then(|l| l.report_not_before(Instant::now()));
            if let Some(due) = due {
                if st.held.insert(service.to_string(), (due, held)).is_some() {
                    if let Some(l) = st.loops.get_mut(service) {
                        l.suppressed += 1;
                    }
                }
                return;
            }
            st.held.remove(service)
        };
        // A crash that waited is written first (it came before this one).
        if let Some((_, earlier)) = earlier {
            if let Some(info) = (self.lookup)(service) {
                self.report(service, info, earlier).await;
            }
        }
        self.report(service, info, held).await;
    }

    /// Writes the held reports that are due.
    async fn write_held(&self) {
        let now = Instant::now();
        let due: Vec<(String, Held)> = {
            let mut st = self.state();
            let names: Vec<String> =
                st.held.iter().filter(|(_, (at, _))| *at <= now).map(|(n, _)| n.clone()).collect();
            names.into_iter().filter_map(|n| st.held.remove(&n).map(|(_, h)| (n, h))).collect()
        };
        for (service, held) in due {
            if let Some(info) = (self.lookup)(&service) {
                self.report(&service, info, held).await;
            }
        }
    }

    /// Writes the report of one crash.
    async fn report(&self, service: &str, info: ServiceInfo, Held { exit, tail }: Held) {
        let uptime_ms = exit.started_ms.map(|s| exit.exit.at_ms.saturating_sub(s));
        let (doomed, suppressed) = {
            let mut st = self.state();
            let l = st.loops.entry(service.to_string()).or_default();
            let doomed = l.make_room();
            (doomed, l.suppressed)
        };
        let baseline = self.state().baselines.get(service).copied();
        let baseline = baseline.and_then(|id| self.store.lock().unwrap_or_else(|e| e.into_inner()).get(id));
        // The engine's notes quote command lines: secrets go, as in the unit's copy.
        let tail: Vec<String> =
            tail.iter().map(|l| redact::text(&crate::logs::lines::format_line(l))).collect();
        let env = crate::supervisor::spawn::prepare(&info.unit, &info.unit.exec_start, service, &[])
            .map(|s| s.env)
            .unwrap_or_default();
        let me = self.clone();
        let service_name = service.to_string();
        let written = tokio::task::spawn_blocking(move || {
            // Reading the repository blocks: off the engine's thread, like the writing.
            let unit_text = me.unit_text(&info);
            me.write_crash(
                &service_name,
                &exit,
                &info,
                uptime_ms,
                suppressed,
                baseline,
                &tail,
                &env,
                unit_text,
            )
        })
        .await;
        match written {
            Ok(Ok(id)) => {
                let mut st = self.state();
                let l = st.loops.entry(service.to_string()).or_default();
                l.written(id.clone(), Instant::now());
                drop(st);
                if let Some(old) = doomed {
                    if let Some(name) = ReportName::parse(&old) {
                        if let Ok(p) = name.path_in(&self.paths.crash_reports) {
                            let _ = std::fs::remove_file(p);
                        }
                    }
                }
                retention::enforce(&self.paths.crash_reports, &self.settings.crash_reports);
                self.logs.note(service, format!("crash report {id}"));
                self.bus.publish(EventKind::CrashReport { service: service.to_string(), id });
            }
            Ok(Err(e)) => tracing::error!(service, "cannot write a crash report: {e}"),
            Err(e) => tracing::error!(service, "crash report task failed: {e}"),
        }
    }

    /// The unit file as committed (the template's, for an instance), secrets redacted.
    fn unit_text(&self, info: &ServiceInfo) -> Vec<u8> {
        let file = match info.unit.name.template() {
            Some(t) => t.file_name(),
            None => info.unit.name.file_name(),
        };
        let from_commit = info.commit.as_deref().and_then(|c| {
            let repo = crate::git::ServicesRepo::open(&self.paths.services).ok()?;
            let id = repo.resolve(c).ok()?;
            repo.file_at(id, &file).ok()?
        });
        let text = from_commit
            .unwrap_or_else(|| format!("# {file}: not found in commit {:?}\n", info.commit).into_bytes());
        redact::unit_file(&String::from_utf8_lossy(&text)).into_bytes()
    }

    #[allow(clippy::too_many_arguments)]
    fn write_crash(
        &self,
        service: &str,
        exit: &Exit,
        info: &ServiceInfo,
        uptime_ms: Option<u64>,
        suppressed: u64,
        baseline: Option<Arc<Capture>>,
        tail: &[String],
        env: &[(String, String)],
        unit_text: Vec<u8>,
    ) -> Result<String, String> {
        let name = ReportName::new("crash", service, SystemTime::now());
        let root = workdir::root(&info.unit);
        let mut dir = Workdir { root: Some(root.display().to_string()), ..Workdir::default() };
        // A report that alone would exceed the budget goes without its capture: the walk stops
        // writing it there, and goes on to list and hash the rest.
        let budget = self.settings.crash_reports.max_bytes;
        let options = workdir_options(&info.unit, &root, Some(budget), baseline.clone());
        // The working directory goes into the spool as it is walked; the report's own files are
        // written once what it held is known (archive.rs).
        let captured = if let Some(why) = workdir::capture_off(&info.unit) {
            dir.note = Some(format!("not captured: {why}"));
            None
        } else {
            let mut spool = archive::Spool::new(&self.paths.crash_reports).map_err(|e| e.to_string())?;
            match spool.workdir(&root, &workdir::limits(&info.unit), &options) {
                Ok(streamed) => {
                    if !streamed.complete {
                        dir.note = Some(format!(
                            "the working directory ({} bytes) is too large for the crash report budget ({} bytes): not included",
                            streamed.archived_bytes, budget
                        ));
                    }
                    Some((spool, streamed))
                }
                Err(StreamError::Root(e)) => {
                    dir.note = Some(format!("cannot capture {}: {e}", root.display()));
                    None
                }
                Err(StreamError::Archive(e)) => return Err(e.to_string()),
            }
        };
        // Compared as found (an environment file before its redaction), unchanged files by hash;
        // the text of changed ones as the archive holds it (redacted), against the baseline's
        // redacted the same way. The patch has every diff whole, report.json a bounded part.
        let mut changes = match (&baseline, &captured) {
            (Some(b), Some((_, s))) => Some(diff(b, &s.capture)),
            _ => None,
        };
        let mut patch = String::new();
        if let (Some(changes), Some(keep), Some((_, s))) = (&mut changes, &options.keep_text, &captured) {
            text_diffs(changes, keep, s, options.rewrite.as_ref());
            // Shown in `crash show` and the window, so redacted as the log tail is: a changed
            // `password:` line says that it changed, not what it was or is.
            for m in &mut changes.modified {
                if let Some(d) = &mut m.diff {
                    *d = d
                        .split_inclusive('\n')
                        .map(|l| match l.strip_suffix('\n') {
                            Some(l) => redact::text(l) + "\n",
                            None => redact::text(l),
                        })
                        .collect();
                }
            }
            patch = changes.patch();
            report::bound_diffs(changes);
        }
        if let Some((_, s)) = &captured {
            let (files, skipped) = report::describe(s);
            dir.files = files;
            dir.skipped = skipped;
            dir.total_bytes = s.archived_bytes;
        }
        dir.included = captured.as_ref().is_some_and(|(_, s)| s.complete);
        let rest = match captured {
            Some((spool, s)) if s.complete => spool,
            // Without workdir/, the tar's end alone follows the report's files.
            _ => archive::Spool::new(&self.paths.crash_reports).map_err(|e| e.to_string())?,
        };
        let r = Report {
            format: report::FORMAT,
            kind: "crash".into(),
            id: name.id(),
            service: service.to_string(),
            unit_file: info.unit.name.file_name(),
            commit: info.commit.clone(),
            pid: Some(exit.pid),
            reason: match &exit.reason {
                Some(why) => format!("{why} ({})", exit.exit.describe()),
                None => exit.exit.describe(),
            },
            exit: Some(exit.exit.clone()),
            oom: exit.oom,
            started_at: exit.started_ms.map(rfc3339_ms),
            exited_at: Some(rfc3339_ms(exit.exit.at_ms)),
            uptime_ms,
            restarts: exit.restarts,
            peak_memory_kb: exit.peak_memory_kb,
            cpu_time_ms: exit.exit.usage.map(|u| u.cpu_ms),
            host: host(),
            engine_version: env!("CARGO_PKG_VERSION").into(),
            workdir: dir,
            changes,
            baseline_taken_at: baseline.map(|b| humantime::format_rfc3339_millis(b.taken_at).to_string()),
            suppressed,
            log_lines: tail.len(),
            after_change: report::AfterChange::of(info.last_change.as_ref(), exit.exit.at_ms),
        };
        let mut log = tail.join("\n");
        log.push('\n');
        let unit_path = match info.unit.name.template() {
            Some(t) => format!("unit/{}", t.file_name()),
            None => format!("unit/{}", info.unit.name.file_name()),
        };
        let mut parts = vec![
            archive::Part {
                path: "report.json".into(),
                bytes: serde_json::to_vec_pretty(&r).unwrap_or_default(),
            },
            archive::Part { path: unit_path, bytes: unit_text },
            archive::Part { path: "logs/tail.log".into(), bytes: log.into_bytes() },
            archive::Part { path: "env.txt".into(), bytes: redact::env_text(env).into_bytes() },
        ];
        if !patch.is_empty() {
            parts.push(archive::Part { path: "changes.patch".into(), bytes: patch.into_bytes() });
        }
        archive::write(&self.paths.crash_reports, &name.file_name(), &parts, rest)
            .map_err(|e| e.to_string())?;
        Ok(name.id())
    }
}
