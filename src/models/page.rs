//! List paging (API.md §1): `limit` (default 50, capped at 100) and an opaque cursor.

use serde::Serialize;

use crate::error::{AppError, FieldError};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are capped, not refused.
pub const MAX_LIMIT: u32 = 100;

/// `pagination` of a list answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Whether more items exist in the same direction.
    pub has_more: bool,
    /// Continues in that direction; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Parses `?limit=`: absent → 50; above 100 → 100; not a positive whole number → 400.
///
/// # Errors
/// `VALIDATION_ERROR` on `limit`.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, AppError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<u64>() {
            Ok(0) | Err(_) => Err(AppError::Validation(vec![FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            )])),
            Ok(n) => Ok(u32::try_from(n.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT)),
        },
    }
}

/// Encodes a cursor key as lower-case hex (opaque to clients, safe in a URL).
#[must_use]
pub fn encode_cursor(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a cursor made by [`encode_cursor`].
///
/// # Errors
/// `VALIDATION_ERROR` on `cursor` when it was not made by this server.
pub fn decode_cursor(raw: &str) -> Result<String, AppError> {
    let bad = || {
        AppError::Validation(vec![FieldError::new(
            "cursor",
            "is not a cursor this server issued",
        )])
    };
    if !raw.len().is_multiple_of(2) || raw.len() > 1024 {
        return Err(bad());
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| {
            raw.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
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
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor("asha.k")).unwrap(), "asha.k");
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor("ff").is_err(), "not UTF-8");
    }
}
