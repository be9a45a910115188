//! The timeline keeper: records the engine's events into the services' timelines
//! (`crate::timeline`), keeps them in `timeline.json` beside the state file (written at most
//! every 30 s when something changed, and at shutdown) so the last day survives an engine
//! restart, and answers `timeline`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gitvisor_protocol::{ServiceName, ServiceTimeline, TimelineReply};

use super::{Engine, Inner};
use crate::events::Priority;
use crate::timeline::{Timeline, KEEP_MS};

const KEEPER: &str = "timeline keeper";
const SAVE_EVERY: Duration = Duration::from_secs(30);

pub(super) fn file_of(state: &std::path::Path) -> PathBuf {
    state.with_file_name("timeline.json")
}

/// The timeline an earlier engine saved (empty when there is none or it cannot be read).
pub(super) fn load(state: &std::path::Path) -> Timeline {
    std::fs::read(file_of(state)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

impl Engine {
    pub(super) fn start_timeline(&self) {
        let events =
            self.inner.bus.subscribe_to(Priority::Timeline, 1024, crate::timeline::Timeline::records);
        let weak = Arc::downgrade(&self.inner);
        let timeline = self.inner.timeline.clone();
        self.inner.background.spawn(KEEPER, keeper(weak, timeline, events));
    }

    /// Writes the timeline now (the user's only: exit details can name paths).
    pub(super) fn save_timeline(&self) {
        let json = {
            let t = self.inner.timeline.lock().unwrap_or_else(|e| e.into_inner());
            serde_json::to_vec(&*t).unwrap_or_default()
        };
        let path = file_of(&self.inner.paths.state);
        if let Err(e) = gitvisor_state::write_atomic(&path, &json) {
            tracing::warn!("cannot save {}: {e}", path.display());
        }
    }

    /// What happened to `names` (every service when empty) since `since_ms`, within the last day.
    pub fn timeline(&self, names: &[ServiceName], since_ms: u64) -> TimelineReply {
        let since = since_ms.max(crate::time::now_ms().saturating_sub(KEEP_MS));
        let names: Vec<String> = if names.is_empty() {
            self.registry().services.keys().cloned().collect()
        } else {
            names.iter().map(|n| n.as_str().to_string()).collect()
        };
        let t = self.inner.timeline.lock().unwrap_or_else(|e| e.into_inner());
        TimelineReply {
            services: names
                .into_iter()
                .map(|n| ServiceTimeline { entries: t.of(&n, since), name: n })
                .collect(),
            syncs: t.syncs(since),
        }
    }
}

async fn keeper(weak: Weak<Inner>, timeline: Arc<Mutex<Timeline>>, mut events: crate::events::Subscription) {
    let mut dirty = false;
    let mut save = tokio::time::interval(SAVE_EVERY);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                timeline.lock().unwrap_or_else(|e| e.into_inner()).record(event.at_ms, &event.kind);
                dirty = true;
            }
            _ = save.tick() => {
                if std::mem::take(&mut dirty) {
                    let Some(inner) = weak.upgrade() else { return };
                    let engine = Engine { inner };
                    // Removed units' history goes with them.
                    let names: std::collections::HashSet<String> = engine.registry().services.keys().cloned().collect();
                    timeline.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| names.contains(n));
                    // A small file, at most every 30 s: written in place of a blocking thread.
                    engine.save_timeline();
                }
            }
        }
    }
}
