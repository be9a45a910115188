//! `fleet status`: the nodes sharing the services repository and Redis, and who runs each
//! singleton.

use std::process::ExitCode;

use gitvisor_protocol::{Client, FleetStatus, FleetStatusReply};

use super::Result;
use crate::args::FleetCmd;
use crate::output::table;

pub async fn run(client: &mut Client, cmd: FleetCmd) -> Result<ExitCode> {
    match cmd {
        FleetCmd::Status { json } => {
            let s = client.call(FleetStatus {}).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", render(&s, gitvisor_engine::time::now_ms()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long ago `at_ms` was, in a few characters.
fn ago(now_ms: u64, at_ms: u64) -> String {
    let ms = now_ms.saturating_sub(at_ms);
    match ms {
        0..=999 => format!("{ms} ms ago"),
        1000..=119_999 => format!("{:.1} s ago", ms as f64 / 1000.0),
        _ => format!("{} min ago", ms / 60_000),
    }
}

fn render(s: &FleetStatusReply, now_ms: u64) -> String {
    let mut out = format!(
        "node {} · redis {} · lease TTL {} ms{}\n",
        s.node,
        s.redis,
        s.lease_ttl_ms,
        s.remote.as_ref().map(|r| format!(" · remote {r}")).unwrap_or_default()
    );
    if let Some(p) = &s.problem {
        out.push_str(&format!("problem: {p}\n"));
    }
    let nodes: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            let this = if n.name == s.node { " (this node)" } else { "" };
            vec![
                format!("{}{this}", n.name),
                ago(now_ms, n.last_seen_ms),
                n.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if nodes.is_empty() {
        out.push_str("no node seen\n");
    } else {
        out.push_str(&table(&["NODE", "LAST HEARTBEAT", "ENGINE PID"], &nodes));
        out.push('\n');
    }
    let singletons: Vec<Vec<String>> = s
        .singletons
        .iter()
        .map(|x| {
            let holder = match (&x.holder, x.here, &x.problem) {
                (_, _, Some(p)) => format!("unknown: {p}"),
                (Some(h), true, None) => format!("{h} (here)"),
                (Some(h), false, None) => h.clone(),
                (None, _, None) => "nobody".into(),
            };
            let expires = x.expires_in_ms.map(|ms| format!("in {ms} ms")).unwrap_or_else(|| "-".into());
            vec![x.service.clone(), holder, expires, x.fence.to_string()]
        })
        .collect();
    if singletons.is_empty() {
        out.push_str("no singleton service\n");
    } else {
        out.push_str(&table(&["SINGLETON", "HOLDER", "LEASE EXPIRES", "FENCE"], &singletons));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use gitvisor_protocol::{FleetNode, FleetSingleton};

    use super::*;

    #[test]
    fn status_names_nodes_holders_expiry_and_fence() {
        let s = FleetStatusReply {
            node: "node-a".into(),
            redis: "redis://10.0.0.5".into(),
            remote: None,
            lease_ttl_ms: 10_000,
            problem: None,
            nodes: vec![
                FleetNode { name: "node-a".into(), last_seen_ms: 99_000, pid: Some(42) },
                FleetNode { name: "node-b".into(), last_seen_ms: 97_500, pid: Some(7) },
            ],
            singletons: vec![
                FleetSingleton {
                    service: "cron".into(),
                    holder: Some("node-b".into()),
                    expires_in_ms: Some(8200),
                    fence: 12,
                    ..FleetSingleton::default()
                },
                FleetSingleton { service: "idle".into(), ..FleetSingleton::default() },
            ],
        };
        let text = render(&s, 100_000);
        assert!(text.starts_with("node node-a · redis redis://10.0.0.5 · lease TTL 10000 ms\n"), "{text}");
        let line =
            |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap_or_default().to_string();
        let b = line("node-b");
        assert!(b.contains("2.5 s ago") && b.ends_with('7'), "{text}");
        assert!(line("node-a (this node)").contains("1.0 s ago"), "{text}");
        let cron = line("cron");
        let cron: Vec<&str> = cron.split_whitespace().collect();
        assert_eq!(cron, ["cron", "node-b", "in", "8200", "ms", "12"], "{text}");
        assert!(line("idle").contains("nobody"), "{text}");
    }
}
