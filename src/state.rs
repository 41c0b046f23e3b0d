//! What every HTTP handler receives: the configuration and the [`Services`] (an `Arc`
//! inside: cloning is a reference count). Nothing socket-specific lives here; the socket
//! layer keeps its own state ([`crate::socket`]).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::backends::Backends;
use crate::config::Config;
use crate::services::Services;
use crate::services::passwords::PasswordHasher;
use crate::store::Store;

/// Shared state of one node's HTTP side.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// Configuration, read once at start-up.
    pub config: Config,
    /// The rules and what they stand on.
    pub services: Services,
    /// When this node started (for `/health` uptime).
    pub started: Instant,
}

impl AppState {
    /// Builds the services (starting their writers) and wraps them with the configuration.
    #[must_use]
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        storage: crate::storage::Storage,
        backends: Backends,
        passwords: Arc<PasswordHasher>,
    ) -> Self {
        let services = Services::new(&config, store, storage, backends, passwords);
        Self(Arc::new(Inner {
            config,
            services,
            started: Instant::now(),
        }))
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// When this node started.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.0.started
    }
}

/// Handlers reach the services straight through the state (`state.store`, and
/// `&state` where a service function wants `&Services`).
impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0.services
    }
}
