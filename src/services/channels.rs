//! Channels (API.md §5, §12): visibility, membership, roles, ownership hand-over, stars.

use std::collections::HashMap;

use chrono::Utc;
use uuid::Uuid;

use crate::error::{AppError, FieldError};
use crate::models::channel::{ChannelName, ChannelRow, ChannelView, NewChannel, Role};
use crate::models::page::{CursorKind, Pagination, bad_cursor};
use crate::models::timestamp;
use crate::models::user::UserView;
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::{Event, LeftReason};
use crate::store::{ChannelQuery, Left, StoreError};

/// Most `memberIds` accepted when creating a channel.
pub const MAX_INITIAL_MEMBERS: usize = 1000;

/// A parsed channel creation.
#[derive(Debug)]
pub struct CreateChannel {
    /// Name.
    pub name: ChannelName,
    /// Description.
    pub description: Option<String>,
    /// Members only.
    pub is_private: bool,
    /// Users to add as members.
    pub member_ids: Vec<Uuid>,
}

/// A page of channels.
#[derive(Debug)]
pub struct ChannelPage {
    /// Channels by name.
    pub channels: Vec<ChannelView>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

/// One member as listed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The member's public profile.
    pub user: UserView,
    /// Their role.
    pub role: Role,
    /// When they joined.
    #[schema(format = DateTime)]
    pub joined_at: String,
}

/// A page of members.
#[derive(Debug)]
pub struct MemberPage {
    /// Members by `joinedAt`.
    pub members: Vec<MemberView>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

fn name_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict => AppError::ChannelExists,
        StoreError::Missing => AppError::ChannelNotFound,
        other => other.into(),
    }
}

/// A channel or direct conversation as `viewer` sees it (what the message routes, files,
/// typing and `join-channel` read); `CHANNEL_NOT_FOUND` when it does not exist.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`.
pub async fn load(services: &Services, id: Uuid, viewer: Uuid) -> Result<ChannelRow, AppError> {
    services
        .store
        .fetch_channel(id, viewer)
        .await?
        .ok_or(AppError::ChannelNotFound)
}

/// A channel (not a direct conversation) as `viewer` sees it: the routes that manage a
/// channel do not know direct conversations.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, also for a direct conversation's id.
pub async fn load_channel(
    services: &Services,
    id: Uuid,
    viewer: Uuid,
) -> Result<ChannelRow, AppError> {
    let row = load(services, id, viewer).await?;
    if row.is_dm() {
        return Err(AppError::ChannelNotFound);
    }
    Ok(row)
}

/// Creates a channel; the creator is its owner.
///
/// # Errors
/// `VALIDATION_ERROR` for unknown `memberIds`, `CHANNEL_EXISTS` for a taken name.
pub async fn create(
    services: &Services,
    auth: &AuthUser,
    input: CreateChannel,
) -> Result<ChannelView, AppError> {
    let mut members = input.member_ids;
    members.sort_unstable();
    members.dedup();
    members.retain(|m| *m != auth.user.id);
    if !members.is_empty() {
        let found = services.store.list_users_by_ids(&members).await?;
        if found.len() != members.len() {
            let known: std::collections::HashSet<Uuid> = found.iter().map(|u| u.id).collect();
            let unknown: Vec<String> = members
                .iter()
                .filter(|m| !known.contains(m))
                .map(ToString::to_string)
                .collect();
            return Err(AppError::Validation(vec![FieldError::new(
                "memberIds",
                format!("unknown users: {}", unknown.join(", ")),
            )]));
        }
    }
    let channel = NewChannel {
        id: Uuid::now_v7(),
        name: input.name,
        description: input.description,
        is_private: input.is_private,
        created_by: auth.user.id,
        created_at: Utc::now(),
    };
    services
        .store
        .insert_channel(&channel, &members, Some(&auth.actor()))
        .await
        .map_err(name_conflict)?;
    for member in &members {
        let view = ChannelView::from(&load_channel(services, channel.id, *member).await?);
        services.events.emit(Event::MemberAdded {
            user_id: *member,
            channel: Box::new(view),
        });
    }
    Ok(ChannelView::from(
        &load_channel(services, channel.id, auth.user.id).await?,
    ))
}

/// Lists channels the caller can see, by name.
///
/// # Errors
/// The database cannot be reached.
pub async fn list(
    services: &Services,
    auth: &AuthUser,
    search: Option<&str>,
    joined_only: bool,
    after_name: Option<String>,
    limit: u32,
) -> Result<ChannelPage, AppError> {
    let search = search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let mut rows = services
        .store
        .list_channels(&ChannelQuery {
            viewer: auth.user.id,
            search,
            joined_only,
            after_name,
            limit: limit + 1,
        })
        .await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Channels, |r| r.name.clone());
    // Members see their markers and counts in the list of their own channels.
    let mut reads = if joined_only {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        super::reads::of_channels(services, auth.user.id, &ids).await?
    } else {
        HashMap::new()
    };
    Ok(ChannelPage {
        channels: rows
            .iter()
            .map(|r| ChannelView::from(r).with_read(reads.remove(&r.id)))
            .collect(),
        pagination,
    })
}

/// The caller's starred channels.
///
/// # Errors
/// The database cannot be reached.
pub async fn starred(services: &Services, auth: &AuthUser) -> Result<Vec<ChannelView>, AppError> {
    let rows = services.store.list_starred_channels(auth.user.id).await?;
    Ok(rows.iter().map(ChannelView::from).collect())
}

/// One channel.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn get(services: &Services, auth: &AuthUser, id: Uuid) -> Result<ChannelView, AppError> {
    let channel = load_channel(services, id, auth.user.id).await?;
    channel.check_visible()?;
    let read = if channel.role().is_some() {
        super::reads::of_channels(services, auth.user.id, &[id])
            .await?
            .remove(&id)
    } else {
        None
    };
    Ok(ChannelView::from(&channel).with_read(read))
}

/// Renames and/or re-describes a channel (owner or admin).
///
/// # Errors
/// Permissions, `CHANNEL_EXISTS`.
pub async fn update(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
    name: Option<ChannelName>,
    description: Option<Option<String>>,
) -> Result<ChannelView, AppError> {
    load_channel(services, id, auth.user.id)
        .await?
        .check_manager()?;
    services
        .store
        .update_channel(
            id,
            name.as_ref().map(ChannelName::as_str),
            description.as_ref().map(Option::as_deref),
            Utc::now(),
            Some(&auth.actor()),
        )
        .await
        .map_err(name_conflict)?;
    Ok(ChannelView::from(
        &load_channel(services, id, auth.user.id).await?,
    ))
}

/// Deletes a channel, its messages and their files (owner only).
///
/// # Errors
/// Permissions.
pub async fn delete(services: &Services, auth: &AuthUser, id: Uuid) -> Result<(), AppError> {
    load_channel(services, id, auth.user.id)
        .await?
        .check_owner()?;
    let deleted = services
        .store
        .delete_channel(id, Some(&auth.actor()))
        .await?;
    services.events.emit(Event::MembersLeft {
        channel_id: id,
        user_ids: deleted.members,
        reason: LeftReason::Deleted,
    });
    // The files' rows went with the channel's messages; now their bytes.
    services.storage.delete_all(&deleted.file_keys).await;
    Ok(())
}

/// Whether the caller may follow `id` in real time (`join-channel`): anyone who can read
/// it. Answers whether it is a direct conversation (whose room its members' sockets are
/// put in without asking).
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn check_readable(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
) -> Result<bool, AppError> {
    let row = load(services, id, auth.user.id).await?;
    row.check_visible()?;
    Ok(row.is_dm())
}

/// Joins a public channel (idempotent); the first to join an ownerless channel owns it.
///
/// # Errors
/// `PRIVATE_CHANNEL` for a private channel the caller is not in.
pub async fn join(services: &Services, auth: &AuthUser, id: Uuid) -> Result<ChannelView, AppError> {
    let channel = load_channel(services, id, auth.user.id).await?;
    channel.check_visible()?;
    if channel.role().is_none() {
        // Nobody is told: a join is not a delivered event (API.md §10).
        services
            .store
            .insert_member(id, auth.user.id, true, Utc::now(), Some(&auth.actor()))
            .await
            .map_err(name_conflict)?;
    }
    Ok(ChannelView::from(
        &load_channel(services, id, auth.user.id).await?,
    ))
}

/// Leaves a channel; a leaving owner hands ownership over.
///
/// # Errors
/// `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`.
pub async fn leave(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
) -> Result<ChannelView, AppError> {
    load_channel(services, id, auth.user.id)
        .await?
        .check_member()?;
    if let Left::Left { .. } = services
        .store
        .delete_member(id, auth.user.id, Some(&auth.actor()))
        .await?
    {
        services.events.emit(Event::MembersLeft {
            channel_id: id,
            user_ids: vec![auth.user.id],
            reason: LeftReason::Left,
        });
    }
    Ok(ChannelView::from(
        &load_channel(services, id, auth.user.id).await?,
    ))
}

/// Lists members by `joinedAt` (anyone who can see the channel).
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn members(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
    after: Option<(chrono::DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<MemberPage, AppError> {
    load_channel(services, id, auth.user.id)
        .await?
        .check_visible()?;
    let mut rows = services.store.list_members(id, after, limit + 1).await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Members, |r| {
        format!("{}|{}", r.joined_at.to_rfc3339(), r.user_id)
    });
    let ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let users: std::collections::HashMap<Uuid, _> = services
        .store
        .list_users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let online: std::collections::HashSet<Uuid> = services
        .backends
        .presence
        .online_users()
        .await?
        .into_iter()
        .collect();
    let members = rows
        .iter()
        .filter_map(|r| {
            users.get(&r.user_id).map(|u| MemberView {
                user: UserView::public(u, online.contains(&u.id)),
                role: Role::from_db(&r.role),
                joined_at: timestamp(r.joined_at),
            })
        })
        .collect();
    Ok(MemberPage {
        members,
        pagination,
    })
}

/// Decodes a member cursor: `<RFC 3339 joinedAt>|<user id>`.
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor`.
pub fn parse_member_cursor(decoded: &str) -> Result<(chrono::DateTime<Utc>, Uuid), AppError> {
    let (at, id) = decoded.split_once('|').ok_or_else(bad_cursor)?;
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .map_err(|_| bad_cursor())?
        .with_timezone(&Utc);
    let id = Uuid::try_parse(id).map_err(|_| bad_cursor())?;
    Ok((at, id))
}

/// Adds a member or changes a member's role (owner/admin; only the owner grants admin).
/// Returns the member and whether they were new.
///
/// # Errors
/// Permissions, `USER_NOT_FOUND`, `VALIDATION_ERROR` for `role: owner`.
pub async fn add_member(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
    user_id: Uuid,
    role: Role,
) -> Result<(MemberView, bool), AppError> {
    let channel = load_channel(services, id, auth.user.id).await?;
    let my_role = channel.check_manager()?;
    if role == Role::Owner {
        return Err(AppError::field(
            "role",
            "must be member or admin (ownership is not granted)",
        ));
    }
    let user = services
        .store
        .fetch_user(user_id)
        .await?
        .ok_or(AppError::UserNotFound)?;
    let current = services
        .store
        .fetch_member(id, user_id)
        .await?
        .map(|m| Role::from_db(&m.role));
    if current == Some(Role::Owner) {
        return Err(AppError::field(
            "role",
            "the owner's role cannot be changed",
        ));
    }
    let changes_role = current.is_some_and(|c| c != role);
    if my_role != Role::Owner && (role == Role::Admin || changes_role) {
        return Err(AppError::InsufficientRole);
    }
    let added = services
        .store
        .upsert_member(id, user_id, role, Utc::now(), Some(&auth.actor()))
        .await
        .map_err(name_conflict)?;
    if added {
        let view = ChannelView::from(&load_channel(services, id, user_id).await?);
        services.events.emit(Event::MemberAdded {
            user_id,
            channel: Box::new(view),
        });
    }
    let member = services
        .store
        .fetch_member(id, user_id)
        .await?
        .ok_or(AppError::UserNotFound)?;
    let online = services.backends.presence.is_online(user_id).await?;
    Ok((
        MemberView {
            user: UserView::public(&user, online),
            role: Role::from_db(&member.role),
            joined_at: timestamp(member.joined_at),
        },
        added,
    ))
}

/// Removes a member (owner: anyone but themself; admin: plain members only).
///
/// # Errors
/// Permissions, `USER_NOT_FOUND` for a non-member.
pub async fn remove_member(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
    user_id: Uuid,
) -> Result<(), AppError> {
    let channel = load_channel(services, id, auth.user.id).await?;
    let my_role = channel.check_manager()?;
    let target = services
        .store
        .fetch_member(id, user_id)
        .await?
        .map(|m| Role::from_db(&m.role))
        .ok_or(AppError::UserNotFound)?;
    if target == Role::Owner || (my_role != Role::Owner && target != Role::Member) {
        return Err(AppError::InsufficientRole);
    }
    if let Left::Left { .. } = services
        .store
        .delete_member(id, user_id, Some(&auth.actor()))
        .await?
    {
        services.events.emit(Event::MembersLeft {
            channel_id: id,
            user_ids: vec![user_id],
            reason: LeftReason::Removed,
        });
    }
    Ok(())
}

/// Stars or unstars a channel for the caller (anyone who can see it).
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn set_star(
    services: &Services,
    auth: &AuthUser,
    id: Uuid,
    starred: bool,
) -> Result<ChannelView, AppError> {
    load_channel(services, id, auth.user.id)
        .await?
        .check_visible()?;
    if starred {
        services
            .store
            .insert_star(auth.user.id, id, Utc::now())
            .await?;
    } else {
        services.store.delete_star(auth.user.id, id).await?;
    }
    Ok(ChannelView::from(
        &load_channel(services, id, auth.user.id).await?,
    ))
}
