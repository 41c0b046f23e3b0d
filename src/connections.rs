//! Connections: the accept loop, the caps on how many a client and all clients may hold,
//! and the timers that close what a client leaves hanging.
//!
//! Each accepted connection is served by hyper's HTTP/1 connection (with upgrades, for
//! Engine.IO's WebSocket) under a watchdog that knows, from the requests passing through,
//! which limit applies at each moment:
//!
//! | state of the connection                  | closed after           |
//! |------------------------------------------|------------------------|
//! | new, nothing received                    | `HEADER_TIMEOUT`       |
//! | part of a request head received          | `HEADER_TIMEOUT` from its first byte |
//! | between requests (kept alive)            | `KEEPALIVE_TIMEOUT`    |
//! | request body still arriving              | `BODY_TIMEOUT` from the head (the body fails) |
//! | response not read by the client          | `SEND_TIMEOUT` without progress |
//!
//! An upgraded connection (WebSocket) leaves the watchdog: Engine.IO's ping closes it when
//! the peer stops answering, and TCP keepalive finds a peer that vanished without a word.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::config::{ConnectionConfig, IpNet};
use crate::error::AppError;

/// Descriptors kept back from the connection cap for the database, Redis, logs and files.
fn reserved_descriptors(limit: u64) -> u64 {
    (limit / 10).max(128)
}

/// Connections the kernel may hold completed for us before `accept` (capped by
/// `net.core.somaxconn`). A burst beyond it is dropped by the kernel, unseen by the server.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with a listen queue of [`LISTEN_BACKLOG`].
///
/// # Errors
/// The address is taken or cannot be bound.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises the open-file limit to its hard limit; the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let before = rlimit::Resource::NOFILE.get().map(|(soft, _)| soft).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if before.is_some_and(|b| b < now) {
                tracing::info!(from = before, to = now, "raised the open-file limit");
            }
            now
        }
        Err(e) => {
            let now = before.unwrap_or(1024);
            tracing::warn!(error = %e, limit = now, "cannot raise the open-file limit");
            now
        }
    }
}

/// The limits one server applies to its connections.
#[derive(Debug, Clone)]
pub struct Limits {
    header_timeout: Duration,
    keepalive_timeout: Duration,
    body_timeout: Duration,
    send_timeout: Duration,
    tcp_keepalive: Duration,
    max_total: usize,
    max_per_ip: usize,
    trusted: Vec<IpNet>,
}

impl Limits {
    /// The configured limits; an `auto` total becomes the open-file limit less a reserve.
    #[must_use]
    pub fn new(config: &ConnectionConfig, trusted: &[IpNet], open_files: u64) -> Self {
        let derived = open_files
            .saturating_sub(reserved_descriptors(open_files))
            .max(1);
        let max_total = config
            .max_connections
            .unwrap_or_else(|| usize::try_from(derived).unwrap_or(usize::MAX));
        if u64::try_from(max_total).unwrap_or(u64::MAX) > derived {
            tracing::warn!(
                max_connections = max_total,
                open_files,
                "MAX_CONNECTIONS is above what the open-file limit allows: when descriptors run \
                 out, accepting pauses until some close"
            );
        }
        Self {
            header_timeout: config.header_timeout,
            keepalive_timeout: config.keepalive_timeout,
            body_timeout: config.body_timeout,
            send_timeout: config.send_timeout,
            tcp_keepalive: config.tcp_keepalive,
            max_total,
            max_per_ip: config.max_connections_per_ip,
            trusted: trusted.to_vec(),
        }
    }

    /// Open connections allowed in total.
    #[must_use]
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Open connections allowed per client address.
    #[must_use]
    pub fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }
}

/// Why a connection was turned away at the door.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Total,
    PerIp,
}

/// Counts open connections, in total and per client address.
#[derive(Debug)]
struct Gate {
    limits: Limits,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Gate {
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        if self.total.fetch_add(1, Ordering::SeqCst) >= self.limits.max_total {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Total);
        }
        // A proxy carries many clients: only the total applies to it.
        let ip = if self.limits.trusted.iter().any(|net| net.contains(peer)) {
            None
        } else {
            let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let open = map.entry(peer).or_insert(0);
            if *open >= self.limits.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::SeqCst);
                return Err(Refusal::PerIp);
            }
            *open += 1;
            Some(peer)
        };
        Ok(Slot {
            gate: Arc::clone(self),
            ip,
        })
    }
}

/// One admitted connection's place; freed when its socket closes (after an upgrade too).
#[derive(Debug)]
struct Slot {
    gate: Arc<Gate>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut map = self
                .gate
                .per_ip
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = map.get_mut(&ip) {
                *open -= 1;
                if *open == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.gate.total.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Open connections of a running server, for tests and the health of the accept loop.
#[derive(Debug, Clone)]
pub struct OpenConnections(Arc<Gate>);

impl OpenConnections {
    /// How many connections are open (upgraded ones included).
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.total.load(Ordering::SeqCst)
    }
}

/// What passes on one connection, as the watchdog needs it. Times are milliseconds since the
/// connection was accepted, plus one, so that 0 can mean "not set".
#[derive(Debug)]
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    served: AtomicU64,
    idle_since: AtomicU64,
    head_since: AtomicU64,
    write_blocked_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(1),
            head_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// When the connection must be closed if nothing changes, and why.
    fn deadline(&self, limits: &Limits, now: u64) -> (u64, &'static str) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
        // A response the client does not read, whether or not the next request has begun.
        match self.write_blocked_since.load(Ordering::SeqCst) {
            0 => {}
            since => {
                return (
                    since + ms(limits.send_timeout),
                    "the client stopped reading the response",
                );
            }
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return (now + ms(limits.send_timeout), "");
        }
        match self.head_since.load(Ordering::SeqCst) {
            0 if self.served.load(Ordering::SeqCst) == 0 => (
                self.idle_since.load(Ordering::SeqCst) + ms(limits.header_timeout),
                "no request arrived",
            ),
            0 => (
                self.idle_since.load(Ordering::SeqCst) + ms(limits.keepalive_timeout),
                "kept-alive connection idle",
            ),
            since => (
                since + ms(limits.header_timeout),
                "the request head did not arrive in time",
            ),
        }
    }
}

/// Why the watchdog closed a connection.
async fn watchdog(activity: &Activity, limits: &Limits) -> &'static str {
    loop {
        let now = activity.now();
        let (deadline, reason) = activity.deadline(limits, now);
        if now >= deadline {
            return reason;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(deadline - now)) => {}
            () = activity.changed.notified() => {}
        }
    }
}

/// A request being served; its end (the response body dropped) makes the connection idle.
struct InRequest(Arc<Activity>);

impl InRequest {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.head_since.store(0, Ordering::SeqCst);
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.served.fetch_add(1, Ordering::SeqCst);
        activity.idle_since.store(activity.now(), Ordering::SeqCst);
        activity.head_since.store(0, Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
        activity.changed.notify_one();
    }
}

/// The socket, watched: bytes read while no request is in flight start the head timer, and a
/// write the kernel cannot take starts the send timer. Holds the connection's [`Slot`].
struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl Watched {
    fn wrote(&self, result: &Poll<std::io::Result<usize>>) {
        let blocked = &self.activity.write_blocked_since;
        match result {
            Poll::Pending => {
                if blocked.load(Ordering::Relaxed) == 0 {
                    blocked.store(self.activity.now(), Ordering::SeqCst);
                    self.activity.changed.notify_one();
                }
            }
            Poll::Ready(Ok(n)) if *n > 0 => blocked.store(0, Ordering::Relaxed),
            Poll::Ready(_) => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.tcp).poll_read(cx, buf);
        let activity = &this.activity;
        if buf.filled().len() > before
            && activity.in_flight.load(Ordering::SeqCst) == 0
            && activity.head_since.load(Ordering::SeqCst) == 0
        {
            activity.head_since.store(activity.now(), Ordering::SeqCst);
            activity.changed.notify_one();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A request body that must arrive whole within `BODY_TIMEOUT` of its head.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    passed: BodyDeadline,
}

/// In a request's extensions: whether its body failed for arriving too slowly, so that
/// whatever the handler made of the failed read, the answer is 408 (see the middleware).
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    passed: Arc<std::sync::atomic::AtomicBool>,
    limit: Duration,
}

impl BodyDeadline {
    /// Whether the body timed out.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.passed.load(Ordering::SeqCst)
    }

    /// `BODY_TIMEOUT`.
    #[must_use]
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// The error a body that arrived too slowly ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimedOut(Duration);

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.passed.passed.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(BodyTimedOut(this.passed.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that ends its request when it is dropped (sent, or abandoned).
struct Tracked {
    inner: Body,
    _request: InRequest,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a connection turned away at the door reads, if it reads at all.
fn refusal(why: Refusal) -> Vec<u8> {
    let message = match why {
        Refusal::Total => "the server has too many open connections",
        Refusal::PerIp => "too many open connections from this address",
    };
    let (_, code) = AppError::ServiceUnavailable(String::new()).status_and_code();
    let body = serde_json::json!({
        "success": false,
        "error": { "code": code, "message": message },
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accept errors that mean "out of descriptors or memory": accepting again at once would
/// fail the same way, so the loop waits instead of spinning.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The accept loop of one server.
pub struct Server {
    listener: TcpListener,
    gate: Arc<Gate>,
}

impl Server {
    /// A server on a bound listener.
    #[must_use]
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        Self {
            listener,
            gate: Arc::new(Gate {
                limits,
                total: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The bound address.
    ///
    /// # Errors
    /// The socket cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A counter of this server's open connections.
    #[must_use]
    pub fn open_connections(&self) -> OpenConnections {
        OpenConnections(Arc::clone(&self.gate))
    }

    /// Accepts and serves until `stop` turns true; then stops accepting, asks every
    /// connection to finish its request and close, and returns when all have.
    pub async fn serve(self, router: Router, mut stop: watch::Receiver<bool>) {
        let Self { listener, gate } = self;
        // Turns handlers into services once: a fallback left as a handler would apply its
        // layers — Socket.IO's among them, with its session table — anew for every request.
        let router: Router = router.with_state(());
        let limits = Arc::new(gate.limits.clone());
        let (done_tx, done_rx) = watch::channel(());
        let mut backoff = Duration::ZERO;
        // One warning per 5 s at most, for each kind of trouble.
        let mut paused_warned: Option<Instant> = None;
        let mut refused_warned: Option<Instant> = None;
        let mut refused = 0u64;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => {
                    backoff = Duration::ZERO;
                    pair
                }
                Err(e) if out_of_resources(&e) => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    if paused_warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                        paused_warned = Some(Instant::now());
                        tracing::warn!(
                            error = %e,
                            open = gate.total.load(Ordering::SeqCst),
                            pause_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            "cannot accept connections: out of descriptors; pausing"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        _ = stop.wait_for(|stopped| *stopped) => break,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            };
            let slot = match gate.admit(peer.ip().to_canonical()) {
                Ok(slot) => slot,
                Err(why) => {
                    // What the send buffer takes at once, then closed: never a wait.
                    let _ = tcp.try_write(&refusal(why));
                    drop(tcp);
                    refused += 1;
                    if refused_warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                        refused_warned = Some(Instant::now());
                        tracing::warn!(
                            refused,
                            reason = ?why,
                            last_peer = %peer.ip(),
                            open = gate.total.load(Ordering::SeqCst),
                            "connections refused: over the connection cap"
                        );
                        refused = 0;
                    }
                    continue;
                }
            };
            prepare(&tcp, &limits);
            tokio::spawn(serve_connection(
                tcp,
                peer,
                slot,
                router.clone(),
                Arc::clone(&limits),
                stop.clone(),
                done_rx.clone(),
            ));
        }
        drop(listener);
        drop(done_rx);
        done_tx.closed().await;
    }
}

/// Socket options of an accepted connection.
fn prepare(tcp: &TcpStream, limits: &Limits) {
    // Without TCP_NODELAY a small frame written right after another (an ack after a
    // broadcast) waits for the peer's delayed ACK: 40 ms on Linux.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    // A peer that vanished (power cut, network gone) is found after TCP_KEEPALIVE of silence
    // plus three unanswered probes 10 s apart.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(limits.tcp_keepalive)
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "could not set TCP keepalive");
    }
}

/// Serves one connection until it closes, is upgraded, or its watchdog closes it.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        tcp,
        activity: Arc::clone(&activity),
        _slot: slot,
    });
    let body_timeout = limits.body_timeout;
    let on_request = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let request = InRequest::start(Arc::clone(&activity));
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let body = if hyper::body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                let passed = BodyDeadline {
                    passed: Arc::default(),
                    limit: body_timeout,
                };
                parts.extensions.insert(passed.clone());
                Body::new(TimedBody {
                    inner: body,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    passed,
                })
            };
            let router = router.clone();
            async move {
                let response = match router.oneshot(Request::from_parts(parts, body)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|inner| {
                    Body::new(Tracked {
                        inner,
                        _request: request,
                    })
                }))
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, on_request)
        .with_upgrades();
    tokio::pin!(connection);
    let dog = watchdog(&activity, &limits);
    tokio::pin!(dog);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            reason = &mut dog => {
                tracing::debug!(%peer, reason, "closing the connection");
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
