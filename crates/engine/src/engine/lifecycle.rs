//! Lifecycle operations: start, stop and restart, over the dependency graph and each under the
//! service's lock, so two operations on one service never overlap. Each service's result is
//! an [`OpOutcome`] whose `code` says, for a program, why it failed.

use std::collections::HashMap;

use gitvisor_graph::{start_batch, stop_batch};
use gitvisor_protocol::{
    ErrorCode, Method, OpOutcome, OpReply, Reload, Restart, ServiceName, ServiceState, Start, Stop, SyncNow,
};
use gitvisor_state::LockError;
use tokio::sync::oneshot;

use super::{Engine, EngineError};
use crate::ordered::run_ordered;
use crate::supervisor::conditions;
use crate::supervisor::{Command, Initial, Outcome};

/// Why one service's operation did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum OpError {
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("no service named {0}")]
    UnknownService(String),
    /// A unit it requires did not start, does not exist, or it is on a cycle.
    #[error("{0}")]
    Dependency(String),
    #[error("the service's task has ended")]
    TaskGone,
    /// The service itself ended in a state other than the one asked for.
    #[error("{0}")]
    Service(String),
}

impl OpError {
    fn code(&self) -> ErrorCode {
        match self {
            OpError::Lock(LockError::InProgress { .. }) => ErrorCode::InProgress,
            OpError::Lock(LockError::Held { .. }) => ErrorCode::Held,
            OpError::Lock(LockError::Backend(_) | LockError::Lost { .. }) => ErrorCode::OperationFailed,
            OpError::UnknownService(_) => ErrorCode::UnknownService,
            OpError::Dependency(_) => ErrorCode::DependencyFailed,
            OpError::TaskGone => ErrorCode::Internal,
            OpError::Service(_) => ErrorCode::ServiceFailed,
        }
    }

    /// What a person reads: a lock's refusal names the service, not the lock's key.
    fn message(&self, name: &str) -> String {
        match self {
            OpError::Lock(LockError::InProgress { op, .. }) => format!("{op} in progress on {name}"),
            OpError::Lock(LockError::Held { holder, .. }) => format!("{name} is locked by {holder}"),
            other => other.to_string(),
        }
    }

    fn outcome(self, name: &str, state: Option<ServiceState>) -> OpOutcome {
        OpOutcome {
            name: name.to_string(),
            ok: false,
            code: Some(self.code()),
            error: Some(self.message(name)),
            state,
            pid: None,
            cause: None,
        }
    }
}

/// The lock key of a service's lifecycle operations.
pub fn lock_key(service: &str) -> String {
    format!("service:{service}")
}

impl Engine {
    /// Starts the services and what they require or want, in dependency order (each once what
    /// it needs is ready); with `wait`, answers once they are ready too.
    pub async fn start(&self, names: &[ServiceName], wait: bool) -> Result<OpReply, EngineError> {
        for n in names {
            self.ensure_service(n.as_str())?;
        }
        let (names, refused) = self.fleet_gate(plain(names), Start::NAME);
        let mut reply = self.start_ordered(names.clone(), true, wait).await;
        reply.results.extend(refused);
        // What was started for the named units says why: which of them requires or wants it.
        let why = {
            let registry = self.registry();
            let started: Vec<String> = reply.results.iter().map(|r| r.name.clone()).collect();
            move |name: &str| {
                let needs = |kind: &str, deps: fn(&gitvisor_units::Unit) -> &Vec<String>| {
                    started.iter().find_map(|by| {
                        let s = registry.services.get(by.as_str())?;
                        deps(&s.unit)
                            .iter()
                            .any(|d| d == name)
                            .then(|| format!("started because {by} {kind} it"))
                    })
                };
                needs("requires", |u| &u.requires).or_else(|| needs("wants", |u| &u.wants))
            }
        };
        annotate(&mut reply, &names, why);
        self.durable().await;
        Ok(reply)
    }

    /// Stops the services, after the units that require them (which stop too).
    pub async fn stop(&self, names: &[ServiceName]) -> Result<OpReply, EngineError> {
        self.check_known(names)?;
        let (names, refused) = self.fleet_gate(plain(names), Stop::NAME);
        let mut reply = self.stop_ordered(names.clone(), true, true).await;
        reply.results.extend(refused);
        // What else stopped says why: the stopped unit it requires.
        let why = {
            let registry = self.registry();
            let stopped: Vec<String> = reply.results.iter().map(|r| r.name.clone()).collect();
            move |name: &str| {
                let unit = &registry.services.get(name)?.unit;
                let by = |deps: &Vec<String>| deps.iter().find(|d| stopped.contains(d)).cloned();
                if let Some(dep) = by(&unit.requires) {
                    return Some(format!("stopped because it requires {dep}"));
                }
                if let Some(dep) = by(&unit.binds_to) {
                    return Some(format!("stopped because it is bound to {dep}"));
                }
                by(&unit.part_of).map(|dep| format!("stopped because it is part of {dep}"))
            }
        };
        annotate(&mut reply, &names, why);
        self.durable().await;
        Ok(reply)
    }

    pub async fn restart(&self, names: &[ServiceName]) -> Result<OpReply, EngineError> {
        for n in names {
            self.ensure_service(n.as_str())?;
        }
        let (names, mut results) = self.fleet_gate(plain(names), Restart::NAME);
        // What requires, is bound to or is part of a restarted unit restarts with it (systemd's
        // propagation): all of them stop, dependents first, then start in order.
        let dependents = {
            let registry = self.registry();
            let active = |n: &str| registry.is_up(n);
            let batch = stop_batch(&registry.nodes(), &names, true, active);
            batch.units.into_iter().filter(|u| !names.contains(u)).collect::<Vec<_>>()
        };
        if !dependents.is_empty() {
            return Ok(self.restart_with_dependents(names, dependents, results).await);
        }
        for n in &names {
            // A restart is a stop and a start: the start's conditions are checked as for `start`.
            let outcome = match self.check_conditions(n) {
                conditions::Verdict::Start => {
                    self.locked_op(n, Restart::NAME, |reply| Command::Restart { reply: Some(reply) }).await
                }
                conditions::Verdict::Skip(why) => {
                    self.locked_op(n, Stop::NAME, |reply| Command::Stop {
                        reply: Some(reply),
                        by_user: true,
                    })
                    .await;
                    self.skip_start(n, why)
                }
                conditions::Verdict::Fail(why) => {
                    self.locked_op(n, Stop::NAME, |reply| Command::Stop {
                        reply: Some(reply),
                        by_user: true,
                    })
                    .await;
                    self.fail_dependency(n, why).await
                }
            };
            results.push(outcome);
        }
        self.durable().await;
        Ok(OpReply { results })
    }

    /// A restart that propagates: `names` and their up `dependents` stop (dependents first),
    /// then start again in dependency order; each dependent says why it restarted.
    async fn restart_with_dependents(
        &self,
        names: Vec<String>,
        dependents: Vec<String>,
        mut results: Vec<OpOutcome>,
    ) -> OpReply {
        let all: Vec<String> = names.iter().chain(&dependents).cloned().collect();
        let stopped = self.stop_ordered(all.clone(), false, false).await;
        let failed: Vec<OpOutcome> = stopped.results.into_iter().filter(|r| !r.ok).collect();
        let again: Vec<String> = all.into_iter().filter(|n| !failed.iter().any(|f| &f.name == n)).collect();
        let mut reply = self.start_ordered(again, true, false).await;
        reply.results.extend(failed);
        let named = names.clone();
        let why = {
            let registry = self.registry();
            move |name: &str| {
                let unit = &registry.services.get(name)?.unit;
                let on = |deps: &Vec<String>| deps.iter().find(|d| names.contains(d)).cloned();
                on(&unit.requires)
                    .map(|d| format!("restarted because it requires {d}"))
                    .or_else(|| on(&unit.binds_to).map(|d| format!("restarted because it is bound to {d}")))
                    .or_else(|| on(&unit.part_of).map(|d| format!("restarted because it is part of {d}")))
                    .or_else(|| Some("restarted with what it depends on".to_string()))
            }
        };
        annotate(&mut reply, &named, why);
        results.extend(reply.results);
        self.durable().await;
        OpReply { results }
    }

    /// Asks running services to reload: their `ExecReload=` commands in order, or SIGHUP to the
    /// main process. The service keeps running either way; a failing command fails the reload.
    pub async fn reload(&self, names: &[ServiceName]) -> Result<OpReply, EngineError> {
        self.check_known(names)?;
        let mut results = Vec::new();
        for n in plain(names) {
            results.push(self.locked_op(&n, Reload::NAME, |reply| Command::Reload { reply }).await);
        }
        Ok(OpReply { results })
    }

    /// Splits the fleet singletons a user's operation may not touch from the rest: in fleet
    /// mode a singleton runs where its lease is held, so it is started and stopped by its
    /// lease (and `enable`/`disable`); only a restart where it runs is a user's to ask.
    fn fleet_gate(&self, names: Vec<String>, op: &str) -> (Vec<String>, Vec<OpOutcome>) {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for name in names {
            if !self.fleet_managed(&name) {
                allowed.push(name);
                continue;
            }
            let note = self.fleet_note(&name).unwrap_or_default();
            if op == Restart::NAME && note == "here" {
                allowed.push(name);
                continue;
            }
            let why = format!(
                "{name} is a fleet singleton ({note}): it runs on the node holding its lease; `gitvisor enable|disable {name}` starts or stops it fleet-wide"
            );
            refused.push(OpOutcome {
                code: Some(ErrorCode::Held),
                ..OpError::Service(why).outcome(&name, None)
            });
        }
        (allowed, refused)
    }

    /// The service, instantiating a template on first use (`web@8080`).
    pub(super) fn ensure_service(&self, name: &str) -> Result<(), EngineError> {
        let mut registry = self.registry_mut();
        if registry.services.contains_key(name) {
            return Ok(());
        }
        // A unit whose file has errors is not "no service": it says what is wrong, and where.
        if let Some(errors) = registry.units.invalid_units.get(name) {
            return Err(EngineError::InvalidUnit(format!("{name} is invalid: {errors}")));
        }
        let unit = registry.instantiate(name, &self.inner.ctx).map_err(|e| match e {
            crate::units::InstantiateError::NoUnit(_) => EngineError::UnknownService(name.to_string()),
            crate::units::InstantiateError::BadName(m) => EngineError::InvalidParams(m),
            // The error names the unit already.
            crate::units::InstantiateError::Invalid(m) => EngineError::InvalidUnit(m),
        })?;
        let service = self.spawn_service(name, unit, false, Initial::Stopped { restarts: 0 });
        registry.services.insert(name.to_string(), service);
        Ok(())
    }

    pub(super) async fn start_ordered(&self, names: Vec<String>, manual: bool, wait: bool) -> OpReply {
        let (batch, requires, on_cycle) = {
            let registry = self.registry();
            let batch = start_batch(&registry.nodes(), &names);
            // What each unit needs: `Requires=` and `BindsTo=` (started for it), `Requisite=`
            // (already up).
            let requires: HashMap<String, (Vec<String>, Vec<String>)> = batch
                .units
                .iter()
                .filter_map(|n| {
                    let node = crate::units::node_of(n, &registry.services.get(n)?.unit);
                    Some((n.clone(), (node.requires, node.requisite)))
                })
                .collect();
            let on_cycle = registry.on_cycle.clone();
            (batch.without_edges_to(|n| on_cycle.contains_key(n)), requires, on_cycle)
        };
        // What another unit of the batch follows is waited for until ready; so are the named
        // ones with `wait`.
        let mut await_ready: std::collections::HashSet<String> =
            batch.follows.values().flatten().cloned().collect();
        if wait {
            await_ready.extend(names.iter().cloned());
        }
        let me = self.clone();
        let asked = names.clone();
        let results =
            run_ordered(&batch.units, &batch.follows, move |name, done: Vec<(String, OpOutcome)>| {
                let me = me.clone();
                let (requires, requisite) = requires.get(&name).cloned().unwrap_or_default();
                let cycle = on_cycle.get(&name).cloned();
                // A fleet singleton a unit needs runs where its lease is held, maybe on another
                // node: it is not started here for it, and does not hold the unit back.
                let elsewhere = !asked.contains(&name) && me.fleet_managed(&name);
                let ready_wanted = await_ready.contains(&name);
                async move {
                    if elsewhere {
                        let (pid, state) = me.process_of(&name).unwrap_or((None, ServiceState::Stopped));
                        return OpOutcome {
                            name: name.clone(),
                            ok: true,
                            error: None,
                            code: None,
                            state: Some(state),
                            pid,
                            cause: me.fleet_note(&name).map(|n| format!("a fleet singleton, {n}")),
                        };
                    }
                    if let Some(c) = cycle {
                        return me.fail_dependency(&name, format!("not started: {c}")).await;
                    }
                    if let Some(missing) = requires.iter().find(|r| !me.has_service(r)) {
                        return me
                            .fail_dependency(&name, format!("requires {missing}, which does not exist"))
                            .await;
                    }
                    if let Some((dep, o)) = done.iter().find(|(d, o)| requires.contains(d) && !o.ok) {
                        let why = o.error.clone().unwrap_or_else(|| "it is not running".into());
                        return me
                            .fail_dependency(&name, format!("requires {dep}, which did not start: {why}"))
                            .await;
                    }
                    if let Some(r) = requisite.iter().find(|r| !me.registry().is_up(r)) {
                        return me.fail_dependency(&name, format!("requisite {r} is not active")).await;
                    }
                    match me.check_conditions(&name) {
                        conditions::Verdict::Start => {}
                        conditions::Verdict::Skip(why) => return me.skip_start(&name, why),
                        conditions::Verdict::Fail(why) => return me.fail_dependency(&name, why).await,
                    }
                    let started = me
                        .locked_op(&name, Start::NAME, |reply| Command::Start { manual, reply: Some(reply) })
                        .await;
                    if !started.ok || !ready_wanted {
                        return started;
                    }
                    me.wait_ready(started).await
                }
            })
            .await;
        OpReply { results: results.into_values().collect() }
    }

    /// Stops `names` in reverse dependency order; with `with_dependents`, what requires them
    /// (and is up) stops first.
    /// `by_user`: a user's stop (the services are meant to stay down), not an engine's own.
    pub(super) async fn stop_ordered(
        &self,
        names: Vec<String>,
        with_dependents: bool,
        by_user: bool,
    ) -> OpReply {
        let batch = {
            let registry = self.registry();
            let active =
                |n: &str| registry.services.get(n).is_some_and(|s| s.state() != ServiceState::Stopped);
            let batch = stop_batch(&registry.nodes(), &names, with_dependents, active);
            batch.without_edges_to(|n| registry.on_cycle.contains_key(n))
        };
        let me = self.clone();
        let results = run_ordered(&batch.units, &batch.follows, move |name, _| {
            let me = me.clone();
            async move {
                me.locked_op(&name, Stop::NAME, |reply| Command::Stop { reply: Some(reply), by_user }).await
            }
        })
        .await;
        OpReply { results: results.into_values().collect() }
    }

    /// Waits, without the service's lock (a stop may come meanwhile), until the started service
    /// is ready, or is no longer starting or running: then its start failed, for the reason its
    /// task gives (`not ready within 90s (ReadyCheck=tcp:8080)`).
    async fn wait_ready(&self, started: OpOutcome) -> OpOutcome {
        let Some(mut snapshot) = self.registry().services.get(&started.name).map(|s| s.snapshot.clone())
        else {
            return started;
        };
        let settled = snapshot
            .wait_for(|s| s.ready || !matches!(s.state, ServiceState::Starting | ServiceState::Running))
            .await
            .map(|s| s.clone());
        match settled {
            Ok(s) if s.ready => OpOutcome { state: Some(s.state), pid: s.pid, ..started },
            Ok(s) => OpOutcome {
                pid: s.pid,
                ..OpError::Service(s.error.clone().unwrap_or_else(|| format!("not ready: it is {}", s.state)))
                    .outcome(&started.name, Some(s.state))
            },
            Err(_) => OpError::TaskGone.outcome(&started.name, None),
        }
    }

    /// The unit's `Condition…=`/`Assert…=` checks, now; a start that goes ahead forgets an
    /// earlier skip.
    fn check_conditions(&self, name: &str) -> conditions::Verdict {
        let mut registry = self.registry_mut();
        let Some(s) = registry.services.get_mut(name) else { return conditions::Verdict::Start };
        let verdict = conditions::check(&s.unit.conditions, &|v| std::env::var(v).ok());
        s.skipped = match &verdict {
            conditions::Verdict::Skip(why) => Some(format!("start skipped: {why}")),
            _ => None,
        };
        verdict
    }

    /// A start a condition skipped: not an error (as systemd, the start job succeeds and the
    /// unit stays down); what needs it goes on.
    fn skip_start(&self, name: &str, why: String) -> OpOutcome {
        let (pid, state) = self.process_of(name).unwrap_or((None, ServiceState::Stopped));
        self.inner.logs.note(name, format!("start skipped: {why}"));
        OpOutcome {
            name: name.to_string(),
            ok: true,
            error: None,
            code: None,
            state: Some(state),
            pid,
            cause: Some(format!("start skipped: {why}")),
        }
    }

    pub(super) fn has_service(&self, name: &str) -> bool {
        self.registry().services.contains_key(name)
    }

    async fn fail_dependency(&self, name: &str, reason: String) -> OpOutcome {
        let tx = self.registry().sender(name);
        if let Some(tx) = tx {
            let _ = tx.send(Command::DependencyFailed(reason.clone())).await;
        }
        OpError::Dependency(reason).outcome(name, Some(ServiceState::Failed))
    }

    /// Runs one lifecycle operation under the service's lock and waits for it to settle.
    pub(super) async fn locked_op(
        &self,
        name: &str,
        op: &str,
        make: impl FnOnce(oneshot::Sender<Outcome>) -> Command,
    ) -> OpOutcome {
        let Some(tx) = self.registry().sender(name) else {
            return OpError::UnknownService(name.to_string()).outcome(name, None);
        };
        let result = self
            .inner
            .locks
            .with_lock(&lock_key(name), op, async {
                let (reply_tx, reply_rx) = oneshot::channel();
                tx.send(make(reply_tx)).await.map_err(|_| OpError::TaskGone)?;
                reply_rx.await.map_err(|_| OpError::TaskGone)
            })
            .await
            .map_err(OpError::Lock)
            .and_then(|r| r);
        // The lock is free again: a sync that found it taken can apply its commit now.
        if op != SyncNow::NAME {
            self.resume_waiting_sync();
        }
        match result {
            Ok(o) if o.ok => OpOutcome {
                name: name.to_string(),
                ok: true,
                error: None,
                code: None,
                state: Some(o.state),
                pid: o.pid,
                cause: None,
            },
            Ok(o) => OpOutcome {
                pid: o.pid,
                ..OpError::Service(o.error.unwrap_or_else(|| format!("service is {}", o.state)))
                    .outcome(name, Some(o.state))
            },
            Err(e) => e.outcome(name, None),
        }
    }
}

fn plain(names: &[ServiceName]) -> Vec<String> {
    names.iter().map(|n| n.as_str().to_string()).collect()
}

/// Gives each result for a unit that was not named its cause, and orders the results: the
/// named units in the order given, each after the units the operation reached for it.
fn annotate(reply: &mut OpReply, named: &[String], why: impl Fn(&str) -> Option<String>) {
    for r in &mut reply.results {
        if !named.contains(&r.name) {
            // What the operation itself said (a skipped start) comes first.
            r.cause = match (r.cause.take(), why(&r.name)) {
                (Some(own), Some(why)) => Some(format!("{own}; {why}")),
                (own, why) => own.or(why),
            };
        }
    }
    let rank = |r: &OpOutcome| named.iter().position(|n| *n == r.name).map_or((0, 0), |i| (1, i));
    reply.results.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_carries_its_code_and_its_message() {
        let busy = OpError::Lock(LockError::InProgress { key: "service:web".into(), op: "stop".into() });
        let o = busy.outcome("web", None);
        assert_eq!((o.ok, o.code), (false, Some(ErrorCode::InProgress)));
        assert_eq!(o.error.as_deref(), Some("stop in progress on web"), "the service, not the lock key");
        let dep = OpError::Dependency("requires db, which did not start: exited".into());
        assert_eq!(dep.outcome("api", Some(ServiceState::Failed)).code, Some(ErrorCode::DependencyFailed));
        assert_eq!(OpError::Service("exited with status 1".into()).code(), ErrorCode::ServiceFailed);
        assert_eq!(OpError::UnknownService("x".into()).to_string(), "no service named x");
    }
}
