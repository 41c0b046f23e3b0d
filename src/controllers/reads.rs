//! `POST /api/channels/{id}/read`, `POST /api/messages/{id}/thread/read` and
//! `GET /api/unreads` (docs/api.md, "Read markers and unread counts").

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use uuid::Uuid;

use super::channels::channel_id;
use super::messages::message_id;
use super::{ok, openapi};
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::input::Fields;
use crate::services::auth::AuthUser;
use crate::services::reads;
use crate::state::AppState;

/// The optional `{messageId}` of a mark: where to move the marker (none: to the newest).
fn mark_to(body: Option<JsonObject>) -> Result<Option<Uuid>, AppError> {
    let Some(body) = body else {
        return Ok(None);
    };
    let mut fields = Fields::new(body.0);
    let to = fields.opt_id("messageId");
    fields.finish(to)
}

/// `POST /api/channels/{id}/read` with `{messageId?}`.
#[utoipa::path(
    post,
    path = "/channels/{id}/read",
    tag = "reads",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "A channel's or a DM's id")),
    request_body(content = Option<openapi::MarkReadBody>, description = "Where to move the marker; without `messageId` (or without a body), to the newest message"),
    responses(
        (status = 200, description = "The marker and counts after the call, moved or not (an older message changes nothing)", body = openapi::Envelope<crate::models::read::ChannelRead>),
        (status = 400, description = "VALIDATION_ERROR on messageId", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL or NOT_CHANNEL_MEMBER", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND, or MESSAGE_NOT_FOUND for a message that is not a live message of it", body = openapi::ErrorEnvelope),
    )
)]
pub async fn mark_channel_read(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: Option<JsonObject>,
) -> Result<Json<Value>, AppError> {
    let id = channel_id(id)?;
    let to = mark_to(body)?;
    Ok(ok(json!(reads::mark_channel(&state, &auth, id, to).await?)))
}

/// `POST /api/messages/{id}/thread/read` with `{messageId?}`.
#[utoipa::path(
    post,
    path = "/messages/{id}/thread/read",
    tag = "reads",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "The thread's root, or any reply in it")),
    request_body(content = Option<openapi::MarkReadBody>, description = "The root or a reply to move the marker to; without `messageId` (or without a body), the newest reply"),
    responses(
        (status = 200, description = "The thread's marker and counts after the call, moved or not", body = openapi::Envelope<crate::models::read::ThreadRead>),
        (status = 400, description = "VALIDATION_ERROR on messageId", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND (also a messageId outside the thread)", body = openapi::ErrorEnvelope),
    )
)]
pub async fn mark_thread_read(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: Option<JsonObject>,
) -> Result<Json<Value>, AppError> {
    let id = message_id(id)?;
    let to = mark_to(body)?;
    Ok(ok(json!(reads::mark_thread(&state, &auth, id, to).await?)))
}

/// `GET /api/unreads`.
#[utoipa::path(
    get,
    path = "/unreads",
    tag = "reads",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Totals over the caller's channels, DMs and followed threads, then those with something unread, newest activity first", body = openapi::Envelope<crate::models::read::Unreads>),
    )
)]
pub async fn unreads(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Value>, AppError> {
    Ok(ok(json!(reads::unreads(&state, &auth).await?)))
}
