//! Tower layers and the extractors that act as guards.
//!
//! [`stack`] is the one place where the order of the layers is decided.

pub mod auth;
pub mod rate_limit;
pub mod request_id;
pub mod validate;

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{
    Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header,
};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{Instrument, field};

use crate::connections::BodyDeadline;
use crate::error::{AppError, ErrorCause};
use crate::state::AppState;

/// Requests being served right now; shutdown reports how many it had to cut.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// How many requests are being served.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count when the request ends, however it ends.
struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wraps the whole router, outermost first:
///
/// 1. `observe`: request id, trace span, panic → 500, one log line per request. Outermost,
///    so that every response — even a CORS rejection or a compressed body — carries
///    `X-Request-Id` and is logged with its final status.
/// 2. CORS: answers preflights before anything else spends work on them.
/// 3. Socket.IO: takes `/socket.io/*` before routing, so neither gzip nor the REST timeout
///    wraps Engine.IO traffic (long-polling holds a request for up to 25 s).
/// 4. gzip: compresses what the handlers produce (bodies of 1 KiB and more).
///
/// The REST-only layers (request timeout, body limit) live on the `/api` sub-router
/// ([`api_layers`]), so they never wrap Socket.IO long-polling, which holds a request
/// open for up to 25 s.
pub fn stack(
    router: Router,
    socket: impl FnOnce(Router) -> Router,
    frontend_url: &str,
    in_flight: InFlight,
) -> Router {
    let origin = HeaderValue::from_str(frontend_url).unwrap_or(HeaderValue::from_static("null"));
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::exact(origin))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(request_id::HEADER),
            // Downloads: seeking and revalidation.
            header::RANGE,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            HeaderName::from_static(request_id::HEADER),
            header::CONTENT_DISPOSITION,
            header::CONTENT_RANGE,
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600));
    let gzip = CompressionLayer::new()
        .gzip(true)
        .no_br()
        .no_deflate()
        .no_zstd()
        .compress_when(
            SizeAbove::new(1024)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                // File downloads keep their `Content-Length` and byte ranges.
                .and(
                    |_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions| {
                        !headers.contains_key(header::ACCEPT_RANGES)
                    },
                ),
        );
    socket(router.layer(gzip))
        .layer(axum::middleware::map_request(detach_socket_request))
        .layer(axum::middleware::from_fn(late_body))
        .layer(cors)
        .layer(from_fn_with_state(in_flight, observe))
}

/// A request whose body did not arrive within `BODY_TIMEOUT` is answered 408, whatever the
/// handler (or Engine.IO) made of the failed read.
async fn late_body(req: Request, next: Next) -> Response {
    let deadline = req.extensions().get::<BodyDeadline>().cloned();
    let response = next.run(req).await;
    match deadline {
        Some(deadline) if deadline.passed() => {
            let mut late = AppError::RequestTimeout {
                limit_ms: deadline.limit().as_millis(),
            }
            .into_response();
            late.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            late
        }
        _ => response,
    }
}

/// Engine.IO keeps the handshake request's URI and headers for the life of the socket. As
/// parsed, they are slices of the connection's 8 KiB read buffer, which they would keep
/// alive; copies cost a few hundred bytes instead (measured: hyper's buffers leave the heap
/// profile, and RSS per idle socket falls from 30.4 to 22.8 KiB).
async fn detach_socket_request(mut req: Request) -> Request {
    if req.uri().path().starts_with("/socket.io") {
        if let Ok(uri) = req.uri().to_string().parse() {
            *req.uri_mut() = uri;
        }
        let headers = req
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
                let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
                Some((name, value))
            })
            .collect();
        *req.headers_mut() = headers;
    }
    req
}

/// Layers that only REST routes get, outermost first: the request timeout (so that a
/// slow rate-limit backend counts against it too), then the rate limits.
pub fn api_layers(router: Router, state: &AppState) -> Router {
    router
        .layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(from_fn_with_state(
            state.config().request_timeout,
            time_limit,
        ))
}

async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => AppError::ServiceUnavailable(format!(
            "request took longer than the {} ms limit",
            limit.as_millis()
        ))
        .into_response(),
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// Request id, span, panic catching, the request log line and the error log line.
async fn observe(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    in_flight.0.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlightGuard(in_flight);
    let id = request_id::from_headers(req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let method = req.method().clone();
    // Engine.IO's requests (long polls held for 25 s) are not REST requests.
    let counted = crate::metrics::enabled() && !req.uri().path().starts_with("/socket.io");
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        user_id = field::Empty,
    );
    let run = request_id::scope(id.clone(), async move {
        match AssertUnwindSafe(next.run(req)).catch_unwind().await {
            Ok(response) => response,
            Err(payload) => {
                AppError::internal(format!("handler panicked: {}", panic_text(&*payload)))
                    .into_response()
            }
        }
    });
    let mut response = run.instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(request_id::HEADER), value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if counted {
        crate::metrics::http_request(&method, &route, status, elapsed);
    }
    let latency_ms = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
    span.in_scope(|| {
        if let Some(ErrorCause(cause)) = response.extensions().get::<ErrorCause>() {
            tracing::error!(status, cause = %cause, "request failed");
        }
        tracing::info!(status, latency_ms, "request completed");
    });
    response
}
