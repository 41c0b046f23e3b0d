//! Messages (API.md §6, §12): sends through the group-commit writer, history pages,
//! edits and deletes, each handed to the events module after it commits.

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::channel::ChannelRow;
use crate::models::message::{
    Anchor, MessageContent, MessageRow, MessageView, NewMessage, SendInput, SenderView,
};
use crate::models::page::{CursorKind, Pagination, bad_cursor, encode_cursor};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::channels;
use crate::services::events::Event;
use crate::services::files;
use crate::services::limits::{self, Limit, Subject, Verdict};

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
        return Ok(Sent {
            message: MessageView::from(&first),
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
    // The writer announced it (in commit order) if it is new.
    Ok(Sent {
        message: MessageView::from(&inserted.message),
        created: inserted.created,
        rate,
    })
}

/// A page of history around `anchor`, oldest first.
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
    channels::load(services, channel_id, auth.user.id)
        .await?
        .check_visible()?;
    let mut rows = services
        .store
        .list_messages(channel_id, anchor, limit + 1)
        .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    if !matches!(anchor, Anchor::After(_)) {
        rows.reverse();
    }
    let next = match anchor {
        Anchor::After(_) => rows.last().map(|r| Anchor::After(r.id)),
        Anchor::Latest | Anchor::Before(_) => rows.first().map(|r| Anchor::Before(r.id)),
    };
    Ok(History {
        messages: rows.iter().map(MessageView::from).collect(),
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

/// A message and its channel as the caller sees it; `PRIVATE_CHANNEL` comes first for a
/// private channel the caller is not in.
async fn load_message(
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
    let view = MessageView::from(&updated);
    services.events.emit(Event::MessageEdited(view.clone()));
    Ok(view)
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
