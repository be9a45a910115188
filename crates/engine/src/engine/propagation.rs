//! What a unit's end does to others, as systemd.unit(5) says, whoever ended it: a unit that
//! stops, exits or fails stops the units bound to it (`BindsTo=`), and a unit that fails starts
//! its `OnFailure=` units. (Stops and restarts a user asks for propagate through `Requires=`,
//! `BindsTo=` and `PartOf=` in `lifecycle.rs`.) One engine task watches the state changes.

use std::sync::{Arc, Weak};

use gitvisor_protocol::{EventKind, ServiceState};

use super::{Engine, Inner};
use crate::events::Priority;

const WATCHER: &str = "dependency watcher";

/// What follows from `service` entering `to` (`failed`: the change is a failure).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consequences {
    /// Up units bound to it: stopped.
    pub stop: Vec<String>,
    /// Its `OnFailure=` units: started.
    pub start: Vec<String>,
}

impl Engine {
    /// Starts the dependency watcher (owned by the engine's background tasks).
    pub(super) fn start_propagation(&self) {
        let mut events =
            self.inner.bus.subscribe_to(Priority::Propagation, 1024, crate::events::state_changes);
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        self.inner.background.spawn(WATCHER, async move {
            while let Some(event) = events.recv().await {
                let EventKind::State { service, to, reason, .. } = event.kind else { continue };
                let Some(inner) = weak.upgrade() else { return };
                let engine = Engine { inner };
                // An exit with a reason is a failure (a clean end has none).
                let failed = to == ServiceState::Failed || (to == ServiceState::Exited && reason.is_some());
                let c = engine.consequences(&service, to, failed);
                engine.carry_out(&service, to, c);
            }
        });
    }

    fn consequences(&self, service: &str, to: ServiceState, failed: bool) -> Consequences {
        let registry = self.registry();
        let down = matches!(to, ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed);
        let stop = if down {
            registry
                .services
                .iter()
                .filter(|(n, s)| s.unit.binds_to.iter().any(|b| b == service) && registry.is_up(n))
                .map(|(n, _)| n.clone())
                .collect()
        } else {
            Vec::new()
        };
        let start = match registry.services.get(service) {
            Some(s) if failed => s.unit.on_failure.clone(),
            _ => Vec::new(),
        };
        Consequences { stop, start }
    }

    fn carry_out(&self, service: &str, to: ServiceState, c: Consequences) {
        if !c.stop.is_empty() {
            for n in &c.stop {
                self.inner
                    .logs
                    .note(n, format!("stopping: it is bound to {service} (BindsTo=), which is {to}"));
            }
            let engine = self.clone();
            self.inner.background.spawn("BindsTo= stop", async move {
                engine.stop_ordered(c.stop, true, false).await;
            });
        }
        if !c.start.is_empty() {
            let (known, unknown): (Vec<String>, Vec<String>) =
                c.start.into_iter().partition(|n| self.has_service(n));
            for n in &unknown {
                self.inner.logs.note(service, format!("OnFailure={n}: no such unit"));
            }
            if known.is_empty() {
                return;
            }
            self.inner.logs.note(service, format!("failed: starting {} (OnFailure=)", known.join(", ")));
            for n in &known {
                self.inner.logs.note(n, format!("started because {service} failed (OnFailure=)"));
            }
            let engine = self.clone();
            self.inner.background.spawn("OnFailure= start", async move {
                engine.start_ordered(known, false, false).await;
            });
        }
    }
}
