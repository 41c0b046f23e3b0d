//! State that is process-local on one node and shared through Redis on many.
//!
//! Three traits, each with an in-memory ([`memory`]) and a Redis ([`redis`]) implementation,
//! picked once at start-up by `REDIS_URL`:
//! - [`PresenceRegistry`]: which users have a live socket, on any node;
//! - [`Counters`]: fixed-window counters for rate limits;
//! - [`Revocations`]: revoked token ids, until the token would have expired.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

/// A backend could not answer.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct BackendError(pub ::redis::RedisError);

/// Every failed Redis command of the backends passes here, and is counted.
impl From<::redis::RedisError> for BackendError {
    fn from(e: ::redis::RedisError) -> Self {
        metrics::counter!(crate::metrics::names::REDIS_ERRORS).increment(1);
        Self(e)
    }
}

impl From<BackendError> for crate::error::AppError {
    fn from(e: BackendError) -> Self {
        Self::ServiceUnavailable(e.to_string())
    }
}

/// Which users are online: a user is online while any node holds one of their sockets.
#[async_trait]
pub trait PresenceRegistry: Send + Sync + 'static {
    /// Records a socket of `user`; `true` when it is the user's first anywhere (now online).
    async fn add_socket(&self, user: Uuid, socket: &str) -> Result<bool, BackendError>;
    /// Forgets a socket; `true` when it was the user's last anywhere (now offline).
    async fn remove_socket(&self, user: Uuid, socket: &str) -> Result<bool, BackendError>;
    /// Whether `user` has a live socket on any node.
    async fn is_online(&self, user: Uuid) -> Result<bool, BackendError>;
    /// Every user with a live socket on any node.
    async fn online_users(&self) -> Result<Vec<Uuid>, BackendError>;
}

/// One hit on a fixed-window counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Time until the window resets.
    pub reset_in: Duration,
}

/// Fixed-window counters keyed by string (rate limits).
#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Counts one hit on `key` in a window of `window`, starting the window if needed.
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, BackendError>;
}

/// Revoked token ids, each kept until its token's own expiry (unix seconds).
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Revokes `jti` until `expires_at`.
    async fn revoke(&self, jti: Uuid, expires_at: i64) -> Result<(), BackendError>;
    /// Whether `jti` is revoked; `None` when the backend does not hold every revocation
    /// (Redis restarted empty, or was never filled): restore them from the database, then
    /// [`Revocations::mark_restored`], then ask again.
    async fn is_revoked(&self, jti: Uuid) -> Result<Option<bool>, BackendError>;
    /// Records that the backend now holds every revocation in force.
    async fn mark_restored(&self) -> Result<(), BackendError>;
}

/// The three backends of one node.
#[derive(Clone)]
pub struct Backends {
    /// Presence.
    pub presence: Arc<dyn PresenceRegistry>,
    /// Rate-limit counters.
    pub counters: Arc<dyn Counters>,
    /// Token revocations.
    pub revocations: Arc<dyn Revocations>,
    /// The Redis connection when `REDIS_URL` is set (health checks ping it).
    pub redis: Option<redis::RedisBackends>,
}

impl Backends {
    /// Process-local backends (one node, no Redis).
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            presence: Arc::new(memory::MemoryPresence::default()),
            counters: Arc::new(memory::MemoryCounters::default()),
            revocations: Arc::new(memory::MemoryRevocations::default()),
            redis: None,
        }
    }

    /// Redis-backed backends shared by every node with the same prefix.
    #[must_use]
    pub fn shared(redis: redis::RedisBackends) -> Self {
        Self {
            presence: Arc::new(redis.presence()),
            counters: Arc::new(redis.counters()),
            revocations: Arc::new(redis.revocations()),
            redis: Some(redis),
        }
    }

    /// Pings Redis when it is configured: `None` when it is not.
    pub async fn ping_redis(&self) -> Option<Result<(), BackendError>> {
        match &self.redis {
            None => None,
            Some(r) => Some(r.ping().await),
        }
    }
}
