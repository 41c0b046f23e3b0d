//! Real-time over Socket.IO (API.md §10), driven with a protocol-level client.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TEST_JWT_SECRET, TestApp, TestUser, json};
use chai_tapri_sio::{Auth, SioClient};

const WAIT: Duration = Duration::from_secs(3);

/// What `s` heard before the message `marker` (sent to a channel it follows, after the
/// action under test): the server delivers in order, so nothing the action caused is still
/// on its way once the marker is here.
async fn heard_before(s: &mut SioClient, marker: &str) -> Vec<(String, Value)> {
    s.events_before("new-message", |m| m["content"] == marker, WAIT)
        .await
}

/// The data of the `name` events among `heard`.
fn named(heard: &[(String, Value)], name: &str) -> Vec<Value> {
    heard
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The `content` of each `new-message` among `heard`.
fn contents(heard: &[(String, Value)]) -> Vec<String> {
    named(heard, "new-message")
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_handshake_takes_a_token_three_ways_and_names_what_is_wrong() {
    let app = TestApp::spawn().await;
    let u = app.signup("sockauth").await;
    assert!(
        SioClient::connect(&app.address, Auth::Payload(&u.token))
            .await
            .is_ok()
    );
    assert!(
        SioClient::connect(&app.address, Auth::Header(&u.token))
            .await
            .is_ok()
    );
    assert!(
        SioClient::connect(&app.address, Auth::Cookie(&u.token))
            .await
            .is_ok()
    );
    assert_eq!(
        SioClient::connect(&app.address, Auth::None)
            .await
            .err()
            .as_deref(),
        Some("AUTH_REQUIRED")
    );
    assert_eq!(
        SioClient::connect(&app.address, Auth::Payload("garbage"))
            .await
            .err()
            .as_deref(),
        Some("INVALID_TOKEN")
    );
    let now = chrono::Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": u.id, "jti": uuid::Uuid::new_v4().to_string(), "iat": now - 100, "exp": now - 1}),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        SioClient::connect(&app.address, Auth::Payload(&expired))
            .await
            .err()
            .as_deref(),
        Some("TOKEN_EXPIRED")
    );
    app.send_as(Method::POST, &u.token, "/api/auth/logout", &json!({}))
        .await;
    assert_eq!(
        SioClient::connect(&app.address, Auth::Payload(&u.token))
            .await
            .err()
            .as_deref(),
        Some("INVALID_TOKEN")
    );
}

#[tokio::test]
async fn messages_sent_over_either_door_reach_every_subscriber_exactly_once() {
    let app = TestApp::spawn().await;
    let a = app.signup("sendera").await;
    let b = app.signup("readerb").await;
    let channel = app.create_channel(&a, "live", false).await;
    let marks = app.create_channel(&a, "marks", false).await;
    app.post_as(&b, &format!("/api/channels/{channel}/join"))
        .await;
    let mut sa = app.socket(&a).await;
    let mut sb = app.socket(&b).await;
    let mut outsider = app.socket(&b).await;
    for s in [&mut sa, &mut sb] {
        let ack = s.call("join-channel", &json!({"channelId": channel})).await;
        assert_eq!(
            ack,
            json!({"success": true, "data": {"channelId": channel}})
        );
        assert_eq!(
            s.event("channel:joined", WAIT).await,
            Some(json!({"channelId": channel}))
        );
    }
    for s in [&mut sa, &mut sb, &mut outsider] {
        s.call("join-channel", &json!({"channelId": marks})).await;
    }
    let ack = sa
        .call(
            "send-message",
            &json!({"channelId": channel, "content": " over the socket ", "nonce": "s1"}),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let message = ack["data"]["message"].clone();
    assert_eq!(message["content"], "over the socket");
    // The same nonce again: the same message, and no second broadcast.
    let again = sa
        .call(
            "send-message",
            &json!({"channelId": channel, "content": "over the socket", "nonce": "s1"}),
        )
        .await;
    assert_eq!(again["data"]["message"]["id"], message["id"]);
    app.send_message(&b, &channel, "over REST").await;
    app.send_message(&a, &marks, "mark 1").await;
    for s in [&mut sa, &mut sb] {
        assert_eq!(
            contents(&heard_before(s, "mark 1").await),
            ["over the socket", "over REST"],
            "each once, the sender's own socket included"
        );
    }
    assert_eq!(
        contents(&heard_before(&mut outsider, "mark 1").await),
        Vec::<String>::new(),
        "a socket that did not join hears nothing"
    );

    let edited = sb
        .call(
            "edit-message",
            &json!({"messageId": message["id"], "content": "hijack"}),
        )
        .await;
    assert_eq!(edited["error"]["code"], "NOT_MESSAGE_OWNER");
    let edited = sa
        .call(
            "edit-message",
            &json!({"messageId": message["id"], "content": "edited"}),
        )
        .await;
    assert_eq!(edited["data"]["message"]["content"], "edited");
    assert_eq!(
        sb.event("message-edited", WAIT).await.unwrap()["content"],
        "edited"
    );
    let deleted = sa
        .call("delete-message", &json!({"messageId": message["id"]}))
        .await;
    assert_eq!(
        deleted["data"],
        json!({"messageId": message["id"], "channelId": channel})
    );
    assert_eq!(
        sb.event("message-deleted", WAIT).await.unwrap(),
        json!({"messageId": message["id"], "channelId": channel, "tombstone": false})
    );

    let left = sb
        .call("leave-channel", &json!({"channelId": channel}))
        .await;
    assert_eq!(left["data"], json!({"channelId": channel}));
    assert_eq!(
        sb.event("channel:left", WAIT).await.unwrap()["reason"],
        "unsubscribed"
    );
    app.send_message(&a, &channel, "after leaving").await;
    app.send_message(&a, &marks, "mark 2").await;
    assert_eq!(
        contents(&heard_before(&mut sb, "mark 2").await),
        Vec::<String>::new()
    );
    assert_eq!(
        contents(&heard_before(&mut sa, "mark 2").await),
        ["after leaving"]
    );
}

#[tokio::test]
async fn rules_and_bad_input_answer_in_the_ack_or_an_error_event() {
    let app = TestApp::spawn().await;
    let owner = app.signup("rulesowner").await;
    let other = app.signup("rulesother").await;
    let secret = app.create_channel(&owner, "hidden", true).await;
    let public = app.create_channel(&owner, "public-one", false).await;
    let mut s = app.socket(&other).await;
    let r = s.call("join-channel", &json!({"channelId": secret})).await;
    assert_eq!(r["error"]["code"], "PRIVATE_CHANNEL");
    let r = s.call("join-channel", &json!({"channelId": "nope"})).await;
    assert_eq!(r["error"]["code"], "CHANNEL_NOT_FOUND");
    let r = s
        .call(
            "send-message",
            &json!({"channelId": public, "content": "hi"}),
        )
        .await;
    assert_eq!(r["error"]["code"], "NOT_CHANNEL_MEMBER");
    let r = s.call("typing-start", &json!({"channelId": public})).await;
    assert_eq!(r["error"]["code"], "NOT_CHANNEL_MEMBER");
    for bad in [
        json!("a string"),
        json!({"channelId": public, "content": ""}),
        json!({"content": "no channel"}),
        json!([1, 2]),
    ] {
        let r = s.call("send-message", &bad).await;
        assert_eq!(r["error"]["code"], "VALIDATION_ERROR", "{bad}: {r}");
    }
    // Without an ack the answer is an `error` event.
    s.emit("send-message", &json!({"channelId": public}));
    let e = s.event("error", WAIT).await.unwrap();
    assert_eq!(e["code"], "VALIDATION_ERROR");
    s.emit("no-such-event", &json!({}));
    assert_eq!(
        s.event("error", WAIT).await.unwrap()["code"],
        "VALIDATION_ERROR"
    );
    // Garbage packets do not take the server down.
    s.raw("42[");
    s.raw("4");
    let mut fresh = app.socket(&owner).await;
    let r = fresh
        .call("join-channel", &json!({"channelId": public}))
        .await;
    assert_eq!(r["success"], true);
}

#[tokio::test]
async fn typing_is_relayed_to_others_and_ends_by_itself_or_on_disconnect() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let app = TestApp::spawn_with(|v| {
        v.insert("TYPING_TIMEOUT".into(), "400ms".into());
    })
    .await;
    let a = app.signup("typista").await;
    let b = app.signup("watcherb").await;
    let channel = app.create_channel(&a, "typing", false).await;
    app.post_as(&b, &format!("/api/channels/{channel}/join"))
        .await;
    let mut sa = app.socket(&a).await;
    let mut sa2 = app.socket(&a).await;
    let mut sb = app.socket(&b).await;
    for s in [&mut sa, &mut sa2, &mut sb] {
        s.call("join-channel", &json!({"channelId": channel})).await;
    }
    let r = sa
        .call("typing-start", &json!({"channelId": channel}))
        .await;
    assert_eq!(r["data"], json!({"channelId": channel}));
    let typing = sb.event("user-typing", WAIT).await.unwrap();
    assert_eq!(typing["channelId"], channel.as_str());
    assert_eq!(typing["user"]["username"], "typista");
    // A second start while typing is no news; then a marker message.
    sa.call("typing-start", &json!({"channelId": channel}))
        .await;
    app.send_message(&a, &channel, "marker").await;
    let seen = sa2
        .events_before("new-message", |m| m["content"] == "marker", WAIT)
        .await;
    assert!(
        seen.iter().all(|(name, _)| name != "user-typing"),
        "not to the typist's own sockets: {seen:?}"
    );
    let seen = sb
        .events_before("new-message", |m| m["content"] == "marker", WAIT)
        .await;
    assert!(
        seen.iter().all(|(name, _)| name != "user-typing"),
        "told once: {seen:?}"
    );
    sa.call("typing-stop", &json!({"channelId": channel})).await;
    assert!(sb.event("user-stopped-typing", WAIT).await.is_some());
    // No stop from the client: the server ends it after TYPING_TIMEOUT, not before.
    let started = std::time::Instant::now();
    sa.call("typing-start", &json!({"channelId": channel}))
        .await;
    assert!(sb.event("user-typing", WAIT).await.is_some());
    assert!(sb.event("user-stopped-typing", WAIT).await.is_some());
    assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    // A socket that goes away while typing stops typing.
    sa.call("typing-start", &json!({"channelId": channel}))
        .await;
    assert!(sb.event("user-typing", WAIT).await.is_some());
    drop(sa);
    assert!(sb.event("user-stopped-typing", WAIT).await.is_some());
}

/// `watcher`'s socket and `user`'s first one, with both `user:online` events heard by the
/// watcher (its own first: everyone hears, itself too).
async fn watch_user_come_online(
    app: &TestApp,
    watcher: &TestUser,
    user: &TestUser,
) -> (SioClient, SioClient) {
    let mut w = app.socket(watcher).await;
    assert_eq!(
        w.event("user:online", WAIT).await.unwrap(),
        json!({"userId": watcher.id}),
        "everyone hears, itself too"
    );
    let first = app.socket(user).await;
    assert_eq!(
        w.event("user:online", WAIT).await.unwrap(),
        json!({"userId": user.id})
    );
    (w, first)
}

/// `GET /api/users/:id` as `viewer` sees it: the `user` object.
async fn profile(app: &TestApp, viewer: &TestUser, id: &str) -> Value {
    let (_, body) = json(app.get_as(&viewer.token, &format!("/api/users/{id}")).await).await;
    body["data"]["user"].clone()
}

/// What `w` heard before `marker`'s `user:online` (or `user:offline`) arrived, `marker`'s
/// own events left out: a presence change of another user is the marker of the presence
/// tests.
async fn presence_before(
    w: &mut SioClient,
    event: &str,
    marker: &TestUser,
) -> Vec<(String, Value)> {
    let id = Value::String(marker.id.clone());
    w.events_before(event, |v| v["userId"] == id, WAIT)
        .await
        .into_iter()
        .filter(|(_, v)| v["userId"] != id)
        .collect()
}

/// Polls `GET /api/users/:id` (deadline: `WAIT`) until the server's view of `user` is
/// `online`: the server has seen the socket open or close.
async fn until_online_is(app: &TestApp, viewer: &TestUser, user: &TestUser, online: bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while profile(app, viewer, &user.id).await["isOnline"] != online {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never became online={online}",
            user.username
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn presence_is_per_user_and_follows_the_last_socket() {
    let app = TestApp::spawn().await;
    let watcher = app.signup("presencew").await;
    let u = app.signup("presenceu").await;
    let marker = app.signup("presencemark").await;
    let (mut w, first) = watch_user_come_online(&app, &watcher, &u).await;
    let second = app.socket(&u).await;
    let marker_socket = app.socket(&marker).await;
    assert_eq!(
        presence_before(&mut w, "user:online", &marker).await,
        vec![],
        "a second socket is no news"
    );
    let (_, online) = json(app.get_as(&watcher.token, "/api/users/online").await).await;
    let names: Vec<&str> = online["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["username"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"presenceu"), "{online}");
    drop(first);
    drop(marker_socket);
    assert_eq!(
        presence_before(&mut w, "user:offline", &marker).await,
        vec![],
        "one socket is still there"
    );
    drop(second);
    let offline = w.event("user:offline", WAIT).await.unwrap();
    assert_eq!(offline["userId"], u.id.as_str());
    let last_seen = offline["lastSeen"].as_str().unwrap().to_owned();
    let user = profile(&app, &watcher, &u.id).await;
    assert_eq!(user["isOnline"], false);
    assert_eq!(user["lastSeen"], Value::String(last_seen));
}

#[tokio::test]
async fn with_a_presence_grace_a_quick_return_is_silent_and_a_real_leave_is_announced_after_it() {
    const GRACE: Duration = Duration::from_millis(500);
    let app = TestApp::spawn_with(|v| {
        v.insert("PRESENCE_GRACE".into(), "500ms".into());
    })
    .await;
    let watcher = app.signup("gracewatch").await;
    let u = app.signup("graceflap").await;
    let marker = app.signup("gracemark").await;
    let (mut w, first) = watch_user_come_online(&app, &watcher, &u).await;
    let marker_socket = app.socket(&marker).await;
    assert_eq!(
        w.event("user:online", WAIT).await.unwrap()["userId"],
        marker.id.as_str()
    );

    // A dropped connection that comes back within the grace: nobody hears anything. The
    // marker leaves after the user is back, so its own user:offline (a grace later) comes
    // after any the user's drop could have caused.
    drop(first);
    until_online_is(&app, &watcher, &u, false).await;
    let back = app.socket(&u).await;
    until_online_is(&app, &watcher, &u, true).await;
    drop(marker_socket);
    assert_eq!(
        presence_before(&mut w, "user:offline", &marker).await,
        vec![],
        "neither offline nor back online"
    );

    // Gone for good: user:offline once the grace has passed, with the lastSeen stored at once.
    drop(back);
    let left = std::time::Instant::now();
    // The REST view follows the sockets at once (as soon as the server has seen the close).
    until_online_is(&app, &watcher, &u, false).await;
    let offline = w.event("user:offline", WAIT).await.unwrap();
    assert!(left.elapsed() >= GRACE, "{:?}", left.elapsed());
    assert_eq!(offline["userId"], u.id.as_str());
    assert_eq!(
        profile(&app, &watcher, &u.id).await["lastSeen"],
        offline["lastSeen"]
    );
}

#[tokio::test]
async fn removal_deletion_and_logout_reach_the_sockets_concerned() {
    let app = TestApp::spawn().await;
    let owner = app.signup("roomowner").await;
    let member = app.signup("roommember").await;
    let channel = app.create_channel(&owner, "room", false).await;
    let marks = app.create_channel(&owner, "roommarks", false).await;
    let mut sm = app.socket(&member).await;
    sm.call("join-channel", &json!({"channelId": marks})).await;
    // Added by the owner: the member hears channel:added with the channel as they see it.
    app.send_as(
        Method::POST,
        &owner.token,
        &format!("/api/channels/{channel}/members"),
        &json!({"userId": member.id}),
    )
    .await;
    let added = sm.event("channel:added", WAIT).await.unwrap();
    assert_eq!(added["channel"]["role"], "member");
    sm.call("join-channel", &json!({"channelId": channel}))
        .await;
    app.delete_as(
        &owner,
        &format!("/api/channels/{channel}/members/{}", member.id),
    )
    .await;
    assert_eq!(
        sm.event("channel:left", WAIT).await.unwrap(),
        json!({"channelId": channel, "reason": "removed"})
    );
    app.send_message(&owner, &channel, "after removal").await;
    app.send_message(&owner, &marks, "mark").await;
    assert_eq!(
        contents(&heard_before(&mut sm, "mark").await),
        Vec::<String>::new(),
        "out of the room"
    );

    let second = app.create_channel(&owner, "doomed", false).await;
    app.post_as(&member, &format!("/api/channels/{second}/join"))
        .await;
    sm.call("join-channel", &json!({"channelId": second})).await;
    app.delete_as(&owner, &format!("/api/channels/{second}"))
        .await;
    assert_eq!(
        sm.event("channel:left", WAIT).await.unwrap(),
        json!({"channelId": second, "reason": "deleted"})
    );

    app.send_as(Method::POST, &member.token, "/api/auth/logout", &json!({}))
        .await;
    assert_eq!(
        sm.event("error", WAIT).await.unwrap()["code"],
        "INVALID_TOKEN"
    );
    let mut closed = sm.closed.clone();
    tokio::time::timeout(WAIT, closed.wait_for(|c| *c))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: run by the second pass (scripts/test.sh)"]
async fn two_nodes_on_one_database_and_one_redis_deliver_to_each_others_sockets() {
    crate::helpers::require_database_url();
    crate::helpers::require_redis_url();
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in(a.dir.clone(), a.vars.clone()).await;
    let alice = a.signup("nodealice").await;
    let bob = a.signup("nodebob").await;
    let channel = a.create_channel(&alice, "across", false).await;
    let marks = a.create_channel(&alice, "acrossmarks", false).await;
    b.post_as(&bob, &format!("/api/channels/{channel}/join"))
        .await;
    let mut on_a = a.socket(&alice).await;
    let mut on_b = b.socket(&bob).await;
    // Presence crosses: alice (node a) hears bob come online on node b.
    let online = on_a.event("user:online", WAIT).await;
    let online = match online {
        Some(v) if v["userId"] == alice.id.as_str() => {
            on_a.event("user:online", WAIT).await.unwrap()
        }
        Some(v) => v,
        None => panic!("no user:online crossed the nodes"),
    };
    assert_eq!(online["userId"], bob.id.as_str());
    for s in [&mut on_a, &mut on_b] {
        for room in [&channel, &marks] {
            assert_eq!(
                s.call("join-channel", &json!({"channelId": room})).await["success"],
                true
            );
        }
    }
    // A send on node a reaches the socket on node b, once; and the other way round.
    let sent = on_a
        .call(
            "send-message",
            &json!({"channelId": channel, "content": "from a"}),
        )
        .await;
    let id = sent["data"]["message"]["id"].clone();
    a.send_message(&alice, &marks, "mark 1").await;
    let got = named(&heard_before(&mut on_b, "mark 1").await, "new-message");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], id);
    assert_eq!(
        contents(&heard_before(&mut on_a, "mark 1").await),
        ["from a"],
        "the sender's own socket too"
    );
    b.send_message(&bob, &channel, "from b over REST").await;
    assert_eq!(
        on_a.event("new-message", WAIT).await.unwrap()["content"],
        "from b over REST"
    );
    b.send_message(&alice, &marks, "mark 2").await;
    assert_eq!(
        contents(&heard_before(&mut on_b, "mark 2").await),
        ["from b over REST"],
        "bob's own socket hears his REST send once"
    );
    // Edits, deletes and typing cross too.
    on_a.call(
        "edit-message",
        &json!({"messageId": id, "content": "edited on a"}),
    )
    .await;
    assert_eq!(
        on_b.event("message-edited", WAIT).await.unwrap()["content"],
        "edited on a"
    );
    on_a.call("typing-start", &json!({"channelId": channel}))
        .await;
    assert_eq!(
        on_b.event("user-typing", WAIT).await.unwrap()["user"]["id"],
        alice.id.as_str()
    );
    on_a.call("delete-message", &json!({"messageId": id})).await;
    assert_eq!(
        on_b.event("message-deleted", WAIT).await.unwrap()["messageId"],
        id
    );
    // Removal on node a takes bob's socket on node b out of the room.
    a.delete_as(
        &alice,
        &format!("/api/channels/{channel}/members/{}", bob.id),
    )
    .await;
    assert_eq!(
        on_b.event("channel:left", WAIT).await.unwrap()["reason"],
        "removed"
    );
    a.send_message(&alice, &channel, "after removal").await;
    a.send_message(&alice, &marks, "mark 3").await;
    assert_eq!(
        contents(&heard_before(&mut on_b, "mark 3").await),
        Vec::<String>::new()
    );
    // A logout on node a disconnects bob's socket on node b.
    a.send_as(Method::POST, &bob.token, "/api/auth/logout", &json!({}))
        .await;
    assert_eq!(
        on_b.event("error", WAIT).await.unwrap()["code"],
        "INVALID_TOKEN"
    );
    let mut closed = on_b.closed.clone();
    tokio::time::timeout(WAIT, closed.wait_for(|c| *c))
        .await
        .unwrap()
        .unwrap();
    // Bob's last socket is gone: alice hears it on the other node.
    let offline = on_a.event("user:offline", WAIT).await.unwrap();
    assert_eq!(offline["userId"], bob.id.as_str());
}

#[tokio::test]
async fn a_huge_payload_is_refused_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let u = app.signup("bigpacket").await;
    let channel = app.create_channel(&u, "big", false).await;
    let mut s = app.socket(&u).await;
    let huge = "x".repeat(60 * 1024);
    let r = s
        .call(
            "send-message",
            &json!({"channelId": channel, "content": huge}),
        )
        .await;
    assert_eq!(r["error"]["code"], "VALIDATION_ERROR");
    let mut other = app.socket(&u).await;
    let r = other
        .call(
            "send-message",
            &json!({"channelId": channel, "content": "still serving"}),
        )
        .await;
    assert_eq!(r["success"], true);
}

#[tokio::test]
async fn a_websocket_message_over_64_kib_closes_that_connection_only() {
    let app = TestApp::spawn().await;
    let u = app.signup("wsbigpacket").await;
    let channel = app.create_channel(&u, "wsbig", false).await;
    let s = app.socket(&u).await;
    let packet = json!(["send-message", {"channelId": channel, "content": "x".repeat(70 * 1024)}]);
    s.raw(&format!("42{packet}"));
    let mut closed = s.closed.clone();
    tokio::time::timeout(WAIT, closed.wait_for(|c| *c))
        .await
        .expect("the server closes a connection that sends more than 64 KiB at once")
        .unwrap();
    let mut other = app.socket(&u).await;
    let r = other
        .call(
            "send-message",
            &json!({"channelId": channel, "content": "still serving"}),
        )
        .await;
    assert_eq!(r["success"], true);
    let history = crate::helpers::call_json(
        &app.client,
        Method::GET,
        format!("{}/api/channels/{channel}/messages", app.address),
        Some(&u.token),
        None,
    )
    .await;
    assert_eq!(
        history["data"]["messages"].as_array().unwrap().len(),
        1,
        "{history}"
    );
}

// Several workers, so that the tasks waiting for the writer can resume in any order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_sends_of_one_sender_are_delivered_in_commit_order() {
    let app = TestApp::spawn().await;
    let sender = app.signup("pipesender").await;
    let reader = app.signup("pipereader").await;
    let channel = app.create_channel(&sender, "pipeline", false).await;
    let mut r = app.socket(&reader).await;
    assert_eq!(
        r.call("join-channel", &json!({"channelId": channel})).await["success"],
        true
    );
    let s = app.socket(&sender).await;
    // Many sends in flight at once, as a client that does not wait for each ack.
    for i in 0..300 {
        s.emit(
            "send-message",
            &json!({"channelId": channel, "content": format!("pipelined {i}")}),
        );
    }
    let mut ids = Vec::new();
    while ids.len() < 300 {
        let m = r.event("new-message", WAIT).await.expect("all 300 arrive");
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    let wrong: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] != sorted[i]).collect();
    let places: Vec<usize> = wrong
        .iter()
        .map(|&i| sorted.iter().position(|x| *x == ids[i]).unwrap())
        .collect();
    assert!(
        wrong.is_empty(),
        "events follow the ids' (commit) order: out of order at {wrong:?}, ids ranked {places:?}"
    );
    // And so resuming after any of them misses none of the later ones.
    let after = &ids[100];
    let page = crate::helpers::call_json(
        &app.client,
        Method::GET,
        format!(
            "{}/api/channels/{channel}/messages?after={after}&limit=100",
            app.address
        ),
        Some(&reader.token),
        None,
    )
    .await;
    let resumed: Vec<&str> = page["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ids[101..201].iter().map(String::as_str).collect();
    assert_eq!(resumed, expected);
}

#[tokio::test]
async fn a_socket_follows_at_most_500_channels() {
    let app = TestApp::spawn().await;
    let u = app.signup("manyrooms").await;
    let mut ids = Vec::new();
    for i in 0..501 {
        ids.push(app.create_channel(&u, &format!("room-{i}"), false).await);
    }
    let mut s = app.socket(&u).await;
    for id in &ids[..500] {
        assert_eq!(
            s.call("join-channel", &json!({"channelId": id})).await["success"],
            true
        );
    }
    let r = s
        .call("join-channel", &json!({"channelId": ids[500]}))
        .await;
    assert_eq!(r["error"]["code"], "VALIDATION_ERROR");
    // Joining one it already follows is still fine, and leaving one makes room.
    assert_eq!(
        s.call("join-channel", &json!({"channelId": ids[0]})).await["success"],
        true
    );
    s.call("leave-channel", &json!({"channelId": ids[0]})).await;
    assert_eq!(
        s.call("join-channel", &json!({"channelId": ids[500]}))
            .await["success"],
        true
    );
}

#[tokio::test]
async fn deleting_a_channel_tells_each_subscribed_socket_once_and_then_nothing_more() {
    let app = TestApp::spawn().await;
    let owner = app.signup("doomowner").await;
    let member = app.signup("doommember").await;
    let reader = app.signup("doomreader").await;
    let doomed = app.create_channel(&owner, "doomed", false).await;
    let marker = app.create_channel(&owner, "marker", false).await;
    app.post_as(&member, &format!("/api/channels/{doomed}/join"))
        .await;
    // A member's subscribed socket, the same member's unsubscribed one, and a reader who
    // follows the public channel without being a member.
    let mut subscribed = app.socket(&member).await;
    let mut unsubscribed = app.socket(&member).await;
    let mut follower = app.socket(&reader).await;
    for s in [&mut subscribed, &mut follower] {
        let ack = s.call("join-channel", &json!({"channelId": doomed})).await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    for s in [&mut subscribed, &mut unsubscribed, &mut follower] {
        s.call("join-channel", &json!({"channelId": marker})).await;
    }
    let deleted = app
        .delete_as(&owner, &format!("/api/channels/{doomed}"))
        .await;
    assert_eq!(deleted.status(), 200);
    app.send_message(&owner, &marker, "marker").await;
    let left = json!({"channelId": doomed, "reason": "deleted"});
    for (who, s) in [
        ("member, subscribed", &mut subscribed),
        ("member, not subscribed", &mut unsubscribed),
        ("reader, subscribed", &mut follower),
    ] {
        let heard = heard_before(s, "marker").await;
        let about_doomed: Vec<&(String, Value)> = heard
            .iter()
            // What it heard about the channel since it followed it.
            .filter(|(n, v)| n != "channel:joined" && v["channelId"] == json!(doomed))
            .collect();
        assert_eq!(
            about_doomed,
            [&("channel:left".to_owned(), left.clone())],
            "{who}: {heard:?}"
        );
    }
}

/// Frames `raw` reads until one that `last` accepts (that one included), each as its text
/// (`41` for a disconnect); pings are answered on the way. Panics after `WAIT`.
async fn frames_until(
    raw: &mut chai_tapri_sio::Socket,
    last: impl Fn(&str) -> bool,
) -> Vec<String> {
    use chai_tapri_sio::Packet;
    let mut frames = Vec::new();
    loop {
        let packet = tokio::time::timeout(WAIT, raw.next())
            .await
            .unwrap_or_else(|_| panic!("the awaited frame never came; read: {frames:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("closed; read: {frames:?}"));
        let text = match packet {
            Packet::Event(t) | Packet::Ack(_, t) | Packet::Other(t) => t.to_string(),
            Packet::Disconnect => "41".to_owned(),
        };
        let done = last(&text);
        frames.push(text);
        if done {
            return frames;
        }
    }
}

#[tokio::test]
async fn after_a_disconnect_nothing_more_is_sent_on_its_transport() {
    let app = TestApp::spawn().await;
    let u = app.signup("goneuser").await;
    let watcher = app.signup("gonewatcher").await;
    let mut w = app.socket(&watcher).await;
    let online = |w_event: Option<Value>| w_event.unwrap()["userId"] == u.id.as_str();
    // The token to the CONNECT of a socket whose transport outlives its namespace.
    let reconnect = |token: &str| format!("40{}", json!({ "token": token }));

    // Logged out: the server's `41`, then nothing but the answer to a new CONNECT.
    let mut raw = chai_tapri_sio::Socket::connect(&app.address, Auth::Payload(&u.token))
        .await
        .unwrap();
    w.event("user:online", WAIT).await;
    assert!(online(w.event("user:online", WAIT).await));
    app.send_as(Method::POST, &u.token, "/api/auth/logout", &json!({}))
        .await;
    let until_41 = frames_until(&mut raw, |f| f == "41").await;
    assert!(
        until_41.iter().any(|f| f.contains("INVALID_TOKEN")),
        "told why first: {until_41:?}"
    );
    let offline = w.event("user:offline", WAIT).await.unwrap();
    assert_eq!(offline["userId"], u.id.as_str());
    raw.send(reconnect(&u.token)).await.unwrap();
    assert_eq!(
        frames_until(&mut raw, |f| f.starts_with("44")).await.len(),
        1,
        "after its 41, the transport carried only the refusal of the new CONNECT"
    );

    // The client's own `41`: the same.
    let (_, body) = json(
        app.post_json(
            "/api/auth/login",
            &json!({"username": u.username, "password": u.password}),
        )
        .await,
    )
    .await;
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let mut raw = chai_tapri_sio::Socket::connect(&app.address, Auth::Payload(&token))
        .await
        .unwrap();
    assert!(online(w.event("user:online", WAIT).await));
    // Everyone hears it, the socket itself too: read before it hangs up.
    frames_until(&mut raw, |f| f.contains("user:online")).await;
    raw.send("41".to_owned()).await.unwrap();
    let offline = w.event("user:offline", WAIT).await.unwrap();
    assert_eq!(offline["userId"], u.id.as_str());
    raw.send(reconnect(&token)).await.unwrap();
    let frames = frames_until(&mut raw, |f| f.starts_with("40")).await;
    assert_eq!(
        frames.len(),
        1,
        "nothing between its 41 and the new CONNECT: {frames:?}"
    );
}
