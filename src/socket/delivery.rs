//! Events → sockets: the only place the server emits to a room. One task per node reads the
//! events bus and makes one broadcast per event (the payload is serialised once for all
//! sockets of the room), so clients hear everything in the order it was emitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use uuid::Uuid;

use crate::services::Services;
use crate::services::events::{
    Audience, EVERYONE_ROOM, Event, LeftReason, channel_room, conversation_rooms, dm_room,
    token_room, user_room,
};
use crate::store::Store;

/// Most new messages published together (see [`spawn`]); under `join_all`'s short-list
/// limit, so the futures are polled in order.
const PUBLISH_TOGETHER: usize = 16;

/// Starts the delivery task.
///
/// With Redis, a broadcast waits for its publish before it reaches this node's sockets, so
/// new messages one after another each paid a Redis round trip, and every socket's writer
/// ran in between and sent one frame per write. New messages already queued behind one
/// another are therefore published together (pipelined on one connection, answered in
/// order): their local broadcasts follow one another, in order, and a socket's writer finds
/// several frames to send at once. Any other event is delivered alone, after them.
pub(super) fn spawn<A: Adapter>(io: SocketIo<A>, services: &Services) {
    let mut events = services.events.subscribe();
    let redis = services.backends.redis.clone();
    let bus = services.events.clone();
    let kinds = Kinds::new(services.store.clone());
    tokio::spawn(async move {
        let mut next = None;
        loop {
            let event = match next.take() {
                Some(event) => event,
                None => match events.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        lagged(missed);
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            let Some(redis) = redis.as_ref().filter(|_| is_new_message(&event)) else {
                deliver(&io, &kinds, &event).await;
                continue;
            };
            let mut batch = vec![event];
            while batch.len() < PUBLISH_TOGETHER {
                match events.try_recv() {
                    Ok(event) if is_new_message(&event) => batch.push(event),
                    Ok(other) => {
                        next = Some(other);
                        break;
                    }
                    Err(TryRecvError::Lagged(missed)) => lagged(missed),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            futures_util::future::join_all(batch.iter().map(|event| async {
                let Event::NewMessage(m) = &**event else {
                    return;
                };
                // Published with a record of it, so that a retry of the send through
                // another node does not announce it again
                // (services::messages::recover_announcement); then the send may be answered.
                super::redis_driver::ANNOUNCING
                    .scope(redis.announced_key(m.id), deliver(&io, &kinds, event))
                    .await;
                bus.published(m.id);
            }))
            .await;
        }
    });
}

fn is_new_message(event: &Event) -> bool {
    matches!(event, Event::NewMessage(_))
}

fn lagged(missed: u64) {
    tracing::error!(
        missed,
        "socket delivery fell behind the events bus; events were dropped"
    );
}

async fn deliver<A: Adapter>(io: &SocketIo<A>, kinds: &Kinds, event: &Event) {
    // `io.to`/`io.emit` panic once the server closed its namespace (at shutdown); `of` asks.
    let Some(io) = io.of("/") else {
        return;
    };
    let name = event.name();
    let result = match event {
        // Messages (the bulk of the traffic) are serialised straight from their view, once,
        // without an intermediate JSON tree.
        Event::NewMessage(m) | Event::MessageEdited(m) => {
            send(io.to(kinds.rooms(m.channel_id)), name, m).await
        }
        Event::MessageDeleted { channel_id, .. }
        | Event::ThreadUpdated { channel_id, .. }
        | Event::PinChanged { channel_id, .. }
        | Event::ReactionChanged { channel_id, .. } => {
            send(io.to(kinds.rooms(*channel_id)), name, &event.payload()).await
        }
        Event::MemberAdded { user_id, .. }
        | Event::ChannelRead { user_id, .. }
        | Event::ThreadRead { user_id, .. } => {
            send(io.to(user_room(*user_id)), name, &event.payload()).await
        }
        Event::Mentioned { user_ids, .. } => {
            let rooms: Vec<String> = user_ids.iter().map(|u| user_room(*u)).collect();
            send(io.to(rooms), name, &event.payload()).await
        }
        Event::DmOpened { dm, member_ids } => {
            // Into the room first, on every node, so the members' sockets hear its messages
            // from now on without a `join-channel`; then the announcement.
            let rooms: Vec<String> = member_ids.iter().map(|u| user_room(*u)).collect();
            if let Err(e) = io.clone().to(rooms.clone()).join(dm_room(dm.id)).await {
                tracing::warn!(error = %e, "could not put sockets into a conversation's room");
            }
            send(io.to(rooms), name, &event.payload()).await
        }
        Event::MembersLeft {
            channel_id,
            user_ids,
            reason,
        } => {
            let room = channel_room(*channel_id);
            let mut rooms: Vec<String> = user_ids.iter().map(|u| user_room(*u)).collect();
            if *reason == LeftReason::Deleted {
                // Subscribers who were not members (readers of a public channel) hear it too.
                rooms.push(room.clone());
            }
            // One broadcast to all the rooms reaches each socket once; then they leave the
            // room, before this task delivers anything else, so nothing more reaches them.
            let result = send(io.clone().to(rooms.clone()), name, &event.payload()).await;
            if let Err(e) = io.to(rooms).leave(room).await {
                tracing::warn!(error = %e, "could not take sockets out of a channel's room");
            }
            result
        }
        Event::UserOnline { audience, .. } | Event::UserOffline { audience, .. } => {
            match audience {
                Audience::Everyone => send(io.to(EVERYONE_ROOM), name, &event.payload()).await,
                Audience::Users(ids) => {
                    let rooms: Vec<_> = ids.iter().map(|u| user_room(*u)).collect();
                    send(io.to(rooms), name, &event.payload()).await
                }
            }
        }
        Event::Typing {
            channel_id, user, ..
        } => {
            let op = io.to(kinds.rooms(*channel_id)).except(user_room(user.id));
            send(op, name, &event.payload()).await
        }
        Event::TokenRevoked { jti } => {
            // Every socket opened with the token is in its room, on whichever node.
            let result = send(io.clone().to(token_room(*jti)), name, &event.payload()).await;
            if let Err(e) = io.to(token_room(*jti)).disconnect().await {
                tracing::warn!(error = %e, "could not disconnect the sockets of a revoked token");
            }
            result
        }
    };
    if let Err(e) = result {
        report(&e, name);
    }
}

/// Emits to the sockets `op` selects, counting them in the metrics when those are on (the
/// count walks the rooms' local sockets once more, so it is made only then).
async fn send<A: Adapter, T: serde::Serialize + ?Sized>(
    op: BroadcastOperators<A>,
    name: &'static str,
    data: &T,
) -> Result<(), socketioxide::BroadcastError> {
    if crate::metrics::enabled() {
        crate::metrics::delivered(name, op.clone().sockets().len());
    }
    op.emit(name, data).await
}

/// A broadcast reached some sockets but not all: a socket that was closing is expected
/// (debug); one whose buffer was full lost an event (warn).
fn report(e: &socketioxide::BroadcastError, event: &str) {
    let text = e.to_string();
    if text.contains("Full") {
        tracing::warn!(error = %text, event, "a slow socket missed an event (send buffer full)");
    } else {
        tracing::debug!(error = %text, event, "broadcast skipped closed sockets");
    }
}

/// Most conversations whose kind is remembered; past it the memo starts again.
const KINDS_KEPT: usize = 100_000;

/// Whether each conversation is a direct one, as the database said: an id never changes
/// kind, so the answer is kept. A conversation's events go to its one room once its kind is
/// known, and to both of its possible rooms ([`conversation_rooms`]) until then — the first
/// event of a conversation on this node asks, in the background, so no delivery waits for
/// the database. One room matters for cost: socketioxide keeps a set of the sockets already
/// reached whenever a broadcast names more than one room, a hash insert per socket
/// (docs/performance.md, "Item 2 against the build the issue started from").
#[derive(Clone)]
struct Kinds {
    /// `Some(is_dm)` once known; `None` while being asked.
    known: Arc<Mutex<HashMap<Uuid, Option<bool>>>>,
    store: Arc<dyn Store>,
}

impl Kinds {
    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            known: Arc::default(),
            store,
        }
    }

    /// The rooms that hear conversation `id`'s events.
    fn rooms(&self, id: Uuid) -> Vec<String> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        match known.get(&id) {
            Some(Some(true)) => return vec![dm_room(id)],
            Some(Some(false)) => return vec![channel_room(id)],
            Some(None) => {}
            None => {
                if known.len() >= KINDS_KEPT {
                    known.clear();
                }
                known.insert(id, None);
                self.ask(id);
            }
        }
        conversation_rooms(id).into()
    }

    /// Looks conversation `id` up; a failed or empty answer is forgotten, so a later event
    /// asks again.
    fn ask(&self, id: Uuid) {
        let this = self.clone();
        tokio::spawn(async move {
            let kind = match this.store.fetch_channel(id, Uuid::nil()).await {
                Ok(Some(row)) => Some(row.is_dm()),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "could not look up a conversation's kind");
                    None
                }
            };
            let mut known = this.known.lock().unwrap_or_else(PoisonError::into_inner);
            match kind {
                Some(is_dm) => known.insert(id, Some(is_dm)),
                None => known.remove(&id),
            };
        });
    }
}
