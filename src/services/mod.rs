//! Business rules, transport-agnostic: every function takes [`Services`], an
//! [`auth::AuthUser`] and parsed values — never a request or a socket — so the REST
//! controllers and the socket handlers share them. Changes leave through [`events`] only.

pub mod audit;
pub mod auth;
pub mod channels;
pub mod dms;
pub mod events;
pub mod files;
pub mod last_seen;
pub mod limits;
pub mod mentions;
pub mod messages;
pub mod newest_pages;
pub mod passwords;
pub mod presence;
pub mod reactions;
pub mod reads;
pub mod search;
pub mod threads;
pub mod tokens;
pub mod typing;
pub mod users;
pub mod views;
pub mod writer;

use std::ops::Deref;
use std::sync::Arc;

use crate::backends::Backends;
use crate::config::Config;
use crate::storage::Storage;
use crate::store::Store;

/// Everything the rules stand on (an `Arc` inside: cloning is a reference count).
///
/// Built from a store, backends and a password hasher, it starts its own writers; nothing in
/// it knows about HTTP or sockets, so a test builds one with [`Backends::in_memory`] and a
/// temporary SQLite store.
#[derive(Clone)]
pub struct Services(Arc<Parts>);

/// What [`Services`] holds.
pub struct Parts {
    /// The database.
    pub store: Arc<dyn Store>,
    /// File bytes (a directory or a bucket).
    pub storage: Storage,
    /// Presence, counters and revocations (memory or Redis).
    pub backends: Backends,
    /// The one emit path for committed changes.
    pub events: events::Events,
    /// The group-commit message writer.
    pub writer: writer::MessageWriter,
    /// JWT signing and verification.
    pub tokens: tokens::TokenKeys,
    /// The bounded bcrypt pool.
    pub passwords: Arc<passwords::PasswordHasher>,
    /// Recently authenticated users.
    pub users: auth::UserCache,
    /// Each channel's newest history page, serialised.
    pub newest_pages: newest_pages::NewestPages,
    /// The three rate limits.
    pub limits: limits::Limits,
    /// Gathers `lastSeen` writes.
    pub last_seen: last_seen::LastSeenWriter,
    /// Who is online, and the `user:offline` announcements waiting out the grace.
    pub presence: presence::Presence,
    /// `MENTION_ALL_MAX_MEMBERS`.
    pub mention_all_max_members: u32,
    /// `ADMIN_USERNAMES`, lower-cased.
    pub admin_usernames: Vec<String>,
}

impl Services {
    /// Wraps the parts and starts the message and `lastSeen` writers and the sweep of
    /// crashed uploads (a Tokio runtime must be running).
    #[must_use]
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        storage: Storage,
        backends: Backends,
        passwords: Arc<passwords::PasswordHasher>,
    ) -> Self {
        let events = if config.redis_url.is_some() {
            events::Events::with_receipts()
        } else {
            events::Events::new()
        };
        let writer = writer::MessageWriter::start(
            store.clone(),
            config.message_group_commit,
            events.clone(),
        );
        let last_seen = last_seen::LastSeenWriter::start(store.clone());
        let services = Self(Arc::new(Parts {
            tokens: tokens::TokenKeys::new(&config.jwt_secret, config.jwt_expires_in),
            limits: limits::Limits::new(config.rate_limit.clone()),
            presence: presence::Presence::new(config.presence_broadcast, config.presence_grace),
            store,
            storage,
            backends,
            events,
            writer,
            passwords,
            users: auth::UserCache::default(),
            newest_pages: newest_pages::NewestPages::default(),
            last_seen,
            mention_all_max_members: config.mention_all_max_members,
            admin_usernames: config.admin_usernames.clone(),
        }));
        files::spawn_sweeper(&services);
        if let Some(retention) = config.audit_retention {
            audit::spawn_sweeper(&services, retention);
        }
        services
    }
}

impl Services {
    /// Runs `job` now and then every `period`, for as long as the services live (the task
    /// holds them only while a run lasts).
    pub fn every<F, Fut>(&self, period: std::time::Duration, job: F)
    where
        F: Fn(Self) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(parts) = weak.upgrade() else { return };
                job(Self(parts)).await;
            }
        });
    }
}

impl Deref for Services {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::models::channel::ChannelName;
    use crate::models::input::Fields;
    use crate::models::message::SendInput;
    use crate::models::user::{Email, Password, Username};
    use crate::services::events::Event;
    use crate::store::sqlite::SqliteStore;

    /// A folder of its own under the system's temporary folder, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn services_stand_alone_on_memory_backends_and_a_temporary_sqlite_store() {
        let scratch = Scratch(std::env::temp_dir().join(format!("chai-{}", uuid::Uuid::now_v7())));
        let config = Config::from_map(&HashMap::from([
            ("JWT_SECRET".to_owned(), "x".repeat(32)),
            ("BCRYPT_COST".to_owned(), "4".to_owned()),
        ]))
        .unwrap();
        let store = Arc::new(SqliteStore::open(&scratch.0.join("t.db"), 2).await.unwrap());
        let passwords = passwords::PasswordHasher::new(4).await.unwrap();
        let storage = Storage::open(scratch.0.join("uploads").to_str().unwrap()).unwrap();
        let services = Services::new(&config, store, storage, Backends::in_memory(), passwords);
        let mut heard = services.events.subscribe();

        let session = auth::signup(
            &services,
            auth::Signup {
                username: Username::parse("solo").unwrap(),
                email: Email::parse("solo@example.com").unwrap(),
                password: Password::parse("password-solo".to_owned()).unwrap(),
                display_name: None,
            },
        )
        .await
        .unwrap();
        let me = auth::authenticate(&services, &session.token).await.unwrap();
        let channel = channels::create(
            &services,
            &me,
            channels::CreateChannel {
                name: ChannelName::parse("standalone").unwrap(),
                description: None,
                is_private: false,
                member_ids: Vec::new(),
            },
        )
        .await
        .unwrap();
        let channel_id: uuid::Uuid =
            serde_json::from_value(serde_json::to_value(&channel).unwrap()["id"].clone()).unwrap();
        let payload = serde_json::json!({"content": "  hello  ", "nonce": "n1"});
        let send =
            SendInput::from_fields(Fields::new(payload.as_object().unwrap().clone())).unwrap();
        let sent = messages::send(&services, &me, channel_id, send)
            .await
            .unwrap();
        assert!(sent.created);
        assert_eq!(sent.message.content, "hello");
        match &*heard.recv().await.unwrap() {
            Event::NewMessage(m) => assert_eq!(m.id, sent.message.id),
            other => panic!("expected the new message, heard {other:?}"),
        }
        services.writer.shutdown().await;
        services.store.close().await;
    }
}
