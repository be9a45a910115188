//! The watch keeper: which services' files are watched (`[Watch]`), and the restart a change
//! asks for. A service is watched while it is meant to be up — from its start (or adoption)
//! until a user stops it — so a change restarts a running service and starts again one that
//! crashed or failed; a service a user stopped stays stopped. Each watched service has one task
//! (`watch::tree::run`), owned by the keeper: when the keeper stops, every watch goes with it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gitvisor_protocol::{EventKind, ExitClass, Method, Restart, ServiceName, ServiceState, WatchStatus};
use gitvisor_units::WatchSettings;
use tokio::sync::Notify;

use super::{Engine, Inner};
use crate::events::Priority;
use crate::supervisor::Command;
use crate::watch::{self, Change, Mode, View};

const KEEPER: &str = "watch keeper";
/// How long a change waits for another operation on the service to finish.
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// The watched services' views, shared with `status`.
#[derive(Default)]
pub struct WatchTable {
    views: Mutex<BTreeMap<String, Arc<Mutex<View>>>>,
    /// The units changed: look at every service again.
    changed: Notify,
}

impl WatchTable {
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    fn views(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Mutex<View>>>> {
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The change that last restarted a watched service (for its crash report).
    pub fn last_change(&self, name: &str) -> Option<Change> {
        let views = self.views();
        let view = views.get(name)?.lock().unwrap_or_else(|e| e.into_inner()).clone();
        view.last_change
    }
}

/// What a watch was made from: a change of either makes a new one.
#[derive(Clone, PartialEq)]
struct Key {
    settings: WatchSettings,
    base: PathBuf,
}

/// A watch task, aborted when dropped.
struct Running {
    key: Key,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

impl Engine {
    /// Starts the watch keeper (owned by the engine's background tasks).
    pub(super) fn start_watches(&self) {
        let events = self.inner.bus.subscribe_to(Priority::Timers, 256, crate::events::state_changes);
        let weak = Arc::downgrade(&self.inner);
        let table = self.inner.watches.clone();
        self.inner.background.spawn(KEEPER, keeper(weak, table, events));
    }

    /// The watch a service should have now: its `[Watch]` and working directory, while it is
    /// meant to be up.
    fn wanted_watch(&self, name: &str) -> Option<Key> {
        let registry = self.registry();
        let s = registry.services.get(name)?;
        let settings = s.unit.watch.clone()?;
        if !s.snapshot.borrow().want_up {
            return None;
        }
        let base = s.unit.working_directory.clone().unwrap_or_else(|| self.inner.ctx.home.clone());
        Some(Key { settings, base })
    }

    /// `status`'s view of a service's watch; `None` for a unit without `[Watch]`.
    pub(super) fn watch_status(
        &self,
        name: &str,
        unit: &gitvisor_units::Unit,
        snap: &crate::supervisor::Snapshot,
    ) -> Option<WatchStatus> {
        unit.watch.as_ref()?;
        let view =
            self.inner.watches.views().get(name).map(|v| v.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let Some(view) = view else {
            return Some(WatchStatus {
                mode: "off".into(),
                directories: 0,
                note: Some("not watched while the service is stopped".into()),
                last_change: None,
                crashed_after_change: None,
            });
        };
        let (mode, note) = match &view.mode {
            Mode::Starting => ("starting", None),
            Mode::Inotify => ("inotify", None),
            Mode::Polling(why) => ("polling", Some(why.clone())),
            Mode::Failed(why) => ("off", Some(why.clone())),
        };
        let last_change = view.last_change.clone();
        let crashed_after_change = match (&view.last_change, &snap.last_exit) {
            (Some(c), Some(exit))
                if snap.last_exit_class == Some(ExitClass::Failure) && exit.at_ms >= c.at_ms =>
            {
                Some(format!("crashed {} after a change to {}", seconds(exit.at_ms - c.at_ms), c.describe()))
            }
            _ => None,
        };
        Some(WatchStatus {
            mode: mode.into(),
            directories: view.directories,
            note,
            last_change,
            crashed_after_change,
        })
    }

    /// A burst of changes to a watched service's files: restart it now (no backoff: a
    /// deliberate restart, which resets the start limit as a user's restart does), with the
    /// units that require it when `RestartDependents=yes`.
    async fn restart_for_change(&self, name: &str, change: Change) {
        let Some(key) = self.wanted_watch(name) else { return };
        let what = change.describe();
        self.inner.logs.note(name, format!("restarting: {what} changed"));
        tracing::info!("{name}: {what} changed: restarting");
        self.inner.bus.publish(EventKind::FilesChanged { service: name.to_string(), change: change.clone() });
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            let (ok, busy, error) = if key.settings.restart_dependents {
                match self.restart(&[ServiceName::new(name)]).await {
                    Ok(reply) => {
                        let mine = reply.results.iter().find(|r| r.name == name);
                        (
                            mine.is_some_and(|r| r.ok),
                            mine.is_some_and(|r| r.code == Some(gitvisor_protocol::ErrorCode::InProgress)),
                            mine.and_then(|r| r.error.clone()),
                        )
                    }
                    Err(e) => (false, false, Some(e.to_string())),
                }
            } else {
                let o = self
                    .locked_op(name, Restart::NAME, |reply| Command::Restart { reply: Some(reply) })
                    .await;
                (o.ok, o.code == Some(gitvisor_protocol::ErrorCode::InProgress), o.error)
            };
            if ok {
                break;
            }
            // Another operation holds the service: the change applies once it is done.
            if busy && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let error = error.unwrap_or_default();
            self.inner.logs.note(name, format!("restart after {what} changed failed: {error}"));
            tracing::warn!("{name}: restart after {what} changed failed: {error}");
            break;
        }
        self.durable().await;
    }
}

/// Brings one service's watch in line with what it should be.
fn reconcile(engine: &Engine, name: &str, running: &mut HashMap<String, Running>) {
    let wanted = engine.wanted_watch(name);
    match (wanted, running.get(name)) {
        (Some(k), Some(r)) if r.key == k => {}
        (Some(key), _) => {
            let view = Arc::new(Mutex::new(View::default()));
            // A new watch of the same service keeps what last restarted it.
            if let Some(old) = engine.inner.watches.views().get(name) {
                view.lock().unwrap_or_else(|e| e.into_inner()).last_change =
                    old.lock().unwrap_or_else(|e| e.into_inner()).last_change.clone();
            }
            engine.inner.watches.views().insert(name.to_string(), view.clone());
            let rules = match watch::rules::Rules::new(&key.base, &key.settings) {
                Ok(r) => r,
                Err(e) => {
                    view.lock().unwrap_or_else(|e| e.into_inner()).mode = Mode::Failed(e);
                    running.remove(name);
                    return;
                }
            };
            let weak = Arc::downgrade(&engine.inner);
            let service = name.to_string();
            let on_change = move |change: Change| {
                let weak = weak.clone();
                let service = service.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        Engine { inner }.restart_for_change(&service, change).await;
                    }
                }
            };
            let task = tokio::spawn(watch::tree::run(
                key.base.clone(),
                rules,
                key.settings.debounce,
                view,
                on_change,
            ));
            running.insert(name.to_string(), Running { key, task });
        }
        (None, Some(_)) => {
            running.remove(name);
            engine.inner.watches.views().remove(name);
        }
        (None, None) => {}
    }
}

/// The keeper: looks at every service when the units change and at one service when its state
/// changes, holding no strong reference to the engine while it waits.
async fn keeper(weak: Weak<Inner>, table: Arc<WatchTable>, mut events: crate::events::Subscription) {
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut all = true;
    // Whether any unit has a [Watch] (without one, a state change costs a lookup less).
    let mut any = false;
    loop {
        if std::mem::take(&mut all) {
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            let names: Vec<String> = {
                let registry = engine.registry();
                any = registry.services.values().any(|s| s.unit.watch.is_some());
                registry.services.keys().cloned().collect()
            };
            running.retain(|n, _| names.contains(n));
            engine.inner.watches.views().retain(|n, _| names.contains(n));
            for n in names {
                reconcile(&engine, &n, &mut running);
            }
        }
        tokio::select! {
            () = table.changed.notified() => all = true,
            event = events.recv() => {
                let Some(event) = event else { return };
                if let (EventKind::State { service, to, .. }, true) = (&event.kind, any) {
                    // Starting: it is meant to be up; stopped: a user may have stopped it.
                    if matches!(to, ServiceState::Starting | ServiceState::Stopped | ServiceState::Running) {
                        let Some(inner) = weak.upgrade() else { return };
                        reconcile(&Engine { inner }, service, &mut running);
                    }
                }
            }
        }
    }
}
