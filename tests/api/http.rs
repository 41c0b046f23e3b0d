//! The HTTP skeleton: envelope, fallbacks, request ids, limits, compression, CORS,
//! panics, timeouts, health and graceful shutdown.

use std::io::Read;
use std::time::{Duration, Instant};

use chai_tapri::Stopped;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, json, test_redis_url};

#[tokio::test]
async fn health_reports_a_working_database_and_the_redis_state() {
    let app = TestApp::spawn().await;
    let (status, body) = json(app.get("/health").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
    let redis = if test_redis_url().is_some() {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(body["checks"]["redis"], redis);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn health_answers_503_and_marks_the_database_when_it_is_gone() {
    let app = TestApp::spawn().await;
    app.state.store.close().await;
    let (status, body) = json(app.get("/health").await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["checks"]["database"], "error");
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_envelope_even_with_a_bad_token() {
    let app = TestApp::spawn().await;
    // Outside the API, a GET is the web client's (tests/api/web.rs); anything else is not.
    for (method, path) in [
        (Method::GET, "/api/nope"),
        (Method::GET, "/api/users/x/y/z"),
        (Method::GET, "/assets/nope.js"),
        (Method::POST, "/nope"),
        (Method::DELETE, "/"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_error(response, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_an_allow_header() {
    let app = TestApp::spawn().await;
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    assert_error(response, 405, "METHOD_NOT_ALLOWED").await;
    let response = app
        .client
        .get(app.url("/api/__test/echo"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_error(response, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn malformed_json_and_wrong_content_types_are_400_invalid_json() {
    let app = TestApp::spawn().await;
    let send = |body: &'static [u8], content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/api/__test/echo")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let cases: [(&[u8], Option<&str>); 5] = [
        (b"{\"a\": ", Some("application/json")),
        (b"{'a': 1}", Some("application/json")),
        (b"{\"a\": \"\xff\xfe\"}", Some("application/json")),
        (b"{\"a\": 1}", Some("text/plain")),
        (b"{\"a\": 1}", None),
    ];
    for (body, content_type) in cases {
        assert_error(send(body, content_type).await.unwrap(), 400, "INVALID_JSON").await;
    }
    let (status, body) = json(send(b"[1, 2]", Some("application/json")).await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let (status, body) = json(
        send(b"{\"a\": 1}", Some("application/json; charset=utf-8"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"a": 1})));
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_payload_too_large() {
    let app = TestApp::spawn().await;
    let fits = json!({ "content": "x".repeat(60 * 1024) });
    assert_eq!(app.post_json("/api/__test/echo", &fits).await.status(), 200);
    let too_big = json!({ "content": "x".repeat(64 * 1024) });
    let body = assert_error(
        app.post_json("/api/__test/echo", &too_big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert!(body["error"]["message"].as_str().unwrap().contains("65536"));
}

#[tokio::test]
async fn every_response_carries_a_request_id_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "client-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    let a = app.get("/nope").await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let b = app.get("/nope").await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!a.is_empty() && a != b, "{a} {b}");
    // An unusable id (too long) is replaced, not echoed.
    let long = "x".repeat(200);
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"].to_str().unwrap(), long);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_the_request_id_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/__test/panic"))
        .header("x-request-id", "boom-1")
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 500, "INTERNAL_ERROR").await;
    assert_eq!(body["error"]["requestId"], "boom-1");
    assert!(!body.to_string().contains("index out of bounds"), "{body}");
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn internal_errors_never_leak_their_cause() {
    let app = TestApp::spawn().await;
    let body = assert_error(app.get("/api/__test/fail").await, 500, "INTERNAL_ERROR").await;
    assert!(!body.to_string().contains("10.1.2.3"), "{body}");
    assert!(body["error"]["requestId"].as_str().is_some());
}

#[tokio::test]
async fn large_bodies_are_gzipped_when_the_client_accepts_it() {
    let app = TestApp::spawn().await;
    let big = json!({ "content": "chai ".repeat(2000) });
    let response = app
        .client
        .post(app.url("/api/__test/echo"))
        .header("accept-encoding", "gzip")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let bytes = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        big
    );
    assert!(bytes.len() < 1000, "compressed to {} bytes", bytes.len());
    // Small bodies and clients that do not ask are left alone.
    let plain = app
        .client
        .post(app.url("/api/__test/echo"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn cors_allows_only_the_frontend_origin_with_credentials() {
    let app = TestApp::spawn_with(|v| {
        v.insert("FRONTEND_URL".into(), "https://chat.example.com".into());
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/__test/echo"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let ok = preflight("https://chat.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(
        other
            .headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v != "https://evil.example.com")
    );
}

#[tokio::test]
async fn a_slow_rest_request_is_cut_at_the_request_timeout_with_503() {
    let app = TestApp::spawn_with(|v| {
        v.insert("REQUEST_TIMEOUT".into(), "200ms".into());
    })
    .await;
    let started = Instant::now();
    assert_error(
        app.get("/api/__test/slow").await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(1200));
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let app = TestApp::spawn().await;
    let client = app.client.clone();
    let url = app.url("/api/__test/slow");
    let request = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    app.until_slow_entered(1).await;
    let stopped = app.stop().await;
    let response = request.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    assert_eq!(stopped, Stopped::Clean);
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlast_the_timeout() {
    let app = TestApp::spawn_with(|v| {
        v.insert("SHUTDOWN_TIMEOUT".into(), "200ms".into());
    })
    .await;
    let client = app.client.clone();
    let url = app.url("/api/__test/slow");
    let request = tokio::spawn(async move { client.get(url).send().await });
    app.until_slow_entered(1).await;
    let started = Instant::now();
    assert_eq!(app.stop().await, Stopped::TimedOut);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    drop(request);
}
