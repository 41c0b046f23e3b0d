//! `/api/messages/{id}/thread`, `/api/messages/{id}/follow` and `/api/threads`
//! (docs/api.md, "Threads").

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::channels::query;
use super::messages::message_id;
use super::{PageQuery, ok, openapi};
use crate::error::AppError;
use crate::models::page::{CursorKind, decode_id_cursor};
use crate::services::auth::AuthUser;
use crate::services::threads;
use crate::state::AppState;

/// `GET /api/messages/{id}/thread?limit&cursor`.
#[utoipa::path(
    get,
    path = "/messages/{id}/thread",
    tag = "threads",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "The thread's root, or any reply in it"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this thread"),
    ),
    responses(
        (status = 200, description = "The root and a page of its replies, oldest first", body = openapi::Envelope<openapi::ThreadPage>),
        (status = 400, description = "VALIDATION_ERROR on limit or cursor", body = openapi::ErrorEnvelope),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn get_thread(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let id = message_id(id)?;
    let (after, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Thread, c))?;
    let page = threads::thread(&state, &auth, id, after, limit).await?;
    Ok(ok(json!({
        "root": page.root,
        "messages": page.messages,
        "pagination": page.pagination,
    })))
}

/// `PUT /api/messages/{id}/follow`.
#[utoipa::path(
    put,
    path = "/messages/{id}/follow",
    tag = "threads",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "The thread's root, or any reply in it")),
    responses(
        (status = 200, description = "Followed (already: unchanged)", body = openapi::Envelope<crate::models::thread::FollowView>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn follow_thread(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let answer = threads::follow(&state, &auth, message_id(id)?, true).await?;
    Ok(ok(json!(answer)))
}

/// `DELETE /api/messages/{id}/follow`.
#[utoipa::path(
    delete,
    path = "/messages/{id}/follow",
    tag = "threads",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "The thread's root, or any reply in it")),
    responses(
        (status = 200, description = "Unfollowed (not followed: unchanged)", body = openapi::Envelope<crate::models::thread::FollowView>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "MESSAGE_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn unfollow_thread(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let answer = threads::follow(&state, &auth, message_id(id)?, false).await?;
    Ok(ok(json!(answer)))
}

/// `GET /api/threads?limit&cursor`.
#[utoipa::path(
    get,
    path = "/threads",
    tag = "threads",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses(
        (status = 200, description = "The caller's followed threads in channels they may read, newest activity first", body = openapi::Envelope<openapi::FollowedThreadPage>),
        (status = 400, description = "VALIDATION_ERROR on limit or cursor", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_threads(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let (before, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Threads, c))?;
    let page = threads::followed(&state, &auth, before, limit).await?;
    Ok(ok(
        json!({ "threads": page.threads, "pagination": page.pagination }),
    ))
}
