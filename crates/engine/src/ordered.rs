//! Runs an operation over a set of units concurrently, each unit waiting for the units it must
//! follow to finish first: the dependency order of start (and, reversed, of stop) without
//! serialising independent units.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// `follows[x]` lists the units that must finish before `x` begins (those outside `names` are
/// ignored). `op(x, finished)` gets the results of what `x` follows. Units must not form a cycle
/// within `names` (the graph removed cycles before).
pub async fn run_ordered<T, F, Fut>(
    names: &[String],
    follows: &HashMap<String, Vec<String>>,
    op: F,
) -> BTreeMap<String, T>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(String, Vec<(String, T)>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let op = Arc::new(op);
    let done: HashMap<String, watch::Sender<Option<T>>> =
        names.iter().map(|n| (n.clone(), watch::channel(None).0)).collect();
    let mut set = tokio::task::JoinSet::new();
    for n in names {
        let waits: Vec<(String, watch::Receiver<Option<T>>)> = follows
            .get(n)
            .into_iter()
            .flatten()
            .filter(|d| *d != n)
            .filter_map(|d| done.get(d).map(|tx| (d.clone(), tx.subscribe())))
            .collect();
        let tx = done[n].clone();
        let name = n.clone();
        let op = op.clone();
        set.spawn(async move {
            let mut results = Vec::new();
            for (dep, mut rx) in waits {
                if let Ok(v) = rx.wait_for(Option::is_some).await {
                    results.push((dep, v.clone().expect("is some")));
                }
            }
            let value = op(name, results).await;
            tx.send_replace(Some(value));
        });
    }
    while set.join_next().await.is_some() {}
    done.into_iter().filter_map(|(k, tx)| tx.borrow().clone().map(|v| (k, v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn units_run_after_what_they_follow_and_see_its_result() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let names: Vec<String> = ["app", "db", "cache", "web"].iter().map(|s| s.to_string()).collect();
        let follows: HashMap<String, Vec<String>> = [
            ("app".to_string(), vec!["db".to_string(), "cache".to_string()]),
            ("web".to_string(), vec!["app".to_string(), "not-in-set".to_string()]),
        ]
        .into_iter()
        .collect();
        let l = log.clone();
        let out = run_ordered(&names, &follows, move |name, deps| {
            let l = l.clone();
            async move {
                tokio::task::yield_now().await;
                l.lock().unwrap().push(name.clone());
                deps.len()
            }
        })
        .await;
        let order = log.lock().unwrap().clone();
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("db") < pos("app") && pos("cache") < pos("app") && pos("app") < pos("web"), "{order:?}");
        assert_eq!(out["app"], 2);
        assert_eq!(out["web"], 1);
    }
}
