//! Rate limits (API.md §9): signup and login share a budget per IP; every `/api` route
//! has one per user (signed in) or per IP.

use serde_json::json;

use crate::helpers::{TestApp, assert_error, json};

#[tokio::test]
async fn signup_and_login_share_one_budget_per_address() {
    let app = TestApp::spawn_with(|v| {
        v.insert("RATE_LIMIT_ENABLED".into(), "true".into());
        v.insert("RATE_LIMIT_AUTH".into(), "3/15m".into());
    })
    .await;
    let u = app.signup("ratty").await;
    let login = json!({"username": "ratty", "password": u.password});
    let response = app.post_json("/api/auth/login", &login).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["ratelimit-limit"], "3");
    assert_eq!(response.headers()["ratelimit-remaining"], "1");
    assert_eq!(
        app.post_json(
            "/api/auth/login",
            &json!({"username": "ratty", "password": "wrong-password"})
        )
        .await
        .status(),
        401
    );
    let response = app.post_json("/api/auth/login", &login).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    assert!(response.headers().contains_key("ratelimit-reset"));
    assert_error(response, 429, "RATE_LIMITED").await;
    // Other routes are not under the auth budget.
    assert_eq!(app.get_as(&u.token, "/api/auth/me").await.status(), 200);
}

#[tokio::test]
async fn the_api_budget_is_per_user_when_signed_in() {
    let app = TestApp::spawn_with(|v| {
        v.insert("RATE_LIMIT_ENABLED".into(), "true".into());
        v.insert("RATE_LIMIT_API".into(), "4/1m".into());
        v.insert("RATE_LIMIT_AUTH".into(), "100/1m".into());
    })
    .await;
    let a = app.signup("first").await;
    let b = app.signup("second").await;
    for remaining in ["3", "2", "1", "0"] {
        let response = app.get_as(&a.token, "/api/auth/me").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-remaining"], remaining);
    }
    assert_error(
        app.get_as(&a.token, "/api/auth/me").await,
        429,
        "RATE_LIMITED",
    )
    .await;
    assert_eq!(
        app.get_as(&b.token, "/api/auth/me").await.status(),
        200,
        "another user's budget is untouched"
    );
    // /health is not an /api route.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn limits_can_be_switched_off() {
    let app = TestApp::spawn_with(|v| {
        v.insert("RATE_LIMIT_ENABLED".into(), "false".into());
        v.insert("RATE_LIMIT_AUTH".into(), "1/15m".into());
    })
    .await;
    for _ in 0..3 {
        let response = app
            .post_json(
                "/api/auth/login",
                &json!({"username": "nobody", "password": "password1"}),
            )
            .await;
        assert!(response.headers().get("ratelimit-limit").is_none());
        assert_eq!(json(response).await.0, 401);
    }
}
