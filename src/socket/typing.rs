//! The typing timers of this node's sockets: a typing state ends by itself `TYPING_TIMEOUT`
//! after its last `typing-start` (the server sends the stop), and when its socket goes.
//! Who may type, and the announcements, are [`crate::services::typing`]'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::models::message::SenderView;
use crate::services::{Services, typing};

/// Live typing states of this node: (socket id, channel) → the timer that ends it.
#[derive(Debug)]
pub struct Typing {
    timeout: Duration,
    // Held only to insert, take or remove one entry; never across an `.await`.
    timers: Arc<Mutex<TimerMap>>,
}

/// A socket id and a channel.
type TimerKey = (String, Uuid);
type TimerMap = HashMap<TimerKey, (SenderView, JoinHandle<()>)>;

fn lock(timers: &Mutex<TimerMap>) -> std::sync::MutexGuard<'_, TimerMap> {
    timers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Typing {
    /// No typing states; each will last `timeout` without a new `typing-start`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            timers: Arc::default(),
        }
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, TimerMap> {
        lock(&self.timers)
    }

    /// `typing-start` (already authorised): tells the room unless the socket was typing
    /// there already, and arms (or re-arms) the stop.
    pub fn start(&self, services: &Services, socket: &str, channel: Uuid, user: SenderView) {
        let key = (socket.to_owned(), channel);
        let timer = {
            let (services, key, user) = (services.clone(), key.clone(), user.clone());
            let (timers, timeout) = (self.timers.clone(), self.timeout);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if lock(&timers).remove(&key).is_some() {
                    typing::announce(&services, key.1, user, false);
                }
            })
        };
        let previous = self.timers().insert(key, (user.clone(), timer));
        match previous {
            Some((_, old)) => old.abort(),
            None => typing::announce(services, channel, user, true),
        }
    }

    /// `typing-stop`: ends the state, if any, and tells the room.
    pub fn stop(&self, services: &Services, socket: &str, channel: Uuid) {
        let ended = self.timers().remove(&(socket.to_owned(), channel));
        if let Some((user, timer)) = ended {
            timer.abort();
            typing::announce(services, channel, user, false);
        }
    }

    /// A socket went away: every typing state it had ends.
    pub fn stop_all(&self, services: &Services, socket: &str) {
        let ended: Vec<(TimerKey, (SenderView, JoinHandle<()>))> = {
            let mut timers = self.timers();
            let keys: Vec<TimerKey> = timers
                .keys()
                .filter(|(s, _)| s == socket)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| timers.remove(&k).map(|v| (k, v)))
                .collect()
        };
        for ((_, channel), (user, timer)) in ended {
            timer.abort();
            typing::announce(services, channel, user, false);
        }
    }
}
