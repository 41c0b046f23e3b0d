//! Chai Tapri: a team-chat backend — REST and Socket.IO — in one binary.
//!
//! # Shape
//! It starts with no other service (SQLite in `data/`, presence and counters in process)
//! and, given `DATABASE_URL=postgres://…` and `REDIS_URL=redis://…`, runs as many nodes
//! behind a load balancer. Only the implementations behind a few traits change.
//!
//! # Layers (each talks only to the ones below)
//! ```text
//! transports  controllers/ (axum handlers)    socket/ (Socket.IO handlers, delivery)
//! input       models/input (both doors parse a body or a payload the same way)
//! rules       services/    on `Services` alone: permissions, domain rules, transactions,
//!                          presence, typing, rate limits; every change leaves by events
//! state       store/ (SqliteStore | PgStore)   backends/ (memory | redis)
//! ```
//! - [`config`]: every environment variable, typed once at start-up.
//! - [`cli`]: the command line: `--help`, `--version`, and each setting as a flag.
//! - [`app`]: build (connect, migrate, bind) and run until stopped (graceful shutdown).
//! - [`connections`]: the accept loop, connection caps and the timers of slow clients.
//! - [`state`]: what HTTP handlers receive: the configuration and the services.
//! - [`middleware`]: the layer stack in one function, and the extractors that reject.
//! - [`controllers`]: REST, one service call per route.
//! - [`socket`]: Socket.IO, the controllers' twin, and the one task that delivers events.
//! - [`error`]: [`error::AppError`], the contract's closed catalogue of error codes.
//! - [`logging`]: console + `combined.log` + `error.log`, rotated daily.
//! - [`metrics`]: Prometheus metrics on a listener of their own (`METRICS_ADDR`).
//! - [`migrate_data`]: `chai-tapri migrate-data`, SQLite → PostgreSQL.
//! - [`models`]: domain types with no I/O, valid by construction.
//! - [`services`]: the rules, transport-agnostic; a test builds them on memory backends.
//! - [`store`]: one persistence trait, one implementation per database.
//! - [`backends`]: presence, rate-limit counters and token revocations, memory or Redis.

pub mod app;
pub mod backends;
pub mod cli;
pub mod config;
pub mod connections;
pub mod controllers;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod migrate_data;
pub mod models;
pub mod services;
pub mod socket;
pub mod state;
pub mod storage;
pub mod store;

pub use app::{App, Stopped};
pub use config::Config;
pub use error::AppError;
