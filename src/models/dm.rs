//! Direct conversations: who may be in one, and the key that makes the same set of people
//! always the same conversation (docs/api.md, "Direct messages").

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::message::MessageView;
use super::timestamp;
use super::user::UserView;

/// Most people in one conversation, its opener included.
pub const MAX_MEMBERS: usize = 8;

/// The people of a conversation, sorted and without repeats: 2 to [`MAX_MEMBERS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmMembers(Vec<Uuid>);

impl DmMembers {
    /// The opener and the others they named (the opener's own id and repeats are ignored).
    ///
    /// # Errors
    /// A message for `userIds` when nobody else is named or more than seven others are.
    pub fn new(opener: Uuid, others: &[Uuid]) -> Result<Self, String> {
        let mut ids: Vec<Uuid> = others.iter().copied().filter(|u| *u != opener).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Err("a conversation needs at least one other person".into());
        }
        if ids.len() >= MAX_MEMBERS {
            return Err(format!(
                "at most {MAX_MEMBERS} people, you included ({} named)",
                ids.len() + 1
            ));
        }
        ids.push(opener);
        ids.sort_unstable();
        Ok(Self(ids))
    }

    /// Reads a stored key; `None` for one this server did not write.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        let ids = key
            .split(',')
            .map(|id| Uuid::try_parse(id).ok())
            .collect::<Option<Vec<_>>>()?;
        (ids.len() >= 2).then_some(Self(ids))
    }

    /// The stored key: the sorted ids, comma-separated.
    #[must_use]
    pub fn key(&self) -> String {
        self.0
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ids, sorted.
    #[must_use]
    pub fn ids(&self) -> &[Uuid] {
        &self.0
    }

    /// Whether `user` is one of them.
    #[must_use]
    pub fn contains(&self, user: Uuid) -> bool {
        self.0.binary_search(&user).is_ok()
    }
}

/// The name a conversation is stored under: no channel name can contain `:`.
#[must_use]
pub fn stored_name(id: Uuid) -> String {
    format!("dm:{id}")
}

/// One of a user's conversations, as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DmRow {
    /// The conversation's (channel) id.
    pub id: Uuid,
    /// Its members' key.
    pub dm_key: String,
    /// Its newest message, if any.
    pub last_message_id: Option<Uuid>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
}

impl DmRow {
    /// What the list is ordered by (newest first): the newest message's id, else the
    /// conversation's own (both UUIDv7).
    #[must_use]
    pub fn activity(&self) -> Uuid {
        self.last_message_id.unwrap_or(self.id)
    }
}

/// The `dm` object of the contract.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmView {
    /// Its id: a channel id, for the message routes and socket events.
    pub id: Uuid,
    /// Every member, the caller included, by username.
    pub members: Vec<UserView>,
    /// More than two people.
    pub is_group: bool,
    /// The newest message.
    #[schema(required = true)]
    pub last_message: Option<MessageView>,
    /// When it was opened.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The caller's marker and counts (in `GET /api/dms` and `GET /api/dms/{id}`).
    #[serde(flatten)]
    pub read: super::read::MaybeRead,
}

impl DmView {
    /// Builds the view from its parts.
    #[must_use]
    pub fn new(
        id: Uuid,
        members: Vec<UserView>,
        last_message: Option<MessageView>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            is_group: members.len() > 2,
            members,
            last_message,
            created_at: timestamp(created_at),
            read: super::read::MaybeRead::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_people_in_any_order_make_the_same_key() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let one = DmMembers::new(a, &[c, b, b, a]).unwrap();
        let two = DmMembers::new(c, &[a, b]).unwrap();
        assert_eq!(one.key(), two.key());
        assert_eq!(one.ids().len(), 3);
        assert_eq!(DmMembers::from_key(&one.key()), Some(one));
    }

    #[test]
    fn a_conversation_has_two_to_eight_people() {
        let me = Uuid::now_v7();
        assert!(DmMembers::new(me, &[]).is_err());
        assert!(DmMembers::new(me, &[me, me]).is_err());
        let seven: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
        assert_eq!(DmMembers::new(me, &seven).unwrap().ids().len(), 8);
        let eight: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
        assert!(DmMembers::new(me, &eight).is_err());
    }

    #[test]
    fn a_key_this_server_did_not_write_is_refused() {
        assert_eq!(DmMembers::from_key("not,ids"), None);
        assert_eq!(DmMembers::from_key(&Uuid::now_v7().to_string()), None);
    }
}
