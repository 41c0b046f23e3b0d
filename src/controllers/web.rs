//! The web client, embedded in the binary (docs/api.md, "Web client"): its built files at
//! their paths, and the app's page for every other `GET` outside the API, so a deep link
//! (`/c/<channel id>`) opens the app there.

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The app's page.
const INDEX: &str = "/index.html";

/// What the page may load: only this origin (the API and the socket included), images also
/// from `data:` and `blob:` URLs (previews of uploads before they are sent).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The embedded file at `path`.
fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "webmanifest") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(path: &str, bytes: &'static [u8]) -> Response {
    // Built files carry their content's hash in their names: cached for good. The page
    // names them, so it is asked for again each time.
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response();
    if path == INDEX {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

/// Everything no route answers: a built file, the app's page for a `GET` of any other path
/// outside `/api`, `/socket.io`, `/assets` and `/metrics`, and 404 in the envelope for the
/// rest.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if method != Method::GET && method != Method::HEAD {
        return AppError::NotFound.into_response();
    }
    if let Some(bytes) = asset(path).filter(|_| path != INDEX) {
        return respond(path, bytes);
    }
    // The API's, the socket's and the built files' paths, and `/metrics` (served on its own
    // listener, `METRICS_ADDR`, never here), are never the page.
    let reserved = ["/api/", "/socket.io/", "/assets/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
        || path == "/api"
        || path == "/metrics"
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'));
    match asset(INDEX) {
        Some(page) if !reserved => respond(INDEX, page),
        _ => AppError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("/assets/index-1a2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/robots"), "application/octet-stream");
    }
}
