//! Arbitrary old and new unit sets (names from a small pool, small dependency lists) through the
//! engine's sync planner, then the new set through the graph crate's `plan`, `start_batch` and
//! `stop_batch`.
//!
//! Properties: every unit is classified exactly once and rightly (removed, kept, changed,
//! relabelled, added or unchanged); every unit is either in the start order or on a cycle,
//! cycles are real cycles of real units, the order respects every dependency; a start or stop
//! batch is closed under what it must pull in, its waits agree with the start order and (with
//! the edges to cycle members dropped, as the engine does) can never wait in a circle.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arbitrary::Arbitrary;
use gitvisor_graph::{plan as graph_plan, start_batch, stop_batch, Batch, Node, Plan};
use gitvisor_units::{ExecCommand, Unit, UnitName};
use libfuzzer_sys::fuzz_target;

// The planner is a pure function of `gitvisor_units::Unit`s: its source is compiled in here so
// the fuzz build does not need the engine's dependencies (libgit2, redis, hyper...).
#[path = "../../crates/engine/src/git/plan.rs"]
#[allow(dead_code)]
mod sync;

const POOL: [&str; 12] = ["a", "b", "c", "d", "e", "f", "web@1", "web@2", "db@x", "g.h", "gone", "nowhere"];

fn pool(i: u8) -> &'static str {
    POOL[usize::from(i) % POOL.len()]
}

#[derive(Arbitrary, Debug)]
struct Input {
    current: Vec<(u8, Spec)>,
    next: Vec<(u8, Spec)>,
    /// Names (or, with `true`, their template prefix `NAME@`) invalid in the new commit.
    invalid: Vec<(u8, bool)>,
    /// More graph nodes, appended to the new set's (a repeated name keeps its first node).
    extra: Vec<(u8, Vec<(Dep, u8)>)>,
    start: Vec<u8>,
    stop: Vec<u8>,
    with_dependents: bool,
    active: u16,
}

#[derive(Arbitrary, Debug, Clone)]
struct Spec {
    description: u8,
    program: u8,
    deps: Vec<(Dep, u8)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dep {
    Requires,
    Wants,
    After,
    Before,
    BindsTo,
    PartOf,
    Requisite,
}

fn unit(name: &str, spec: &Spec) -> Unit {
    let argv = vec![format!("/bin/p{}", spec.program % 3)];
    let mut u = Unit::new(
        UnitName::parse(name).expect("pool names are unit names"),
        ExecCommand { argv, ..ExecCommand::default() },
    );
    let description = spec.description % 3;
    u.description = (description != 0).then(|| format!("unit {description}"));
    for (dep, target) in spec.deps.iter().take(8) {
        let list = match dep {
            Dep::Requires => &mut u.requires,
            Dep::Wants => &mut u.wants,
            Dep::After => &mut u.after,
            Dep::Before => &mut u.before,
            Dep::BindsTo => &mut u.binds_to,
            Dep::PartOf => &mut u.part_of,
            Dep::Requisite => &mut u.requisite,
        };
        list.push(pool(*target).to_string());
    }
    u
}

fn units(specs: &[(u8, Spec)]) -> BTreeMap<String, Arc<Unit>> {
    specs.iter().map(|(n, s)| (pool(*n).to_string(), Arc::new(unit(pool(*n), s)))).collect()
}

/// As the engine's `node_of`: `BindsTo=` pulls in and orders as `Requires=` does.
fn node_of(name: &str, u: &Unit) -> Node {
    let mut requires = u.requires.clone();
    requires.extend(u.binds_to.iter().filter(|b| !u.requires.contains(b)).cloned());
    Node {
        name: name.to_string(),
        requires,
        wants: u.wants.clone(),
        after: u.after.clone(),
        before: u.before.clone(),
        part_of: u.part_of.clone(),
        requisite: u.requisite.clone(),
    }
}

fuzz_target!(|input: Input| {
    let current = units(&input.current);
    let next = units(&input.next);
    let invalid: BTreeMap<String, String> = input
        .invalid
        .iter()
        .map(|&(n, template)| {
            let name = pool(n);
            let key = if template {
                format!("{}@", name.split('@').next().unwrap_or(name))
            } else {
                name.to_string()
            };
            (key.clone(), format!("{key}: invalid"))
        })
        .collect();
    check_sync(&current, &next, &invalid);

    let mut nodes: Vec<Node> = next.iter().map(|(n, u)| node_of(n, u)).collect();
    for (name, deps) in &input.extra {
        let spec = Spec { description: 0, program: 0, deps: deps.clone() };
        nodes.push(node_of(pool(*name), &unit(pool(*name), &spec)));
    }
    let plan = graph_plan(&nodes);
    let graph = Graph::new(&nodes);
    check_plan(&graph, &nodes, &plan);
    let on_cycle: BTreeSet<&str> = plan.cycles.iter().flatten().map(String::as_str).collect();

    // The engine starts and stops services it knows (registered units), so the names asked
    // for are units of the set.
    let known = |n: &&str| nodes.iter().any(|node| node.name == *n);
    let start: Vec<String> =
        input.start.iter().take(4).map(|&n| pool(n)).filter(known).map(str::to_string).collect();
    let batch = start_batch(&nodes, &start);
    check_start(&nodes, &plan, &start, &batch);
    let batch = batch.without_edges_to(|n| on_cycle.contains(n));
    never_waits_in_a_circle(&batch, "start");

    let active =
        |name: &str| POOL.iter().position(|p| *p == name).is_some_and(|i| input.active & (1 << i) != 0);
    let stop: Vec<String> =
        input.stop.iter().take(4).map(|&n| pool(n)).filter(known).map(str::to_string).collect();
    let batch = stop_batch(&nodes, &stop, input.with_dependents, active);
    check_stop(&nodes, &plan, &stop, input.with_dependents, &active, &batch);
    let batch = batch.without_edges_to(|n| on_cycle.contains(n));
    never_waits_in_a_circle(&batch, "stop");
});

fn check_sync(
    current: &BTreeMap<String, Arc<Unit>>,
    next: &BTreeMap<String, Arc<Unit>>,
    invalid: &BTreeMap<String, String>,
) {
    let p = sync::plan(current, next, invalid);
    assert_eq!(p, sync::plan(current, next, invalid), "the plan is deterministic");
    let mut seen: BTreeMap<&'static str, &'static str> = BTreeMap::new();
    let mut classify = |name: &'static str, names: Vec<&'static str>| {
        for n in names {
            if let Some(other) = seen.insert(n, name) {
                panic!("{n} is both {other} and {name}");
            }
        }
    };
    // The lists' lifetimes are the plan's; leak-free 'static names come from the pool.
    let by_pool = |n: &String| *POOL.iter().find(|p| *p == n).expect("a pool name");
    classify("removed", p.removed.iter().map(by_pool).collect());
    classify("changed", p.changed.iter().map(|(n, _)| by_pool(n)).collect());
    classify("relabelled", p.relabelled.iter().map(|(n, _)| by_pool(n)).collect());
    classify("added", p.added.iter().map(|(n, _)| by_pool(n)).collect());
    classify("kept", p.kept.iter().map(|(n, _)| by_pool(n)).collect());
    let all: BTreeSet<&str> = current.keys().chain(next.keys()).map(by_pool).collect();
    for name in &all {
        let (old, new) = (current.get(*name), next.get(*name));
        let class = seen.get(name).copied();
        match (old, new) {
            (Some(o), Some(n)) if o == n => assert_eq!(class, None, "{name} is unchanged"),
            (Some(o), Some(n)) if sync::same_effect(o, n) => assert_eq!(class, Some("relabelled"), "{name}"),
            (Some(_), Some(_)) => assert_eq!(class, Some("changed"), "{name}"),
            (None, Some(_)) => assert_eq!(class, Some("added"), "{name}"),
            (Some(_), None) => {
                let prefix = name.split_once('@').map(|(pre, _)| format!("{pre}@"));
                let error = invalid.get(*name).or_else(|| prefix.and_then(|p| invalid.get(&p)));
                match error {
                    Some(e) => {
                        assert!(p.kept.contains(&(name.to_string(), e.clone())), "{name} kept with {e}")
                    }
                    None => assert_eq!(class, Some("removed"), "{name}"),
                }
            }
            (None, None) => unreachable!(),
        }
    }
    assert!(seen.keys().all(|n| all.contains(n)), "only units of either set are classified");
    for (name, u) in p.changed.iter().chain(&p.relabelled).chain(&p.added) {
        assert!(Arc::ptr_eq(u, &next[name]), "{name} takes the new commit's unit");
    }
}

/// The ordering graph as the graph crate documents it: `deps[x]` start before `x`.
struct Graph {
    names: Vec<String>,
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn new(nodes: &[Node]) -> Graph {
        let mut first: BTreeMap<&str, &Node> = BTreeMap::new();
        let mut names = Vec::new();
        for n in nodes {
            if !first.contains_key(n.name.as_str()) {
                first.insert(&n.name, n);
                names.push(n.name.clone());
            }
        }
        let mut deps: BTreeMap<String, BTreeSet<String>> =
            names.iter().map(|n| (n.clone(), BTreeSet::new())).collect();
        for n in first.values() {
            for d in n.requires.iter().chain(&n.wants).chain(&n.after).chain(&n.requisite) {
                if first.contains_key(d.as_str()) {
                    deps.get_mut(&n.name).unwrap().insert(d.clone());
                }
            }
            for later in &n.before {
                if first.contains_key(later.as_str()) {
                    deps.get_mut(later).unwrap().insert(n.name.clone());
                }
            }
        }
        Graph { names, deps }
    }

    /// Units reachable from `from` along edges of `edges`, `from` not included unless on a loop.
    fn reach<'a>(edges: &'a BTreeMap<String, BTreeSet<String>>, from: &'a str) -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = edges.get(from).into_iter().flatten().map(String::as_str).collect();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(edges.get(n).into_iter().flatten().map(String::as_str));
            }
        }
        seen
    }
}

fn position(plan: &Plan) -> HashMap<&str, usize> {
    plan.order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect()
}

fn check_plan(graph: &Graph, nodes: &[Node], plan: &Plan) {
    let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
    for n in plan.order.iter().chain(plan.cycles.iter().flatten()) {
        *placed.entry(n.as_str()).or_default() += 1;
    }
    for name in &graph.names {
        assert_eq!(placed.remove(name.as_str()), Some(1), "{name} is placed exactly once");
    }
    assert!(placed.is_empty(), "only real units are placed: {placed:?}");

    for cycle in &plan.cycles {
        let first = &cycle[0];
        assert!(cycle.iter().all(|n| n >= first), "a cycle starts at its smallest name: {cycle:?}");
        let members: BTreeSet<&str> = cycle.iter().map(String::as_str).collect();
        for n in cycle {
            let reach = Graph::reach(&graph.deps, n);
            assert!(
                members.iter().all(|m| reach.contains(m)),
                "{cycle:?} is a cycle: {n} reaches every member"
            );
        }
    }
    assert!(plan.cycles.windows(2).all(|w| w[0][0] < w[1][0]), "cycles sorted");

    let pos = position(plan);
    for x in &plan.order {
        assert!(!Graph::reach(&graph.deps, x).contains(x.as_str()), "{x} is on a cycle but in the order");
        for d in &graph.deps[x] {
            if let Some(&pd) = pos.get(d.as_str()) {
                assert!(pd < pos[x.as_str()], "{d} starts before {x}: {:?}", plan.order);
            }
        }
    }
    assert_eq!(plan.stop_order(), plan.order.iter().rev().cloned().collect::<Vec<_>>());

    let known: BTreeSet<&str> = graph.names.iter().map(String::as_str).collect();
    let mut missing = Vec::new();
    for n in nodes {
        for r in &n.requires {
            let pair = (n.name.clone(), r.clone());
            if !known.contains(r.as_str()) && !missing.contains(&pair) {
                missing.push(pair);
            }
        }
    }
    assert_eq!(plan.missing, missing);
}

fn sorted_unique(units: &[String]) -> bool {
    units.windows(2).all(|w| w[0] < w[1])
}

fn first_nodes(nodes: &[Node]) -> BTreeMap<&str, &Node> {
    let mut first = BTreeMap::new();
    for n in nodes {
        first.entry(n.name.as_str()).or_insert(n);
    }
    first
}

fn check_start(nodes: &[Node], plan: &Plan, start: &[String], batch: &Batch) {
    assert!(sorted_unique(&batch.units));
    let units: BTreeSet<&str> = batch.units.iter().map(String::as_str).collect();
    assert!(start.iter().all(|s| units.contains(s.as_str())), "the named units are in the batch");
    // Closed under the Requires= and Wants= of known units, and nothing more.
    let first = first_nodes(nodes);
    let pulls = |u: &str| -> Vec<&str> {
        first
            .get(u)
            .into_iter()
            .flat_map(|n| n.requires.iter().chain(&n.wants))
            .map(String::as_str)
            .filter(|d| first.contains_key(d))
            .collect()
    };
    for u in &units {
        for d in pulls(u) {
            assert!(units.contains(d), "{u} pulls in {d}");
        }
    }
    let mut reached: BTreeSet<&str> = start.iter().map(String::as_str).collect();
    let mut stack: Vec<&str> = reached.iter().copied().collect();
    while let Some(n) = stack.pop() {
        for d in pulls(n) {
            if reached.insert(d) {
                stack.push(d);
            }
        }
    }
    assert_eq!(reached, units, "the batch is what the named units pull in");
    // A unit starts after what it follows.
    waits_agree_with_order(plan, batch, "start", false);
}

fn check_stop(
    nodes: &[Node],
    plan: &Plan,
    stop: &[String],
    with_dependents: bool,
    active: &dyn Fn(&str) -> bool,
    batch: &Batch,
) {
    assert!(sorted_unique(&batch.units));
    let units: BTreeSet<&str> = batch.units.iter().map(String::as_str).collect();
    assert!(stop.iter().all(|s| units.contains(s.as_str())), "the named units are in the batch");
    if with_dependents {
        for n in first_nodes(nodes).values() {
            let needs_stopping = n.requires.iter().chain(&n.part_of).any(|r| units.contains(r.as_str()));
            if needs_stopping && active(&n.name) {
                assert!(units.contains(n.name.as_str()), "{} requires a stopped unit and is up", n.name);
            }
        }
    } else {
        assert_eq!(units, stop.iter().map(String::as_str).collect(), "only the named units stop");
    }
    // A unit stops after those that follow it: the reverse of the start order.
    waits_agree_with_order(plan, batch, "stop", true);
}

/// For `x` waiting for `f` (both in the batch and in the start order): in a start, `f` starts
/// first; in a stop (`reversed`), `x` does.
fn waits_agree_with_order(plan: &Plan, batch: &Batch, what: &str, reversed: bool) {
    let pos = position(plan);
    let units: BTreeSet<&str> = batch.units.iter().map(String::as_str).collect();
    for (x, follows) in &batch.follows {
        for f in follows {
            if x == f || !units.contains(x.as_str()) || !units.contains(f.as_str()) {
                continue;
            }
            let (earlier, later) = if reversed { (x.as_str(), f.as_str()) } else { (f.as_str(), x.as_str()) };
            if let (Some(a), Some(b)) = (pos.get(earlier), pos.get(later)) {
                assert!(a < b, "{what}: {x} waits for {f}, but the start order is {:?}", plan.order);
            }
        }
    }
}

/// What `run_ordered` does with a batch: each unit waits for what it follows within the batch
/// (not itself). The waits must not form a circle, or the operation never ends.
fn never_waits_in_a_circle(batch: &Batch, what: &str) {
    let units: BTreeSet<&str> = batch.units.iter().map(String::as_str).collect();
    let mut pending: BTreeMap<&str, usize> = units.iter().map(|u| (*u, 0)).collect();
    let mut waiting_on: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for u in &units {
        let follows: BTreeSet<&str> = batch
            .follows
            .get(*u)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|f| f != u && units.contains(f))
            .collect();
        for f in follows {
            *pending.get_mut(u).unwrap() += 1;
            waiting_on.entry(f).or_default().push(u);
        }
    }
    let mut ready: Vec<&str> = pending.iter().filter(|(_, &c)| c == 0).map(|(u, _)| *u).collect();
    let mut done = 0;
    while let Some(u) = ready.pop() {
        done += 1;
        for w in waiting_on.get(u).into_iter().flatten() {
            let c = pending.get_mut(w).unwrap();
            *c -= 1;
            if *c == 0 {
                ready.push(w);
            }
        }
    }
    let stuck: Vec<&str> = pending.iter().filter(|(_, &c)| c > 0).map(|(u, _)| *u).collect();
    assert_eq!(
        done,
        units.len(),
        "{what} batch waits in a circle: {stuck:?} never begin ({:?})",
        batch.follows
    );
}
