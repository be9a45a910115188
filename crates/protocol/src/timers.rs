//! Timer units as clients see them (`gitvisor timers`).

use serde::{Deserialize, Serialize};

/// One `NAME.timer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerStatus {
    /// `backup` for `backup.timer`.
    pub name: String,
    /// The service it starts (`Unit=`, by default the one of the same name).
    pub unit: String,
    /// Scheduled: `[Install] WantedBy=` names something.
    pub enabled: bool,
    /// When it elapses next (Unix ms); none when it will not again.
    pub next_ms: Option<u64>,
    /// When it last elapsed (Unix ms), as far as this engine knows (with `Persistent=`, across
    /// engine restarts).
    pub last_ms: Option<u64>,
    /// Its triggers as written, normalized (`OnCalendar=*-*-* 02:00:00 UTC`, `OnActiveSec=1s`).
    pub triggers: Vec<String>,
    pub persistent: bool,
    /// What went wrong with its last elapse (`unit backup.service does not exist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimersReply {
    pub timers: Vec<TimerStatus>,
}
