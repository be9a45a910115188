//! Timer units (`NAME.timer`, systemd.timer(5)): one engine task, the timer keeper, sleeps until
//! the earliest next elapse of the enabled timers (no polling) and starts their services then.
//! It wakes early when the units change (a sync) and when a timer's service becomes active or
//! inactive (`OnUnitActiveSec=`, `OnUnitInactiveSec=`). When each timer elapses is the units
//! crate's pure `next_elapse`; what happened so far (activation, last trigger, the service's
//! last state changes) is kept here, the last trigger also in the state file for
//! `Persistent=`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gitvisor_protocol::{EventKind, ServiceState, TimerStatus, TimersReply};
use gitvisor_units::{next_elapse, Timer, TimerState, Timestamp};
use tokio::sync::Notify;

use super::{Engine, Inner};
use crate::events::Priority;

const KEEPER: &str = "timer keeper";

/// The timers the keeper schedules, shared with `timers` queries.
pub struct TimerTable {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Something changed (the units, a service's state): look again.
    changed: Notify,
    engine_started_at: Timestamp,
    /// Makes `RandomizedDelaySec=` stable for this home.
    seed: u64,
}

struct Entry {
    timer: Arc<Timer>,
    state: TimerState,
    error: Option<String>,
}

impl TimerTable {
    pub fn new(seed: u64) -> TimerTable {
        TimerTable {
            entries: Mutex::default(),
            changed: Notify::new(),
            engine_started_at: Timestamp::now(),
            seed,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the keeper to look again (the units changed).
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    fn next_of(&self, e: &Entry, now: Timestamp) -> Option<Timestamp> {
        next_elapse(&e.timer, &e.state, now, self.seed)
    }
}

fn ms(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

fn from_ms(ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()
}

impl Engine {
    /// Starts the timer keeper (owned by the engine's background tasks).
    pub(super) fn start_timers(&self) {
        let events = self.inner.bus.subscribe_to(Priority::Timers, 256, crate::events::state_changes);
        let weak = Arc::downgrade(&self.inner);
        let table = self.inner.timers.clone();
        self.inner.background.spawn(KEEPER, keeper(weak, table, events));
    }

    /// Every timer unit with its next and last elapse.
    pub fn timers(&self) -> TimersReply {
        self.reconcile_timers();
        let table = &self.inner.timers;
        let now = Timestamp::now();
        let entries = table.entries();
        let timers = entries
            .iter()
            .map(|(name, e)| {
                let t = &e.timer;
                let mut triggers: Vec<String> =
                    t.on_calendar.iter().map(|c| format!("OnCalendar={c}")).collect();
                let spans = [
                    ("OnActiveSec", &t.on_active),
                    ("OnStartupSec", &t.on_startup),
                    ("OnUnitActiveSec", &t.on_unit_active),
                    ("OnUnitInactiveSec", &t.on_unit_inactive),
                ];
                for (key, list) in spans {
                    triggers.extend(list.iter().map(|d| format!("{key}={}", humantime::format_duration(*d))));
                }
                TimerStatus {
                    name: name.clone(),
                    unit: t.unit.as_str().to_string(),
                    enabled: t.enabled(),
                    next_ms: t.enabled().then(|| table.next_of(e, now)).flatten().map(ms),
                    last_ms: e.state.last_trigger.map(ms),
                    triggers,
                    persistent: t.persistent,
                    error: e.error.clone(),
                }
            })
            .collect();
        TimersReply { timers }
    }

    /// Brings the table in line with the applied units: new timers are activated now (with
    /// `Persistent=`, their stored last elapse); changed ones keep what happened so far;
    /// removed ones go.
    fn reconcile_timers(&self) {
        let units: BTreeMap<String, Arc<Timer>> = self.registry().units.timers.clone();
        let table = &self.inner.timers;
        let mut entries = table.entries();
        entries.retain(|name, _| units.contains_key(name));
        let now = Timestamp::now();
        for (name, timer) in units {
            match entries.get_mut(&name) {
                Some(e) => e.timer = timer,
                None => {
                    let mut state = TimerState::new(table.engine_started_at, now);
                    if timer.persistent {
                        // systemd's stamp: the last time it fired, kept across engine restarts.
                        // Never fired: nothing was missed, it counts from its activation.
                        state.last_trigger = self.inner.store.timer(&name).and_then(from_ms);
                    }
                    entries.insert(name, Entry { timer, state, error: None });
                }
            }
        }
    }

    /// Starts the services of the timers that are due; returns the time of the next elapse.
    fn fire_due_timers(&self) -> Option<Timestamp> {
        self.reconcile_timers();
        let table = self.inner.timers.clone();
        let now = Timestamp::now();
        let mut due = Vec::new();
        let mut earliest: Option<Timestamp> = None;
        {
            let mut entries = table.entries();
            for (name, e) in entries.iter_mut() {
                if !e.timer.enabled() {
                    continue;
                }
                let Some(next) = table.next_of(e, now) else { continue };
                if next > now {
                    earliest = Some(earliest.map_or(next, |t| t.min(next)));
                    continue;
                }
                // A calendar elapse between the last trigger (of an earlier engine) and this
                // engine's start: missed while it was down.
                let missed = e.timer.persistent
                    && e.state.last_trigger.is_some_and(|last| {
                        e.timer
                            .on_calendar
                            .iter()
                            .filter_map(|c| c.next_after(last))
                            .any(|t| t < table.engine_started_at)
                    });
                e.state.last_trigger = Some(now);
                self.inner.store.set_timer(name, ms(now));
                let unit = e.timer.unit.as_str().to_string();
                e.error = (!self.has_service(&unit)).then(|| format!("unit {unit}.service does not exist"));
                due.push((name.clone(), unit, missed, e.error.clone()));
                if let Some(next) = table.next_of(e, now).filter(|n| *n > now) {
                    earliest = Some(earliest.map_or(next, |t| t.min(next)));
                }
            }
        }
        for (timer, unit, missed, error) in due {
            if let Some(error) = error {
                tracing::warn!("timer {timer}.timer: {error}");
                continue;
            }
            let why = if missed { ", missed while the engine was down" } else { "" };
            self.inner.logs.note(&unit, format!("started by timer {timer}.timer{why}"));
            let engine = self.clone();
            self.inner.background.spawn("timer start", async move {
                let reply = engine.start_ordered(vec![unit.clone()], false, false).await;
                for r in reply.results.iter().filter(|r| !r.ok) {
                    let error = r.error.clone().unwrap_or_default();
                    tracing::warn!("timer {timer}.timer: {} did not start: {error}", r.name);
                    engine.set_timer_error(&timer, format!("{} did not start: {error}", r.name));
                }
            });
        }
        earliest
    }

    fn set_timer_error(&self, timer: &str, error: String) {
        if let Some(e) = self.inner.timers.entries().get_mut(timer) {
            e.error = Some(error);
        }
    }

    /// A service became active or inactive: the timers that start it take note.
    fn note_service_state(&self, service: &str, to: ServiceState) {
        let now = Timestamp::now();
        let active = matches!(to, ServiceState::Running | ServiceState::Active);
        let inactive = matches!(to, ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed);
        for e in self.inner.timers.entries().values_mut().filter(|e| e.timer.unit.as_str() == service) {
            if active {
                e.state.unit_last_active = Some(now);
            } else if inactive {
                e.state.unit_last_inactive = Some(now);
            }
        }
    }
}

/// The keeper: fires what is due, then sleeps until the next elapse, a change of the units or a
/// service's state change, holding no strong reference to the engine while it sleeps.
async fn keeper(weak: Weak<Inner>, table: Arc<TimerTable>, mut events: crate::events::Subscription) {
    // The next elapse is computed again only when something may have moved it.
    let mut next = None;
    let mut look = true;
    loop {
        if std::mem::take(&mut look) {
            let Some(inner) = weak.upgrade() else { return };
            next = Engine { inner }.fire_due_timers();
        }
        let sleep = match next {
            Some(at) => Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO),
            None => Duration::MAX,
        };
        let timer = async {
            match tokio::time::Instant::now().checked_add(sleep) {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timer => look = true,
            () = table.changed.notified() => look = true,
            event = events.recv() => {
                let Some(event) = event else { return };
                // Without timers a state change costs no more than this look.
                let timed = !table.entries().is_empty();
                if let (EventKind::State { service, to, .. }, true) = (event.kind, timed) {
                    let Some(inner) = weak.upgrade() else { return };
                    Engine { inner }.note_service_state(&service, to);
                    look = true;
                }
            }
        }
    }
}
