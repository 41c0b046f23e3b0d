//! Prometheus metrics on `METRICS_ADDR`, a listener of their own (never the API's port).
//!
//! Recording goes through the `metrics` facade; until a node with `METRICS_ADDR` installs the
//! Prometheus recorder, its handles are no-ops and the counts that cost work of their own
//! (sockets reached by a broadcast, REST requests) are skipped ([`enabled`]). Hot paths hold
//! handles made once (per route, per event) or bump plain atomics that a scrape copies in;
//! values that are a state rather than a stream of events (pool, rooms, presence, memory)
//! are read when Prometheus scrapes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
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
    let _ = BATCH.set((
        histogram!(names::BATCH_SIZE),
        histogram!(names::BATCH_WRITE),
    ));
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

/// The handles of one route and method: a counter per status seen, one latency histogram.
struct RouteHandles {
    method: axum::http::Method,
    latency: Histogram,
    statuses: Vec<(u16, Counter)>,
}

/// Handles by route pattern, made on a route's first request: a request costs a read lock,
/// a lookup and two atomic updates, not a registry lookup with fresh label strings.
static HTTP: LazyLock<RwLock<HashMap<String, Vec<RouteHandles>>>> = LazyLock::new(RwLock::default);

fn http_handles(method: &axum::http::Method, route: &str, status: u16) -> (Counter, Histogram) {
    let found = HTTP
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|all| all.iter().find(|h| h.method == *method))
        .and_then(|h| {
            let count = h.statuses.iter().find(|(s, _)| *s == status)?.1.clone();
            Some((count, h.latency.clone()))
        });
    if let Some(found) = found {
        return found;
    }
    let mut map = HTTP.write().unwrap_or_else(PoisonError::into_inner);
    let all = map.entry(route.to_owned()).or_default();
    let index = match all.iter().position(|h| h.method == *method) {
        Some(i) => i,
        None => {
            all.push(RouteHandles {
                method: method.clone(),
                latency: histogram!(
                    names::HTTP_DURATION,
                    "method" => method.as_str().to_owned(),
                    "route" => route.to_owned()
                ),
                statuses: Vec::new(),
            });
            all.len() - 1
        }
    };
    let handles = &mut all[index];
    let count = match handles.statuses.iter().find(|(s, _)| *s == status) {
        Some((_, c)) => c.clone(),
        None => {
            let c = counter!(
                names::HTTP_REQUESTS,
                "method" => method.as_str().to_owned(),
                "route" => route.to_owned(),
                "status" => status.to_string()
            );
            handles.statuses.push((status, c.clone()));
            c
        }
    };
    (count, handles.latency.clone())
}

/// Counts one answered REST request and its time.
pub(crate) fn http_request(
    method: &axum::http::Method,
    route: &str,
    status: u16,
    elapsed: Duration,
) {
    let (count, latency) = http_handles(method, route, status);
    count.increment(1);
    latency.record(elapsed.as_secs_f64());
}

/// Counts made on hot paths as plain atomics, whether or not metrics are served; a scrape
/// copies them into the registry.
static MESSAGES_SENT: AtomicU64 = AtomicU64::new(0);
static DB_WAITING: AtomicI64 = AtomicI64::new(0);

/// A message was stored (not found again by its nonce).
pub(crate) fn message_sent() {
    MESSAGES_SENT.fetch_add(1, Ordering::Relaxed);
}

/// The group-commit histograms, made once the recorder is installed.
static BATCH: OnceLock<(Histogram, Histogram)> = OnceLock::new();

/// One group-commit transaction of `size` messages took `elapsed` to write and commit.
pub(crate) fn batch_written(size: usize, elapsed: Duration) {
    if let Some((sizes, times)) = BATCH.get() {
        sizes.record(size as f64);
        times.record(elapsed.as_secs_f64());
    }
}

/// Delivery counters by event name, made on an event's first broadcast.
static DELIVERED: LazyLock<RwLock<HashMap<&'static str, Counter>>> = LazyLock::new(RwLock::default);

/// A broadcast of `event` reached `sockets` sockets of this node.
pub(crate) fn delivered(event: &'static str, sockets: usize) {
    let found = DELIVERED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(event)
        .cloned();
    let counter = found.unwrap_or_else(|| {
        DELIVERED
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(event)
            .or_insert_with(|| counter!(names::DELIVERIES, "event" => event))
            .clone()
    });
    counter.increment(sockets as u64);
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
    counter!(names::MESSAGES_SENT).absolute(MESSAGES_SENT.load(Ordering::Relaxed));
    gauge!(names::DB_POOL_WAITING).set(DB_WAITING.load(Ordering::Relaxed) as f64);
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
pub(crate) struct Waiting;

impl Waiting {
    pub(crate) fn start() -> Self {
        DB_WAITING.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        DB_WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}
