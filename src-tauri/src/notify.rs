//! Desktop notifications for crash reports and failed services, rate-limited so a crash loop
//! gives one notification a minute per service, not one per crash.

use std::collections::HashMap;

use gitvisor_protocol::{Event, EventKind, ServiceState};

/// At most one notification per (kind, service) in this many milliseconds.
pub const WINDOW_MS: u64 = 60_000;

#[derive(Default)]
pub struct Limiter {
    /// (kind, service) → (when the last one was shown, how many were held back since).
    last: HashMap<(&'static str, String), (u64, u32)>,
}

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub title: String,
    pub body: String,
}

impl Limiter {
    /// The notification an event deserves now, if any. Held-back ones are counted and named in
    /// the next one shown.
    pub fn note_for(&mut self, event: &Event) -> Option<Note> {
        let (kind, service, title, body) = match &event.kind {
            EventKind::CrashReport { service, id } => {
                ("crash", service, format!("{service} crashed"), format!("Crash report {id}"))
            }
            EventKind::State { service, to: ServiceState::Failed, reason, .. } => (
                "failed",
                service,
                format!("{service} failed"),
                reason.clone().unwrap_or_else(|| "It will not be restarted until you start it.".into()),
            ),
            _ => return None,
        };
        let entry = self.last.entry((kind, service.clone())).or_insert((0, 0));
        let (last, held) = *entry;
        if last != 0 && event.at_ms < last + WINDOW_MS {
            *entry = (last, held + 1);
            return None;
        }
        *entry = (event.at_ms, 0);
        let body = match held {
            0 => body,
            n => format!("{body} ({n} more since the last notification)"),
        };
        Some(Note { title, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(at_ms: u64, service: &str) -> Event {
        Event {
            seq: at_ms,
            at_ms,
            kind: EventKind::CrashReport { service: service.into(), id: format!("r{at_ms}") },
        }
    }

    #[test]
    fn a_crash_loop_gives_one_note_a_minute_naming_the_held_back_ones() {
        let mut l = Limiter::default();
        let first = l.note_for(&crash(1_000, "web")).expect("the first crash is shown");
        assert_eq!(first.title, "web crashed");
        assert_eq!(first.body, "Crash report r1000");
        for t in 1..=5 {
            assert_eq!(l.note_for(&crash(1_000 + t * 1_000, "web")), None);
        }
        // Another service is not held back by web's loop.
        assert!(l.note_for(&crash(3_000, "api")).is_some());
        let later = l.note_for(&crash(1_000 + WINDOW_MS, "web")).expect("a minute later");
        assert_eq!(
            later.body,
            format!("Crash report r{} (5 more since the last notification)", 1_000 + WINDOW_MS)
        );
    }

    #[test]
    fn failed_is_shown_beside_the_crash_and_other_events_are_not() {
        let mut l = Limiter::default();
        assert!(l.note_for(&crash(1_000, "web")).is_some());
        let failed = Event {
            seq: 2,
            at_ms: 1_001,
            kind: EventKind::State {
                service: "web".into(),
                from: ServiceState::Backoff,
                to: ServiceState::Failed,
                pid: None,
                reason: Some("start limit reached".into()),
            },
        };
        assert_eq!(
            l.note_for(&failed),
            Some(Note { title: "web failed".into(), body: "start limit reached".into() })
        );
        let running = Event {
            seq: 3,
            at_ms: 1_002,
            kind: EventKind::State {
                service: "web".into(),
                from: ServiceState::Starting,
                to: ServiceState::Running,
                pid: Some(5),
                reason: None,
            },
        };
        assert_eq!(l.note_for(&running), None);
    }
}
