//! Fleet mode: a room for several machines running one services repository (SPEC section 10).
//!
//! It will hold the fleet's settings (the remote to pull from, the Redis URL, the node's name,
//! the lease TTL), the Redis backend of the engine's lock primitive (acquire with
//! `SET key token NX PX ttl`, release and renew by compare-and-set scripts, a fencing token per
//! acquisition), the heartbeat that renews a held lease at about a third of its TTL, and the
//! leases of `Singleton=yes` services: a singleton runs only on the node holding its lease and
//! is stopped before the lease can expire. The engine takes its locks through
//! `EngineOptions::locks`, so the Redis backend drops in without the engine changing. Without
//! fleet settings nothing here runs and no server is needed.

pub mod redis_locks;

/// The lock key of a singleton service's lease.
pub fn lease_key(service: &str) -> String {
    format!("lease:{service}")
}
