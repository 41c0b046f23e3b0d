//! Messages (API.md §6): content, nonces, the stored row and the wire view.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::input::Fields;
use super::parse_id;
use super::timestamp;
use super::user::UserRow;
use crate::error::AppError;

/// Trimmed content of 1–4000 characters, stored and returned exactly (no HTML rewriting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    /// Longest content, in characters (code points).
    pub const MAX_CHARS: usize = 4000;

    /// Parses content: trims leading and trailing whitespace, then counts characters.
    ///
    /// # Errors
    /// A message giving the range.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        let n = trimmed.chars().count();
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most 4000 characters; it has {n}"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The content.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen idempotency key: 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// Parses a nonce (kept exactly as sent).
    ///
    /// # Errors
    /// A message giving the range.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if (1..=100).contains(&raw.chars().count()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 100 characters".into())
        }
    }

    /// The nonce.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An earlier content of a message, kept by the edit that replaced it (docs/api.md, "Edit
/// history").
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    /// UUIDv7: versions sort by it, oldest first; `None` for the current content, last.
    pub id: Option<Uuid>,
    /// The content as it was.
    pub content: String,
    /// When it was written: the message's creation, or the edit before.
    pub written_at: DateTime<Utc>,
}

/// One version of a message's content as clients see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VersionView {
    /// The content.
    pub content: String,
    /// When it was written: `createdAt` for the original, `editedAt` for an edit.
    #[schema(format = DateTime)]
    pub at: String,
}

impl VersionView {
    /// `content` as written at `at`.
    #[must_use]
    pub fn new(content: String, at: DateTime<Utc>) -> Self {
        Self {
            content,
            at: timestamp(at),
        }
    }
}

/// A message as stored, with its sender's public profile (one join, no query per message).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    /// UUIDv7, increasing in commit order within the channel.
    pub id: Uuid,
    /// Channel.
    pub channel_id: Uuid,
    /// Sender.
    pub sender_id: Uuid,
    /// Content.
    pub content: String,
    /// JSON array of file objects.
    pub attachments: String,
    /// The message this one replies to.
    pub parent_id: Option<Uuid>,
    /// Idempotency key.
    pub nonce: Option<String>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Send time.
    pub created_at: DateTime<Utc>,
    /// Sender's username.
    pub sender_username: String,
    /// Sender's display name.
    pub sender_display_name: String,
    /// Sender's avatar.
    pub sender_avatar_url: Option<String>,
    /// When it was pinned.
    pub pinned_at: Option<DateTime<Utc>>,
    /// Who pinned it.
    pub pinned_by: Option<Uuid>,
    /// When it was deleted: only a thread's root keeps a row then (a tombstone).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Users mentioned by name, in order (set on a row just written; reads take them from
    /// the store's extras).
    #[sqlx(skip)]
    pub mentions: Vec<Uuid>,
    /// `@channel` or `@here` notified the channel (as `mentions`).
    #[sqlx(skip)]
    pub mentions_channel: bool,
}

/// The sender's public profile inside a message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SenderView {
    /// User id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Avatar.
    #[schema(required = true)]
    pub avatar_url: Option<String>,
}

impl From<&UserRow> for SenderView {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            avatar_url: user.avatar_url.clone(),
        }
    }
}

/// A send: the body of `POST /api/channels/{id}/messages`, and the `send-message` payload
/// less its `channelId`.
#[derive(Debug)]
pub struct SendInput {
    /// Content.
    pub content: MessageContent,
    /// Attachment file keys.
    pub attachments: Vec<String>,
    /// The message replied to.
    pub parent_id: Option<Uuid>,
    /// Idempotency key.
    pub nonce: Option<Nonce>,
}

impl SendInput {
    /// Reads a send.
    ///
    /// # Errors
    /// `VALIDATION_ERROR` listing each failing field (and any recorded before).
    pub fn from_fields(mut f: Fields) -> Result<Self, AppError> {
        let content = f.required("content", |s| MessageContent::parse(&s));
        let parent_id = f.optional("parentId", |s| {
            parse_id(&s).ok_or_else(|| "must be a message id".to_owned())
        });
        let nonce = f.optional("nonce", |s| Nonce::parse(&s));
        let attachments = f.attachment_keys("attachments");
        f.finish(())?;
        let content = content.ok_or_else(|| AppError::field("content", "is required"))?;
        Ok(Self {
            content,
            attachments: attachments.unwrap_or_default(),
            parent_id,
            nonce,
        })
    }
}

/// An edit: the body of `PATCH /api/messages/{id}`, and the `edit-message` payload less
/// its `messageId`.
#[derive(Debug)]
pub struct EditInput {
    /// The new content.
    pub content: MessageContent,
}

impl EditInput {
    /// Reads an edit.
    ///
    /// # Errors
    /// `VALIDATION_ERROR` listing each failing field (and any recorded before).
    pub fn from_fields(mut f: Fields) -> Result<Self, AppError> {
        let content = f.required("content", |s| MessageContent::parse(&s));
        let content = f
            .finish(content)?
            .ok_or_else(|| AppError::field("content", "is required"))?;
        Ok(Self { content })
    }
}

/// The `message` object of the contract.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Message id.
    pub id: Uuid,
    /// Channel id.
    pub channel_id: Uuid,
    /// Sender.
    pub sender: SenderView,
    /// Content.
    pub content: String,
    /// File objects, in the order the sender gave them.
    #[schema(value_type = Vec<super::file::FileView>)]
    pub attachments: Value,
    /// Replied-to message.
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
    /// Idempotency key.
    #[schema(required = true)]
    pub nonce: Option<String>,
    /// Last edit.
    #[schema(required = true, format = DateTime)]
    pub edited_at: Option<String>,
    /// Send time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was pinned in its channel.
    #[schema(required = true, format = DateTime)]
    pub pinned_at: Option<String>,
    /// Who pinned it.
    #[schema(required = true)]
    pub pinned_by: Option<Uuid>,
    /// Its reactions, in the order each emoji was first used.
    pub reactions: Vec<super::reaction::ReactionView>,
    /// Replies in its thread (0 on a reply).
    pub reply_count: u32,
    /// Time of the newest reply.
    #[schema(required = true, format = DateTime)]
    pub last_reply_at: Option<String>,
    /// The first users to reply, in the order they first replied (at most 5).
    pub participants: Vec<Uuid>,
    /// When this thread's root was deleted (a tombstone: no content, attachments,
    /// reactions or pin; its replies stay).
    #[schema(required = true, format = DateTime)]
    pub deleted_at: Option<String>,
    /// Members mentioned by `@username`, in the order they appear.
    pub mentions: Vec<Uuid>,
    /// `@channel` or `@here` notified the channel.
    pub mentions_channel: bool,
}

impl From<MessageRow> for MessageView {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            channel_id: row.channel_id,
            sender: SenderView {
                id: row.sender_id,
                username: row.sender_username,
                display_name: row.sender_display_name,
                avatar_url: row.sender_avatar_url,
            },
            content: row.content,
            attachments: attachments_value(&row.attachments),
            parent_id: row.parent_id,
            nonce: row.nonce,
            edited_at: row.edited_at.map(timestamp),
            created_at: timestamp(row.created_at),
            pinned_at: row.pinned_at.map(timestamp),
            pinned_by: row.pinned_by,
            reactions: Vec::new(),
            reply_count: 0,
            last_reply_at: None,
            participants: Vec::new(),
            deleted_at: row.deleted_at.map(timestamp),
            mentions: row.mentions,
            mentions_channel: row.mentions_channel,
        }
    }
}

impl From<&MessageRow> for MessageView {
    fn from(row: &MessageRow) -> Self {
        Self::from(row.clone())
    }
}

/// The stored attachments (a JSON array the server wrote) as a value; most messages have
/// none, and their `[]` is answered without parsing.
fn attachments_value(stored: &str) -> Value {
    if stored == "[]" {
        return Value::Array(Vec::new());
    }
    serde_json::from_str(stored).unwrap_or_else(|_| Value::Array(Vec::new()))
}

/// What a send writes; the id is minted inside the write.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Channel.
    pub channel_id: Uuid,
    /// Sender and their profile (copied into the answer without a query).
    pub sender: SenderView,
    /// Content.
    pub content: MessageContent,
    /// JSON array of file objects.
    pub attachments: String,
    /// The files those objects describe, linked to the message inside its write.
    pub attachment_ids: Vec<Uuid>,
    /// Replied-to message (checked to be in the same channel).
    pub parent_id: Option<Uuid>,
    /// Idempotency key.
    pub nonce: Option<Nonce>,
    /// Its mentions, found by the service in its content; written with it.
    pub mentions: super::mention::Mentions,
}

/// The result of one send.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The message (the earlier one when the nonce was seen before).
    pub message: MessageRow,
    /// `false` when the nonce matched an earlier message and nothing was written.
    pub created: bool,
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The newest messages.
    Latest,
    /// Messages right before this id (older).
    Before(Uuid),
    /// Messages right after this id (newer).
    After(Uuid),
}

/// The next larger UUID: `last + 1` as a 128-bit number.
#[must_use]
pub fn successor(last: Uuid) -> Uuid {
    Uuid::from_u128(last.as_u128().wrapping_add(1))
}

/// The id for a message written at `at` in a channel whose newest id is `last`: a fresh
/// UUIDv7 of `at`'s millisecond (so the id's time and `createdAt` name the same millisecond,
/// which search's `before`/`after` rely on), or `last + 1` when `at` has not moved past
/// `last` (so ids rise in commit order).
#[must_use]
pub fn mint_id(last: Option<Uuid>, at: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or_default();
    let fresh = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        at.timestamp_subsec_nanos(),
    ));
    match last {
        Some(last) if fresh <= last => successor(last),
        _ => fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_counted_in_characters_not_bytes() {
        assert_eq!(MessageContent::parse("  hi  \n").unwrap().as_str(), "hi");
        assert!(MessageContent::parse(" \n\t ").is_err());
        assert!(
            MessageContent::parse(&"é".repeat(4000)).is_ok(),
            "8,000 bytes, 4,000 characters"
        );
        assert!(MessageContent::parse(&"x".repeat(4001)).is_err());
        let html = "<script>alert('x')</script> & <b>";
        assert_eq!(
            MessageContent::parse(html).unwrap().as_str(),
            html,
            "stored verbatim"
        );
    }

    #[test]
    fn nonces_take_1_to_100_characters() {
        assert!(Nonce::parse("").is_err());
        assert!(Nonce::parse(&"n".repeat(100)).is_ok());
        assert!(Nonce::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn minted_ids_always_exceed_the_channels_last_id() {
        let future = Uuid::from_u128(Uuid::now_v7().as_u128() + (1u128 << 100));
        let id = mint_id(Some(future), Utc::now());
        assert!(id > future);
        assert_eq!(id, successor(future));
        let past = Uuid::now_v7();
        assert!(mint_id(Some(past), Utc::now()) > past);
        assert!(mint_id(None, Utc::now()).get_version_num() == 7);
        let at = Utc::now();
        assert_eq!(
            crate::models::search::first_id_at(at).as_u128() >> 80,
            mint_id(None, at).as_u128() >> 80,
            "the id's millisecond is the write's"
        );
    }
}
