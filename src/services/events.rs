//! The one path by which changes leave the services: after a commit, a service hands an
//! [`Event`] to [`Events::emit`]. Room names and payload shapes live here and nowhere else,
//! so real-time delivery (and, later, a durable per-user event log) has a single source.
//!
//! Events go out on an in-process broadcast channel; the real-time layer subscribes and
//! delivers each to the sockets in its room (on every node, through the Socket.IO adapter).
//! Presence and typing go the same way, so everything a client hears has one order per node.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use uuid::Uuid;

use crate::models::channel::ChannelView;
use crate::models::dm::DmView;
use crate::models::message::{MessageView, SenderView};
use crate::models::read::{ChannelRead, ThreadRead};
use crate::models::thread::ThreadSummary;
use crate::models::timestamp;

/// Why a user's sockets leave a channel's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// The user left the channel.
    Left,
    /// An owner or admin removed the user.
    Removed,
    /// The channel was deleted.
    Deleted,
}

impl LeftReason {
    /// The `reason` of `channel:left`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Removed => "removed",
            Self::Deleted => "deleted",
        }
    }
}

/// A committed change that clients may need to hear about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message was sent.
    NewMessage(MessageView),
    /// A message was edited.
    MessageEdited(MessageView),
    /// A message was deleted.
    MessageDeleted {
        /// Message.
        message_id: Uuid,
        /// Its channel.
        channel_id: Uuid,
        /// A thread's root with replies: kept, emptied, as a tombstone.
        tombstone: bool,
    },
    /// A message mentions users: each of them hears `mention {message}` on their own
    /// sockets, subscribed to its channel's room or not.
    Mentioned {
        /// Who is notified (never the sender).
        user_ids: Vec<Uuid>,
        /// The message.
        message: Box<MessageView>,
    },
    /// A thread's counts changed (a reply was sent or deleted): `thread-updated`.
    ThreadUpdated {
        /// The root.
        message_id: Uuid,
        /// Its channel.
        channel_id: Uuid,
        /// The thread's counts now.
        summary: ThreadSummary,
    },
    /// A message was pinned (`pinned_at` set) or unpinned: `message-pinned` /
    /// `message-unpinned`.
    PinChanged {
        /// Message.
        message_id: Uuid,
        /// Its channel.
        channel_id: Uuid,
        /// When it was pinned; `None` once unpinned.
        pinned_at: Option<DateTime<Utc>>,
        /// Who pinned it.
        pinned_by: Option<Uuid>,
    },
    /// Someone added or removed a reaction: `reaction-added` / `reaction-removed`.
    ReactionChanged {
        /// Message.
        message_id: Uuid,
        /// Its channel.
        channel_id: Uuid,
        /// The emoji.
        emoji: String,
        /// Who.
        user_id: Uuid,
        /// Added (else removed).
        added: bool,
    },
    /// An owner or admin added a user; they hear `channel:added` with the channel as they
    /// now see it.
    MemberAdded {
        /// The user who was added.
        user_id: Uuid,
        /// The channel as that user sees it.
        channel: Box<ChannelView>,
    },
    /// A direct conversation was opened: its members' sockets join its room and hear
    /// `dm:opened`.
    DmOpened {
        /// The conversation (the same for every member).
        dm: Box<DmView>,
        /// Its members.
        member_ids: Vec<Uuid>,
    },
    /// A token was revoked (logout): sockets opened with it hear `error {INVALID_TOKEN}` and
    /// are disconnected.
    TokenRevoked {
        /// The revoked token's id.
        jti: Uuid,
    },
    /// Users stopped being members: their sockets leave the room and hear `channel:left`.
    MembersLeft {
        /// Channel.
        channel_id: Uuid,
        /// Who left.
        user_ids: Vec<Uuid>,
        /// Why.
        reason: LeftReason,
    },
    /// A user's first socket opened: `user:online`.
    UserOnline {
        /// Who.
        user_id: Uuid,
        /// Who hears it.
        audience: Audience,
    },
    /// A user's last socket closed (and the grace passed): `user:offline`.
    UserOffline {
        /// Who.
        user_id: Uuid,
        /// When their last socket closed.
        last_seen: DateTime<Utc>,
        /// Who hears it.
        audience: Audience,
    },
    /// A user's marker moved in a channel or DM: every socket of theirs hears
    /// `channel:read`, so each device clears its badge.
    ChannelRead {
        /// Whose marker.
        user_id: Uuid,
        /// The marker and counts now.
        read: ChannelRead,
    },
    /// A user's marker moved in a thread: every socket of theirs hears `thread:read`.
    ThreadRead {
        /// Whose marker.
        user_id: Uuid,
        /// The marker and counts now.
        read: ThreadRead,
    },
    /// A user started or stopped typing in a channel; the channel hears it, except the
    /// user's own sockets.
    Typing {
        /// Channel.
        channel_id: Uuid,
        /// Who.
        user: SenderView,
        /// Started (`user-typing`) or stopped (`user-stopped-typing`).
        typing: bool,
    },
}

/// Who hears a presence change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every connected socket.
    Everyone,
    /// The sockets of these users.
    Users(Vec<Uuid>),
}

/// Room of every connected socket of a node (what `Audience::Everyone` reaches). A socket
/// leaves it, with every other room, the moment it is gone.
pub const EVERYONE_ROOM: &str = "everyone";

/// Room of a channel's subscribers.
#[must_use]
pub fn channel_room(channel_id: Uuid) -> String {
    format!("channel:{channel_id}")
}

/// Room of the sockets of a direct conversation's members: they are put in it when they
/// connect and when it opens, with no `join-channel`, and it does not count toward a
/// socket's channel subscriptions.
#[must_use]
pub fn dm_room(channel_id: Uuid) -> String {
    format!("dm:{channel_id}")
}

/// Every room that hears a channel's or conversation's events (a socket in both hears each
/// once).
#[must_use]
pub fn conversation_rooms(channel_id: Uuid) -> [String; 2] {
    [channel_room(channel_id), dm_room(channel_id)]
}

/// Room of one user's sockets.
#[must_use]
pub fn user_room(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

/// Room of the sockets opened with one token (a logout disconnects them).
#[must_use]
pub fn token_room(jti: Uuid) -> String {
    format!("token:{jti}")
}

impl Event {
    /// The Socket.IO event this change is delivered as.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::NewMessage(_) => "new-message",
            Self::MessageEdited(_) => "message-edited",
            Self::MessageDeleted { .. } => "message-deleted",
            Self::ThreadUpdated { .. } => "thread-updated",
            Self::Mentioned { .. } => "mention",
            Self::PinChanged {
                pinned_at: Some(_), ..
            } => "message-pinned",
            Self::PinChanged {
                pinned_at: None, ..
            } => "message-unpinned",
            Self::ReactionChanged { added: true, .. } => "reaction-added",
            Self::ReactionChanged { added: false, .. } => "reaction-removed",
            Self::MemberAdded { .. } => "channel:added",
            Self::DmOpened { .. } => "dm:opened",
            Self::TokenRevoked { .. } => "error",
            Self::MembersLeft { .. } => "channel:left",
            Self::UserOnline { .. } => "user:online",
            Self::UserOffline { .. } => "user:offline",
            Self::ChannelRead { .. } => "channel:read",
            Self::ThreadRead { .. } => "thread:read",
            Self::Typing { typing: true, .. } => "user-typing",
            Self::Typing { typing: false, .. } => "user-stopped-typing",
        }
    }

    /// The payload this change is delivered with (a message is its view).
    #[must_use]
    pub fn payload(&self) -> Value {
        match self {
            Self::NewMessage(m) | Self::MessageEdited(m) => json!(m),
            Self::MessageDeleted {
                message_id,
                channel_id,
                tombstone,
            } => {
                json!({ "messageId": message_id, "channelId": channel_id, "tombstone": tombstone })
            }
            Self::Mentioned { message, .. } => json!({ "message": message }),
            Self::ThreadUpdated {
                message_id,
                channel_id,
                summary,
            } => json!({
                "messageId": message_id,
                "channelId": channel_id,
                "replyCount": summary.reply_count,
                "lastReplyAt": summary.last_reply_at.map(timestamp),
                "participants": summary.participants,
            }),
            Self::PinChanged {
                message_id,
                channel_id,
                pinned_at,
                pinned_by,
            } => json!({
                "messageId": message_id,
                "channelId": channel_id,
                "pinnedAt": pinned_at.map(timestamp),
                "pinnedBy": pinned_by,
            }),
            Self::ReactionChanged {
                message_id,
                channel_id,
                emoji,
                user_id,
                ..
            } => json!({
                "messageId": message_id,
                "channelId": channel_id,
                "emoji": emoji,
                "userId": user_id,
            }),
            Self::MemberAdded { channel, .. } => json!({ "channel": channel }),
            Self::DmOpened { dm, .. } => json!({ "dm": dm }),
            Self::TokenRevoked { .. } => {
                json!({ "code": "INVALID_TOKEN", "message": "Invalid or revoked token" })
            }
            Self::MembersLeft {
                channel_id, reason, ..
            } => {
                json!({ "channelId": channel_id, "reason": reason.as_str() })
            }
            Self::UserOnline { user_id, .. } => json!({ "userId": user_id }),
            Self::UserOffline {
                user_id, last_seen, ..
            } => json!({ "userId": user_id, "lastSeen": timestamp(*last_seen) }),
            Self::ChannelRead { read, .. } => json!(read),
            Self::ThreadRead { read, .. } => json!(read),
            Self::Typing {
                channel_id, user, ..
            } => json!({ "channelId": channel_id, "user": user }),
        }
    }
}

/// Sends waiting for their message's broadcast to be published.
type Receipts = Arc<std::sync::Mutex<std::collections::HashMap<Uuid, oneshot::Sender<()>>>>;

/// The emit path of one node.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    /// On many nodes: a send is answered only once its `new-message` was published to the
    /// other nodes, so a node that dies right after answering has still told everyone.
    receipts: Option<Receipts>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// A bus that buffers this many events per slow subscriber before it starts lagging.
    const CAPACITY: usize = 65_536;

    /// A new bus.
    #[must_use]
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(Self::CAPACITY);
        Self { tx, receipts: None }
    }

    /// A bus whose new messages can be waited on until they are published (many nodes).
    #[must_use]
    pub fn with_receipts() -> Self {
        Self {
            receipts: Some(Receipts::default()),
            ..Self::new()
        }
    }

    fn receipts(
        &self,
    ) -> Option<std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, oneshot::Sender<()>>>>
    {
        self.receipts
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Emits a new message; on a bus with receipts, the returned receiver completes once
    /// the delivery task has published it ([`Events::published`]).
    pub fn emit_message(&self, message: MessageView) -> Option<oneshot::Receiver<()>> {
        let id = message.id;
        let receipt = self.receipts().map(|mut waiting| {
            let (tx, rx) = oneshot::channel();
            waiting.insert(id, tx);
            rx
        });
        self.emit(Event::NewMessage(message));
        receipt
    }

    /// The delivery task published a new message's broadcast.
    pub fn published(&self, message: Uuid) {
        if let Some(tx) = self
            .receipts()
            .and_then(|mut waiting| waiting.remove(&message))
        {
            let _ = tx.send(());
        }
    }

    /// A send stopped waiting for its receipt (it waited too long).
    pub fn forget_receipt(&self, message: Uuid) {
        if let Some(mut waiting) = self.receipts() {
            waiting.remove(&message);
        }
    }

    /// Hands a committed change to the subscribers (none is fine).
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Every event emitted from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
