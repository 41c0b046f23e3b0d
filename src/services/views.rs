//! What a message view carries besides its row, put on every view that leaves the server:
//! its reactions (docs/api.md, "Reactions"), its mentions ("Mentions") and, on a thread's
//! root, the thread's counts ("Threads").
//!
//! Two steps: [`fill`] adds what everyone sees (a socket event's payload, a kept newest
//! page: reactions with `me: false`), [`for_reader`] then sets `me` for one reader.

use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageView;
use crate::models::{mention, reaction, thread};
use crate::services::Services;
use crate::services::reactions;
use crate::store::{Extras, ExtrasOf};

/// Puts the extras read with `views`' rows on them.
pub fn decorate(views: &mut [MessageView], extras: Extras) {
    let mut reactions = reaction::summarize(extras.reactions);
    let mut threads = thread::summarize(extras.repliers);
    let mut mentions = mention::summarize(extras.mentions);
    for view in views.iter_mut() {
        if let Some(found) = mentions.remove(&view.id) {
            view.mentions = found.user_ids;
            view.mentions_channel = found.channel;
        }
        view.reactions = reactions.remove(&view.id).unwrap_or_default();
        if let Some(summary) = threads.remove(&view.id) {
            summary.apply(view);
        }
    }
}

/// Reads and puts each message's extras on its view, as everyone sees them.
///
/// # Errors
/// The database cannot be reached.
pub async fn fill(services: &Services, views: &mut [MessageView]) -> Result<(), AppError> {
    if views.is_empty() {
        return Ok(());
    }
    let of = ExtrasOf::new(views.iter().map(|v| {
        (
            v.id,
            v.parent_id.is_none(),
            mention::may_mention(&v.content),
        )
    }));
    let extras = services.store.list_extras(&of).await?;
    decorate(views, extras);
    Ok(())
}

/// [`fill`], then `me` on `reader`'s own reactions: the views as `reader` sees them.
///
/// # Errors
/// The database cannot be reached.
pub async fn for_reader(
    services: &Services,
    reader: Uuid,
    views: &mut [MessageView],
) -> Result<(), AppError> {
    fill(services, views).await?;
    reactions::mark_own(services, reader, views).await?;
    Ok(())
}
