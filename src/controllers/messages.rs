//! `/api/channels/{id}/messages` and `/api/messages/{id}` (API.md §6).

use crate::controllers::openapi;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channels::{channel_id, query};
use super::{envelope, envelope_json, ok};
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::input::Fields;
use crate::models::message::{Anchor, EditInput, MessageView, SendInput};
use crate::models::page::{CursorKind, decode_cursor, decode_id_cursor, parse_limit};
use crate::models::parse_id;
use crate::models::reaction::Emoji;
use crate::services::auth::AuthUser;
use crate::services::messages::{self, PageSpec};
use crate::services::reactions;
use crate::state::AppState;

/// Query of the history route.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
    cursor: Option<String>,
    threads: Option<String>,
}

pub(crate) fn message_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, AppError> {
    path.ok()
        .and_then(|Path(id)| parse_id(&id))
        .ok_or(AppError::MessageNotFound)
}

/// Which page: `cursor` wins over `before`/`after` (both of those → 400) and carries
/// whether its listing is collapsed; otherwise `threads` (`expanded`, the default, or
/// `collapsed`) says.
///
/// # Errors
/// `VALIDATION_ERROR` on the field at fault.
fn parse_page(q: &HistoryQuery) -> Result<PageSpec, AppError> {
    let limit = parse_limit(q.limit.as_deref())?;
    let collapsed = match q.threads.as_deref().filter(|t| !t.is_empty()) {
        None | Some("expanded") => false,
        Some("collapsed") => true,
        Some(_) => {
            return Err(AppError::field("threads", "must be expanded or collapsed"));
        }
    };
    if let Some(cursor) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
        let (anchor, collapsed) =
            messages::parse_history_cursor(&decode_cursor(CursorKind::Messages, cursor)?)?;
        return Ok(PageSpec {
            anchor,
            limit,
            collapsed,
        });
    }
    let anchor = parse_anchor(q.before.as_deref(), q.after.as_deref())?;
    Ok(PageSpec {
        anchor,
        limit,
        collapsed,
    })
}

/// Where a page starts without a cursor: `before` or `after` (both → 400), else the newest.
fn parse_anchor(before: Option<&str>, after: Option<&str>) -> Result<Anchor, AppError> {
    let id = |field: &str, raw: &str| {
        parse_id(raw).ok_or_else(|| AppError::field(field, "must be a message id"))
    };
    match (
        before.filter(|b| !b.is_empty()),
        after.filter(|a| !a.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(AppError::field("before", "give before or after, not both")),
        (Some(b), None) => Ok(Anchor::Before(id("before", b)?)),
        (None, Some(a)) => Ok(Anchor::After(id("after", a)?)),
        (None, None) => Ok(Anchor::Latest),
    }
}

/// `GET /api/channels/{id}/messages?limit=&before=&after=&cursor=`.
#[utoipa::path(
    get,
    path = "/channels/{id}/messages",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Channel id"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("before" = Option<Uuid>, Query, description = "Messages older than this one"),
        ("after" = Option<Uuid>, Query, description = "Messages newer than this one (not with before)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page; wins over before/after and threads"),
        ("threads" = Option<String>, Query, description = "`expanded` (default): every message; `collapsed`: roots and plain messages only, each with its thread's counts"),
    ),
    responses(
        (status = 200, description = "A page of history, oldest first", body = openapi::Envelope<openapi::MessagePage>),
        (status = 403, description = "NOT_CHANNEL_MEMBER or PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let id = channel_id(id)?;
    let spec = parse_page(&query(q)?)?;
    Ok(envelope_json(
        &messages::history_json(&state, &auth, id, spec).await?,
    ))
}

/// `POST /api/channels/{id}/messages`: 201 with the new message, or 200 with the first one
/// when the nonce was seen before.
#[utoipa::path(
    post,
    path = "/channels/{id}/messages",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = openapi::SendMessageBody,
    responses(
        (status = 201, description = "Sent", body = openapi::Envelope<openapi::MessageData>),
        (status = 200, description = "The message first sent with this nonce", body = openapi::Envelope<openapi::MessageData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER or PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND or MESSAGE_NOT_FOUND (parentId)", body = openapi::ErrorEnvelope),
    )
)]
pub async fn send_message(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: JsonObject,
) -> Result<Response, AppError> {
    let id = channel_id(id)?;
    let send = SendInput::from_fields(Fields::new(body.0))?;
    let sent = messages::send(&state, &auth, id, send).await?;
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        envelope(MessageData {
            message: sent.message,
        }),
    )
        .into_response();
    // The rate-limit middleware weighs the message budget against the others.
    if let Some(rate) = sent.rate {
        response.extensions_mut().insert(rate);
    }
    Ok(response)
}

/// `data` of a send.
#[derive(Debug, serde::Serialize)]
pub struct MessageData {
    message: MessageView,
}

/// `PATCH /api/messages/{id}` with `{content}` (the sender only).
#[utoipa::path(
    patch,
    path = "/messages/{id}",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = openapi::EditMessageBody,
    responses(
        (status = 200, description = "Edited", body = openapi::Envelope<openapi::MessageData>),
        (status = 403, description = "NOT_MESSAGE_OWNER", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn edit_message(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: JsonObject,
) -> Result<Json<Value>, AppError> {
    let id = message_id(id)?;
    let edit = EditInput::from_fields(Fields::new(body.0))?;
    let message = messages::edit(&state, &auth, id, edit.content).await?;
    Ok(ok(json!({ "message": message })))
}

/// `DELETE /api/messages/{id}` (the sender, or the channel's owner or an admin).
#[utoipa::path(
    delete,
    path = "/messages/{id}",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "Deleted", body = openapi::Envelope<openapi::MessageIdData>),
        (status = 403, description = "NOT_MESSAGE_OWNER, or not the channel's owner or an admin", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn delete_message(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = message_id(id)?;
    let channel_id = messages::delete(&state, &auth, id).await?;
    Ok(ok(json!({ "messageId": id, "channelId": channel_id })))
}

/// `PUT /api/messages/{id}/pin`.
#[utoipa::path(
    put,
    path = "/messages/{id}/pin",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "Pinned (already pinned: unchanged)", body = openapi::Envelope<openapi::MessageData>),
        (status = 403, description = "PRIVATE_CHANNEL, NOT_CHANNEL_MEMBER or INSUFFICIENT_ROLE (a channel's owner or admins pin; any member of a conversation)", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
        (status = 409, description = "LIMIT_REACHED: 100 pinned already", body = openapi::ErrorEnvelope),
    )
)]
pub async fn pin_message(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let message = messages::set_pin(&state, &auth, message_id(id)?, true).await?;
    Ok(ok(json!({ "message": message })))
}

/// `DELETE /api/messages/{id}/pin`.
#[utoipa::path(
    delete,
    path = "/messages/{id}/pin",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "Unpinned (not pinned: unchanged)", body = openapi::Envelope<openapi::MessageData>),
        (status = 403, description = "PRIVATE_CHANNEL, NOT_CHANNEL_MEMBER or INSUFFICIENT_ROLE", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn unpin_message(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let message = messages::set_pin(&state, &auth, message_id(id)?, false).await?;
    Ok(ok(json!({ "message": message })))
}

/// `GET /api/messages/{id}/history?limit&cursor`.
#[utoipa::path(
    get,
    path = "/messages/{id}/history",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Message id"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this message's history"),
    ),
    responses(
        (status = 200, description = "Its versions, oldest first: the original, each edit's, the current content last", body = openapi::Envelope<openapi::VersionPage>),
        (status = 400, description = "VALIDATION_ERROR on limit or cursor", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn message_history(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<super::PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let id = message_id(id)?;
    let (after, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Versions, c))?;
    let page = messages::versions(&state, &auth, id, after, limit).await?;
    Ok(ok(json!({
        "versions": page.versions,
        "pagination": page.pagination,
    })))
}

/// `GET /api/channels/{id}/pins`.
#[utoipa::path(
    get,
    path = "/channels/{id}/pins",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel or conversation id")),
    responses(
        (status = 200, description = "Its pinned messages, the most recently pinned first (at most 100)", body = openapi::Envelope<openapi::MessageList>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_pins(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let messages = messages::pins(&state, &auth, channel_id(id)?).await?;
    Ok(ok(json!({ "messages": messages })))
}

/// The message id and emoji of a reaction's path; a malformed id → `MESSAGE_NOT_FOUND`, an
/// emoji of neither form → `VALIDATION_ERROR`.
fn reaction_path(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Uuid, Emoji), AppError> {
    let (id, emoji) = match path {
        Ok(Path(parts)) => parts,
        // Bytes that decode to no text: the emoji is at fault unless the id is.
        Err(PathRejection::FailedToDeserializePathParams(e))
            if matches!(
                e.kind(),
                axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } if key == "emoji"
            ) =>
        {
            return Err(AppError::field("emoji", "is not text"));
        }
        Err(_) => return Err(AppError::MessageNotFound),
    };
    let id = parse_id(&id).ok_or(AppError::MessageNotFound)?;
    let emoji = Emoji::parse(&emoji).map_err(|m| AppError::field("emoji", m))?;
    Ok((id, emoji))
}

/// `PUT /api/messages/{id}/reactions/{emoji}`.
#[utoipa::path(
    put,
    path = "/messages/{id}/reactions/{emoji}",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Message id"),
        ("emoji" = String, Path, description = "One Unicode emoji, or a :shortcode: of 1–32 of a-z 0-9 _ + - (percent-encoded)"),
    ),
    responses(
        (status = 200, description = "Reacted (already: unchanged); the message with its reactions", body = openapi::Envelope<openapi::MessageData>),
        (status = 400, description = "VALIDATION_ERROR on emoji: neither form", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL or NOT_CHANNEL_MEMBER", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
        (status = 409, description = "LIMIT_REACHED: 20 different emoji on the message already", body = openapi::ErrorEnvelope),
    )
)]
pub async fn add_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let (id, emoji) = reaction_path(path)?;
    let message = reactions::react(&state, &auth, id, &emoji, true).await?;
    Ok(ok(json!({ "message": message })))
}

/// `DELETE /api/messages/{id}/reactions/{emoji}`.
#[utoipa::path(
    delete,
    path = "/messages/{id}/reactions/{emoji}",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Message id"),
        ("emoji" = String, Path, description = "As for PUT"),
    ),
    responses(
        (status = 200, description = "Removed (not there: unchanged); the message with its reactions", body = openapi::Envelope<openapi::MessageData>),
        (status = 400, description = "VALIDATION_ERROR on emoji: neither form", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL or NOT_CHANNEL_MEMBER", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn remove_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let (id, emoji) = reaction_path(path)?;
    let message = reactions::react(&state, &auth, id, &emoji, false).await?;
    Ok(ok(json!({ "message": message })))
}
