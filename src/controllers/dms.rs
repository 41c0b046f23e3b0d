//! `/api/dms*` (docs/api.md, "Direct messages"): extract → service → envelope.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channels::{channel_id, query};
use super::{PageQuery, ok};
use crate::controllers::openapi;
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::input::Fields;
use crate::models::page::{CursorKind, decode_id_cursor};
use crate::models::parse_id;
use crate::services::auth::AuthUser;
use crate::services::dms;
use crate::state::AppState;

/// Most entries `userIds` may hold (repeats included) before it is refused unread.
const MAX_LISTED: usize = 100;

/// `POST /api/dms` with `{userIds}`.
#[utoipa::path(
    post,
    path = "/dms",
    tag = "dms",
    security(("bearer" = []), ("cookie" = [])),
    request_body = openapi::OpenDmBody,
    responses(
        (status = 201, description = "Opened now; the other members hear dm:opened", body = openapi::Envelope<openapi::DmData>),
        (status = 200, description = "These people already had this conversation", body = openapi::Envelope<openapi::DmData>),
    )
)]
pub async fn open_dm(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let mut f = Fields::new(body.0);
    let listed = f.opt_string_list("userIds");
    let ids = match listed {
        None if !f.has_errors() => {
            f.error("userIds", "is required");
            None
        }
        None => None,
        Some(ids) if ids.len() > MAX_LISTED => {
            f.error(
                "userIds",
                "at most 8 people, you included (a conversation of more is a private channel)",
            );
            None
        }
        Some(ids) => {
            let bad: Vec<&str> = ids
                .iter()
                .filter(|s| parse_id(s).is_none())
                .map(String::as_str)
                .take(10)
                .collect();
            if bad.is_empty() {
                Some(
                    ids.iter()
                        .filter_map(|s| parse_id(s))
                        .collect::<Vec<Uuid>>(),
                )
            } else {
                f.error("userIds", format!("unknown users: {}", bad.join(", ")));
                None
            }
        }
    };
    let ids = f.finish(ids)?.unwrap_or_default();
    let (dm, created) = dms::open(&state, &auth, &ids).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ok(json!({ "dm": dm }))))
}

/// `GET /api/dms?limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/dms",
    tag = "dms",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses((status = 200, description = "The caller's conversations, the one with the newest message first", body = openapi::Envelope<openapi::DmPage>))
)]
pub async fn list_dms(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let (before, limit) = query(q)?.read(|c| decode_id_cursor(CursorKind::Dms, c))?;
    let page = dms::list(&state, &auth, before, limit).await?;
    Ok(ok(
        json!({ "dms": page.dms, "pagination": page.pagination }),
    ))
}

/// `GET /api/dms/{id}`.
#[utoipa::path(
    get,
    path = "/dms/{id}",
    tag = "dms",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation", body = openapi::Envelope<openapi::DmData>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn get_dm(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let dm = dms::get(&state, &auth, channel_id(id)?).await?;
    Ok(ok(json!({ "dm": dm })))
}
