use std::path::PathBuf;

use crate::load::load_timer;
use crate::name::UnitName;
use crate::specifiers::SpecifierContext;

use super::*;

fn timer(body: &str) -> Timer {
    let ctx = SpecifierContext {
        home: PathBuf::from("/home/ann"),
        user: "ann".into(),
        uid: 1000,
        runtime_dir: PathBuf::from("/run/user/1000"),
    };
    let text = format!("[Timer]\n{body}\n");
    load_timer("backup.timer", text.as_bytes(), &ctx).unwrap_or_else(|d| panic!("{d:?}")).timer
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The engine started at 14:00 and the timer with it.
fn started() -> TimerState {
    TimerState::new(at("2026-12-02T14:00:00Z"), at("2026-12-02T14:00:00Z"))
}

fn next(timer: &Timer, state: &TimerState, now: &str) -> Option<Timestamp> {
    next_elapse_in(timer, state, at(now), 7, &TimeZone::UTC)
}

#[test]
fn on_active_sec_fires_once() {
    let t = timer("OnActiveSec=10min");
    let mut state = started();
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-02T14:10:00Z")));
    // A trigger from before the activation does not count without Persistent=.
    state.last_trigger = Some(at("2026-12-02T13:00:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:05:00Z"), Some(at("2026-12-02T14:10:00Z")));
    // Fired (a little late): used up, the timer has elapsed.
    state.last_trigger = Some(at("2026-12-02T14:10:00.2Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:10:01Z"), None);
    assert!(t.remains_after_elapse());
    assert!(!timer("OnActiveSec=10min\nRemainAfterElapse=no").remains_after_elapse());
    // Activated again (started by hand): it fires again, counting from then.
    state.activated_at = at("2026-12-02T15:00:00Z");
    assert_eq!(next(&t, &state, "2026-12-02T15:00:00Z"), Some(at("2026-12-02T15:10:00Z")));
}

#[test]
fn on_startup_counts_from_the_engine_start() {
    let t = timer("OnBootSec=5min\nOnStartupSec=1h");
    let mut state = started();
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-02T14:05:00Z")));
    // A timer that appears later than that fires at once (the time is past).
    state.activated_at = at("2026-12-02T14:30:00Z");
    assert_eq!(next(&t, &state, "2026-12-02T14:30:00Z"), Some(at("2026-12-02T14:05:00Z")));
    state.last_trigger = Some(at("2026-12-02T14:30:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:30:01Z"), Some(at("2026-12-02T15:00:00Z")));
    state.last_trigger = Some(at("2026-12-02T15:00:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T15:00:01Z"), None);
}

#[test]
fn on_unit_active_sec_counts_from_the_last_activation() {
    let t = timer("OnUnitActiveSec=1h");
    let mut state = started();
    // The service never ran and the timer never fired: nothing to count from.
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), None);
    assert!(t.remains_after_elapse(), "kept around for when the service runs");
    state.unit_last_active = Some(at("2026-12-02T14:02:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:03:00Z"), Some(at("2026-12-02T15:02:00Z")));
    // The timer fired at 15:02; until the service comes up the trigger counts, then its start.
    state.last_trigger = Some(at("2026-12-02T15:02:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T15:02:00Z"), Some(at("2026-12-02T16:02:00Z")));
    state.unit_last_active = Some(at("2026-12-02T15:02:01Z"));
    assert_eq!(next(&t, &state, "2026-12-02T15:02:01Z"), Some(at("2026-12-02T16:02:01Z")));

    // The usual pair: first run after the start, then every hour after each run.
    let t = timer("OnBootSec=5min\nOnUnitActiveSec=1h");
    let mut state = started();
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-02T14:05:00Z")));
    state.last_trigger = Some(at("2026-12-02T14:05:00Z"));
    state.unit_last_active = Some(at("2026-12-02T14:05:00.1Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:06:00Z"), Some(at("2026-12-02T15:05:00.1Z")));
}

#[test]
fn on_unit_inactive_sec_counts_from_the_last_deactivation() {
    let t = timer("OnUnitInactiveSec=10min");
    let mut state = started();
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), None);
    state.unit_last_active = Some(at("2026-12-02T14:01:00Z"));
    state.unit_last_inactive = Some(at("2026-12-02T14:20:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:20:00Z"), Some(at("2026-12-02T14:30:00Z")));
}

#[test]
fn on_calendar_counts_from_the_activation_or_the_last_trigger() {
    let t = timer("OnCalendar=daily UTC");
    let mut state = started();
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-03T00:00:00Z")));
    // Without Persistent=, yesterday's trigger (before this activation) does not count: the
    // elapse missed while the engine was down is not made up.
    state.last_trigger = Some(at("2026-11-30T00:00:01Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-03T00:00:00Z")));
    state.last_trigger = Some(at("2026-12-03T00:00:00.3Z"));
    assert_eq!(next(&t, &state, "2026-12-03T00:00:01Z"), Some(at("2026-12-04T00:00:00Z")));
    // An expression without a zone is in the local one.
    let local = timer("OnCalendar=daily");
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    assert_eq!(
        next_elapse_in(&local, &started(), at("2026-12-02T14:00:00Z"), 7, &berlin),
        Some(at("2026-12-02T23:00:00Z"))
    );
}

#[test]
fn persistent_makes_up_a_missed_elapse_at_start() {
    let t = timer("OnCalendar=daily UTC\nPersistent=yes");
    // Last fired three days ago, the engine was down since: fire at once (the engine's start).
    let mut state = started();
    state.last_trigger = Some(at("2026-11-30T00:00:05Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-02T14:00:00Z")));
    // Fired today already: the next is tomorrow's.
    state.last_trigger = Some(at("2026-12-02T00:00:02Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-03T00:00:00Z")));
    // A stored trigger from the future (the clock went back) is ignored.
    state.last_trigger = Some(at("2027-01-01T00:00:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-03T00:00:00Z")));
    // Never fired, no stamp: from the activation.
    state.last_trigger = None;
    assert_eq!(next(&t, &state, "2026-12-02T14:00:00Z"), Some(at("2026-12-03T00:00:00Z")));
    // The missed elapse's random delay counts from the engine's start.
    let t = timer("OnCalendar=daily UTC\nPersistent=yes\nRandomizedDelaySec=1h");
    state.last_trigger = Some(at("2026-11-30T00:00:05Z"));
    let fire = next(&t, &state, "2026-12-02T14:00:00Z").unwrap();
    assert!(fire >= at("2026-12-02T14:00:00Z") && fire < at("2026-12-02T15:00:00Z"), "{fire}");
}

#[test]
fn the_earliest_trigger_wins() {
    let t = timer("OnCalendar=hourly UTC\nOnActiveSec=5min\nOnCalendar=*:20 UTC");
    let mut state = started();
    state.activated_at = at("2026-12-02T14:10:00Z");
    assert_eq!(next(&t, &state, "2026-12-02T14:10:00Z"), Some(at("2026-12-02T14:15:00Z")));
    state.last_trigger = Some(at("2026-12-02T14:15:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:15:00Z"), Some(at("2026-12-02T14:20:00Z")));
    state.last_trigger = Some(at("2026-12-02T14:20:00Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:20:00Z"), Some(at("2026-12-02T15:00:00Z")));
    // A calendar that never elapses again and a used-up one-shot: elapsed.
    let t = timer("OnCalendar=2003-03-05\nOnActiveSec=1s");
    state.last_trigger = Some(at("2026-12-02T14:10:01Z"));
    assert_eq!(next(&t, &state, "2026-12-02T14:20:00Z"), None);
    // `infinity` never comes.
    assert_eq!(next(&timer("OnActiveSec=infinity"), &started(), "2026-12-02T14:00:00Z"), None);
}

#[test]
fn the_random_delay_is_below_the_bound_and_reproducible() {
    let t = timer("OnCalendar=hourly UTC\nRandomizedDelaySec=10min");
    let state = started();
    let now = at("2026-12-02T14:00:00Z");
    let elapse = at("2026-12-02T15:00:00Z");
    let mut delays = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let fire = next_elapse_in(&t, &state, now, seed, &TimeZone::UTC).unwrap();
        assert_eq!(fire, next_elapse_in(&t, &state, now, seed, &TimeZone::UTC).unwrap(), "reproducible");
        let delay = fire.duration_since(elapse);
        assert!(
            delay >= jiff::SignedDuration::ZERO && delay < jiff::SignedDuration::from_mins(10),
            "{delay:?}"
        );
        delays.insert(randomized_delay(&t, elapse, seed));
    }
    assert!(delays.len() > 40, "the seed spreads the delay: {delays:?}");

    // Each elapse gets its own delay, unless FixedRandomDelay=.
    let hours: Vec<Timestamp> =
        (0..20).map(|h| elapse.checked_add(jiff::SignedDuration::from_hours(h)).unwrap()).collect();
    let varying: std::collections::BTreeSet<Duration> =
        hours.iter().map(|&e| randomized_delay(&t, e, 1)).collect();
    assert!(varying.len() > 15, "{varying:?}");
    let fixed = timer("OnCalendar=hourly UTC\nRandomizedDelaySec=10min\nFixedRandomDelay=yes");
    let same: std::collections::BTreeSet<Duration> =
        hours.iter().map(|&e| randomized_delay(&fixed, e, 1)).collect();
    assert_eq!(same.len(), 1, "{same:?}");
    // Another timer on the same machine gets another fixed delay.
    let mut other = fixed.clone();
    other.name = UnitName::parse("other").unwrap();
    assert_ne!(randomized_delay(&other, elapse, 1), randomized_delay(&fixed, elapse, 1));

    // No RandomizedDelaySec=: exact.
    assert_eq!(randomized_delay(&timer("OnActiveSec=1"), elapse, 1), Duration::ZERO);
    let huge = timer("OnActiveSec=1\nRandomizedDelaySec=infinity");
    let _ = next_elapse_in(&huge, &state, now, 3, &TimeZone::UTC);
}
