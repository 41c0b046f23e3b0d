//! The web client embedded in the binary (docs/api.md, "Web client"): its page at `/` and at
//! every deep link outside the API, its built files cached for good, nothing shadowing the
//! API. (What the client does is tested in Chromium: web/tests, `scripts/web.sh`.)

use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE};

use crate::helpers::{TestApp, assert_error};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_and_at_any_deep_link() {
    let app = TestApp::spawn().await;
    let mut pages = Vec::new();
    for path in [
        "/",
        "/c/0192f0b4-3c2e-7a1b-9c3d-4e5f60718293",
        "/some/deep/link",
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, &CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header(&response, &CACHE_CONTROL), "no-cache");
        let csp = header(&response, &CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        pages.push(response.text().await.unwrap());
    }
    assert!(pages[0].contains(r#"<div id="app">"#), "{}", pages[0]);
    assert!(pages.iter().all(|p| *p == pages[0]));
    let head = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn built_files_are_served_with_their_type_compressed_and_cached_for_good() {
    let app = TestApp::spawn().await;
    let page = get(&app, "/").await.text().await.unwrap();
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page names its script");
    assert!(
        script.starts_with("/assets/") && script.ends_with(".js"),
        "{script}"
    );
    let response = app
        .client
        .get(app.url(script))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, &CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&response, &CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&response, &CONTENT_ENCODING), "gzip");
    // The service worker keeps its name (its scope is the whole site), so it is asked for
    // again each time rather than cached.
    let worker = get(&app, "/sw.js").await;
    assert_eq!(worker.status(), 200);
    assert_eq!(
        header(&worker, &CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&worker, &CACHE_CONTROL), "no-cache");
    assert!(worker.text().await.unwrap().contains("notificationclick"));
    // A file that is not there is not the page: a stale tab asking for an old build's
    // script gets a 404, never HTML served as JavaScript.
    for path in ["/assets/index-00000000.js", "/favicon.ico", "/robots.txt"] {
        assert_error(get(&app, path).await, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn the_api_and_other_methods_are_not_shadowed_by_the_page() {
    let app = TestApp::spawn().await;
    assert_error(get(&app, "/api/nope").await, 404, "NOT_FOUND").await;
    assert_error(get(&app, "/api").await, 404, "NOT_FOUND").await;
    assert_error(get(&app, "/metrics").await, 404, "NOT_FOUND").await;
    let health = get(&app, "/health").await;
    assert_eq!(header(&health, &CONTENT_TYPE), "application/json");
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let response = app
            .client
            .request(method, app.url("/c/somewhere"))
            .send()
            .await
            .unwrap();
        assert_error(response, 404, "NOT_FOUND").await;
    }
}
