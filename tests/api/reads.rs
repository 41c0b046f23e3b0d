//! Read markers and unread counts (docs/api.md, "Read markers and unread counts"): markers
//! move forward only, every socket of the reader hears the move, counts leave out one's
//! own messages, replies and deleted messages, stop at 1,000, and show wherever a member
//! lists their conversations.

use std::time::Duration;

use chai_tapri::models::message::{MessageContent, NewMessage, SenderView};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

/// `data` of a successful GET.
async fn get_ok(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let (status, body) = json(app.get_as(&user.token, path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"].clone()
}

/// Marks `channel` read as `user` (up to `message`, or all); the answer's `data`.
async fn mark(app: &TestApp, user: &TestUser, channel: &str, message: Option<&Value>) -> Value {
    let body = message.map_or(json!({}), |m| json!({ "messageId": m["id"] }));
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &user.token,
            &format!("/api/channels/{channel}/read"),
            &body,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// `user`'s entry for `channel` in their joined channels.
async fn joined_entry(app: &TestApp, user: &TestUser, channel: &str) -> Value {
    let data = get_ok(app, user, "/api/channels?joined=true&limit=100").await;
    data["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == channel)
        .cloned()
        .unwrap_or_else(|| panic!("{channel} not among {data}"))
}

/// `(unreadCount, mentionCount)` of an entry.
fn counts(entry: &Value) -> (u64, u64) {
    (
        entry["unreadCount"].as_u64().unwrap(),
        entry["mentionCount"].as_u64().unwrap(),
    )
}

async fn reply(app: &TestApp, user: &TestUser, channel: &str, root: &Value, text: &str) -> Value {
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &user.token,
            &format!("/api/channels/{channel}/messages"),
            &json!({ "content": text, "parentId": root["id"] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["message"].clone()
}

#[tokio::test]
async fn a_member_counts_what_others_sent_after_their_marker_and_marks_it_read() {
    let app = TestApp::spawn().await;
    let (asha, ravi) = (app.signup("asha").await, app.signup("ravi").await);
    let channel = app.create_channel(&asha, "general", false).await;
    let before = app.send_message(&asha, &channel, "before ravi came").await;

    // A newcomer starts with nothing unread, at the newest message.
    app.join(&ravi, &channel).await;
    let entry = joined_entry(&app, &ravi, &channel).await;
    assert_eq!(counts(&entry), (0, 0));
    assert_eq!(entry["lastReadId"], before["id"]);

    let one = app.send_message(&asha, &channel, "one").await;
    app.send_message(&asha, &channel, "two @ravi").await;
    let root = app.send_message(&asha, &channel, "three").await;
    // A reply is counted in its thread, not in the channel; one's own messages never.
    reply(&app, &asha, &channel, &root, "in the thread").await;
    assert_eq!(counts(&joined_entry(&app, &ravi, &channel).await), (3, 1));
    assert_eq!(counts(&joined_entry(&app, &asha, &channel).await), (0, 0));
    // The channel as a member sees it carries them; as a non-member, not.
    let got = get_ok(&app, &ravi, &format!("/api/channels/{channel}")).await;
    assert_eq!(counts(&got["channel"]), (3, 1));
    let outsider = app.signup("outsider").await;
    let got = get_ok(&app, &outsider, &format!("/api/channels/{channel}")).await;
    assert!(got["channel"].get("unreadCount").is_none(), "{got}");
    let directory = get_ok(&app, &ravi, "/api/channels").await;
    assert!(
        directory["channels"][0].get("unreadCount").is_none(),
        "{directory}"
    );

    // Up to `one`: two left, the mention among them.
    let read = mark(&app, &ravi, &channel, Some(&one)).await;
    assert_eq!(read["channelId"], channel.as_str());
    assert_eq!(read["isDm"], false);
    assert_eq!(read["lastReadId"], one["id"]);
    assert_eq!(counts(&read), (2, 1));
    // Never back: an older message answers the marker as it is.
    let read = mark(&app, &ravi, &channel, Some(&before)).await;
    assert_eq!(read["lastReadId"], one["id"]);
    assert_eq!(counts(&read), (2, 1));
    // A deleted message leaves the count.
    let gone = app.send_message(&asha, &channel, "soon gone").await;
    assert_eq!(counts(&joined_entry(&app, &ravi, &channel).await), (3, 1));
    let deleted = app
        .delete_as(
            &asha,
            &format!("/api/messages/{}", gone["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(counts(&joined_entry(&app, &ravi, &channel).await), (2, 1));
    // Sending reads everything before it.
    let mine = app.send_message(&ravi, &channel, "caught up").await;
    let entry = joined_entry(&app, &ravi, &channel).await;
    assert_eq!(
        (counts(&entry), &entry["lastReadId"]),
        ((0, 0), &mine["id"])
    );
    // Without a body at all: everything.
    app.send_message(&asha, &channel, "later").await;
    let newest = app.send_message(&asha, &channel, "latest").await;
    let response = app
        .post_as(&ravi, &format!("/api/channels/{channel}/read"))
        .await;
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["lastReadId"], newest["id"]);
    assert_eq!(counts(&body["data"]), (0, 0));

    // Leaving forgets the marker; coming back starts from the newest again.
    app.send_message(&asha, &channel, "while ravi is away")
        .await;
    let left = app
        .post_as(&ravi, &format!("/api/channels/{channel}/leave"))
        .await;
    assert_eq!(left.status(), 200);
    let back = app
        .send_message(&asha, &channel, "before ravi is back")
        .await;
    app.join(&ravi, &channel).await;
    let entry = joined_entry(&app, &ravi, &channel).await;
    assert_eq!(
        (counts(&entry), &entry["lastReadId"]),
        ((0, 0), &back["id"])
    );
}

#[tokio::test]
async fn every_socket_of_the_reader_hears_a_move_and_nothing_when_nothing_moved() {
    let app = TestApp::spawn().await;
    let (asha, ravi) = (app.signup("asha").await, app.signup("ravi").await);
    let channel = app.create_channel(&asha, "news", false).await;
    app.join(&ravi, &channel).await;
    let first = app.send_message(&asha, &channel, "first").await;
    let second = app.send_message(&asha, &channel, "second").await;
    // Two devices; neither joined the channel's room: the reader's own sockets hear it.
    let mut phone = app.socket(&ravi).await;
    let mut laptop = app.socket(&ravi).await;
    let mut asha_socket = app.socket(&asha).await;

    mark(&app, &ravi, &channel, Some(&first)).await;
    // Again at the same place: no move, no event; then a real one, the marker of the test.
    mark(&app, &ravi, &channel, Some(&first)).await;
    mark(&app, &ravi, &channel, Some(&second)).await;
    for socket in [&mut phone, &mut laptop] {
        let heard = socket
            .event("channel:read", WAIT)
            .await
            .expect("channel:read");
        assert_eq!(heard["channelId"], channel.as_str());
        assert_eq!(heard["lastReadId"], first["id"]);
        assert_eq!(counts(&heard), (1, 0));
        let before = socket
            .events_before("channel:read", |v| v["lastReadId"] == second["id"], WAIT)
            .await;
        assert!(
            before.iter().all(|(name, _)| name != "channel:read"),
            "a mark that moved nothing was announced: {before:?}"
        );
    }
    // Another user's sockets hear nothing of it: asha's first event is her own mark (of
    // what ravi sent; sending moves no marker aloud).
    app.send_message(&ravi, &channel, "read it").await;
    mark(&app, &asha, &channel, None).await;
    let before = asha_socket
        .events_before("channel:read", |v| v["channelId"] == channel.as_str(), WAIT)
        .await;
    assert!(before.iter().all(|(name, _)| name != "channel:read"));
}

#[tokio::test]
async fn threads_count_replies_for_followers_and_mentions_in_them() {
    let app = TestApp::spawn().await;
    let (asha, ravi, meera) = (
        app.signup("asha").await,
        app.signup("ravi").await,
        app.signup("meera").await,
    );
    let channel = app.create_channel(&asha, "design", false).await;
    app.join(&ravi, &channel).await;
    app.join(&meera, &channel).await;
    let root = app.send_message(&asha, &channel, "a plan").await;
    // Ravi replies: he follows, and his reply is read.
    reply(&app, &ravi, &channel, &root, "looks good").await;
    // Asha, the root's author, follows on the first reply; it counts for her.
    let threads = get_ok(&app, &asha, "/api/threads").await;
    assert_eq!(threads["threads"][0]["root"]["id"], root["id"]);
    assert_eq!(counts(&threads["threads"][0]), (1, 0));
    assert_eq!(threads["threads"][0]["lastReadId"], Value::Null);
    // A named mention in a reply makes meera follow: it counts as unread and as a mention.
    let mentioning = reply(&app, &asha, &channel, &root, "@meera what do you think?").await;
    let threads = get_ok(&app, &meera, "/api/threads").await;
    assert_eq!(threads["threads"][0]["root"]["id"], root["id"]);
    assert_eq!(counts(&threads["threads"][0]), (2, 1));
    let threads = get_ok(&app, &ravi, "/api/threads").await;
    assert_eq!(counts(&threads["threads"][0]), (1, 0));
    // None of it counts in the channel for anyone but as the root itself.
    assert_eq!(counts(&joined_entry(&app, &meera, &channel).await), (1, 0));

    // Meera reads the thread (from a reply's id): her other socket hears it.
    let mut other = app.socket(&meera).await;
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &meera.token,
            &format!(
                "/api/messages/{}/thread/read",
                mentioning["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["rootId"], root["id"]);
    assert_eq!(body["data"]["lastReadId"], mentioning["id"]);
    assert_eq!(counts(&body["data"]), (0, 0));
    let heard = other.event("thread:read", WAIT).await.expect("thread:read");
    assert_eq!(heard, body["data"]);

    // Unreads: the totals, and only what has something unread, newest activity first.
    let dm = app.open_dm(&asha, &meera).await;
    app.send_message(&asha, &dm, "psst @meera").await;
    let unreads = get_ok(&app, &meera, "/api/unreads").await;
    assert_eq!(counts(&unreads), (2, 1), "{unreads}");
    let channels = unreads["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{unreads}");
    assert_eq!(channels[0]["channelId"], dm.as_str());
    assert_eq!(channels[0]["isDm"], true);
    assert_eq!(counts(&channels[0]), (1, 1));
    assert_eq!(channels[1]["channelId"], channel.as_str());
    assert!(
        unreads["threads"].as_array().unwrap().is_empty(),
        "{unreads}"
    );
    // The DM list carries them too, and a DM is marked read as a channel is.
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &asha.token,
            &format!("/api/channels/{dm}/read"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &body["data"]["isDm"]),
        (200, &json!(true)),
        "{body}"
    );
    let dms = get_ok(&app, &meera, "/api/dms").await;
    assert_eq!(counts(&dms["dms"][0]), (1, 1));
    let one = get_ok(&app, &meera, &format!("/api/dms/{dm}")).await;
    assert_eq!(counts(&one["dm"]), (1, 1));
    // Following from the thread starts with nothing unread in it.
    let later = reply(&app, &asha, &channel, &root, "one more").await;
    let outsider = app.signup("outsider").await;
    let follow = app
        .send_as(
            Method::PUT,
            &outsider.token,
            &format!("/api/messages/{}/follow", root["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(follow.status(), 200);
    let threads = get_ok(&app, &outsider, "/api/threads").await;
    assert_eq!(threads["threads"][0]["lastReadId"], later["id"]);
    assert_eq!(counts(&threads["threads"][0]), (0, 0));
}

#[tokio::test]
async fn counts_stop_at_a_thousand() {
    let app = TestApp::spawn().await;
    let (asha, ravi) = (app.signup("asha").await, app.signup("ravi").await);
    let channel = app.create_channel(&asha, "firehose", false).await;
    app.join(&ravi, &channel).await;
    let sender = app
        .state
        .store
        .fetch_user(Uuid::parse_str(&asha.id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let channel_id = Uuid::parse_str(&channel).unwrap();
    let batch: Vec<NewMessage> = (0..1005)
        .map(|i| NewMessage {
            channel_id,
            sender: SenderView::from(&sender),
            content: MessageContent::parse(&format!("message {i}")).unwrap(),
            attachments: "[]".to_owned(),
            attachment_ids: Vec::new(),
            parent_id: None,
            nonce: None,
            mentions: Default::default(),
        })
        .collect();
    for result in app.state.store.insert_messages(&batch).await.unwrap() {
        assert!(result.unwrap().created);
    }
    assert_eq!(
        counts(&joined_entry(&app, &ravi, &channel).await),
        (1000, 0)
    );
    let unreads = get_ok(&app, &ravi, "/api/unreads").await;
    assert_eq!(counts(&unreads), (1000, 0));
}

#[tokio::test]
async fn bad_marks_are_clear_errors_and_leak_nothing() {
    let app = TestApp::spawn().await;
    let (asha, ravi) = (app.signup("asha").await, app.signup("ravi").await);
    let channel = app.create_channel(&asha, "main", false).await;
    let other = app.create_channel(&asha, "other", false).await;
    let private = app.create_channel(&asha, "hushed", true).await;
    let secret = app.send_message(&asha, &private, "secret").await;
    let elsewhere = app.send_message(&asha, &other, "elsewhere").await;
    let path = format!("/api/channels/{channel}/read");
    let post = |token: String, path: String, body: Value| {
        let app = &app;
        async move { app.send_as(Method::POST, &token, &path, &body).await }
    };

    // Not a member.
    assert_error(
        post(ravi.token.clone(), path.clone(), json!({})).await,
        403,
        "NOT_CHANNEL_MEMBER",
    )
    .await;
    let body = assert_error(
        post(
            ravi.token.clone(),
            format!("/api/channels/{private}/read"),
            json!({ "messageId": secret["id"] }),
        )
        .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    assert!(!body.to_string().contains("secret"), "{body}");
    assert_error(
        post(
            asha.token.clone(),
            format!("/api/channels/{}/read", Uuid::now_v7()),
            json!({}),
        )
        .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    // A message of another channel, one that never was, one deleted.
    for message in [elsewhere["id"].clone(), json!(Uuid::now_v7())] {
        assert_error(
            post(
                asha.token.clone(),
                path.clone(),
                json!({ "messageId": message }),
            )
            .await,
            404,
            "MESSAGE_NOT_FOUND",
        )
        .await;
    }
    let gone = app.send_message(&asha, &channel, "gone").await;
    app.delete_as(
        &asha,
        &format!("/api/messages/{}", gone["id"].as_str().unwrap()),
    )
    .await;
    assert_error(
        post(
            asha.token.clone(),
            path.clone(),
            json!({ "messageId": gone["id"] }),
        )
        .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    // Not an id, not a string, not an object.
    for body in [
        json!({ "messageId": "nope" }),
        json!({ "messageId": 7 }),
        json!([1]),
    ] {
        let error = assert_error(
            post(asha.token.clone(), path.clone(), body).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(error.to_string().len() < 1000, "{error}");
    }
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&asha.token)
        .body("messageId=1")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "INVALID_JSON").await;

    // Threads: a message outside the thread, a thread one may not read.
    let root = app.send_message(&asha, &channel, "root").await;
    let thread_path = format!("/api/messages/{}/thread/read", root["id"].as_str().unwrap());
    assert_error(
        post(
            asha.token.clone(),
            thread_path.clone(),
            json!({ "messageId": elsewhere["id"] }),
        )
        .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    assert_error(
        post(
            ravi.token.clone(),
            format!(
                "/api/messages/{}/thread/read",
                secret["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    assert_error(
        post(
            asha.token.clone(),
            format!("/api/messages/{}/thread/read", Uuid::now_v7()),
            json!({}),
        )
        .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    // A public thread is read by whoever may read it, member or not.
    let (status, body) = json(post(ravi.token.clone(), thread_path, json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["lastReadId"], root["id"]);
}
