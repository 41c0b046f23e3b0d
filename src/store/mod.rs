//! Persistence: one [`Store`] trait, one implementation per database.
//!
//! `DATABASE_URL` picks [`sqlite::SqliteStore`] or [`postgres::PgStore`]; both embed their
//! migrations (`migrations/sqlite`, `migrations/postgres`, same numbering) and run them at
//! start-up. Methods are in CRUD order with a doc line each, in the same order in every
//! implementation, and one conformance suite (`tests/api/store.rs`) runs against both.

mod migrations;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;

/// What can go wrong below the services.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write (which one is for the caller to know).
    #[error("unique constraint violated")]
    Conflict,
    /// The database could not be reached or answered with an error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoreError> for crate::error::AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

/// The persistence interface every service uses.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and health.
    fn kind(&self) -> &'static str;

    /// Runs a trivial query: proves the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits for open connections to finish and closes the pool.
    async fn close(&self);
}

/// Connects to the database named by the configuration and applies pending migrations.
///
/// # Errors
/// The database cannot be opened or reached, or a migration fails.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match &config.database_url {
        crate::config::DatabaseUrl::Sqlite(path) => Ok(Arc::new(
            sqlite::SqliteStore::open(path, config.database_max_connections).await?,
        )),
        crate::config::DatabaseUrl::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::connect(url, config.database_max_connections).await?,
        )),
    }
}
