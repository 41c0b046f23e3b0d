//! HTTP handlers: extract → call one service → envelope. No SQL, no rules.

pub mod health;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::error::AppError;
use crate::middleware::{self, validate::JSON_BODY_LIMIT};
use crate::state::AppState;

/// The `/api` routes (REST), before state is attached.
fn api_routes() -> Router<AppState> {
    Router::new()
}

/// Every route, with the 404 and 405 fallbacks in the envelope. `extra_api` routes are
/// mounted under `/api` with the same layers (the test suite uses it for fault routes).
pub fn router(state: AppState, extra_api: Option<Router<AppState>>) -> Router {
    let mut api = api_routes();
    if let Some(extra) = extra_api {
        api = api.merge(extra);
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state.clone());
    let api = middleware::api_layers(api, state.config.request_timeout);
    Router::new()
        .route("/health", get(health::get_health))
        .with_state(state)
        .nest("/api", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
