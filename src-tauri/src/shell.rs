//! The app's state, shared by the commands, the tray and the event pump: the backend, the last
//! status the engine gave, and the background tasks the app owns (stopped at Quit).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gitvisor_protocol::{CrashListReply, StatusReply};
use serde::Serialize;
use tauri::async_runtime::JoinHandle;
use tokio::sync::{watch, Notify};

use crate::backend::Backend;

/// What the window and the tray show; pushed to the window as the `gv:status` event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// `None` while no engine answers.
    pub status: Option<StatusReply>,
    /// Why no engine answers.
    pub error: Option<String>,
    /// Crash reports written since the user last opened the crash reports view.
    pub new_crashes: usize,
    /// A headless daemon runs the engine; this app is its client.
    pub attached: bool,
    pub home: String,
    /// Unix time in milliseconds the status was read (CPU use is a difference of two reads).
    pub at_ms: u64,
}

pub struct Shell {
    pub backend: Arc<Backend>,
    pub snapshot: Mutex<Snapshot>,
    /// The window's log follow: one service at a time, stopped when the window goes.
    pub follow: Mutex<Option<JoinHandle<()>>>,
    /// The event pump (see `pump.rs`).
    pub pump: Mutex<Option<JoinHandle<()>>>,
    /// The window exists: the pump then samples CPU and memory every few seconds.
    pub window_open: watch::Sender<bool>,
    /// Asks the pump for a fresh status now (after an action).
    pub refresh: Notify,
    pub quitting: AtomicBool,
    seen_file: PathBuf,
}

#[derive(serde::Deserialize, Serialize, Default)]
struct Seen {
    /// The newest crash report time (RFC 3339, UTC) the user has seen.
    crashes_seen_until: Option<String>,
}

impl Shell {
    pub fn new(backend: Backend) -> Shell {
        let seen_file = backend.paths().home.join("tray.json");
        let home = backend.paths().home.display().to_string();
        let attached = backend.attached();
        Shell {
            backend: Arc::new(backend),
            snapshot: Mutex::new(Snapshot { attached, home, ..Default::default() }),
            follow: Mutex::new(None),
            pump: Mutex::new(None),
            window_open: watch::channel(false).0,
            refresh: Notify::new(),
            quitting: AtomicBool::new(false),
            seen_file,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn seen(&self) -> Seen {
        std::fs::read(&self.seen_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// How many crash reports are newer than the newest the user has seen.
    pub fn count_new(&self, list: &CrashListReply) -> usize {
        let seen = self.seen().crashes_seen_until;
        list.reports
            .iter()
            .filter(|r| r.kind == "crash")
            .filter(|r| seen.as_deref().is_none_or(|s| r.time.as_str() > s))
            .count()
    }

    /// Marks every report in `list` as seen.
    pub fn mark_seen(&self, list: &CrashListReply) -> Result<(), String> {
        let newest = list.reports.iter().map(|r| r.time.clone()).max();
        let Some(newest) = newest else { return Ok(()) };
        let bytes = serde_json::to_vec(&Seen { crashes_seen_until: Some(newest) }).expect("serialisable");
        gitvisor_state::write_atomic(&self.seen_file, &bytes)
            .map_err(|e| format!("saving {}: {e}", self.seen_file.display()))
    }

    /// Stops the background tasks the app owns.
    pub fn stop_tasks(&self) {
        for slot in [&self.follow, &self.pump] {
            if let Some(task) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                task.abort();
            }
        }
    }

    pub fn is_quitting(&self) -> bool {
        self.quitting.load(Ordering::SeqCst)
    }
}
