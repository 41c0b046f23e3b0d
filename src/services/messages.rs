//! Messages (API.md §6, §12): sends through the group-commit writer, history pages,
//! edits and deletes, each handed to the events module after it commits.

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::channel::ChannelRow;
use crate::models::message::{
    Anchor, MessageContent, MessageRow, MessageView, NewMessage, SendInput, SenderView,
};
use crate::models::page::{CursorKind, Pagination, bad_cursor, encode_cursor};
use crate::models::reaction::summarize;
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::channels;
use crate::services::events::Event;
use crate::services::files;
use crate::services::limits::{self, Limit, Subject, Verdict};
use crate::services::newest_pages::Kept;
use crate::services::reactions;
use crate::store::StoreError;

/// What a send did.
#[derive(Debug)]
pub struct Sent {
    /// The message: new, or the first one sent with the same nonce.
    pub message: MessageView,
    /// Whether it was written now (`false`: its nonce had committed before).
    pub created: bool,
    /// The sender's message budget after this send (`None`: not charged — limits off, or
    /// a nonce already committed).
    pub rate: Option<Verdict>,
}

/// A history page, oldest first (the `data` of `GET …/messages`).
#[derive(Debug, serde::Serialize)]
pub struct History {
    /// Messages, oldest → newest.
    pub messages: Vec<MessageView>,
    /// More in the same direction?
    pub pagination: Pagination,
}

/// The history cursor: a direction and the id to continue from.
#[must_use]
pub fn encode_history_cursor(anchor: Anchor) -> Option<String> {
    match anchor {
        Anchor::Latest => None,
        Anchor::Before(id) => Some(encode_cursor(CursorKind::Messages, &format!("b:{id}"))),
        Anchor::After(id) => Some(encode_cursor(CursorKind::Messages, &format!("a:{id}"))),
    }
}

/// Reads a decoded history cursor.
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor`.
pub fn parse_history_cursor(decoded: &str) -> Result<Anchor, AppError> {
    let (direction, id) = decoded.split_once(':').ok_or_else(bad_cursor)?;
    let id = Uuid::try_parse(id).map_err(|_| bad_cursor())?;
    match direction {
        "b" => Ok(Anchor::Before(id)),
        "a" => Ok(Anchor::After(id)),
        _ => Err(bad_cursor()),
    }
}

/// Sends a message; answers after it has committed. A repeated nonce returns the first
/// message with `created: false`, writes nothing and — when that message had committed
/// before this send began — is not charged against the message budget.
///
/// # Errors
/// Permissions, `VALIDATION_ERROR` for a foreign `parentId` or unknown attachments,
/// `RATE_LIMITED`.
pub async fn send(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    input: SendInput,
) -> Result<Sent, AppError> {
    // Membership is checked by the write itself (same transaction, no extra round trip);
    // a refusal, or a send whose extras need checking first, loads the channel to say
    // which refusal it is.
    if input.parent_id.is_some() || !input.attachments.is_empty() {
        channels::load(services, channel_id, auth.user.id)
            .await?
            .check_member()?;
    }
    // A retry of a send that already committed costs nothing: answered before charging.
    // (Looked up only when limits apply; otherwise the write itself finds the replay.)
    if services.limits.enabled()
        && let Some(nonce) = &input.nonce
        && let Some(first) = services
            .store
            .fetch_message_by_nonce(channel_id, auth.user.id, nonce.as_str())
            .await?
    {
        let message = replayed(services, auth, &first).await?;
        return Ok(Sent {
            message,
            created: false,
            rate: None,
        });
    }
    let rate = limits::charge(services, Limit::Messages, Subject::User(auth.user.id))
        .await?
        .map(Verdict::check)
        .transpose()?;
    if let Some(parent) = input.parent_id {
        let parent = services.store.fetch_message(parent).await?;
        if parent.is_none_or(|p| p.channel_id != channel_id) {
            return Err(AppError::field(
                "parentId",
                "must name a message of the same channel",
            ));
        }
    }
    // Checked here to name the keys at fault; linked inside the write, which refuses a
    // file attached elsewhere meanwhile.
    let (attachments, attachment_ids) =
        files::attachments(services, auth, &input.attachments).await?;
    let inserted = match services
        .writer
        .insert(NewMessage {
            channel_id,
            sender: SenderView::from(&auth.user),
            content: input.content,
            attachments,
            attachment_ids,
            parent_id: input.parent_id,
            nonce: input.nonce,
        })
        .await
    {
        Ok(inserted) => inserted,
        Err(AppError::NotChannelMember | AppError::ChannelNotFound) => {
            channels::load(services, channel_id, auth.user.id)
                .await?
                .check_member()?;
            return Err(AppError::NotChannelMember);
        }
        Err(e) => return Err(e),
    };
    // The writer announced it (in commit order) if it is new; a new message has no
    // reactions yet.
    let message = if inserted.created {
        MessageView::from(&inserted.message)
    } else {
        replayed(services, auth, &inserted.message).await?
    };
    Ok(Sent {
        message,
        created: inserted.created,
        rate,
    })
}

/// The answer to a send whose nonce had committed before: that message as it is now (its
/// reactions too), announced again if its broadcast may have been lost.
async fn replayed(
    services: &Services,
    auth: &AuthUser,
    first: &MessageRow,
) -> Result<MessageView, AppError> {
    let mut views = [MessageView::from(first)];
    reactions::fill(services, &mut views).await?;
    recover_announcement(services, &views[0]);
    reactions::mark_own(services, auth.user.id, &mut views).await?;
    let [view] = views;
    Ok(view)
}

/// How long after its commit a message's broadcast may still be on its way from the node
/// that wrote it; past that, a missing record means that node died before publishing.
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A send was answered with a message that had committed before (a retry with its nonce).
/// On many nodes, the node that wrote it may have died between the commit and the
/// broadcast: then nobody heard it live. Once the broadcast would surely have been
/// published, a message with no record of it is announced by the one node that claims it
/// (within [`crate::backends::redis::ANNOUNCED_FOR`] of its commit). On one node a death
/// takes every socket with it, and reconnecting clients catch up with `after=`.
fn recover_announcement(services: &Services, message: &MessageView) {
    let Some(redis) = services.backends.redis.clone() else {
        return;
    };
    let Some(committed_ms) = message
        .id
        .get_timestamp()
        .map(|t| t.to_unix())
        .and_then(|(s, ns)| {
            i64::try_from(s)
                .ok()
                .map(|s| s * 1000 + i64::from(ns / 1_000_000))
        })
    else {
        return;
    };
    let age_ms = Utc::now().timestamp_millis() - committed_ms;
    let window = i64::try_from(crate::backends::redis::ANNOUNCED_FOR.as_millis()).unwrap_or(0);
    if age_ms > window {
        return;
    }
    let wait = i64::try_from(ANNOUNCE_WAIT.as_millis()).unwrap_or(0) - age_ms;
    let wait = std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(0));
    let events = services.events.clone();
    let message = message.clone();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        match redis.claim_announcement(message.id).await {
            Ok(true) => {
                tracing::info!(
                    message = %message.id,
                    "a message whose broadcast was lost with its node is announced now"
                );
                events.emit(Event::NewMessage(message));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not check a message's broadcast"),
        }
    });
}

/// A page of history around `anchor`, oldest first, as the caller sees it.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn history(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    anchor: Anchor,
    limit: u32,
) -> Result<History, AppError> {
    let mut page = shared_history(services, auth, channel_id, anchor, limit).await?;
    reactions::mark_own(services, auth.user.id, &mut page.messages).await?;
    Ok(page)
}

/// A page of history as everyone who may read it sees it (no reaction marked `me`).
async fn shared_history(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    anchor: Anchor,
    limit: u32,
) -> Result<History, AppError> {
    // The page's query checks that the caller may read the channel; only an empty page
    // (no such channel, a private one, or simply nothing there) needs the channel loaded to
    // tell which — one round trip for a page, two for the rest.
    let (mut rows, reacted) = services
        .store
        .list_messages_reacted(channel_id, auth.user.id, anchor, limit + 1)
        .await?;
    if rows.is_empty() {
        channels::load(services, channel_id, auth.user.id)
            .await?
            .check_visible()?;
    }
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    if !matches!(anchor, Anchor::After(_)) {
        rows.reverse();
    }
    let next = match anchor {
        Anchor::After(_) => rows.last().map(|r| Anchor::After(r.id)),
        Anchor::Latest | Anchor::Before(_) => rows.first().map(|r| Anchor::Before(r.id)),
    };
    let mut by_message = summarize(reacted);
    let messages: Vec<MessageView> = rows
        .into_iter()
        .map(|row| {
            let mut view = MessageView::from(row);
            view.reactions = by_message.remove(&view.id).unwrap_or_default();
            view
        })
        .collect();
    Ok(History {
        messages,
        pagination: Pagination {
            has_more,
            next_cursor: if has_more {
                next.and_then(encode_history_cursor)
            } else {
                None
            },
        },
    })
}

/// [`history`] serialised (the `data` of `GET …/messages`). The newest page is served from
/// [`crate::services::newest_pages`] while its channel's history version stays the one it
/// was built at; the version is read first, so a page built from rows newer than its
/// version is only ever rebuilt, never stale.
///
/// # Errors
/// As [`history`].
pub async fn history_json(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    anchor: Anchor,
    limit: u32,
) -> Result<Bytes, AppError> {
    let version = match anchor {
        Anchor::Latest => {
            services
                .store
                .history_version(channel_id, auth.user.id)
                .await?
        }
        Anchor::Before(_) | Anchor::After(_) => None,
    };
    if let Some(version) = version
        && let Some(kept) = services.newest_pages.get(channel_id, version, limit)
    {
        // Kept as everyone sees it: served as it is unless this reader reacted on it.
        let own = if kept.reacted.is_empty() {
            false
        } else {
            !services
                .store
                .list_own_reactions(auth.user.id, &kept.reacted)
                .await?
                .is_empty()
        };
        if !own {
            return Ok(kept.body);
        }
    }
    let mut page = shared_history(services, auth, channel_id, anchor, limit).await?;
    let body = Bytes::from(serde_json::to_vec(&page).map_err(AppError::internal)?);
    if let Some(version) = version {
        let reacted: std::sync::Arc<[Uuid]> = page
            .messages
            .iter()
            .filter(|m| !m.reactions.is_empty())
            .map(|m| m.id)
            .collect();
        let kept = Kept {
            body: body.clone(),
            reacted,
        };
        services.newest_pages.put(channel_id, version, limit, kept);
    }
    if reactions::mark_own(services, auth.user.id, &mut page.messages).await? {
        return Ok(Bytes::from(
            serde_json::to_vec(&page).map_err(AppError::internal)?,
        ));
    }
    Ok(body)
}

/// A message and its channel as the caller sees it; `PRIVATE_CHANNEL` comes first for a
/// private channel the caller is not in.
pub(crate) async fn load_message(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
) -> Result<(MessageRow, ChannelRow), AppError> {
    let message = services
        .store
        .fetch_message(message_id)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let channel = channels::load(services, message.channel_id, auth.user.id)
        .await
        .map_err(|_| AppError::MessageNotFound)?;
    channel.check_visible()?;
    Ok((message, channel))
}

/// Edits a message (its sender only).
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_MESSAGE_OWNER`.
pub async fn edit(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    content: MessageContent,
) -> Result<MessageView, AppError> {
    let (message, _) = load_message(services, auth, message_id).await?;
    if message.sender_id != auth.user.id {
        return Err(AppError::NotMessageOwner);
    }
    let updated = services
        .store
        .update_message(message_id, content.as_str(), Utc::now())
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let mut views = [MessageView::from(&updated)];
    reactions::fill(services, &mut views).await?;
    services.events.emit(Event::MessageEdited(views[0].clone()));
    reactions::mark_own(services, auth.user.id, &mut views).await?;
    let [view] = views;
    Ok(view)
}

/// Most pinned messages in one channel or conversation.
pub const MAX_PINS: u32 = 100;

/// Pins (`true`) or unpins a message: a channel's owner or admins, any member of a direct
/// conversation. Idempotent: only a change is announced (`message-pinned` /
/// `message-unpinned`).
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`, `INSUFFICIENT_ROLE`,
/// `LIMIT_REACHED` for a pin beyond [`MAX_PINS`].
pub async fn set_pin(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    pinned: bool,
) -> Result<MessageView, AppError> {
    let (_, channel) = load_message(services, auth, message_id).await?;
    if channel.is_dm() {
        channel.check_member()?;
    } else {
        channel.check_manager()?;
    }
    let pin = pinned.then(|| (auth.user.id, Utc::now()));
    let (row, changed) = match services.store.set_pin(message_id, pin, MAX_PINS).await {
        Ok(Some(done)) => done,
        Ok(None) => return Err(AppError::MessageNotFound),
        Err(StoreError::LimitReached) => {
            return Err(AppError::LimitReached(format!(
                "A channel holds at most {MAX_PINS} pinned messages; unpin one first"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut views = [MessageView::from(&row)];
    reactions::for_reader(services, auth.user.id, &mut views).await?;
    let [view] = views;
    if changed {
        services.events.emit(Event::PinChanged {
            message_id,
            channel_id: row.channel_id,
            pinned_at: row.pinned_at,
            pinned_by: row.pinned_by,
        });
    }
    Ok(view)
}

/// A channel's or conversation's pinned messages, the most recently pinned first (anyone
/// who may read it).
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn pins(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
) -> Result<Vec<MessageView>, AppError> {
    channels::load(services, channel_id, auth.user.id)
        .await?
        .check_visible()?;
    let mut views: Vec<MessageView> = services
        .store
        .list_pins(channel_id, MAX_PINS)
        .await?
        .iter()
        .map(MessageView::from)
        .collect();
    reactions::for_reader(services, auth.user.id, &mut views).await?;
    Ok(views)
}

/// Deletes a message (its sender, or the channel's owner or an admin).
/// Returns the channel it was in.
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_MESSAGE_OWNER`.
pub async fn delete(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
) -> Result<Uuid, AppError> {
    let (message, channel) = load_message(services, auth, message_id).await?;
    let allowed = message.sender_id == auth.user.id || channel.role().is_some_and(|r| r.manages());
    if !allowed {
        return Err(AppError::NotMessageOwner);
    }
    let Some(file_keys) = services.store.delete_message(message_id).await? else {
        return Err(AppError::MessageNotFound);
    };
    // The rows went with the message; now their bytes.
    services.storage.delete_all(&file_keys).await;
    services.events.emit(Event::MessageDeleted {
        message_id,
        channel_id: message.channel_id,
    });
    Ok(message.channel_id)
}
