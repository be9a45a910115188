//! The window's commands: each is one typed request to the engine (through the backend) or a
//! call into the app's own state. Declared in build.rs so each one is a permission. Errors are
//! `{ code, message }` ([`CommandError`]).

use gitvisor_protocol::{
    Capture, CaptureReply, CommitDiff, CrashExport, CrashExportReply, CrashList, CrashShow, CrashShowReply,
    Diff, ErrorCode, History, HistoryReply, Import, ImportReply, MetricsReply, OpReply, Restart, Rollback,
    RollbackReply, ServiceLogLine, ServiceName, Start, Status, StatusReply, Stop, SyncNow, SyncReport,
    Timers, TimersReply, UnitCheck, UnitCommit, UnitCommitReply, UnitDelete, UnitDiscard, UnitDraft, UnitGet,
    UnitText, UnitValidate,
};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime, State};

use crate::error::CommandError;
use crate::shell::{Shell, Snapshot};
use crate::window;

type Result<T> = std::result::Result<T, CommandError>;

/// How long a batch of log lines waits for more after its first (about a frame).
const LOG_BATCH: std::time::Duration = std::time::Duration::from_millis(16);
const LOG_BATCH_LINES: usize = 1000;

/// `follow_logs`'s name for every service at once (no unit can be called so).
const ALL_SERVICES: &str = "*";

/// The last status the engine gave, with the app's own counters: what the window shows
/// before the first `gv:status` event reaches it.
#[tauri::command]
pub fn snapshot(shell: State<'_, Shell>) -> Snapshot {
    shell.snapshot()
}

#[tauri::command]
pub async fn status(shell: State<'_, Shell>) -> Result<StatusReply> {
    shell.backend.call(Status::all()).await
}

/// Start, stop or restart of one service, from the window or the tray menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Restart,
}

impl Op {
    /// Runs it; a service's failure is an error with the service's own code and message.
    pub async fn run(self, shell: &Shell, name: &str) -> Result<OpReply> {
        let names = vec![ServiceName::new(name)];
        let reply = match self {
            Op::Start => shell.backend.call(Start { names, wait: false }).await,
            Op::Stop => shell.backend.call(Stop { names }).await,
            Op::Restart => shell.backend.call(Restart { names }).await,
        }?;
        shell.refresh.notify_one();
        // The named service's failure first; else one the operation reached for it (named).
        let failed = reply.results.iter().filter(|r| !r.ok);
        let failed = failed.clone().find(|r| r.name == name).or_else(|| failed.clone().next());
        match failed {
            Some(f) => {
                let error = f.error.clone().unwrap_or_else(|| format!("{} {} failed", self.name(), f.name));
                let message = if f.name == name { error } else { format!("{}: {error}", f.name) };
                Err(CommandError::new(f.code.unwrap_or(ErrorCode::OperationFailed), message))
            }
            None => Ok(reply),
        }
    }

    /// The method's name, for messages: `start`.
    pub fn name(self) -> &'static str {
        use gitvisor_protocol::Method;
        match self {
            Op::Start => Start::NAME,
            Op::Stop => Stop::NAME,
            Op::Restart => Restart::NAME,
        }
    }
}

/// The services' recent CPU and memory samples (every service's when `names` is empty).
#[tauri::command]
pub async fn metrics(shell: State<'_, Shell>, names: Vec<String>) -> Result<MetricsReply> {
    let names = names.iter().map(|n| ServiceName::new(n.as_str())).collect();
    shell.backend.call(gitvisor_protocol::Metrics { names }).await
}

/// The timer units with their next and last elapse.
#[tauri::command]
pub async fn timers(shell: State<'_, Shell>) -> Result<TimersReply> {
    shell.backend.call(Timers {}).await
}

#[tauri::command]
pub async fn start(shell: State<'_, Shell>, name: String) -> Result<OpReply> {
    Op::Start.run(&shell, &name).await
}

#[tauri::command]
pub async fn stop(shell: State<'_, Shell>, name: String) -> Result<OpReply> {
    Op::Stop.run(&shell, &name).await
}

#[tauri::command]
pub async fn restart(shell: State<'_, Shell>, name: String) -> Result<OpReply> {
    Op::Restart.run(&shell, &name).await
}

/// The last `lines` lines of a service's log (of every service's, interleaved by time, for
/// `*`), then its new lines as `gv:log` events to the window until `unfollow_logs`, another
/// `follow_logs`, or the window closes. Each event is an array of the lines that came within
/// [`LOG_BATCH`] of its first (at most [`LOG_BATCH_LINES`]): a service printing thousands of
/// lines a second costs the page one event a frame, not one per line.
#[tauri::command]
pub async fn follow_logs<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    name: String,
    lines: usize,
) -> Result<Vec<ServiceLogLine>> {
    let names = if name == ALL_SERVICES { Vec::new() } else { vec![ServiceName::new(&name)] };
    let (tail, mut stream) = shell.backend.follow_logs(names, lines.min(10_000)).await?;
    let task = tauri::async_runtime::spawn(async move {
        // The stream is read by its own task (its reads are not cancelled half way); batches
        // are cut from the channel, whose receive is.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ServiceLogLine>(LOG_BATCH_LINES * 4);
        let reader = tauri::async_runtime::spawn(async move {
            while let Some(line) = stream.next().await {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let until = tokio::time::Instant::now() + LOG_BATCH;
            while batch.len() < LOG_BATCH_LINES {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(line)) => batch.push(line),
                    Ok(None) | Err(_) => break,
                }
            }
            if app.emit_to(window::LABEL, "gv:log", batch).is_err() {
                break;
            }
        }
        reader.abort();
    });
    if let Some(old) = shell.follow.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
        old.abort();
    }
    Ok(tail)
}

#[tauri::command]
pub fn unfollow_logs(shell: State<'_, Shell>) {
    if let Some(task) = shell.follow.lock().unwrap_or_else(|e| e.into_inner()).take() {
        task.abort();
    }
}

#[tauri::command]
pub async fn sync(shell: State<'_, Shell>) -> Result<SyncReport> {
    shell.backend.call(SyncNow {}).await
}

#[tauri::command]
pub async fn history(shell: State<'_, Shell>, limit: usize) -> Result<HistoryReply> {
    shell.backend.call(History { limit: limit.clamp(1, 1000) }).await
}

/// What a commit changed in the unit files.
#[tauri::command]
pub async fn commit_diff(shell: State<'_, Shell>, commit: String) -> Result<String> {
    shell.backend.call(CommitDiff { commit }).await
}

/// What rolling back to a commit would change: shown before the user confirms.
#[tauri::command]
pub async fn rollback_diff(shell: State<'_, Shell>, commit: String) -> Result<String> {
    shell.backend.call(Diff { commit }).await
}

#[tauri::command]
pub async fn rollback(shell: State<'_, Shell>, commit: String) -> Result<RollbackReply> {
    shell.backend.call(Rollback { commit }).await
}

/// Imports Procfiles, process-compose files, PM2 ecosystem files or systemd units (absolute
/// paths): with `dry_run`, the units and what did not translate, nothing written.
#[tauri::command]
pub async fn import_units(shell: State<'_, Shell>, paths: Vec<String>, dry_run: bool) -> Result<ImportReply> {
    let reply = shell.backend.call(Import { paths, dry_run, prefix: None }).await?;
    if !dry_run {
        shell.refresh.notify_one();
    }
    Ok(reply)
}

#[tauri::command]
pub async fn crash_list(shell: State<'_, Shell>) -> Result<gitvisor_protocol::CrashListReply> {
    shell.backend.call(CrashList::default()).await
}

#[tauri::command]
pub async fn crash_show(shell: State<'_, Shell>, id: String) -> Result<CrashShowReply> {
    shell.backend.call(CrashShow { id }).await
}

/// Copies a report's archive to `path` (absolute; an existing file is never overwritten).
#[tauri::command]
pub async fn crash_export(shell: State<'_, Shell>, id: String, path: String) -> Result<CrashExportReply> {
    shell.backend.call(CrashExport { id, path }).await
}

/// The user has seen the crash reports: the "new" count drops to zero.
#[tauri::command]
pub async fn crash_seen<R: Runtime>(app: AppHandle<R>, shell: State<'_, Shell>) -> Result<()> {
    let list = shell.backend.call(CrashList::default()).await?;
    shell.mark_seen(&list).map_err(CommandError::app)?;
    crate::pump::publish_crash_count(&app, &shell, shell.count_new(&list));
    Ok(())
}

/// Captures a service's working directory now, as a report of kind `capture`.
#[tauri::command]
pub async fn capture(shell: State<'_, Shell>, name: String) -> Result<CaptureReply> {
    shell.backend.call(Capture { name: ServiceName::new(&name) }).await
}

#[derive(Serialize)]
pub struct AppInfo {
    pub version: String,
    pub home: String,
    pub attached: bool,
    pub autostart: bool,
    /// Where an export goes by default.
    pub export_dir: String,
}

#[tauri::command]
pub fn app_info<R: Runtime>(app: AppHandle<R>, shell: State<'_, Shell>) -> AppInfo {
    use tauri::Manager;
    let export_dir = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/tmp".into());
    AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        home: shell.backend.paths().home.display().to_string(),
        attached: shell.backend.attached(),
        autostart: crate::autostart::enabled(&app),
        export_dir,
    }
}

/// Runs the engine in this app when the daemon it was attached to is gone (see
/// `Backend::take_over`); the window and tray follow at once.
pub async fn take_over_here(shell: &Shell) -> Result<()> {
    shell.backend.take_over().await?;
    {
        let mut snap = shell.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        snap.attached = shell.backend.attached();
    }
    shell.refresh.notify_one();
    Ok(())
}

#[tauri::command]
pub async fn take_over<R: Runtime>(app: AppHandle<R>, shell: State<'_, Shell>) -> Result<()> {
    take_over_here(&shell).await?;
    crate::pump::publish(&app, &shell);
    Ok(())
}

/// Turns start at login on or off; answers the state now in force.
#[tauri::command]
pub fn set_autostart<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Result<bool> {
    crate::autostart::set(&app, enabled).map_err(CommandError::app)
}

/// A unit file to edit: committed text, uncommitted edits, draft, and where to start.
#[tauri::command]
pub async fn unit_get(shell: State<'_, Shell>, name: String) -> Result<UnitText> {
    shell.backend.call(UnitGet { name }).await
}

/// The engine's validator on text being typed (nothing saved).
#[tauri::command]
pub async fn unit_validate(shell: State<'_, Shell>, name: String, text: String) -> Result<UnitCheck> {
    shell.backend.call(UnitValidate { name, text }).await
}

/// Commits a unit's text (refused while it has errors) and applies it.
#[tauri::command]
pub async fn unit_commit(
    shell: State<'_, Shell>,
    name: String,
    text: String,
    message: Option<String>,
) -> Result<UnitCommitReply> {
    let reply = shell.backend.call(UnitCommit { name, text, message }).await?;
    shell.refresh.notify_one();
    Ok(reply)
}

/// Removes a unit in a commit (its service stops).
#[tauri::command]
pub async fn unit_delete(
    shell: State<'_, Shell>,
    name: String,
    message: Option<String>,
) -> Result<UnitCommitReply> {
    let reply = shell.backend.call(UnitDelete { name, message }).await?;
    shell.refresh.notify_one();
    Ok(reply)
}

/// Keeps the text of an edit as a draft in the home (or forgets it without `text`).
#[tauri::command]
pub async fn unit_draft(shell: State<'_, Shell>, name: String, text: Option<String>) -> Result<UnitText> {
    shell.backend.call(UnitDraft { name, text }).await
}

/// Puts a unit file of the repository back as committed.
#[tauri::command]
pub async fn unit_discard(shell: State<'_, Shell>, name: String) -> Result<UnitText> {
    let reply = shell.backend.call(UnitDiscard { name }).await?;
    shell.refresh.notify_one();
    Ok(reply)
}

/// The dependency graph with each service's state and the critical chain of the last start.
#[tauri::command]
pub async fn graph(shell: State<'_, Shell>) -> Result<gitvisor_protocol::GraphReply> {
    shell.backend.call(gitvisor_protocol::Graph {}).await
}

/// What happened to the services (every one's when `names` is empty) since `since_ms`.
#[tauri::command]
pub async fn timeline(
    shell: State<'_, Shell>,
    names: Vec<String>,
    since_ms: u64,
) -> Result<gitvisor_protocol::TimelineReply> {
    let names = names.iter().map(|n| ServiceName::new(n.as_str())).collect();
    shell.backend.call(gitvisor_protocol::Timeline { names, since_ms }).await
}

/// Opens `http://localhost:PORT` in the user's browser, for a TCP port one of the services
/// listens on now (any other is refused: the window cannot make the app open what it likes).
#[tauri::command]
pub async fn open_port(shell: State<'_, Shell>, port: u16) -> Result<()> {
    let status = shell.backend.call(Status::all()).await?;
    let listening =
        status.services.iter().any(|s| s.ports.iter().any(|p| p.port == port && p.proto == "tcp"));
    if !listening {
        return Err(CommandError::new(
            ErrorCode::InvalidParams,
            format!("no service listens on TCP port {port} now"),
        ));
    }
    let url = format!("http://localhost:{port}");
    // The opener plugin's own function (its scoped command is not given to the window).
    tauri_plugin_opener::open_url(&url, None::<&str>)
        .map_err(|e| CommandError::new(ErrorCode::OperationFailed, format!("cannot open {url}: {e}")))
}
