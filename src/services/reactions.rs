//! Reactions (docs/api.md, "Reactions"): adding and removing one, and marking a reader's
//! own on views that [`super::views`] filled.

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageView;
use crate::models::reaction::{Emoji, MAX_DISTINCT};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;
use crate::services::views;
use crate::store::{Reacted, StoreError};

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
    views::mark_own(views, &own);
    Ok(!own.is_empty())
}

/// Adds (`add`) or removes the caller's `emoji` on a message; members of its channel only.
/// Idempotent: only a change is announced (`reaction-added` / `reaction-removed`).
///
/// The write checks that the message is there and the caller a member, and answers with
/// the message as the caller sees it: one trip to the database. Only a refusal loads the
/// message and its channel, to say why with the rules' own errors.
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
    let change = add.then(|| (Utc::now(), MAX_DISTINCT));
    // A refusal whose reason has gone by the time it is looked up (the caller joined in
    // between) is tried once more.
    for _ in 0..2 {
        match services
            .store
            .set_reaction(message_id, auth.user.id, emoji.as_str(), change)
            .await
        {
            Ok(Reacted::Done {
                message,
                extras,
                changed,
            }) => {
                if changed {
                    services.events.emit(Event::ReactionChanged {
                        message_id,
                        channel_id: message.channel_id,
                        emoji: emoji.as_str().to_owned(),
                        user_id: auth.user.id,
                        added: add,
                    });
                }
                let mut views = [MessageView::from(*message)];
                views::decorate(&mut views, extras);
                let [view] = views;
                return Ok(view);
            }
            Ok(Reacted::Refused) => {
                let (_, channel) =
                    super::messages::load_message(services, auth, message_id).await?;
                channel.check_member()?;
            }
            Err(StoreError::LimitReached) => {
                return Err(AppError::LimitReached(format!(
                    "A message takes at most {MAX_DISTINCT} different reactions"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::MessageNotFound)
}
