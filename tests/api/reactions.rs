//! Reactions (docs/api.md, "Reactions"): members react, once per emoji; every read shows
//! the counts, the first users and the reader's own; the room hears each change once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

async fn react(
    app: &TestApp,
    user: &TestUser,
    message: &str,
    emoji: &str,
    method: Method,
) -> reqwest::Response {
    app.send_as(
        method,
        &user.token,
        &format!("/api/messages/{message}/reactions/{emoji}"),
        &json!({}),
    )
    .await
}

async fn reacted(
    app: &TestApp,
    user: &TestUser,
    message: &str,
    emoji: &str,
    method: Method,
) -> Value {
    let (status, body) = json(react(app, user, message, emoji, method).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["message"]["reactions"].clone()
}

/// The reactions of message `id` on the newest page of `channel`, as `user` reads it.
async fn on_page(app: &TestApp, user: &TestUser, channel: &str, id: &str) -> Value {
    let (_, body) = json(
        app.get_as(&user.token, &format!("/api/channels/{channel}/messages"))
            .await,
    )
    .await;
    body["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} not on the page: {body}"))["reactions"]
        .clone()
}

#[tokio::test]
async fn members_react_once_per_emoji_and_each_reader_sees_their_own() {
    let app = TestApp::spawn().await;
    let (owner, asha, bala, outsider) = (
        app.signup("owner").await,
        app.signup("asha").await,
        app.signup("bala").await,
        app.signup("outsider").await,
    );
    let general = app.create_channel(&owner, "general", false).await;
    let secret = app.create_channel(&owner, "secret", true).await;
    for u in [&asha, &bala] {
        app.post_as(u, &format!("/api/channels/{general}/join"))
            .await;
    }
    let mut socket = app.socket(&owner).await;
    let ack = socket
        .call("join-channel", &json!({ "channelId": general }))
        .await;
    assert_eq!(ack["success"], true);
    let m = app.send_message(&owner, &general, "ship it?").await;
    assert_eq!(m["reactions"], json!([]));
    let id = m["id"].as_str().unwrap().to_owned();
    // Read (and kept) before anyone reacts.
    assert_eq!(on_page(&app, &owner, &general, &id).await, json!([]));

    assert_eq!(
        reacted(&app, &asha, &id, "👍", Method::PUT).await,
        json!([{ "emoji": "👍", "count": 1, "userIds": [asha.id], "me": true }])
    );
    let heard = socket
        .event("reaction-added", WAIT)
        .await
        .expect("the room hears it");
    assert_eq!(
        heard,
        json!({ "messageId": id, "channelId": general, "emoji": "👍", "userId": asha.id })
    );
    reacted(&app, &bala, &id, "👍", Method::PUT).await;
    assert_eq!(
        reacted(&app, &bala, &id, ":tada:", Method::PUT).await,
        json!([
            { "emoji": "👍", "count": 2, "userIds": [asha.id, bala.id], "me": true },
            { "emoji": ":tada:", "count": 1, "userIds": [bala.id], "me": true },
        ])
    );

    // Every reader sees the counts; `me` is their own, also from the kept newest page.
    let mine = |list: &Value| -> Vec<bool> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["me"].as_bool().unwrap())
            .collect()
    };
    for _ in 0..2 {
        assert_eq!(
            mine(&on_page(&app, &owner, &general, &id).await),
            [false, false]
        );
        assert_eq!(
            mine(&on_page(&app, &asha, &general, &id).await),
            [true, false]
        );
        assert_eq!(
            mine(&on_page(&app, &outsider, &general, &id).await),
            [false, false]
        );
        assert_eq!(
            mine(&on_page(&app, &bala, &general, &id).await),
            [true, true]
        );
    }

    // Again: unchanged and unannounced.
    let again = reacted(&app, &asha, &id, "👍", Method::PUT).await;
    assert_eq!(again[0]["count"], 2);
    app.send_message(&owner, &general, "marker 1").await;
    let before = socket
        .events_before("new-message", |m| m["content"] == "marker 1", WAIT)
        .await;
    let names: Vec<&str> = before
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("reaction-"))
        .collect();
    assert_eq!(
        names,
        ["reaction-added", "reaction-added"],
        "Bala's two, nothing more"
    );

    // An edit keeps them, and the room hears them with the edit (`me` is the reader's).
    let (_, edited) = json(
        app.send_as(
            Method::PATCH,
            &owner.token,
            &format!("/api/messages/{id}"),
            &json!({ "content": "ship it!" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        mine(&edited["data"]["message"]["reactions"]),
        [false, false]
    );
    let heard = socket.event("message-edited", WAIT).await.unwrap();
    assert_eq!(heard["reactions"][0]["count"], 2);

    // Taken back: once.
    assert_eq!(
        reacted(&app, &asha, &id, "👍", Method::DELETE).await[0],
        json!({ "emoji": "👍", "count": 1, "userIds": [bala.id], "me": false })
    );
    let heard = socket
        .event("reaction-removed", WAIT)
        .await
        .expect("the room hears it");
    assert_eq!(heard["userId"], asha.id.as_str());
    reacted(&app, &asha, &id, "👍", Method::DELETE).await;
    app.send_message(&owner, &general, "marker 2").await;
    let before = socket
        .events_before("new-message", |m| m["content"] == "marker 2", WAIT)
        .await;
    assert!(
        before.iter().all(|(n, _)| n != "reaction-removed"),
        "{before:?}"
    );
    assert_eq!(
        mine(&on_page(&app, &asha, &general, &id).await),
        [false, false]
    );

    // Who may, and what an emoji is.
    let hidden = app.send_message(&owner, &secret, "hidden").await;
    assert_error(
        react(&app, &outsider, &id, "👍", Method::PUT).await,
        403,
        "NOT_CHANNEL_MEMBER",
    )
    .await;
    assert_error(
        react(
            &app,
            &outsider,
            hidden["id"].as_str().unwrap(),
            "👍",
            Method::PUT,
        )
        .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    for bad in ["abc", "👍👍", ":Bad:", "%F0%9F"] {
        let answer = assert_error(
            react(&app, &asha, &id, bad, Method::PUT).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(answer["error"]["details"][0]["field"], "emoji", "{bad}");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_error(
        react(&app, &asha, &unknown, "👍", Method::PUT).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    assert_error(
        react(&app, &asha, "nope", "👍", Method::PUT).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    app.delete_as(&owner, &format!("/api/messages/{id}")).await;
    assert_error(
        react(&app, &asha, &id, "👍", Method::PUT).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_message_takes_20_different_emoji_and_any_number_of_people() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner").await;
    let general = app.create_channel(&owner, "general", false).await;
    let m = app.send_message(&owner, &general, "vote").await;
    let id = m["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        reacted(&app, &owner, &id, &format!(":e{i}:"), Method::PUT).await;
    }
    let refused = assert_error(
        react(&app, &owner, &id, ":e20:", Method::PUT).await,
        409,
        "LIMIT_REACHED",
    )
    .await;
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("20"),
        "{refused}"
    );

    let mut people = Vec::new();
    for i in 0..12 {
        let u = app.signup(&format!("voter{i}")).await;
        app.post_as(&u, &format!("/api/channels/{general}/join"))
            .await;
        // An emoji already there is no new one.
        reacted(&app, &u, &id, ":e3:", Method::PUT).await;
        people.push(u);
    }
    assert_error(
        react(&app, &people[0], &id, "🎉", Method::PUT).await,
        409,
        "LIMIT_REACHED",
    )
    .await;
    let list = on_page(&app, &people[11], &general, &id).await;
    assert_eq!(list.as_array().unwrap().len(), 20);
    let e3 = &list[3];
    assert_eq!(e3["emoji"], ":e3:");
    assert_eq!(e3["count"], 13);
    let first: Vec<&str> = [&owner, &people[0], &people[1], &people[2], &people[3]]
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    assert_eq!(e3["userIds"], json!(first));
    assert_eq!(e3["me"], true);
    // Room again once one goes.
    reacted(&app, &owner, &id, ":e19:", Method::DELETE).await;
    reacted(&app, &people[0], &id, "🎉", Method::PUT).await;
}
