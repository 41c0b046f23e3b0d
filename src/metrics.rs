//! Prometheus metrics on `METRICS_ADDR`, a listener of their own (never the API's port).
//!
//! Recording goes through the `metrics` facade: until a node with `METRICS_ADDR` installs the
//! Prometheus recorder, every `counter!`/`histogram!` is a no-op, and the one count that costs
//! a lookup of its own (sockets reached by a broadcast) is skipped ([`enabled`]). Values that
//! are a state rather than a stream of events (pool, rooms, presence, memory) are read when
//! Prometheus scrapes.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::socket::Census;
use crate::state::AppState;

/// Names of what the hot paths record (the rest is read at scrape time).
pub mod names {
    pub const HTTP_REQUESTS: &str = "chai_http_requests_total";
    pub const HTTP_DURATION: &str = "chai_http_request_duration_seconds";
    pub const SOCKET_CONNECTIONS: &str = "chai_socket_connections";
    pub const MESSAGES_SENT: &str = "chai_messages_sent_total";
    pub const DELIVERIES: &str = "chai_socket_deliveries_total";
    pub const BATCH_SIZE: &str = "chai_message_batch_size";
    pub const BATCH_WRITE: &str = "chai_message_batch_write_seconds";
    pub const RATE_LIMITED: &str = "chai_rate_limit_refusals_total";
    pub const REDIS_ERRORS: &str = "chai_redis_errors_total";
    pub const DB_POOL_WAITING: &str = "chai_db_pool_waiting";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a recorder is installed: counts that cost work of their own are made only then.
#[must_use]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the Prometheus recorder for this process (once; later calls reuse it) and keeps
/// its histograms drained.
///
/// # Errors
/// Another recorder was installed first.
fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    const SECONDS: &[f64] = &[
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::HTTP_DURATION.into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Full(names::BATCH_WRITE.into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Full(names::BATCH_SIZE.into()), SIZES)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("a metrics recorder is installed already")?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    describe();
    gauge!("chai_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    ENABLED.store(true, Ordering::Relaxed);
    // Histogram samples wait in buckets until drained; unscraped, they would pile up.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use names::*;
    describe_counter!(
        HTTP_REQUESTS,
        "REST requests answered, by route pattern and status"
    );
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to the response head");
    describe_gauge!(
        SOCKET_CONNECTIONS,
        "Socket.IO connections open on this node"
    );
    describe_gauge!("chai_socket_rooms", "Rooms with a socket of this node");
    describe_counter!(MESSAGES_SENT, "Messages this node stored");
    describe_counter!(
        DELIVERIES,
        "Events handed to this node's sockets, one per socket"
    );
    describe_histogram!(BATCH_SIZE, "Messages per group-commit transaction");
    describe_histogram!(
        BATCH_WRITE,
        Unit::Seconds,
        "Time to write and commit one batch of messages, the fsync included"
    );
    describe_counter!(RATE_LIMITED, "Requests and sends refused by a rate limit");
    describe_gauge!(
        "chai_db_pool_connections",
        "Database pool connections by state"
    );
    describe_gauge!(DB_POOL_WAITING, "Queries waiting for a database connection");
    describe_gauge!("chai_db_pool_max_connections", "DATABASE_MAX_CONNECTIONS");
    describe_counter!(REDIS_ERRORS, "Redis commands that failed");
    describe_gauge!(
        "chai_presence_online_users",
        "Users online (cluster-wide with Redis)"
    );
    describe_gauge!("chai_build_info", "The running version");
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of this process"
    );
    describe_gauge!("process_open_fds", "Open file descriptors of this process");
}

/// Counts one answered REST request and its time.
pub(crate) fn http_request(
    method: &axum::http::Method,
    route: &str,
    status: u16,
    elapsed: Duration,
) {
    let method = method.as_str().to_owned();
    counter!(
        names::HTTP_REQUESTS,
        "method" => method.clone(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(names::HTTP_DURATION, "method" => method, "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    state: AppState,
    census: Census,
}

/// Binds `addr` and serves `GET /metrics` there until `stop` turns true.
///
/// # Errors
/// The recorder cannot be installed or the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    census: Census,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let handle = install()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        tracing::warn!(%bound, "metrics are served beyond loopback: keep this port private");
    }
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape {
            handle,
            state,
            census,
        });
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(bound)
}

async fn scrape(State(s): State<Scrape>) -> Response {
    let (sockets, rooms) = (s.census)().await;
    gauge!(names::SOCKET_CONNECTIONS).set(sockets as f64);
    gauge!("chai_socket_rooms").set(rooms as f64);
    let pool = s.state.store.pool_stats();
    gauge!("chai_db_pool_connections", "state" => "in_use").set(f64::from(pool.in_use));
    gauge!("chai_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    gauge!("chai_db_pool_max_connections").set(f64::from(pool.max));
    if let Ok(online) = s.state.backends.presence.online_users().await {
        gauge!("chai_presence_online_users").set(online.len() as f64);
    }
    if let Some((rss, fds)) = process_figures() {
        gauge!("process_resident_memory_bytes").set(rss as f64);
        gauge!("process_open_fds").set(fds as f64);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.handle.render(),
    )
        .into_response()
}

/// Resident bytes and open descriptors, from `/proc/self` (Linux).
fn process_figures() -> Option<(u64, usize)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some((kib * 1024, fds))
}

/// Counts a query waiting for a pooled database connection while it waits.
pub(crate) struct Waiting(bool);

impl Waiting {
    pub(crate) fn start() -> Self {
        let on = enabled();
        if on {
            gauge!(names::DB_POOL_WAITING).increment(1.0);
        }
        Self(on)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.0 {
            gauge!(names::DB_POOL_WAITING).decrement(1.0);
        }
    }
}
