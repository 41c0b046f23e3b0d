//! Reactions (docs/api.md, "Reactions"): adding and removing one, and putting a message's
//! reactions on every view of it that leaves the server.
//!
//! A view gets its reactions in two steps: [`fill`] adds what everyone sees (counts, first
//! users, `me: false` — a socket event's payload, and a kept newest page), [`mark_own`]
//! sets `me` for one reader.

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageView;
use crate::models::reaction::{Emoji, MAX_DISTINCT, summarize};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;
use crate::store::StoreError;

/// Puts each message's reactions on its view, as everyone sees them (`me: false`).
///
/// # Errors
/// The database cannot be reached.
pub async fn fill(services: &Services, views: &mut [MessageView]) -> Result<(), AppError> {
    if views.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = views.iter().map(|v| v.id).collect();
    let mut by_message = summarize(services.store.list_reactions(&ids).await?);
    for view in views.iter_mut() {
        view.reactions = by_message.remove(&view.id).unwrap_or_default();
    }
    Ok(())
}

/// Sets `me` on the reactions of `views` that `reader` made; whether there were any.
///
/// # Errors
/// The database cannot be reached.
pub async fn mark_own(
    services: &Services,
    reader: Uuid,
    views: &mut [MessageView],
) -> Result<bool, AppError> {
    let reacted: Vec<Uuid> = views
        .iter()
        .filter(|v| !v.reactions.is_empty())
        .map(|v| v.id)
        .collect();
    if reacted.is_empty() {
        return Ok(false);
    }
    let own: HashSet<(Uuid, String)> = services
        .store
        .list_own_reactions(reader, &reacted)
        .await?
        .into_iter()
        .collect();
    if own.is_empty() {
        return Ok(false);
    }
    for view in views.iter_mut() {
        for reaction in &mut view.reactions {
            reaction.me = own.contains(&(view.id, reaction.emoji.clone()));
        }
    }
    Ok(true)
}

/// [`fill`] then [`mark_own`]: the views as `reader` sees them.
///
/// # Errors
/// The database cannot be reached.
pub async fn for_reader(
    services: &Services,
    reader: Uuid,
    views: &mut [MessageView],
) -> Result<(), AppError> {
    fill(services, views).await?;
    mark_own(services, reader, views).await?;
    Ok(())
}

/// Adds (`add`) or removes the caller's `emoji` on a message; members of its channel only.
/// Idempotent: only a change is announced (`reaction-added` / `reaction-removed`).
///
/// # Errors
/// `MESSAGE_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`, `LIMIT_REACHED` for a
/// 21st different emoji.
pub async fn react(
    services: &Services,
    auth: &AuthUser,
    message_id: Uuid,
    emoji: &Emoji,
    add: bool,
) -> Result<MessageView, AppError> {
    let (_, channel) = super::messages::load_message(services, auth, message_id).await?;
    channel.check_member()?;
    let change = add.then(|| (Utc::now(), MAX_DISTINCT));
    let (channel_id, changed) = match services
        .store
        .set_reaction(message_id, auth.user.id, emoji.as_str(), change)
        .await
    {
        Ok(Some(done)) => done,
        Ok(None) => return Err(AppError::MessageNotFound),
        Err(StoreError::LimitReached) => {
            return Err(AppError::LimitReached(format!(
                "A message takes at most {MAX_DISTINCT} different reactions"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if changed {
        services.events.emit(Event::ReactionChanged {
            message_id,
            channel_id,
            emoji: emoji.as_str().to_owned(),
            user_id: auth.user.id,
            added: add,
        });
    }
    let row = services
        .store
        .fetch_message(message_id)
        .await?
        .ok_or(AppError::MessageNotFound)?;
    let mut views = [MessageView::from(row)];
    for_reader(services, auth.user.id, &mut views).await?;
    let [view] = views;
    Ok(view)
}
