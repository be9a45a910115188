//! What happened to each service over the last day — starts, exits (clean, crash, OOM, health
//! or watchdog kill, stop), restarts after a file change — and the syncs, for the window's
//! timelines. Pure: the engine feeds it its events and asks it for a window of time.
//!
//! Bounded whatever a service does: entries older than a day go, each service keeps at most
//! [`PER_SERVICE`] entries, and a burst of the same thing (a crash loop) is one entry with a
//! count while its occurrences come within [`MERGE_WITHIN_MS`] of each other.

use std::collections::{BTreeMap, VecDeque};

use gitvisor_protocol::{EventKind, ExitClass, ServiceState, TimelineEntry};
use serde::{Deserialize, Serialize};

/// How far back the timeline goes.
pub const KEEP_MS: u64 = 24 * 60 * 60 * 1000;
/// Entries kept per service (the oldest go first).
pub const PER_SERVICE: usize = 1000;
/// Occurrences of the same kind closer than this are one entry.
pub const MERGE_WITHIN_MS: u64 = 1000;
const SYNCS: usize = 500;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    services: BTreeMap<String, VecDeque<TimelineEntry>>,
    syncs: VecDeque<TimelineEntry>,
}

fn entry(at_ms: u64, kind: &str, detail: Option<String>) -> TimelineEntry {
    TimelineEntry { at_ms, last_ms: at_ms, kind: kind.to_string(), detail, count: 1, report: None }
}

/// What an exit was, as the timeline tells it.
fn exit_kind(class: ExitClass, oom: bool, reason: Option<&str>) -> &'static str {
    if oom {
        return "oom";
    }
    match (class, reason) {
        (ExitClass::Stopped, _) => "stop",
        (ExitClass::Clean, _) => "exit",
        (_, Some(r)) if r.starts_with("unhealthy") => "health-kill",
        (_, Some(r)) if r.starts_with("watchdog") => "watchdog",
        _ => "crash",
    }
}

impl Timeline {
    /// The events [`Timeline::record`] keeps something of (its subscription's filter).
    pub fn records(kind: &EventKind) -> bool {
        matches!(
            kind,
            EventKind::State { to: ServiceState::Running, .. }
                | EventKind::Exited { .. }
                | EventKind::FilesChanged { .. }
                | EventKind::CrashReport { .. }
                | EventKind::SyncApplied { .. }
        )
    }

    /// Takes one event of the engine at `at_ms`.
    pub fn record(&mut self, at_ms: u64, kind: &EventKind) {
        match kind {
            EventKind::State { service, to: ServiceState::Running, pid, .. } => {
                self.push(service, entry(at_ms, "start", pid.map(|p| format!("pid {p}"))));
            }
            EventKind::Exited { service, exit, class, oom, reason, .. } => {
                let kind = exit_kind(*class, *oom, reason.as_deref());
                let what = match reason {
                    Some(r) => format!("{} ({r})", exit.describe()),
                    None => exit.describe(),
                };
                self.push(service, entry(at_ms, kind, Some(what)));
            }
            EventKind::FilesChanged { service, change } => {
                self.push(service, entry(at_ms, "change", Some(change.describe())));
            }
            EventKind::CrashReport { service, id } => {
                // The report belongs to the service's latest crash-like exit.
                if let Some(e) = self.services.get_mut(service).and_then(|l| {
                    l.iter_mut()
                        .rev()
                        .find(|e| matches!(e.kind.as_str(), "crash" | "oom" | "health-kill" | "watchdog"))
                }) {
                    e.report = Some(id.clone());
                }
            }
            EventKind::SyncApplied { report } if report.new.is_some() && report.new != report.old => {
                let short = report.new.as_deref().map(|c| c[..c.len().min(10)].to_string());
                let mut e = entry(at_ms, "sync", short);
                if !report.actions.is_empty() {
                    e.detail =
                        Some(format!("{} {}", e.detail.unwrap_or_default(), report.actions.join(", ")));
                }
                self.syncs.push_back(e);
                while self.syncs.len() > SYNCS {
                    self.syncs.pop_front();
                }
            }
            _ => {}
        }
        self.prune(at_ms);
    }

    fn push(&mut self, service: &str, e: TimelineEntry) {
        let list = self.services.entry(service.to_string()).or_default();
        // A loop (crash, start, crash, start…): each kind's occurrences are one entry that
        // counts, so a day of history is not pushed out by a minute of looping.
        let recent = list.iter_mut().rev().take(3).find(|last| {
            last.kind == e.kind
                && e.at_ms.saturating_sub(last.last_ms) <= MERGE_WITHIN_MS
                && last.report.is_none()
        });
        if let Some(last) = recent {
            last.count += 1;
            last.last_ms = e.at_ms;
            last.detail = e.detail;
            return;
        }
        list.push_back(e);
        while list.len() > PER_SERVICE {
            list.pop_front();
        }
    }

    fn prune(&mut self, now_ms: u64) {
        let cut = now_ms.saturating_sub(KEEP_MS);
        for list in self.services.values_mut() {
            while list.front().is_some_and(|e| e.last_ms < cut) {
                list.pop_front();
            }
        }
        self.services.retain(|_, l| !l.is_empty());
        while self.syncs.front().is_some_and(|e| e.last_ms < cut) {
            self.syncs.pop_front();
        }
    }

    /// A service's entries since `since_ms`, oldest first.
    pub fn of(&self, service: &str, since_ms: u64) -> Vec<TimelineEntry> {
        self.services
            .get(service)
            .map(|l| l.iter().filter(|e| e.last_ms >= since_ms).cloned().collect())
            .unwrap_or_default()
    }

    pub fn syncs(&self, since_ms: u64) -> Vec<TimelineEntry> {
        self.syncs.iter().filter(|e| e.last_ms >= since_ms).cloned().collect()
    }

    /// Forgets the services not in `keep` (removed units).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.services.retain(|n, _| keep(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitvisor_protocol::ExitInfo;

    fn exited(service: &str, code: i32, class: ExitClass, reason: Option<&str>, oom: bool) -> EventKind {
        EventKind::Exited {
            service: service.into(),
            pid: 7,
            exit: ExitInfo::ended(Some(code), None, 0),
            expected: class == ExitClass::Stopped,
            class,
            report: class == ExitClass::Failure,
            started_ms: None,
            restarts: 0,
            reason: reason.map(str::to_string),
            oom,
            peak_memory_kb: None,
        }
    }

    fn running(service: &str) -> EventKind {
        EventKind::State {
            service: service.into(),
            from: ServiceState::Starting,
            to: ServiceState::Running,
            pid: Some(7),
            reason: None,
        }
    }

    #[test]
    fn exits_are_told_apart_and_a_report_marks_its_crash() {
        let mut t = Timeline::default();
        t.record(1_000, &running("web"));
        t.record(5_000, &exited("web", 0, ExitClass::Clean, None, false));
        t.record(9_000, &exited("web", 3, ExitClass::Failure, None, false));
        t.record(9_100, &EventKind::CrashReport { service: "web".into(), id: "r1".into() });
        t.record(20_000, &exited("web", 137, ExitClass::Failure, None, true));
        t.record(30_000, &exited("web", 143, ExitClass::Failure, Some("unhealthy: 3 probes failed"), false));
        t.record(40_000, &exited("web", 143, ExitClass::Stopped, None, false));
        let kinds: Vec<(String, Option<String>)> =
            t.of("web", 0).into_iter().map(|e| (e.kind, e.report)).collect();
        assert_eq!(
            kinds,
            [
                ("start".into(), None),
                ("exit".into(), None),
                ("crash".into(), Some("r1".into())),
                ("oom".into(), None),
                ("health-kill".into(), None),
                ("stop".into(), None),
            ]
        );
        assert_eq!(t.of("web", 10_000).len(), 3, "since a time");
    }

    #[test]
    fn a_crash_loop_is_one_entry_that_counts_and_everything_is_bounded() {
        let mut t = Timeline::default();
        for i in 0..5000u64 {
            t.record(i * 10, &exited("loop", 1, ExitClass::Failure, None, false));
            t.record(i * 10 + 1, &running("loop"));
        }
        // Crash, start, crash, start…: one entry of each, counting.
        let e = t.of("loop", 0);
        assert_eq!(
            e.iter().map(|e| (e.kind.as_str(), e.count)).collect::<Vec<_>>(),
            [("crash", 5000), ("start", 5000)]
        );
        // A report marks the latest crash entry; the next crash starts a new one.
        t.record(50_005, &EventKind::CrashReport { service: "loop".into(), id: "r9".into() });
        t.record(50_010, &exited("loop", 1, ExitClass::Failure, None, false));
        assert_eq!(t.of("loop", 0).len(), 3);
        let mut t = Timeline::default();
        for i in 0..5000u64 {
            t.record(i * 10, &exited("loop", 1, ExitClass::Failure, None, false));
        }
        let e = t.of("loop", 0);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].count, e[0].at_ms, e[0].last_ms), (5000, 0, 49_990));
        // A day later, it is gone.
        t.record(KEEP_MS + 60_000, &running("other"));
        assert!(t.of("loop", 0).is_empty());
        assert_eq!(t.of("other", 0).len(), 1);
    }
}
