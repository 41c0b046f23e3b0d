//! Direct conversations (docs/api.md, "Direct messages"): opened once per set of people,
//! private to their members, never a channel, live on every member's socket.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

async fn open(app: &TestApp, user: &TestUser, others: &[&TestUser]) -> (u16, Value) {
    let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &user.token,
            "/api/dms",
            &json!({ "userIds": ids }),
        )
        .await,
    )
    .await;
    (status, body["data"]["dm"].clone())
}

fn usernames(dm: &Value) -> Vec<String> {
    dm["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_same_people_always_get_the_same_conversation_and_only_they_read_it() {
    let app = TestApp::spawn().await;
    let (asha, bala, chet) = (
        app.signup("asha").await,
        app.signup("bala").await,
        app.signup("chet").await,
    );

    let (status, one) = open(&app, &asha, &[&bala]).await;
    assert_eq!(status, 201, "{one}");
    assert_eq!(usernames(&one), ["asha", "bala"]);
    assert_eq!(one["isGroup"], false);
    assert_eq!(one["lastMessage"], Value::Null);
    let one_id = one["id"].as_str().unwrap().to_owned();

    // Bala opening it, naming himself and Asha twice, gets the same conversation.
    let (status, again) = json(
        app.send_as(
            Method::POST,
            &bala.token,
            "/api/dms",
            &json!({ "userIds": [asha.id, asha.id, bala.id] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["data"]["dm"]["id"], one_id.as_str());

    let (status, group) = open(&app, &asha, &[&chet, &bala]).await;
    assert_eq!(status, 201);
    assert_eq!(usernames(&group), ["asha", "bala", "chet"]);
    assert_eq!(group["isGroup"], true);
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert_ne!(group_id, one_id);

    // Newest activity first: the group was opened last, until the 1:1 gets a message.
    let (_, list) = json(app.get_as(&asha.token, "/api/dms").await).await;
    assert_eq!(
        ids(&list["data"]["dms"]),
        [group_id.as_str(), one_id.as_str()]
    );
    let sent = app.send_message(&asha, &one_id, "hello bala").await;
    assert_eq!(sent["channelId"], one_id.as_str());
    let (_, list) = json(app.get_as(&asha.token, "/api/dms").await).await;
    assert_eq!(
        ids(&list["data"]["dms"]),
        [one_id.as_str(), group_id.as_str()]
    );
    assert_eq!(
        list["data"]["dms"][0]["lastMessage"]["content"],
        "hello bala"
    );
    let (_, page) = json(
        app.get_as(&bala.token, &format!("/api/channels/{one_id}/messages"))
            .await,
    )
    .await;
    assert_eq!(page["data"]["messages"][0]["content"], "hello bala");

    // One page at a time.
    let (_, first) = json(app.get_as(&bala.token, "/api/dms?limit=1").await).await;
    assert_eq!(ids(&first["data"]["dms"]), [one_id.as_str()]);
    assert_eq!(first["data"]["pagination"]["hasMore"], true);
    let cursor = first["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, second) = json(
        app.get_as(&bala.token, &format!("/api/dms?limit=1&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(ids(&second["data"]["dms"]), [group_id.as_str()]);
    assert_eq!(second["data"]["pagination"]["hasMore"], false);
    assert_eq!(second["data"]["pagination"]["nextCursor"], Value::Null);

    // Chet is not in the 1:1: it is private to him, wherever he knocks.
    for path in [
        format!("/api/dms/{one_id}"),
        format!("/api/channels/{one_id}/messages"),
    ] {
        assert_error(app.get_as(&chet.token, &path).await, 403, "PRIVATE_CHANNEL").await;
    }
    assert_error(
        app.send_as(
            Method::POST,
            &chet.token,
            &format!("/api/channels/{one_id}/messages"),
            &json!({ "content": "let me in" }),
        )
        .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    let (_, chets) = json(app.get_as(&chet.token, "/api/dms").await).await;
    assert_eq!(ids(&chets["data"]["dms"]), [group_id.as_str()]);
    let (status, got) = json(app.get_as(&asha.token, &format!("/api/dms/{one_id}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(got["data"]["dm"]["lastMessage"]["content"], "hello bala");
}

#[tokio::test]
async fn a_conversation_is_never_a_channel() {
    let app = TestApp::spawn().await;
    let (asha, bala) = (app.signup("asha").await, app.signup("bala").await);
    let (_, dm) = open(&app, &asha, &[&bala]).await;
    let dm_id = dm["id"].as_str().unwrap().to_owned();
    let channel = app.create_channel(&asha, "general", false).await;

    let (_, list) = json(app.get_as(&asha.token, "/api/channels").await).await;
    assert_eq!(ids(&list["data"]["channels"]), [channel.as_str()]);
    let (_, joined) = json(app.get_as(&asha.token, "/api/channels?joined=true").await).await;
    assert_eq!(ids(&joined["data"]["channels"]), [channel.as_str()]);

    // Nobody is added, removed, renamed, starred, joined or deleted: the channel routes do
    // not know it.
    let not_found = [
        (Method::GET, format!("/api/channels/{dm_id}"), Value::Null),
        (
            Method::PATCH,
            format!("/api/channels/{dm_id}"),
            json!({"name": "renamed"}),
        ),
        (
            Method::DELETE,
            format!("/api/channels/{dm_id}"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/api/channels/{dm_id}/join"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/api/channels/{dm_id}/leave"),
            Value::Null,
        ),
        (
            Method::PUT,
            format!("/api/channels/{dm_id}/star"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/api/channels/{dm_id}/members"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/api/channels/{dm_id}/members"),
            json!({"userId": asha.id}),
        ),
        (
            Method::DELETE,
            format!("/api/channels/{dm_id}/members/{}", bala.id),
            Value::Null,
        ),
    ];
    for (method, path, body) in not_found {
        let response = if body.is_null() {
            app.send_as(method.clone(), &asha.token, &path, &json!({}))
                .await
        } else {
            app.send_as(method.clone(), &asha.token, &path, &body).await
        };
        let (status, answer) = json(response).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (404, Some("CHANNEL_NOT_FOUND")),
            "{method} {path}: {answer}"
        );
    }
    // …and a channel is not a conversation.
    assert_error(
        app.get_as(&asha.token, &format!("/api/dms/{channel}"))
            .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(&asha.token, "/api/dms/not-an-id").await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    // The conversation kept both of them.
    let (_, still) = json(app.get_as(&bala.token, &format!("/api/dms/{dm_id}")).await).await;
    assert_eq!(usernames(&still["data"]["dm"]), ["asha", "bala"]);
}

#[tokio::test]
async fn a_conversation_of_nobody_else_or_too_many_is_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let asha = app.signup("asha").await;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(app.signup(&format!("other{i}")).await);
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let cases = [
        (json!({}), "is required"),
        (json!({ "userIds": [] }), "at least one other person"),
        (
            json!({ "userIds": [asha.id, asha.id] }),
            "at least one other person",
        ),
        (
            json!({ "userIds": others.iter().map(|u| u.id.clone()).collect::<Vec<_>>() }),
            "at most 8 people",
        ),
        (
            json!({ "userIds": vec![others[0].id.clone(); 101] }),
            "at most 8 people",
        ),
        (json!({ "userIds": [unknown] }), "unknown users"),
        (json!({ "userIds": ["nope"] }), "unknown users: nope"),
        (json!({ "userIds": "nope" }), "must be a list"),
        (json!({ "userIds": [1, 2] }), "must be a list"),
    ];
    for (body, says) in cases {
        let answer = assert_error(
            app.send_as(Method::POST, &asha.token, "/api/dms", &body)
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        let detail = &answer["error"]["details"][0];
        assert_eq!(detail["field"], "userIds", "{body}: {answer}");
        assert!(
            detail["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    // Seven others is the most.
    let seven: Vec<&TestUser> = others.iter().take(7).collect();
    let (status, dm) = open(&app, &asha, &seven).await;
    assert_eq!(status, 201);
    assert_eq!(dm["members"].as_array().unwrap().len(), 8);
    // A cursor of another list is refused.
    assert_error(
        app.get_as(&asha.token, "/api/dms?cursor=zz").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    let (_, dms) = json(app.get_as(&asha.token, "/api/dms").await).await;
    assert_eq!(dms["data"]["dms"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn opened_at_once_from_many_requests_it_is_one_conversation() {
    let app = TestApp::spawn().await;
    let (asha, bala) = (app.signup("asha").await, app.signup("bala").await);
    let (to_bala, to_asha) = ([&bala], [&asha]);
    let opens = (0..12).map(|i| {
        if i % 2 == 0 {
            open(&app, &asha, &to_bala)
        } else {
            open(&app, &bala, &to_asha)
        }
    });
    let answers = futures_util::future::join_all(opens).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 201));
    let first = &answers[0].1["id"];
    assert!(
        answers.iter().all(|(_, dm)| &dm["id"] == first),
        "{answers:?}"
    );
    let (_, list) = json(app.get_as(&bala.token, "/api/dms").await).await;
    assert_eq!(list["data"]["dms"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_conversation_reaches_every_socket_of_its_members_and_no_one_else() {
    let app = TestApp::spawn().await;
    let (asha, bala, chet) = (
        app.signup("asha").await,
        app.signup("bala").await,
        app.signup("chet").await,
    );
    let general = app.create_channel(&asha, "general", false).await;
    app.post_as(&chet, &format!("/api/channels/{general}/join"))
        .await;
    let mut bala_early = app.socket(&bala).await;
    let mut chet_socket = app.socket(&chet).await;
    let ack = chet_socket
        .call("join-channel", &json!({ "channelId": general }))
        .await;
    assert_eq!(ack["success"], true, "{ack}");

    // Opening it tells Bala's socket, which was connected before it existed.
    let (_, dm) = open(&app, &asha, &[&bala]).await;
    let dm_id = dm["id"].as_str().unwrap().to_owned();
    let opened = bala_early
        .event("dm:opened", WAIT)
        .await
        .expect("dm:opened reaches the other member");
    assert_eq!(opened["dm"]["id"], dm_id.as_str());
    assert_eq!(usernames(&opened["dm"]), ["asha", "bala"]);

    // A socket connected after it was opened is in it too; neither joined anything.
    let mut bala_late = app.socket(&bala).await;
    let mut asha_socket = app.socket(&asha).await;
    let sent = asha_socket
        .call(
            "send-message",
            &json!({ "channelId": dm_id, "content": "psst", "nonce": "n1" }),
        )
        .await;
    assert_eq!(sent["success"], true, "{sent}");
    for socket in [&mut bala_early, &mut bala_late] {
        let m = socket
            .event("new-message", WAIT)
            .await
            .expect("every socket of a member hears the conversation");
        assert_eq!(
            (m["content"].as_str(), m["channelId"].as_str()),
            (Some("psst"), Some(dm_id.as_str()))
        );
    }
    // Typing reaches the other member.
    let typed = asha_socket
        .call("typing-start", &json!({ "channelId": dm_id }))
        .await;
    assert_eq!(typed["success"], true, "{typed}");
    let typing = bala_late
        .event("user-typing", WAIT)
        .await
        .expect("typing reaches Bala");
    assert_eq!(typing["channelId"], dm_id.as_str());

    // `join-channel` on a conversation is answered like a channel's; `leave-channel` takes
    // that one socket out of it (Bala's other socket still hears it).
    let joined = bala_late
        .call("join-channel", &json!({ "channelId": dm_id }))
        .await;
    assert_eq!(joined["data"]["channelId"], dm_id.as_str(), "{joined}");
    let joined = bala_late
        .call("join-channel", &json!({ "channelId": general }))
        .await;
    assert_eq!(joined["success"], true, "{joined}");
    let left = bala_late
        .call("leave-channel", &json!({ "channelId": dm_id }))
        .await;
    assert_eq!(left["success"], true, "{left}");
    app.send_message(&asha, &dm_id, "after leaving").await;
    let m = bala_early
        .event("new-message", WAIT)
        .await
        .expect("the other socket still hears it");
    assert_eq!(m["content"], "after leaving");
    app.send_message(&asha, &general, "late marker").await;
    let heard = bala_late
        .events_before("new-message", |m| m["content"] == "late marker", WAIT)
        .await;
    assert!(
        heard
            .iter()
            .all(|(_, data)| data["content"] != "after leaving"),
        "{heard:?}"
    );

    // Chet, who follows a channel and is online, heard none of it.
    app.send_message(&asha, &general, "marker").await;
    let heard = chet_socket
        .events_before("new-message", |m| m["content"] == "marker", WAIT)
        .await;
    assert!(
        heard
            .iter()
            .all(|(name, data)| !name.starts_with("dm:") && data["channelId"] != dm_id.as_str()),
        "{heard:?}"
    );
    // And cannot follow it.
    let refused = chet_socket
        .call("join-channel", &json!({ "channelId": dm_id }))
        .await;
    assert_eq!(refused["error"]["code"], "PRIVATE_CHANNEL", "{refused}");
}
