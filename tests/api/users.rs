//! The user directory and profiles (API.md §4).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, json};

fn usernames(body: &Value) -> Vec<String> {
    body["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_directory_lists_users_by_username_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    let me = app.signup("mohan").await;
    for name in ["Zara", "anil", "Bela", "chitra"] {
        app.signup(name).await;
    }
    let (status, first) = json(app.get_as(&me.token, "/api/users?limit=2").await).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(usernames(&first), ["anil", "Bela"]);
    assert_eq!(first["data"]["pagination"]["hasMore"], true);
    let cursor = first["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, second) = json(
        app.get_as(&me.token, &format!("/api/users?limit=2&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(usernames(&second), ["chitra", "mohan"]);
    let cursor = second["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, last) = json(
        app.get_as(&me.token, &format!("/api/users?limit=2&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(usernames(&last), ["Zara"]);
    assert_eq!(
        last["data"]["pagination"],
        json!({"hasMore": false, "nextCursor": null})
    );
    // Nobody else's email is shown.
    assert!(
        first["data"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("email").is_none())
    );
}

#[tokio::test]
async fn search_matches_a_prefix_of_the_username_or_the_display_name() {
    let app = TestApp::spawn().await;
    let me = app.signup("searcher").await;
    app.signup("priya").await;
    app.signup("priyanka").await;
    let other = app.signup("sam").await;
    app.send_as(
        Method::PATCH,
        &other.token,
        "/api/users/me",
        &json!({"displayName": "Élodie Priyadarshini"}),
    )
    .await;
    app.signup("apriya").await;
    let (_, body) = json(app.get_as(&me.token, "/api/users?search=PRI").await).await;
    assert_eq!(usernames(&body), ["priya", "priyanka"]);
    let (_, body) = json(app.get_as(&me.token, "/api/users?search=%C3%A9lo").await).await;
    assert_eq!(
        usernames(&body),
        ["sam"],
        "display names match case-insensitively, beyond ASCII"
    );
    let (_, body) = json(app.get_as(&me.token, "/api/users?search=%25").await).await;
    assert_eq!(
        usernames(&body),
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
}

#[tokio::test]
async fn list_limits_are_capped_at_100_and_nonsense_is_refused() {
    let app = TestApp::spawn().await;
    let me = app.signup("limits").await;
    assert_eq!(
        app.get_as(&me.token, "/api/users?limit=5000")
            .await
            .status(),
        200
    );
    for bad in ["limit=0", "limit=-3", "limit=abc", "cursor=zz", "cursor=ff"] {
        assert_error(
            app.get_as(&me.token, &format!("/api/users?{bad}")).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

#[tokio::test]
async fn a_user_is_found_by_id_and_unknown_or_malformed_ids_are_404() {
    let app = TestApp::spawn().await;
    let me = app.signup("finder").await;
    let other = app.signup("found").await;
    let (status, body) = json(
        app.get_as(&me.token, &format!("/api/users/{}", other.id))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["user"]["username"], "found");
    assert!(body["data"]["user"].get("email").is_none());
    let unknown = uuid::Uuid::now_v7();
    for id in [
        unknown.to_string(),
        "not-an-id".into(),
        "1".into(),
        "'; DROP TABLE users; --".into(),
    ] {
        let path = format!("/api/users/{}", urlencode(&id));
        assert_error(app.get_as(&me.token, &path).await, 404, "USER_NOT_FOUND").await;
    }
    assert_error(
        app.get_as(&me.token, "/api/users/%FF%FE").await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_user_updates_their_own_profile_and_can_clear_fields() {
    let app = TestApp::spawn().await;
    let me = app.signup("profile").await;
    let (status, body) = json(
        app.send_as(
            Method::PATCH,
            &me.token,
            "/api/users/me",
            &json!({"displayName": "  Pro File ", "status": "brewing chai", "avatarUrl": "https://cdn.example.com/p.png"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let user = &body["data"]["user"];
    assert_eq!(user["displayName"], "Pro File");
    assert_eq!(user["status"], "brewing chai");
    assert_eq!(user["avatarUrl"], "https://cdn.example.com/p.png");
    assert_eq!(user["email"], "profile@example.com");
    let (_, body) = json(
        app.send_as(
            Method::PATCH,
            &me.token,
            "/api/users/me",
            &json!({"status": null, "avatarUrl": null}),
        )
        .await,
    )
    .await;
    assert_eq!(body["data"]["user"]["status"], Value::Null);
    assert_eq!(body["data"]["user"]["avatarUrl"], Value::Null);
    assert_eq!(
        body["data"]["user"]["displayName"], "Pro File",
        "untouched fields stay"
    );
    let body = assert_error(
        app.send_as(
            Method::PATCH,
            &me.token,
            "/api/users/me",
            &json!({"displayName": "", "status": "s".repeat(101), "avatarUrl": "javascript:alert(1)"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn online_status_follows_the_presence_backend() {
    let app = TestApp::spawn().await;
    let me = app.signup("watcher").await;
    let other = app.signup("onliner").await;
    let (_, body) = json(app.get_as(&me.token, "/api/users/online").await).await;
    assert_eq!(body["data"]["users"], json!([]));
    let id = uuid::Uuid::parse_str(&other.id).unwrap();
    app.state
        .backends
        .presence
        .add_socket(id, "socket-1")
        .await
        .unwrap();
    let (_, body) = json(app.get_as(&me.token, "/api/users/online").await).await;
    assert_eq!(usernames(&body), ["onliner"]);
    assert_eq!(body["data"]["users"][0]["isOnline"], true);
    let (_, body) = json(
        app.get_as(&me.token, &format!("/api/users/{}", other.id))
            .await,
    )
    .await;
    assert_eq!(body["data"]["user"]["isOnline"], true);
    app.state
        .backends
        .presence
        .remove_socket(id, "socket-1")
        .await
        .unwrap();
    let (_, body) = json(
        app.get_as(&me.token, &format!("/api/users/{}", other.id))
            .await,
    )
    .await;
    assert_eq!(body["data"]["user"]["isOnline"], false);
}

#[tokio::test]
async fn last_seen_is_written_for_a_whole_batch_and_a_user_listed_twice_keeps_the_later_time() {
    let app = TestApp::spawn().await;
    let a = app.signup("seenbatcha").await;
    let b = app.signup("seenbatchb").await;
    let (ida, idb) = (
        uuid::Uuid::parse_str(&a.id).unwrap(),
        uuid::Uuid::parse_str(&b.id).unwrap(),
    );
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    app.state
        .store
        .update_last_seen(&[
            (ida, t("2026-01-01T12:00:00Z")),
            (idb, t("2026-01-01T11:00:00Z")),
            (ida, t("2026-01-01T10:00:00Z")),
        ])
        .await
        .unwrap();
    let seen = |id| {
        let store = app.state.store.clone();
        async move { store.fetch_user(id).await.unwrap().unwrap().last_seen }
    };
    assert_eq!(seen(ida).await, Some(t("2026-01-01T12:00:00Z")));
    assert_eq!(seen(idb).await, Some(t("2026-01-01T11:00:00Z")));
}

#[tokio::test]
async fn looking_oneself_up_by_id_shows_ones_own_email() {
    let app = TestApp::spawn().await;
    let me = app.signup("mirror").await;
    let other = app.signup("stranger").await;
    let (status, body) = json(
        app.get_as(&me.token, &format!("/api/users/{}", me.id))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["user"]["email"], me.email, "{body}");
    let (_, theirs) = json(
        app.get_as(&other.token, &format!("/api/users/{}", me.id))
            .await,
    )
    .await;
    assert!(theirs["data"]["user"].get("email").is_none(), "{theirs}");
}
