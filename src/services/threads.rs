//! Threads (docs/api.md, "Threads"): reading one, following, the caller's followed
//! threads, and what a reply sets off once it has committed.
//!
//! A thread's counts are not stored: they are read with the root (one index range of
//! `messages_parent` per root, in the same hand-off as the page), so a reply or a delete
//! can never leave them wrong.

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::{MessageRow, MessageView};
use crate::models::page::{CursorKind, Pagination};
use crate::models::thread::{FollowView, FollowedThreadView, summarize};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;
use crate::services::{messages, views};
use crate::store::ExtrasOf;

/// A page of a thread (the `data` of `GET /api/messages/{id}/thread`).
#[derive(Debug, serde::Serialize)]
pub struct ThreadPage {
    /// The root, with its counts (a tombstone when it was deleted).
    pub root: MessageView,
    /// Replies, oldest → newest.
    pub messages: Vec<MessageView>,
    /// More replies after these?
    pub pagination: Pagination,
}

/// The caller's followed threads (the `data` of `GET /api/threads`).
#[derive(Debug, serde::Serialize)]
pub struct FollowedThreads {
    /// Newest activity first.
    pub threads: Vec<FollowedThreadView>,
    /// More, older?
    pub pagination: Pagination,
}

/// The root of the thread `message_id` belongs to (itself when it is a root), readable by
/// the caller; tombstones included.
pub(crate) async fn load_root(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
) -> Result<MessageRow, AppError> {
    let (message, _) = messages::load_readable(services, auth, message_id).await?;
    match message.parent_id {
        None => Ok(message),
        Some(root) => services
            .store
            .fetch_message(root)
            .await?
            .ok_or(AppError::MessageNotFound),
    }
}

/// A page of the replies of the thread `message_id` belongs to, after `after`.
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn thread(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<ThreadPage, AppError> {
    let root = load_root(services, auth, message_id).await?;
    let mut rows = services
        .store
        .list_thread(root.id, after.unwrap_or(root.id), limit + 1)
        .await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Thread, |r| r.id.to_string());
    let mut all: Vec<MessageView> = std::iter::once(root)
        .chain(rows)
        .map(MessageView::from)
        .collect();
    views::for_reader(services, auth.user.id, &mut all).await?;
    let root = all.remove(0);
    Ok(ThreadPage {
        root,
        messages: all,
        pagination,
    })
}

/// Follows (`following`) or unfollows the thread `message_id` belongs to; idempotent.
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL` (also for a private channel the caller left).
pub async fn follow(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    following: bool,
) -> Result<FollowView, AppError> {
    let root = load_root(services, auth, message_id).await?;
    services
        .store
        .set_follow(
            auth.user.id,
            root.id,
            root.channel_id,
            following,
            false,
            Utc::now(),
        )
        .await?;
    // Following starts with nothing unread in the thread, as joining a channel does (the
    // marker moves forward only, and its move is announced).
    if following {
        super::reads::mark_root(services, auth.user.id, &root, None).await?;
    }
    Ok(FollowView {
        message_id: root.id,
        following,
    })
}

/// The caller's followed threads in channels they may still read, newest activity first,
/// older than the cursor's.
///
/// # Errors
/// The database cannot be reached.
pub async fn followed(
    services: &Services,
    auth: &AuthUser,
    before: Option<Uuid>,
    limit: u32,
) -> Result<FollowedThreads, AppError> {
    let mut found = services
        .store
        .list_followed_threads(auth.user.id, before, limit + 1)
        .await?;
    let pagination = Pagination::cut(&mut found, limit, CursorKind::Threads, |(_, activity)| {
        activity.to_string()
    });
    let ids: Vec<Uuid> = found.iter().map(|(root, _)| *root).collect();
    let mut rows = services.store.list_messages_by_ids(&ids).await?;
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    let mut roots: Vec<MessageView> = rows.into_iter().map(MessageView::from).collect();
    views::for_reader(services, auth.user.id, &mut roots).await?;
    let mut reads = super::reads::of_threads(services, auth.user.id, &ids).await?;
    let threads = roots
        .into_iter()
        .map(|root| FollowedThreadView {
            channel_id: root.channel_id,
            reply_count: root.reply_count,
            last_reply_at: root.last_reply_at.clone(),
            read: reads.remove(&root.id).unwrap_or_default(),
            root,
        })
        .collect();
    Ok(FollowedThreads {
        threads,
        pagination,
    })
}

/// A reply to `root` by `sender` has committed: the sender follows the thread (again), the
/// root's author and the members it mentions by name do unless they chose otherwise (so the
/// reply counts in their unread threads), and the room hears the new counts. The reply is
/// sent whatever happens here; a failure is logged.
pub async fn replied(services: &Services, root: &MessageRow, sender: Uuid, mentioned: &[Uuid]) {
    let now = Utc::now();
    let mut follows = vec![(sender, false)];
    for user in std::iter::once(&root.sender_id).chain(mentioned) {
        if follows.iter().all(|(u, _)| u != user) {
            follows.push((*user, true));
        }
    }
    for (user, keep_choice) in follows {
        if let Err(e) = services
            .store
            .set_follow(user, root.id, root.channel_id, true, keep_choice, now)
            .await
        {
            tracing::warn!(error = %e, "a reply was sent but its thread could not be followed");
        }
    }
    announce(services, root.id, root.channel_id).await;
}

/// The room of `channel_id` hears thread `root`'s counts as they are now.
pub async fn announce(services: &Services, root: Uuid, channel_id: Uuid) {
    match services
        .store
        .list_extras(&ExtrasOf::thread_counts(root))
        .await
    {
        Ok(extras) => {
            let summary = summarize(extras.repliers).remove(&root).unwrap_or_default();
            services.events.emit(Event::ThreadUpdated {
                message_id: root,
                channel_id,
                summary,
            });
        }
        Err(e) => tracing::warn!(error = %e, "a thread's new counts could not be read"),
    }
}
