//! Cycle detection: Tarjan's strongly connected components, iteratively so a long chain cannot
//! overflow the stack.

use crate::Graph;

/// Every cycle once, as node indices in cycle order (each node depends on the next).
pub(crate) fn find(graph: &Graph) -> Vec<Vec<usize>> {
    let mut cycles: Vec<Vec<usize>> = strongly_connected(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || graph.deps[scc[0]].contains(&scc[0]))
        .map(|scc| cycle_order(graph, &scc))
        .collect();
    cycles.sort_by(|a, b| graph.names[a[0]].cmp(graph.names[b[0]]));
    cycles
}

fn strongly_connected(graph: &Graph) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = graph.names.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        // (node, position of the next edge to look at)
        let mut work = vec![(root, 0usize)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if let Some(&w) = graph.deps[v].get(*edge) {
                *edge += 1;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

/// Orders a component along its edges, starting at the smallest name: a depth-first walk that
/// stays inside the component. For a simple cycle this is exactly the cycle.
fn cycle_order(graph: &Graph, scc: &[usize]) -> Vec<usize> {
    let start = *scc.iter().min_by_key(|&&i| graph.names[i]).expect("components are never empty");
    let mut member = vec![false; graph.names.len()];
    for &i in scc {
        member[i] = true;
    }
    let mut seen = vec![false; graph.names.len()];
    let mut order = Vec::with_capacity(scc.len());
    let mut work = vec![start];
    while let Some(v) = work.pop() {
        if seen[v] {
            continue;
        }
        seen[v] = true;
        order.push(v);
        let mut next: Vec<usize> = graph.deps[v].iter().copied().filter(|&w| member[w] && !seen[w]).collect();
        next.sort_by(|a, b| graph.names[*b].cmp(graph.names[*a]));
        work.extend(next);
    }
    order
}
