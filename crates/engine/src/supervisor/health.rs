//! Health probes: a room for the work of `HealthCheckURL=` (SPEC sections 2 and 5).
//!
//! Probes will belong to the service's own task, not to a global poller: while the service
//! runs, its task keeps one probe timer beside its exit and stop timers, sends an HTTP GET with
//! the unit's timeout, and counts consecutive failures; at `HealthCheckRetries` it restarts the
//! service through the normal restart path (a failure for `Restart=` and the start limit) and
//! the crash reporter writes a report saying why. Nothing runs for a service without a URL.
//! Until then `HealthCheck*` keys are parsed and validated, and status says health `unknown`.

use std::time::Duration;

use gitvisor_units::Unit;

/// When and how a service is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before the service is restarted.
    pub retries: u32,
}

impl ProbePlan {
    /// The unit's probe, if it asks for one.
    pub fn of(unit: &Unit) -> Option<ProbePlan> {
        let h = &unit.health;
        h.url.as_ref().map(|url| ProbePlan {
            url: url.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
        })
    }
}
