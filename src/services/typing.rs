//! Typing indicators (API.md §10): who may say they are typing where, and the announcement
//! (through [`crate::services::events`]). Relayed, never stored; the timer that ends a
//! typing state by itself belongs to the connection that started it.

use uuid::Uuid;

use crate::error::AppError;
use crate::models::message::SenderView;
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::channels;
use crate::services::events::Event;

/// Whether the caller may say they are typing in `channel` (members only).
///
/// # Errors
/// `CHANNEL_NOT_FOUND`, `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`.
pub async fn check(services: &Services, auth: &AuthUser, channel: Uuid) -> Result<(), AppError> {
    channels::load(services, channel, auth.user.id)
        .await?
        .check_member()?;
    Ok(())
}

/// Tells the channel (all but the typist's own sockets) that `user` started or stopped.
pub fn announce(services: &Services, channel_id: Uuid, user: SenderView, typing: bool) {
    services.events.emit(Event::Typing {
        channel_id,
        user,
        typing,
    });
}
