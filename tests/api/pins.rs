//! Pins (docs/api.md, "Pins"): a channel's owner and admins pin, any member of a direct
//! conversation does; idempotent, heard live, at most 100 per channel.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

async fn pin(app: &TestApp, user: &TestUser, message: &str, method: Method) -> reqwest::Response {
    app.send_as(
        method,
        &user.token,
        &format!("/api/messages/{message}/pin"),
        &json!({}),
    )
    .await
}

async fn pinned(app: &TestApp, user: &TestUser, channel: &str) -> Vec<String> {
    let (status, body) = json(
        app.get_as(&user.token, &format!("/api/channels/{channel}/pins"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

/// Message `id` as the newest page of `channel` shows it.
async fn on_newest_page(app: &TestApp, user: &TestUser, channel: &str, id: &str) -> Value {
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
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not on the newest page: {body}"))
}

#[tokio::test]
async fn owners_and_admins_pin_once_everyone_who_reads_sees_it_and_the_room_hears_it() {
    let app = TestApp::spawn().await;
    let (owner, member, outsider) = (
        app.signup("owner").await,
        app.signup("member").await,
        app.signup("outsider").await,
    );
    let general = app.create_channel(&owner, "general", false).await;
    let secret = app.create_channel(&owner, "secret", true).await;
    app.post_as(&member, &format!("/api/channels/{general}/join"))
        .await;
    let mut socket = app.socket(&member).await;
    let ack = socket
        .call("join-channel", &json!({ "channelId": general }))
        .await;
    assert_eq!(ack["success"], true);
    let m = app.send_message(&owner, &general, "the plan").await;
    let id = m["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (m["pinnedAt"].clone(), m["pinnedBy"].clone()),
        (Value::Null, Value::Null)
    );
    // The newest page is kept: a pin must show on it all the same.
    assert_eq!(
        on_newest_page(&app, &member, &general, &id).await["pinnedAt"],
        Value::Null
    );
    let hidden = app.send_message(&owner, &secret, "hidden").await;

    for (who, message, code) in [
        (&member, &id, "INSUFFICIENT_ROLE"),
        (&outsider, &id, "NOT_CHANNEL_MEMBER"),
        (
            &outsider,
            &hidden["id"].as_str().unwrap().to_owned(),
            "PRIVATE_CHANNEL",
        ),
    ] {
        assert_error(pin(&app, who, message, Method::PUT).await, 403, code).await;
    }
    assert_error(
        pin(&app, &owner, &uuid::Uuid::now_v7().to_string(), Method::PUT).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    assert_error(
        pin(&app, &owner, "nope", Method::PUT).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;

    let (status, body) = json(pin(&app, &owner, &id, Method::PUT).await).await;
    assert_eq!(status, 200, "{body}");
    let at = body["data"]["message"]["pinnedAt"].clone();
    assert!(at.is_string(), "{body}");
    assert_eq!(body["data"]["message"]["pinnedBy"], owner.id.as_str());
    let heard = socket
        .event("message-pinned", WAIT)
        .await
        .expect("the room hears the pin");
    assert_eq!(
        heard,
        json!({ "messageId": id, "channelId": general, "pinnedAt": at, "pinnedBy": owner.id })
    );
    assert_eq!(
        on_newest_page(&app, &member, &general, &id).await["pinnedAt"],
        at
    );
    // Anyone who may read the channel reads its pins.
    assert_eq!(pinned(&app, &outsider, &general).await, ["the plan"]);
    assert_error(
        app.get_as(&outsider.token, &format!("/api/channels/{secret}/pins"))
            .await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;

    // Again: the same pin, and nothing announced.
    let (_, again) = json(pin(&app, &owner, &id, Method::PUT).await).await;
    assert_eq!(again["data"]["message"]["pinnedAt"], at);
    app.send_message(&owner, &general, "marker 1").await;
    let before = socket
        .events_before("new-message", |m| m["content"] == "marker 1", WAIT)
        .await;
    assert!(
        before.iter().all(|(n, _)| n != "message-pinned"),
        "{before:?}"
    );

    // An admin may unpin it; the room hears that once too.
    let r = app
        .send_as(
            Method::POST,
            &owner.token,
            &format!("/api/channels/{general}/members"),
            &json!({ "userId": member.id, "role": "admin" }),
        )
        .await;
    assert!(r.status().is_success());
    let (status, body) = json(pin(&app, &member, &id, Method::DELETE).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["message"]["pinnedAt"], Value::Null);
    let heard = socket
        .event("message-unpinned", WAIT)
        .await
        .expect("the room hears the unpin");
    assert_eq!(
        heard,
        json!({ "messageId": id, "channelId": general, "pinnedAt": null, "pinnedBy": null })
    );
    let (status, _) = json(pin(&app, &member, &id, Method::DELETE).await).await;
    assert_eq!(status, 200);
    app.send_message(&owner, &general, "marker 2").await;
    let before = socket
        .events_before("new-message", |m| m["content"] == "marker 2", WAIT)
        .await;
    assert!(
        before.iter().all(|(n, _)| n != "message-unpinned"),
        "{before:?}"
    );
    assert!(pinned(&app, &owner, &general).await.is_empty());
    assert_eq!(
        on_newest_page(&app, &member, &general, &id).await["pinnedAt"],
        Value::Null
    );
}

#[tokio::test]
async fn a_channel_holds_at_most_100_pins_and_either_member_of_a_conversation_pins() {
    let app = TestApp::spawn().await;
    let (asha, bala) = (app.signup("asha").await, app.signup("bala").await);
    let (_, dm) = json(
        app.send_as(
            Method::POST,
            &asha.token,
            "/api/dms",
            &json!({ "userIds": [bala.id] }),
        )
        .await,
    )
    .await;
    let dm = dm["data"]["dm"]["id"].as_str().unwrap().to_owned();
    let said = app.send_message(&asha, &dm, "remember this").await;
    let (status, body) =
        json(pin(&app, &bala, said["id"].as_str().unwrap(), Method::PUT).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pinned(&app, &asha, &dm).await, ["remember this"]);

    let channel = app.create_channel(&asha, "notes", false).await;
    let mut ids = Vec::new();
    for i in 0..101 {
        let m = app
            .send_message(&asha, &channel, &format!("note {i}"))
            .await;
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..100] {
        let (status, body) = json(pin(&app, &asha, id, Method::PUT).await).await;
        assert_eq!(status, 200, "{body}");
    }
    let refused = assert_error(
        pin(&app, &asha, &ids[100], Method::PUT).await,
        409,
        "LIMIT_REACHED",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100"),
        "{refused}"
    );
    // Pinning one that is pinned is no new pin; unpinning one makes room.
    let (status, _) = json(pin(&app, &asha, &ids[5], Method::PUT).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(pin(&app, &asha, &ids[0], Method::DELETE).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(pin(&app, &asha, &ids[100], Method::PUT).await).await;
    assert_eq!(status, 200);
    let list = pinned(&app, &asha, &channel).await;
    assert_eq!(list.len(), 100);
    assert_eq!(list[0], "note 100", "the most recently pinned first");
    assert!(!list.contains(&"note 0".to_owned()));
    // The conversation's pin did not count toward the channel's.
    assert_eq!(pinned(&app, &bala, &dm).await.len(), 1);
}
