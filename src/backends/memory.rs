//! Single-node backends: plain maps behind short-lived mutexes.
//!
//! Each lock is held only for a map operation, never across an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::{BackendError, Counters, Hit, PresenceRegistry, Revocations};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves a map in a usable state
    // (every operation is a single insert/remove), so a poisoned lock is taken as is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sockets per user on this process.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    sockets: Mutex<HashMap<Uuid, Vec<String>>>,
}

#[async_trait]
impl PresenceRegistry for MemoryPresence {
    async fn add_socket(&self, user: Uuid, socket: &str) -> Result<bool, BackendError> {
        let mut map = lock(&self.sockets);
        let sockets = map.entry(user).or_default();
        let first = sockets.is_empty();
        if !sockets.iter().any(|s| s == socket) {
            sockets.push(socket.to_owned());
        }
        Ok(first)
    }

    async fn remove_socket(&self, user: Uuid, socket: &str) -> Result<bool, BackendError> {
        let mut map = lock(&self.sockets);
        let Some(sockets) = map.get_mut(&user) else {
            return Ok(false);
        };
        let before = sockets.len();
        sockets.retain(|s| s != socket);
        if sockets.is_empty() {
            map.remove(&user);
            return Ok(before > 0);
        }
        Ok(false)
    }

    async fn is_online(&self, user: Uuid) -> Result<bool, BackendError> {
        Ok(lock(&self.sockets).contains_key(&user))
    }

    async fn online_users(&self) -> Result<Vec<Uuid>, BackendError> {
        Ok(lock(&self.sockets).keys().copied().collect())
    }
}

/// Fixed windows: key → (hits, window end).
#[derive(Debug, Default)]
pub struct MemoryCounters {
    windows: Mutex<HashMap<String, (u64, Instant)>>,
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, BackendError> {
        let now = Instant::now();
        let mut map = lock(&self.windows);
        // Bound memory: drop every finished window once the map grows.
        if map.len() > 10_000 {
            map.retain(|_, (_, end)| *end > now);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(Hit {
            count: entry.0,
            reset_in: entry.1.saturating_duration_since(now),
        })
    }
}

/// Revoked jti → expiry (unix seconds).
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    revoked: Mutex<HashMap<Uuid, i64>>,
}

#[async_trait]
impl Revocations for MemoryRevocations {
    async fn revoke(&self, jti: Uuid, expires_at: i64) -> Result<(), BackendError> {
        let now = chrono::Utc::now().timestamp();
        let mut map = lock(&self.revoked);
        map.retain(|_, exp| *exp > now);
        if expires_at > now {
            map.insert(jti, expires_at);
        }
        Ok(())
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<Option<bool>, BackendError> {
        let now = chrono::Utc::now().timestamp();
        Ok(Some(
            lock(&self.revoked).get(&jti).is_some_and(|exp| *exp > now),
        ))
    }

    async fn mark_restored(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
