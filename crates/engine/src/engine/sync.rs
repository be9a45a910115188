//! Applying commits: the sync operation and the watcher that triggers it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gitvisor_protocol::{ErrorCode, EventKind, Method, OpOutcome, ServiceState, SyncNow, SyncReport};
use gitvisor_state::LockError;
use gitvisor_units::Unit;

use super::{Engine, EngineError};
use crate::git::plan::plan;
use crate::git::ServicesRepo;
use crate::supervisor::{Command, Initial};
use crate::units::UnitSet;

/// The lock key of applying commits (sync, rollback): one at a time.
pub(super) const SYNC_KEY: &str = SyncNow::NAME;
/// How long a sync or rollback asked for waits for one already under way.
const SYNC_WAIT: Duration = Duration::from_secs(30);
const SYNC_RETRY: Duration = Duration::from_millis(25);
const WATCHER: &str = "git watcher";

impl Engine {
    /// Applies the branch's commit now (`gitvisor sync`): stops removed units, replaces changed
    /// ones, registers added ones and starts the enabled among them, in dependency order.
    pub async fn sync(&self) -> Result<SyncReport, EngineError> {
        // A fleet node first takes what the remote has.
        self.pull().await;
        let me = self.clone();
        // One already under way (the watcher's, for the commit just made) is waited for; this
        // one then applies whatever it did not.
        let report = self
            .under_sync_lock(SyncNow::NAME, || {
                let me = me.clone();
                async move { me.sync_locked().await }
            })
            .await??;
        // The watcher applies a commit the moment its ref moves, often before a user's `sync`
        // (or `edit`) for that commit gets the lock: the answer is then what applying it did.
        if report.old == report.new && report.problem.is_none() {
            let last = self.inner.last_applied_sync.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(last) = last.filter(|l| l.new == report.new) {
                return Ok(last);
            }
        }
        Ok(report)
    }

    /// Runs `op` under the sync lock, its future made afresh by `make` for each try: a sync
    /// already under way is waited for, up to [`SYNC_WAIT`], rather than refused.
    pub(super) async fn under_sync_lock<T, F: std::future::Future<Output = T>>(
        &self,
        op: &str,
        mut make: impl FnMut() -> F,
    ) -> Result<T, LockError> {
        let waited = tokio::time::Instant::now() + SYNC_WAIT;
        loop {
            match self.inner.locks.with_lock(SYNC_KEY, op, make()).await {
                Err(LockError::InProgress { .. }) if tokio::time::Instant::now() < waited => {
                    tokio::time::sleep(SYNC_RETRY).await;
                }
                other => return other,
            }
        }
    }

    /// A sync whose failure is only logged (start-up, watcher).
    pub(super) async fn sync_logged(&self) {
        // A sync already running read the branch before this trigger: `sync` waits for it.
        match self.sync().await {
            Err(e) => tracing::error!("sync: {e}"),
            Ok(r) => {
                if let Some(p) = &r.problem {
                    tracing::warn!("sync: {p}");
                }
            }
        }
    }

    pub(super) fn start_watcher(&self) {
        let git_dir = match ServicesRepo::open(&self.inner.paths.services) {
            Ok(r) => r.git_dir(),
            Err(e) => {
                tracing::warn!("not watching the services repository: {e}");
                return;
            }
        };
        let weak = Arc::downgrade(&self.inner);
        let s = &self.inner.settings.git;
        let watch =
            crate::git::watcher::watch(git_dir, s.file_events, s.debounce, s.poll_interval, move || {
                let weak = weak.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        Engine { inner }.sync_logged().await;
                    }
                }
            });
        self.inner.background.spawn(WATCHER, watch.work);
    }

    /// After a user's operation: if a sync waited for it, sync again now (as a background task,
    /// so the operation's answer does not wait for it).
    pub(super) fn resume_waiting_sync(&self) {
        if !self.inner.sync_waiting.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        self.inner.background.spawn("sync after an operation", async move {
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.sync_logged().await;
            }
        });
    }

    /// No sync starts after this returns.
    pub(super) async fn stop_watcher(&self) {
        self.inner.background.stop(WATCHER).await;
    }

    async fn sync_locked(&self) -> Result<SyncReport, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        let old = self.applied();
        let mut report =
            SyncReport { at_ms: crate::time::now_ms(), old: old.clone(), ..SyncReport::default() };
        let head = match repo.head() {
            Ok(h) => h,
            Err(problem) => {
                *self.inner.repo_problem.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("{problem}; running the last applied commit"));
                report.problem = Some(problem);
                return Ok(report);
            }
        };
        *self.inner.repo_problem.write().unwrap_or_else(|e| e.into_inner()) = None;
        let commit = head.commit.to_string();
        report.new = Some(commit.clone());
        if old.as_deref() == Some(commit.as_str()) {
            report.applied = true;
            return Ok(report);
        }
        let files = repo.units_at(head.commit)?;
        drop(repo);
        let mut next = UnitSet::load_files(files, &self.inner.ctx);
        let current: BTreeMap<String, Arc<Unit>> =
            self.registry().services.iter().map(|(n, s)| (n.clone(), s.unit.clone())).collect();
        // Instances started by hand continue, from their template as it is in the new commit.
        let instances: Vec<&String> =
            current.keys().filter(|n| n.contains('@') && !next.units.contains_key(*n)).collect();
        for name in instances {
            let _ = next.instantiate(name, &self.inner.ctx);
        }
        let plan = plan(&current, &next.units, &next.invalid_units);
        let order: Vec<String> = next.plan().order;
        let position = |n: &str| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
        // Services an operation held: the commit is applied once they are free. Those this
        // engine's own operations held sync again when the operation ends; those another
        // holder has, at the next sync.
        let mut busy: Vec<String> = Vec::new();
        let mut busy_here: Vec<String> = Vec::new();
        report.errors.extend(next.invalid.iter().cloned());

        // 1. Removed: stop (dependents first), then forget.
        if !plan.removed.is_empty() {
            let stopped = self.stop_ordered(plan.removed.clone(), false, false).await;
            for r in stopped.results {
                if r.ok {
                    report.actions.push(format!("stopped {} (removed)", r.name));
                } else {
                    if is_busy(&r) {
                        busy.push(r.name.clone());
                    }
                    if r.code == Some(ErrorCode::InProgress) {
                        busy_here.push(r.name.clone());
                    }
                    report.errors.push(format!("{}: {}", r.name, r.error.unwrap_or_default()));
                    continue;
                }
                self.unregister(&r.name);
            }
        }

        // 2. Changed and relabelled, in start order.
        let mut changed = plan.changed.clone();
        changed.sort_by_key(|(n, _)| position(n));
        // What to start, with why: `added`, `enabled`, `fixed`.
        let mut to_start: Vec<(String, &str)> = Vec::new();
        for (name, unit) in changed.iter().chain(plan.relabelled.iter()) {
            let effect_changed = plan.changed.iter().any(|(n, _)| n == name);
            let (was_active, was_enabled, had_failed) = {
                let registry = self.registry();
                let s = registry.services.get(name);
                let snap = s.map(|s| s.snapshot.borrow().clone());
                (
                    registry.is_up(name),
                    s.is_some_and(|s| s.enabled),
                    snap.is_some_and(|snap| {
                        snap.state == ServiceState::Failed
                            || (snap.state == ServiceState::Exited && snap.error.is_some())
                    }),
                )
            };
            let restart = effect_changed && was_active;
            let out = self
                .locked_op(name, SyncNow::NAME, |reply| Command::Replace {
                    unit: unit.clone(),
                    restart,
                    reply: Some(reply),
                })
                .await;
            if is_busy(&out) {
                busy.push(name.clone());
                if out.code == Some(ErrorCode::InProgress) {
                    busy_here.push(name.clone());
                }
                report.errors.push(format!("{name}: {}", out.error.unwrap_or_default()));
                continue;
            }
            let enabled = next.is_enabled(name);
            self.registry_mut().set_unit(name, unit.clone(), enabled, &commit);
            match (effect_changed, restart, out.ok) {
                (false, _, _) => report.actions.push(format!("updated {name} (description only)")),
                (true, true, true) => report.actions.push(format!("restarted {name} (changed)")),
                (true, true, false) => report.errors.push(format!(
                    "{name}: restarted with its new version, which did not start: {}",
                    out.error.unwrap_or_default()
                )),
                (true, false, _) if enabled && had_failed => {}
                (true, false, _) if had_failed => {
                    report.actions.push(format!("updated {name} (changed; its failure is cleared)"))
                }
                (true, false, _) => report.actions.push(format!("updated {name} (changed; not running)")),
            }
            // A committed fix of an enabled unit that failed starts it, as does enabling one.
            if effect_changed && !was_active && enabled {
                if had_failed {
                    to_start.push((name.clone(), "changed after it failed"));
                } else if !was_enabled {
                    to_start.push((name.clone(), "enabled"));
                }
            }
        }

        // 3. Invalid in the commit: the previous version keeps running.
        for (name, error) in &plan.kept {
            let msg = format!(
                "the unit in commit {} is invalid ({error}); the previous version runs",
                short_str(&commit)
            );
            if let Some(s) = self.registry_mut().services.get_mut(name) {
                s.load_error = Some(msg);
            }
            // Keep its last valid version in the set, so ordering and instances still see it.
            if let Some(u) = current.get(name) {
                next.units.insert(name.clone(), u.clone());
            }
        }

        // 4. Added: register, then start the enabled ones with everything else to start.
        for (name, unit) in &plan.added {
            let name: &String = name;
            let enabled = next.is_enabled(name);
            let service = self.spawn_service(name, unit.clone(), enabled, Initial::Stopped { restarts: 0 });
            let mut registry = self.registry_mut();
            registry.services.insert(name.clone(), service);
            registry.set_unit(name, unit.clone(), enabled, &commit);
            drop(registry);
            if enabled {
                to_start.push((name.clone(), "added"));
            } else {
                report.actions.push(format!("registered {name} (added; not enabled)"));
            }
        }
        {
            let mut registry = self.registry_mut();
            // Only what is invalid in this commit keeps a load error: a unit fixed since (by a
            // change, or by a revert to the version that runs) shows none.
            for (name, s) in registry.services.iter_mut() {
                if !plan.kept.iter().any(|(k, _)| k == name) {
                    s.load_error = None;
                }
            }
            registry.set_units(next);
            self.inner.timers.changed();
            self.inner.watches.changed();
        }
        // Fleet singletons start where their lease is held, by their drivers.
        to_start.retain(|(n, _)| !self.fleet_managed(n));
        self.drive_new_singletons();
        if !to_start.is_empty() {
            let names: Vec<String> = to_start.iter().map(|(n, _)| n.clone()).collect();
            let started = self.start_ordered(names, false, false).await;
            for r in started.results {
                let Some((_, why)) = to_start.iter().find(|(n, _)| *n == r.name) else { continue };
                if r.ok {
                    report.actions.push(format!("started {} ({why})", r.name));
                } else {
                    report.errors.push(format!("{}: {}", r.name, r.error.unwrap_or_default()));
                }
            }
        }

        // A unit busy with an operation is applied by a later sync: the commit is not marked
        // applied until then.
        report.applied = busy.is_empty();
        if !busy_here.is_empty() {
            self.inner.sync_waiting.store(true, std::sync::atomic::Ordering::SeqCst);
            // An operation that ended while this sync ran found no sync waiting: go again now.
            let held: Vec<String> = self.inner.locks.current().into_iter().map(|(k, _)| k).collect();
            if !busy_here.iter().any(|n| held.contains(&super::lifecycle::lock_key(n))) {
                self.resume_waiting_sync();
            }
        }
        if report.applied {
            *self.inner.applied.write().unwrap_or_else(|e| e.into_inner()) = Some(commit.clone());
            self.inner.store.set_applied(Some(commit.clone()));
            // A new commit is a moment to see whether the repository wants a gc.
            self.maintain();
        }
        self.record(&report);
        if report.applied && report.old != report.new {
            *self.inner.last_applied_sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        }
        Ok(report)
    }

    fn unregister(&self, name: &str) {
        self.registry_mut().remove(name);
        self.inner.store.remove_service(name);
    }

    /// Appends the sync to the history file and announces it.
    fn record(&self, report: &SyncReport) {
        let mut line = serde_json::to_vec(report).unwrap_or_default();
        line.push(b'\n');
        if let Err(e) = gitvisor_state::append_locked(&self.inner.paths.sync_history, &line) {
            tracing::error!("cannot record the sync in {}: {e}", self.inner.paths.sync_history.display());
        }
        tracing::info!(
            "sync {} -> {}: {}{}",
            report.old.as_deref().map(short_str).unwrap_or("(none)"),
            report.new.as_deref().map(short_str).unwrap_or("(none)"),
            if report.actions.is_empty() { "nothing to do".to_string() } else { report.actions.join(", ") },
            if report.errors.is_empty() {
                String::new()
            } else {
                format!("; errors: {}", report.errors.join("; "))
            }
        );
        self.inner.bus.publish(EventKind::SyncApplied { report: report.clone() });
    }
}

/// The service's lock refused the operation: the commit is applied at a later sync.
fn is_busy(out: &OpOutcome) -> bool {
    !out.ok && out.code.is_some_and(|c| c.is_busy())
}

pub(super) fn short_str(id: &str) -> &str {
    &id[..id.len().min(10)]
}
