//! `/api/users*` (API.md §4).

use crate::controllers::openapi;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
#[allow(unused_imports)]
use uuid::Uuid;

use super::ok;
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::input::Fields;
use crate::models::page::{CursorKind, decode_cursor_shaped, parse_limit};
use crate::models::parse_id;
use crate::models::user::Username;
use crate::models::user::{AvatarUrl, DisplayName, ProfilePatch, StatusText};
use crate::services::auth::AuthUser;
use crate::services::users;
use crate::state::AppState;

/// Query of `GET /api/users`; everything arrives as text and is parsed here.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/users?search=&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("search" = Option<String>, Query, description = "Prefix of the username or display name, at most 100 characters"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses((status = 200, description = "Users by username", body = openapi::Envelope<openapi::UserPage>))
)]
pub async fn list_users(
    State(state): State<AppState>,
    _auth: AuthUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(query) = query.map_err(|e| AppError::field("query", e.body_text()))?;
    let limit = parse_limit(query.limit.as_deref())?;
    // A user cursor holds the last lower-cased username of the page: it must be one.
    // An empty cursor is no cursor (as on the history route).
    let after = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            decode_cursor_shaped(CursorKind::Users, c, |name| {
                Username::parse(name).is_ok() && name == name.to_lowercase()
            })
        })
        .transpose()?;
    if query
        .search
        .as_ref()
        .is_some_and(|s| s.chars().count() > 100)
    {
        return Err(AppError::field("search", "must be at most 100 characters"));
    }
    let page = users::list_users(&state, query.search.as_deref(), after, limit).await?;
    Ok(ok(
        json!({ "users": page.users, "pagination": page.pagination }),
    ))
}

/// `GET /api/users/online`.
#[utoipa::path(
    get,
    path = "/users/online",
    tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Users online now", body = openapi::Envelope<openapi::UserList>))
)]
pub async fn online_users(
    State(state): State<AppState>,
    _auth: AuthUser,
) -> Result<Json<Value>, AppError> {
    let users = users::online_users(&state).await?;
    Ok(ok(json!({ "users": users })))
}

/// `GET /api/users/{id}`: 404 `USER_NOT_FOUND` for unknown and malformed ids.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user (with email when it is the caller)", body = openapi::Envelope<openapi::UserData>),
        (status = 404, description = "USER_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, AppError> {
    // A path segment that is not even UTF-8 is as unknown as any other malformed id.
    let id = id
        .ok()
        .and_then(|Path(id)| parse_id(&id))
        .ok_or(AppError::UserNotFound)?;
    let user = users::get_user(&state, &auth, id).await?;
    Ok(ok(json!({ "user": user })))
}

/// `PATCH /api/users/me` with `{displayName?, avatarUrl?, status?}`.
#[utoipa::path(
    patch,
    path = "/users/me",
    tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    request_body = openapi::ProfileBody,
    responses((status = 200, description = "The updated profile", body = openapi::Envelope<openapi::UserData>))
)]
pub async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonObject,
) -> Result<Json<Value>, AppError> {
    let mut f = Fields::new(body.0);
    let display_name = f.optional("displayName", |s| DisplayName::parse(&s));
    let avatar_url = f.nullable("avatarUrl", |s| {
        AvatarUrl::parse(&s).map(AvatarUrl::into_inner)
    });
    let status = f.nullable("status", |s| {
        StatusText::parse(&s).map(StatusText::into_inner)
    });
    let patch = f.finish(ProfilePatch {
        display_name,
        avatar_url,
        status: status.map(Option::flatten),
    })?;
    let user = users::update_me(&state, &auth, patch).await?;
    Ok(ok(json!({ "user": user })))
}
