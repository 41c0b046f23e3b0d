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

#[tokio::test]
async fn sends_have_their_own_budget_and_a_committed_nonce_is_not_charged() {
    let app = TestApp::spawn_with(|v| {
        v.insert("RATE_LIMIT_ENABLED".into(), "true".into());
        v.insert("RATE_LIMIT_MESSAGES".into(), "2/1m".into());
        v.insert("RATE_LIMIT_API".into(), "100/1m".into());
    })
    .await;
    let u = app.signup("chatty").await;
    let channel = app.create_channel(&u, "budget", false).await;
    let path = format!("/api/channels/{channel}/messages");
    let send = |nonce: &'static str| {
        let (app, token, path) = (&app, u.token.clone(), path.clone());
        async move {
            app.send_as(
                reqwest::Method::POST,
                &token,
                &path,
                &json!({"content": "hello", "nonce": nonce}),
            )
            .await
        }
    };
    let first = send("n-1").await;
    assert_eq!(first.status(), 201);
    // The message budget is the tightest: its headers, not the /api one's.
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    let first_id = json(first).await.1["data"]["message"]["id"].clone();
    for _ in 0..3 {
        let replay = send("n-1").await;
        assert_eq!(
            replay.status(),
            200,
            "a committed nonce answers with its message"
        );
        assert_eq!(json(replay).await.1["data"]["message"]["id"], first_id);
    }
    let second = send("n-2").await;
    assert_eq!(second.status(), 201, "replays were not charged");
    assert_eq!(second.headers()["ratelimit-remaining"], "0");
    let refused = send("n-3").await;
    assert_eq!(
        refused.headers()["ratelimit-limit"],
        "2",
        "the message budget refused it"
    );
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "RATE_LIMITED").await;
    // The same budget holds on the socket.
    let mut socket = app.socket(&u).await;
    let ack = socket
        .call(
            "send-message",
            &json!({"channelId": channel, "content": "hi", "nonce": "n-4"}),
        )
        .await;
    assert_eq!(ack["error"]["code"], "RATE_LIMITED", "{ack}");
    // Other routes still answer, under the /api budget.
    let me = app.get_as(&u.token, "/api/auth/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["ratelimit-limit"], "100");
}
