//! Messages (API.md §6, §12): sends through the group-commit writer, history pages,
//! edits and deletes, each handed to the events module after it commits.

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::channel::ChannelRow;
use crate::models::message::{
    Anchor, MessageContent, MessageRow, MessageView, NewMessage, SendInput, SenderView, VersionView,
};
use crate::models::page::{CursorKind, Pagination, bad_cursor, encode_cursor};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::channels;
use crate::services::events::Event;
use crate::services::files;
use crate::services::limits::{self, Limit, Subject, Verdict};
use crate::services::mentions::{self, Found};
use crate::services::newest_pages::Kept;
use crate::services::{reactions, threads, views};
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

/// The history cursor: a direction, the id to continue from, and whether the listing is
/// collapsed (roots only).
#[must_use]
pub fn encode_history_cursor(anchor: Anchor, collapsed: bool) -> Option<String> {
    let mode = if collapsed { "c" } else { "" };
    match anchor {
        Anchor::Latest => None,
        Anchor::Before(id) => Some(encode_cursor(
            CursorKind::Messages,
            &format!("{mode}b:{id}"),
        )),
        Anchor::After(id) => Some(encode_cursor(
            CursorKind::Messages,
            &format!("{mode}a:{id}"),
        )),
    }
}

/// Reads a decoded history cursor: where it continues, and whether collapsed.
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor`.
pub fn parse_history_cursor(decoded: &str) -> Result<(Anchor, bool), AppError> {
    let (direction, id) = decoded.split_once(':').ok_or_else(bad_cursor)?;
    let id = Uuid::try_parse(id).map_err(|_| bad_cursor())?;
    let (collapsed, direction) = match direction.strip_prefix('c') {
        Some(rest) => (true, rest),
        None => (false, direction),
    };
    match direction {
        "b" => Ok((Anchor::Before(id), collapsed)),
        "a" => Ok((Anchor::After(id), collapsed)),
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
    let channel = if input.parent_id.is_some()
        || !input.attachments.is_empty()
        || crate::models::mention::may_mention(input.content.as_str())
    {
        let channel = channels::load(services, channel_id, auth.user.id).await?;
        channel.check_member()?;
        Some(channel)
    } else {
        None
    };
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
    // A reply to a reply joins the same thread: the stored parent is always the root.
    let root = match input.parent_id {
        None => None,
        Some(parent) => Some(thread_root(services, channel_id, parent).await?),
    };
    // Checked here to name the keys at fault; linked inside the write, which refuses a
    // file attached elsewhere meanwhile.
    let (attachments, attachment_ids) =
        files::attachments(services, auth, &input.attachments).await?;
    let found = match &channel {
        Some(channel) => mentions::find(services, channel, input.content.as_str()).await?,
        None => Found::default(),
    };
    let inserted = match services
        .writer
        .insert(NewMessage {
            channel_id,
            sender: SenderView::from(&auth.user),
            content: input.content,
            attachments,
            attachment_ids,
            parent_id: root.as_ref().map(|r| r.id),
            nonce: input.nonce,
            mentions: found.mentions.clone(),
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
    // reactions or replies yet.
    let message = if inserted.created {
        if let Some(root) = &root {
            threads::replied(services, root, auth.user.id, &found.mentions.user_ids).await;
        }
        let view = MessageView::from(&inserted.message);
        mentions::notify(services, &view, &found, &Found::default()).await;
        view
    } else {
        replayed(services, auth, &inserted.message).await?
    };
    Ok(Sent {
        message,
        created: inserted.created,
        rate,
    })
}

/// The root of the thread a reply to `parent` joins: `parent` itself, or its root when it
/// is a reply.
///
/// # Errors
/// `VALIDATION_ERROR` on `parentId` for a message of another channel or none;
/// `MESSAGE_NOT_FOUND` for a deleted root (a tombstone takes no new reply).
async fn thread_root(
    services: &Services,
    channel_id: Uuid,
    parent: Uuid,
) -> Result<MessageRow, AppError> {
    let foreign = || AppError::field("parentId", "must name a message of the same channel");
    let parent = services
        .store
        .fetch_message(parent)
        .await?
        .filter(|p| p.channel_id == channel_id)
        .ok_or_else(foreign)?;
    let root = match parent.parent_id {
        None => parent,
        Some(root) => services
            .store
            .fetch_message(root)
            .await?
            .ok_or(AppError::MessageNotFound)?,
    };
    if root.deleted_at.is_some() {
        return Err(AppError::MessageNotFound);
    }
    Ok(root)
}

/// The answer to a send whose nonce had committed before: that message as it is now (its
/// reactions too), announced again if its broadcast may have been lost.
async fn replayed(
    services: &Services,
    auth: &AuthUser,
    first: &MessageRow,
) -> Result<MessageView, AppError> {
    let mut list = [MessageView::from(first)];
    views::for_reader(services, auth.user.id, &mut list).await?;
    let [view] = list;
    recover_announcement(services, &views::as_everyone(&view));
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

/// Which page of a channel's history: where it starts, how long, and whether collapsed
/// (roots and plain messages only, docs/api.md "Threads").
#[derive(Debug, Clone, Copy)]
pub struct PageSpec {
    /// Where it starts.
    pub anchor: Anchor,
    /// At most this many messages.
    pub limit: u32,
    /// Replies left out.
    pub collapsed: bool,
}

/// A page of history as everyone who may read it sees it (no reaction marked `me`).
async fn shared_history(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    spec: PageSpec,
) -> Result<History, AppError> {
    let PageSpec {
        anchor,
        limit,
        collapsed,
    } = spec;
    // The page's query checks that the caller may read the channel; only an empty page
    // (no such channel, a private one, or simply nothing there) needs the channel loaded to
    // tell which — one round trip for a page, two for the rest.
    let (mut rows, extras) = services
        .store
        .list_history(channel_id, auth.user.id, anchor, limit + 1, collapsed)
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
    let mut messages: Vec<MessageView> = rows.into_iter().map(MessageView::from).collect();
    views::decorate(&mut messages, extras);
    Ok(History {
        messages,
        pagination: Pagination {
            has_more,
            next_cursor: if has_more {
                next.and_then(|next| encode_history_cursor(next, collapsed))
            } else {
                None
            },
        },
    })
}

/// A page of history, oldest first, as the caller sees it, serialised (the `data` of
/// `GET …/messages`). The newest (expanded) page is served from
/// [`crate::services::newest_pages`] while its channel's history version stays the one it
/// was built at; the version is read first, so a page built from rows newer than its
/// version is only ever rebuilt, never stale.
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`.
pub async fn history_json(
    services: &Services,
    auth: &AuthUser,
    channel_id: Uuid,
    spec: PageSpec,
) -> Result<Bytes, AppError> {
    let version = match spec.anchor {
        Anchor::Latest if !spec.collapsed => {
            services
                .store
                .history_version(channel_id, auth.user.id)
                .await?
        }
        Anchor::Latest | Anchor::Before(_) | Anchor::After(_) => None,
    };
    if let Some(version) = version
        && let Some(kept) = services.newest_pages.get(channel_id, version, spec.limit)
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
    let mut page = shared_history(services, auth, channel_id, spec).await?;
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
        services
            .newest_pages
            .put(channel_id, version, spec.limit, kept);
    }
    if reactions::mark_own(services, auth.user.id, &mut page.messages).await? {
        return Ok(Bytes::from(
            serde_json::to_vec(&page).map_err(AppError::internal)?,
        ));
    }
    Ok(body)
}

/// A message and its channel as the caller sees it, for a change to it: a tombstone is
/// `MESSAGE_NOT_FOUND`. `PRIVATE_CHANNEL` comes first for a private channel the caller is
/// not in.
pub(crate) async fn load_message(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
) -> Result<(MessageRow, ChannelRow), AppError> {
    let (message, channel) = load_readable(services, auth, message_id).await?;
    if message.deleted_at.is_some() {
        return Err(AppError::MessageNotFound);
    }
    Ok((message, channel))
}

/// A message and its channel as the caller sees it, tombstones included (reading a
/// thread, following it).
pub(crate) async fn load_readable(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
) -> Result<(MessageRow, ChannelRow), AppError> {
    let (message, channel) = services
        .store
        .fetch_message_in(message_id, auth.user.id)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let channel = channel.ok_or(AppError::MessageNotFound)?;
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
    let (message, channel) = load_message(services, auth, message_id).await?;
    if message.sender_id != auth.user.id {
        return Err(AppError::NotMessageOwner);
    }
    let found = mentions::find(services, &channel, content.as_str()).await?;
    // What it mentioned until now: only those it newly mentions are notified.
    let before = if found == Found::default() {
        Found::default()
    } else {
        let mut old = [MessageView::from(&message)];
        views::fill(services, &mut old).await?;
        mentions::stored(&old[0])
    };
    let updated = services
        .store
        .update_message(message_id, content.as_str(), Utc::now(), &found.mentions)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let mut list = [MessageView::from(&updated)];
    views::for_reader(services, auth.user.id, &mut list).await?;
    let [view] = list;
    let shared = views::as_everyone(&view);
    services.events.emit(Event::MessageEdited(shared.clone()));
    mentions::notify(services, &shared, &found, &before).await;
    Ok(view)
}

/// A page of a message's versions, oldest first (docs/api.md, "Edit history").
#[derive(Debug)]
pub struct Versions {
    /// The versions: the original, each edit's, the current content last.
    pub versions: Vec<VersionView>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

/// The versions of a message's content after version `after`: those its edits replaced,
/// then the current one, for whoever may read it.
///
/// # Errors
/// `MESSAGE_NOT_FOUND` (also for a tombstone), `PRIVATE_CHANNEL`.
pub async fn versions(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Versions, AppError> {
    load_message(services, auth, message_id).await?;
    // The stored versions and the current content come from one statement: an edit made
    // meanwhile shows wholly or not at all.
    let mut all: Vec<(Option<Uuid>, VersionView)> = services
        .store
        .list_versions(message_id, after, limit + 1)
        .await?
        .into_iter()
        .map(|v| (v.id, VersionView::new(v.content, v.written_at)))
        .collect();
    // Deleted since the check: a last page without the current content.
    if all.len() <= limit as usize && all.last().is_none_or(|(id, _)| id.is_some()) {
        return Err(AppError::MessageNotFound);
    }
    let pagination = Pagination::cut(&mut all, limit, CursorKind::Versions, |(id, _)| {
        id.map(|id| id.to_string()).unwrap_or_default()
    });
    Ok(Versions {
        versions: all.into_iter().map(|(_, v)| v).collect(),
        pagination,
    })
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
    let by = auth.actor();
    let pin = pinned.then_some((auth.user.id, by.at));
    let (row, changed) = match services
        .store
        .set_pin(message_id, pin, MAX_PINS, Some(&by))
        .await
    {
        Ok(Some(done)) => done,
        Ok(None) => return Err(AppError::MessageNotFound),
        Err(StoreError::LimitReached) => {
            return Err(AppError::LimitReached(format!(
                "A channel holds at most {MAX_PINS} pinned messages; unpin one first"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut list = [MessageView::from(&row)];
    views::for_reader(services, auth.user.id, &mut list).await?;
    let [view] = list;
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
    let mut list: Vec<MessageView> = services
        .store
        .list_pins(channel_id, MAX_PINS)
        .await?
        .iter()
        .map(MessageView::from)
        .collect();
    views::for_reader(services, auth.user.id, &mut list).await?;
    Ok(list)
}

/// Deletes a message (its sender, or the channel's owner or an admin). A thread's root
/// with replies stays as a tombstone; a reply's thread hears its new counts.
/// Returns the channel it was in.
///
/// # Errors
/// `MESSAGE_NOT_FOUND` (a tombstone too), `PRIVATE_CHANNEL`, `NOT_MESSAGE_OWNER`.
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
    let Some(deleted) = services
        .store
        .delete_message(message_id, Utc::now(), Some(&auth.actor()))
        .await?
    else {
        return Err(AppError::MessageNotFound);
    };
    // The rows went with the message; now their bytes.
    services.storage.delete_all(&deleted.file_keys).await;
    services.events.emit(Event::MessageDeleted {
        message_id,
        channel_id: message.channel_id,
        tombstone: deleted.tombstone,
    });
    if let Some(root) = message.parent_id {
        threads::announce(services, root, message.channel_id).await;
    }
    Ok(message.channel_id)
}
