//! Threads (docs/api.md, "Threads"): replies count on their root, a thread pages oldest
//! first, history collapses to roots, users follow threads, a deleted root stays as a
//! tombstone — over REST and live on the socket.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

async fn reply(app: &TestApp, user: &TestUser, channel: &str, parent: &Value, text: &str) -> Value {
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &user.token,
            &format!("/api/channels/{channel}/messages"),
            &json!({ "content": text, "parentId": parent["id"] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["message"].clone()
}

async fn get_ok(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let (status, body) = json(app.get_as(&user.token, path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"].clone()
}

fn contents(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn follow(app: &TestApp, user: &TestUser, message: &Value, method: Method) -> Value {
    let (status, body) = json(
        app.send_as(
            method,
            &user.token,
            &format!("/api/messages/{}/follow", message["id"].as_str().unwrap()),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// The contents of the roots of `user`'s followed threads, newest activity first.
async fn followed(app: &TestApp, user: &TestUser) -> Vec<String> {
    let data = get_ok(app, user, "/api/threads").await;
    data["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["root"]["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn replies_count_on_their_root_page_oldest_first_and_are_heard_live() {
    let app = TestApp::spawn().await;
    let (ravi, meera, arjun) = (
        app.signup("ravi").await,
        app.signup("meera").await,
        app.signup("arjun").await,
    );
    let general = app.create_channel(&ravi, "general", false).await;
    for user in [&meera, &arjun] {
        app.post_as(user, &format!("/api/channels/{general}/join"))
            .await;
    }
    let mut socket = app.socket(&arjun).await;
    assert_eq!(
        socket
            .call("join-channel", &json!({ "channelId": general }))
            .await["success"],
        true
    );
    let root = app.send_message(&ravi, &general, "lunch at one?").await;
    assert_eq!(
        (
            root["replyCount"].clone(),
            root["lastReplyAt"].clone(),
            root["participants"].clone()
        ),
        (json!(0), Value::Null, json!([]))
    );
    // The newest page is kept before any reply: the counts must show on it all the same.
    let page = get_ok(&app, &ravi, &format!("/api/channels/{general}/messages")).await;
    assert_eq!(page["messages"][0]["replyCount"], 0);

    let first = reply(&app, &meera, &general, &root, "yes").await;
    assert_eq!(first["parentId"], root["id"]);
    // Replying to a reply joins the same thread.
    let second = reply(&app, &arjun, &general, &first, "make it half past").await;
    assert_eq!(second["parentId"], root["id"], "stored under the root");
    let third = reply(&app, &meera, &general, &root, "fine").await;

    // Live: each reply as new-message with its parentId, then the root's counts.
    let heard = socket
        .events_before("thread-updated", |v| v["replyCount"] == 3, WAIT)
        .await;
    let replies: Vec<&Value> = heard
        .iter()
        .filter(|(name, v)| name == "new-message" && v["id"] != root["id"])
        .map(|(_, v)| v)
        .collect();
    assert_eq!(replies.len(), 3, "{heard:?}");
    assert!(replies.iter().all(|m| m["parentId"] == root["id"]));
    let counts: Vec<&Value> = heard
        .iter()
        .filter(|(name, _)| name == "thread-updated")
        .map(|(_, v)| &v["replyCount"])
        .collect();
    assert_eq!(
        counts,
        [&json!(1), &json!(2)],
        "one update per reply, in order"
    );

    let page = get_ok(&app, &ravi, &format!("/api/channels/{general}/messages")).await;
    let shown = &page["messages"][0];
    assert_eq!(shown["id"], root["id"]);
    assert_eq!(shown["replyCount"], 3);
    assert_eq!(shown["participants"], json!([meera.id, arjun.id]));
    assert_eq!(shown["lastReplyAt"], third["createdAt"]);
    assert_eq!(
        page["messages"][1]["replyCount"], 0,
        "a reply counts nothing"
    );

    // The thread, oldest first, two at a time, reached from the root or any reply.
    let path = format!(
        "/api/messages/{}/thread?limit=2",
        second["id"].as_str().unwrap()
    );
    let thread = get_ok(&app, &arjun, &path).await;
    assert_eq!(thread["root"]["id"], root["id"]);
    assert_eq!(thread["root"]["replyCount"], 3);
    assert_eq!(contents(&thread["messages"]), ["yes", "make it half past"]);
    assert_eq!(thread["pagination"]["hasMore"], true);
    let cursor = thread["pagination"]["nextCursor"].as_str().unwrap();
    let rest = get_ok(&app, &arjun, &format!("{path}&cursor={cursor}")).await;
    assert_eq!(contents(&rest["messages"]), ["fine"]);
    assert_eq!(
        (
            rest["pagination"]["hasMore"].clone(),
            rest["pagination"]["nextCursor"].clone()
        ),
        (json!(false), Value::Null)
    );

    // Deleting a reply takes it out of the counts, for readers and for the room.
    let (status, _) = json(
        app.delete_as(
            &meera,
            &format!("/api/messages/{}", third["id"].as_str().unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let update = socket
        .events_before("thread-updated", |v| v["replyCount"] == 2, WAIT)
        .await;
    assert!(
        update
            .iter()
            .any(|(n, v)| n == "message-deleted" && v["messageId"] == third["id"]),
        "{update:?}"
    );
    let page = get_ok(&app, &ravi, &format!("/api/channels/{general}/messages")).await;
    let shown = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == root["id"])
        .unwrap()
        .clone();
    assert_eq!(shown["replyCount"], 2);
    assert_eq!(shown["lastReplyAt"], second["createdAt"]);
}

#[tokio::test]
async fn collapsed_history_lists_roots_only_and_its_cursor_stays_collapsed() {
    let app = TestApp::spawn().await;
    let ravi = app.signup("ravi").await;
    let general = app.create_channel(&ravi, "general", false).await;
    let mut roots = Vec::new();
    for n in 1..=3 {
        let root = app
            .send_message(&ravi, &general, &format!("root {n}"))
            .await;
        reply(&app, &ravi, &general, &root, &format!("reply to {n}")).await;
        roots.push(root);
    }
    let base = format!("/api/channels/{general}/messages");
    let expanded = get_ok(&app, &ravi, &base).await;
    assert_eq!(expanded["messages"].as_array().unwrap().len(), 6);

    let page = get_ok(&app, &ravi, &format!("{base}?threads=collapsed&limit=2")).await;
    assert_eq!(contents(&page["messages"]), ["root 2", "root 3"]);
    assert!(
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["replyCount"] == 1)
    );
    let cursor = page["pagination"]["nextCursor"].as_str().unwrap();
    // The cursor continues the collapsed listing, whatever `threads` says beside it.
    let older = get_ok(&app, &ravi, &format!("{base}?limit=2&cursor={cursor}")).await;
    assert_eq!(contents(&older["messages"]), ["root 1"]);
    assert_eq!(older["pagination"]["hasMore"], false);

    assert_error(
        app.get_as(&ravi.token, &format!("{base}?threads=sideways"))
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn authors_and_repliers_follow_and_an_unfollow_is_remembered() {
    let app = TestApp::spawn().await;
    let (ravi, meera, arjun) = (
        app.signup("ravi").await,
        app.signup("meera").await,
        app.signup("arjun").await,
    );
    let general = app.create_channel(&ravi, "general", false).await;
    let secret = app.create_channel(&ravi, "secret", true).await;
    for user in [&meera, &arjun] {
        app.post_as(user, &format!("/api/channels/{general}/join"))
            .await;
    }
    let plans = app.send_message(&ravi, &general, "plans").await;
    let quiet = app.send_message(&ravi, &general, "quiet").await;
    assert!(followed(&app, &ravi).await.is_empty(), "nobody replied yet");

    let answer = reply(&app, &meera, &general, &plans, "tomorrow").await;
    assert_eq!(followed(&app, &ravi).await, ["plans"], "the root's author");
    assert_eq!(followed(&app, &meera).await, ["plans"], "the replier");
    assert!(followed(&app, &arjun).await.is_empty());

    // Following by hand, through a reply's id: the answer names the root.
    let answer_follow = follow(&app, &arjun, &answer, Method::PUT).await;
    assert_eq!(
        answer_follow,
        json!({ "messageId": plans["id"], "following": true })
    );
    assert_eq!(
        follow(&app, &arjun, &quiet, Method::PUT).await["following"],
        true
    );
    // Newest activity first: a thread with no reply counts from its root, sent before
    // `plans` had its reply.
    assert_eq!(followed(&app, &arjun).await, ["plans", "quiet"]);
    let page = get_ok(&app, &arjun, "/api/threads?limit=1").await;
    assert_eq!(page["threads"][0]["replyCount"], 1);
    assert_eq!(page["threads"][0]["channelId"], json!(general));
    assert_eq!(page["threads"][0]["lastReplyAt"], answer["createdAt"]);
    let cursor = page["pagination"]["nextCursor"].as_str().unwrap();
    let next = get_ok(
        &app,
        &arjun,
        &format!("/api/threads?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(next["threads"][0]["root"]["content"], "quiet");
    assert_eq!(next["pagination"]["hasMore"], false);

    // An unfollow sticks when others reply; replying oneself follows again.
    assert_eq!(
        follow(&app, &ravi, &plans, Method::DELETE).await["following"],
        false
    );
    reply(&app, &meera, &general, &plans, "or friday").await;
    assert!(followed(&app, &ravi).await.is_empty());
    reply(&app, &ravi, &general, &plans, "friday it is").await;
    assert_eq!(followed(&app, &ravi).await, ["plans"]);

    // A private channel's thread: followed while a member, gone once they leave, and
    // following it then is refused without showing it.
    app.send_as(
        Method::POST,
        &ravi.token,
        &format!("/api/channels/{secret}/members"),
        &json!({ "userId": meera.id }),
    )
    .await;
    let hidden = app.send_message(&ravi, &secret, "the surprise").await;
    reply(&app, &meera, &secret, &hidden, "shh").await;
    assert_eq!(followed(&app, &meera).await[0], "the surprise");
    let (status, _) = json(
        app.post_as(&meera, &format!("/api/channels/{secret}/leave"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !followed(&app, &meera)
            .await
            .contains(&"the surprise".to_owned())
    );
    let id = hidden["id"].as_str().unwrap();
    for method in [Method::PUT, Method::DELETE] {
        assert_error(
            app.send_as(
                method,
                &meera.token,
                &format!("/api/messages/{id}/follow"),
                &json!({}),
            )
            .await,
            403,
            "PRIVATE_CHANNEL",
        )
        .await;
    }
    assert_error(
        app.get_as(&meera.token, &format!("/api/messages/{id}/thread"))
            .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
}

#[tokio::test]
async fn a_root_deleted_with_replies_stays_as_a_tombstone() {
    let app = TestApp::spawn().await;
    let (ravi, meera) = (app.signup("ravi").await, app.signup("meera").await);
    let general = app.create_channel(&ravi, "general", false).await;
    app.post_as(&meera, &format!("/api/channels/{general}/join"))
        .await;
    let root = app.send_message(&ravi, &general, "an idea").await;
    let id = root["id"].as_str().unwrap().to_owned();
    let answer = reply(&app, &meera, &general, &root, "a good one").await;
    for path in [
        format!("/api/messages/{id}/pin"),
        format!("/api/messages/{id}/reactions/%3Atada%3A"),
    ] {
        let (status, body) = json(
            app.send_as(Method::PUT, &ravi.token, &path, &json!({}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    let (status, body) = json(app.delete_as(&ravi, &format!("/api/messages/{id}")).await).await;
    assert_eq!(status, 200, "{body}");
    let thread = get_ok(&app, &meera, &format!("/api/messages/{id}/thread")).await;
    let tomb = &thread["root"];
    assert_eq!(tomb["content"], "");
    assert_eq!(tomb["attachments"], json!([]));
    assert_eq!(tomb["reactions"], json!([]));
    assert_eq!(
        (tomb["pinnedAt"].clone(), tomb["pinnedBy"].clone()),
        (Value::Null, Value::Null)
    );
    assert!(tomb["deletedAt"].is_string(), "{tomb}");
    assert_eq!(tomb["replyCount"], 1);
    assert_eq!(contents(&thread["messages"]), ["a good one"]);
    // History shows the tombstone in its place; pins do not.
    let page = get_ok(&app, &meera, &format!("/api/channels/{general}/messages")).await;
    assert_eq!(page["messages"][0]["id"], root["id"]);
    assert!(page["messages"][0]["deletedAt"].is_string());
    let pins = get_ok(&app, &meera, &format!("/api/channels/{general}/pins")).await;
    assert_eq!(pins["messages"], json!([]));

    // A tombstone takes nothing more.
    let refused = [
        (
            Method::PATCH,
            format!("/api/messages/{id}"),
            json!({ "content": "back" }),
        ),
        (
            Method::PUT,
            format!("/api/messages/{id}/reactions/%3Atada%3A"),
            json!({}),
        ),
        (Method::PUT, format!("/api/messages/{id}/pin"), json!({})),
        (Method::DELETE, format!("/api/messages/{id}"), json!({})),
        (
            Method::POST,
            format!("/api/channels/{general}/messages"),
            json!({ "content": "late", "parentId": id }),
        ),
        (
            Method::POST,
            format!("/api/channels/{general}/messages"),
            json!({ "content": "late", "parentId": answer["id"] }),
        ),
    ];
    for (method, path, body) in refused {
        assert_error(
            app.send_as(method, &ravi.token, &path, &body).await,
            404,
            "MESSAGE_NOT_FOUND",
        )
        .await;
    }

    // A root nobody replied to goes entirely.
    let lone = app.send_message(&ravi, &general, "never mind").await;
    let lone_id = lone["id"].as_str().unwrap();
    let (status, _) = json(
        app.delete_as(&ravi, &format!("/api/messages/{lone_id}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_error(
        app.get_as(&ravi.token, &format!("/api/messages/{lone_id}/thread"))
            .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_delete_event_says_whether_a_tombstone_stayed() {
    let app = TestApp::spawn().await;
    let ravi = app.signup("ravi").await;
    let general = app.create_channel(&ravi, "general", false).await;
    let mut socket = app.socket(&ravi).await;
    socket
        .call("join-channel", &json!({ "channelId": general }))
        .await;
    let root = app.send_message(&ravi, &general, "root").await;
    reply(&app, &ravi, &general, &root, "reply").await;
    let lone = app.send_message(&ravi, &general, "lone").await;
    for message in [&root, &lone] {
        let ack = socket
            .call("delete-message", &json!({ "messageId": message["id"] }))
            .await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        deleted.push(
            socket
                .event("message-deleted", WAIT)
                .await
                .expect("message-deleted"),
        );
    }
    assert_eq!(
        deleted,
        [
            json!({ "messageId": root["id"], "channelId": general, "tombstone": true }),
            json!({ "messageId": lone["id"], "channelId": general, "tombstone": false }),
        ]
    );
}

#[tokio::test]
async fn bad_thread_requests_get_clear_errors() {
    let app = TestApp::spawn().await;
    let ravi = app.signup("ravi").await;
    let outsider = app.signup("outsider").await;
    let general = app.create_channel(&ravi, "general", false).await;
    let other = app.create_channel(&ravi, "other", false).await;
    let root = app.send_message(&ravi, &general, "root").await;
    let id = root["id"].as_str().unwrap();
    assert_error(
        app.get_as(&ravi.token, "/api/messages/not-an-id/thread")
            .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(
            &ravi.token,
            &format!("/api/messages/{}/thread", uuid::Uuid::now_v7()),
        )
        .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    for query in ["cursor=zz", "limit=0", "cursor=6a3a"] {
        assert_error(
            app.get_as(&ravi.token, &format!("/api/messages/{id}/thread?{query}"))
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_error(
            app.get_as(&ravi.token, &format!("/api/threads?{query}"))
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
    // A reply must name a message of the same channel.
    let body = assert_error(
        app.send_as(
            Method::POST,
            &ravi.token,
            &format!("/api/channels/{other}/messages"),
            &json!({ "content": "elsewhere", "parentId": id }),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "parentId", "{body}");
    // A public channel's thread is read by anyone signed in, as its history is; following
    // it too.
    let thread = get_ok(&app, &outsider, &format!("/api/messages/{id}/thread")).await;
    assert_eq!(thread["messages"], json!([]));
    assert_eq!(
        follow(&app, &outsider, &root, Method::PUT).await["following"],
        true
    );
}
