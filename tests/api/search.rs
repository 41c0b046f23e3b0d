//! Search (docs/api.md, "Search"): what a query finds, in every script, with the ranges to
//! highlight; only what the caller may read now; edits and deletes seen at once; every bad
//! input a clear error or an empty result.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

/// `data` of `GET /api/search?{query}` as `user`.
async fn search(app: &TestApp, user: &TestUser, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params("http://x/api/search", query).unwrap();
    let path = format!("/api/search?{}", url.query().unwrap());
    let (status, body) = json(app.get_as(&user.token, &path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"].clone()
}

/// The contents found for `q`, newest first.
async fn found(app: &TestApp, user: &TestUser, q: &str) -> Vec<String> {
    contents(&search(app, user, &[("q", q), ("limit", "100")]).await)
}

fn contents(data: &Value) -> Vec<String> {
    data["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["content"].as_str().unwrap().to_owned())
        .collect()
}

/// The `[start, end]` ranges of the first result.
fn ranges(data: &Value) -> Vec<(u64, u64)> {
    data["results"][0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn words_phrases_prefixes_and_every_script_are_found_newest_first_with_their_ranges() {
    let app = TestApp::spawn().await;
    let asha = app.signup("asha").await;
    let channel = app.create_channel(&asha, "general", false).await;
    let texts = [
        "We redeployed the API at noon",
        "Release notes for v1.2 are out",
        "deploying v1.3 now 🚀🚀",
        "notes on the release",
        "新版本发布了，请查看",
        "明日リリースします",
        "오늘 배포합니다",
        "เราจะปล่อยเวอร์ชันใหม่",
        "Привет, команда",
        "שלום לכולם",
        "مرحبا بالفريق",
        "Η ΟΔΟΣ είναι κλειστή",
        "İstanbul'da buluşalım",
    ];
    for text in texts {
        app.send_message(&asha, &channel, text).await;
    }
    // A substring, case-insensitively; all words must match; newest first.
    assert_eq!(
        found(&app, &asha, "DEPLOY").await,
        ["deploying v1.3 now 🚀🚀", "We redeployed the API at noon"]
    );
    assert_eq!(found(&app, &asha, "deploy noon").await, [texts[0]]);
    // A prefix only where a word starts; a phrase in its order.
    assert_eq!(found(&app, &asha, "deplo*").await, [texts[2]]);
    assert_eq!(found(&app, &asha, "\"release notes\"").await, [texts[1]]);
    assert_eq!(
        found(&app, &asha, "release notes").await,
        [texts[3], texts[1]]
    );
    // Punctuation is text; emoji are text.
    assert_eq!(found(&app, &asha, "v1.2").await, [texts[1]]);
    assert_eq!(found(&app, &asha, "🚀🚀").await, [texts[2]]);
    // Every script, by a substring inside a run of letters without spaces.
    for (q, text) in [
        ("版本发布", texts[4]),
        ("発布", ""),
        ("リリース", texts[5]),
        ("배포", texts[6]),
        ("ปล่อย", texts[7]),
        ("ПРИВЕТ", texts[8]),
        ("שלום", texts[9]),
        ("مرحبا", texts[10]),
        ("οδος", texts[11]),
        ("ΟΔΟΣ ΕΊΝΑΙ", texts[11]),
        ("istanbul", texts[12]),
        ("İSTANBUL'DA", texts[12]),
    ] {
        let expected: Vec<&str> = if text.is_empty() { vec![] } else { vec![text] };
        assert_eq!(found(&app, &asha, q).await, expected, "{q}");
    }
    // Ranges are UTF-16 code units of the content, in text order.
    let data = search(&app, &asha, &[("q", "now deploying")]).await;
    assert_eq!(ranges(&data), [(0, 9), (15, 18)]);
    let one = app.get_as(&asha.token, "/api/search?q=%F0%9F%9A%80").await;
    assert_error(one, 400, "VALIDATION_ERROR").await;
    let data = search(&app, &asha, &[("q", "🚀🚀")]).await;
    assert_eq!(ranges(&data), [(19, 23)]);
    let data = search(&app, &asha, &[("q", "版本发布")]).await;
    assert_eq!(ranges(&data), [(1, 5)]);
    // A result says where it was said, and carries the message as history shows it.
    let first = &data["results"][0];
    assert_eq!(
        first["channel"],
        json!({ "id": channel, "name": "general", "isDm": false })
    );
    assert_eq!(first["message"]["sender"]["username"], "asha");
    assert_eq!(first["message"]["channelId"], channel.as_str());
}

#[tokio::test]
async fn filters_narrow_by_sender_channel_and_time_and_pages_continue_without_gaps() {
    let app = TestApp::spawn().await;
    let (asha, ravi) = (app.signup("asha").await, app.signup("ravi").await);
    let general = app.create_channel(&asha, "general", false).await;
    let random = app.create_channel(&ravi, "random", false).await;
    app.join(&ravi, &general).await;
    let first = app.send_message(&asha, &general, "build one green").await;
    app.send_message(&ravi, &general, "build two green").await;
    app.send_message(&ravi, &random, "build three green").await;
    assert_eq!(
        found(&app, &asha, "build from:ravi").await,
        ["build three green", "build two green"]
    );
    assert_eq!(
        found(&app, &asha, "build from:@RAVI in:#general").await,
        ["build two green"]
    );
    // Filters alone list every message they allow.
    assert_eq!(found(&app, &asha, "in:random").await, ["build three green"]);
    let data = search(
        &app,
        &asha,
        &[("q", "green"), ("channelId", &random), ("from", "ravi")],
    )
    .await;
    assert_eq!(contents(&data), ["build three green"]);
    // A sender or channel nobody has is an empty result; two different senders too.
    assert!(found(&app, &asha, "build from:nobody").await.is_empty());
    assert!(found(&app, &asha, "build in:nowhere").await.is_empty());
    let data = search(&app, &asha, &[("q", "build from:asha"), ("from", "ravi")]).await;
    assert!(contents(&data).is_empty());
    // Time: `after` includes, `before` excludes; a date is its 00:00 UTC.
    let sent = first["createdAt"].as_str().unwrap();
    let data = search(&app, &asha, &[("q", "build"), ("before", sent)]).await;
    assert!(contents(&data).is_empty(), "{data}");
    let data = search(&app, &asha, &[("q", "build"), ("after", sent)]).await;
    assert_eq!(contents(&data).len(), 3);
    let data = search(&app, &asha, &[("q", "build"), ("before", "2000-01-01")]).await;
    assert!(contents(&data).is_empty());
    let data = search(&app, &asha, &[("q", "build"), ("after", "2000-01-01")]).await;
    assert_eq!(contents(&data).len(), 3);

    // Pages: 25 matches in pages of 10, newest first, nothing missed or doubled.
    let mut sent = Vec::new();
    for i in 0..25 {
        sent.push(format!("page item {i}"));
        app.send_message(&asha, &general, &sent[i]).await;
    }
    sent.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", "page item"), ("limit", "10")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let data = search(&app, &asha, &query).await;
        seen.extend(contents(&data));
        match data["pagination"]["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(data["pagination"]["hasMore"], true);
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(data["pagination"]["hasMore"], false);
                break;
            }
        }
    }
    assert_eq!(seen, sent);
    // The default page is 20.
    let data = search(&app, &asha, &[("q", "page item")]).await;
    assert_eq!(contents(&data).len(), 20);
}

#[tokio::test]
async fn an_edit_replaces_what_is_found_and_a_delete_removes_it_at_once() {
    let app = TestApp::spawn().await;
    let asha = app.signup("asha").await;
    let channel = app.create_channel(&asha, "general", false).await;
    let message = app
        .send_message(&asha, &channel, "the quarterly roadmap")
        .await;
    let root = app
        .send_message(&asha, &channel, "thread about budgets")
        .await;
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &asha.token,
            &format!("/api/channels/{channel}/messages"),
            &json!({ "content": "a reply on budgets", "parentId": root["id"] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        found(&app, &asha, "roadmap").await,
        ["the quarterly roadmap"]
    );
    app.edit_message(&asha, &message, "the yearly plan").await;
    assert!(found(&app, &asha, "roadmap").await.is_empty());
    assert_eq!(found(&app, &asha, "yearly").await, ["the yearly plan"]);
    // Replies are found; a deleted root with replies stays as a tombstone, never found.
    assert_eq!(
        found(&app, &asha, "budgets").await,
        ["a reply on budgets", "thread about budgets"]
    );
    let id = root["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&asha, &format!("/api/messages/{id}"))
            .await
            .status(),
        200
    );
    assert_eq!(found(&app, &asha, "budgets").await, ["a reply on budgets"]);
    assert!(
        found(&app, &asha, "in:general")
            .await
            .iter()
            .all(|c| !c.is_empty())
    );
    let id = message["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&asha, &format!("/api/messages/{id}"))
            .await
            .status(),
        200
    );
    assert!(found(&app, &asha, "yearly").await.is_empty());
    // A deleted channel's messages go with it.
    assert_eq!(
        app.delete_as(&asha, &format!("/api/channels/{channel}"))
            .await
            .status(),
        200
    );
    assert!(found(&app, &asha, "budgets").await.is_empty());
}

#[tokio::test]
async fn only_what_the_caller_may_read_now_is_found() {
    let app = TestApp::spawn().await;
    let (asha, ravi, meera) = (
        app.signup("asha").await,
        app.signup("ravi").await,
        app.signup("meera").await,
    );
    let open = app.create_channel(&asha, "open", false).await;
    let secret = app.create_channel(&asha, "secret", true).await;
    app.send_message(&asha, &open, "falcon in the open").await;
    app.send_message(&asha, &secret, "falcon in secret").await;
    let dm = app.open_dm(&asha, &ravi).await;
    app.send_message(&asha, &dm, "falcon between us").await;

    // A public channel is found by anyone, joined or not; a private one and a DM by
    // their members only, even asked for by id or name.
    assert_eq!(found(&app, &meera, "falcon").await, ["falcon in the open"]);
    let data = search(&app, &meera, &[("q", "falcon"), ("channelId", &secret)]).await;
    assert!(contents(&data).is_empty());
    assert!(found(&app, &meera, "falcon in:secret").await.is_empty());
    let data = search(&app, &meera, &[("q", "falcon"), ("channelId", &dm)]).await;
    assert!(contents(&data).is_empty());
    assert_eq!(
        found(&app, &ravi, "falcon").await,
        ["falcon between us", "falcon in the open"]
    );
    let data = search(&app, &asha, &[("q", "between")]).await;
    assert_eq!(
        data["results"][0]["channel"],
        json!({ "id": dm, "name": null, "isDm": true })
    );

    // A member finds the private channel; after leaving, nothing of it — not even what
    // they once read; after being removed, the same.
    let add = |user: &TestUser| json!({ "userId": user.id });
    for user in [&ravi, &meera] {
        let (status, body) = json(
            app.send_as(
                Method::POST,
                &asha.token,
                &format!("/api/channels/{secret}/members"),
                &add(user),
            )
            .await,
        )
        .await;
        assert!(status == 200 || status == 201, "{body}");
    }
    assert_eq!(
        found(&app, &meera, "falcon in:secret").await,
        ["falcon in secret"]
    );
    assert_eq!(found(&app, &ravi, "secret").await, ["falcon in secret"]);
    let left = app
        .post_as(&meera, &format!("/api/channels/{secret}/leave"))
        .await;
    assert_eq!(left.status(), 200);
    assert!(found(&app, &meera, "secret").await.is_empty());
    let removed = app
        .delete_as(
            &asha,
            &format!("/api/channels/{secret}/members/{}", ravi.id),
        )
        .await;
    assert_eq!(removed.status(), 200);
    assert!(found(&app, &ravi, "secret").await.is_empty());
    assert_eq!(
        found(&app, &ravi, "falcon").await.len(),
        2,
        "the DM and the open channel"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_error_or_an_empty_result() {
    let app = TestApp::spawn().await;
    let asha = app.signup("asha").await;
    let channel = app.create_channel(&asha, "general", false).await;
    app.send_message(&asha, &channel, "a \"quoted\" 50% _done_ ...")
        .await;
    let get = |query: String| {
        let app = &app;
        let token = asha.token.clone();
        async move { app.get_as(&token, &format!("/api/search?{query}")).await }
    };
    // Nothing to search for, too long, malformed filters: 400 on the field.
    for (query, field) in [
        ("".to_owned(), "q"),
        ("q=".to_owned(), "q"),
        ("q=%20%20".to_owned(), "q"),
        ("q=*".to_owned(), "q"),
        ("q=a".to_owned(), "q"),
        ("q=%22%22".to_owned(), "q"),
        (format!("q={}", "x".repeat(10_000)), "q"),
        ("q=done&channelId=nope".to_owned(), "channelId"),
        ("q=done&before=yesterday".to_owned(), "before"),
        ("q=done&after=2026-13-40".to_owned(), "after"),
        ("q=done&limit=0".to_owned(), "limit"),
        ("q=done&cursor=zz".to_owned(), "cursor"),
    ] {
        let body = assert_error(get(query.clone()).await, 400, "VALIDATION_ERROR").await;
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{query}: {body}");
    }
    // A cursor of another list is refused.
    let other = chai_tapri::models::page::encode_cursor(
        chai_tapri::models::page::CursorKind::Mentions,
        "1",
    );
    assert_error(
        get(format!("q=done&cursor={other}")).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // Punctuation, LIKE's wildcards, quotes and stop words are text like any other.
    for (q, hits) in [
        ("...", 1),
        ("50%", 1),
        ("_done_", 1),
        ("%25%25%25", 0),
        ("___", 0),
        // An unclosed quote runs to the end of `q`.
        ("\"quoted", 1),
        ("\"quoted 50%", 0),
        ("\"\\\"quoted\\\"\"", 0),
        ("\"quoted\" 50%", 1),
        ("the", 0),
        ("%22unbalanced%20quote", 0),
    ] {
        let (status, body) =
            json(get(format!("q={}", q.replace('%', "%25").replace(' ', "%20"))).await).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(
            body["data"]["results"].as_array().unwrap().len(),
            hits,
            "{q}: {body}"
        );
    }
    // Only a term of two characters: read without the index, found all the same.
    assert_eq!(found(&app, &asha, "_d").await.len(), 1);
    // Unauthenticated: 401.
    assert_error(app.get("/api/search?q=done").await, 401, "AUTH_REQUIRED").await;
}
