//! Mentions (docs/api.md, "Mentions"): the server finds them, the members named hear
//! `mention` on their own sockets once, `@channel`/`@here` follow the size rule, and
//! `GET /api/mentions` lists them without leaking a channel.

use std::time::Duration;

use chai_tapri_sio::SioClient;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(3);

async fn post(app: &TestApp, user: &TestUser, channel: &str, content: &str) -> Value {
    app.send_message(user, channel, content).await
}

async fn edit(app: &TestApp, user: &TestUser, message: &Value, content: &str) -> Value {
    app.edit_message(user, message, content).await
}

/// The ids of the messages `socket` heard as `mention` before the mention of `marker`.
async fn mentions_before(socket: &mut SioClient, marker: &Value) -> Vec<Value> {
    socket
        .events_before("mention", |v| v["message"]["id"] == marker["id"], WAIT)
        .await
        .into_iter()
        .filter(|(name, _)| name == "mention")
        .map(|(_, v)| v["message"]["id"].clone())
        .collect()
}

/// The contents of `user`'s mentions, newest first.
async fn listed(app: &TestApp, user: &TestUser) -> Vec<String> {
    let (status, body) = json(app.get_as(&user.token, "/api/mentions").await).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn members_named_hear_it_once_on_their_own_sockets_and_others_stay_text() {
    let app = TestApp::spawn().await;
    let (ravi, meera, arjun, outsider) = (
        app.signup("ravi").await,
        app.signup("meera").await,
        app.signup("arjun").await,
        app.signup("outsider").await,
    );
    let general = app.create_channel(&ravi, "general", false).await;
    app.join(&meera, &general).await;
    app.join(&arjun, &general).await;
    // Nobody subscribes to the channel's room: a mention reaches a user's own sockets.
    let mut meera_socket = app.socket(&meera).await;
    let mut arjun_socket = app.socket(&arjun).await;
    let mut outsider_socket = app.socket(&outsider).await;
    let mut ravi_socket = app.socket(&ravi).await;

    let hello = post(
        &app,
        &ravi,
        &general,
        "hi @Meera and @meera, @outsider, @nobody and @ravi: mail me@example.com",
    )
    .await;
    assert_eq!(
        hello["mentions"],
        json!([meera.id, ravi.id]),
        "members only, once each, in order"
    );
    assert_eq!(hello["mentionsChannel"], false);
    let heard = meera_socket.event("mention", WAIT).await.expect("mention");
    assert_eq!(heard["message"]["id"], hello["id"]);
    assert_eq!(heard["message"]["mentions"], hello["mentions"]);
    // A read shows the same.
    let (_, page) = json(
        app.get_as(&arjun.token, &format!("/api/channels/{general}/messages"))
            .await,
    )
    .await;
    assert_eq!(
        page["data"]["messages"][0]["mentions"], hello["mentions"],
        "{page}"
    );

    // An edit notifies only whom it newly names.
    let edited = edit(&app, &ravi, &hello, "@meera and @arjun, look").await;
    assert_eq!(edited["mentions"], json!([meera.id, arjun.id]), "{edited}");
    let marker = post(&app, &ravi, &general, "@meera @arjun marker").await;
    assert_eq!(
        mentions_before(&mut arjun_socket, &marker).await,
        [hello["id"].clone()],
        "arjun: the edit, then the marker"
    );
    assert!(
        mentions_before(&mut meera_socket, &marker).await.is_empty(),
        "meera was named before the edit"
    );

    // The outsider and the sender heard nothing; each hears their own marker.
    let dm = app.open_dm(&ravi, &outsider).await;
    let private_marker = post(&app, &ravi, &dm, "@outsider marker").await;
    assert!(
        mentions_before(&mut outsider_socket, &private_marker)
            .await
            .is_empty()
    );
    let back = post(&app, &meera, &general, "@ravi marker").await;
    assert!(mentions_before(&mut ravi_socket, &back).await.is_empty());

    assert_eq!(
        listed(&app, &meera).await,
        ["@meera @arjun marker", "@meera and @arjun, look"]
    );
    assert_eq!(listed(&app, &outsider).await, ["@outsider marker"]);
    assert!(
        !listed(&app, &ravi)
            .await
            .contains(&"@meera and @arjun, look".to_owned()),
        "a user's own message is not their mention"
    );
}

#[tokio::test]
async fn channel_wide_mentions_follow_the_size_rule_and_here_reaches_those_online() {
    let app = TestApp::spawn_with(|v| {
        v.insert("MENTION_ALL_MAX_MEMBERS".into(), "2".into());
    })
    .await;
    let (ravi, meera, arjun) = (
        app.signup("ravi").await,
        app.signup("meera").await,
        app.signup("arjun").await,
    );
    let general = app.create_channel(&ravi, "general", false).await;
    app.join(&meera, &general).await;
    app.join(&arjun, &general).await;
    let mut meera_socket = app.socket(&meera).await;
    // Online long before the @here in a conversation below (a socket counts as online once
    // its connect handler has run, a moment after the client hears it is connected).
    let mut ravi_socket = app.socket(&ravi).await;
    // Arjun is offline.

    // Three members, more than 2: a member's @channel is text.
    let plain = post(&app, &meera, &general, "@channel anyone?").await;
    assert_eq!(plain["mentionsChannel"], false);
    // The owner's is not.
    let all = post(&app, &ravi, &general, "@channel standup now").await;
    assert_eq!(all["mentionsChannel"], true);
    assert_eq!(all["mentions"], json!([]));
    let here = post(&app, &ravi, &general, "@here who is around?").await;
    assert_eq!(here["mentionsChannel"], true);
    let heard: Vec<Value> = mentions_before(&mut meera_socket, &here).await;
    assert_eq!(heard, [all["id"].clone()]);
    // Arjun was offline for @here: his next socket hears only what comes next.
    let mut arjun_socket = app.socket(&arjun).await;
    let marker = post(&app, &ravi, &general, "@arjun marker").await;
    assert!(mentions_before(&mut arjun_socket, &marker).await.is_empty());
    // Both channel-wide messages list as his mentions all the same: he is a member.
    assert_eq!(
        listed(&app, &arjun).await,
        [
            "@arjun marker",
            "@here who is around?",
            "@channel standup now"
        ]
    );

    // In a direct conversation anyone notifies with them.
    let dm = app.open_dm(&meera, &ravi).await;
    let ping = post(&app, &meera, &dm, "@here ping").await;
    assert_eq!(ping["mentionsChannel"], true);
    let heard = ravi_socket.event("mention", WAIT).await.expect("mention");
    assert_eq!(heard["message"]["id"], ping["id"]);
}

#[tokio::test]
async fn a_storm_of_names_is_capped_and_a_channel_left_stops_listing() {
    let app = TestApp::spawn().await;
    let ravi = app.signup("ravi").await;
    let secret = app.create_channel(&ravi, "secret", true).await;
    let mut names = Vec::new();
    for i in 0..55 {
        let user = app.signup(&format!("member{i:02}")).await;
        let (status, body) = json(
            app.send_as(
                Method::POST,
                &ravi.token,
                &format!("/api/channels/{secret}/members"),
                &json!({ "userId": user.id }),
            )
            .await,
        )
        .await;
        assert!(status == 200 || status == 201, "{body}");
        names.push(user);
    }
    let content: String = names
        .iter()
        .map(|u| format!("@{} ", u.username))
        .chain((0..300).map(|i| format!("@ghost{i} ")))
        .collect();
    let storm = post(&app, &ravi, &secret, &content).await;
    let mentioned: Vec<&str> = storm["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let first_fifty: Vec<&str> = names[..50].iter().map(|u| u.id.as_str()).collect();
    assert_eq!(mentioned, first_fifty, "the first 50 names, in order");
    assert_eq!(listed(&app, &names[0]).await.len(), 1);
    assert!(listed(&app, &names[54]).await.is_empty(), "past the cap");

    // Once out of the private channel, its mentions are no longer listed.
    let (status, _) = json(
        app.post_as(&names[0], &format!("/api/channels/{secret}/leave"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(listed(&app, &names[0]).await.is_empty());

    for query in ["cursor=zz", "limit=0", "cursor=6a3a"] {
        assert_error(
            app.get_as(&ravi.token, &format!("/api/mentions?{query}"))
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

#[tokio::test]
async fn mentions_page_newest_first_with_a_cursor() {
    let app = TestApp::spawn().await;
    let (ravi, meera) = (app.signup("ravi").await, app.signup("meera").await);
    let general = app.create_channel(&ravi, "general", false).await;
    app.join(&meera, &general).await;
    for n in 1..=3 {
        post(&app, &ravi, &general, &format!("@meera number {n}")).await;
    }
    let (_, first) = json(app.get_as(&meera.token, "/api/mentions?limit=2").await).await;
    let contents = |page: &Value| -> Vec<String> {
        page["data"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&first), ["@meera number 3", "@meera number 2"]);
    let cursor = first["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, rest) = json(
        app.get_as(
            &meera.token,
            &format!("/api/mentions?limit=2&cursor={cursor}"),
        )
        .await,
    )
    .await;
    assert_eq!(contents(&rest), ["@meera number 1"]);
    assert_eq!(rest["data"]["pagination"]["hasMore"], false);
}
