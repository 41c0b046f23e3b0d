//! The live events of conversations (docs/api.md, "Conversations") through two nodes on
//! one PostgreSQL and one Redis: what is done through one node is heard on a socket of the
//! other.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, json};

const WAIT: Duration = Duration::from_secs(5);

async fn ok(response: reqwest::Response) -> Value {
    let (status, body) = json(response).await;
    assert!((200..300).contains(&status), "{status}: {body}");
    body["data"].clone()
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: run by the second pass (scripts/test.sh)"]
async fn dms_threads_reactions_pins_mentions_and_reads_are_heard_across_nodes() {
    crate::helpers::require_database_url();
    crate::helpers::require_redis_url();
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in(a.dir.clone(), a.vars.clone()).await;
    let ravi = a.signup("ravi").await;
    let meera = a.signup("meera").await;
    // Meera listens on node b; everything below is done through node a.
    let mut far = b.socket(&meera).await;

    let dm = ok(a
        .send_as(
            Method::POST,
            &ravi.token,
            "/api/dms",
            &json!({ "userIds": [meera.id] }),
        )
        .await)
    .await["dm"]
        .clone();
    let opened = far.event("dm:opened", WAIT).await.expect("dm:opened");
    assert_eq!(opened["dm"]["id"], dm["id"]);
    let dm = dm["id"].as_str().unwrap().to_owned();

    let root = a.send_message(&ravi, &dm, "@meera a question").await;
    let mention = far.event("mention", WAIT).await.expect("mention");
    assert_eq!(mention["message"]["id"], root["id"]);
    assert_eq!(mention["message"]["mentions"], json!([meera.id]));

    let reply = ok(a
        .send_as(
            Method::POST,
            &ravi.token,
            &format!("/api/channels/{dm}/messages"),
            &json!({ "content": "and a detail", "parentId": root["id"] }),
        )
        .await)
    .await["message"]
        .clone();
    let updated = far
        .event("thread-updated", WAIT)
        .await
        .expect("thread-updated");
    assert_eq!(
        updated,
        json!({
            "messageId": root["id"],
            "channelId": dm,
            "replyCount": 1,
            "lastReplyAt": reply["createdAt"],
            "participants": [ravi.id],
        })
    );

    // Meera reads on node a; her socket on node b clears its badges.
    let read = ok(a
        .send_as(
            Method::POST,
            &meera.token,
            &format!("/api/channels/{dm}/read"),
            &json!({}),
        )
        .await)
    .await;
    // The newest message of the conversation is the reply.
    assert_eq!(read["lastReadId"], reply["id"]);
    let heard = far.event("channel:read", WAIT).await.expect("channel:read");
    assert_eq!(heard, read);
    let read = ok(a
        .send_as(
            Method::POST,
            &meera.token,
            &format!("/api/messages/{}/thread/read", root["id"].as_str().unwrap()),
            &json!({}),
        )
        .await)
    .await;
    assert_eq!(read["lastReadId"], reply["id"]);
    let heard = far.event("thread:read", WAIT).await.expect("thread:read");
    assert_eq!(heard, read);

    let id = root["id"].as_str().unwrap();
    ok(a.send_as(
        Method::PUT,
        &ravi.token,
        &format!("/api/messages/{id}/reactions/%3Atada%3A"),
        &json!({}),
    )
    .await)
    .await;
    let reacted = far
        .event("reaction-added", WAIT)
        .await
        .expect("reaction-added");
    assert_eq!(
        reacted,
        json!({ "messageId": id, "channelId": dm, "emoji": ":tada:", "userId": ravi.id })
    );

    ok(a.send_as(
        Method::PUT,
        &ravi.token,
        &format!("/api/messages/{id}/pin"),
        &json!({}),
    )
    .await)
    .await;
    let pinned = far
        .event("message-pinned", WAIT)
        .await
        .expect("message-pinned");
    assert_eq!(pinned["messageId"], id);
    assert_eq!(pinned["pinnedBy"], json!(ravi.id));

    ok(a.delete_as(&ravi, &format!("/api/messages/{id}")).await).await;
    let deleted = far
        .event("message-deleted", WAIT)
        .await
        .expect("message-deleted");
    assert_eq!(
        deleted,
        json!({ "messageId": id, "channelId": dm, "tombstone": true })
    );
    // And node b reads what node a wrote.
    let thread = ok(b
        .get_as(&meera.token, &format!("/api/messages/{id}/thread"))
        .await)
    .await;
    assert!(thread["root"]["deletedAt"].is_string());
    assert_eq!(thread["messages"][0]["id"], reply["id"]);
}
