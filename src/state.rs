//! The one cheap-to-clone state every handler receives.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::backends::Backends;
use crate::config::Config;
use crate::services::auth::UserCache;
use crate::services::events::Events;
use crate::services::passwords::PasswordHasher;
use crate::services::tokens::TokenKeys;
use crate::services::writer::MessageWriter;
use crate::store::Store;

/// Shared state of one node (an `Arc` inside: cloning is a reference count).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// Configuration, read once at start-up.
    pub config: Config,
    /// The database.
    pub store: Arc<dyn Store>,
    /// Presence, counters and revocations (memory or Redis).
    pub backends: Backends,
    /// When this node started (for `/health` uptime).
    pub started: Instant,
    /// JWT signing and verification.
    pub tokens: TokenKeys,
    /// The bounded bcrypt pool.
    pub passwords: Arc<PasswordHasher>,
    /// The group-commit message writer.
    pub writer: MessageWriter,
    /// The one emit path for committed changes.
    pub events: Events,
    /// Recently authenticated users.
    pub users: UserCache,
    /// Live typing indicators of this node's sockets.
    pub typing: crate::socket::Typing,
    /// This node's sockets not yet marked gone.
    pub live_sockets: crate::socket::LiveSockets,
    /// Users whose `user:offline` waits out `PRESENCE_GRACE`.
    pub pending_offline: crate::socket::PendingOffline,
    /// Gathers `lastSeen` writes.
    pub last_seen: crate::services::last_seen::LastSeenWriter,
}

impl AppState {
    /// Wraps the parts.
    #[must_use]
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        backends: Backends,
        passwords: Arc<PasswordHasher>,
    ) -> Self {
        let tokens = TokenKeys::new(&config.jwt_secret, config.jwt_expires_in);
        let events = Events::new();
        let writer =
            MessageWriter::start(store.clone(), config.message_group_commit, events.clone());
        let last_seen = crate::services::last_seen::LastSeenWriter::start(store.clone());
        Self(Arc::new(Inner {
            config,
            store,
            backends,
            started: Instant::now(),
            tokens,
            passwords,
            writer,
            events,
            users: UserCache::default(),
            typing: crate::socket::Typing::default(),
            live_sockets: crate::socket::LiveSockets::default(),
            pending_offline: crate::socket::PendingOffline::default(),
            last_seen,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
