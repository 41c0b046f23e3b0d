//! `/api/channels*` (API.md §5): extract → service → envelope.

use crate::controllers::openapi;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::ok;
use crate::error::AppError;
use crate::middleware::validate::JsonObject;
use crate::models::channel::{ChannelName, Description, Role};
use crate::models::input::Fields;
use crate::models::page::{CursorKind, decode_cursor, decode_cursor_shaped, parse_limit};
use crate::models::parse_id;
use crate::services::auth::AuthUser;
use crate::services::channels::{self, CreateChannel, MAX_INITIAL_MEMBERS};
use crate::state::AppState;

/// Query of the list routes; every value arrives as text and is parsed here.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    joined: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The query string, or `VALIDATION_ERROR` when it cannot be read.
pub(super) fn query<T: Default>(q: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    q.map(|Query(v)| v)
        .map_err(|e| AppError::field("query", e.body_text()))
}

/// The channel id of the path; malformed → `CHANNEL_NOT_FOUND`.
pub(super) fn channel_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, AppError> {
    path.ok()
        .and_then(|Path(id)| parse_id(&id))
        .ok_or(AppError::ChannelNotFound)
}

fn channel(view: impl serde::Serialize) -> Json<Value> {
    ok(json!({ "channel": view }))
}

/// `GET /api/channels?search=&joined=&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/channels",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("search" = Option<String>, Query, description = "Substring of the name, at most 100 characters"),
        ("joined" = Option<bool>, Query, description = "Only channels the caller is a member of"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses((status = 200, description = "Public channels and the caller's private ones, by name", body = openapi::Envelope<openapi::ChannelPage>))
)]
pub async fn list_channels(
    State(state): State<AppState>,
    auth: AuthUser,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let q = query(q)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let joined = match q.joined.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(AppError::field("joined", "must be true or false")),
    };
    if q.search.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(AppError::field("search", "must be at most 100 characters"));
    }
    // A channel cursor holds the last name of the page: it must be a channel name.
    // An empty cursor is no cursor (as on the history route).
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            decode_cursor_shaped(CursorKind::Channels, c, |name| {
                ChannelName::parse(name).is_ok_and(|parsed| parsed.as_str() == name)
            })
        })
        .transpose()?;
    let page = channels::list(&state, &auth, q.search.as_deref(), joined, after, limit).await?;
    Ok(ok(
        json!({ "channels": page.channels, "pagination": page.pagination }),
    ))
}

/// `GET /api/channels/starred`.
#[utoipa::path(
    get,
    path = "/channels/starred",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's starred channels", body = openapi::Envelope<openapi::ChannelList>))
)]
pub async fn list_starred_channels(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Value>, AppError> {
    let channels = channels::starred(&state, &auth).await?;
    Ok(ok(json!({ "channels": channels })))
}

/// `POST /api/channels` with `{name, description?, isPrivate?, memberIds?}`.
#[utoipa::path(
    post,
    path = "/channels",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    request_body = openapi::CreateChannelBody,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = openapi::Envelope<openapi::ChannelData>),
        (status = 409, description = "CHANNEL_EXISTS", body = openapi::ErrorEnvelope),
    )
)]
pub async fn create_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let mut f = Fields::new(body.0);
    let name = f.required("name", |s| ChannelName::parse(&s));
    let description = f
        .nullable("description", |s| Description::parse(&s))
        .flatten();
    let is_private = f.opt_bool("isPrivate").unwrap_or(false);
    let member_ids = match f.opt_string_list("memberIds") {
        None => Vec::new(),
        Some(ids) if ids.len() > MAX_INITIAL_MEMBERS => {
            f.error(
                "memberIds",
                format!("must list at most {MAX_INITIAL_MEMBERS} users"),
            );
            Vec::new()
        }
        Some(ids) => {
            let parsed: Option<Vec<Uuid>> = ids.iter().map(|s| parse_id(s)).collect();
            parsed.unwrap_or_else(|| {
                f.error("memberIds", "must be a list of user ids");
                Vec::new()
            })
        }
    };
    let (Some(name), false) = (name, f.has_errors()) else {
        return Err(f
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("name", "is required")));
    };
    let input = CreateChannel {
        name,
        description: description.and_then(Description::into_inner),
        is_private,
        member_ids,
    };
    let view = channels::create(&state, &auth, input).await?;
    Ok((StatusCode::CREATED, channel(view)))
}

/// `GET /api/channels/{id}`.
#[utoipa::path(
    get,
    path = "/channels/{id}",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn get_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    Ok(channel(
        channels::get(&state, &auth, channel_id(id)?).await?,
    ))
}

/// `PATCH /api/channels/{id}` with `{name?, description?}`.
#[utoipa::path(
    patch,
    path = "/channels/{id}",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = openapi::UpdateChannelBody,
    responses(
        (status = 200, description = "The updated channel", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER, PRIVATE_CHANNEL or INSUFFICIENT_ROLE (owner or admin only)", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
        (status = 409, description = "CHANNEL_EXISTS", body = openapi::ErrorEnvelope),
    )
)]
pub async fn update_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: JsonObject,
) -> Result<Json<Value>, AppError> {
    let id = channel_id(id)?;
    let mut f = Fields::new(body.0);
    let name = f.optional("name", |s| ChannelName::parse(&s));
    let description = f
        .nullable("description", |s| Description::parse(&s))
        .map(|d| d.and_then(Description::into_inner));
    f.finish(())?;
    Ok(channel(
        channels::update(&state, &auth, id, name, description).await?,
    ))
}

/// `DELETE /api/channels/{id}` (owner).
#[utoipa::path(
    delete,
    path = "/channels/{id}",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Deleted with its messages", body = openapi::Envelope<openapi::ChannelIdData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER, PRIVATE_CHANNEL or INSUFFICIENT_ROLE (owner only)", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn delete_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = channel_id(id)?;
    channels::delete(&state, &auth, id).await?;
    Ok(ok(json!({ "channelId": id })))
}

/// `POST /api/channels/{id}/join`.
#[utoipa::path(
    post,
    path = "/channels/{id}/join",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Joined (or already a member)", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn join_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    Ok(channel(
        channels::join(&state, &auth, channel_id(id)?).await?,
    ))
}

/// `POST /api/channels/{id}/leave`.
#[utoipa::path(
    post,
    path = "/channels/{id}/leave",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Left", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER or PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn leave_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    Ok(channel(
        channels::leave(&state, &auth, channel_id(id)?).await?,
    ))
}

/// `PUT /api/channels/{id}/star`.
#[utoipa::path(
    put,
    path = "/channels/{id}/star",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Starred", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn star_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    Ok(channel(
        channels::set_star(&state, &auth, channel_id(id)?, true).await?,
    ))
}

/// `DELETE /api/channels/{id}/star`.
#[utoipa::path(
    delete,
    path = "/channels/{id}/star",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Not starred", body = openapi::Envelope<openapi::ChannelData>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn unstar_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    Ok(channel(
        channels::set_star(&state, &auth, channel_id(id)?, false).await?,
    ))
}

/// `GET /api/channels/{id}/members?limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/channels/{id}/members",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = Uuid, Path, description = "Channel id"),
        ("limit" = Option<i64>, Query, description = "At least 1; above 100 is 100; default 50", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page of this list"),
    ),
    responses(
        (status = 200, description = "Members by the time they joined", body = openapi::Envelope<openapi::MemberPage>),
        (status = 403, description = "PRIVATE_CHANNEL", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let id = channel_id(id)?;
    let q = query(q)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(channels::parse_member_cursor(&decode_cursor(
            CursorKind::Members,
            c,
        )?)?),
        None => None,
    };
    let page = channels::members(&state, &auth, id, after, limit).await?;
    Ok(ok(
        json!({ "members": page.members, "pagination": page.pagination }),
    ))
}

/// `POST /api/channels/{id}/members` with `{userId, role?}`: 201 when new, 200 when the
/// user was a member already (the owner may change their role this way).
#[utoipa::path(
    post,
    path = "/channels/{id}/members",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    request_body = openapi::AddMemberBody,
    responses(
        (status = 201, description = "Added", body = openapi::Envelope<openapi::MemberData>),
        (status = 200, description = "Already a member", body = openapi::Envelope<openapi::MemberData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER, PRIVATE_CHANNEL or INSUFFICIENT_ROLE", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND or USER_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    auth: AuthUser,
    id: Result<Path<String>, PathRejection>,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let id = channel_id(id)?;
    let mut f = Fields::new(body.0);
    let user = f.string("userId");
    let role = f.optional("role", |r| match r.as_str() {
        "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        "owner" => Ok(Role::Owner),
        _ => Err("must be member or admin".to_owned()),
    });
    let (Some(user), false) = (user, f.has_errors()) else {
        return Err(f
            .finish(())
            .err()
            .unwrap_or_else(|| AppError::field("userId", "is required")));
    };
    let user_id = parse_id(&user).ok_or(AppError::UserNotFound)?;
    let (member, added) =
        channels::add_member(&state, &auth, id, user_id, role.unwrap_or(Role::Member)).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ok(json!({ "member": member }))))
}

/// `DELETE /api/channels/{id}/members/{userId}`.
#[utoipa::path(
    delete,
    path = "/channels/{id}/members/{userId}",
    tag = "channels",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Channel id"), ("userId" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Removed", body = openapi::Envelope<openapi::UserIdData>),
        (status = 403, description = "NOT_CHANNEL_MEMBER, PRIVATE_CHANNEL or INSUFFICIENT_ROLE", body = openapi::ErrorEnvelope),
        (status = 404, description = "CHANNEL_NOT_FOUND or USER_NOT_FOUND", body = openapi::ErrorEnvelope),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path((channel, user)) = ids.map_err(|_| AppError::ChannelNotFound)?;
    let channel = parse_id(&channel).ok_or(AppError::ChannelNotFound)?;
    let user = parse_id(&user).ok_or(AppError::UserNotFound)?;
    channels::remove_member(&state, &auth, channel, user).await?;
    Ok(ok(json!({ "userId": user })))
}
