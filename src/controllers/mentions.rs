//! `GET /api/mentions` (docs/api.md, "Mentions").

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::channels::query;
use super::{PageQuery, ok, openapi};
use crate::error::AppError;
use crate::models::page::{CursorKind, decode_id_cursor};
use crate::services::auth::AuthUser;
use crate::services::mentions;
use crate::state::AppState;

/// `GET /api/mentions?limit&cursor`.
#[utoipa::path(
    get,
    path = "/mentions",
    tag = "messages",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses(
        (status = 200, description = "Messages that mention the caller by name, or by @channel/@here in a channel they are in, newest first", body = openapi::Envelope<openapi::MessagePage>),
        (status = 400, description = "VALIDATION_ERROR on limit or cursor", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_mentions(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let (before, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Mentions, c))?;
    let page = mentions::list(&state, &auth, before, limit).await?;
    Ok(ok(
        json!({ "messages": page.messages, "pagination": page.pagination }),
    ))
}
