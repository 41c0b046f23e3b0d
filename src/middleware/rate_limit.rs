//! Rate limits on `/api` as HTTP: who the client is (user or address, behind trusted
//! proxies) and the `RateLimit-*` headers. The budgets and their counting live in
//! [`crate::services::limits`], shared with the socket's `send-message`.
//!
//! Every answer of a limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds) for the budget with the least remaining; over a budget the
//! answer is 429 `RATE_LIMITED` with `Retry-After` and that budget's headers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::IpNet;
use crate::middleware::auth::token_from_headers;
use crate::services::limits::{self, Limit, Subject, Verdict};
use crate::state::AppState;

/// Routes that share the signup/login budget.
const AUTH_ROUTES: [&str; 2] = ["/api/auth/signup", "/api/auth/login"];

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or_else(|| forwarded.first().copied())
        .unwrap_or(peer)
}

/// The client's address of a request or a socket's handshake ([`client_ip`] of the peer
/// its connection recorded); `None` when no connection recorded one.
#[must_use]
pub fn request_ip(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(client_ip(peer, headers, trusted))
}

/// The client's address as an extractor ([`request_ip`]), for a handler that records it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(request_ip(
            &parts.extensions,
            &parts.headers,
            state.limits.trusted_proxies(),
        )))
    }
}

/// `RateLimit-Limit`: written on every answer of a limited route, by [`set_headers`] alone.
const LIMIT_HEADER: &str = "ratelimit-limit";

/// Writes `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) — for
/// this middleware's answers and for a 429 (`AppError::RateLimited`) alike.
pub(crate) fn set_headers(headers: &mut HeaderMap, limit: u64, remaining: u64, reset_secs: u64) {
    let pairs = [
        (LIMIT_HEADER, limit),
        ("ratelimit-remaining", remaining),
        ("ratelimit-reset", reset_secs),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// The `/api` rate-limit middleware: charges the `/api` budget (and the signup/login one on
/// those routes), refuses over either, and answers with the headers of the tightest budget —
/// including one a handler charged itself (a message send puts its [`Verdict`] in the
/// response's extensions).
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.limits.enabled() {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = client_ip(peer, req.headers(), state.limits.trusted_proxies());
    let is_auth_route = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| AUTH_ROUTES.contains(&p.as_str()));
    // Signed in (a genuine, unexpired token): the budget is the user's; else the address's.
    let api_subject = token_from_headers(req.headers())
        .and_then(|t| state.tokens.verify(&t).ok())
        .map_or(Subject::Ip(ip), |t| Subject::User(t.user_id));
    let mut verdicts = Vec::with_capacity(3);
    let mut charges = vec![(Limit::Api, api_subject)];
    if is_auth_route {
        charges.push((Limit::Auth, Subject::Ip(ip)));
    }
    for (limit, subject) in charges {
        match limits::charge(&state, limit, subject).await {
            Ok(v) => verdicts.extend(v),
            Err(e) => return e.into_response(),
        }
    }
    if let Some(Err(refusal)) = verdicts.iter().map(|v| v.check()).find(Result::is_err) {
        tracing::warn!(client_ip = %ip, "rate limit hit");
        return refusal.into_response();
    }
    let mut response = next.run(req).await;
    // A handler that refused on a budget of its own already said which one.
    if response.headers().contains_key(LIMIT_HEADER) {
        return response;
    }
    verdicts.extend(response.extensions().get::<Verdict>().copied());
    if let Some(tightest) = Verdict::tightest(verdicts) {
        set_headers(
            response.headers_mut(),
            tightest.limit,
            tightest.remaining(),
            tightest.reset_secs,
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::config::Config::from_map(
            &[("TRUSTED_PROXIES".to_owned(), s.to_owned())]
                .into_iter()
                .collect(),
        )
        .unwrap()
        .rate_limit
        .trusted_proxies[0]
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.0.0.2"),
        );
        let trusted = [net("10.0.0.0/8")];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            client_ip(stranger, &headers, &trusted),
            stranger,
            "spoofed header ignored"
        );
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the nearest untrusted hop, not the client-supplied leftmost"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
