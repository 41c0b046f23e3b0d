//! Start-up and shutdown: connect the store and Redis, build the router, bind, serve.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::sync::watch;

use crate::backends::Backends;
use crate::backends::redis::RedisBackends;
use crate::config::Config;
use crate::connections::{self, OpenConnections};
use crate::middleware::{self, InFlight};
use crate::services::passwords::PasswordHasher;
use crate::state::AppState;
use crate::{controllers, services, socket, store};

/// A built server: bound to its port, not yet serving.
pub struct App {
    server: connections::Server,
    router: Router,
    state: AppState,
    in_flight: InFlight,
    io: socket::Closer,
    metrics_addr: Option<SocketAddr>,
    metrics_stop: watch::Sender<bool>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished within `SHUTDOWN_TIMEOUT`.
    Clean,
    /// `SHUTDOWN_TIMEOUT` passed with requests still running; they were cut.
    TimedOut,
}

impl App {
    /// Connects everything and binds the listener (port 0 picks a free port).
    ///
    /// # Errors
    /// The database or Redis cannot be reached, a migration fails, or the port is taken.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, None).await
    }

    /// As [`App::build`], with extra routes mounted under `/api`.
    ///
    /// # Errors
    /// As [`App::build`].
    pub async fn build_with(
        config: Config,
        extra_api: Option<Router<AppState>>,
    ) -> anyhow::Result<Self> {
        let store = store::connect(&config)
            .await
            .with_context(|| format!("cannot open the database {:?}", config.database_url))?;
        let backends = match &config.redis_url {
            None => Backends::in_memory(),
            Some(url) => {
                let redis = RedisBackends::connect_with_ttl(
                    url,
                    &config.redis_prefix,
                    config.presence_node_ttl,
                )
                .await
                .with_context(|| {
                    format!("cannot reach Redis at {}", crate::config::redact_url(url))
                })?;
                Backends::shared(redis)
            }
        };
        let addr = SocketAddr::new(config.host, config.port);
        let listener =
            connections::listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let open_files = connections::raise_open_file_limit();
        let limits = connections::Limits::new(
            &config.connections,
            &config.rate_limit.trusted_proxies,
            open_files,
        );
        tracing::info!(
            max_connections = limits.max_total(),
            max_connections_per_ip = limits.max_per_ip(),
            open_files,
            "connection caps"
        );
        let server = connections::Server::new(listener, limits);
        let in_flight = InFlight::default();
        let frontend_url = config.frontend_url.clone();
        let passwords = PasswordHasher::new(config.bcrypt_cost)
            .await
            .context("cannot prepare the password hasher")?;
        let storage = crate::storage::Storage::open(&config.storage_url).with_context(|| {
            format!(
                "cannot open the file storage {}",
                crate::config::redact_url(&config.storage_url)
            )
        })?;
        let state = AppState::new(config, store, storage, backends, passwords);
        services::auth::restore_revocations(&state)
            .await
            .context("cannot load token revocations")?;
        spawn_revocation_purge(state.clone());
        services::audit::warn_of_unclaimed_admins(&state).await;
        if let Some(redis) = state.backends.redis.clone() {
            spawn_heartbeat(state.clone(), redis);
        }
        let routes = controllers::router(state.clone(), extra_api);
        let (router, io, census) = match &state.config().redis_url {
            None => {
                let (layer, close, census) =
                    socket::build_local(&state, state.config().typing_timeout);
                (
                    middleware::stack(routes, |r| r.layer(layer), &frontend_url, in_flight.clone()),
                    close,
                    census,
                )
            }
            Some(url) => {
                let config = state.config();
                let (layer, close, census) =
                    socket::build_redis(&state, config.typing_timeout, url, &config.redis_prefix)
                        .await?;
                (
                    middleware::stack(routes, |r| r.layer(layer), &frontend_url, in_flight.clone()),
                    close,
                    census,
                )
            }
        };
        let (metrics_stop, metrics_stopped) = watch::channel(false);
        let metrics_addr = match state.config().metrics_addr {
            None => None,
            Some(addr) => {
                Some(crate::metrics::serve(addr, state.clone(), census, metrics_stopped).await?)
            }
        };
        Ok(Self {
            server,
            router,
            state,
            in_flight,
            io,
            metrics_addr,
            metrics_stop,
        })
    }

    /// Where `GET /metrics` is served (`METRICS_ADDR`, with the port actually bound).
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The port actually bound.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The address actually bound.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(self.state.config().host, self.state.config().port))
    }

    /// A live count of the open connections.
    #[must_use]
    pub fn open_connections(&self) -> OpenConnections {
        self.server.open_connections()
    }

    /// The node's state (tests reach the store and backends through it).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish for up to `SHUTDOWN_TIMEOUT`, and closes the store.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Stopped> {
        let Self {
            server,
            router,
            state,
            in_flight,
            io,
            metrics_addr: _,
            metrics_stop,
        } = self;
        let timeout = state.config().shutdown_timeout;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut cut_rx = stop_rx.clone();
        let server = server.serve(router, stop_rx);
        let closing = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new connections; finishing in-flight requests");
            let _ = stop_tx.send(true);
            // Sockets (and their long-polling requests) are closed, not waited for.
            io().await;
        });
        let deadline = async move {
            let _ = cut_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(timeout).await;
        };
        let outcome = tokio::select! {
            () = server => Stopped::Clean,
            () = deadline => {
                tracing::warn!(
                    in_flight = in_flight.count(),
                    timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    "shutdown timeout passed: cutting the requests still in flight"
                );
                Stopped::TimedOut
            }
        };
        if let Some(redis) = &state.backends.redis
            && let Err(e) = redis.leave().await
        {
            tracing::warn!(error = %e, "could not withdraw this node's presence from Redis");
        }
        if outcome == Stopped::Clean {
            // The sockets' lastSeen is stored while they close: before the pool closes.
            let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
            // Every acknowledged send has committed already; this writes what is queued.
            state.writer.shutdown().await;
            state.store.close().await;
        }
        let _ = metrics_stop.send(true);
        tracing::info!(outcome = ?outcome, "server stopped");
        Ok(outcome)
    }
}

/// Deletes expired revocations from the database once an hour.
fn spawn_revocation_purge(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp();
            match state.store.delete_expired_revocations(now).await {
                Ok(n) => tracing::debug!(purged = n, "expired token revocations purged"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired token revocations"),
            }
        }
    });
}

/// Keeps this node's presence registration alive in Redis, and announces offline the users
/// of nodes whose registration lapsed.
fn spawn_heartbeat(state: AppState, redis: RedisBackends) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(redis.heartbeat_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = redis.heartbeat().await {
                tracing::warn!(error = %e, "presence heartbeat to Redis failed");
                continue;
            }
            match redis.sweep().await {
                Ok(gone) if gone.is_empty() => {}
                Ok(gone) => {
                    tracing::info!(
                        users = gone.len(),
                        "a node stopped renewing its presence; its users are offline"
                    );
                    services::presence::lapsed(&state, gone).await;
                }
                Err(e) => tracing::warn!(error = %e, "presence sweep in Redis failed"),
            }
        }
    });
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
