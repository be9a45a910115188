//! The fleet's backend of the lock primitive: a lock is a Redis key holding its holder's
//! token, with a TTL (SPEC section 10).
//!
//! - acquire: `SET key token NX PX ttl`, and in the same script `INCR` of the key's fence
//!   counter, so every acquisition carries a fencing token that only grows;
//! - renew and release: compare-and-set scripts, so only the holder extends or deletes it;
//! - a heartbeat renews at about a third of the TTL while the lock is held and ends with it;
//!   a renewal refused (the key is gone or someone else's) or a Redis that stays unreachable
//!   until the lock could have expired reports the lock lost.
//!
//! A [`Lease`] is the held lock itself (its fence, when it is valid until, its loss); the
//! [`LockBackend`] impl hands the same to `Locks::with_lock`.

use std::sync::Arc;
use std::time::Duration;

use gitvisor_state::{Acquire, Guard, LockBackend, LockError};
use redis::aio::MultiplexedConnection;
use redis::Script;
use tokio::sync::watch;

/// The next fencing token of `KEYS[2]`. A counter that does not exist (the first acquisition,
/// or a Redis that lost its data) starts from Redis's clock in milliseconds, so fences still
/// grow across a restart of a Redis without persistence: the lost counter had been started
/// from an earlier clock and grew by one per acquisition, far less than one per millisecond.
const NEXT_FENCE: &str = r#"
local function next_fence()
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local t = redis.call('TIME')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('SET', KEYS[2], string.format('%.0f', ms))
  end
  return redis.call('INCR', KEYS[2])
end
"#;

/// `{fence, '', 0}` when acquired; else `{0, holder's token, its PTTL}`: who holds it comes in
/// the same round trip.
const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {next_fence(), '', 0}
end
return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"#;

const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Replaces a holder's token by ours, with a new fence: how a restarted engine takes back the
/// lease its own killed predecessor held (it knows that token from Redis).
const TAKE_OVER: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return {next_fence(), '', 0}
end
return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"#;

/// Where the fleet's keys live.
pub const PREFIX: &str = "gitvisor:";

/// Redis, reached from one node.
pub struct RedisLocks {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    node: String,
    ttl: Duration,
}

/// Who holds a lock, read from its token: `NODE PID OP NONCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub pid: u32,
    pub op: String,
    pub token: String,
}

impl Holder {
    fn parse(token: &str) -> Holder {
        let mut w = token.splitn(4, ' ');
        Holder {
            node: w.next().unwrap_or_default().to_string(),
            pid: w.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            op: w.next().unwrap_or_default().to_string(),
            token: token.to_string(),
        }
    }

    pub fn describe(&self) -> String {
        format!("node {} (pid {}, {})", self.node, self.pid, self.op)
    }
}

fn backend(what: &str, e: impl std::fmt::Display) -> LockError {
    LockError::Backend(format!("Redis: {what}: {e}"))
}

pub fn lock_key(key: &str) -> String {
    format!("{PREFIX}lock:{key}")
}

fn fence_key(key: &str) -> String {
    format!("{PREFIX}fence:{key}")
}

impl RedisLocks {
    pub fn new(url: &str, node: &str, ttl: Duration) -> Result<RedisLocks, LockError> {
        let client = redis::Client::open(url).map_err(|e| backend(&format!("cannot use {url:?}"), e))?;
        Ok(RedisLocks { client, conn: tokio::sync::Mutex::new(None), node: node.to_string(), ttl })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// A connection, made once and shared; within a third of the TTL, or an error.
    pub async fn conn(&self) -> Result<MultiplexedConnection, LockError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let made = tokio::time::timeout(self.ttl / 3, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| backend("connecting", "timed out"))?
            .map_err(|e| backend("connecting", e))?;
        *slot = Some(made.clone());
        Ok(made)
    }

    /// Forgets the connection after an error, so the next call connects afresh.
    pub async fn reset(&self) {
        self.conn.lock().await.take();
    }

    /// Runs a command bounded by a third of the TTL; an error drops the connection.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, LockError> {
        let mut conn = self.conn().await?;
        let done = tokio::time::timeout(self.ttl / 3, cmd.query_async::<T>(&mut conn)).await;
        match done {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.reset().await;
                Err(backend("command", e))
            }
            Err(_) => {
                self.reset().await;
                Err(backend("command", "timed out"))
            }
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, LockError> {
        let mut conn = self.conn().await?;
        let script = Script::new(script);
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(a);
        }
        match tokio::time::timeout(self.ttl / 3, inv.invoke_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.reset().await;
                Err(backend("script", e))
            }
            Err(_) => {
                self.reset().await;
                Err(backend("script", "timed out"))
            }
        }
    }

    /// Who holds `key` now, if anyone.
    pub async fn holder(&self, key: &str) -> Result<Option<(Holder, Duration)>, LockError> {
        let token: Option<String> = self.query(redis::cmd("GET").arg(lock_key(key))).await?;
        let Some(token) = token else { return Ok(None) };
        let pttl: i64 = self.query(redis::cmd("PTTL").arg(lock_key(key))).await?;
        Ok(Some((Holder::parse(&token), Duration::from_millis(pttl.max(0) as u64))))
    }

    /// The last fencing token handed out for `key` (0 before the first acquisition).
    pub async fn fence(&self, key: &str) -> Result<u64, LockError> {
        let v: Option<u64> = self.query(redis::cmd("GET").arg(fence_key(key))).await?;
        Ok(v.unwrap_or(0))
    }

    fn token(&self, op: &str) -> String {
        let nonce: u64 = rand_u64();
        format!("{} {} {} {nonce:016x}", self.node, std::process::id(), op.replace(' ', "_"))
    }

    /// Takes `key` for `op`, or says who has it. `predecessor`: a token of this node's earlier
    /// engine, which is taken over if it still holds the key.
    pub async fn lease(
        self: &Arc<Self>,
        key: &str,
        op: &str,
        predecessor: Option<&str>,
    ) -> Result<Lease, LockError> {
        match self.try_lease(key, op, predecessor).await? {
            Ok(lease) => Ok(lease),
            Err(held) => Err(LockError::Held {
                key: key.to_string(),
                holder: held.map(|(h, _)| h.describe()).unwrap_or_else(|| "another node".into()),
            }),
        }
    }

    /// [`RedisLocks::lease`], or who holds it and for how long yet (`None`: it expired in
    /// between), read in the same round trip.
    pub async fn try_lease(
        self: &Arc<Self>,
        key: &str,
        op: &str,
        predecessor: Option<&str>,
    ) -> Result<Result<Lease, Option<(Holder, Duration)>>, LockError> {
        let token = self.token(op);
        let ttl_ms = self.ttl.as_millis().to_string();
        let (lk, fk) = (lock_key(key), fence_key(key));
        let (acquire, take_over) = (format!("{NEXT_FENCE}{ACQUIRE}"), format!("{NEXT_FENCE}{TAKE_OVER}"));
        type Answer = (u64, Option<String>, i64);
        // The lease is valid for a TTL from when it was asked for, not from the answer: the
        // key's TTL started somewhere in between.
        let mut asked = tokio::time::Instant::now();
        let mut answer: Answer = self.script(&acquire, &[&lk, &fk], &[token.clone(), ttl_ms.clone()]).await?;
        if answer.0 == 0 {
            if let Some(old) = predecessor.filter(|old| answer.1.as_deref() == Some(*old)) {
                asked = tokio::time::Instant::now();
                answer =
                    self.script(&take_over, &[&lk, &fk], &[old.to_string(), token.clone(), ttl_ms]).await?;
            }
        }
        let (fence, holder, pttl) = answer;
        if fence == 0 {
            let held = holder.map(|t| (Holder::parse(&t), Duration::from_millis(pttl.max(0) as u64)));
            return Ok(Err(held));
        }
        let (valid_tx, valid) = watch::channel(asked + self.ttl);
        let (lost_tx, lost) = watch::channel(None::<String>);
        let me = self.clone();
        let (k, t) = (key.to_string(), token.clone());
        let heartbeat = tokio::spawn(async move { me.heartbeat(&k, &t, valid_tx, lost_tx).await });
        Ok(Ok(Lease {
            key: key.to_string(),
            token,
            fence,
            valid,
            lost,
            heartbeat: Some(heartbeat),
            locks: self.clone(),
        }))
    }

    /// Renews at a third of the TTL while the lease is held. Lost when a renewal is refused, or
    /// when none succeeded for as long as the key could still live.
    async fn heartbeat(
        &self,
        key: &str,
        token: &str,
        valid: watch::Sender<tokio::time::Instant>,
        lost: watch::Sender<Option<String>>,
    ) {
        let ttl_ms = self.ttl.as_millis().to_string();
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            let asked = tokio::time::Instant::now();
            match self.script::<i64>(RENEW, &[&lock_key(key)], &[token.to_string(), ttl_ms.clone()]).await {
                Ok(1) => {
                    valid.send_replace(asked + self.ttl);
                }
                Ok(_) => {
                    lost.send_replace(Some("its lease expired or another holder took it".into()));
                    return;
                }
                Err(e) => {
                    let until = *valid.borrow();
                    // The next attempt comes a third of the TTL from now: give up if the key
                    // may be gone by then.
                    if tokio::time::Instant::now() + self.ttl / 3 >= until {
                        lost.send_replace(Some(format!("cannot renew its lease: {e}")));
                        return;
                    }
                    tracing::warn!("lease {key}: renewal failed, retrying: {e}");
                }
            }
        }
    }

    pub(crate) async fn release(&self, key: &str, token: &str) {
        if let Err(e) = self.script::<i64>(RELEASE, &[&lock_key(key)], &[token.to_string()]).await {
            tracing::warn!("lease {key}: not released ({e}); it expires by itself");
        }
    }
}

/// A held lock. Dropping it stops the heartbeat and releases the key (in the background).
pub struct Lease {
    pub key: String,
    pub token: String,
    pub fence: u64,
    valid: watch::Receiver<tokio::time::Instant>,
    lost: watch::Receiver<Option<String>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    locks: Arc<RedisLocks>,
}

impl Lease {
    /// Until when the key surely lives (the last successful renewal plus the TTL).
    pub fn valid_until(&self) -> tokio::time::Instant {
        *self.valid.borrow()
    }

    /// A receiver of each renewal's new validity.
    pub fn renewals(&self) -> watch::Receiver<tokio::time::Instant> {
        self.valid.clone()
    }

    /// Resolves with why, once the lease is lost.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(why) => why.clone().unwrap_or_default(),
                Err(_) => "the lease ended".to_string(),
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let (locks, key, token) = (self.locks.clone(), self.key.clone(), self.token.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { locks.release(&key, &token).await });
        }
    }
}

/// The same lease behind the lock primitive: held for an op of `Locks::with_lock`.
pub struct RedisBackend(pub Arc<RedisLocks>);

impl LockBackend for RedisBackend {
    fn try_acquire<'a>(&'a self, key: &'a str, op: &'a str) -> Acquire<'a> {
        Box::pin(async move {
            let lease = self.0.lease(key, op, None).await?;
            let lost = lease.lost();
            let fence = lease.fence;
            Ok(Guard::new(lease).losable(lost).fenced(fence))
        })
    }
}

/// A nonce for tokens: the clock's nanoseconds mixed with the pid (no two acquisitions of one
/// process share a nanosecond; a token's node and pid come first anyway).
fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let x = t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    // SplitMix64's finaliser: spreads the bits.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use gitvisor_state::Locks;
    use gitvisor_testkit::RedisServer;

    use super::*;

    fn node(r: &RedisServer, name: &str, ttl_ms: u64) -> Arc<RedisLocks> {
        Arc::new(RedisLocks::new(&r.url(), name, Duration::from_millis(ttl_ms)).unwrap())
    }

    #[tokio::test]
    async fn one_holder_at_a_time_each_with_a_larger_fence() {
        let r = RedisServer::start();
        let (a, b) = (node(&r, "node-a", 3000), node(&r, "node-b", 3000));
        let first = a.lease("lease:web", "run", None).await.unwrap();
        let refused = b.lease("lease:web", "run", None).await.err().unwrap();
        assert_eq!(
            refused.to_string(),
            format!("lease:web is locked by node node-a (pid {}, run)", std::process::id())
        );
        let fence = first.fence;
        drop(first);
        // Released in the background: b gets it once the key is gone.
        let second = loop {
            match b.lease("lease:web", "run", None).await {
                Ok(l) => break l,
                Err(LockError::Held { .. }) => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        };
        assert!(second.fence > fence, "fences only grow: {} then {}", fence, second.fence);
        assert_eq!(b.fence("lease:web").await.unwrap(), second.fence);
    }

    #[tokio::test]
    async fn a_held_lease_is_renewed_past_its_ttl() {
        let r = RedisServer::start();
        let (a, b) = (node(&r, "node-a", 300), node(&r, "node-b", 300));
        let lease = a.lease("lease:db", "run", None).await.unwrap();
        let start = lease.valid_until();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(lease.valid_until() > start, "renewed");
        assert!(matches!(b.lease("lease:db", "run", None).await, Err(LockError::Held { .. })));
        let (holder, ttl) = b.holder("lease:db").await.unwrap().unwrap();
        assert_eq!(holder.node, "node-a");
        assert!(ttl <= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_lease_taken_from_its_holder_is_reported_lost() {
        let r = RedisServer::start();
        let a = node(&r, "node-a", 300);
        let lease = a.lease("lease:q", "run", None).await.unwrap();
        r.cli(&["SET", "gitvisor:lock:lease:q", "node-x 1 run 0"]);
        let why = tokio::time::timeout(Duration::from_secs(30), lease.lost()).await.expect("lost in time");
        assert_eq!(why, "its lease expired or another holder took it");
    }

    #[tokio::test]
    async fn an_unreachable_redis_loses_the_lease_before_it_could_expire() {
        let mut r = RedisServer::start();
        let a = node(&r, "node-a", 600);
        let lease = a.lease("lease:w", "run", None).await.unwrap();
        let until = lease.valid_until();
        r.kill();
        let why = tokio::time::timeout(Duration::from_secs(30), lease.lost()).await.expect("lost in time");
        assert!(why.starts_with("cannot renew its lease: Redis"), "{why}");
        assert!(tokio::time::Instant::now() <= until, "reported before the key could have expired");
    }

    #[tokio::test]
    async fn fences_keep_growing_after_redis_lost_its_data() {
        let mut r = RedisServer::start();
        let a = node(&r, "node-a", 3000);
        let mut fences = Vec::new();
        for _ in 0..3 {
            let lease = a.lease("lease:f", "run", None).await.unwrap();
            fences.push(lease.fence);
            a.release("lease:f", &lease.token).await;
            std::mem::forget(lease);
        }
        // A Redis without persistence comes back empty: its counters start again.
        r.restart();
        a.reset().await;
        let after = a.lease("lease:f", "run", None).await.unwrap();
        fences.push(after.fence);
        assert!(fences.windows(2).all(|w| w[0] < w[1]), "fences only grow: {fences:?}");
        // Started from the clock in milliseconds, not from 1.
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert!(u128::from(fences[0]).abs_diff(now_ms) < 600_000, "{fences:?}");
    }

    #[tokio::test]
    async fn a_restarted_engine_takes_back_its_predecessors_lease() {
        let r = RedisServer::start();
        let a = node(&r, "node-a", 3000);
        let old = a.lease("lease:s", "run", None).await.unwrap();
        let (token, fence) = (old.token.clone(), old.fence);
        // The old engine is gone without releasing (its heartbeat stopped, its key lives on).
        std::mem::forget(old);
        let again = node(&r, "node-a", 3000);
        assert!(matches!(again.lease("lease:s", "run", None).await, Err(LockError::Held { .. })));
        let back = again.lease("lease:s", "run", Some(&token)).await.unwrap();
        assert!(back.fence > fence);
        assert!(node(&r, "node-b", 3000).lease("lease:s", "run", Some("not the token")).await.is_err());
    }

    #[tokio::test]
    async fn the_lock_primitive_cancels_an_op_whose_lease_is_lost() {
        let r = RedisServer::start();
        let locks = Locks::new(RedisBackend(node(&r, "node-a", 300)));
        let stolen = tokio::spawn({
            let cli = r.socket();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                std::process::Command::new("redis-cli")
                    .arg("-s")
                    .arg(cli)
                    .args(["SET", "gitvisor:lock:sync", "node-x 1 run 0"])
                    .output()
                    .unwrap();
            }
        });
        let out = locks.with_lock("sync", "run", std::future::pending::<()>()).await;
        stolen.await.unwrap();
        assert_eq!(
            out.unwrap_err().to_string(),
            "lost the lock on sync: its lease expired or another holder took it"
        );
        assert_eq!(locks.current(), []);
    }
}
