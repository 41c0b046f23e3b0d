//! The audit log (docs/api.md, "Audit log"): which changes are recorded, what an entry
//! says of each, and how a client reads it. The store writes an entry in the transaction
//! of its change, from what it finds there ([`Actor`] says who, from where and when); the
//! rules of what is worth an entry live here alone.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channel::{NewChannel, Role};
use super::timestamp;
use super::user::{Email, Username};

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A channel was created.
    ChannelCreated,
    /// A channel's name or description changed.
    ChannelUpdated,
    /// A channel was deleted.
    ChannelDeleted,
    /// The first to join an ownerless channel became its owner.
    ChannelClaimed,
    /// A manager added a member.
    MemberAdded,
    /// A manager removed a member.
    MemberRemoved,
    /// A member left.
    MemberLeft,
    /// A manager changed a member's role.
    MemberRoleChanged,
    /// A message was deleted by someone other than its sender.
    MessageDeleted,
    /// A message was pinned.
    MessagePinned,
    /// A message was unpinned.
    MessageUnpinned,
    /// A password login succeeded.
    AuthLogin,
    /// A token was revoked by its holder.
    AuthLogout,
    /// A password login failed.
    AuthLoginFailed,
}

impl Action {
    /// Every action, in the contract's order.
    pub const ALL: [Self; 14] = [
        Self::ChannelCreated,
        Self::ChannelUpdated,
        Self::ChannelDeleted,
        Self::ChannelClaimed,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::MemberLeft,
        Self::MemberRoleChanged,
        Self::MessageDeleted,
        Self::MessagePinned,
        Self::MessageUnpinned,
        Self::AuthLogin,
        Self::AuthLogout,
        Self::AuthLoginFailed,
    ];

    /// The stored and shown name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChannelCreated => "channel.created",
            Self::ChannelUpdated => "channel.updated",
            Self::ChannelDeleted => "channel.deleted",
            Self::ChannelClaimed => "channel.claimed",
            Self::MemberAdded => "member.added",
            Self::MemberRemoved => "member.removed",
            Self::MemberLeft => "member.left",
            Self::MemberRoleChanged => "member.role_changed",
            Self::MessageDeleted => "message.deleted",
            Self::MessagePinned => "message.pinned",
            Self::MessageUnpinned => "message.unpinned",
            Self::AuthLogin => "auth.login",
            Self::AuthLogout => "auth.logout",
            Self::AuthLoginFailed => "auth.login_failed",
        }
    }

    /// The action of this name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Who made a change, from which address, and when.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The signed-in user; `None` for a login attempt naming no account.
    pub user: Option<Uuid>,
    /// The client's address as the rate limits see it, when known.
    pub ip: Option<IpAddr>,
    /// When.
    pub at: DateTime<Utc>,
}

impl Actor {
    /// `user` acting now from `ip`.
    #[must_use]
    pub fn now(user: Option<Uuid>, ip: Option<IpAddr>) -> Self {
        Self {
            user,
            ip,
            at: Utc::now(),
        }
    }
}

/// An entry to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// UUIDv7, minted when the entry is made.
    pub id: Uuid,
    /// What happened.
    pub action: Action,
    /// When.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor_id: Option<Uuid>,
    /// The channel or direct conversation it happened in.
    pub channel_id: Option<Uuid>,
    /// The user it was done to.
    pub target_user_id: Option<Uuid>,
    /// The message it was done to.
    pub message_id: Option<Uuid>,
    /// The actor's address.
    pub ip: Option<String>,
    /// What else the action carries (a JSON object).
    pub details: Option<Value>,
}

impl NewAudit {
    fn new(action: Action, by: &Actor) -> Self {
        Self {
            id: Uuid::now_v7(),
            action,
            at: by.at,
            actor_id: by.user,
            channel_id: None,
            target_user_id: None,
            message_id: None,
            ip: by.ip.map(|ip| ip.to_string()),
            details: None,
        }
    }

    fn channel(mut self, id: Uuid) -> Self {
        self.channel_id = Some(id);
        self
    }

    fn target(mut self, user: Uuid) -> Self {
        self.target_user_id = Some(user);
        self
    }

    fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A channel created with `members` members besides its creator.
    #[must_use]
    pub fn channel_created(by: &Actor, channel: &NewChannel, members: usize) -> Self {
        Self::new(Action::ChannelCreated, by)
            .channel(channel.id)
            .details(json!({
                "name": channel.name.as_str(),
                "isPrivate": channel.is_private,
                "memberCount": members,
            }))
    }

    /// A channel's name and/or description set; `None` when neither changed.
    #[must_use]
    pub fn channel_updated(
        by: &Actor,
        channel: Uuid,
        before: (&str, Option<&str>),
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> Option<Self> {
        let mut changes = serde_json::Map::new();
        if let Some(to) = name.filter(|to| *to != before.0) {
            changes.insert("name".into(), json!({ "from": before.0, "to": to }));
        }
        if let Some(to) = description.filter(|to| *to != before.1) {
            changes.insert("description".into(), json!({ "from": before.1, "to": to }));
        }
        (!changes.is_empty()).then(|| {
            Self::new(Action::ChannelUpdated, by)
                .channel(channel)
                .details(Value::Object(changes))
        })
    }

    /// A channel deleted, with the name it had.
    #[must_use]
    pub fn channel_deleted(by: &Actor, channel: Uuid, name: &str) -> Self {
        Self::new(Action::ChannelDeleted, by)
            .channel(channel)
            .details(json!({ "name": name }))
    }

    /// The actor, joining an ownerless channel, became its owner.
    #[must_use]
    pub fn channel_claimed(by: &Actor, channel: Uuid) -> Self {
        let entry = Self::new(Action::ChannelClaimed, by).channel(channel);
        match by.user {
            Some(user) => entry.target(user),
            None => entry,
        }
    }

    /// `user` given `role` by a manager: added (they were not a member) or their role
    /// changed; `None` when it was their role already.
    #[must_use]
    pub fn member_set(
        by: &Actor,
        channel: Uuid,
        user: Uuid,
        before: Option<Role>,
        role: Role,
    ) -> Option<Self> {
        let entry = match before {
            None => Self::new(Action::MemberAdded, by).details(json!({ "role": role })),
            Some(from) if from != role => Self::new(Action::MemberRoleChanged, by)
                .details(json!({ "from": from, "to": role })),
            Some(_) => return None,
        };
        Some(entry.channel(channel).target(user))
    }

    /// `user`, who had `role`, gone from a channel: they left, or a manager removed them;
    /// a leaving owner's channel passes to `new_owner`.
    #[must_use]
    pub fn member_gone(
        by: &Actor,
        channel: Uuid,
        user: Uuid,
        role: Role,
        new_owner: Option<Uuid>,
    ) -> Self {
        let action = if by.user == Some(user) {
            Action::MemberLeft
        } else {
            Action::MemberRemoved
        };
        let mut details = json!({ "role": role });
        if let Some(next) = new_owner {
            details["newOwnerId"] = json!(next);
        }
        Self::new(action, by)
            .channel(channel)
            .target(user)
            .details(details)
    }

    /// A message of `sender` deleted; `None` when its sender deleted it (their own
    /// message is theirs to delete, and not an administrative act).
    #[must_use]
    pub fn message_deleted(by: &Actor, channel: Uuid, message: Uuid, sender: Uuid) -> Option<Self> {
        (by.user != Some(sender)).then(|| {
            let mut entry = Self::new(Action::MessageDeleted, by)
                .channel(channel)
                .target(sender);
            entry.message_id = Some(message);
            entry
        })
    }

    /// A message pinned or unpinned.
    #[must_use]
    pub fn pin(by: &Actor, channel: Uuid, message: Uuid, pinned: bool) -> Self {
        let action = if pinned {
            Action::MessagePinned
        } else {
            Action::MessageUnpinned
        };
        let mut entry = Self::new(action, by).channel(channel);
        entry.message_id = Some(message);
        entry
    }

    /// A password login that succeeded.
    #[must_use]
    pub fn login(by: &Actor) -> Self {
        Self::new(Action::AuthLogin, by)
    }

    /// A password login that failed, with the username or e-mail it gave when it is one
    /// (anything else — a password typed into the wrong box, a megabyte of text — is kept
    /// as `null`); the actor is the account it named, if one exists.
    #[must_use]
    pub fn login_failed(by: &Actor, login: &str) -> Self {
        let login =
            (Username::parse(login).is_ok() || Email::parse(login).is_ok()).then_some(login);
        Self::new(Action::AuthLoginFailed, by).details(json!({ "login": login }))
    }

    /// A logout.
    #[must_use]
    pub fn logout(by: &Actor) -> Self {
        Self::new(Action::AuthLogout, by)
    }

    /// `details` as stored.
    #[must_use]
    pub fn details_text(&self) -> Option<String> {
        self.details.as_ref().map(Value::to_string)
    }
}

/// An entry as the store reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// UUIDv7.
    pub id: Uuid,
    /// The action's name.
    pub action: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor_id: Option<Uuid>,
    /// Where.
    pub channel_id: Option<Uuid>,
    /// To whom.
    pub target_user_id: Option<Uuid>,
    /// To which message.
    pub message_id: Option<Uuid>,
    /// From which address.
    pub ip: Option<String>,
    /// The stored JSON object.
    pub details: Option<String>,
}

/// An entry as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    id: Uuid,
    /// `channel.created`, `member.role_changed`, `auth.login_failed`, …
    action: String,
    #[schema(format = DateTime)]
    at: String,
    #[schema(required = true)]
    actor_id: Option<Uuid>,
    #[schema(required = true)]
    channel_id: Option<Uuid>,
    #[schema(required = true)]
    target_user_id: Option<Uuid>,
    #[schema(required = true)]
    message_id: Option<Uuid>,
    #[schema(required = true)]
    ip: Option<String>,
    /// What else the action carries (see docs/api.md), or null.
    #[schema(required = true, value_type = Option<Object>)]
    details: Option<Value>,
}

impl AuditView {
    /// The entry without the client's address (for readers who are not server admins).
    #[must_use]
    pub fn without_ip(self) -> Self {
        Self { ip: None, ..self }
    }
}

impl From<AuditRow> for AuditView {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            action: row.action,
            at: timestamp(row.at),
            actor_id: row.actor_id,
            channel_id: row.channel_id,
            target_user_id: row.target_user_id,
            message_id: row.message_id,
            ip: row.ip,
            details: row.details.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// What `GET /api/audit` and a channel's audit read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries older than this one.
    pub before: Option<Uuid>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only this actor's.
    pub actor: Option<Uuid>,
    /// Only this channel's.
    pub channel: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(user: Uuid) -> Actor {
        Actor::now(Some(user), Some(IpAddr::from([203, 0, 113, 7])))
    }

    #[test]
    fn every_action_reads_back_from_its_name() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("channel.renamed"), None);
    }

    #[test]
    fn a_rename_records_what_changed_and_nothing_else() {
        let (me, channel) = (Uuid::now_v7(), Uuid::now_v7());
        let entry = NewAudit::channel_updated(
            &by(me),
            channel,
            ("general", Some("old")),
            Some("lobby"),
            Some(Some("old")),
        )
        .unwrap();
        assert_eq!(entry.action, Action::ChannelUpdated);
        assert_eq!(
            entry.details,
            Some(json!({"name": {"from": "general", "to": "lobby"}}))
        );
        assert_eq!(entry.ip.as_deref(), Some("203.0.113.7"));
        let cleared =
            NewAudit::channel_updated(&by(me), channel, ("general", Some("old")), None, Some(None))
                .unwrap();
        assert_eq!(
            cleared.details,
            Some(json!({"description": {"from": "old", "to": null}}))
        );
        assert!(
            NewAudit::channel_updated(&by(me), channel, ("general", None), Some("general"), None)
                .is_none()
        );
    }

    #[test]
    fn leaving_and_removal_are_told_apart_by_who_acted() {
        let (me, other, channel) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let left = NewAudit::member_gone(&by(me), channel, me, Role::Owner, Some(other));
        assert_eq!(left.action, Action::MemberLeft);
        assert_eq!(
            left.details,
            Some(json!({"role": "owner", "newOwnerId": other}))
        );
        let removed = NewAudit::member_gone(&by(me), channel, other, Role::Member, None);
        assert_eq!(removed.action, Action::MemberRemoved);
        assert_eq!(removed.target_user_id, Some(other));
    }

    #[test]
    fn roles_record_additions_and_changes_but_not_the_same_role_again() {
        let (me, other, channel) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let added = NewAudit::member_set(&by(me), channel, other, None, Role::Admin).unwrap();
        assert_eq!(added.action, Action::MemberAdded);
        let changed =
            NewAudit::member_set(&by(me), channel, other, Some(Role::Member), Role::Admin).unwrap();
        assert_eq!(changed.action, Action::MemberRoleChanged);
        assert_eq!(
            changed.details,
            Some(json!({"from": "member", "to": "admin"}))
        );
        assert!(
            NewAudit::member_set(&by(me), channel, other, Some(Role::Admin), Role::Admin).is_none()
        );
    }

    #[test]
    fn only_a_message_deleted_by_another_is_recorded() {
        let (me, other, channel, message) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        assert!(NewAudit::message_deleted(&by(me), channel, message, me).is_none());
        let entry = NewAudit::message_deleted(&by(me), channel, message, other).unwrap();
        assert_eq!(entry.target_user_id, Some(other));
        assert_eq!(entry.message_id, Some(message));
    }

    #[test]
    fn a_stored_entry_reads_back_with_its_details_as_json() {
        let entry = NewAudit::login_failed(&Actor::now(None, None), "nobody");
        let view = AuditView::from(AuditRow {
            id: entry.id,
            action: entry.action.as_str().to_owned(),
            at: entry.at,
            actor_id: entry.actor_id,
            channel_id: None,
            target_user_id: None,
            message_id: None,
            ip: None,
            details: entry.details_text(),
        });
        let shown = serde_json::to_value(view).unwrap();
        assert_eq!(shown["action"], "auth.login_failed");
        assert_eq!(shown["details"], json!({"login": "nobody"}));
        assert_eq!(shown["actorId"], Value::Null);
    }

    #[test]
    fn a_failed_login_keeps_only_what_could_name_an_account() {
        let login = |given: &str| NewAudit::login_failed(&Actor::now(None, None), given).details;
        assert_eq!(login("Someone_1"), Some(json!({"login": "Someone_1"})));
        assert_eq!(
            login("a@example.com"),
            Some(json!({"login": "a@example.com"}))
        );
        for not_a_name in ["hunter2 secret!", "", &"x".repeat(10_000), "p@ss word"] {
            assert_eq!(
                login(not_a_name),
                Some(json!({"login": null})),
                "{not_a_name:.20}"
            );
        }
    }
}
