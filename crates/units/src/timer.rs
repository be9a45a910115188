//! The typed [`Timer`]: a `NAME.timer` file's settings with systemd's defaults
//! (systemd.timer(5)). How it is built from a file's entries is in `build/timer.rs`; when it
//! elapses is in `trigger.rs`.

use std::time::Duration;

use serde::Serialize;

use crate::calendar::CalendarSpec;
use crate::name::{UnitName, TIMER_SUFFIX};

/// A timer: when to start which service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timer {
    /// The timer's name without `.timer` (`backup` for `backup.timer`).
    pub name: UnitName,
    pub description: Option<String>,
    /// `OnCalendar=`: wall-clock elapses, in file order.
    pub on_calendar: Vec<CalendarSpec>,
    /// `OnActiveSec=`: once, this long after the timer was activated (the engine started with
    /// it enabled, it was started by hand, or it appeared enabled).
    pub on_active: Vec<Duration>,
    /// `OnBootSec=` and `OnStartupSec=`: once, this long after the engine started. gitvisor has
    /// no boot of its own; the engine's start is the user manager's start in systemd's terms.
    pub on_startup: Vec<Duration>,
    /// `OnUnitActiveSec=`: this long after the service last became active.
    pub on_unit_active: Vec<Duration>,
    /// `OnUnitInactiveSec=`: this long after the service last became inactive.
    pub on_unit_inactive: Vec<Duration>,
    /// `AccuracySec=`: how late the engine may fire to coalesce wake-ups.
    pub accuracy: Duration,
    /// `RandomizedDelaySec=`: each elapse is delayed by a random time below this.
    pub randomized_delay: Duration,
    /// `FixedRandomDelay=`: the random delay is the same for every elapse.
    pub fixed_random_delay: bool,
    /// `Persistent=`: a calendar elapse missed while the engine was down fires when it is back.
    pub persistent: bool,
    /// `Unit=`: the service started, without `.service` (by default the timer's own name).
    pub unit: UnitName,
    /// `RemainAfterElapse=`: an elapsed timer stays active (and does not fire again when started
    /// again) rather than going inactive.
    pub remain_after_elapse: bool,
    pub wanted_by: Vec<String>,
}

/// systemd's `DefaultTimerAccuracySec=`.
pub(crate) const DEFAULT_ACCURACY: Duration = Duration::from_secs(60);

impl Timer {
    /// A timer with every setting at its default and no trigger, starting the service of the
    /// same name.
    pub fn new(name: UnitName) -> Self {
        Timer {
            unit: name.clone(),
            name,
            description: None,
            on_calendar: Vec::new(),
            on_active: Vec::new(),
            on_startup: Vec::new(),
            on_unit_active: Vec::new(),
            on_unit_inactive: Vec::new(),
            accuracy: DEFAULT_ACCURACY,
            randomized_delay: Duration::ZERO,
            fixed_random_delay: false,
            persistent: false,
            remain_after_elapse: true,
            wanted_by: Vec::new(),
        }
    }

    /// The file name, e.g. `backup.timer`.
    pub fn file_name(&self) -> String {
        format!("{}{TIMER_SUFFIX}", self.name)
    }

    /// Enabled timers are activated with the engine: `[Install] WantedBy=` names anything.
    pub fn enabled(&self) -> bool {
        !self.wanted_by.is_empty()
    }

    /// At least one `On…=` setting: systemd refuses a timer without.
    pub fn has_triggers(&self) -> bool {
        !(self.on_calendar.is_empty()
            && self.on_active.is_empty()
            && self.on_startup.is_empty()
            && self.on_unit_active.is_empty()
            && self.on_unit_inactive.is_empty())
    }

    /// Empties every trigger list: an empty `On…=` assignment does that in systemd.
    pub(crate) fn clear_triggers(&mut self) {
        self.on_calendar.clear();
        self.on_active.clear();
        self.on_startup.clear();
        self.on_unit_active.clear();
        self.on_unit_inactive.clear();
    }

    /// Whether the timer stays active once it will not elapse again: with
    /// `RemainAfterElapse=yes`, and always with `OnUnit…Sec=` triggers (the service may start
    /// again and re-arm them), as in systemd.
    pub fn remains_after_elapse(&self) -> bool {
        self.remain_after_elapse || !self.on_unit_active.is_empty() || !self.on_unit_inactive.is_empty()
    }
}
