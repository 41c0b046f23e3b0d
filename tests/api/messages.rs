//! Messages (API.md §6, §12): sends, nonces, history pages, edits, deletes, ordering.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chai_tapri::services::events::Event;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

fn contents(body: &Value) -> Vec<String> {
    body["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn setup(app: &TestApp) -> (TestUser, String) {
    let u = app.signup("talker").await;
    let id = app.create_channel(&u, "talk", false).await;
    (u, id)
}

#[tokio::test]
async fn a_send_answers_201_with_the_message_stored_verbatim() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let mut events = app.state.events.subscribe();
    let html = "  <b>bold</b> & <script>alert(1)</script>  ";
    let m = app.send_message(&u, &channel, html).await;
    assert_eq!(m["content"], html.trim());
    assert_eq!(m["channelId"], channel.as_str());
    assert_eq!(
        m["sender"],
        json!({"id": u.id, "username": "talker", "displayName": "talker", "avatarUrl": null})
    );
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(m["parentId"], Value::Null);
    assert_eq!(m["editedAt"], Value::Null);
    assert!(m["createdAt"].as_str().unwrap().ends_with('Z'));
    match &*events.recv().await.unwrap() {
        Event::NewMessage(view) => assert_eq!(serde_json::to_value(view).unwrap(), m),
        other => panic!("unexpected {other:?}"),
    }
    let (_, history) = json(
        app.get_as(&u.token, &format!("/api/channels/{channel}/messages"))
            .await,
    )
    .await;
    assert_eq!(history["data"]["messages"][0], m);
}

#[tokio::test]
async fn content_is_1_to_4000_characters_after_trimming() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let path = format!("/api/channels/{channel}/messages");
    let send = |content: Value| {
        let (app, token, path) = (&app, u.token.clone(), path.clone());
        async move {
            app.send_as(Method::POST, &token, &path, &json!({"content": content}))
                .await
        }
    };
    assert_eq!(
        send(json!("ü".repeat(4000))).await.status(),
        201,
        "4,000 two-byte characters fit"
    );
    assert_eq!(
        send(json!(format!("  {}  ", "x".repeat(4000))))
            .await
            .status(),
        201
    );
    for bad in [
        json!("x".repeat(4001)),
        json!("   \n "),
        json!(""),
        json!(12),
        json!(null),
    ] {
        assert_error(send(bad).await, 400, "VALIDATION_ERROR").await;
    }
    let r = app
        .send_as(
            Method::POST,
            &u.token,
            &path,
            &json!({"content": "hi", "nonce": "n".repeat(101)}),
        )
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = app
        .send_as(
            Method::POST,
            &u.token,
            &path,
            &json!({"content": "hi", "attachments": ["no-such-key"]}),
        )
        .await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"][0]["field"], "attachments");
}

#[tokio::test]
async fn a_parent_must_be_a_message_of_the_same_channel() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let other = app.create_channel(&u, "elsewhere", false).await;
    let parent = app.send_message(&u, &channel, "question").await;
    let foreign = app.send_message(&u, &other, "unrelated").await;
    let path = format!("/api/channels/{channel}/messages");
    let (status, reply) = json(
        app.send_as(
            Method::POST,
            &u.token,
            &path,
            &json!({"content": "answer", "parentId": parent["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(reply["data"]["message"]["parentId"], parent["id"]);
    for bad in [
        foreign["id"].clone(),
        json!(uuid::Uuid::now_v7().to_string()),
        json!("nope"),
    ] {
        let r = app
            .send_as(
                Method::POST,
                &u.token,
                &path,
                &json!({"content": "answer", "parentId": bad}),
            )
            .await;
        let body = assert_error(r, 400, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["details"][0]["field"], "parentId");
    }
}

#[tokio::test]
async fn the_same_nonce_returns_the_first_message_even_under_concurrent_retries() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let mut events = app.state.events.subscribe();
    let path = format!("/api/channels/{channel}/messages");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (app.client.clone(), app.url(&path), u.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"content": "once", "nonce": "n-1"}))
                .send()
                .await
                .unwrap();
            json(r).await
        }));
    }
    let mut statuses = Vec::new();
    let mut ids = HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        statuses.push(status);
        ids.insert(body["data"]["message"]["id"].as_str().unwrap().to_owned());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201]);
    assert_eq!(ids.len(), 1, "every retry got the same message");
    let (_, history) = json(app.get_as(&u.token, &path).await).await;
    assert_eq!(contents(&history), ["once"]);
    assert!(matches!(
        &*events.recv().await.unwrap(),
        Event::NewMessage(_)
    ));
    assert!(events.try_recv().is_err(), "one broadcast, not eight");
    // The same nonce from another user, or in another channel, is another message.
    let v = app.signup("visitor").await;
    app.post_as(&v, &format!("/api/channels/{channel}/join"))
        .await;
    let r = app
        .send_as(
            Method::POST,
            &v.token,
            &path,
            &json!({"content": "mine", "nonce": "n-1"}),
        )
        .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn history_pages_cover_the_boundaries_in_both_directions() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let path = format!("/api/channels/{channel}/messages");
    let page = |query: String| {
        let (app, token, path) = (&app, u.token.clone(), path.clone());
        async move {
            let (status, body) = json(app.get_as(&token, &format!("{path}{query}")).await).await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let empty = page(String::new()).await;
    assert_eq!(contents(&empty), Vec::<String>::new());
    assert_eq!(
        empty["data"]["pagination"],
        json!({"hasMore": false, "nextCursor": null})
    );
    let mut ids = Vec::new();
    for i in 1..=6 {
        ids.push(
            app.send_message(&u, &channel, &format!("m{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Exactly `limit`, and `limit + 1`.
    let all = page("?limit=6".into()).await;
    assert_eq!(contents(&all), ["m1", "m2", "m3", "m4", "m5", "m6"]);
    assert_eq!(all["data"]["pagination"]["hasMore"], false);
    let newest = page("?limit=5".into()).await;
    assert_eq!(contents(&newest), ["m2", "m3", "m4", "m5", "m6"]);
    assert_eq!(newest["data"]["pagination"]["hasMore"], true);
    // Continue backwards with the cursor.
    let cursor = newest["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let older = page(format!("?limit=5&cursor={cursor}")).await;
    assert_eq!(contents(&older), ["m1"]);
    assert_eq!(
        older["data"]["pagination"],
        json!({"hasMore": false, "nextCursor": null})
    );
    // before / after an anchor.
    let before = page(format!("?limit=2&before={}", ids[3])).await;
    assert_eq!(contents(&before), ["m2", "m3"]);
    assert_eq!(before["data"]["pagination"]["hasMore"], true);
    let before_first = page(format!("?before={}", ids[0])).await;
    assert_eq!(contents(&before_first), Vec::<String>::new());
    let after = page(format!("?limit=2&after={}", ids[1])).await;
    assert_eq!(
        contents(&after),
        ["m3", "m4"],
        "the oldest ones after the anchor, oldest first"
    );
    let cursor = after["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let newer = page(format!("?limit=2&cursor={cursor}&before={}", ids[0])).await;
    assert_eq!(
        contents(&newer),
        ["m5", "m6"],
        "the cursor wins over before"
    );
    assert_eq!(newer["data"]["pagination"]["hasMore"], false);
    // A deleted anchor still works: the page is defined by order.
    app.delete_as(&u, &format!("/api/messages/{}", ids[2]))
        .await;
    let around = page(format!("?after={}", ids[2])).await;
    assert_eq!(contents(&around), ["m4", "m5", "m6"]);
    // Bad input.
    for bad in [
        "?before=nope".to_owned(),
        format!("?before={}&after={}", ids[0], ids[1]),
        "?cursor=abc".to_owned(),
        "?limit=0".to_owned(),
    ] {
        assert_error(
            app.get_as(&u.token, &format!("{path}{bad}")).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

#[tokio::test]
async fn a_limit_above_100_is_capped() {
    let app = TestApp::spawn().await;
    let (u, channel) = setup(&app).await;
    let mut tasks = Vec::new();
    let app = Arc::new(app);
    for i in 0..105 {
        let (app, u, channel) = (app.clone(), u.clone(), channel.clone());
        tasks.push(tokio::spawn(async move {
            app.send_message(&u, &channel, &format!("bulk {i}")).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, body) = json(
        app.get_as(
            &u.token,
            &format!("/api/channels/{channel}/messages?limit=1000"),
        )
        .await,
    )
    .await;
    assert_eq!(body["data"]["messages"].as_array().unwrap().len(), 100);
    assert_eq!(body["data"]["pagination"]["hasMore"], true);
    let (_, body) = json(
        app.get_as(&u.token, &format!("/api/channels/{channel}/messages"))
            .await,
    )
    .await;
    assert_eq!(
        body["data"]["messages"].as_array().unwrap().len(),
        50,
        "default 50"
    );
}

#[tokio::test]
async fn only_the_sender_edits_and_the_sender_or_a_manager_deletes() {
    let app = TestApp::spawn().await;
    let owner = app.signup("chief").await;
    let author = app.signup("author").await;
    let other = app.signup("bystander").await;
    let channel = app.create_channel(&owner, "editing", false).await;
    for u in [&author, &other] {
        app.post_as(u, &format!("/api/channels/{channel}/join"))
            .await;
    }
    let m = app.send_message(&author, &channel, "frist").await;
    let path = format!("/api/messages/{}", m["id"].as_str().unwrap());
    let mut events = app.state.events.subscribe();
    let (status, body) = json(
        app.send_as(
            Method::PATCH,
            &author.token,
            &path,
            &json!({"content": " first "}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["message"]["content"], "first");
    assert!(body["data"]["message"]["editedAt"].is_string());
    assert!(
        matches!(&*events.recv().await.unwrap(), Event::MessageEdited(v) if v.content == "first")
    );
    for who in [&owner, &other] {
        let r = app
            .send_as(
                Method::PATCH,
                &who.token,
                &path,
                &json!({"content": "hijack"}),
            )
            .await;
        assert_error(r, 403, "NOT_MESSAGE_OWNER").await;
    }
    let r = app
        .send_as(
            Method::PATCH,
            &author.token,
            &path,
            &json!({"content": " "}),
        )
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_error(app.delete_as(&other, &path).await, 403, "NOT_MESSAGE_OWNER").await;
    let (status, body) = json(app.delete_as(&owner, &path).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"messageId": m["id"], "channelId": channel})
    );
    assert!(matches!(
        &*events.recv().await.unwrap(),
        Event::MessageDeleted { .. }
    ));
    assert_error(
        app.delete_as(&author, &path).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    let r = app
        .send_as(
            Method::PATCH,
            &author.token,
            &path,
            &json!({"content": "again"}),
        )
        .await;
    assert_error(r, 404, "MESSAGE_NOT_FOUND").await;
    assert_error(
        app.delete_as(&author, "/api/messages/not-an-id").await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    let own = app.send_message(&author, &channel, "mine to delete").await;
    let r = app
        .delete_as(
            &author,
            &format!("/api/messages/{}", own["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_reader_following_after_never_misses_a_message_committed_late() {
    let app = Arc::new(TestApp::spawn().await);
    let (u, channel) = setup(&app).await;
    let senders = 8;
    let per_sender = 25;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (app, u, channel) = (app.clone(), u.clone(), channel.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_sender {
                app.send_message(&u, &channel, &format!("s{s}-{i}")).await;
            }
        }));
    }
    // A client that only ever asks for what came after the last id it saw.
    let mut seen: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    let path = format!("/api/channels/{channel}/messages?limit=100");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the senders never finished"
        );
        let done = tasks.iter().all(tokio::task::JoinHandle::is_finished);
        let query = last
            .as_ref()
            .map(|id| format!("{path}&after={id}"))
            .unwrap_or_else(|| format!("{path}&after=00000000-0000-0000-0000-000000000000"));
        let (_, body) = json(app.get_as(&u.token, &query).await).await;
        for m in body["data"]["messages"].as_array().unwrap() {
            seen.push(m["content"].as_str().unwrap().to_owned());
            last = Some(m["id"].as_str().unwrap().to_owned());
        }
        if done && body["data"]["messages"].as_array().unwrap().is_empty() {
            break;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        seen.len(),
        senders * per_sender,
        "every message seen exactly once"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

#[tokio::test]
async fn sends_are_rate_limited_per_user() {
    let app = TestApp::spawn_with(|v| {
        v.insert("RATE_LIMIT_ENABLED".into(), "true".into());
        v.insert("RATE_LIMIT_MESSAGES".into(), "3/1m".into());
    })
    .await;
    let (u, channel) = setup(&app).await;
    for i in 0..3 {
        app.send_message(&u, &channel, &format!("ok {i}")).await;
    }
    let r = app
        .send_as(
            Method::POST,
            &u.token,
            &format!("/api/channels/{channel}/messages"),
            &json!({"content": "one too many"}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "RATE_LIMITED").await;
}

/// The newest page, as `user` reads it: status and body.
async fn newest(app: &TestApp, user: &TestUser, channel: &str) -> (u16, Value) {
    json(
        app.get_as(&user.token, &format!("/api/channels/{channel}/messages"))
            .await,
    )
    .await
}

/// Every kind of change made through `write` shows on the next newest page `read` serves
/// (one node, or two on one database).
async fn every_change_shows_on_the_newest_page(write: &TestApp, read: &TestApp, name: &str) {
    let owner = write.signup(&format!("{name}w")).await;
    let reader = write.signup(&format!("{name}r")).await;
    let channel = write.create_channel(&owner, name, false).await;
    let first = write.send_message(&owner, &channel, "one").await;
    let second = write.send_message(&owner, &channel, "two").await;
    let (status, before) = newest(read, &reader, &channel).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(contents(&before), ["one", "two"]);
    // The same page twice: the same body.
    assert_eq!(newest(read, &reader, &channel).await.1, before);

    write.send_message(&owner, &channel, "three").await;
    assert_eq!(
        contents(&newest(read, &reader, &channel).await.1),
        ["one", "two", "three"]
    );

    let edit = write
        .send_as(
            Method::PATCH,
            &owner.token,
            &format!("/api/messages/{}", first["id"].as_str().unwrap()),
            &json!({"content": "uno"}),
        )
        .await;
    assert_eq!(edit.status(), 200);
    let page = newest(read, &reader, &channel).await.1;
    assert_eq!(contents(&page), ["uno", "two", "three"]);
    assert!(
        page["data"]["messages"][0]["editedAt"].is_string(),
        "{page}"
    );

    let gone = write
        .delete_as(
            &owner,
            &format!("/api/messages/{}", second["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(gone.status(), 200);
    assert_eq!(
        contents(&newest(read, &reader, &channel).await.1),
        ["uno", "three"]
    );

    // A sender's new name and avatar show on the page at once.
    let renamed = write
        .send_as(
            Method::PATCH,
            &owner.token,
            "/api/users/me",
            &json!({"displayName": "The Keeper", "avatarUrl": "https://example.com/k.png"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let page = newest(read, &reader, &channel).await.1;
    for m in page["data"]["messages"].as_array().unwrap() {
        assert_eq!(m["sender"]["displayName"], "The Keeper", "{page}");
        assert_eq!(m["sender"]["avatarUrl"], "https://example.com/k.png");
    }

    // A smaller limit is its own page.
    let (status, one) = json(
        read.get_as(
            &reader.token,
            &format!("/api/channels/{channel}/messages?limit=1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(contents(&one), ["three"]);
    assert_eq!(one["data"]["pagination"]["hasMore"], true);

    let deleted = write
        .delete_as(&owner, &format!("/api/channels/{channel}"))
        .await;
    assert_eq!(deleted.status(), 200);
    assert_error(
        read.get_as(&reader.token, &format!("/api/channels/{channel}/messages"))
            .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_newest_page_read_again_shows_every_change_made_since() {
    let app = TestApp::spawn().await;
    every_change_shows_on_the_newest_page(&app, &app, "kept").await;
}

#[tokio::test]
async fn a_kept_page_of_a_private_channel_is_not_served_to_whoever_left_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("hushowner").await;
    let member = app.signup("hushmember").await;
    let outsider = app.signup("hushoutsider").await;
    let channel = app.create_channel(&owner, "hush", true).await;
    let added = app
        .send_as(
            Method::POST,
            &owner.token,
            &format!("/api/channels/{channel}/members"),
            &json!({"userId": member.id}),
        )
        .await;
    assert_eq!(added.status(), 201);
    app.send_message(&owner, &channel, "secret").await;
    for _ in 0..2 {
        let (status, page) = newest(&app, &member, &channel).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(contents(&page), ["secret"]);
        assert_error(
            app.get_as(
                &outsider.token,
                &format!("/api/channels/{channel}/messages"),
            )
            .await,
            403,
            "PRIVATE_CHANNEL",
        )
        .await;
    }
    let removed = app
        .delete_as(
            &owner,
            &format!("/api/channels/{channel}/members/{}", member.id),
        )
        .await;
    assert_eq!(removed.status(), 200);
    assert_error(
        app.get_as(&member.token, &format!("/api/channels/{channel}/messages"))
            .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by the second pass (scripts/test.sh)"]
async fn a_change_made_through_one_node_shows_on_the_newest_page_of_another_at_once() {
    crate::helpers::require_database_url();
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in(a.dir.clone(), a.vars.clone()).await;
    every_change_shows_on_the_newest_page(&a, &b, "faraway").await;
}
