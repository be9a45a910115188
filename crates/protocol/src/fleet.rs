//! What `gitvisor fleet status` shows: the nodes seen on the fleet's Redis, and who runs each
//! singleton.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetStatusReply {
    /// This node's name.
    pub node: String,
    pub redis: String,
    pub remote: Option<String>,
    pub lease_ttl_ms: u64,
    /// Why Redis cannot be used now, if it cannot.
    pub problem: Option<String>,
    pub nodes: Vec<FleetNode>,
    pub singletons: Vec<FleetSingleton>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetNode {
    pub name: String,
    /// Unix time in milliseconds of its last heartbeat.
    pub last_seen_ms: u64,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSingleton {
    pub service: String,
    /// The node holding its lease, if any.
    pub holder: Option<String>,
    /// The holder is this engine.
    pub here: bool,
    pub expires_in_ms: Option<u64>,
    /// The fencing token of the lease's latest acquisition.
    pub fence: u64,
    pub problem: Option<String>,
}
