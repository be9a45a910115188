//! Which units an operation on some units touches, and in what order: a start brings up what
//! the units require or want first; a stop takes down what requires them first. The engine runs
//! a [`Batch`] concurrently, each unit waiting for the units it follows.

use std::collections::{BTreeSet, HashMap};

use crate::Node;

/// The units an operation runs on, and for each the units that must finish before it begins.
/// `follows` may name units outside `units`: those are not waited for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Sorted by name.
    pub units: Vec<String>,
    pub follows: HashMap<String, Vec<String>>,
}

impl Batch {
    /// Drops every ordering edge to a unit `on_cycle` says is on a dependency cycle: such a
    /// unit never starts, so waiting for it would never end.
    pub fn without_edges_to(mut self, on_cycle: impl Fn(&str) -> bool) -> Batch {
        for deps in self.follows.values_mut() {
            deps.retain(|d| !on_cycle(d));
        }
        self
    }
}

fn index(nodes: &[Node]) -> HashMap<&str, &Node> {
    let mut index = HashMap::with_capacity(nodes.len());
    for n in nodes {
        index.entry(n.name.as_str()).or_insert(n);
    }
    index
}

/// A start of `names`: them and, transitively, every unit of `nodes` they require or want; each
/// unit follows what it requires, wants or is after, and precedes what it is before.
pub fn start_batch(nodes: &[Node], names: &[String]) -> Batch {
    let index = index(nodes);
    let mut set: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = names.to_vec();
    while let Some(n) = stack.pop() {
        if !set.insert(n.clone()) {
            continue;
        }
        if let Some(node) = index.get(n.as_str()) {
            stack.extend(
                node.requires.iter().chain(&node.wants).filter(|d| index.contains_key(d.as_str())).cloned(),
            );
        }
    }
    let mut follows: HashMap<String, Vec<String>> = HashMap::new();
    for n in &set {
        let Some(node) = index.get(n.as_str()) else { continue };
        follows.entry(n.clone()).or_default().extend(
            node.requires.iter().chain(&node.wants).chain(&node.after).chain(&node.requisite).cloned(),
        );
        for b in &node.before {
            follows.entry(b.clone()).or_default().push(n.clone());
        }
    }
    Batch { units: set.into_iter().collect(), follows }
}

/// A stop of `names`, in reverse start order: a unit stops after every unit that follows it.
/// With `with_dependents`, what requires a stopped unit stops too (systemd's `Requires=`,
/// `BindsTo=` and `PartOf=`),
/// transitively, as long as `active` says it is up (a unit already down is left out, and so is
/// what only it would have pulled in).
pub fn stop_batch(
    nodes: &[Node],
    names: &[String],
    with_dependents: bool,
    active: impl Fn(&str) -> bool,
) -> Batch {
    let index = index(nodes);
    let mut set: BTreeSet<String> = names.iter().cloned().collect();
    if with_dependents {
        loop {
            let more: Vec<String> = index
                .values()
                .filter(|n| {
                    !set.contains(&n.name) && n.requires.iter().chain(&n.part_of).any(|r| set.contains(r))
                })
                .filter(|n| active(&n.name))
                .map(|n| n.name.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            set.extend(more);
        }
    }
    let mut follows: HashMap<String, Vec<String>> = HashMap::new();
    for n in &set {
        let Some(node) = index.get(n.as_str()) else { continue };
        for d in node.requires.iter().chain(&node.wants).chain(&node.after) {
            follows.entry(d.clone()).or_default().push(n.clone());
        }
        for b in &node.before {
            follows.entry(n.clone()).or_default().push(b.clone());
        }
    }
    Batch { units: set.into_iter().collect(), follows }
}
