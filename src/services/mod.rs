//! Business rules, transport-agnostic: they take an [`auth::AuthUser`] and parsed values,
//! never requests, so REST handlers and socket handlers share them.

pub mod auth;
pub mod channels;
pub mod events;
pub mod last_seen;
pub mod messages;
pub mod passwords;
pub mod tokens;
pub mod users;
pub mod writer;
