//! What a message view carries besides its row, put on every view that leaves the server:
//! its reactions (docs/api.md, "Reactions"), its mentions ("Mentions") and, on a thread's
//! root, the thread's counts ("Threads").
//!
//! [`fill`] adds what everyone sees (a socket event's payload, a kept newest page:
//! reactions with `me: false`); [`for_reader`] adds the same with `me` set for one reader.

use std::collections::HashSet;

use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::MessageView;
use crate::models::{mention, reaction, thread};
use crate::services::Services;
use crate::store::{Extras, ExtrasOf};

/// Puts the extras read with `views`' rows on them (`me` on the reader's own reactions,
/// when they were read for one).
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
    mark_own(views, &extras.own.into_iter().collect());
}

/// Sets `me` on the reactions of `views` among `own` (`(message, emoji)` of one reader).
pub fn mark_own(views: &mut [MessageView], own: &HashSet<(Uuid, String)>) {
    if own.is_empty() {
        return;
    }
    for view in views.iter_mut() {
        for reaction in &mut view.reactions {
            reaction.me = own.contains(&(view.id, reaction.emoji.clone()));
        }
    }
}

/// `view` as everyone sees it: no reaction marked `me` (an event's payload).
#[must_use]
pub fn as_everyone(view: &MessageView) -> MessageView {
    let mut view = view.clone();
    for reaction in &mut view.reactions {
        reaction.me = false;
    }
    view
}

/// Reads and puts each message's extras on its view, as `reader` sees them (`me` on their
/// own reactions) or, without one, as everyone does.
async fn read(
    services: &Services,
    reader: Option<Uuid>,
    views: &mut [MessageView],
) -> Result<(), AppError> {
    if views.is_empty() {
        return Ok(());
    }
    let mut of = ExtrasOf::new(views.iter().map(|v| {
        (
            v.id,
            v.parent_id.is_none(),
            mention::may_mention(&v.content),
        )
    }));
    if let Some(reader) = reader {
        of = of.for_reader(reader);
    }
    let extras = services.store.list_extras(&of).await?;
    decorate(views, extras);
    Ok(())
}

/// Reads and puts each message's extras on its view, as everyone sees them.
///
/// # Errors
/// The database cannot be reached.
pub async fn fill(services: &Services, views: &mut [MessageView]) -> Result<(), AppError> {
    read(services, None, views).await
}

/// [`fill`] with `me` on `reader`'s own reactions, read in the same hand-off: the views as
/// `reader` sees them.
///
/// # Errors
/// The database cannot be reached.
pub async fn for_reader(
    services: &Services,
    reader: Uuid,
    views: &mut [MessageView],
) -> Result<(), AppError> {
    read(services, Some(reader), views).await
}
