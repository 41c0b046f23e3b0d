//! Read markers and unread counts (docs/api.md, "Read markers and unread counts").
//!
//! A marker only moves forward; every move is announced to the reader's own sockets
//! (`channel:read`, `thread:read`) so each device clears its badge. Counts are read, never
//! stored: a channel's from root numbers (`0012_read_state`), a thread's from its replies.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageRow;
use crate::models::read::{ChannelRead, ReadRow, ReadState, ThreadRead, Unreads};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;

/// Moves the caller's marker in a channel or DM forward to `to` (its newest message
/// without one); announces a move. Answers the marker and counts as they are after the call.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`, and `MESSAGE_NOT_FOUND`
/// for a `to` that is not a live message of the conversation.
pub async fn mark_channel(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    to: Option<Uuid>,
) -> Result<ChannelRead, AppError> {
    let user = auth.user.id;
    super::channels::load(services, channel_id, user)
        .await?
        .check_member()?;
    let moved = services
        .store
        .move_channel_marker(channel_id, user, to)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let read = services
        .store
        .list_channel_reads(user, Some(&[channel_id]))
        .await?
        .first()
        .map(ChannelRead::from)
        // Removed between the check and the read: not a member any more.
        .ok_or(AppError::NotChannelMember)?;
    if moved {
        services.events.emit(Event::ChannelRead {
            user_id: user,
            read: read.clone(),
        });
    }
    Ok(read)
}

/// Moves the caller's marker in the thread `message_id` belongs to forward to `to` (the
/// root or one of its replies; its newest reply without one); announces a move. Reading a
/// thread does not follow it.
///
/// # Errors
/// `MESSAGE_NOT_FOUND` (also for a `to` outside the thread), `PRIVATE_CHANNEL`.
pub async fn mark_thread(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    to: Option<Uuid>,
) -> Result<ThreadRead, AppError> {
    let root = super::threads::load_root(services, auth, message_id).await?;
    mark_root(services, auth.user.id, &root, to).await
}

/// [`mark_thread`] of a root already loaded and checked readable by `user`.
///
/// # Errors
/// `MESSAGE_NOT_FOUND` for a `to` outside the thread, or a thread deleted meanwhile.
pub(crate) async fn mark_root(
    services: &Services,
    user: Uuid,
    root: &MessageRow,
    to: Option<Uuid>,
) -> Result<ThreadRead, AppError> {
    let moved = services
        .store
        .move_thread_marker(root.id, root.channel_id, user, to)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let read = services
        .store
        .list_thread_reads(user, Some(&[root.id]))
        .await?
        .first()
        .map(ThreadRead::from)
        // Deleted meanwhile.
        .ok_or(AppError::MessageNotFound)?;
    if moved {
        services.events.emit(Event::ThreadRead {
            user_id: user,
            read: read.clone(),
        });
    }
    Ok(read)
}

/// Everything unread for the caller: totals, then the channels, DMs and followed threads
/// with something unread.
///
/// # Errors
/// The database cannot be reached.
pub async fn unreads(services: &Services, auth: &AuthUser) -> Result<Unreads, AppError> {
    let user = auth.user.id;
    let channels = services.store.list_channel_reads(user, None).await?;
    let threads = services.store.list_thread_reads(user, None).await?;
    Ok(Unreads::new(channels, threads))
}

/// The caller's read state in each of `channels` they are a member of.
///
/// # Errors
/// The database cannot be reached.
pub async fn of_channels(
    services: &Services,
    user: Uuid,
    channels: &[Uuid],
) -> Result<HashMap<Uuid, ReadState>, AppError> {
    Ok(by_id(
        &services
            .store
            .list_channel_reads(user, Some(channels))
            .await?,
    ))
}

/// The caller's read state in each of threads `roots`.
///
/// # Errors
/// The database cannot be reached.
pub async fn of_threads(
    services: &Services,
    user: Uuid,
    roots: &[Uuid],
) -> Result<HashMap<Uuid, ReadState>, AppError> {
    Ok(by_id(
        &services.store.list_thread_reads(user, Some(roots)).await?,
    ))
}

/// Each row's marker and counts, by its channel's or root's id.
fn by_id(rows: &[ReadRow]) -> HashMap<Uuid, ReadState> {
    rows.iter()
        .map(|row| (row.id, ReadState::from(row)))
        .collect()
}
