//! The three rate limits of API.md §9 — every `/api` route per user or client IP, signup +
//! login per client IP, message sends per user (REST and socket alike) — in one place:
//! their budgets, their counter keys, and the verdict a transport turns into `429` and the
//! `RateLimit-*` headers. Counters live in the [`crate::backends::Counters`] backend, so
//! with Redis every node shares them.

use std::net::IpAddr;

use uuid::Uuid;

use crate::config::{IpNet, RateLimitConfig, RateQuota};
use crate::error::AppError;
use crate::services::Services;

/// One of the three budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Every `/api` route.
    Api,
    /// Signup and login together.
    Auth,
    /// Message sends.
    Messages,
}

/// Whose budget is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A signed-in user.
    User(Uuid),
    /// A client address (not signed in, or a per-address limit).
    Ip(IpAddr),
}

/// The rate-limit settings of a node.
#[derive(Debug)]
pub struct Limits {
    config: RateLimitConfig,
}

impl Limits {
    /// Limits as configured.
    #[must_use]
    pub fn new(config: RateLimitConfig) -> Self {
        Self { config }
    }

    /// Whether limits apply at all (`RATE_LIMIT_ENABLED`).
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Peers whose `X-Forwarded-For` is believed.
    #[must_use]
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.config.trusted_proxies
    }

    fn quota(&self, limit: Limit) -> RateQuota {
        match limit {
            Limit::Api => self.config.api,
            Limit::Auth => self.config.auth,
            Limit::Messages => self.config.messages,
        }
    }
}

impl Limit {
    /// The name of the budget in metrics.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Auth => "auth",
            Self::Messages => "messages",
        }
    }
}

fn key(limit: Limit, subject: Subject) -> String {
    let prefix = match limit {
        Limit::Api => "api",
        Limit::Auth => "auth",
        Limit::Messages => "msg",
    };
    match subject {
        Subject::User(id) => format!("{prefix}:user:{id}"),
        Subject::Ip(ip) => format!("{prefix}:ip:{ip}"),
    }
}

/// One budget's state after a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Events the window allows (`RateLimit-Limit`).
    pub limit: u64,
    /// Events counted in the window, this one included.
    pub used: u64,
    /// Seconds until the window resets, at least 1 (`RateLimit-Reset`).
    pub reset_secs: u64,
}

impl Verdict {
    /// Events left in the window (`RateLimit-Remaining`).
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Whether this event is over the budget.
    #[must_use]
    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }

    /// `Err(RATE_LIMITED)` when over the budget.
    ///
    /// # Errors
    /// `RATE_LIMITED` with this budget and when it resets.
    pub fn check(self) -> Result<Self, AppError> {
        if self.exceeded() {
            Err(AppError::RateLimited {
                retry_after: self.reset_secs,
                limit: self.limit,
            })
        } else {
            Ok(self)
        }
    }

    /// The verdict a client should see among several: an exceeded one first, else the one
    /// with the least remaining.
    #[must_use]
    pub fn tightest(verdicts: impl IntoIterator<Item = Self>) -> Option<Self> {
        verdicts
            .into_iter()
            .min_by_key(|v| (!v.exceeded(), v.remaining()))
    }
}

/// Counts one event against `limit` for `subject`; `None` when limits are off.
///
/// # Errors
/// The counters backend cannot be reached (`SERVICE_UNAVAILABLE`). Being over the budget
/// is not an error here: see [`Verdict::check`].
pub async fn charge(
    services: &Services,
    limit: Limit,
    subject: Subject,
) -> Result<Option<Verdict>, AppError> {
    if !services.limits.enabled() {
        return Ok(None);
    }
    let quota = services.limits.quota(limit);
    let hit = services
        .backends
        .counters
        .hit(&key(limit, subject), quota.window)
        .await?;
    let verdict = Verdict {
        limit: u64::from(quota.count),
        used: hit.count,
        reset_secs: hit
            .reset_in
            .as_millis()
            .div_ceil(1000)
            .try_into()
            .unwrap_or(u64::MAX)
            .max(1),
    };
    if verdict.exceeded() {
        metrics::counter!(crate::metrics::names::RATE_LIMITED, "limit" => limit.label())
            .increment(1);
    }
    Ok(Some(verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(limit: u64, used: u64) -> Verdict {
        Verdict {
            limit,
            used,
            reset_secs: 60,
        }
    }

    #[test]
    fn the_tightest_is_an_exceeded_budget_else_the_least_remaining() {
        let api = verdict(100, 10);
        let messages = verdict(30, 25);
        assert_eq!(Verdict::tightest([api, messages]), Some(messages));
        let over = verdict(100, 101);
        assert_eq!(Verdict::tightest([messages, over]), Some(over));
        assert_eq!(Verdict::tightest([]), None);
    }

    #[test]
    fn keys_keep_each_budget_apart() {
        let user = Subject::User(Uuid::nil());
        assert_ne!(key(Limit::Api, user), key(Limit::Messages, user));
        assert_eq!(
            key(Limit::Auth, Subject::Ip("127.0.0.1".parse().unwrap())),
            "auth:ip:127.0.0.1"
        );
    }
}
