//! Users: the account fields, each valid by construction (API.md §3, §4).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::timestamp;

/// 3–30 characters of `[A-Za-z0-9_.-]`; case is kept, uniqueness ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    ///
    /// # Errors
    /// A message saying which rule the value breaks.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if !(3..=30).contains(&n) {
            return Err("must be 3 to 30 characters".into());
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("may contain only letters, digits, '_', '.' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The username as chosen.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an address: `local@domain.tld`, at most 254 characters, no spaces.
    ///
    /// # Errors
    /// A message saying the address is not valid.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || "must be a valid email address".to_owned();
        let email = raw.trim().to_lowercase();
        if email.chars().count() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// The lower-cased address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–72 *bytes* (bcrypt's limit; never silently truncated).
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Parses a password by its length in bytes.
    ///
    /// # Errors
    /// A message giving the byte range.
    pub fn parse(raw: String) -> Result<Self, String> {
        if (8..=72).contains(&raw.len()) {
            Ok(Self(raw))
        } else {
            Err(format!(
                "must be 8 to 72 bytes (multi-byte characters count as several); it has {}",
                raw.len()
            ))
        }
    }

    /// The password, for hashing and verifying only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// 1–50 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name.
    ///
    /// # Errors
    /// A message giving the length range.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if (1..=50).contains(&trimmed.chars().count()) && !trimmed.chars().any(char::is_control) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err("must be 1 to 50 characters, without control characters".into())
        }
    }

    /// The display name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-text status, at most 100 characters (empty clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText(Option<String>);

impl StatusText {
    /// Parses a status.
    ///
    /// # Errors
    /// A message giving the limit.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        Ok(Self((!trimmed.is_empty()).then(|| trimmed.to_owned())))
    }

    /// The status, `None` when cleared.
    #[must_use]
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// An avatar: an `http(s)://` URL or a path on this server (`/api/files/…`), ≤ 2,048 chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    /// Parses an avatar URL.
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = raw.trim();
        let scheme_ok =
            url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/');
        if !scheme_ok
            || url.len() > 2048
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(
                "must be an http(s) URL or a path on this server, at most 2048 characters".into(),
            );
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// UUIDv7.
    pub id: Uuid,
    /// As chosen at signup.
    pub username: String,
    /// Lower-cased.
    pub email: String,
    /// bcrypt hash; never leaves the server.
    pub password_hash: String,
    /// Shown name.
    pub display_name: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Free-text status.
    pub status: Option<String>,
    /// When the user's last socket went away.
    pub last_seen: Option<DateTime<Utc>>,
    /// Signup time.
    pub created_at: DateTime<Utc>,
}

/// What a signup writes.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// UUIDv7.
    pub id: Uuid,
    /// Username.
    pub username: Username,
    /// Email.
    pub email: Email,
    /// bcrypt hash.
    pub password_hash: String,
    /// Display name (the username when none was given).
    pub display_name: DisplayName,
    /// Signup time.
    pub created_at: DateTime<Utc>,
}

/// A profile change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New display name.
    pub display_name: Option<DisplayName>,
    /// New avatar, or cleared.
    pub avatar_url: Option<Option<String>>,
    /// New status, or cleared.
    pub status: Option<Option<String>>,
}

/// The `user` object of the contract. `email` is present only in the caller's own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    id: Uuid,
    username: String,
    /// Only in the caller's own user object.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Email)]
    email: Option<String>,
    display_name: String,
    #[schema(required = true)]
    avatar_url: Option<String>,
    #[schema(required = true)]
    status: Option<String>,
    is_online: bool,
    #[schema(required = true, format = DateTime)]
    last_seen: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    /// Only in the caller's own user object: one of the server's admins
    /// (`ADMIN_USERNAMES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    is_admin: Option<bool>,
}

impl UserView {
    /// Another user's view of `row`.
    #[must_use]
    pub fn public(row: &UserRow, is_online: bool) -> Self {
        Self {
            id: row.id,
            username: row.username.clone(),
            email: None,
            display_name: row.display_name.clone(),
            avatar_url: row.avatar_url.clone(),
            status: row.status.clone(),
            is_online,
            last_seen: row.last_seen.map(timestamp),
            created_at: timestamp(row.created_at),
            is_admin: None,
        }
    }

    /// The user's own view (with `email`).
    #[must_use]
    pub fn own(row: &UserRow, is_online: bool, is_admin: bool) -> Self {
        Self {
            email: Some(row.email.clone()),
            is_admin: Some(is_admin),
            ..Self::public(row, is_online)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_take_3_to_30_characters_of_the_allowed_set() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(30)).is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(31)).is_err());
        assert!(Username::parse("Chai.Wala_01-x").is_ok());
        assert!(Username::parse("no spaces").is_err());
        assert!(Username::parse("ünï").is_err());
        assert!(Username::parse("a@b").is_err());
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            Email::parse("Asha@Example.COM").unwrap().as_str(),
            "asha@example.com"
        );
        for bad in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "asha@example",
            "a b@example.com",
            "asha@ex..com",
            "a..b@example.com",
            "asha@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_measured_in_bytes_72_fits_and_73_does_not() {
        assert!(Password::parse("x".repeat(72)).is_ok());
        assert!(Password::parse("x".repeat(73)).is_err());
        assert!(Password::parse("x".repeat(8)).is_ok());
        assert!(Password::parse("x".repeat(7)).is_err());
        // 24 three-byte characters are 72 bytes; one more ASCII byte is 73.
        assert!(Password::parse("€".repeat(24)).is_ok());
        assert!(Password::parse(format!("{}x", "€".repeat(24))).is_err());
        assert!(!format!("{:?}", Password::parse("hunter22".into()).unwrap()).contains("hunter22"));
    }

    #[test]
    fn display_names_are_trimmed_and_take_1_to_50_characters() {
        assert_eq!(DisplayName::parse("  Asha  ").unwrap().as_str(), "Asha");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(50)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(51)).is_err());
    }

    #[test]
    fn status_takes_at_most_100_characters_and_empty_clears_it() {
        assert_eq!(StatusText::parse("  ").unwrap().into_inner(), None);
        assert!(StatusText::parse(&"s".repeat(100)).is_ok());
        assert!(StatusText::parse(&"s".repeat(101)).is_err());
    }

    #[test]
    fn avatars_are_http_urls_or_local_paths() {
        assert!(AvatarUrl::parse("https://cdn.example.com/a.png").is_ok());
        assert!(AvatarUrl::parse("/api/files/abc").is_ok());
        assert!(AvatarUrl::parse("javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse(&format!("https://x/{}", "a".repeat(2048))).is_err());
    }
}
