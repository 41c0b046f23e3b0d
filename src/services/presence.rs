//! Presence (API.md §10): a user is online while any node holds one of their sockets.
//! `user:online` goes out when their first socket opens; when their last one closes,
//! `lastSeen` is stored and `user:offline` goes out after `PRESENCE_GRACE`, unless they are
//! back by then (on any node: the presence backend is asked, not assumed). Who hears it is
//! `PRESENCE_BROADCAST`'s call. Both leave through [`crate::services::events`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::PresenceBroadcast;
use crate::services::Services;
use crate::services::events::{Audience, Event};

type OfflineTimers = HashMap<Uuid, (u64, JoinHandle<()>)>;

/// Presence settings, and the users of this node whose `user:offline` waits out the grace,
/// each with the timer that will announce it and a number telling that timer from a later
/// one.
#[derive(Debug)]
pub struct Presence {
    broadcast: PresenceBroadcast,
    grace: Duration,
    pending: Mutex<OfflineTimers>,
    next: AtomicU64,
}

/// How a socket went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It disconnected: the user may be back within the grace.
    Disconnected,
    /// This node is shutting down: no grace, it will not be here to announce it later.
    Shutdown,
}

impl Presence {
    /// Presence as configured.
    #[must_use]
    pub fn new(broadcast: PresenceBroadcast, grace: Duration) -> Self {
        Self {
            broadcast,
            grace,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, OfflineTimers> {
        // Each use is one insert, lookup or remove: a poisoned map is still sound.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls off a pending `user:offline`; whether there was one.
    fn cancel(&self, user: Uuid) -> bool {
        let timer = self.pending().remove(&user);
        timer.map(|(_, handle)| handle.abort()).is_some()
    }
}

/// A socket of `user` opened on this node.
pub async fn socket_opened(services: &Services, user: Uuid, socket: &str) {
    match services.backends.presence.add_socket(user, socket).await {
        // Back within the grace on this node: nobody heard the user leave, so nobody needs
        // to hear them return.
        Ok(true) if services.presence.cancel(user) => {}
        Ok(true) => announce(services, user, None).await,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence: could not record a socket"),
    }
}

/// A socket of `user` went away. When it was the user's last anywhere, `lastSeen` is
/// stored and `user:offline` goes out (after the grace, for a disconnect).
pub async fn socket_closed(services: &Services, user: Uuid, socket: &str, how: Departure) {
    match services.backends.presence.remove_socket(user, socket).await {
        Ok(true) => {
            let now = Utc::now();
            let grace = match how {
                Departure::Disconnected => services.presence.grace,
                Departure::Shutdown => Duration::ZERO,
            };
            // Armed before anything is awaited: a socket of the user that opens from now on
            // (the client saw itself offline and came back) finds it and calls it off.
            let later = (!grace.is_zero()).then(|| announce_later(services, user, now, grace));
            gone_at(services, user, now).await;
            match later {
                Some(stored) => {
                    let _ = stored.send(());
                }
                None => announce(services, user, Some(now)).await,
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence: could not forget a socket"),
    }
}

/// Users whose only sockets were on a node that stopped renewing its presence (it was
/// killed, or froze): this node claimed them, so it stores their `lastSeen` and announces
/// them offline (the node TTL already stood in for the grace).
pub async fn lapsed(services: &Services, users: Vec<Uuid>) {
    let now = Utc::now();
    for user in users {
        gone_at(services, user, now).await;
        announce(services, user, Some(now)).await;
    }
}

/// A user's last socket anywhere is gone: stores their `lastSeen` and drops their cached
/// profile (what every way of going offline does before it is announced).
async fn gone_at(services: &Services, user: Uuid, at: DateTime<Utc>) {
    if let Err(e) = services.last_seen.record(user, at).await {
        tracing::warn!(error = %e, "could not store lastSeen");
    }
    services.users.forget(user);
}

/// Announces `user:offline` after `grace` — and after `lastSeen` is stored, which the
/// returned sender tells — unless the user has a socket again by then.
fn announce_later(
    services: &Services,
    user: Uuid,
    last_seen: DateTime<Utc>,
    grace: Duration,
) -> oneshot::Sender<()> {
    let id = services.presence.next.fetch_add(1, Ordering::Relaxed);
    let task = services.clone();
    let (stored_tx, stored) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        // Stored, or given up on (the sender dropped): either way there is no more to wait.
        let _ = stored.await;
        {
            let mut pending = task.presence.pending();
            if pending.get(&user).is_some_and(|(t, _)| *t == id) {
                pending.remove(&user);
            } else {
                return;
            }
        }
        if !matches!(task.backends.presence.is_online(user).await, Ok(true)) {
            announce(&task, user, Some(last_seen)).await;
        }
    });
    if let Some((_, older)) = services.presence.pending().insert(user, (id, handle)) {
        older.abort();
    }
    stored_tx
}

/// `user:online` (no `last_seen`) or `user:offline` to whom `PRESENCE_BROADCAST` names.
async fn announce(services: &Services, user: Uuid, last_seen: Option<DateTime<Utc>>) {
    let audience = match services.presence.broadcast {
        PresenceBroadcast::None => return,
        PresenceBroadcast::All => Audience::Everyone,
        PresenceBroadcast::Shared => match services.store.list_co_member_ids(user).await {
            Ok(ids) if ids.is_empty() => return,
            Ok(ids) => Audience::Users(ids),
            Err(e) => {
                tracing::warn!(error = %e, "presence: could not list who shares a channel");
                return;
            }
        },
    };
    services.events.emit(match last_seen {
        None => Event::UserOnline {
            user_id: user,
            audience,
        },
        Some(last_seen) => Event::UserOffline {
            user_id: user,
            last_seen,
            audience,
        },
    });
}
