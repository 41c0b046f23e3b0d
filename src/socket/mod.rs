//! Socket.IO v4 (protocol 5) on `/socket.io`, namespace `/` (API.md §10).
//!
//! Thin and symmetric with the REST controllers: a connect middleware authenticates, and
//! each client event parses its payload, calls the same service function as its REST twin
//! and answers with the REST envelope in the ack (or an `error` event when the client asked
//! for no ack). Deliveries come from the events bus ([`crate::services::events`]): one task
//! turns each committed change into one broadcast to its room.
//!
//! One node uses socketioxide's local adapter; with `REDIS_URL` the Redis adapter carries
//! every broadcast (and room change) to the other nodes, and presence is shared through the
//! presence backend.

mod delivery;
mod handlers;
mod typing;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::DisconnectReason;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::error::AppError;
use crate::middleware::auth::token_from_headers;
use crate::services::auth::{self, AuthUser};
use crate::services::events::{token_room, user_room};
use crate::state::AppState;

pub use typing::Typing;

/// This node's sockets that are not yet marked gone, so that shutdown can wait for the
/// disconnect handlers still storing `lastSeen` before the database pool closes.
#[derive(Debug, Default)]
pub struct LiveSockets(std::sync::atomic::AtomicUsize);

impl LiveSockets {
    fn add(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn done(&self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until every socket was marked gone, or `limit` passed.
    async fn drained(&self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while self.0.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

type OfflineTimers = HashMap<uuid::Uuid, (u64, tokio::task::JoinHandle<()>)>;

/// Users whose `user:offline` waits out `PRESENCE_GRACE` on this node, each with the timer
/// that will announce it and a number telling that timer from a later one.
#[derive(Debug, Default)]
pub struct PendingOffline {
    timers: std::sync::Mutex<OfflineTimers>,
    next: std::sync::atomic::AtomicU64,
}

impl PendingOffline {
    fn timers(&self) -> std::sync::MutexGuard<'_, OfflineTimers> {
        self.timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls off a pending `user:offline`; whether there was one.
    fn cancel(&self, user: uuid::Uuid) -> bool {
        let timer = self.timers().remove(&user);
        timer.map(|(_, handle)| handle.abort()).is_some()
    }

    /// Announces `user:offline` after `grace`, unless the user has a socket again by then (on
    /// any node: presence is asked, not assumed).
    fn announce_later<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        state: &AppState,
        user: uuid::Uuid,
        last_seen: chrono::DateTime<chrono::Utc>,
        grace: Duration,
    ) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (io, state) = (io.clone(), state.clone());
        let handle = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            {
                let mut timers = state.pending_offline.timers();
                if timers.get(&user).is_some_and(|(t, _)| *t == id) {
                    timers.remove(&user);
                } else {
                    return;
                }
            }
            if !matches!(state.backends.presence.is_online(user).await, Ok(true)) {
                delivery::presence_changed(&io, &state, user, false, Some(last_seen)).await;
            }
        });
        if let Some((_, older)) = self.timers().insert(user, (id, handle)) {
            older.abort();
        }
    }
}

/// Set on a socket once it is marked gone, so that it is marked only once.
#[derive(Clone, Copy)]
struct Gone;

/// Largest Engine.IO packet accepted; a larger one closes the connection.
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// The same cap for one WebSocket message (and frame); the default is 64 MiB.
const WS_MAX: usize = 64 * 1024;
/// Each WebSocket's read buffer (the default is 4 KiB). Clients send small packets — acks,
/// typing, a message of a few hundred bytes — so 1 KiB serves them, and a larger packet
/// grows the buffer for that socket only. Saves 3 KiB per idle socket (heap profile in
/// docs/performance.md).
const WS_READ_BUFFER: usize = 1024;

/// Packets that may wait for one socket's transport before a broadcast skips it. The queue
/// grows only as packets wait (it holds shared handles to the payload serialised once per
/// broadcast), so a large bound costs nothing for a socket that keeps up. The default, 128,
/// is half a second of one channel at 250 messages/s: a socket whose writer is starved that
/// long on a busy core would miss events without knowing. A client that stops reading is
/// closed by the Engine.IO heartbeat instead: its ping cannot be queued or its pong comes late.
pub const SOCKET_BUFFER: usize = 16 * 1024;
/// Channel rooms one socket may be subscribed to at once.
pub const MAX_CHANNEL_ROOMS: usize = 500;
/// A typing state with no new `typing-start` ends by itself after this.
pub const TYPING_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a handshake was refused: the message is exactly the contract's code.
#[derive(Debug)]
struct ConnectRefused(&'static str);

impl std::fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The token of a handshake: `auth: {token}`, else `Authorization: Bearer`, else the cookie.
fn handshake_token<A: Adapter>(socket: &SocketRef<A>, auth: Option<&Value>) -> Option<String> {
    auth.and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .map(|t| t.trim().trim_start_matches("Bearer ").to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| token_from_headers(&socket.req_parts().headers))
}

/// Connect middleware: no token, or a bad one, ends in `connect_error` with the code.
async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    socketioxide::extract::State(state): socketioxide::extract::State<AppState>,
) -> Result<(), ConnectRefused> {
    let auth = auth.ok();
    let token = handshake_token(&socket, auth.as_ref()).ok_or(ConnectRefused("AUTH_REQUIRED"))?;
    match auth::authenticate(&state, &token).await {
        Ok(user) => {
            socket.extensions.insert(Arc::new(user));
            // Before the client hears it is connected, so an event it emits at once is
            // never dropped for want of a handler.
            handlers::register(&socket);
            Ok(())
        }
        Err(AppError::TokenExpired) => Err(ConnectRefused("TOKEN_EXPIRED")),
        Err(AppError::AuthRequired) => Err(ConnectRefused("AUTH_REQUIRED")),
        Err(AppError::InvalidToken) => Err(ConnectRefused("INVALID_TOKEN")),
        Err(e) => {
            tracing::error!(error = %e, "socket handshake could not be checked");
            Err(ConnectRefused("SERVICE_UNAVAILABLE"))
        }
    }
}

/// The signed-in user of a connected socket.
pub(crate) fn auth_user<A: Adapter>(socket: &SocketRef<A>) -> Option<Arc<AuthUser>> {
    socket.extensions.get::<Arc<AuthUser>>()
}

async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    socketioxide::extract::State(state): socketioxide::extract::State<AppState>,
) {
    let Some(user) = auth_user(&socket) else {
        let _ = socket.disconnect();
        return;
    };
    let user_id = user.user.id;
    socket.join([user_room(user_id), token_room(user.token.jti)]);
    let sid = socket.id.to_string();
    match state.backends.presence.add_socket(user_id, &sid).await {
        // Back within PRESENCE_GRACE on this node: nobody heard the user leave, so nobody
        // needs to hear them return.
        Ok(true) if state.pending_offline.cancel(user_id) => {}
        Ok(true) => delivery::presence_changed(&io, &state, user_id, true, None).await,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence: could not record a socket"),
    }
    if !socket.connected() {
        // Gone while presence was being recorded, before a disconnect handler existed.
        socket.extensions.insert(Gone);
        let _ = state.backends.presence.remove_socket(user_id, &sid).await;
        return;
    }
    state.live_sockets.add();
    socket.on_disconnect(
        async move |socket: SocketRef<A>, io: SocketIo<A>, _reason: DisconnectReason| {
            socket_gone(&io, &state, &socket, user_id, state.config.presence_grace).await;
        },
    );
}

/// A socket of `user_id` is gone: its typing states end, and when it was the user's last
/// socket the user goes offline with `lastSeen` stored; `user:offline` goes out after
/// `grace` unless the user is back by then. The second call for a socket (its disconnect
/// handler and shutdown may race) does nothing.
async fn socket_gone<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
    socket: &SocketRef<A>,
    user_id: uuid::Uuid,
    grace: Duration,
) {
    if socket.extensions.insert(Gone).is_some() {
        return;
    }
    state.typing.stop_all(io, socket).await;
    match state
        .backends
        .presence
        .remove_socket(user_id, &socket.id.to_string())
        .await
    {
        Ok(true) => {
            let now = chrono::Utc::now();
            if let Err(e) = state.last_seen.record(user_id, now).await {
                tracing::warn!(error = %e, "could not store lastSeen");
            }
            state.users.forget(user_id);
            if grace.is_zero() {
                delivery::presence_changed(io, state, user_id, false, Some(now)).await;
            } else {
                state
                    .pending_offline
                    .announce_later(io, state, user_id, now, grace);
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence: could not forget a socket"),
    }
    state.live_sockets.done();
}

/// Closes every socket of this node (at shutdown).
pub type Closer = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

fn builder(state: &AppState) -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .max_payload(MAX_PAYLOAD)
        .ws_max_message_size(WS_MAX)
        .ws_max_frame_size(WS_MAX)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_buffer_size(SOCKET_BUFFER)
        .with_state(state.clone())
}

/// Closes this node's sockets at shutdown. `io.close()` drops them without running their
/// disconnect handlers, so each one is marked gone first (`lastSeen` stored, `user:offline`
/// sent). The transports are closed rather than sent a Socket.IO disconnect, so clients
/// reconnect by themselves (to another node, or to this one once it is back).
fn closer<A: Adapter>(io: SocketIo<A>, state: &AppState) -> Closer {
    let state = state.clone();
    Box::new(move || {
        Box::pin(async move {
            if let Some(root) = io.of("/") {
                // All at once, so that their lastSeen writes share the writer's batches.
                let sockets = root.local().sockets();
                futures_util::future::join_all(sockets.iter().filter_map(|socket| {
                    let user = auth_user(socket)?;
                    // No grace: this node will not be here to announce it later.
                    Some(socket_gone(
                        &io,
                        &state,
                        socket,
                        user.user.id,
                        Duration::ZERO,
                    ))
                }))
                .await;
            }
            // Handlers of sockets that closed just before are still storing lastSeen.
            state.live_sockets.drained(Duration::from_secs(5)).await;
            io.close().await;
        })
    })
}

/// The Socket.IO layer of a single node, with delivery of committed events started.
#[must_use]
pub fn build_local(state: &AppState) -> (SocketIoLayer, Closer) {
    let (layer, io) = builder(state).build_layer();
    io.ns("/", on_connect.with(authenticate));
    delivery::spawn(io.clone(), state);
    (layer, closer(io, state))
}

/// The Socket.IO layer of one node of many: broadcasts go through Redis (RESP3, channels
/// under `REDIS_PREFIX`), with delivery of committed events started.
///
/// # Errors
/// Redis cannot be reached or does not speak RESP3 (Redis 7 or later).
pub async fn build_redis(
    state: &AppState,
    url: &str,
    prefix: &str,
) -> anyhow::Result<(
    SocketIoLayer<RedisAdapter<socketioxide::adapter::Emitter>>,
    Closer,
)> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let client =
        redis::Client::open(format!("{url}{sep}protocol=resp3")).context("invalid REDIS_URL")?;
    let config = RedisAdapterConfig::new().with_prefix(format!("{prefix}socket.io"));
    let adapter = RedisAdapterCtr::new_with_redis_config(&client, config)
        .await
        .context("cannot connect the Socket.IO Redis adapter (Redis 7+ with RESP3 is needed)")?;
    let (layer, io) = builder(state)
        .with_adapter::<RedisAdapter<_>>(adapter)
        .build_layer();
    io.ns("/", on_connect.with(authenticate))
        .await
        .context("cannot start the Socket.IO namespace on Redis")?;
    delivery::spawn(io.clone(), state);
    Ok((layer, closer(io, state)))
}
