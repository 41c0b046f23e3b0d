//! `X-Request-Id`: echoed when the client sent a usable one, generated otherwise, and
//! kept in a task-local for the life of the request so error bodies can name it.

use std::sync::Arc;

use axum::http::HeaderMap;

/// The header name, lower-case as HTTP/2 wants it.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// The id of the request being served on this task, if any.
#[must_use]
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(ToString::to_string).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: Arc<str>, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The client's id if it is 1–128 visible ASCII characters, else a fresh UUIDv7.
#[must_use]
pub fn from_headers(headers: &HeaderMap) -> Arc<str> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Arc::from(uuid::Uuid::now_v7().to_string()), Arc::from)
}
