//! Socket.IO v4 (protocol 5) on `/socket.io`, namespace `/` (API.md §10).
//!
//! Owns the transport: handshake authentication, rooms, acks, the socket layer's own state
//! ([`SocketState`]: live sockets, typing timers) and shutdown. A thin twin of the REST
//! controllers: each client event parses its payload with the same model input type, calls
//! the same service function and answers with the REST envelope in the ack (or an `error`
//! event when the client asked for no ack). Everything clients hear comes from the events
//! bus ([`crate::services::events`]): one task turns each event into one broadcast.
//!
//! One node uses socketioxide's local adapter; with `REDIS_URL` the Redis adapter carries
//! every broadcast (and room change) to the other nodes, and presence is shared through the
//! presence backend.

mod delivery;
mod handlers;
mod redis_driver;
mod typing;

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
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use redis_driver::ResilientDriver;

use crate::error::AppError;
use crate::middleware::auth::token_from_headers;
use crate::middleware::rate_limit::request_ip;
use crate::services::Services;
use crate::services::auth::{self, AuthUser};
use crate::services::dms;
use crate::services::events::{EVERYONE_ROOM, dm_room, token_room, user_room};
use crate::services::presence::{self, Departure};

pub use typing::Typing;

/// This node's sockets that are not yet marked gone, so that shutdown can wait for the
/// disconnect handlers still storing `lastSeen` before the database pool closes.
#[derive(Debug, Default)]
struct LiveSockets(std::sync::atomic::AtomicUsize);

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

/// The socket layer's state (socketioxide's state; an `Arc` inside): the services every
/// handler calls, and what only sockets have — live sockets and typing timers.
#[derive(Clone)]
pub(crate) struct SocketState(Arc<Parts>);

struct Parts {
    services: Services,
    live: LiveSockets,
    typing: Typing,
    /// Set once shutdown has begun: a socket whose connect handler is still running then
    /// closes itself instead of being counted open. A lock, not a flag, so that a socket
    /// admitted before shutdown is certainly seen admitted by the closer that follows.
    closing: std::sync::Mutex<bool>,
}

impl SocketState {
    fn new(services: &Services, typing_timeout: Duration) -> Self {
        Self(Arc::new(Parts {
            services: services.clone(),
            live: LiveSockets::default(),
            typing: Typing::new(typing_timeout),
            closing: std::sync::Mutex::new(false),
        }))
    }

    /// Marks `socket` open (its presence recorded, its disconnect handled by
    /// [`socket_gone`]) unless it has already disconnected or this node is shutting down.
    fn admit<A: Adapter>(&self, socket: &SocketRef<A>) -> bool {
        let closing = self.0.closing.lock().unwrap_or_else(|e| e.into_inner());
        if *closing || !socket.connected() {
            return false;
        }
        socket.extensions.insert(Opened);
        true
    }

    /// From now on no socket is admitted; every admitted one is marked [`Opened`].
    fn close_admission(&self) {
        *self.0.closing.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    pub(crate) fn services(&self) -> &Services {
        &self.0.services
    }

    pub(crate) fn typing(&self) -> &Typing {
        &self.0.typing
    }
}

/// Set on a socket once its connect handler has recorded its presence: from then on its
/// departure is [`socket_gone`]'s to record (before, the connect handler's own).
#[derive(Clone, Copy)]
struct Opened;

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

/// How long a handshake waits for a token check that cannot run (database or Redis gone)
/// before it is refused with `SERVICE_UNAVAILABLE`.
const HANDSHAKE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Connect middleware: no token, or a bad one, ends in `connect_error` with the code.
async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    socketioxide::extract::State(state): socketioxide::extract::State<SocketState>,
) -> Result<(), ConnectRefused> {
    let auth = auth.ok();
    let token = handshake_token(&socket, auth.as_ref()).ok_or(ConnectRefused("AUTH_REQUIRED"))?;
    // A refusal is final for the official clients (they do not reconnect after a
    // `connect_error` from the server), so a check that cannot run now — the database or
    // Redis briefly gone — is tried again for a while before the handshake is refused.
    let deadline = tokio::time::Instant::now() + HANDSHAKE_PATIENCE;
    let mut pause = std::time::Duration::from_millis(100);
    let checked = loop {
        match auth::authenticate(state.services(), &token).await {
            Err(AppError::ServiceUnavailable(_))
                if tokio::time::Instant::now() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            other => break other,
        }
    };
    match checked {
        Ok(mut user) => {
            let parts = socket.req_parts();
            user.ip = request_ip(
                &parts.extensions,
                &parts.headers,
                state.services().limits.trusted_proxies(),
            );
            // Its rooms before the client hears it is connected (the connect handler runs
            // after the CONNECT packet is sent): a `dm:opened` or a message to one of its
            // conversations emitted right after the handshake reaches it. The user's
            // direct conversations reach every socket of theirs without a `join-channel`;
            // one opened from now on puts this socket in its room through the user's room.
            let user_id = user.user.id;
            socket.join([
                user_room(user_id),
                token_room(user.token.jti),
                EVERYONE_ROOM.to_owned(),
            ]);
            match dms::ids(state.services(), user_id).await {
                Ok(ids) => socket.join(ids.into_iter().map(dm_room).collect::<Vec<_>>()),
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not put a socket into its conversations' rooms; it hears them after join-channel"
                ),
            }
            socket.extensions.insert(Arc::new(user));
            // Before the client hears it is connected, so an event it emits at once is
            // never dropped for want of a handler.
            handlers::register(&socket);
            // Counted before the client hears it is connected, so that shutdown waits for
            // its connect handler (which marks it gone if shutdown came first).
            state.0.live.add();
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
    socketioxide::extract::State(state): socketioxide::extract::State<SocketState>,
) {
    let Some(user) = auth_user(&socket) else {
        let _ = socket.disconnect();
        return;
    };
    let user_id = user.user.id;
    presence::socket_opened(state.services(), user_id, &socket.id.to_string()).await;
    // Registered before admission: a disconnect from here on runs it, and it acts only on
    // an admitted socket.
    socket.on_disconnect({
        let state = state.clone();
        async move |socket: SocketRef<A>, _reason: DisconnectReason| {
            socket_gone(&state, &socket, user_id, Departure::Disconnected).await;
        }
    });
    if !state.admit(&socket) {
        // Gone while presence was being recorded, or this node is shutting down: the
        // closer and the disconnect handler passed it by, so its departure is stored here
        // (with no grace: it never counted as open).
        mark_gone(&state, &socket, user_id, Departure::Shutdown).await;
    }
}

/// An admitted socket of `user_id` is gone (its disconnect handler, or shutdown).
async fn socket_gone<A: Adapter>(
    state: &SocketState,
    socket: &SocketRef<A>,
    user_id: uuid::Uuid,
    how: Departure,
) {
    // A socket not yet admitted is its connect handler's to mark gone.
    if socket.extensions.get::<Opened>().is_some() {
        mark_gone(state, socket, user_id, how).await;
    }
}

/// A socket of `user_id` is gone: its typing states end, and presence hears of it. The
/// second call for a socket (its disconnect handler and shutdown may race) does nothing.
async fn mark_gone<A: Adapter>(
    state: &SocketState,
    socket: &SocketRef<A>,
    user_id: uuid::Uuid,
    how: Departure,
) {
    if socket.extensions.insert(Gone).is_some() {
        return;
    }
    // Out of every room first: socketioxide keeps a closing socket in its rooms until this
    // handler ends, and nothing may reach it after its disconnect — not even the
    // user:offline this very handler causes.
    socket.leave_all();
    let sid = socket.id.to_string();
    state.typing().stop_all(state.services(), &sid);
    presence::socket_closed(state.services(), user_id, &sid, how).await;
    state.0.live.done();
}

/// Closes every socket of this node (at shutdown).
pub type Closer = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// This node's open sockets and the rooms they are in, counted when asked (metrics).
pub type Census =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = (usize, usize)> + Send>> + Send + Sync>;

fn census<A: Adapter>(io: SocketIo<A>) -> Census {
    Arc::new(move || {
        let io = io.clone();
        Box::pin(async move {
            let Some(root) = io.of("/") else {
                return (0, 0);
            };
            let sockets = root.clone().local().sockets().len();
            let rooms = root.local().rooms().await.map_or(0, |r| r.len());
            (sockets, rooms)
        })
    })
}

fn builder(state: &SocketState) -> socketioxide::SocketIoBuilder {
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
fn closer<A: Adapter>(io: SocketIo<A>, state: &SocketState) -> Closer {
    let state = state.clone();
    Box::new(move || {
        Box::pin(async move {
            // Sockets still connecting close themselves from here on (see `on_connect`).
            state.close_admission();
            if let Some(root) = io.of("/") {
                // All at once, so that their lastSeen writes share the writer's batches.
                let sockets = root.local().sockets();
                futures_util::future::join_all(sockets.iter().filter_map(|socket| {
                    let user = auth_user(socket)?;
                    // No grace: this node will not be here to announce it later.
                    Some(socket_gone(
                        &state,
                        socket,
                        user.user.id,
                        Departure::Shutdown,
                    ))
                }))
                .await;
            }
            // Handlers of sockets that closed just before are still storing lastSeen.
            state.0.live.drained(Duration::from_secs(5)).await;
            io.close().await;
        })
    })
}

/// The Socket.IO layer of a single node, with delivery of committed events started.
#[must_use]
pub fn build_local(
    services: &Services,
    typing_timeout: Duration,
) -> (SocketIoLayer, Closer, Census) {
    let state = SocketState::new(services, typing_timeout);
    let (layer, io) = builder(&state).build_layer();
    io.ns("/", on_connect.with(authenticate));
    delivery::spawn(io.clone(), services);
    (layer, closer(io.clone(), &state), census(io))
}

/// The Socket.IO layer of one node of many: broadcasts go through Redis (RESP3, channels
/// under `REDIS_PREFIX`), with delivery of committed events started.
///
/// # Errors
/// Redis cannot be reached or does not speak RESP3 (Redis 7 or later).
pub async fn build_redis(
    services: &Services,
    typing_timeout: Duration,
    url: &str,
    prefix: &str,
) -> anyhow::Result<(
    SocketIoLayer<CustomRedisAdapter<socketioxide::adapter::Emitter, ResilientDriver>>,
    Closer,
    Census,
)> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let client =
        redis::Client::open(format!("{url}{sep}protocol=resp3")).context("invalid REDIS_URL")?;
    let config = RedisAdapterConfig::new().with_prefix(format!("{prefix}socket.io"));
    let driver = ResilientDriver::connect(client)
        .await
        .context("cannot connect the Socket.IO Redis adapter (Redis 7+ with RESP3 is needed)")?;
    let adapter = RedisAdapterCtr::new_with_driver(driver, config);
    let state = SocketState::new(services, typing_timeout);
    let (layer, io) = builder(&state)
        .with_adapter::<CustomRedisAdapter<_, ResilientDriver>>(adapter)
        .build_layer();
    io.ns("/", on_connect.with(authenticate))
        .await
        .context("cannot start the Socket.IO namespace on Redis")?;
    delivery::spawn(io.clone(), services);
    Ok((layer, closer(io.clone(), &state), census(io)))
}
