//! Channels (API.md §5, §12): visibility, names, roles, membership, hand-over, stars.

use std::time::Duration;

use chai_tapri::services::events::Event;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

async fn channel_as(app: &TestApp, user: &TestUser, id: &str) -> (u16, Value) {
    json(
        app.get_as(&user.token, &format!("/api/channels/{id}"))
            .await,
    )
    .await
}

fn names(body: &Value) -> Vec<String> {
    body["data"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn creating_a_channel_makes_the_creator_its_owner() {
    let app = TestApp::spawn().await;
    let asha = app.signup("asha").await;
    let bala = app.signup("bala").await;
    let response = app
        .send_as(
            Method::POST,
            &asha.token,
            "/api/channels",
            &json!({"name": "General-Chat", "description": "  hello  ", "memberIds": [bala.id, bala.id, asha.id]}),
        )
        .await;
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    let c = &body["data"]["channel"];
    assert_eq!(c["name"], "general-chat");
    assert_eq!(c["description"], "hello");
    assert_eq!(c["isPrivate"], false);
    assert_eq!(c["role"], "owner");
    assert_eq!(c["isMember"], true);
    assert_eq!(c["isStarred"], false);
    assert_eq!(c["memberCount"], 2, "creator plus bala, once");
    assert_eq!(c["createdBy"], asha.id.as_str());
    for field in ["createdAt", "updatedAt"] {
        assert!(c[field].as_str().unwrap().ends_with('Z'));
    }
    let (_, seen_by_bala) = channel_as(&app, &bala, c["id"].as_str().unwrap()).await;
    assert_eq!(seen_by_bala["data"]["channel"]["role"], "member");
}

#[tokio::test]
async fn channel_names_are_checked_and_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    let u = app.signup("namer").await;
    app.create_channel(&u, "random", false).await;
    let dup = app
        .send_as(
            Method::POST,
            &u.token,
            "/api/channels",
            &json!({"name": "RANDOM"}),
        )
        .await;
    assert_error(dup, 409, "CHANNEL_EXISTS").await;
    for bad in [
        json!({"name": "x"}),
        json!({"name": "has space"}),
        json!({}),
        json!({"name": 7}),
    ] {
        let r = app
            .send_as(Method::POST, &u.token, "/api/channels", &bad)
            .await;
        assert_error(r, 400, "VALIDATION_ERROR").await;
    }
    let long = app
        .send_as(
            Method::POST,
            &u.token,
            "/api/channels",
            &json!({"name": "ok-name", "description": "d".repeat(501)}),
        )
        .await;
    assert_error(long, 400, "VALIDATION_ERROR").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    for ids in [json!([ghost]), json!(["not-an-id"]), json!("nope")] {
        let r = app
            .send_as(
                Method::POST,
                &u.token,
                "/api/channels",
                &json!({"name": "with-members", "memberIds": ids}),
            )
            .await;
        let body = assert_error(r, 400, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["details"][0]["field"], "memberIds", "{body}");
    }
    // Renaming onto a taken name is refused the same way.
    let other = app.create_channel(&u, "other", false).await;
    let r = app
        .send_as(
            Method::PATCH,
            &u.token,
            &format!("/api/channels/{other}"),
            &json!({"name": "Random"}),
        )
        .await;
    assert_error(r, 409, "CHANNEL_EXISTS").await;
}

#[tokio::test]
async fn the_list_shows_public_channels_and_private_ones_the_caller_is_in() {
    let app = TestApp::spawn().await;
    let a = app.signup("lister").await;
    let b = app.signup("other").await;
    app.create_channel(&a, "alpha", false).await;
    app.create_channel(&a, "alpha-secret", true).await;
    app.create_channel(&b, "beta", false).await;
    app.create_channel(&b, "beta-secret", true).await;
    app.create_channel(&b, "gamma", false).await;
    let (_, body) = json(app.get_as(&a.token, "/api/channels").await).await;
    assert_eq!(names(&body), ["alpha", "alpha-secret", "beta", "gamma"]);
    let (_, body) = json(app.get_as(&a.token, "/api/channels?joined=true").await).await;
    assert_eq!(names(&body), ["alpha", "alpha-secret"]);
    let (_, body) = json(app.get_as(&a.token, "/api/channels?search=ET").await).await;
    assert_eq!(
        names(&body),
        ["alpha-secret", "beta"],
        "substring, case-insensitive"
    );
    let (_, first) = json(app.get_as(&a.token, "/api/channels?limit=3").await).await;
    assert_eq!(names(&first), ["alpha", "alpha-secret", "beta"]);
    let cursor = first["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, second) = json(
        app.get_as(&a.token, &format!("/api/channels?limit=3&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(names(&second), ["gamma"]);
    assert_eq!(second["data"]["pagination"]["hasMore"], false);
    assert_error(
        app.get_as(&a.token, "/api/channels?joined=maybe").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn private_channels_are_invisible_to_outsiders_on_every_route() {
    let app = TestApp::spawn().await;
    let owner = app.signup("keeper").await;
    let outsider = app.signup("outsider").await;
    let id = app.create_channel(&owner, "secret", true).await;
    let base = format!("/api/channels/{id}");
    let checks = [
        (Method::GET, base.clone(), json!(null)),
        (Method::PATCH, base.clone(), json!({"name": "renamed"})),
        (Method::DELETE, base.clone(), json!(null)),
        (Method::POST, format!("{base}/join"), json!(null)),
        (Method::POST, format!("{base}/leave"), json!(null)),
        (Method::PUT, format!("{base}/star"), json!(null)),
        (Method::GET, format!("{base}/members"), json!(null)),
        (
            Method::POST,
            format!("{base}/members"),
            json!({"userId": outsider.id}),
        ),
        (Method::GET, format!("{base}/messages"), json!(null)),
        (
            Method::POST,
            format!("{base}/messages"),
            json!({"content": "hi"}),
        ),
    ];
    for (method, path, body) in checks {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&outsider.token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let (status, b) = json(response).await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (403, Some("PRIVATE_CHANNEL")),
            "{method} {path}: {b}"
        );
    }
}

#[tokio::test]
async fn unknown_and_malformed_channel_ids_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let u = app.signup("prober").await;
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "nope".to_owned(),
        "%FF".to_owned(),
    ] {
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::POST, "/join"),
            (Method::POST, "/leave"),
            (Method::PUT, "/star"),
            (Method::DELETE, "/star"),
            (Method::GET, "/members"),
            (Method::GET, "/messages"),
        ] {
            let r = app
                .client
                .request(
                    method.clone(),
                    app.url(&format!("/api/channels/{id}{suffix}")),
                )
                .bearer_auth(&u.token)
                .send()
                .await
                .unwrap();
            let (status, b) = json(r).await;
            assert_eq!(
                (status, b["error"]["code"].as_str()),
                (404, Some("CHANNEL_NOT_FOUND")),
                "{method} {id}{suffix}"
            );
        }
    }
}

#[tokio::test]
async fn public_channels_can_be_read_joined_and_starred_but_not_changed_by_non_members() {
    let app = TestApp::spawn().await;
    let owner = app.signup("host").await;
    let guest = app.signup("guest").await;
    let id = app.create_channel(&owner, "open", false).await;
    let (status, body) = channel_as(&app, &guest, &id).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["channel"]["isMember"], false);
    assert_eq!(body["data"]["channel"]["role"], Value::Null);
    assert_eq!(
        app.get_as(&guest.token, &format!("/api/channels/{id}/messages"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as(&guest.token, &format!("/api/channels/{id}/members"))
            .await
            .status(),
        200
    );
    let r = app
        .send_as(
            Method::PATCH,
            &guest.token,
            &format!("/api/channels/{id}"),
            &json!({"description": "x"}),
        )
        .await;
    assert_error(r, 403, "NOT_CHANNEL_MEMBER").await;
    assert_error(
        app.post_as(&guest, &format!("/api/channels/{id}/leave"))
            .await,
        403,
        "NOT_CHANNEL_MEMBER",
    )
    .await;
    let r = app
        .send_as(
            Method::POST,
            &guest.token,
            &format!("/api/channels/{id}/messages"),
            &json!({"content": "hi"}),
        )
        .await;
    assert_error(r, 403, "NOT_CHANNEL_MEMBER").await;
    let (_, starred) = json(
        app.client
            .put(app.url(&format!("/api/channels/{id}/star")))
            .bearer_auth(&guest.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(starred["data"]["channel"]["isStarred"], true);
    let (_, joined) = json(
        app.post_as(&guest, &format!("/api/channels/{id}/join"))
            .await,
    )
    .await;
    assert_eq!(joined["data"]["channel"]["role"], "member");
    assert_eq!(joined["data"]["channel"]["memberCount"], 2);
    let (status, again) = json(
        app.post_as(&guest, &format!("/api/channels/{id}/join"))
            .await,
    )
    .await;
    assert_eq!(
        (status, &again["data"]["channel"]["memberCount"]),
        (200, &json!(2)),
        "join is idempotent"
    );
    let r = app
        .send_as(
            Method::PATCH,
            &guest.token,
            &format!("/api/channels/{id}"),
            &json!({"description": "x"}),
        )
        .await;
    assert_error(r, 403, "INSUFFICIENT_ROLE").await;
}

#[tokio::test]
async fn owners_and_admins_update_only_owners_delete() {
    let app = TestApp::spawn().await;
    let owner = app.signup("boss").await;
    let admin = app.signup("deputy").await;
    let id = app.create_channel(&owner, "ops", false).await;
    let r = app
        .send_as(
            Method::POST,
            &owner.token,
            &format!("/api/channels/{id}/members"),
            &json!({"userId": admin.id, "role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (status, body) = json(
        app.send_as(
            Method::PATCH,
            &admin.token,
            &format!("/api/channels/{id}"),
            &json!({"name": "Ops-Team", "description": "on call"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["channel"]["name"], "ops-team");
    assert_eq!(body["data"]["channel"]["description"], "on call");
    let (_, body) = json(
        app.send_as(
            Method::PATCH,
            &owner.token,
            &format!("/api/channels/{id}"),
            &json!({"description": null}),
        )
        .await,
    )
    .await;
    assert_eq!(body["data"]["channel"]["description"], Value::Null);
    assert_error(
        app.delete_as(&admin, &format!("/api/channels/{id}")).await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    app.send_message(&owner, &id, "soon gone").await;
    let mut events = app.state.events.subscribe();
    let (status, body) = json(app.delete_as(&owner, &format!("/api/channels/{id}")).await).await;
    assert_eq!((status, &body["data"]), (200, &json!({"channelId": id})));
    assert_error(
        app.get_as(&owner.token, &format!("/api/channels/{id}"))
            .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    match &*events.recv().await.unwrap() {
        Event::MembersLeft {
            user_ids, reason, ..
        } => {
            assert_eq!(reason.as_str(), "deleted");
            assert_eq!(user_ids.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_leaving_owner_hands_over_to_the_oldest_admin_else_the_oldest_member() {
    let app = TestApp::spawn().await;
    let owner = app.signup("founder").await;
    let early = app.signup("early").await;
    let late_admin = app.signup("lateadmin").await;
    let id = app.create_channel(&owner, "handover", false).await;
    app.post_as(&early, &format!("/api/channels/{id}/join"))
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.post_as(&late_admin, &format!("/api/channels/{id}/join"))
        .await;
    app.send_as(
        Method::POST,
        &owner.token,
        &format!("/api/channels/{id}/members"),
        &json!({"userId": late_admin.id, "role": "admin"}),
    )
    .await;
    let (_, left) = json(
        app.post_as(&owner, &format!("/api/channels/{id}/leave"))
            .await,
    )
    .await;
    assert_eq!(left["data"]["channel"]["isMember"], false);
    assert_eq!(
        channel_as(&app, &late_admin, &id).await.1["data"]["channel"]["role"],
        "owner",
        "oldest admin wins"
    );
    // No admin left: the oldest member takes over.
    let (_, _) = json(
        app.post_as(&late_admin, &format!("/api/channels/{id}/leave"))
            .await,
    )
    .await;
    assert_eq!(
        channel_as(&app, &early, &id).await.1["data"]["channel"]["role"],
        "owner"
    );
}

#[tokio::test]
async fn a_sole_owner_who_leaves_leaves_it_ownerless_and_the_next_joiner_owns_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("loner").await;
    let next = app.signup("nextone").await;
    let id = app.create_channel(&owner, "empty-soon", false).await;
    let (_, left) = json(
        app.post_as(&owner, &format!("/api/channels/{id}/leave"))
            .await,
    )
    .await;
    assert_eq!(left["data"]["channel"]["memberCount"], 0);
    let (_, joined) = json(
        app.post_as(&next, &format!("/api/channels/{id}/join"))
            .await,
    )
    .await;
    assert_eq!(joined["data"]["channel"]["role"], "owner");
    let (_, rejoined) = json(
        app.post_as(&owner, &format!("/api/channels/{id}/join"))
            .await,
    )
    .await;
    assert_eq!(rejoined["data"]["channel"]["role"], "member");
}

#[tokio::test]
async fn members_are_listed_by_join_time_and_managed_by_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup("own").await;
    let admin = app.signup("adm").await;
    let m1 = app.signup("mem1").await;
    let m2 = app.signup("mem2").await;
    let id = app.create_channel(&owner, "team", true).await;
    let members = format!("/api/channels/{id}/members");
    let add = |who: &TestUser, body: Value| {
        let token = who.token.clone();
        let app = &app;
        let members = members.clone();
        async move { app.send_as(Method::POST, &token, &members, &body).await }
    };
    let mut events = app.state.events.subscribe();
    let (status, body) =
        json(add(&owner, json!({"userId": admin.id, "role": "admin"})).await).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["member"]["role"], "admin");
    assert_eq!(body["data"]["member"]["user"]["username"], "adm");
    match &*events.recv().await.unwrap() {
        Event::MemberAdded { user_id, channel } => {
            assert_eq!(user_id.to_string(), admin.id);
            assert_eq!(serde_json::to_value(channel).unwrap()["role"], "admin");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(add(&admin, json!({"userId": m1.id})).await.status(), 201);
    assert_eq!(
        add(&admin, json!({"userId": m1.id})).await.status(),
        200,
        "already a member"
    );
    assert_error(
        add(&admin, json!({"userId": m2.id, "role": "admin"})).await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    assert_error(
        add(&owner, json!({"userId": m2.id, "role": "owner"})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        add(&owner, json!({"userId": m2.id, "role": "king"})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        add(&owner, json!({"userId": uuid::Uuid::now_v7().to_string()})).await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
    assert_error(
        add(&owner, json!({"userId": "bad-id"})).await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
    assert_error(
        add(&m1, json!({"userId": m2.id})).await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    assert_eq!(add(&owner, json!({"userId": m2.id})).await.status(), 201);
    // The owner changes a role by adding again.
    let (status, body) = json(add(&owner, json!({"userId": m1.id, "role": "admin"})).await).await;
    assert_eq!(
        (status, &body["data"]["member"]["role"]),
        (200, &json!("admin"))
    );
    let (status, body) = json(add(&owner, json!({"userId": m1.id, "role": "member"})).await).await;
    assert_eq!(
        (status, &body["data"]["member"]["role"]),
        (200, &json!("member"))
    );

    let (_, page) = json(app.get_as(&m1.token, &format!("{members}?limit=2")).await).await;
    let order: Vec<&str> = page["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["own", "adm"]);
    let cursor = page["data"]["pagination"]["nextCursor"].as_str().unwrap();
    let (_, rest) = json(
        app.get_as(&m1.token, &format!("{members}?limit=2&cursor={cursor}"))
            .await,
    )
    .await;
    let order: Vec<&str> = rest["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["mem1", "mem2"]);
    assert_eq!(rest["data"]["pagination"]["hasMore"], false);

    // Removal: admins remove members only; nobody removes the owner; non-members are 404.
    assert_error(
        app.delete_as(&admin, &format!("{members}/{}", owner.id))
            .await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    assert_error(
        app.delete_as(&m1, &format!("{members}/{}", m2.id)).await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    let outsider = app.signup("nobody").await;
    assert_error(
        app.delete_as(&owner, &format!("{members}/{}", outsider.id))
            .await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete_as(&owner, &format!("{members}/not-an-id")).await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
    let mut events = app.state.events.subscribe();
    let (status, body) = json(app.delete_as(&admin, &format!("{members}/{}", m2.id)).await).await;
    assert_eq!((status, &body["data"]), (200, &json!({"userId": m2.id})));
    match &*events.recv().await.unwrap() {
        Event::MembersLeft {
            reason, user_ids, ..
        } => {
            assert_eq!(reason.as_str(), "removed");
            assert_eq!(user_ids[0].to_string(), m2.id);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_error(
        app.get_as(&m2.token, &format!("/api/channels/{id}")).await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    assert_eq!(
        app.delete_as(&owner, &format!("{members}/{}", admin.id))
            .await
            .status(),
        200,
        "the owner removes admins"
    );
}

#[tokio::test]
async fn stars_are_per_user() {
    let app = TestApp::spawn().await;
    let a = app.signup("stara").await;
    let b = app.signup("starb").await;
    let one = app.create_channel(&a, "one", false).await;
    let two = app.create_channel(&a, "two", false).await;
    for id in [&two, &one] {
        let r = app
            .client
            .put(app.url(&format!("/api/channels/{id}/star")))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, body) = json(app.get_as(&a.token, "/api/channels/starred").await).await;
    assert_eq!(names(&body), ["one", "two"]);
    assert!(
        body["data"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["isStarred"] == true)
    );
    let (_, body) = json(app.get_as(&b.token, "/api/channels/starred").await).await;
    assert_eq!(names(&body), Vec::<String>::new());
    let (_, body) = json(
        app.delete_as(&a, &format!("/api/channels/{one}/star"))
            .await,
    )
    .await;
    assert_eq!(body["data"]["channel"]["isStarred"], false);
    let (_, body) = json(app.get_as(&a.token, "/api/channels/starred").await).await;
    assert_eq!(names(&body), ["two"]);
}

#[tokio::test]
async fn a_cursor_is_good_for_the_list_that_issued_it_only() {
    let app = TestApp::spawn().await;
    let owner = app.signup("cursorowner").await;
    let other = app.signup("cursorother").await;
    let first = app.create_channel(&owner, "cursor-a", false).await;
    app.create_channel(&owner, "cursor-b", false).await;
    app.post_as(&other, &format!("/api/channels/{first}/join"))
        .await;
    for text in ["one", "two"] {
        app.send_message(&owner, &first, text).await;
    }
    let cursor_of = |path: String| {
        let (app, token) = (&app, owner.token.clone());
        async move {
            let (status, body) = json(app.get_as(&token, &path).await).await;
            assert_eq!(status, 200, "{body}");
            body["data"]["pagination"]["nextCursor"]
                .as_str()
                .unwrap_or_else(|| panic!("{path} has a next page: {body}"))
                .to_owned()
        }
    };
    let lists = [
        "/api/users?limit=1".to_owned(),
        "/api/channels?limit=1".to_owned(),
        format!("/api/channels/{first}/members?limit=1"),
        format!("/api/channels/{first}/messages?limit=1"),
    ];
    let mut cursors = Vec::new();
    for list in &lists {
        cursors.push(cursor_of(list.clone()).await);
    }
    for (i, list) in lists.iter().enumerate() {
        for (j, cursor) in cursors.iter().enumerate() {
            let response = app
                .get_as(&owner.token, &format!("{list}&cursor={cursor}"))
                .await;
            if i == j {
                assert_eq!(response.status(), 200, "{list} takes its own cursor");
            } else {
                let body = assert_error(response, 400, "VALIDATION_ERROR").await;
                assert_eq!(
                    body["error"]["details"][0]["field"], "cursor",
                    "{list} with {j}"
                );
            }
        }
    }
    // The right kind with an inside of the wrong shape: a channel cursor naming no channel.
    let forged: String = "c:Not A Name".bytes().map(|b| format!("{b:02x}")).collect();
    assert_error(
        app.get_as(&owner.token, &format!("/api/channels?cursor={forged}"))
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}
