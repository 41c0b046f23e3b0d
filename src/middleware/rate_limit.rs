//! Rate limits (API.md §9) on `/api`: every route per user (signed in) or client IP, and
//! signup + login together per client IP. Counters live in the [`crate::backends::Counters`]
//! backend, so with Redis they are shared by every node.
//!
//! Every answer of a limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds) for the limit with the least remaining; over a limit the
//! answer is 429 `RATE_LIMITED` with `Retry-After` too.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::backends::Hit;
use crate::config::{IpNet, RateQuota};
use crate::error::AppError;
use crate::middleware::auth::token_from_headers;
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

/// One limit's state after this request.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    quota: RateQuota,
    hit: Hit,
}

impl Verdict {
    fn remaining(&self) -> u64 {
        u64::from(self.quota.count).saturating_sub(self.hit.count)
    }

    fn exceeded(&self) -> bool {
        self.hit.count > u64::from(self.quota.count)
    }

    fn reset_secs(&self) -> u64 {
        self.hit
            .reset_in
            .as_millis()
            .div_ceil(1000)
            .try_into()
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

async fn count(state: &AppState, key: String, quota: RateQuota) -> Result<Verdict, AppError> {
    let hit = state.backends.counters.hit(&key, quota.window).await?;
    Ok(Verdict { quota, hit })
}

fn set_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    let pairs = [
        ("ratelimit-limit", u64::from(verdict.quota.count)),
        ("ratelimit-remaining", verdict.remaining()),
        ("ratelimit-reset", verdict.reset_secs()),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// The `/api` rate-limit middleware.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = &state.config.rate_limit;
    if !config.enabled {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &config.trusted_proxies);
    let is_auth_route = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| AUTH_ROUTES.contains(&p.as_str()));
    // Signed in (a genuine, unexpired token): the budget is the user's; else the address's.
    let api_key = token_from_headers(req.headers())
        .and_then(|t| state.tokens.verify(&t).ok())
        .map_or_else(
            || format!("api:ip:{ip}"),
            |t| format!("api:user:{}", t.user_id),
        );
    let mut verdicts = Vec::with_capacity(2);
    match count(&state, api_key, config.api).await {
        Ok(v) => verdicts.push(v),
        Err(e) => return e.into_response(),
    }
    if is_auth_route {
        match count(&state, format!("auth:ip:{ip}"), config.auth).await {
            Ok(v) => verdicts.push(v),
            Err(e) => return e.into_response(),
        }
    }
    let tightest = verdicts
        .iter()
        .copied()
        .min_by_key(|v| (!v.exceeded(), v.remaining()))
        .unwrap_or(verdicts[0]);
    let mut response = if tightest.exceeded() {
        tracing::warn!(client_ip = %ip, "rate limit hit");
        AppError::RateLimited {
            retry_after: tightest.reset_secs(),
        }
        .into_response()
    } else {
        next.run(req).await
    };
    set_headers(response.headers_mut(), &tightest);
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
