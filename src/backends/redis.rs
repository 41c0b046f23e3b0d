//! Multi-node backends on Redis. Every key starts with `REDIS_PREFIX`.
//!
//! Presence: each node keeps a hash `<prefix>presence:node:<node>` (user → live sockets)
//! and registers itself in the sorted set `<prefix>presence:nodes` (score = when its
//! registration lapses), renewing both every third of the node TTL ([`PRESENCE_TTL`] unless
//! configured). A node that dies without a goodbye stops counting once its registration
//! lapses; the next heartbeat of any other node then claims it (one script: exactly one
//! node does) and announces offline those of its users connected nowhere else. The hash
//! outlives the registration (three TTLs) so that the claim can still read it. The
//! online/offline decisions are Lua scripts, so two nodes connecting the same user at once
//! cannot both miss it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use super::{BackendError, Counters, Hit, PresenceRegistry, Revocations};

/// How long a node's presence outlives its last heartbeat, unless `PRESENCE_NODE_TTL` says
/// otherwise.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// How long a message's broadcast is remembered (and so how late a retry of its send may
/// still find it unannounced and announce it).
pub const ANNOUNCED_FOR: Duration = Duration::from_secs(120);

/// A Redis connection shared by the three backends of one node.
#[derive(Clone)]
pub struct RedisBackends {
    conn: ConnectionManager,
    prefix: Arc<str>,
    node: Arc<str>,
    ttl: Duration,
    mirror: Arc<Mutex<Mirror>>,
}

/// This node's own sockets per user, kept in process: the truth its hash in Redis copies.
/// When Redis lost the hash (restarted empty) or missed a change (unreachable), the next
/// heartbeat writes the hash again from it.
#[derive(Debug, Default)]
struct Mirror {
    sockets: HashMap<Uuid, i64>,
    /// Bumped by every change, so a rewrite can tell whether it raced one.
    generation: u64,
    /// Redis may differ from the mirror: rewrite at the next heartbeat.
    dirty: bool,
}

impl std::fmt::Debug for RedisBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackends")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RedisBackends {
    /// Connects to `url` (fails fast when Redis does not answer within 5 s); this node's
    /// presence lapses `ttl` after its last renewal (`PRESENCE_NODE_TTL`, by default
    /// [`PRESENCE_TTL`]; tests use a short one).
    ///
    /// # Errors
    /// The URL is invalid or Redis cannot be reached.
    pub async fn connect_with_ttl(
        url: &str,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Self, BackendError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let this = Self {
            conn,
            prefix: Arc::from(prefix),
            node: Arc::from(Uuid::now_v7().to_string()),
            ttl,
            mirror: Arc::default(),
        };
        this.heartbeat().await?;
        Ok(this)
    }

    /// This node's id in the presence registry.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// `PING`.
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn ping(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(30_000)
    }

    /// How often [`RedisBackends::heartbeat`] must run.
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        self.ttl / 3
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn node_hash(&self) -> String {
        self.key(&format!("presence:node:{}", self.node))
    }

    /// Renews this node's presence registration; run every third of its TTL
    /// ([`RedisBackends::heartbeat_interval`]).
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn heartbeat(&self) -> Result<(), BackendError> {
        let beat = self.renew().await;
        if beat.is_err() {
            self.mirror().dirty = true;
        }
        beat
    }

    /// Claims the nodes whose registration lapsed (killed, frozen, cut off) and returns
    /// their users who have no socket on a live node: they are offline now, and this node
    /// is the one to say so. Run after each heartbeat.
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn sweep(&self) -> Result<Vec<Uuid>, BackendError> {
        let mut conn = self.conn.clone();
        let gone: Vec<String> = Script::new(SWEEP_SCRIPT)
            .key(self.key("presence:nodes"))
            .arg(now_ms())
            .arg(self.key("presence:node:"))
            .invoke_async(&mut conn)
            .await?;
        Ok(gone
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect())
    }

    async fn renew(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        let nodes = self.key("presence:nodes");
        let (kept,): (i64,) = redis::pipe()
            .zadd(&nodes, &*self.node, now_ms() + self.ttl_ms())
            .ignore()
            .pexpire(self.node_hash(), self.ttl_ms() * HASH_LIFETIMES)
            .query_async(&mut conn)
            .await?;
        let (sockets, generation, dirty) = {
            let m = self.mirror();
            (m.sockets.clone(), m.generation, m.dirty)
        };
        if !dirty && (kept == 1 || sockets.is_empty()) {
            return Ok(());
        }
        // Redis lost or missed part of this node's presence: write it whole again.
        let mut pipe = redis::pipe();
        pipe.atomic().del(self.node_hash()).ignore();
        if !sockets.is_empty() {
            let fields: Vec<(String, i64)> =
                sockets.iter().map(|(u, n)| (u.to_string(), *n)).collect();
            pipe.hset_multiple(self.node_hash(), &fields)
                .ignore()
                .pexpire(self.node_hash(), self.ttl_ms() * HASH_LIFETIMES)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        let mut m = self.mirror();
        // A change that raced the rewrite may be missing from it: again at the next beat.
        m.dirty = m.generation != generation;
        tracing::info!(
            users = sockets.len(),
            "this node's presence written to Redis again"
        );
        Ok(())
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Withdraws this node's presence at shutdown (its users go offline at once).
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn leave(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .zrem(self.key("presence:nodes"), &*self.node)
            .ignore()
            .del(self.node_hash())
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The key that records that a new message's broadcast was published (the Socket.IO
    /// driver sets it in the same script as the publish; see `socket::redis_driver`).
    #[must_use]
    pub fn announced_key(&self, message: Uuid) -> String {
        self.key(&format!("announced:{message}"))
    }

    /// Claims the broadcast of a message whose publish nobody recorded (the node that wrote
    /// it died first): `true` when the caller is the one to announce it now.
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn claim_announcement(&self, message: Uuid) -> Result<bool, BackendError> {
        let mut conn = self.conn.clone();
        let claimed: Option<String> = redis::cmd("SET")
            .arg(self.announced_key(message))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ANNOUNCED_FOR.as_millis().to_string())
            .query_async(&mut conn)
            .await?;
        Ok(claimed.is_some())
    }

    /// Presence on this connection.
    #[must_use]
    pub fn presence(&self) -> RedisPresence {
        RedisPresence(self.clone())
    }

    /// Counters on this connection.
    #[must_use]
    pub fn counters(&self) -> RedisCounters {
        RedisCounters(self.clone())
    }

    /// Revocations on this connection.
    #[must_use]
    pub fn revocations(&self) -> RedisRevocations {
        RedisRevocations(self.clone())
    }
}

/// [`PresenceRegistry`] shared by every node.
#[derive(Debug, Clone)]
pub struct RedisPresence(RedisBackends);

/// A node's hash lives this many node TTLs past its last renewal, so that the node that
/// claims it after its registration lapsed can still read whom it held.
const HASH_LIFETIMES: i64 = 3;

/// Shared Lua prelude: the live nodes (a lapsed one stays registered until a sweep claims
/// it). KEYS[1] = nodes zset; ARGV[1] = now (ms).
const LIVE_NODES: &str = r"
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
";

/// KEYS[1] nodes; ARGV: now, hash prefix. Drops every lapsed node with its hash and returns
/// its users who are on no live node (each once).
const SWEEP_SCRIPT: &str = r"
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #lapsed == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local nodes = redis.call('ZRANGE', KEYS[1], 0, -1)
local seen = {}
local gone = {}
for _, dead in ipairs(lapsed) do
  local users = redis.call('HKEYS', ARGV[2] .. dead)
  redis.call('DEL', ARGV[2] .. dead)
  for _, u in ipairs(users) do
    if not seen[u] then
      seen[u] = true
      local elsewhere = false
      for _, node in ipairs(nodes) do
        if redis.call('HEXISTS', ARGV[2] .. node, u) == 1 then elsewhere = true; break end
      end
      if not elsewhere then gone[#gone + 1] = u end
    end
  end
end
return gone
";

/// KEYS[1] nodes, KEYS[2] own hash; ARGV: now, user, own node, hash prefix, delta, ttl, hash
/// lifetime.
/// Returns 1 when the user changed state (first socket anywhere, or last one gone).
const CHANGE_SCRIPT: &str = r"
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[6], ARGV[3])
if tonumber(ARGV[5]) > 0 and n > 1 then return 0 end
if tonumber(ARGV[5]) < 0 then
  if n > 0 then return 0 end
  redis.call('HDEL', KEYS[2], ARGV[2])
  if n < 0 then return 0 end
end
for _, node in ipairs(nodes) do
  if node ~= ARGV[3] and redis.call('HEXISTS', ARGV[4] .. node, ARGV[2]) == 1 then return 0 end
end
return 1
";

/// KEYS[1] nodes; ARGV: now, hash prefix, user ('' for all). Returns the online user ids.
const ONLINE_SCRIPT: &str = r"
local seen = {}
local out = {}
for _, node in ipairs(nodes) do
  local users
  if ARGV[3] ~= '' then
    if redis.call('HEXISTS', ARGV[2] .. node, ARGV[3]) == 1 then users = {ARGV[3]} else users = {} end
  else
    users = redis.call('HKEYS', ARGV[2] .. node)
  end
  for _, u in ipairs(users) do
    if not seen[u] then seen[u] = true; out[#out + 1] = u end
  end
end
return out
";

impl RedisPresence {
    async fn change(&self, user: Uuid, delta: i64) -> Result<bool, BackendError> {
        let b = &self.0;
        {
            let mut m = b.mirror();
            let n = m.sockets.entry(user).or_insert(0);
            *n = (*n + delta).max(0);
            if *n == 0 {
                m.sockets.remove(&user);
            }
            m.generation += 1;
        }
        let changed = self.apply(user, delta).await;
        if changed.is_err() {
            b.mirror().dirty = true;
        }
        changed
    }

    async fn apply(&self, user: Uuid, delta: i64) -> Result<bool, BackendError> {
        let b = &self.0;
        let script = Script::new(&format!("{LIVE_NODES}{CHANGE_SCRIPT}"));
        let mut conn = b.conn.clone();
        let changed: i64 = script
            .key(b.key("presence:nodes"))
            .key(b.node_hash())
            .arg(now_ms())
            .arg(user.to_string())
            .arg(&*b.node)
            .arg(b.key("presence:node:"))
            .arg(delta)
            .arg(b.ttl_ms())
            .arg(b.ttl_ms() * HASH_LIFETIMES)
            .invoke_async(&mut conn)
            .await?;
        Ok(changed == 1)
    }

    async fn online(&self, user: Option<Uuid>) -> Result<Vec<Uuid>, BackendError> {
        let b = &self.0;
        let script = Script::new(&format!("{LIVE_NODES}{ONLINE_SCRIPT}"));
        let mut conn = b.conn.clone();
        let ids: Vec<String> = script
            .key(b.key("presence:nodes"))
            .arg(now_ms())
            .arg(b.key("presence:node:"))
            .arg(user.map(|u| u.to_string()).unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }
}

#[async_trait]
impl PresenceRegistry for RedisPresence {
    async fn add_socket(&self, user: Uuid, _socket: &str) -> Result<bool, BackendError> {
        self.change(user, 1).await
    }

    async fn remove_socket(&self, user: Uuid, _socket: &str) -> Result<bool, BackendError> {
        self.change(user, -1).await
    }

    async fn is_online(&self, user: Uuid) -> Result<bool, BackendError> {
        Ok(!self.online(Some(user)).await?.is_empty())
    }

    async fn online_users(&self) -> Result<Vec<Uuid>, BackendError> {
        self.online(None).await
    }
}

/// [`Counters`] shared by every node.
#[derive(Debug, Clone)]
pub struct RedisCounters(RedisBackends);

const HIT_SCRIPT: &str = r"
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}
";

#[async_trait]
impl Counters for RedisCounters {
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, BackendError> {
        let b = &self.0;
        let mut conn = b.conn.clone();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl): (u64, i64) = Script::new(HIT_SCRIPT)
            .key(b.key(&format!("rl:{key}")))
            .arg(window_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(Hit {
            count,
            reset_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }
}

/// Set once every revocation in force was copied from the database; a Redis that restarted
/// empty lacks it, and the next check copies them again.
const REVOCATIONS_RESTORED: &str = "revocations:restored";

/// [`Revocations`] shared by every node.
#[derive(Debug, Clone)]
pub struct RedisRevocations(RedisBackends);

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke(&self, jti: Uuid, expires_at: i64) -> Result<(), BackendError> {
        let b = &self.0;
        let mut conn = b.conn.clone();
        let Ok(at) = u64::try_from(expires_at) else {
            return Ok(());
        };
        if expires_at <= chrono::Utc::now().timestamp() {
            return Ok(());
        }
        let options = redis::SetOptions::default().with_expiration(redis::SetExpiry::EXAT(at));
        let _: () = conn
            .set_options(b.key(&format!("revoked:{jti}")), 1, options)
            .await?;
        Ok(())
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<Option<bool>, BackendError> {
        let b = &self.0;
        let mut conn = b.conn.clone();
        let (revoked, restored): (bool, bool) = redis::pipe()
            .exists(b.key(&format!("revoked:{jti}")))
            .exists(b.key(REVOCATIONS_RESTORED))
            .query_async(&mut conn)
            .await?;
        Ok(restored.then_some(revoked))
    }

    async fn mark_restored(&self) -> Result<(), BackendError> {
        let b = &self.0;
        let mut conn = b.conn.clone();
        let _: () = conn.set(b.key(REVOCATIONS_RESTORED), 1).await?;
        Ok(())
    }
}
