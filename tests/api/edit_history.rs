//! Edit history (docs/api.md, "Edit history"): every edit keeps the content it replaced;
//! whoever may read a message reads its versions, oldest first; they go with the message.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

/// Every version of `message` as `user` reads them, page by page of `limit`: the contents
/// and the number of pages.
async fn versions(
    app: &TestApp,
    user: &TestUser,
    message: &Value,
    limit: u32,
) -> (Vec<String>, usize) {
    let id = message["id"].as_str().unwrap();
    let (mut contents, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut path = format!("/api/messages/{id}/history?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = json(app.get_as(&user.token, &path).await).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for v in body["data"]["versions"].as_array().unwrap() {
            contents.push(v["content"].as_str().unwrap().to_owned());
            assert!(v["at"].as_str().unwrap().ends_with('Z'), "{v}");
        }
        match body["data"]["pagination"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert_eq!(body["data"]["pagination"]["hasMore"], false);
                return (contents, pages);
            }
        }
        assert!(pages < 50, "the pages never end");
    }
}

/// The versions the store still holds of message `id`.
async fn stored_versions(
    app: &TestApp,
    id: uuid::Uuid,
) -> Vec<chai_tapri::models::message::VersionRow> {
    app.state.store.list_versions(id, None, 10).await.unwrap()
}

#[tokio::test]
async fn every_edit_keeps_what_it_replaced_and_readers_page_through_the_versions() {
    let app = TestApp::spawn().await;
    let (author, reader) = (app.signup("author").await, app.signup("reader").await);
    let channel = app.create_channel(&author, "edits", false).await;
    let message = app.send_message(&author, &channel, "first").await;

    // Never edited: the one version is the message as written, at its creation.
    let (one, _) = versions(&app, &reader, &message, 50).await;
    assert_eq!(one, ["first"]);
    let (_, body) = json(
        app.get_as(
            &reader.token,
            &format!("/api/messages/{}/history", message["id"].as_str().unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(body["data"]["versions"][0]["at"], message["createdAt"]);

    let mut last = Value::Null;
    for text in ["second", "third", "fourth", "fifth"] {
        last = app.edit_message(&author, &message, text).await;
    }
    let (all, pages) = versions(&app, &reader, &message, 50).await;
    assert_eq!(all, ["first", "second", "third", "fourth", "fifth"]);
    assert_eq!(pages, 1);
    // Two at a time: the same versions, in three pages, the current one last.
    let (paged, pages) = versions(&app, &reader, &message, 2).await;
    assert_eq!(paged, all);
    assert_eq!(pages, 3);
    // Four at a time: the stored four fill the first page, the current one is the second.
    let (paged, pages) = versions(&app, &reader, &message, 4).await;
    assert_eq!((paged, pages), (all.clone(), 2));
    // The last version is the message as it is now, at its `editedAt`.
    let (_, body) = json(
        app.get_as(
            &reader.token,
            &format!("/api/messages/{}/history", message["id"].as_str().unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(body["data"]["versions"][4]["at"], last["editedAt"]);
}

#[tokio::test]
async fn history_follows_the_reading_rule_and_goes_with_its_message() {
    let app = TestApp::spawn().await;
    let (owner, outsider) = (app.signup("owner").await, app.signup("outsider").await);
    let private = app.create_channel(&owner, "hushed", true).await;
    let secret = app.send_message(&owner, &private, "secret").await;
    app.edit_message(&owner, &secret, "still secret").await;
    let path = format!("/api/messages/{}/history", secret["id"].as_str().unwrap());
    let body = assert_error(
        app.get_as(&outsider.token, &path).await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    assert!(!body.to_string().contains("secret"), "{body}");

    // Deleted: the history goes with it.
    let deleted = app
        .delete_as(
            &owner,
            &format!("/api/messages/{}", secret["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(deleted.status(), 200);
    assert_error(
        app.get_as(&owner.token, &path).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    let secret_id = uuid::Uuid::parse_str(secret["id"].as_str().unwrap()).unwrap();
    let stored = stored_versions(&app, secret_id).await;
    assert!(stored.is_empty(), "{stored:?}");

    // A root deleted with replies stays as a tombstone, without its history.
    let public = app.create_channel(&owner, "open", false).await;
    let root = app.send_message(&owner, &public, "root v1").await;
    app.edit_message(&owner, &root, "root v2").await;
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &owner.token,
            &format!("/api/channels/{public}/messages"),
            &json!({ "content": "a reply", "parentId": root["id"] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let deleted = app
        .delete_as(
            &owner,
            &format!("/api/messages/{}", root["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(deleted.status(), 200);
    let root_path = format!("/api/messages/{}/history", root["id"].as_str().unwrap());
    assert_error(
        app.get_as(&owner.token, &root_path).await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    let root_id = uuid::Uuid::parse_str(root["id"].as_str().unwrap()).unwrap();
    let stored = stored_versions(&app, root_id).await;
    assert!(
        stored.is_empty(),
        "the tombstone kept its history: {stored:?}"
    );
    // An edit that reaches the store after the delete (it lost the race for the channel's
    // row) finds nothing to edit and keeps no version.
    let late = app
        .state
        .store
        .update_message(root_id, "too late", chrono::Utc::now(), &Default::default())
        .await
        .unwrap();
    assert!(late.is_none(), "{late:?}");
    let stored = stored_versions(&app, root_id).await;
    assert!(
        stored.is_empty(),
        "the late edit kept a version: {stored:?}"
    );

    // Nonsense ids, limits and cursors are clear errors.
    assert_error(
        app.get_as(&owner.token, "/api/messages/not-an-id/history")
            .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
    let other = app.send_message(&owner, &public, "other").await;
    let other_path = format!("/api/messages/{}/history", other["id"].as_str().unwrap());
    for query in ["?limit=0", "?limit=x", "?cursor=zz", "?cursor=74"] {
        assert_error(
            app.get_as(&owner.token, &format!("{other_path}{query}"))
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
    assert_error(
        app.get_as(
            &owner.token,
            &format!("/api/messages/{}/history", uuid::Uuid::now_v7()),
        )
        .await,
        404,
        "MESSAGE_NOT_FOUND",
    )
    .await;
}
