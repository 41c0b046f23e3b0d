//! The user directory and profiles (API.md §4).

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::page::{Pagination, encode_cursor};
use crate::models::user::{ProfilePatch, UserRow, UserView};
use crate::services::auth::AuthUser;
use crate::state::AppState;
use crate::store::UserQuery;

/// A page of the directory.
#[derive(Debug)]
pub struct UserPage {
    /// Users, by username.
    pub users: Vec<UserView>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

async fn online_set(state: &AppState) -> Result<HashSet<Uuid>, AppError> {
    Ok(state
        .backends
        .presence
        .online_users()
        .await?
        .into_iter()
        .collect())
}

/// The caller's own view of themself.
///
/// # Errors
/// The presence backend cannot be reached.
pub async fn own_view(state: &AppState, user: &UserRow) -> Result<UserView, AppError> {
    let online = state.backends.presence.is_online(user.id).await?;
    Ok(UserView::own(user, online))
}

/// Lists users by username, optionally those whose username or display name starts with
/// `search` (case-insensitively).
///
/// # Errors
/// The database or presence backend cannot be reached.
pub async fn list_users(
    state: &AppState,
    search: Option<&str>,
    after_username: Option<String>,
    limit: u32,
) -> Result<UserPage, AppError> {
    let prefix = search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let mut rows = state
        .store
        .list_users(&UserQuery {
            prefix,
            after_username,
            limit: limit + 1,
        })
        .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| {
            rows.last()
                .map(|r| encode_cursor(&r.username.to_lowercase()))
        })
        .flatten();
    let online = online_set(state).await?;
    Ok(UserPage {
        users: rows
            .iter()
            .map(|r| UserView::public(r, online.contains(&r.id)))
            .collect(),
        pagination: Pagination {
            has_more,
            next_cursor,
        },
    })
}

/// One user, as others see them.
///
/// # Errors
/// `USER_NOT_FOUND`.
pub async fn get_user(state: &AppState, id: Uuid) -> Result<UserView, AppError> {
    let user = state
        .store
        .fetch_user(id)
        .await?
        .ok_or(AppError::UserNotFound)?;
    let online = state.backends.presence.is_online(id).await?;
    Ok(UserView::public(&user, online))
}

/// Changes the caller's profile.
///
/// # Errors
/// The database cannot be reached.
pub async fn update_me(
    state: &AppState,
    auth: &AuthUser,
    patch: ProfilePatch,
) -> Result<UserView, AppError> {
    let user = state
        .store
        .update_user_profile(auth.user.id, &patch, Utc::now())
        .await?
        .ok_or(AppError::UserNotFound)?;
    state.users.forget(auth.user.id);
    own_view(state, &user).await
}

/// Users with at least one live socket on any node.
///
/// # Errors
/// The database or presence backend cannot be reached.
pub async fn online_users(state: &AppState) -> Result<Vec<UserView>, AppError> {
    let ids = state.backends.presence.online_users().await?;
    let rows = state.store.list_users_by_ids(&ids).await?;
    Ok(rows.iter().map(|r| UserView::public(r, true)).collect())
}
