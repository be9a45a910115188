//! When a timer elapses next (systemd.timer(5)): a pure function of the [`Timer`], what has
//! happened so far ([`TimerState`]) and the clock. The engine owns the clock and the state and
//! starts the service when the time comes; nothing here reads either.
//!
//! Each trigger gives a time, and the earliest wins:
//!
//! - `OnActiveSec=`: this long after the timer was activated, once.
//! - `OnBootSec=`, `OnStartupSec=`: this long after the engine started, once; if the timer is
//!   activated later than that, at once (systemd does the same for a late timer).
//! - `OnUnitActiveSec=`, `OnUnitInactiveSec=`: this long after the later of the service's last
//!   activation (deactivation) and the timer's last trigger; nothing until either happened.
//! - `OnCalendar=`: the first elapse after the last trigger, or after the activation if there
//!   was none; never earlier than the engine's start.
//!
//! "Once": a trigger at or after the time uses it up, as systemd disables a one-shot trigger
//! that is past once the timer fired. Which last trigger counts is `Persistent=`'s business:
//! with `yes` the one stored across engine restarts (unless it is in the future: the clock went
//! back), so a calendar elapse missed while the engine was down is in the past and fires at
//! once; with `no` only triggers since the activation.
//!
//! Then `RandomizedDelaySec=` delays the winner by a pseudo-random time below it, the same for
//! the same seed, timer and elapse (and with `FixedRandomDelay=` for every elapse), so the
//! engine may compute the next elapse as often as it likes. The result is exact; the engine may
//! fire up to `AccuracySec=` late to coalesce wake-ups. A result at or before `now` means now.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::calendar::local_zone;
use crate::timer::Timer;

/// What happened to a timer and its service, as the engine records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerState {
    /// When the engine started: `OnBootSec=` and `OnStartupSec=` count from here.
    pub engine_started_at: Timestamp,
    /// When the timer was activated: the engine started with it enabled, it was started by
    /// hand, or it appeared enabled.
    pub activated_at: Timestamp,
    /// When the timer last fired. With `Persistent=yes` the engine keeps it across restarts
    /// (and stores `activated_at` when there is none yet, as systemd's stamp file does).
    pub last_trigger: Option<Timestamp>,
    /// When the service last became active (started).
    pub unit_last_active: Option<Timestamp>,
    /// When the service last became inactive (stopped, exited or failed).
    pub unit_last_inactive: Option<Timestamp>,
}

impl TimerState {
    /// A timer activated at `activated_at` that has not fired, its service never run.
    pub fn new(engine_started_at: Timestamp, activated_at: Timestamp) -> Self {
        TimerState {
            engine_started_at,
            activated_at,
            last_trigger: None,
            unit_last_active: None,
            unit_last_inactive: None,
        }
    }
}

/// The next time the timer fires, random delay included; `None` when it never will again (it
/// has elapsed: see [`Timer::remains_after_elapse`]). Calendar expressions without a zone use
/// the system's. `seed` makes the random delay: for `FixedRandomDelay=` something stable on
/// the machine (e.g. a hash of /etc/machine-id), otherwise anything, say random per engine start.
pub fn next_elapse(timer: &Timer, state: &TimerState, now: Timestamp, seed: u64) -> Option<Timestamp> {
    next_elapse_in(timer, state, now, seed, &local_zone())
}

/// [`next_elapse`] with `local` as the zone of calendar expressions without one.
pub fn next_elapse_in(
    timer: &Timer,
    state: &TimerState,
    now: Timestamp,
    seed: u64,
    local: &TimeZone,
) -> Option<Timestamp> {
    let last_trigger = counted_last_trigger(timer, state, now);
    let after = |base: Timestamp, span: &Duration| base.checked_add(*span).ok();
    let unused = |t: &Timestamp| last_trigger.is_none_or(|last| last < *t);
    let once = |base: Timestamp, spans: &[Duration]| -> Vec<Timestamp> {
        spans.iter().filter_map(|span| after(base, span)).filter(unused).collect()
    };
    let since = |changed: Option<Timestamp>, spans: &[Duration]| -> Vec<Timestamp> {
        let Some(base) = changed.max(last_trigger) else { return Vec::new() };
        spans.iter().filter_map(|span| after(base, span)).collect()
    };
    let calendar_base = last_trigger.unwrap_or(state.activated_at);
    let calendar = timer
        .on_calendar
        .iter()
        .filter_map(|spec| spec.next_after_in(calendar_base, local))
        .map(|t| t.max(state.engine_started_at));
    let earliest = once(state.activated_at, &timer.on_active)
        .into_iter()
        .chain(once(state.engine_started_at, &timer.on_startup))
        .chain(since(state.unit_last_active, &timer.on_unit_active))
        .chain(since(state.unit_last_inactive, &timer.on_unit_inactive))
        .chain(calendar)
        .min()?;
    let delay = randomized_delay(timer, earliest, seed);
    Some(earliest.checked_add(delay).unwrap_or(Timestamp::MAX))
}

/// The last trigger that counts: a stored one with `Persistent=yes` (unless from the future),
/// otherwise one since the activation.
fn counted_last_trigger(timer: &Timer, state: &TimerState, now: Timestamp) -> Option<Timestamp> {
    let last = state.last_trigger?;
    let counts = if timer.persistent { last <= now } else { last >= state.activated_at };
    counts.then_some(last)
}

/// The delay added to an elapse: below `RandomizedDelaySec=`, to the microsecond, and a pure
/// function of the seed, the timer's name and (unless `FixedRandomDelay=`) the elapse.
pub fn randomized_delay(timer: &Timer, elapse: Timestamp, seed: u64) -> Duration {
    let range = u64::try_from(timer.randomized_delay.as_micros()).unwrap_or(u64::MAX);
    if range == 0 {
        return Duration::ZERO;
    }
    // FNV-1a over the seed and the name: stable across Rust releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(timer.name.as_str().as_bytes()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    if !timer.fixed_random_delay {
        hash ^= elapse.as_microsecond() as u64;
    }
    Duration::from_micros(mix(hash) % range)
}

/// splitmix64's finalizer: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
