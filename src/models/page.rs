//! List paging (API.md §1): `limit` (default 50, capped at 100) and an opaque cursor.

use serde::Serialize;

use crate::error::{AppError, FieldError};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are capped, not refused.
pub const MAX_LIMIT: u32 = 100;

/// `pagination` of a list answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Whether more items exist in the same direction.
    pub has_more: bool,
    /// Continues in that direction; `None` at the end.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Parses `?limit=`: absent → 50; above 100 (however large) → 100; not a positive whole
/// number → 400.
///
/// # Errors
/// `VALIDATION_ERROR` on `limit`.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, AppError> {
    let digits = match raw.map(str::trim) {
        None | Some("") => return Ok(DEFAULT_LIMIT),
        Some(s) => s.strip_prefix('+').unwrap_or(s),
    };
    let whole = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !whole || digits.bytes().all(|b| b == b'0') {
        return Err(AppError::Validation(vec![FieldError::new(
            "limit",
            "must be a whole number of at least 1 (above 100 is 100)",
        )]));
    }
    // Too many digits for a u64 is far above 100 all the same.
    Ok(digits.parse::<u64>().map_or(MAX_LIMIT, |n| {
        u32::try_from(n.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT)
    }))
}

/// The list a cursor continues: a cursor is good for that list only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// `GET /api/users`.
    Users,
    /// `GET /api/channels`.
    Channels,
    /// `GET /api/channels/{id}/members`.
    Members,
    /// `GET /api/channels/{id}/messages`.
    Messages,
    /// `GET /api/dms`.
    Dms,
    /// `GET /api/messages/{id}/thread`.
    Thread,
    /// `GET /api/threads`.
    Threads,
    /// `GET /api/mentions`.
    Mentions,
    /// `GET /api/messages/{id}/history`.
    Versions,
    /// `GET /api/search`.
    Search,
    /// `GET /api/audit` and `GET /api/channels/{id}/audit`.
    Audit,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Users => "u",
            Self::Channels => "c",
            Self::Members => "m",
            Self::Messages => "h",
            Self::Dms => "d",
            Self::Thread => "t",
            Self::Threads => "f",
            Self::Mentions => "n",
            Self::Versions => "v",
            Self::Search => "s",
            Self::Audit => "a",
        }
    }
}

impl Pagination {
    /// Cuts `rows` — read with one more than `limit`, to know whether more follow — to
    /// `limit`, and the pagination that continues after the last row kept (`key`: its
    /// cursor key).
    pub fn cut<T>(
        rows: &mut Vec<T>,
        limit: u32,
        kind: CursorKind,
        key: impl FnOnce(&T) -> String,
    ) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|r| encode_cursor(kind, &key(r)))
        } else {
            None
        };
        Self {
            has_more,
            next_cursor,
        }
    }
}

/// The error of a cursor this server did not issue for this list.
#[must_use]
pub fn bad_cursor() -> AppError {
    AppError::Validation(vec![FieldError::new(
        "cursor",
        "is not a cursor this server issued for this list",
    )])
}

/// Encodes a cursor of `kind` continuing after `key`, as lower-case hex (opaque to clients,
/// safe in a URL).
#[must_use]
pub fn encode_cursor(kind: CursorKind, key: &str) -> String {
    format!("{}:{key}", kind.tag())
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key of a cursor made by [`encode_cursor`] for `kind` (the caller checks its shape).
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor` when it was not made by this server for this list.
pub fn decode_cursor(kind: CursorKind, raw: &str) -> Result<String, AppError> {
    if !raw.len().is_multiple_of(2) || raw.len() > 1024 {
        return Err(bad_cursor());
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| {
            raw.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad_cursor)?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
    text.strip_prefix(kind.tag())
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad_cursor)
}

/// As [`decode_cursor`], and the key must also pass `shape` (the list's own rule for what
/// it puts in a cursor).
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor`.
pub fn decode_cursor_shaped(
    kind: CursorKind,
    raw: &str,
    shape: impl FnOnce(&str) -> bool,
) -> Result<String, AppError> {
    let key = decode_cursor(kind, raw)?;
    if shape(&key) {
        Ok(key)
    } else {
        Err(bad_cursor())
    }
}

/// A cursor whose key is an id (a message's, or a list's activity id).
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor`.
pub fn decode_id_cursor(kind: CursorKind, raw: &str) -> Result<uuid::Uuid, AppError> {
    let key = decode_cursor_shaped(kind, raw, |k| super::parse_id(k).is_some())?;
    super::parse_id(&key).ok_or_else(bad_cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_50_cap_at_100_and_refuse_nonsense() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("7")).unwrap(), 7);
        assert_eq!(parse_limit(Some("100000")).unwrap(), 100);
        for bad in ["0", "-1", "ten", "1.5"] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_for_their_own_list_only() {
        let users = encode_cursor(CursorKind::Users, "asha.k");
        assert_eq!(decode_cursor(CursorKind::Users, &users).unwrap(), "asha.k");
        assert!(
            decode_cursor(CursorKind::Channels, &users).is_err(),
            "another list's"
        );
        assert!(decode_cursor(CursorKind::Messages, &users).is_err());
        let old_style: String = "asha.k".bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            decode_cursor(CursorKind::Users, &old_style).is_err(),
            "untagged"
        );
        assert!(decode_cursor(CursorKind::Users, "zz").is_err());
        assert!(decode_cursor(CursorKind::Users, "abc").is_err());
        assert!(decode_cursor(CursorKind::Users, "ff").is_err(), "not UTF-8");
    }
}
