//! Fleet mode (SPEC section 10): several machines run one services repository, pulled from a
//! remote, and share one Redis. Without `[fleet]` in `config.toml` nothing here runs and no
//! server is needed.
//!
//! - Each node announces itself (`gitvisor:node:NAME`, renewed at a third of the lease TTL), so
//!   `gitvisor fleet status` can list the nodes seen.
//! - A `Singleton=yes` service runs only on the node holding its lease
//!   (`redis_locks::Lease`, key `lease:NAME`). One task per singleton contends
//!   for it (`engine::fleet_ops`), starts the service when it gets it, follows each renewal, and stops the service
//!   when the lease is lost. The log keeper holds a dead-man switch for each running singleton
//!   (`logs::LogLink::leash`): if the engine dies, even by SIGKILL, the keeper kills the
//!   singleton's process group a third of a TTL before its lease could expire, so the node that
//!   takes over never overlaps with it. A restarted engine takes its predecessor's lease back
//!   (it keeps each held lease's token in `fleet.json`) and adopts the process.
//! - The services repository is cloned from `[fleet] remote` when the home has none, and
//!   pulled (fast-forward only) every `pull_interval` and on `gitvisor sync`; the watcher then
//!   applies the new commit as for a local one.

pub mod redis_locks;
pub mod remote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitvisor_protocol::{FleetNode, FleetSingleton, FleetStatusReply};
use gitvisor_state::LockError;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::settings::FleetSettings;
use redis_locks::{Holder, RedisLocks};

/// The lock key of a singleton service's lease.
pub fn lease_key(service: &str) -> String {
    format!("lease:{service}")
}

fn node_key(node: &str) -> String {
    format!("{}node:{node}", redis_locks::PREFIX)
}

/// What this node knows of a singleton's lease, for status.
#[derive(Debug, Clone, Default)]
pub struct LeaseView {
    pub holder: Option<Holder>,
    pub expires_in: Option<Duration>,
    pub fence: u64,
    pub here: bool,
    /// Why this node cannot tell (Redis unreachable...).
    pub problem: Option<String>,
}

/// The tokens of the leases this node's engine holds, kept so a restarted engine takes them
/// back rather than waiting for them to expire.
#[derive(Default, Serialize, Deserialize)]
struct Held {
    tokens: BTreeMap<String, String>,
}

pub struct Fleet {
    pub settings: FleetSettings,
    pub node: String,
    pub locks: Arc<RedisLocks>,
    views: Mutex<BTreeMap<String, LeaseView>>,
    held_file: PathBuf,
    held: Mutex<Held>,
    /// Why Redis cannot be used now, if it cannot.
    problem: Mutex<Option<String>>,
    /// Wakes the singleton tasks: the units changed.
    pub changed: Notify,
}

impl Fleet {
    pub fn new(settings: FleetSettings, held_file: PathBuf) -> Result<Fleet, LockError> {
        let node = if settings.node.is_empty() { crate::time::host_name() } else { settings.node.clone() };
        let locks = Arc::new(RedisLocks::new(&settings.redis, &node, settings.lease_ttl)?);
        let held = gitvisor_state::load_or_default::<Held>(&held_file).value;
        Ok(Fleet {
            settings,
            node,
            locks,
            views: Mutex::default(),
            held_file,
            held: Mutex::new(held),
            problem: Mutex::default(),
            changed: Notify::new(),
        })
    }

    pub fn ttl(&self) -> Duration {
        self.settings.lease_ttl
    }

    pub fn view(&self, service: &str) -> Option<LeaseView> {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).get(service).cloned()
    }

    pub(crate) fn set_view(&self, service: &str, view: LeaseView) {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).insert(service.to_string(), view);
    }

    pub(crate) fn forget_view(&self, service: &str) {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).remove(service);
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The token of the lease this node's earlier engine held for `service`.
    pub(crate) fn predecessor(&self, service: &str) -> Option<String> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).tokens.get(service).cloned()
    }

    pub(crate) fn remember(&self, service: &str, token: Option<&str>) {
        let bytes = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match token {
                Some(t) => held.tokens.insert(service.to_string(), t.to_string()),
                None => held.tokens.remove(service),
            };
            serde_json::to_vec_pretty(&*held).unwrap_or_default()
        };
        if let Err(e) = gitvisor_state::write_atomic(&self.held_file, &bytes) {
            tracing::warn!("cannot save {}: {e}", self.held_file.display());
        }
    }

    /// Releases every lease this node's engine holds (at a clean shutdown, after its services
    /// stopped), so another node takes over at once.
    pub async fn release_all(&self) {
        let held: Vec<(String, String)> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.tokens.iter().map(|(s, t)| (s.clone(), t.clone())).collect()
        };
        for (service, token) in held {
            self.locks.release(&lease_key(&service), &token).await;
            self.remember(&service, None);
        }
    }

    /// Announces this node every third of the TTL, for `fleet status`; notes when Redis cannot
    /// be reached (and the connection is made afresh on the next beat).
    pub async fn heartbeat(self: Arc<Self>) {
        loop {
            let beat = serde_json::json!({ "pid": std::process::id(), "at_ms": crate::time::now_ms() });
            let set = redis::cmd("SET")
                .arg(node_key(&self.node))
                .arg(beat.to_string())
                .arg("PX")
                .arg((self.ttl() * 3).as_millis() as u64)
                .clone();
            match self.locks.query::<()>(&set).await {
                Ok(()) => self.set_problem(None),
                Err(e) => {
                    if self.problem().is_none() {
                        tracing::warn!("fleet: {e}; singletons stop before their leases could expire");
                    }
                    self.set_problem(Some(e.to_string()));
                }
            }
            tokio::time::sleep(self.ttl() / 3).await;
        }
    }

    /// `gitvisor fleet status`: the nodes seen, and each singleton of this node's units.
    pub async fn status(&self, singletons: Vec<String>) -> FleetStatusReply {
        let mut reply = FleetStatusReply {
            node: self.node.clone(),
            redis: self.settings.redis.clone(),
            remote: (!self.settings.remote.is_empty()).then(|| self.settings.remote.clone()),
            lease_ttl_ms: self.ttl().as_millis() as u64,
            problem: self.problem(),
            nodes: Vec::new(),
            singletons: Vec::new(),
        };
        match self.nodes().await {
            Ok(nodes) => reply.nodes = nodes,
            Err(e) => reply.problem = Some(e.to_string()),
        }
        for service in singletons {
            let key = lease_key(&service);
            let mut s = FleetSingleton { service: service.clone(), ..FleetSingleton::default() };
            match self.locks.holder(&key).await {
                Ok(Some((h, ttl))) => {
                    s.here = h.node == self.node && h.pid == std::process::id();
                    s.holder = Some(h.node);
                    s.expires_in_ms = Some(ttl.as_millis() as u64);
                }
                Ok(None) => {}
                Err(e) => s.problem = Some(e.to_string()),
            }
            s.fence = self.locks.fence(&key).await.unwrap_or(0);
            reply.singletons.push(s);
        }
        reply
    }

    async fn nodes(&self) -> Result<Vec<FleetNode>, LockError> {
        let pattern = format!("{}node:*", redis_locks::PREFIX);
        let keys: Vec<String> = self.locks.query(redis::cmd("KEYS").arg(pattern)).await?;
        let mut nodes = Vec::new();
        for k in keys {
            let v: Option<String> = self.locks.query(redis::cmd("GET").arg(&k)).await?;
            let beat: serde_json::Value = v.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
            nodes.push(FleetNode {
                name: k.trim_start_matches(&node_key("")).to_string(),
                last_seen_ms: beat["at_ms"].as_u64().unwrap_or(0),
                pid: beat["pid"].as_u64().map(|p| p as u32),
            });
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }
}
