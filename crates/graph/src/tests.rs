use super::*;

fn node(name: &str) -> Node {
    Node { name: name.to_string(), ..Node::default() }
}

fn requires(name: &str, deps: &[&str]) -> Node {
    Node { requires: deps.iter().map(|d| d.to_string()).collect(), ..node(name) }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn chain_starts_dependencies_first() {
    let nodes = [requires("a", &["b"]), requires("b", &["c"]), node("c")];
    let plan = plan(&nodes);
    assert_eq!(plan.order, names(&["c", "b", "a"]));
    assert_eq!(plan.stop_order(), names(&["a", "b", "c"]));
    assert!(plan.cycles.is_empty());
    assert!(plan.missing.is_empty());
}

#[test]
fn diamond_breaks_ties_by_name() {
    let nodes = [
        requires("top", &["right", "left"]),
        requires("right", &["base"]),
        requires("left", &["base"]),
        node("base"),
    ];
    assert_eq!(plan(&nodes).order, names(&["base", "left", "right", "top"]));
}

#[test]
fn before_and_after_mix() {
    // web After=db; migrate Before=web, Wants=db; cache Before=db
    let nodes = [
        Node { after: names(&["db"]), ..node("web") },
        Node { before: names(&["web"]), wants: names(&["db"]), ..node("migrate") },
        Node { before: names(&["db"]), ..node("cache") },
        node("db"),
    ];
    assert_eq!(plan(&nodes).order, names(&["cache", "db", "migrate", "web"]));
}

#[test]
fn edges_to_unknown_units_are_ignored_for_ordering() {
    let nodes = [Node { after: names(&["ghost"]), before: names(&["phantom"]), ..node("a") }, node("b")];
    let plan = plan(&nodes);
    assert_eq!(plan.order, names(&["a", "b"]));
    assert!(plan.missing.is_empty(), "only Requires= is reported missing");
}

#[test]
fn self_loop_is_a_cycle() {
    let nodes = [requires("a", &["a"]), node("b")];
    let plan = plan(&nodes);
    assert_eq!(plan.cycles, vec![names(&["a"])]);
    assert_eq!(plan.order, names(&["b"]));
}

#[test]
fn two_separate_cycles_each_reported_once() {
    let nodes = [
        requires("a", &["b"]),
        requires("b", &["c"]),
        requires("c", &["a"]),
        Node { after: names(&["y"]), ..node("x") },
        Node { after: names(&["x"]), ..node("y") },
    ];
    let plan = plan(&nodes);
    assert_eq!(plan.cycles, vec![names(&["a", "b", "c"]), names(&["x", "y"])]);
    assert!(plan.order.is_empty());
}

#[test]
fn cycle_through_before_is_found() {
    // a After=b, and a Before=b: b before a and a before b.
    let nodes = [Node { after: names(&["b"]), before: names(&["b"]), ..node("a") }, node("b")];
    assert_eq!(plan(&nodes).cycles, vec![names(&["a", "b"])]);
}

#[test]
fn cycle_plus_unrelated_units() {
    let nodes = [
        requires("a", &["b"]),
        requires("b", &["a"]),
        requires("client", &["a"]), // depends on a cycle member, not on the cycle
        requires("web", &["db"]),
        node("db"),
    ];
    let plan = plan(&nodes);
    assert_eq!(plan.cycles, vec![names(&["a", "b"])]);
    assert_eq!(plan.order, names(&["client", "db", "web"]));
}

#[test]
fn missing_requirements_are_reported_once() {
    let nodes = [
        Node { requires: names(&["db", "db", "cache"]), wants: names(&["optional"]), ..node("web") },
        node("cache"),
    ];
    let plan = plan(&nodes);
    assert_eq!(plan.missing, vec![("web".to_string(), "db".to_string())]);
    assert_eq!(plan.order, names(&["cache", "web"]));
}

#[test]
fn duplicate_names_keep_the_first_node() {
    let nodes = [requires("a", &["b"]), node("b"), requires("a", &["a"])];
    let plan = plan(&nodes);
    assert_eq!(plan.order, names(&["b", "a"]));
    assert!(plan.cycles.is_empty());
}

#[test]
fn empty_set() {
    assert_eq!(plan(&[]), Plan::default());
}

/// Its time is a benchmark figure (`scripts/bench`, "planning the start order"), not a test.
#[test]
fn a_thousand_node_graph_is_ordered() {
    let mut nodes: Vec<Node> = (0..1000)
        .map(|i| {
            let mut n = node(&format!("svc{i:04}"));
            if i > 0 {
                n.requires.push(format!("svc{:04}", i - 1));
            }
            if i > 10 {
                n.after.push(format!("svc{:04}", i / 2));
                n.wants.push(format!("svc{:04}", i - 7));
            }
            n
        })
        .collect();
    nodes.reverse();
    let plan = plan(&nodes);
    assert_eq!(plan.order.len(), 1000);
    assert_eq!(plan.order[0], "svc0000");
    assert_eq!(plan.order[999], "svc0999");
}

#[test]
fn long_cycle_does_not_overflow_the_stack() {
    let n = 20_000;
    let nodes: Vec<Node> =
        (0..n).map(|i| requires(&format!("n{i}"), &[&format!("n{}", (i + 1) % n)])).collect();
    let plan = plan(&nodes);
    assert_eq!(plan.cycles.len(), 1);
    assert_eq!(plan.cycles[0].len(), n);
}

fn follows(batch: &Batch, unit: &str) -> Vec<String> {
    let mut f = batch.follows.get(unit).cloned().unwrap_or_default();
    f.sort();
    f
}

#[test]
fn a_start_brings_what_is_required_or_wanted_transitively() {
    let nodes = [
        requires("web", &["api"]),
        Node { wants: names(&["cache"]), ..requires("api", &["db"]) },
        node("db"),
        node("cache"),
        Node { after: names(&["db"]), ..node("unrelated") },
    ];
    let b = start_batch(&nodes, &names(&["web"]));
    assert_eq!(b.units, names(&["api", "cache", "db", "web"]));
    assert_eq!(follows(&b, "web"), names(&["api"]));
    assert_eq!(follows(&b, "api"), names(&["cache", "db"]));
    assert!(follows(&b, "db").is_empty());
}

#[test]
fn a_start_ignores_missing_units_and_orders_before() {
    let nodes = [Node { requires: names(&["ghost"]), before: names(&["web"]), ..node("db") }, node("web")];
    let b = start_batch(&nodes, &names(&["db", "web"]));
    assert_eq!(b.units, names(&["db", "web"]), "a missing requirement is not part of the batch");
    // It still names it: the engine fails db for it rather than starting it.
    assert_eq!(follows(&b, "db"), names(&["ghost"]));
    assert_eq!(follows(&b, "web"), names(&["db"]), "db is before web");
}

#[test]
fn a_stop_takes_active_dependents_first_transitively() {
    let nodes = [
        requires("api", &["db"]),
        requires("web", &["api"]),
        Node { wants: names(&["db"]), ..node("metrics") },
        requires("worker", &["db", "api"]),
        requires("idle", &["db"]),
        node("db"),
    ];
    let b = stop_batch(&nodes, &names(&["db"]), true, |n| n != "idle");
    assert_eq!(b.units, names(&["api", "db", "web", "worker"]), "wanting is not requiring; idle is down");
    assert_eq!(follows(&b, "db"), names(&["api", "worker"]), "only what stops is waited for");
    assert_eq!(follows(&b, "api"), names(&["web", "worker"]));
    let alone = stop_batch(&nodes, &names(&["db"]), false, |_| true);
    assert_eq!(alone.units, names(&["db"]));
}

#[test]
fn a_stop_survives_cycles_and_edges_to_cycles_can_be_dropped() {
    let nodes = [requires("a", &["b"]), requires("b", &["a"]), requires("c", &["a"])];
    let b = stop_batch(&nodes, &names(&["a"]), true, |_| true);
    assert_eq!(b.units, names(&["a", "b", "c"]));
    let b = b.without_edges_to(|n| n == "a" || n == "b");
    assert_eq!(follows(&b, "a"), names(&["c"]), "a still stops after c, which requires it");
    assert!(follows(&b, "b").is_empty());
    let started = start_batch(&nodes, &names(&["c"])).without_edges_to(|n| n == "a" || n == "b");
    assert!(follows(&started, "c").is_empty(), "c does not wait for a unit that never starts");
}

/// Waits of a batch as `run_ordered` takes them (within the batch, not on itself): the units
/// that can ever begin, in an order that respects them. Fewer than the batch means a circle.
fn can_begin(batch: &Batch) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    loop {
        let next = batch.units.iter().find(|u| {
            !done.contains(u)
                && batch
                    .follows
                    .get(*u)
                    .into_iter()
                    .flatten()
                    .all(|f| f == *u || !batch.units.contains(f) || done.contains(f))
        });
        match next {
            Some(u) => done.push(u.clone()),
            None => return done,
        }
    }
}

// Found by the sync_plan fuzz target: a start batch orders `Requisite=` but the plan did not,
// so the plan's start order disagreed with the batch, and a loop through `Requisite=` was no
// cycle to the plan: a start of both units waited for each other forever.
#[test]
fn a_requisite_starts_first_in_the_start_order_as_in_a_start_batch() {
    let nodes = [Node { requisite: names(&["d"]), ..node("b") }, node("d")];
    assert_eq!(plan(&nodes).order, names(&["d", "b"]));
    let batch = start_batch(&nodes, &names(&["b", "d"]));
    assert_eq!(follows(&batch, "b"), names(&["d"]));
}

#[test]
fn a_loop_through_requisite_is_a_cycle_not_a_start_that_waits_forever() {
    let nodes = [Node { requisite: names(&["b"]), ..node("a") }, Node { after: names(&["a"]), ..node("b") }];
    let plan = plan(&nodes);
    assert_eq!(plan.cycles, vec![names(&["a", "b"])]);
    let on_cycle = |n: &str| plan.cycles.iter().flatten().any(|c| c == n);
    let batch = start_batch(&nodes, &names(&["a", "b"])).without_edges_to(on_cycle);
    assert_eq!(can_begin(&batch), names(&["a", "b"]), "every unit of the batch can begin");
}

#[test]
fn the_critical_chain_follows_the_latest_dependency_back_from_the_last_unit_up() {
    let node = |name: &str, after: &[&str]| Node {
        name: name.into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        ..Node::default()
    };
    let nodes = vec![
        node("db", &[]),
        node("cache", &[]),
        node("api", &["db", "cache"]),
        node("web", &["api"]),
        node("metrics", &[]),
    ];
    let at: std::collections::HashMap<String, u64> =
        [("db", 100), ("cache", 300), ("api", 350), ("web", 400), ("metrics", 120)]
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
    let chain = critical_chain(&nodes, &at);
    assert_eq!(
        chain,
        [("cache".to_string(), 300), ("api".to_string(), 350), ("web".to_string(), 400)],
        "cache, not db: it became active later"
    );
    // A dependency not active (no time) is not on the chain; nothing active: no chain.
    let partial: std::collections::HashMap<String, u64> = [("web".to_string(), 10)].into_iter().collect();
    assert_eq!(critical_chain(&nodes, &partial), [("web".to_string(), 10)]);
    assert!(critical_chain(&nodes, &Default::default()).is_empty());
    assert_eq!(starts_after(&nodes)["api"], ["cache", "db"]);
}
