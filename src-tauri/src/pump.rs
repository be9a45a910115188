//! The event pump: the one task that reads the engine's events and keeps the tray, the window
//! and the notifications current. Events reach the window as Tauri events (it never polls);
//! a burst of events gives one status read. While the window is open, CPU and memory are
//! sampled every few seconds; with the window closed the pump only waits.

use std::time::Duration;

use gitvisor_protocol::{CrashList, EventKind, Status};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::time::Instant;

use crate::menu_model::{menu_model, MenuInput, MenuModel};
use crate::notify::Limiter;
use crate::shell::{Shell, Snapshot};
use crate::window;

/// Events closer together than this give one status read.
const COALESCE: Duration = Duration::from_millis(30);
/// CPU and memory sampling while the window is open.
const SAMPLE: Duration = Duration::from_secs(2);

pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let task = tauri::async_runtime::spawn(run(app.clone()));
    if let Some(shell) = app.try_state::<Shell>() {
        *shell.pump.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

async fn run<R: Runtime>(app: AppHandle<R>) {
    let shell = app.state::<Shell>();
    let mut limiter = Limiter::default();
    let mut retry = Duration::from_millis(250);
    let mut window_open = shell.window_open.subscribe();
    loop {
        let mut events = match shell.backend.events().await {
            Ok(events) => {
                retry = Duration::from_millis(250);
                events
            }
            Err(e) => {
                unreachable(&app, &shell, e.message);
                // A take-over (or any refresh asked for) tries again at once.
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = shell.refresh.notified() => {}
                }
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        refresh(&app, true).await;
        let mut due: Option<(Instant, bool)> = None;
        let mut sample = tokio::time::interval(SAMPLE);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let open = *window_open.borrow();
            tokio::select! {
                ev = events.next() => match ev {
                    Some(ev) => {
                        let crash = matches!(ev.kind, EventKind::CrashReport { .. } | EventKind::SyncApplied { .. });
                        if let Some(note) = limiter.note_for(&ev) {
                            notify(&app, &note.title, &note.body);
                        }
                        let _ = app.emit_to(window::LABEL, "gv:event", &ev);
                        let (at, recount) = due.unwrap_or((Instant::now() + COALESCE, false));
                        due = Some((at, recount || crash));
                    }
                    None => {
                        unreachable(&app, &shell, "the engine closed the connection".into());
                        break;
                    }
                },
                () = sleep_until(due.map(|d| d.0)) => {
                    let recount = due.take().is_some_and(|d| d.1);
                    refresh(&app, recount).await;
                }
                _ = sample.tick(), if open => refresh(&app, false).await,
                () = shell.refresh.notified() => refresh(&app, false).await,
                _ = window_open.changed() => {}
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn unreachable<R: Runtime>(app: &AppHandle<R>, shell: &Shell, error: String) {
    {
        let mut snap = shell.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if snap.status.is_none() && snap.error.as_deref() == Some(error.as_str()) {
            return;
        }
        snap.status = None;
        snap.error = Some(error);
    }
    publish(app, shell);
}

/// Reads the engine's status (and the crash reports when `recount`) and shows it.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>, recount: bool) {
    let shell = app.state::<Shell>();
    let status = shell.backend.call(Status::all()).await;
    let new_crashes = if recount {
        shell.backend.call(CrashList::default()).await.ok().map(|l| shell.count_new(&l))
    } else {
        None
    };
    {
        let mut snap = shell.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            Ok(s) => {
                snap.status = Some(s);
                snap.error = None;
            }
            Err(e) => {
                snap.status = None;
                snap.error = Some(e.message);
            }
        }
        if let Some(n) = new_crashes {
            snap.new_crashes = n;
        }
        snap.at_ms = now_ms();
    }
    publish(app, &shell);
}

pub fn publish_crash_count<R: Runtime>(app: &AppHandle<R>, shell: &Shell, n: usize) {
    shell.snapshot.lock().unwrap_or_else(|e| e.into_inner()).new_crashes = n;
    publish(app, shell);
}

/// The tray menu for a snapshot.
pub fn model_of<R: Runtime>(app: &AppHandle<R>, snap: &Snapshot) -> MenuModel {
    menu_model(&MenuInput {
        status: snap.status.as_ref(),
        new_crashes: snap.new_crashes,
        autostart: crate::autostart::enabled(app),
        attached: snap.attached,
    })
}

/// Shows the current snapshot in the tray and the window.
pub fn publish<R: Runtime>(app: &AppHandle<R>, shell: &Shell) {
    let snap = shell.snapshot();
    crate::tray::update(app, model_of(app, &snap));
    let _ = app.emit_to(window::LABEL, "gv:status", &snap);
}

pub fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    use tauri_plugin_notification::{Notification, NotificationExt};
    if app.try_state::<Notification<R>>().is_none() {
        return;
    }
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("notification not shown: {e}");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
