//! The engine in fleet mode: the fleet's background tasks, and the driver of each singleton
//! (see `crate::fleet`): it contends for the service's lease, runs the service while it holds
//! it, keeps the log keeper's dead-man switch ahead of the lease, and stops the service when
//! the lease is lost.

use std::sync::{Arc, Weak};
use std::time::Duration;

use gitvisor_protocol::{FleetStatusReply, ServiceState};

use super::{Engine, EngineError, Inner};
use crate::fleet::redis_locks::Lease;
use crate::fleet::{lease_key, Fleet, LeaseView};
use crate::supervisor::task::Grant;

/// The background task name of every singleton's driver.
const SINGLETON: &str = "fleet singleton";

/// What a singleton driver should do now.
enum Wanted {
    /// The unit is gone, or no longer a singleton: the driver ends.
    Gone,
    /// Not enabled: nobody runs it.
    Off,
    Run,
}

impl Engine {
    /// In fleet mode, `Singleton=yes` services are started by their lease, not by the engine's
    /// own start paths.
    pub(super) fn fleet_managed(&self, name: &str) -> bool {
        self.inner.settings.fleet.is_some()
            && self.registry().services.get(name).is_some_and(|s| s.unit.singleton)
    }

    pub(super) fn fleet(&self) -> Option<Arc<Fleet>> {
        self.inner.fleet.clone()
    }

    /// Starts the fleet's tasks: the node heartbeat, the pull from the remote, and a driver
    /// for every singleton.
    pub(super) fn start_fleet(&self) {
        let Some(fleet) = self.fleet() else {
            if let Some(e) = &self.inner.fleet_error {
                tracing::error!("fleet mode: {e}; singletons do not run");
            }
            return;
        };
        self.inner.background.spawn("fleet heartbeat", fleet.clone().heartbeat());
        if !fleet.settings.remote.is_empty() {
            let weak = Arc::downgrade(&self.inner);
            let every = fleet.settings.pull_interval.max(Duration::from_secs(1));
            self.inner.background.spawn("fleet pull", async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(inner) = weak.upgrade() else { return };
                    Engine { inner }.pull().await;
                }
            });
        }
        self.drive_new_singletons();
    }

    /// Fast-forwards the services repository from the fleet's remote (the watcher applies
    /// what it brings).
    pub(super) async fn pull(&self) {
        let Some(fleet) = self.fleet() else { return };
        if fleet.settings.remote.is_empty() {
            return;
        }
        if let Err(e) = crate::fleet::remote::pull(&self.inner.paths.services).await {
            tracing::warn!("fleet: {e}");
        }
    }

    /// A driver for each singleton that has none yet (at start, and after a sync).
    pub(super) fn drive_new_singletons(&self) {
        let Some(fleet) = self.fleet() else { return };
        let names: Vec<String> = self
            .registry()
            .services
            .iter()
            .filter(|(_, s)| s.unit.singleton)
            .map(|(n, _)| n.clone())
            .collect();
        let mut driven = self.inner.singletons.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            if driven.insert(name.clone()) {
                let (weak, fleet) = (Arc::downgrade(&self.inner), fleet.clone());
                self.inner.background.spawn(SINGLETON, drive(weak, fleet, name));
            }
        }
        fleet.changed.notify_waiters();
    }

    fn wanted(&self, name: &str) -> Wanted {
        let registry = self.registry();
        match registry.services.get(name) {
            Some(s) if s.unit.singleton && s.enabled => Wanted::Run,
            Some(s) if s.unit.singleton => Wanted::Off,
            _ => Wanted::Gone,
        }
    }

    /// Where a fleet singleton runs, for status.
    pub(super) fn fleet_note(&self, name: &str) -> Option<String> {
        if !self.fleet_managed(name) {
            return None;
        }
        let Some(fleet) = self.fleet() else {
            return Some(format!("not run: {}", self.inner.fleet_error.clone().unwrap_or_default()));
        };
        let view = fleet.view(name).unwrap_or_default();
        Some(match (&view.holder, view.here, &view.problem) {
            (_, true, _) => "here".into(),
            (_, _, Some(p)) => format!("not run here: {p}"),
            (Some(h), false, None) => format!("on {}", h.node),
            (None, false, None) => "waiting for its lease".into(),
        })
    }

    pub async fn fleet_status(&self) -> Result<FleetStatusReply, EngineError> {
        let Some(fleet) = self.fleet() else {
            return Err(EngineError::InvalidParams(match &self.inner.fleet_error {
                Some(e) => format!("fleet mode is off: {e}"),
                None => "fleet mode is off (no [fleet] in config.toml)".into(),
            }));
        };
        let singletons = self
            .registry()
            .services
            .iter()
            .filter(|(_, s)| s.unit.singleton)
            .map(|(n, _)| n.clone())
            .collect();
        Ok(fleet.status(singletons).await)
    }

    /// At shutdown, after the services stopped: the leases this node holds are released, so
    /// another node takes over at once rather than after the TTL.
    pub(super) async fn release_leases(&self) {
        let Some(fleet) = self.fleet() else { return };
        let names: Vec<String> =
            self.inner.singletons.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        for name in names {
            let _ = self.inner.logs.unleash(&name).await;
        }
        fleet.release_all().await;
    }

    /// The service's current pid and state.
    pub(super) fn process_of(&self, name: &str) -> Option<(Option<u32>, ServiceState)> {
        let registry = self.registry();
        let s = registry.services.get(name)?;
        let snap = s.snapshot.borrow();
        Some((snap.pid, snap.state))
    }
}

/// Waits for a change of the units or a third of the TTL, whichever comes first.
async fn pause(fleet: &Fleet) {
    tokio::select! {
        () = tokio::time::sleep(fleet.ttl() / 3) => {}
        () = fleet.changed.notified() => {}
    }
}

fn engine(weak: &Weak<Inner>) -> Option<Engine> {
    weak.upgrade().map(|inner| Engine { inner })
}

/// One singleton's driver: contends for its lease while it is wanted, runs it while held.
async fn drive(weak: Weak<Inner>, fleet: Arc<Fleet>, name: String) {
    let key = lease_key(&name);
    loop {
        let Some(e) = engine(&weak) else { return };
        match e.wanted(&name) {
            Wanted::Gone => {
                fleet.forget_view(&name);
                e.inner.singletons.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
                return;
            }
            Wanted::Off => {
                fleet.set_view(&name, LeaseView::default());
                drop(e);
                pause(&fleet).await;
                continue;
            }
            Wanted::Run => {}
        }
        drop(e);
        match fleet.locks.try_lease(&key, "run", fleet.predecessor(&name).as_deref()).await {
            Ok(Ok(lease)) => {
                fleet.remember(&name, Some(&lease.token));
                fleet.set_view(&name, LeaseView { here: true, fence: lease.fence, ..LeaseView::default() });
                hold(&weak, &fleet, &name, lease).await;
                if let Some(e) = engine(&weak) {
                    e.inner.run_env.clear(&name);
                }
                fleet.remember(&name, None);
                fleet.set_view(&name, LeaseView::default());
                // Let another node take it before contending again.
                tokio::time::sleep(fleet.ttl() / 3).await;
            }
            Ok(Err(held)) => {
                let view = LeaseView {
                    expires_in: held.as_ref().map(|(_, ttl)| *ttl),
                    holder: held.map(|(h, _)| h),
                    ..LeaseView::default()
                };
                fleet.set_view(&name, view);
                pause(&fleet).await;
            }
            Err(e) => {
                fleet.set_view(&name, LeaseView { problem: Some(e.to_string()), ..LeaseView::default() });
                pause(&fleet).await;
            }
        }
    }
}

/// Runs the singleton while `lease` holds; returns (the lease released) when it is lost, no
/// longer wanted, or the service failed.
async fn hold(weak: &Weak<Inner>, fleet: &Fleet, name: &str, lease: Lease) {
    let Some(e) = engine(weak) else { return };
    // The process learns which acquisition it runs under, to fence what it writes elsewhere.
    // Its starts, restarts included, also need the lease to outlast the dead-man switch's
    // margin.
    e.inner.run_env.set(
        name,
        Grant {
            env: vec![
                ("GITVISOR_FLEET_NODE".into(), fleet.node.clone()),
                ("GITVISOR_FLEET_FENCE".into(), lease.fence.to_string()),
            ],
            valid: Some((lease.renewals(), fleet.ttl() / 3)),
        },
    );
    // Adopted already (a restarted engine took its predecessor's lease back), or started now.
    let running = matches!(e.process_of(name), Some((Some(_), s)) if s.is_active());
    if !running {
        let started = e.start_ordered(vec![name.to_string()], false, false).await;
        if let Some(r) = started.results.iter().find(|r| r.name == name && !r.ok) {
            tracing::warn!(
                "{name}: holds its lease but did not start: {}",
                r.error.as_deref().unwrap_or_default()
            );
            return;
        }
    }
    let mut snapshot = match e.inner.registry.read().unwrap_or_else(|p| p.into_inner()).services.get(name) {
        Some(s) => s.snapshot.clone(),
        None => return,
    };
    drop(e);
    let mut renewals = lease.renewals();
    let lost = lease.lost();
    tokio::pin!(lost);
    let mut leashed: Option<(u32, u64)> = None;
    loop {
        let Some(e) = engine(weak) else { return };
        // The dead-man switch: a third of a TTL before the lease could expire.
        let valid = *renewals.borrow();
        let left = valid.saturating_duration_since(tokio::time::Instant::now());
        let until_ms = crate::time::now_ms() + left.saturating_sub(fleet.ttl() / 3).as_millis() as u64;
        let (pid, state) = e.process_of(name).unwrap_or((None, ServiceState::Stopped));
        if let Some(pid) = pid.filter(|_| state.is_active()) {
            if leashed != Some((pid, until_ms)) {
                if let Err(err) = e.inner.logs.leash(name, pid, until_ms).await {
                    tracing::error!("{name}: cannot arm the keeper's dead-man switch: {err}; stopping it");
                    e.stop_ordered(vec![name.to_string()], false, false).await;
                    return;
                }
                leashed = Some((pid, until_ms));
            }
        }
        if matches!(state, ServiceState::Failed | ServiceState::Exited) {
            // It ended for good on this node: let the lease go, another node may do better.
            let _ = e.inner.logs.unleash(name).await;
            return;
        }
        if !matches!(e.wanted(name), Wanted::Run) {
            e.stop_ordered(vec![name.to_string()], false, false).await;
            let _ = e.inner.logs.unleash(name).await;
            return;
        }
        drop(e);
        tokio::select! {
            why = &mut lost => {
                let Some(e) = engine(weak) else { return };
                e.inner.logs.note(name, format!("lost its fleet lease ({why}): stopping it"));
                e.stop_ordered(vec![name.to_string()], false, false).await;
                let _ = e.inner.logs.unleash(name).await;
                return;
            }
            _ = renewals.changed() => {}
            _ = snapshot.changed() => {}
            () = fleet.changed.notified() => {}
        }
    }
}
