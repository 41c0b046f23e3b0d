//! Mentions (docs/api.md, "Mentions"): found in a message's content at send and at edit,
//! heard by the members they name as `mention {message}` on their own sockets, listed by
//! `GET /api/mentions`.

use std::collections::HashSet;

use uuid::Uuid;

use crate::error::AppError;
use crate::models::channel::ChannelRow;
use crate::models::mention::{Everyone, Mentions, may_mention, parse};
use crate::models::message::MessageView;
use crate::models::page::{CursorKind, Pagination};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;
use crate::services::views;

/// The mentions of a message about to be written, and who a channel-wide one reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// What is stored with the message.
    pub mentions: Mentions,
    /// The channel-wide mention that notifies (none when absent or not allowed).
    pub everyone: Option<Everyone>,
}

/// Finds the mentions in `content`, sent by `sender` in `channel`: names of its members
/// (others stay text), and `@channel` / `@here` where the sender may use them — anyone in
/// a direct conversation or a channel of at most `MENTION_ALL_MAX_MEMBERS` members, its
/// owner and admins in a larger one.
///
/// # Errors
/// The database cannot be reached.
pub async fn find(
    services: &Services,
    channel: &ChannelRow,
    content: &str,
) -> Result<Found, AppError> {
    if !may_mention(content) {
        return Ok(Found::default());
    }
    let named = parse(content);
    let members = services
        .store
        .find_members_named(channel.id, &named.usernames)
        .await?;
    let user_ids = named
        .usernames
        .iter()
        .filter_map(|name| members.iter().find(|(_, n)| n == name).map(|(id, _)| *id))
        .collect();
    let allowed = channel.is_dm()
        || channel.member_count <= i64::from(services.mention_all_max_members)
        || channel.role().is_some_and(|r| r.manages());
    let everyone = named.everyone.filter(|_| allowed);
    Ok(Found {
        mentions: Mentions {
            user_ids,
            channel: everyone.is_some(),
        },
        everyone,
    })
}

/// Everyone `found` notifies in `channel_id`: the members it names and, for `@channel`,
/// every member (for `@here`, those online now) — never `sender`.
async fn audience(
    services: &Services,
    channel_id: Uuid,
    sender: Uuid,
    found: &Found,
) -> Result<HashSet<Uuid>, AppError> {
    let mut users: HashSet<Uuid> = found.mentions.user_ids.iter().copied().collect();
    if let Some(everyone) = found.everyone {
        let members = services.store.list_member_ids(channel_id).await?;
        match everyone {
            Everyone::Channel => users.extend(members),
            Everyone::Here => {
                let online: HashSet<Uuid> = services
                    .backends
                    .presence
                    .online_users()
                    .await?
                    .into_iter()
                    .collect();
                users.extend(members.into_iter().filter(|m| online.contains(m)));
            }
        }
    }
    users.remove(&sender);
    Ok(users)
}

/// A message with mentions has committed: each member it notifies hears `mention` once —
/// on an edit, only those it did not notify before (`before`: what the message mentioned
/// until then). The message stands whatever happens here; a failure is logged.
pub async fn notify(services: &Services, message: &MessageView, found: &Found, before: &Found) {
    // A channel-wide mention before reached every member, and only members are ever
    // notified: nobody is new to it.
    if (found.mentions.user_ids.is_empty() && found.everyone.is_none()) || before.everyone.is_some()
    {
        return;
    }
    match audience(services, message.channel_id, message.sender.id, found).await {
        Ok(mut users) => {
            for told in &before.mentions.user_ids {
                users.remove(told);
            }
            if !users.is_empty() {
                services.events.emit(Event::Mentioned {
                    user_ids: users.into_iter().collect(),
                    message: Box::new(message.clone()),
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "a message's mentions could not be announced"),
    }
}

/// What a stored message mentioned, as [`Found`] (a channel-wide mention counted as
/// `@channel`).
#[must_use]
pub fn stored(message: &MessageView) -> Found {
    Found {
        mentions: Mentions {
            user_ids: message.mentions.clone(),
            channel: message.mentions_channel,
        },
        everyone: message.mentions_channel.then_some(Everyone::Channel),
    }
}

/// The caller's recent mentions (the `data` of `GET /api/mentions`).
#[derive(Debug, serde::Serialize)]
pub struct MentionPage {
    /// Newest first.
    pub messages: Vec<MessageView>,
    /// More, older?
    pub pagination: Pagination,
}

/// Messages that mention the caller — by name, or by `@channel` / `@here` in a channel
/// they are a member of — in channels they may still read, newest first.
///
/// # Errors
/// The database cannot be reached.
pub async fn list(
    services: &Services,
    auth: &AuthUser,
    before: Option<Uuid>,
    limit: u32,
) -> Result<MentionPage, AppError> {
    let mut rows = services
        .store
        .list_mentions(auth.user.id, before, limit + 1)
        .await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Mentions, |r| r.id.to_string());
    let mut messages: Vec<MessageView> = rows.into_iter().map(MessageView::from).collect();
    views::for_reader(services, auth.user.id, &mut messages).await?;
    Ok(MentionPage {
        messages,
        pagination,
    })
}
