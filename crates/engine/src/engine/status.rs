//! What the engine shows: each service's status with the set's problems and the repository's
//! state, and services' output (the tail, and a follow of new lines).

use std::collections::HashMap;

use gitvisor_protocol::{ServiceLogLine, ServiceName, ServiceStatus, StatusReply};

use super::lifecycle::lock_key;
use super::{Engine, EngineError};
use crate::git::ServicesRepo;
use crate::logs::LogFollow;

impl Engine {
    /// The status of `names`, or of every service when `names` is empty.
    pub fn status(&self, names: &[ServiceName]) -> Result<StatusReply, EngineError> {
        self.sample_metrics();
        let busy: HashMap<String, String> = self.inner.locks.current().into_iter().collect();
        let registry = self.registry();
        if let Some(n) = registry.unknown(names) {
            return Err(EngineError::UnknownService(n.to_string()));
        }
        let list = registry
            .services
            .iter()
            .filter(|(n, _)| names.is_empty() || names.iter().any(|x| x == n.as_str()))
            .map(|(name, s)| {
                let snap = s.snapshot.borrow().clone();
                let usage = self.inner.metrics.latest(name).filter(|_| snap.state.is_active());
                ServiceStatus {
                    name: name.clone(),
                    description: s.unit.description.clone(),
                    state: snap.state,
                    pid: snap.pid,
                    restarts: snap.restarts,
                    health: snap.health.health,
                    health_checked_ms: snap.health.checked_ms,
                    health_error: snap.health.error.clone(),
                    ready: snap.ready,
                    enabled: s.enabled,
                    commit: s.commit.clone(),
                    error: s
                        .load_error
                        .clone()
                        .or_else(|| snap.error.clone())
                        .or_else(|| registry.on_cycle.get(name).cloned())
                        .or_else(|| s.skipped.clone().filter(|_| !snap.state.is_active())),
                    since_ms: snap.since_ms,
                    started_ms: snap.started_ms,
                    last_exit: snap.last_exit.clone(),
                    last_exit_class: snap.last_exit_class,
                    busy: busy.get(&lock_key(name)).cloned(),
                    adopted: snap.adopted,
                    cpu_ms: usage.map(|u| u.cpu_ms),
                    cpu_percent: usage.and_then(|u| u.cpu_percent),
                    memory_kb: usage.map(|u| u.memory_kb),
                    fleet: None,
                    capture_off: crate::crash::workdir::capture_off(&s.unit).map(|why| why.to_string()),
                    unenforced: crate::supervisor::unenforced::unenforced(
                        &s.unit,
                        || self.inner.cgroups.backend().as_ref().map(|_| ()).map_err(Clone::clone),
                        crate::supervisor::spawn::pid_namespaces,
                    ),
                    service_type: s.unit.service_type.as_str().to_string(),
                    status_text: snap.status_text.clone(),
                    watch: self.watch_status(name, &s.unit, &snap),
                    ports: if usage.is_some() { self.inner.metrics.ports(name) } else { Vec::new() },
                    limits: crate::supervisor::cgroup::has_limits(&s.unit).then(|| {
                        match self.inner.cgroups.backend() {
                            Ok(b) => format!("enforced in {}", b.cgroup(name).describe()),
                            Err(e) => format!("not enforced: {e}"),
                        }
                    }),
                }
            })
            .collect();
        let mut list: Vec<ServiceStatus> = list;
        let invalid = registry.units.invalid.clone();
        let problems = registry.problems.clone();
        drop(registry);
        for s in &mut list {
            s.fleet = self.fleet_note(&s.name);
        }
        let (branch, pending) = match ServicesRepo::open(&self.inner.paths.services) {
            Ok(repo) => (repo.head().ok().map(|h| h.branch), repo.pending()),
            Err(_) => (None, Vec::new()),
        };
        Ok(StatusReply {
            services: list,
            invalid,
            problems,
            commit: self.applied(),
            branch,
            pending,
            repo_problem: self.inner.repo_problem.read().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }

    /// The dependency graph with each service's state, and the critical chain of the last start.
    pub fn graph(&self) -> gitvisor_protocol::GraphReply {
        let registry = self.registry();
        let nodes = registry.nodes();
        let after = gitvisor_graph::starts_after(&nodes);
        let plan = gitvisor_graph::plan(&nodes);
        let mut active_at = std::collections::HashMap::new();
        let units = nodes
            .iter()
            .map(|n| {
                let snap = registry.services.get(&n.name).map(|s| s.snapshot.borrow().clone());
                let state = snap.as_ref().map_or(gitvisor_protocol::ServiceState::Stopped, |s| s.state);
                let started_ms = snap.as_ref().and_then(|s| s.started_ms).filter(|_| state.is_active());
                if let Some(t) = started_ms {
                    active_at.insert(n.name.clone(), t);
                }
                let starts_after = after.get(&n.name).cloned().unwrap_or_default();
                let requires = starts_after.iter().filter(|d| n.requires.contains(d)).cloned().collect();
                gitvisor_protocol::GraphUnit {
                    name: n.name.clone(),
                    state,
                    starts_after,
                    requires,
                    started_ms,
                }
            })
            .collect();
        let chain = gitvisor_graph::critical_chain(&nodes, &active_at);
        let first = chain.first().map_or(0, |(_, t)| *t);
        gitvisor_protocol::GraphReply {
            units,
            critical_chain: chain
                .into_iter()
                .map(|(name, at_ms)| gitvisor_protocol::ChainLink {
                    name,
                    at_ms,
                    since_first_ms: at_ms - first,
                })
                .collect(),
            cycles: plan.cycles,
        }
    }

    /// The last `lines` lines of the services' output (every service's when `names` is
    /// empty), interleaved by time, oldest first.
    pub fn logs(&self, names: &[ServiceName], lines: usize) -> Result<Vec<ServiceLogLine>, EngineError> {
        let names = self.log_names(names)?;
        Ok(self.merged_tail(&names, lines))
    }

    /// The last `lines` lines of the services' logs, then what they print from there on.
    pub fn follow_logs(
        &self,
        names: &[ServiceName],
        lines: usize,
    ) -> Result<(Vec<ServiceLogLine>, LogFollow), EngineError> {
        let names = self.log_names(names)?;
        // Subscribe before reading the tails so no line falls between the two.
        let receivers = names.iter().map(|n| (n.clone(), self.inner.logs.follow(n))).collect();
        let tail = self.merged_tail(&names, lines);
        let follow = LogFollow::new(receivers, &tail);
        Ok((tail, follow))
    }

    /// The services whose logs a request names: every service when none is named.
    fn log_names(&self, names: &[ServiceName]) -> Result<Vec<String>, EngineError> {
        if names.is_empty() {
            return Ok(self.registry().services.keys().cloned().collect());
        }
        self.check_known(names)?;
        Ok(names.iter().map(|n| n.as_str().to_string()).collect())
    }

    fn merged_tail(&self, names: &[String], lines: usize) -> Vec<ServiceLogLine> {
        let mut all: Vec<ServiceLogLine> = names
            .iter()
            .flat_map(|n| {
                self.inner
                    .logs
                    .tail(n, lines)
                    .into_iter()
                    .map(|line| ServiceLogLine { name: n.clone(), line })
            })
            .collect();
        // Stable: one service's lines keep their order when two share a microsecond.
        all.sort_by_key(|l| l.line.at_us);
        let skip = all.len().saturating_sub(lines);
        all.split_off(skip)
    }

    pub(super) fn check_known(&self, names: &[ServiceName]) -> Result<(), EngineError> {
        match self.registry().unknown(names) {
            Some(n) => Err(EngineError::UnknownService(n.to_string())),
            None => Ok(()),
        }
    }
}

impl Engine {
    /// Samples the running services' CPU and memory (at most once a second; see `metrics.rs`).
    fn sample_metrics(&self) {
        self.inner.metrics.sample(|| {
            let registry = self.registry();
            registry
                .services
                .iter()
                .filter_map(|(name, s)| {
                    let snap = s.snapshot.borrow();
                    let pid = snap.pid.filter(|_| snap.state.is_active())?;
                    let cgroup_pids = match self.inner.cgroups.backend() {
                        Ok(b) if crate::supervisor::cgroup::has_limits(&s.unit) => b.cgroup(name).pids(),
                        _ => Vec::new(),
                    };
                    Some(crate::metrics::Target { name: name.clone(), main_pid: pid, cgroup_pids })
                })
                .collect()
        });
    }

    /// The services' recent samples (every service's when `names` is empty).
    pub fn metrics(&self, names: &[ServiceName]) -> Result<gitvisor_protocol::MetricsReply, EngineError> {
        {
            let registry = self.registry();
            if let Some(n) = registry.unknown(names) {
                return Err(EngineError::UnknownService(n.to_string()));
            }
        }
        self.sample_metrics();
        let registry = self.registry();
        let services = registry
            .services
            .keys()
            .filter(|n| names.is_empty() || names.iter().any(|x| x == n.as_str()))
            .map(|n| gitvisor_protocol::ServiceMetrics {
                name: n.clone(),
                samples: self.inner.metrics.history(n),
            })
            .collect();
        Ok(gitvisor_protocol::MetricsReply { services })
    }
}
