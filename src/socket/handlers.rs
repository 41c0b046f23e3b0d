//! Client → server events (API.md §10): parse → the REST twin's service → ack envelope,
//! or an `error` event when the client sent no ack.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use uuid::Uuid;

use super::{MAX_CHANNEL_ROOMS, SocketState, auth_user};
use crate::error::AppError;
use crate::models::input::{Fields, payload_object};
use crate::models::message::{EditInput, SendInput, SenderView};
use crate::services::auth::AuthUser;
use crate::services::events::{channel_room, conversation_rooms, dm_room};
use crate::services::{channels, messages, reads, typing};

/// Whether the client asked for an ack (then errors go there, else to an `error` event).
pub(super) struct WantsAck(bool);

impl<A: Adapter> FromMessageParts<A> for WantsAck {
    type Error = Infallible;

    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self(ack_id.is_some()))
    }
}

/// Answers one client event: the envelope in the ack, or `error {code, message}`.
fn respond<A: Adapter>(
    socket: &SocketRef<A>,
    ack: AckSender<A>,
    wants: &WantsAck,
    result: Result<Value, AppError>,
) {
    match result {
        Ok(data) => {
            let _ = ack.send(&json!({ "success": true, "data": data }));
        }
        Err(e) => {
            if matches!(e, AppError::Internal(_) | AppError::ServiceUnavailable(_)) {
                tracing::error!(error = %e, socket = %socket.id, "socket event failed");
            }
            if wants.0 {
                let _ = ack.send(&e.body());
            } else {
                let (_, code) = e.status_and_code();
                let _ = socket.emit(
                    "error",
                    &json!({ "code": code, "message": e.public_message() }),
                );
            }
        }
    }
}

fn user<A: Adapter>(socket: &SocketRef<A>) -> Result<Arc<AuthUser>, AppError> {
    auth_user(socket).ok_or(AppError::AuthRequired)
}

/// `channelId` of a payload: missing → 400 (with the other fields' problems), malformed →
/// 404 like an unknown channel.
fn channel_id(f: &mut Fields) -> Result<Option<Uuid>, AppError> {
    f.id("channelId", AppError::ChannelNotFound)
}

/// Parsing recorded the missing id already; this only satisfies the types.
fn present(id: Option<Uuid>, field: &str) -> Result<Uuid, AppError> {
    id.ok_or_else(|| AppError::field(field, "is required"))
}

async fn join_channel<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = payload_object(payload)?;
    let id = channel_id(&mut f)?;
    let id = present(f.finish(id)?, "channelId")?;
    if channels::check_readable(state.services(), &user, id).await? {
        // A conversation's member: the socket is in its room already (put there at connect
        // or when it opened); joining again mends a connect whose lookup failed. It is not
        // one of the socket's channel subscriptions.
        socket.join(dm_room(id));
        let _ = socket.emit("channel:joined", &json!({ "channelId": id }));
        return Ok(json!({ "channelId": id }));
    }
    let room = channel_room(id);
    let rooms = socket.rooms();
    if !rooms.iter().any(|r| *r == room)
        && rooms.iter().filter(|r| r.starts_with("channel:")).count() >= MAX_CHANNEL_ROOMS
    {
        return Err(AppError::field(
            "channelId",
            format!("a socket may follow at most {MAX_CHANNEL_ROOMS} channels"),
        ));
    }
    socket.join(room);
    let _ = socket.emit("channel:joined", &json!({ "channelId": id }));
    Ok(json!({ "channelId": id }))
}

async fn leave_channel<A: Adapter>(
    socket: &SocketRef<A>,
    _: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    user(socket)?;
    let mut f = payload_object(payload)?;
    let id = channel_id(&mut f)?;
    let id = present(f.finish(id)?, "channelId")?;
    // A channel's subscription, or the socket's place in a conversation's room (until the
    // next connect).
    socket.leave(conversation_rooms(id));
    let _ = socket.emit(
        "channel:left",
        &json!({ "channelId": id, "reason": "unsubscribed" }),
    );
    Ok(json!({ "channelId": id }))
}

async fn send_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = payload_object(payload)?;
    let id = channel_id(&mut f)?;
    let send = SendInput::from_fields(f)?;
    let sent = messages::send(state.services(), &user, present(id, "channelId")?, send).await?;
    Ok(json!({ "message": sent.message }))
}

async fn edit_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = payload_object(payload)?;
    let id = f.id("messageId", AppError::MessageNotFound)?;
    let edit = EditInput::from_fields(f)?;
    let id = present(id, "messageId")?;
    let message = messages::edit(state.services(), &user, id, edit.content).await?;
    Ok(json!({ "message": message }))
}

async fn delete_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = payload_object(payload)?;
    let id = f.id("messageId", AppError::MessageNotFound)?;
    let id = present(f.finish(id)?, "messageId")?;
    let channel_id = messages::delete(state.services(), &user, id).await?;
    Ok(json!({ "messageId": id, "channelId": channel_id }))
}

/// `{<field>, messageId?}` of a mark: what to mark (a malformed id is `malformed`, as for
/// an unknown one) and where to move the marker.
fn mark_payload(
    payload: Result<Value, impl std::fmt::Display>,
    field: &str,
    malformed: AppError,
) -> Result<(Uuid, Option<Uuid>), AppError> {
    let mut f = payload_object(payload)?;
    let id = f.id(field, malformed)?;
    let to = f.opt_id("messageId");
    let (id, to) = f.finish((id, to))?;
    Ok((present(id, field)?, to))
}

async fn mark_read<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let (id, to) = mark_payload(payload, "channelId", AppError::ChannelNotFound)?;
    Ok(json!(
        reads::mark_channel(state.services(), &user, id, to).await?
    ))
}

async fn mark_thread_read<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let (id, to) = mark_payload(payload, "threadId", AppError::MessageNotFound)?;
    Ok(json!(
        reads::mark_thread(state.services(), &user, id, to).await?
    ))
}

async fn typing<A: Adapter>(
    socket: &SocketRef<A>,
    state: &SocketState,
    payload: Result<Value, impl std::fmt::Display>,
    start: bool,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = payload_object(payload)?;
    let id = channel_id(&mut f)?;
    let id = present(f.finish(id)?, "channelId")?;
    let sid = socket.id.to_string();
    if start {
        typing::check(state.services(), &user, id).await?;
        state
            .typing()
            .start(state.services(), &sid, id, SenderView::from(&user.user));
    } else {
        state.typing().stop(state.services(), &sid, id);
    }
    Ok(json!({ "channelId": id }))
}

/// Registers every client event on a connected socket: each one is parsed and answered
/// the same way (the envelope in the ack, or an `error` event).
pub(super) fn register<A: Adapter>(socket: &SocketRef<A>) {
    macro_rules! on {
        ($event:literal, $handler:ident $(, $extra:expr)?) => {
            socket.on(
                $event,
                async |s: SocketRef<A>,
                       State(st): State<SocketState>,
                       TryData(p): TryData<Value>,
                       ack: AckSender<A>,
                       w: WantsAck| {
                    let r = $handler(&s, &st, p $(, $extra)?).await;
                    respond(&s, ack, &w, r);
                },
            )
        };
    }
    on!("join-channel", join_channel);
    on!("leave-channel", leave_channel);
    on!("send-message", send_message);
    on!("edit-message", edit_message);
    on!("delete-message", delete_message);
    on!("mark-read", mark_read);
    on!("mark-thread-read", mark_thread_read);
    on!("typing-start", typing, true);
    on!("typing-stop", typing, false);
    socket.on_fallback(
        async |s: SocketRef<A>,
               socketioxide::extract::Event(name): socketioxide::extract::Event,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = Err(AppError::field("event", format!("unknown event {name:?}")));
            respond(&s, ack, &w, r);
        },
    );
}
