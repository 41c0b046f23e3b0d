//! The user directory and profiles (API.md §4).

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::page::{CursorKind, Pagination};
use crate::models::user::{ProfilePatch, UserRow, UserView};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::store::UserQuery;

/// A page of the directory.
#[derive(Debug)]
pub struct UserPage {
    /// Users, by username.
    pub users: Vec<UserView>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

/// Who is online now (one read of the presence backend).
///
/// # Errors
/// The presence backend cannot be reached.
pub(crate) async fn online_set(services: &Services) -> Result<HashSet<Uuid>, AppError> {
    Ok(services
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
pub async fn own_view(services: &Services, user: &UserRow) -> Result<UserView, AppError> {
    let online = services.backends.presence.is_online(user.id).await?;
    Ok(UserView::own(
        user,
        online,
        super::audit::is_admin(services, &user.username),
    ))
}

/// Lists users by username, optionally those whose username or display name starts with
/// `search` (case-insensitively).
///
/// # Errors
/// The database or presence backend cannot be reached.
pub async fn list_users(
    services: &Services,
    search: Option<&str>,
    after_username: Option<String>,
    limit: u32,
) -> Result<UserPage, AppError> {
    let prefix = search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let mut rows = services
        .store
        .list_users(&UserQuery {
            prefix,
            after_username,
            limit: limit + 1,
        })
        .await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Users, |r| {
        r.username.to_lowercase()
    });
    let online = online_set(services).await?;
    Ok(UserPage {
        users: rows
            .iter()
            .map(|r| UserView::public(r, online.contains(&r.id)))
            .collect(),
        pagination,
    })
}

/// One user: as others see them, or — for the caller — with their email.
///
/// # Errors
/// `USER_NOT_FOUND`.
pub async fn get_user(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
) -> Result<UserView, AppError> {
    let user = services
        .store
        .fetch_user(id)
        .await?
        .ok_or(AppError::UserNotFound)?;
    let online = services.backends.presence.is_online(id).await?;
    // The caller's own user object carries their email (API.md §3); anyone else's does not.
    Ok(if id == auth.user.id {
        UserView::own(
            &user,
            online,
            super::audit::is_admin(services, &user.username),
        )
    } else {
        UserView::public(&user, online)
    })
}

/// Changes the caller's profile.
///
/// # Errors
/// The database cannot be reached.
pub async fn update_me(
    services: &Services,
    auth: &AuthUser,
    patch: ProfilePatch,
) -> Result<UserView, AppError> {
    let user = services
        .store
        .update_user_profile(auth.user.id, &patch, Utc::now())
        .await?
        .ok_or(AppError::UserNotFound)?;
    services.users.forget(auth.user.id);
    own_view(services, &user).await
}

/// Users with at least one live socket on any node.
///
/// # Errors
/// The database or presence backend cannot be reached.
pub async fn online_users(services: &Services) -> Result<Vec<UserView>, AppError> {
    let ids = services.backends.presence.online_users().await?;
    let rows = services.store.list_users_by_ids(&ids).await?;
    Ok(rows.iter().map(|r| UserView::public(r, true)).collect())
}
