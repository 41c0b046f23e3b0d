//! Typing indicators: relayed, never stored. A typing state ends by itself
//! [`super::TYPING_TIMEOUT`] after its last `typing-start` (the server sends the stop), and
//! when its socket disconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::models::message::SenderView;
use crate::services::events::{channel_room, user_room};

/// Live typing states of this node: (socket id, channel) → the timer that ends it.
#[derive(Debug, Default)]
pub struct Typing {
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

fn payload(channel: Uuid, user: &SenderView) -> serde_json::Value {
    json!({ "channelId": channel, "user": user })
}

async fn announce<A: Adapter>(io: &SocketIo<A>, event: &str, channel: Uuid, user: &SenderView) {
    // `io.to` panics once the namespace is closed (at shutdown); `of` asks.
    let Some(root) = io.of("/") else {
        return;
    };
    let result = root
        .to(channel_room(channel))
        .except(user_room(user.id))
        .emit(event, &payload(channel, user))
        .await;
    if let Err(e) = result {
        super::delivery::report(&e, event);
    }
}

impl Typing {
    fn timers(&self) -> std::sync::MutexGuard<'_, TimerMap> {
        lock(&self.timers)
    }

    /// `typing-start`: tells the room (not the typist's own sockets) and arms the stop.
    pub async fn start<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        socket: &SocketRef<A>,
        channel: Uuid,
        user: SenderView,
    ) {
        let key = (socket.id.to_string(), channel);
        let already = {
            let io = io.clone();
            let key2 = key.clone();
            let user2 = user.clone();
            let timers = self.timers.clone();
            let timer = tokio::spawn(async move {
                tokio::time::sleep(super::TYPING_TIMEOUT).await;
                let ended = lock(&timers).remove(&key2);
                if ended.is_some() {
                    announce(&io, "user-stopped-typing", key2.1, &user2).await;
                }
            });
            let previous = self.timers().insert(key, (user.clone(), timer));
            previous.map(|(_, old)| old.abort()).is_some()
        };
        if !already {
            announce(io, "user-typing", channel, &user).await;
        }
    }

    /// `typing-stop`: ends the state, if any, and tells the room.
    pub async fn stop<A: Adapter>(&self, io: &SocketIo<A>, socket: &SocketRef<A>, channel: Uuid) {
        let ended = self.timers().remove(&(socket.id.to_string(), channel));
        if let Some((user, timer)) = ended {
            timer.abort();
            announce(io, "user-stopped-typing", channel, &user).await;
        }
    }

    /// A socket went away: every typing state it had ends.
    pub async fn stop_all<A: Adapter>(&self, io: &SocketIo<A>, socket: &SocketRef<A>) {
        let sid = socket.id.to_string();
        let ended: Vec<(TimerKey, (SenderView, JoinHandle<()>))> = {
            let mut timers = self.timers();
            let keys: Vec<(String, Uuid)> =
                timers.keys().filter(|(s, _)| *s == sid).cloned().collect();
            keys.into_iter()
                .filter_map(|k| timers.remove(&k).map(|v| (k, v)))
                .collect()
        };
        for ((_, channel), (user, timer)) in ended {
            timer.abort();
            announce(io, "user-stopped-typing", channel, &user).await;
        }
    }
}
