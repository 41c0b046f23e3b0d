//! Domain types with no I/O. Parsing happens once, at the edge; a value of one of these
//! types is valid by construction. (`file_type` reads the bytes it judges from any `Read +
//! Seek` source it is given: a spooled upload, a test buffer.)

pub mod audit;
pub mod channel;
pub mod dm;
pub mod file;
pub mod file_type;
pub mod input;
pub mod mention;
pub mod message;
pub mod metadata;
pub mod page;
pub mod reaction;
pub mod read;
pub mod search;
pub mod thread;
pub mod thumbnail;
pub mod user;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// RFC 3339 UTC with milliseconds, as JavaScript's `toISOString()`.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an id from a path or body; `None` for anything that is not a UUID.
#[must_use]
pub fn parse_id(raw: &str) -> Option<Uuid> {
    if raw.len() != 36 {
        return None;
    }
    Uuid::try_parse(raw).ok()
}
