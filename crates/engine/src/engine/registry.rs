//! The registry: the unit set of the applied commit, the services running its units, and the
//! problems of the set as a whole (cycles, missing requirements). One lock holds them, so
//! start-up and sync change them together and a reader never sees a service without its unit's
//! problems or the other way round.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gitvisor_graph::Node;
use gitvisor_protocol::ServiceState;
use gitvisor_units::{SpecifierContext, Unit};
use tokio::sync::{mpsc, watch};

use crate::supervisor::{Command, Snapshot};
use crate::units::{InstantiateError, UnitSet};

/// One service: its unit and the task that drives it.
pub(super) struct Service {
    pub unit: Arc<Unit>,
    pub enabled: bool,
    /// The commit this service's unit came from.
    pub commit: Option<String>,
    /// The unit's file in the applied commit is invalid; the previous version runs.
    pub load_error: Option<String>,
    /// Its last start was skipped: a condition was not met (said in status while it is down).
    pub skipped: Option<String>,
    pub tx: mpsc::Sender<Command>,
    pub snapshot: watch::Receiver<Snapshot>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Service {
    pub fn state(&self) -> ServiceState {
        self.snapshot.borrow().state
    }
}

#[derive(Default)]
pub(super) struct Registry {
    pub units: UnitSet,
    pub services: BTreeMap<String, Service>,
    /// Problems with the set as a whole: cycles, missing requirements.
    pub problems: Vec<String>,
    /// Units on a dependency cycle, with the cycle's description.
    pub on_cycle: HashMap<String, String>,
}

impl Registry {
    pub fn new(units: UnitSet) -> Registry {
        let mut r = Registry { units, ..Registry::default() };
        r.update_graph();
        r
    }

    /// Takes a new unit set and recomputes the set's problems with it.
    pub fn set_units(&mut self, units: UnitSet) {
        self.units = units;
        self.update_graph();
    }

    fn update_graph(&mut self) {
        let plan = self.units.plan();
        self.problems.clear();
        self.on_cycle.clear();
        for cycle in &plan.cycles {
            let text = format!("dependency cycle: {} -> {}", cycle.join(" -> "), cycle[0]);
            for u in cycle {
                self.on_cycle.insert(u.clone(), text.clone());
            }
            self.problems.push(text);
        }
        for (unit, dep) in &plan.missing {
            self.problems.push(format!("{unit} requires {dep}, which does not exist"));
        }
    }

    /// The unit a name runs, instantiating a template on first use (`web@8080`).
    pub fn instantiate(&mut self, name: &str, ctx: &SpecifierContext) -> Result<Arc<Unit>, InstantiateError> {
        self.units.instantiate(name, ctx)
    }

    pub fn sender(&self, name: &str) -> Option<mpsc::Sender<Command>> {
        self.services.get(name).map(|s| s.tx.clone())
    }

    /// The first of `names` that is no service, if any.
    pub fn unknown<'a, S: AsRef<str>>(&self, names: &'a [S]) -> Option<&'a S> {
        names.iter().find(|n| !self.services.contains_key(n.as_ref()))
    }

    /// The services' units as the dependency graph sees them.
    pub fn nodes(&self) -> Vec<Node> {
        self.services.iter().map(|(name, s)| crate::units::node_of(name, &s.unit)).collect()
    }

    /// Sets a service's unit (from the commit `commit`), keeping its task.
    pub fn set_unit(&mut self, name: &str, unit: Arc<Unit>, enabled: bool, commit: &str) {
        if let Some(s) = self.services.get_mut(name) {
            s.unit = unit;
            s.enabled = enabled;
            s.commit = Some(commit.to_string());
        }
    }

    /// Forgets a service; its task ends (its process, if any, was stopped before).
    pub fn remove(&mut self, name: &str) {
        if let Some(s) = self.services.remove(name) {
            s.task.abort();
        }
    }

    /// A process of the service may run, or it waits to restart.
    pub fn is_up(&self, name: &str) -> bool {
        self.services.get(name).is_some_and(|s| {
            let state = s.state();
            state.is_active() || matches!(state, ServiceState::Backoff | ServiceState::Active)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> UnitSet {
        let ctx = crate::units::specifier_context();
        UnitSet::load_files(files.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect(), &ctx)
    }

    const SVC: &str = "[Service]\nExecStart=/bin/true\n";

    #[test]
    fn problems_follow_the_unit_set() {
        let cyclic = set(&[
            ("a.service", &format!("[Unit]\nRequires=b\n{SVC}")),
            ("b.service", &format!("[Unit]\nRequires=a\n{SVC}")),
            ("c.service", &format!("[Unit]\nRequires=ghost\n{SVC}")),
        ]);
        let mut r = Registry::new(cyclic);
        assert_eq!(r.on_cycle.len(), 2);
        assert!(r.on_cycle["a"].starts_with("dependency cycle: "), "{}", r.on_cycle["a"]);
        assert!(r.problems.iter().any(|p| p == "c requires ghost, which does not exist"), "{:?}", r.problems);
        r.set_units(set(&[("a.service", SVC)]));
        assert!(r.on_cycle.is_empty() && r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn unknown_names_the_first_missing_service() {
        let r = Registry::new(set(&[("a.service", SVC)]));
        assert_eq!(r.unknown(&["a", "b"]), Some(&"a"), "no service is registered yet");
        assert!(r.unknown::<&str>(&[]).is_none());
    }

    #[test]
    fn instantiating_an_unknown_template_is_no_unit() {
        let mut r = Registry::new(set(&[("a.service", SVC)]));
        let ctx = crate::units::specifier_context();
        assert!(matches!(r.instantiate("web@1", &ctx), Err(InstantiateError::NoUnit(_))));
        assert!(r.instantiate("a", &ctx).is_ok());
    }
}
