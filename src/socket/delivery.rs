//! Committed changes → sockets. One task per node reads the events bus and makes one
//! broadcast per event (the payload is serialised once for all sockets of the room).

use chrono::{DateTime, Utc};
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::config::PresenceBroadcast;
use crate::models::timestamp;
use crate::services::events::{Event, channel_room, token_room, user_room};
use crate::state::AppState;

/// Starts the delivery task.
pub(super) fn spawn<A: Adapter>(io: SocketIo<A>, state: &AppState) {
    let mut events = state.events.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => deliver(&io, &event).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::error!(
                        missed,
                        "socket delivery fell behind the events bus; events were dropped"
                    );
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

async fn deliver<A: Adapter>(io: &SocketIo<A>, event: &Event) {
    // `io.to`/`io.emit` panic once the server closed its namespace (at shutdown); `of` asks.
    let Some(io) = io.of("/") else {
        return;
    };
    let name = event.name();
    let result = match event {
        // Messages (the bulk of the traffic) are serialised straight from their view, once,
        // without an intermediate JSON tree.
        Event::NewMessage(m) | Event::MessageEdited(m) => {
            io.to(channel_room(m.channel_id)).emit(name, m).await
        }
        Event::MessageDeleted { channel_id, .. } => {
            io.to(channel_room(*channel_id))
                .emit(name, &event.payload())
                .await
        }
        Event::MemberJoined { .. } => Ok(()),
        Event::MemberAdded { user_id, .. } => {
            io.to(user_room(*user_id))
                .emit(name, &event.payload())
                .await
        }
        Event::MembersLeft {
            channel_id,
            user_ids,
            reason,
        } => {
            let room = channel_room(*channel_id);
            let mut rooms: Vec<String> = user_ids.iter().map(|u| user_room(*u)).collect();
            if reason.as_str() == "deleted" {
                // Subscribers who were not members (readers of a public channel) hear it too.
                rooms.push(room.clone());
            }
            // Out of the room first, so nothing more from it reaches them.
            let _ = io.clone().to(rooms.clone()).leave(room).await;
            io.to(rooms).emit(name, &event.payload()).await
        }
        Event::TokenRevoked { jti } => {
            // Every socket opened with the token is in its room, on whichever node.
            let result = io
                .clone()
                .to(token_room(*jti))
                .emit(name, &event.payload())
                .await;
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

/// `user:online {userId}` / `user:offline {userId, lastSeen}` to whom `PRESENCE_BROADCAST`
/// names.
pub(super) async fn presence_changed<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
    user: Uuid,
    online: bool,
    last_seen: Option<DateTime<Utc>>,
) {
    let (name, payload) = if online {
        ("user:online", json!({ "userId": user }))
    } else {
        (
            "user:offline",
            json!({ "userId": user, "lastSeen": last_seen.map(timestamp) }),
        )
    };
    let Some(io) = io.of("/") else {
        return;
    };
    let result = match state.config.presence_broadcast {
        PresenceBroadcast::None => Ok(()),
        PresenceBroadcast::All => io.emit(name, &payload).await,
        PresenceBroadcast::Shared => match state.store.list_co_member_ids(user).await {
            Ok(ids) if ids.is_empty() => Ok(()),
            Ok(ids) => {
                io.to(ids.into_iter().map(user_room).collect::<Vec<_>>())
                    .emit(name, &payload)
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "presence: could not list who shares a channel");
                Ok(())
            }
        },
    };
    if let Err(e) = result {
        report(&e, name);
    }
}

/// A broadcast reached some sockets but not all: a socket that was closing is expected
/// (debug); one whose buffer was full lost an event (warn).
pub(super) fn report(e: &socketioxide::BroadcastError, event: &str) {
    let text = e.to_string();
    if text.contains("Full") {
        tracing::warn!(error = %text, event, "a slow socket missed an event (send buffer full)");
    } else {
        tracing::debug!(error = %text, event, "broadcast skipped closed sockets");
    }
}
