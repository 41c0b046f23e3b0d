//! The `AuthUser` extractor: a verified, unrevoked token naming an existing user.
//!
//! The token comes from `Authorization: Bearer …` or, failing that, the `token` cookie.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use crate::error::AppError;
use crate::middleware::rate_limit::request_ip;
use crate::services::auth::{self, AuthUser};
use crate::state::AppState;

/// Name of the cookie that carries the token.
pub const TOKEN_COOKIE: &str = "token";

/// The token a request carries, if any (the header wins over the cookie).
#[must_use]
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Some((scheme, token)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            let token = token.trim();
            if !token.is_empty() {
                return Some(token.to_owned());
            }
        }
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == TOKEN_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(user.clone());
        }
        let token = token_from_headers(&parts.headers).ok_or(AppError::AuthRequired)?;
        let mut user = auth::authenticate(state, &token).await?;
        user.ip = request_ip(
            &parts.extensions,
            &parts.headers,
            state.limits.trusted_proxies(),
        );
        tracing::Span::current().record("user_id", tracing::field::display(user.user.id));
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}
