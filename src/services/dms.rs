//! Direct conversations (docs/api.md, "Direct messages"): opened once per set of people,
//! listed by activity, and otherwise channels — their messages go through the message
//! service like any channel's.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::channel::ChannelRow;
use crate::models::dm::{DmMembers, DmRow, DmView};
use crate::models::message::{Anchor, MessageView};
use crate::models::page::{CursorKind, Pagination};
use crate::models::user::{UserRow, UserView};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::events::Event;

/// A page of the caller's conversations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DmPage {
    /// The most recently active first.
    pub dms: Vec<DmView>,
    /// Continues with less active ones.
    pub pagination: Pagination,
}

/// Opens the conversation of the caller and `user_ids`, or returns the one they have:
/// the conversation and whether it was opened now.
///
/// # Errors
/// `VALIDATION_ERROR` on `userIds` (nobody else, more than eight people, unknown users).
pub async fn open(
    services: &Services,
    auth: &AuthUser,
    user_ids: &[Uuid],
) -> Result<(DmView, bool), AppError> {
    let members =
        DmMembers::new(auth.user.id, user_ids).map_err(|m| AppError::field("userIds", m))?;
    let users = services.store.list_users_by_ids(members.ids()).await?;
    if users.len() != members.ids().len() {
        let known: HashSet<Uuid> = users.iter().map(|u| u.id).collect();
        let unknown: Vec<String> = members
            .ids()
            .iter()
            .filter(|m| !known.contains(m))
            .map(ToString::to_string)
            .collect();
        return Err(AppError::field(
            "userIds",
            format!("unknown users: {}", unknown.join(", ")),
        ));
    }
    let (id, created) = services
        .store
        .open_dm(Uuid::now_v7(), &members, auth.user.id, Utc::now())
        .await?;
    let opened = super::channels::load(services, id, auth.user.id).await?;
    let view = view(services, &opened, auth.user.id, users).await?;
    if created {
        services.events.emit(Event::DmOpened {
            dm: Box::new(view.clone()),
            member_ids: members.ids().to_vec(),
        });
    }
    Ok((view, created))
}

/// One of the caller's conversations.
///
/// # Errors
/// `CHANNEL_NOT_FOUND` (also for a channel's id), `PRIVATE_CHANNEL` for someone else's.
pub async fn get(services: &Services, auth: &AuthUser, id: Uuid) -> Result<DmView, AppError> {
    let row = super::channels::load(services, id, auth.user.id).await?;
    let members = row
        .dm_key
        .as_deref()
        .and_then(DmMembers::from_key)
        .ok_or(AppError::ChannelNotFound)?;
    row.check_visible()?;
    let users = services.store.list_users_by_ids(members.ids()).await?;
    let mut dm = view(services, &row, auth.user.id, users).await?;
    dm.read = super::reads::of_channels(services, auth.user.id, &[id])
        .await?
        .remove(&id)
        .into();
    Ok(dm)
}

/// The conversation with its members and newest message.
async fn view(
    services: &Services,
    row: &ChannelRow,
    viewer: Uuid,
    users: Vec<UserRow>,
) -> Result<DmView, AppError> {
    let id = row.id;
    let online = super::users::online_set(services).await?;
    let mut last: Vec<MessageView> = services
        .store
        .list_messages(id, viewer, Anchor::Latest, 1)
        .await?
        .into_iter()
        .map(MessageView::from)
        .collect();
    super::views::for_reader(services, viewer, &mut last).await?;
    let last = last.pop();
    let members = users
        .iter()
        .map(|u| UserView::public(u, online.contains(&u.id)))
        .collect();
    Ok(DmView::new(id, members, last, row.created_at))
}

/// The caller's conversations, the most recently active first.
///
/// # Errors
/// The database cannot be reached.
pub async fn list(
    services: &Services,
    auth: &AuthUser,
    before: Option<Uuid>,
    limit: u32,
) -> Result<DmPage, AppError> {
    let viewer = auth.user.id;
    let mut rows = services.store.list_dms(viewer, before, limit + 1).await?;
    let pagination = Pagination::cut(&mut rows, limit, CursorKind::Dms, |r| {
        r.activity().to_string()
    });
    let keyed: Vec<(DmRow, DmMembers)> = rows
        .into_iter()
        .filter_map(|r| DmMembers::from_key(&r.dm_key).map(|m| (r, m)))
        .collect();
    let mut ids: Vec<Uuid> = keyed
        .iter()
        .flat_map(|(_, m)| m.ids().iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // Sorted by username, as every member list is.
    let users = services.store.list_users_by_ids(&ids).await?;
    let online = super::users::online_set(services).await?;
    let last_ids: Vec<Uuid> = keyed
        .iter()
        .filter_map(|(r, _)| r.last_message_id)
        .collect();
    let mut last: HashMap<Uuid, MessageView> = services
        .store
        .list_messages_by_ids(&last_ids)
        .await?
        .into_iter()
        .map(|m| (m.channel_id, MessageView::from(m)))
        .collect();
    let mut entries = Vec::with_capacity(keyed.len());
    for (row, members) in keyed {
        let mut newest = last.remove(&row.id);
        if newest.is_none() && row.last_message_id.is_some() {
            // The newest message was deleted: the one before it, if any.
            newest = services
                .store
                .list_messages(row.id, viewer, Anchor::Latest, 1)
                .await?
                .into_iter()
                .next()
                .map(MessageView::from);
        }
        let views = users
            .iter()
            .filter(|u| members.contains(u.id))
            .map(|u| UserView::public(u, online.contains(&u.id)))
            .collect();
        entries.push((row, views, newest));
    }
    // Every newest message's reactions in one go.
    let mut newest: Vec<MessageView> = entries
        .iter_mut()
        .filter_map(|(_, _, m)| m.take())
        .collect();
    super::views::for_reader(services, viewer, &mut newest).await?;
    let mut newest: HashMap<Uuid, MessageView> =
        newest.into_iter().map(|m| (m.channel_id, m)).collect();
    let ids: Vec<Uuid> = entries.iter().map(|(row, _, _)| row.id).collect();
    let mut reads = super::reads::of_channels(services, viewer, &ids).await?;
    let dms = entries
        .into_iter()
        .map(|(row, views, _)| {
            let last = newest.remove(&row.id);
            let mut dm = DmView::new(row.id, views, last, row.created_at);
            dm.read = reads.remove(&row.id).into();
            dm
        })
        .collect();
    Ok(DmPage { dms, pagination })
}

/// The ids of the caller's conversations (their sockets join these rooms at connect).
///
/// # Errors
/// The database cannot be reached.
pub async fn ids(services: &Services, user: Uuid) -> Result<Vec<Uuid>, AppError> {
    Ok(services.store.list_dm_ids(user).await?)
}
