//! The dependency graph of gitvisor units: start order, stop order and cycles.
//!
//! # Theory of operation
//!
//! Every unit is a [`Node`] with systemd's dependency lists. For ordering, `Requires=`, `Wants=`,
//! `After=` and `Requisite=` of X all mean "the dependency starts before X" (a requisite is
//! never pulled in, but when both start it starts first, as [`start_batch`] orders it), and
//! `Before=` of X means "X starts before the other unit". Edges to units that are not in the set
//! are ignored for ordering; a missing `Requires=` target is reported in [`Plan::missing`].
//!
//! [`plan`] first finds the strongly connected components (Tarjan). A component with more than
//! one unit, or a unit ordered after itself, is a cycle: its units are reported in
//! [`Plan::cycles`] and left out of [`Plan::order`]. The remaining units are ordered with Kahn's
//! algorithm, breaking ties by name so the same set always gives the same order. A unit that only
//! depends on a cycle member stays in the order: the engine fails it at run time when its
//! dependency never becomes ready.
//!
//! [`start_batch`] and [`stop_batch`] say which units an operation on some units touches and
//! what each must wait for; the engine runs them concurrently in that order.

mod closure;
mod cycles;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Serialize;

pub use closure::{start_batch, stop_batch, Batch};

/// One unit as the graph sees it. Names carry no `.service` suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    /// `Requires=` and `BindsTo=`: pulled in, started first, and their stop stops this.
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    pub before: Vec<String>,
    /// `PartOf=`: their stop (or restart) stops (restarts) this; no effect on starts.
    pub part_of: Vec<String>,
    /// `Requisite=`: not pulled in; started first when they start in the same batch.
    pub requisite: Vec<String>,
}

/// The result of [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Start order of every unit that is not on a cycle.
    pub order: Vec<String>,
    /// Each cycle once, with every unit on it, in cycle order: each unit depends on (starts
    /// after) the next one, and the last depends on the first.
    pub cycles: Vec<Vec<String>>,
    /// `(unit, required unit)` for each `Requires=` naming a unit that does not exist.
    pub missing: Vec<(String, String)>,
}

impl Plan {
    /// The order to stop units in: the reverse of the start order.
    pub fn stop_order(&self) -> Vec<String> {
        self.order.iter().rev().cloned().collect()
    }
}

/// The ordering graph over node indices: `deps[x]` lists the nodes that start before `x`.
/// Duplicate node names keep the first node; duplicate edges are collapsed.
pub(crate) struct Graph<'a> {
    pub names: Vec<&'a str>,
    pub deps: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    pub(crate) fn new(nodes: &'a [Node]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
        let mut names = Vec::with_capacity(nodes.len());
        let mut kept = Vec::with_capacity(nodes.len());
        for node in nodes {
            if !index.contains_key(node.name.as_str()) {
                index.insert(&node.name, names.len());
                names.push(node.name.as_str());
                kept.push(node);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for (x, node) in kept.iter().enumerate() {
            let before_x = node.requires.iter().chain(&node.wants).chain(&node.after).chain(&node.requisite);
            for dep in before_x {
                if let Some(&d) = index.get(dep.as_str()) {
                    deps[x].push(d);
                }
            }
            for later in &node.before {
                if let Some(&l) = index.get(later.as_str()) {
                    deps[l].push(x);
                }
            }
        }
        for list in &mut deps {
            list.sort_unstable();
            list.dedup();
        }
        Graph { names, deps }
    }
}

/// For each unit, the units of the set it starts after (`Requires=`, `Wants=`, `After=`,
/// `Requisite=` of it and `Before=` naming it), sorted: the edges a picture of the graph draws.
pub fn starts_after(nodes: &[Node]) -> BTreeMap<String, Vec<String>> {
    let graph = Graph::new(nodes);
    graph
        .names
        .iter()
        .enumerate()
        .map(|(x, name)| {
            let mut deps: Vec<String> = graph.deps[x].iter().map(|&d| graph.names[d].to_string()).collect();
            deps.sort();
            (name.to_string(), deps)
        })
        .collect()
}

/// systemd-analyze's critical chain: from the unit that became active last, back through what
/// it started after, each time the dependency that became active last (and not after it),
/// until one started after nothing active. `active_at` holds when each active unit became
/// active; the chain comes first unit first, with those times.
pub fn critical_chain(nodes: &[Node], active_at: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let after = starts_after(nodes);
    let Some((mut current, mut at)) =
        active_at.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))).map(|(n, t)| (n.clone(), *t))
    else {
        return Vec::new();
    };
    let mut chain = vec![(current.clone(), at)];
    loop {
        let next = after
            .get(&current)
            .into_iter()
            .flatten()
            .filter_map(|d| active_at.get(d).map(|t| (d, *t)))
            .filter(|(d, t)| *t <= at && !chain.iter().any(|(c, _)| c == *d))
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)));
        let Some((d, t)) = next else { break };
        current = d.clone();
        at = t;
        chain.push((current.clone(), at));
    }
    chain.reverse();
    chain
}

/// Computes the start order, the cycles and the missing requirements of a set of units.
pub fn plan(nodes: &[Node]) -> Plan {
    let graph = Graph::new(nodes);
    let cycles = cycles::find(&graph);
    let mut on_cycle = vec![false; graph.names.len()];
    for cycle in &cycles {
        for &i in cycle {
            on_cycle[i] = true;
        }
    }
    Plan {
        order: kahn(&graph, &on_cycle),
        cycles: cycles.iter().map(|c| c.iter().map(|&i| graph.names[i].to_string()).collect()).collect(),
        missing: missing_requirements(nodes),
    }
}

fn kahn(graph: &Graph, on_cycle: &[bool]) -> Vec<String> {
    let n = graph.names.len();
    let mut pending = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for x in (0..n).filter(|&x| !on_cycle[x]) {
        for &d in graph.deps[x].iter().filter(|&&d| !on_cycle[d]) {
            pending[x] += 1;
            dependents[d].push(x);
        }
    }
    let mut ready: BinaryHeap<Reverse<(&str, usize)>> =
        (0..n).filter(|&x| !on_cycle[x] && pending[x] == 0).map(|x| Reverse((graph.names[x], x))).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((name, x))) = ready.pop() {
        order.push(name.to_string());
        for &y in &dependents[x] {
            pending[y] -= 1;
            if pending[y] == 0 {
                ready.push(Reverse((graph.names[y], y)));
            }
        }
    }
    order
}

fn missing_requirements(nodes: &[Node]) -> Vec<(String, String)> {
    let known: BTreeMap<&str, ()> = nodes.iter().map(|n| (n.name.as_str(), ())).collect();
    let mut missing = Vec::new();
    for node in nodes {
        for req in &node.requires {
            let pair = (node.name.clone(), req.clone());
            if !known.contains_key(req.as_str()) && !missing.contains(&pair) {
                missing.push(pair);
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests;
