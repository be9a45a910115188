//! Applying commits: the sync operation, the watcher that triggers it, history and rollback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gitvisor_protocol::{CommitInfo, EventKind, HistoryReply, RollbackReply, ServiceState, SyncReport};
use gitvisor_state::LockError;
use gitvisor_units::Unit;

use super::{Engine, EngineError, Initial};
use crate::git::plan::plan;
use crate::git::ServicesRepo;
use crate::supervisor::Command;
use crate::units::UnitSet;

const SYNC_KEY: &str = "sync";

fn git_error(e: crate::git::GitError) -> EngineError {
    EngineError::Failed(e.to_string())
}

impl Engine {
    /// Applies the branch's commit now (`gitvisor sync`): stops removed units, replaces changed
    /// ones, registers added ones and starts the enabled among them, in dependency order.
    pub async fn sync(&self) -> Result<SyncReport, EngineError> {
        let me = self.clone();
        self.inner.locks.with_lock(SYNC_KEY, "sync", async move { me.sync_locked().await }).await?
    }

    /// A sync whose failure is only logged (start-up, watcher).
    pub(super) async fn sync_logged(&self) {
        // A sync already running read the branch before this trigger: retry until this one runs.
        for _ in 0..200 {
            match self.sync().await {
                Err(EngineError::Lock(LockError::InProgress { .. })) => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => {
                    tracing::error!("sync: {e}");
                    return;
                }
                Ok(r) => {
                    if let Some(p) = &r.problem {
                        tracing::warn!("sync: {p}");
                    }
                    return;
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
        let watcher =
            crate::git::watcher::watch(git_dir, s.file_events, s.debounce, s.poll_interval, move || {
                let weak = weak.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        Engine { inner }.sync_logged().await;
                    }
                }
            });
        *self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
    }

    pub(super) fn stop_watcher(&self) {
        self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    async fn sync_locked(&self) -> Result<SyncReport, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services).map_err(git_error)?;
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
        let files = repo.units_at(head.commit).map_err(git_error)?;
        drop(repo);
        let mut next = UnitSet::load_files(files, &self.inner.ctx);
        let current: BTreeMap<String, Arc<Unit>> = {
            let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
            services.iter().map(|(n, s)| (n.clone(), s.unit.clone())).collect()
        };
        // Instances started by hand continue, from their template as it is in the new commit.
        let instances: Vec<&String> =
            current.keys().filter(|n| n.contains('@') && !next.units.contains_key(*n)).collect();
        for name in instances {
            let _ = next.instantiate(name, &self.inner.ctx);
        }
        let plan = plan(&current, &next.units, &next.invalid_units);
        let order: Vec<String> = next.plan().order;
        let position = |n: &str| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
        let mut retry = false;
        report.errors.extend(next.invalid.iter().cloned());

        // 1. Removed: stop (dependents first), then forget.
        if !plan.removed.is_empty() {
            let stopped = self.stop_ordered(plan.removed.clone(), false).await;
            for r in stopped.results {
                if r.ok {
                    report.actions.push(format!("stopped {} (removed)", r.name));
                } else {
                    retry |= is_lock_error(r.error.as_deref());
                    report.errors.push(format!("{}: {}", r.name, r.error.unwrap_or_default()));
                    continue;
                }
                self.unregister(&r.name);
            }
        }

        // 2. Changed and relabelled, in start order.
        let mut changed = plan.changed.clone();
        changed.sort_by_key(|(n, _)| position(n));
        let mut to_start: Vec<String> = Vec::new();
        for (name, unit) in changed.iter().chain(plan.relabelled.iter()) {
            let effect_changed = plan.changed.iter().any(|(n, _)| n == name);
            let (was_active, was_enabled) = self.activity(name);
            let restart = effect_changed && was_active;
            let out = self
                .locked_op(name, "sync", |reply| Command::Replace {
                    unit: unit.clone(),
                    restart,
                    reply: Some(reply),
                })
                .await;
            if !out.ok && is_lock_error(out.error.as_deref()) {
                retry = true;
                report.errors.push(format!("{name}: {}", out.error.unwrap_or_default()));
                continue;
            }
            let enabled = next.is_enabled(name);
            self.set_unit(name, unit.clone(), enabled, &commit);
            match (effect_changed, restart, out.ok) {
                (false, _, _) => report.actions.push(format!("updated {name} (description only)")),
                (true, true, true) => report.actions.push(format!("restarted {name} (changed)")),
                (true, true, false) => report.errors.push(format!(
                    "{name}: restarted with its new version, which did not start: {}",
                    out.error.unwrap_or_default()
                )),
                (true, false, _) => report.actions.push(format!("updated {name} (changed; not running)")),
            }
            if effect_changed && !was_active && enabled && !was_enabled {
                to_start.push(name.clone());
            }
        }

        // 3. Invalid in the commit: the previous version keeps running.
        for (name, error) in &plan.kept {
            let msg = format!(
                "the unit in commit {} is invalid ({error}); the previous version runs",
                short_str(&commit)
            );
            if let Some(s) = self.inner.services.write().unwrap_or_else(|e| e.into_inner()).get_mut(name) {
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
            self.inner.services.write().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), service);
            self.set_unit(name, unit.clone(), enabled, &commit);
            if enabled {
                to_start.push(name.clone());
            } else {
                report.actions.push(format!("registered {name} (added; not enabled)"));
            }
        }
        // Clear the error of units that are valid again.
        for (name, _) in plan.changed.iter().chain(&plan.relabelled).chain(&plan.added) {
            if let Some(s) = self.inner.services.write().unwrap_or_else(|e| e.into_inner()).get_mut(name) {
                s.load_error = None;
            }
        }
        self.update_graph(&next);
        *self.inner.units.lock().unwrap_or_else(|e| e.into_inner()) = next;
        if !to_start.is_empty() {
            let started = self.start_ordered(to_start.clone(), false).await;
            for r in started.results.into_iter().filter(|r| to_start.contains(&r.name)) {
                if r.ok {
                    report.actions.push(format!("started {} (added)", r.name));
                } else {
                    report.errors.push(format!("{}: {}", r.name, r.error.unwrap_or_default()));
                }
            }
        }

        // A unit busy with a user's operation is applied at the next sync: the commit is not
        // marked applied until then.
        report.applied = !retry;
        if report.applied {
            *self.inner.applied.write().unwrap_or_else(|e| e.into_inner()) = Some(commit.clone());
            self.inner.store.set_applied(Some(commit.clone()));
        }
        self.record(&report);
        Ok(report)
    }

    fn activity(&self, name: &str) -> (bool, bool) {
        let services = self.inner.services.read().unwrap_or_else(|e| e.into_inner());
        match services.get(name) {
            Some(s) => {
                let state = s.snapshot.borrow().state;
                (state.is_active() || state == ServiceState::Backoff, s.enabled)
            }
            None => (false, false),
        }
    }

    fn set_unit(&self, name: &str, unit: Arc<Unit>, enabled: bool, commit: &str) {
        if let Some(s) = self.inner.services.write().unwrap_or_else(|e| e.into_inner()).get_mut(name) {
            s.unit = unit;
            s.enabled = enabled;
            s.commit = Some(commit.to_string());
        }
    }

    fn unregister(&self, name: &str) {
        if let Some(s) = self.inner.services.write().unwrap_or_else(|e| e.into_inner()).remove(name) {
            s.task.abort();
        }
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

    /// Commits on the branch, newest first, with the units each changed and whether it runs;
    /// and the latest syncs.
    pub fn history(&self, limit: usize) -> Result<HistoryReply, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services).map_err(git_error)?;
        let applied = self.applied().and_then(|a| repo.resolve(&a).ok());
        let mut commits: Vec<CommitInfo> = repo.history(limit).map_err(git_error)?;
        for c in &mut commits {
            if let (Some(a), Ok(id)) = (applied, repo.resolve(&c.id)) {
                c.applied = repo.contains(a, id);
            }
        }
        let text = std::fs::read_to_string(&self.inner.paths.sync_history).unwrap_or_default();
        let mut syncs: Vec<SyncReport> =
            text.lines().rev().filter_map(|l| serde_json::from_str(l).ok()).take(limit).collect();
        syncs.truncate(limit);
        Ok(HistoryReply { commits, syncs })
    }

    /// What rolling back to `commit` would change in the unit files (HEAD to `commit`).
    pub fn diff_to(&self, commit: &str) -> Result<String, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services).map_err(git_error)?;
        let id = repo.resolve(commit).map_err(git_error)?;
        repo.diff_to(id).map_err(git_error)
    }

    /// What `commit` changed in the unit files against its first parent.
    pub fn commit_diff(&self, commit: &str) -> Result<String, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services).map_err(git_error)?;
        let id = repo.resolve(commit).map_err(git_error)?;
        repo.commit_patch(id).map_err(git_error)
    }

    /// A new commit whose tree is `commit`'s, applied at once.
    pub async fn rollback(&self, commit: &str) -> Result<RollbackReply, EngineError> {
        let me = self.clone();
        let target = commit.to_string();
        let made = self
            .inner
            .locks
            .with_lock(SYNC_KEY, "rollback", async move {
                let repo = ServicesRepo::open(&me.inner.paths.services).map_err(git_error)?;
                let id = repo.resolve(&target).map_err(git_error)?;
                repo.rollback(id).map_err(git_error)
            })
            .await??;
        let sync = self.sync().await?;
        Ok(RollbackReply { commit: made.to_string(), sync })
    }
}

fn is_lock_error(e: Option<&str>) -> bool {
    e.is_some_and(|e| e.contains("in progress") || e.contains("is locked by"))
}

fn short_str(id: &str) -> &str {
    &id[..id.len().min(10)]
}
