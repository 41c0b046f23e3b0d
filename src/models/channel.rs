//! Channels: names, roles and the permission rules, as pure functions (API.md §5, §12).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::timestamp;
use crate::error::AppError;

/// 2–50 characters of `[a-z0-9_-]` after lower-casing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    /// Parses a channel name (lower-casing it first).
    ///
    /// # Errors
    /// A message giving the rule.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim().to_lowercase();
        if !(2..=50).contains(&name.chars().count()) {
            return Err("must be 2 to 50 characters".into());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err("may contain only letters, digits, '_' and '-'".into());
        }
        Ok(Self(name))
    }

    /// The lower-cased name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 500 characters; empty clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(Option<String>);

impl Description {
    /// Parses a description (trimmed).
    ///
    /// # Errors
    /// A message giving the limit.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 500 {
            return Err("must be at most 500 characters".into());
        }
        Ok(Self((!trimmed.is_empty()).then(|| trimmed.to_owned())))
    }

    /// The description, `None` when empty.
    #[must_use]
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// A member's role in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A plain member.
    Member,
    /// May rename the channel and manage members (not admins, not the owner).
    Admin,
    /// Everything, including deleting the channel and granting `admin`.
    Owner,
}

impl Role {
    /// The stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Reads the stored text.
    #[must_use]
    pub fn from_db(raw: &str) -> Self {
        match raw {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            _ => Self::Member,
        }
    }

    /// Owner or admin.
    #[must_use]
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

/// A channel as stored, seen by one viewer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelRow {
    /// UUIDv7.
    pub id: Uuid,
    /// Lower-case name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Visible to members only.
    pub is_private: bool,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of name or description.
    pub updated_at: DateTime<Utc>,
    /// Members now.
    pub member_count: i64,
    /// The viewer's role, if a member.
    pub my_role: Option<String>,
    /// Whether the viewer starred it.
    pub starred: bool,
    /// The sorted member ids of a direct conversation; `None` for a channel.
    pub dm_key: Option<String>,
}

impl ChannelRow {
    /// Whether this is a direct conversation rather than a channel.
    #[must_use]
    pub fn is_dm(&self) -> bool {
        self.dm_key.is_some()
    }

    /// The viewer's role.
    #[must_use]
    pub fn role(&self) -> Option<Role> {
        self.my_role.as_deref().map(Role::from_db)
    }

    /// Reading, joining (public) and starring: public channels, or private ones the viewer
    /// is in.
    ///
    /// # Errors
    /// `PRIVATE_CHANNEL` for a private channel the viewer is not in.
    pub fn check_visible(&self) -> Result<(), AppError> {
        if self.is_private && self.role().is_none() {
            return Err(AppError::PrivateChannel);
        }
        Ok(())
    }

    /// Anything a member does (send, leave, type).
    ///
    /// # Errors
    /// `PRIVATE_CHANNEL` first, then `NOT_CHANNEL_MEMBER`.
    pub fn check_member(&self) -> Result<Role, AppError> {
        self.check_visible()?;
        self.role().ok_or(AppError::NotChannelMember)
    }

    /// Actions that need owner or admin.
    ///
    /// # Errors
    /// `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`, then `INSUFFICIENT_ROLE`.
    pub fn check_manager(&self) -> Result<Role, AppError> {
        let role = self.check_member()?;
        if role.manages() {
            Ok(role)
        } else {
            Err(AppError::InsufficientRole)
        }
    }

    /// Actions only the owner may take.
    ///
    /// # Errors
    /// `PRIVATE_CHANNEL`, `NOT_CHANNEL_MEMBER`, then `INSUFFICIENT_ROLE`.
    pub fn check_owner(&self) -> Result<(), AppError> {
        if self.check_member()? == Role::Owner {
            Ok(())
        } else {
            Err(AppError::InsufficientRole)
        }
    }
}

/// The `channel` object of the contract, as the viewer sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    id: Uuid,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    is_private: bool,
    /// Null once its creator's account is gone.
    #[schema(required = true)]
    created_by: Option<Uuid>,
    member_count: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    is_member: bool,
    is_starred: bool,
    /// The caller's role; null when not a member.
    #[schema(required = true)]
    role: Option<Role>,
    /// The member's marker and counts: in `GET /api/channels?joined=true` and, for a
    /// member, `GET /api/channels/{id}`.
    #[serde(flatten)]
    read: super::read::MaybeRead,
}

impl ChannelView {
    /// The view with the caller's marker and counts.
    #[must_use]
    pub fn with_read(self, read: Option<super::read::ReadState>) -> Self {
        Self {
            read: read.into(),
            ..self
        }
    }
}

impl From<&ChannelRow> for ChannelView {
    fn from(row: &ChannelRow) -> Self {
        Self {
            id: row.id,
            name: row.name.clone(),
            description: row.description.clone(),
            is_private: row.is_private,
            created_by: row.created_by,
            member_count: row.member_count,
            created_at: timestamp(row.created_at),
            updated_at: timestamp(row.updated_at),
            is_member: row.my_role.is_some(),
            is_starred: row.starred,
            role: row.role(),
            read: super::read::MaybeRead::default(),
        }
    }
}

/// What creating a channel writes.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// UUIDv7.
    pub id: Uuid,
    /// Name.
    pub name: ChannelName,
    /// Description.
    pub description: Option<String>,
    /// Members only.
    pub is_private: bool,
    /// The creator, who becomes owner.
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// One membership with the member's public profile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// Member.
    pub user_id: Uuid,
    /// Role text.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_lower_cased_and_take_2_to_50_allowed_characters() {
        assert_eq!(
            ChannelName::parse("General-Chat_2").unwrap().as_str(),
            "general-chat_2"
        );
        assert!(ChannelName::parse("a").is_err());
        assert!(ChannelName::parse(&"a".repeat(50)).is_ok());
        assert!(ChannelName::parse(&"a".repeat(51)).is_err());
        assert!(ChannelName::parse("with space").is_err());
        assert!(ChannelName::parse("dot.ted").is_err());
        assert!(ChannelName::parse("ünï").is_err());
    }

    #[test]
    fn descriptions_take_at_most_500_characters() {
        assert!(Description::parse(&"d".repeat(500)).is_ok());
        assert!(Description::parse(&"d".repeat(501)).is_err());
        assert_eq!(Description::parse("  ").unwrap().into_inner(), None);
    }

    fn row(is_private: bool, role: Option<&str>) -> ChannelRow {
        ChannelRow {
            id: Uuid::now_v7(),
            name: "x".into(),
            description: None,
            is_private,
            created_by: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            member_count: 1,
            my_role: role.map(str::to_owned),
            starred: false,
            dm_key: None,
        }
    }

    #[test]
    fn permissions_answer_private_first_then_membership_then_role() {
        let code = |r: Result<(), AppError>| r.err().map(|e| e.status_and_code().1);
        assert_eq!(
            code(row(true, None).check_member().map(drop)),
            Some("PRIVATE_CHANNEL")
        );
        assert_eq!(code(row(true, None).check_owner()), Some("PRIVATE_CHANNEL"));
        assert_eq!(code(row(false, None).check_visible()), None);
        assert_eq!(
            code(row(false, None).check_manager().map(drop)),
            Some("NOT_CHANNEL_MEMBER")
        );
        assert_eq!(
            code(row(false, Some("member")).check_manager().map(drop)),
            Some("INSUFFICIENT_ROLE")
        );
        assert_eq!(
            code(row(false, Some("admin")).check_manager().map(drop)),
            None
        );
        assert_eq!(
            code(row(false, Some("admin")).check_owner()),
            Some("INSUFFICIENT_ROLE")
        );
        assert_eq!(code(row(true, Some("owner")).check_owner()), None);
    }
}
