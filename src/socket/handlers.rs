//! Client → server events (API.md §10): parse → the REST twin's service → ack envelope,
//! or an `error` event when the client sent no ack.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use uuid::Uuid;

use super::{MAX_CHANNEL_ROOMS, auth_user};
use crate::controllers::messages::parse_send;
use crate::error::AppError;
use crate::middleware::validate::{Fields, JsonObject};
use crate::models::message::{MessageContent, SenderView};
use crate::models::parse_id;
use crate::services::auth::AuthUser;
use crate::services::events::channel_room;
use crate::services::{channels, messages};
use crate::state::AppState;

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

/// The payload as a JSON object (`VALIDATION_ERROR` for anything else).
fn object(payload: Result<Value, impl std::fmt::Display>) -> Result<Map<String, Value>, AppError> {
    match payload {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AppError::field("payload", "must be a JSON object")),
    }
}

/// `channelId` of a payload: missing → 400, malformed → 404 like an unknown channel.
fn channel_id(f: &mut Fields) -> Result<Uuid, AppError> {
    match f.string("channelId") {
        Some(raw) => parse_id(&raw).ok_or(AppError::ChannelNotFound),
        None => Err(std::mem::replace(f, Fields::new(JsonObject(Map::new())))
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("channelId", "is required"))),
    }
}

fn user<A: Adapter>(socket: &SocketRef<A>) -> Result<Arc<AuthUser>, AppError> {
    auth_user(socket).ok_or(AppError::AuthRequired)
}

fn sender(user: &AuthUser) -> SenderView {
    SenderView {
        id: user.user.id,
        username: user.user.username.clone(),
        display_name: user.user.display_name.clone(),
        avatar_url: user.user.avatar_url.clone(),
    }
}

async fn join_channel<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = channel_id(&mut f)?;
    channels::load(state, id, user.user.id)
        .await?
        .check_visible()?;
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
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = channel_id(&mut f)?;
    socket.leave(channel_room(id));
    let _ = socket.emit(
        "channel:left",
        &json!({ "channelId": id, "reason": "unsubscribed" }),
    );
    Ok(json!({ "channelId": id }))
}

async fn send_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = channel_id(&mut f)?;
    let send = parse_send(f)?;
    let (message, _) = messages::send(state, &user, id, send).await?;
    Ok(json!({ "message": message }))
}

async fn edit_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = f.required("messageId", Ok::<_, String>);
    let content = f.required("content", |s| MessageContent::parse(&s));
    let (Some(id), Some(content)) = (id, content) else {
        return Err(f
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("content", "is required")));
    };
    f.finish(())?;
    let id = parse_id(&id).ok_or(AppError::MessageNotFound)?;
    let message = messages::edit(state, &user, id, content).await?;
    Ok(json!({ "message": message }))
}

async fn delete_message<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = f.required("messageId", Ok::<_, String>);
    let id = f
        .finish(id)?
        .ok_or_else(|| AppError::field("messageId", "is required"))?;
    let id = parse_id(&id).ok_or(AppError::MessageNotFound)?;
    let channel_id = messages::delete(state, &user, id).await?;
    Ok(json!({ "messageId": id, "channelId": channel_id }))
}

async fn typing<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
    start: bool,
) -> Result<Value, AppError> {
    let user = user(socket)?;
    let mut f = Fields::new(JsonObject(object(payload)?));
    let id = channel_id(&mut f)?;
    if start {
        channels::load(state, id, user.user.id)
            .await?
            .check_member()?;
        state.typing.start(io, socket, id, sender(&user)).await;
    } else {
        state.typing.stop(io, socket, id).await;
    }
    Ok(json!({ "channelId": id }))
}

/// Registers every client event on a connected socket.
pub(super) fn register<A: Adapter>(socket: &SocketRef<A>) {
    socket.on(
        "join-channel",
        async |s: SocketRef<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = join_channel(&s, &st, p).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "leave-channel",
        async |s: SocketRef<A>, TryData(p): TryData<Value>, ack: AckSender<A>, w: WantsAck| {
            let r = leave_channel(&s, p).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "send-message",
        async |s: SocketRef<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = send_message(&s, &st, p).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "edit-message",
        async |s: SocketRef<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = edit_message(&s, &st, p).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "delete-message",
        async |s: SocketRef<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = delete_message(&s, &st, p).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "typing-start",
        async |s: SocketRef<A>,
               io: SocketIo<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = typing(&s, &io, &st, p, true).await;
            respond(&s, ack, &w, r);
        },
    );
    socket.on(
        "typing-stop",
        async |s: SocketRef<A>,
               io: SocketIo<A>,
               State(st): State<AppState>,
               TryData(p): TryData<Value>,
               ack: AckSender<A>,
               w: WantsAck| {
            let r = typing(&s, &io, &st, p, false).await;
            respond(&s, ack, &w, r);
        },
    );
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
