//! Which units must stop when a unit they require stops.

use std::collections::{BTreeSet, HashMap};

use crate::{plan, Node};

/// The units that require `name`, directly or through other units, without `name` itself.
///
/// They are listed in stop order (a unit before the units it requires); units on a cycle come
/// last, sorted by name.
pub fn dependents_closure(nodes: &[Node], name: &str) -> Vec<String> {
    let mut required_by: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in nodes {
        for req in &node.requires {
            required_by.entry(req.as_str()).or_default().push(&node.name);
        }
    }
    let mut found: BTreeSet<&str> = BTreeSet::new();
    let mut work = vec![name];
    while let Some(current) = work.pop() {
        for &dependent in required_by.get(current).into_iter().flatten() {
            if dependent != name && found.insert(dependent) {
                work.push(dependent);
            }
        }
    }
    let mut ordered: Vec<String> =
        plan(nodes).stop_order().into_iter().filter(|n| found.remove(n.as_str())).collect();
    ordered.extend(found.into_iter().map(str::to_string));
    ordered
}
