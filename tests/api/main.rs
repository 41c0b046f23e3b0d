//! Integration tests: the real server over real sockets, on SQLite by default and on
//! PostgreSQL + Redis when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod audit;
mod auth;
mod backends;
mod channels;
mod connections;
mod conversations;
mod crash;
mod dms;
mod edit_history;
mod faults;
mod files;
mod helpers;
mod http;
mod load_tool;
mod mentions;
mod messages;
mod metrics;
mod migrate;
mod openapi;
mod pins;
mod process;
mod rate_limits;
mod reactions;
mod reads;
mod search;
mod socket;
mod store;
mod threads;
mod users;
mod web;
