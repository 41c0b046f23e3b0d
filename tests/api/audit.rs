//! The audit log (docs/api.md, "Audit log"): each administrative change and each login
//! recorded with who, from where and what; read by a channel's managers and the server's
//! admins only; filters, pages and bad input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, json};

/// The server's admin in these tests (`ADMIN_USERNAMES`), behind a trusted proxy.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|v| {
        v.insert("ADMIN_USERNAMES".into(), " Root ,auditor".into());
        v.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await
}

/// `data` of a successful GET.
async fn read(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let (status, body) = json(app.get_as(&user.token, path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"].clone()
}

fn actions(data: &Value) -> Vec<String> {
    data["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn call(app: &TestApp, user: &TestUser, method: Method, path: &str, body: Value) -> u16 {
    let (status, body) = json(app.send_as(method, &user.token, path, &body).await).await;
    assert!(status < 500, "{path}: {body}");
    status
}

#[tokio::test]
async fn each_administrative_change_is_recorded_for_the_channels_managers_and_the_admins() {
    let app = spawn().await;
    let asha = app.signup("asha").await;
    let ravi = app.signup("ravi").await;
    let meera = app.signup("meera").await;
    let kiran = app.signup("kiran").await;
    let root = app.signup("root").await;
    let id = app.create_channel(&asha, "ops", true).await;
    let base = format!("/api/channels/{id}");
    app.create_channel(&asha, "taken", false).await;

    let patch = |name: &str| json!({ "name": name, "description": "on call" });
    assert_eq!(
        call(&app, &asha, Method::PATCH, &base, patch("ops-team")).await,
        200
    );
    // A rename that fails records nothing.
    assert_eq!(
        call(&app, &asha, Method::PATCH, &base, patch("taken")).await,
        409
    );
    let add = |user: &TestUser, role: &str| json!({ "userId": user.id, "role": role });
    let members = format!("{base}/members");
    assert_eq!(
        call(&app, &asha, Method::POST, &members, add(&ravi, "member")).await,
        201
    );
    assert_eq!(
        call(&app, &asha, Method::POST, &members, add(&ravi, "admin")).await,
        200
    );
    assert_eq!(
        call(&app, &ravi, Method::POST, &members, add(&meera, "member")).await,
        201
    );
    assert_eq!(
        call(&app, &asha, Method::POST, &members, add(&kiran, "member")).await,
        201
    );
    let theirs = app.send_message(&meera, &id, "meera's").await;
    let mine = app.send_message(&asha, &id, "asha's").await;
    let message = |m: &Value| format!("/api/messages/{}", m["id"].as_str().unwrap());
    // An admin deletes another's message (over a socket: the handshake's address is
    // recorded): recorded. The owner deletes her own: not.
    let mut socket = app.socket(&ravi).await;
    let deleted = socket
        .call("delete-message", &json!({"messageId": theirs["id"]}))
        .await;
    assert_eq!(deleted["success"], true, "{deleted}");
    let pin = format!("{}/pin", message(&mine));
    assert_eq!(call(&app, &asha, Method::PUT, &pin, json!(null)).await, 200);
    assert_eq!(call(&app, &asha, Method::PUT, &pin, json!(null)).await, 200);
    assert_eq!(
        call(&app, &asha, Method::DELETE, &pin, json!(null)).await,
        200
    );
    assert_eq!(
        call(&app, &asha, Method::DELETE, &message(&mine), json!(null)).await,
        200
    );
    let remove = format!("{members}/{}", meera.id);
    assert_eq!(
        call(&app, &ravi, Method::DELETE, &remove, json!(null)).await,
        200
    );
    assert_eq!(
        call(
            &app,
            &ravi,
            Method::POST,
            &format!("{base}/leave"),
            json!(null)
        )
        .await,
        200
    );

    let audit = format!("{base}/audit");
    let data = read(&app, &asha, &audit).await;
    assert_eq!(
        actions(&data),
        [
            "member.left",
            "member.removed",
            "message.unpinned",
            "message.pinned",
            "message.deleted",
            "member.added",
            "member.added",
            "member.role_changed",
            "member.added",
            "channel.updated",
            "channel.created",
        ]
    );
    assert_eq!(data["pagination"]["hasMore"], false);
    let entries = data["entries"].as_array().unwrap();
    let at = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();
    assert_eq!(
        at("channel.updated")["details"],
        json!({"name": {"from": "ops", "to": "ops-team"}, "description": {"from": null, "to": "on call"}})
    );
    assert_eq!(
        at("member.role_changed")["details"],
        json!({"from": "member", "to": "admin"})
    );
    let deleted = at("message.deleted");
    assert_eq!(deleted["actorId"], ravi.id.as_str());
    assert_eq!(deleted["targetUserId"], meera.id.as_str());
    assert_eq!(deleted["messageId"], theirs["id"]);
    assert_eq!(deleted["details"], Value::Null);
    assert_eq!(at("member.removed")["targetUserId"], meera.id.as_str());
    assert_eq!(at("member.left")["details"], json!({"role": "admin"}));
    assert_eq!(at("channel.created")["details"]["isPrivate"], true);
    for entry in entries {
        assert_eq!(entry["channelId"], id.as_str(), "{entry}");
        assert_eq!(
            entry["ip"],
            Value::Null,
            "a channel's managers see no addresses"
        );
        assert!(entry["at"].as_str().unwrap().ends_with('Z'), "{entry}");
    }
    // The server's admins do (a socket's is its handshake's).
    let as_admin = read(&app, &root, &audit).await;
    for entry in as_admin["entries"].as_array().unwrap() {
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
    }
    assert!(
        !data.to_string().contains("meera's"),
        "a deleted message's content is not kept"
    );

    // Managers and the server's admins only.
    assert_error(
        app.get_as(&kiran.token, &audit).await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
    assert_error(
        app.get_as(&ravi.token, &audit).await,
        403,
        "PRIVATE_CHANNEL",
    )
    .await;
    assert_eq!(actions(&as_admin).len(), 11);
    let dm = app.open_dm(&asha, &kiran).await;
    assert_error(
        app.get_as(&asha.token, &format!("/api/channels/{dm}/audit"))
            .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_as(&asha.token, "/api/channels/not-an-id/audit")
            .await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;

    // A deleted channel's entries stay, for the server's admins.
    assert_eq!(
        call(&app, &asha, Method::DELETE, &base, json!(null)).await,
        200
    );
    assert_error(
        app.get_as(&asha.token, &audit).await,
        404,
        "CHANNEL_NOT_FOUND",
    )
    .await;
    let after = read(&app, &root, &format!("/api/audit?channelId={id}")).await;
    assert_eq!(actions(&after).len(), 12);
    assert_eq!(after["entries"][0]["action"], "channel.deleted");
    assert_eq!(after["entries"][0]["details"], json!({"name": "ops-team"}));
    assert_error(
        app.get_as(&asha.token, &format!("/api/audit?channelId={id}"))
            .await,
        403,
        "INSUFFICIENT_ROLE",
    )
    .await;
}

#[tokio::test]
async fn logins_logouts_and_failures_carry_the_client_ip_and_never_a_password() {
    let app = spawn().await;
    let asha = app.signup("asha").await;
    let root = app.signup("ROOT").await;
    let login = |body: Value, from: &'static str| {
        app.client
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", from)
            .json(&body)
            .send()
    };
    let wrong = "wrong-password-123";
    let ok = login(
        json!({"username": "asha", "password": asha.password}),
        "203.0.113.5",
    )
    .await
    .unwrap();
    let (status, body) = json(ok).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"]["isAdmin"], false);
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    for (body, from) in [
        (
            json!({"username": "asha", "password": wrong}),
            "203.0.113.6",
        ),
        (
            json!({"email": "nobody@example.com", "password": wrong}),
            "203.0.113.7",
        ),
        // A password typed into the username box is no name: not kept.
        (
            json!({"username": "correct horse battery!", "password": wrong}),
            "203.0.113.9",
        ),
    ] {
        assert_error(login(body, from).await.unwrap(), 401, "INVALID_CREDENTIALS").await;
    }
    let out = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);

    let me = read(&app, &root, "/api/auth/me").await;
    assert_eq!(
        me["user"]["isAdmin"], true,
        "ADMIN_USERNAMES is case-insensitive"
    );
    assert_eq!(
        read(&app, &asha, "/api/auth/me").await["user"]["isAdmin"],
        false
    );
    let data = read(&app, &root, "/api/audit?limit=100").await;
    assert_eq!(
        actions(&data),
        [
            "auth.logout",
            "auth.login_failed",
            "auth.login_failed",
            "auth.login_failed",
            "auth.login"
        ]
    );
    let entries = data["entries"].as_array().unwrap();
    let shown: Vec<(&Value, &Value, &Value)> = entries
        .iter()
        .map(|e| (&e["actorId"], &e["ip"], &e["details"]))
        .collect();
    let asha_id = json!(asha.id);
    assert_eq!(
        shown,
        [
            (&asha_id, &json!("203.0.113.8"), &Value::Null),
            (&Value::Null, &json!("203.0.113.9"), &json!({"login": null})),
            (
                &Value::Null,
                &json!("203.0.113.7"),
                &json!({"login": "nobody@example.com"})
            ),
            (&asha_id, &json!("203.0.113.6"), &json!({"login": "asha"})),
            (&asha_id, &json!("203.0.113.5"), &Value::Null),
        ]
    );
    let text = data.to_string();
    assert!(!text.contains(wrong) && !text.contains(&asha.password));
    assert!(!text.contains("horse"));
    // Only the server's admins read it, whatever they ask.
    for path in ["/api/audit", "/api/audit?limit=0&action=nothing"] {
        assert_error(
            app.get_as(&asha.token, path).await,
            403,
            "INSUFFICIENT_ROLE",
        )
        .await;
    }
}

#[tokio::test]
async fn the_first_to_join_an_ownerless_channel_is_recorded_as_claiming_it() {
    let app = spawn().await;
    let asha = app.signup("asha").await;
    let ravi = app.signup("ravi").await;
    let root = app.signup("root").await;
    let id = app.create_channel(&asha, "lobby", false).await;
    let base = format!("/api/channels/{id}");
    let post = |user: &TestUser, path: String| {
        let app = &app;
        let token = user.token.clone();
        async move {
            let (status, body) =
                json(app.send_as(Method::POST, &token, &path, &json!(null)).await).await;
            assert_eq!(status, 200, "{path}: {body}");
            body["data"].clone()
        }
    };
    // The sole owner leaves: nobody owns it. Ravi joins and owns it.
    post(&asha, format!("{base}/leave")).await;
    let joined = post(&ravi, format!("{base}/join")).await;
    assert_eq!(joined["channel"]["role"], "owner", "{joined}");

    let data = read(&app, &ravi, &format!("{base}/audit")).await;
    assert_eq!(
        actions(&data),
        ["channel.claimed", "member.left", "channel.created"]
    );
    let claimed = &data["entries"][0];
    assert_eq!(claimed["actorId"], ravi.id.as_str());
    assert_eq!(claimed["targetUserId"], ravi.id.as_str());
    assert_eq!(data["entries"][1]["details"], json!({"role": "owner"}));
    let by_action = read(&app, &root, "/api/audit?action=channel.claimed").await;
    assert_eq!(actions(&by_action), ["channel.claimed"]);
}

#[tokio::test]
async fn the_log_filters_pages_and_names_each_bad_parameter() {
    let app = spawn().await;
    let asha = app.signup("asha").await;
    let root = app.signup("root").await;
    for n in 0..5 {
        app.create_channel(&asha, &format!("room-{n}"), false).await;
    }
    app.create_channel(&root, "roots", false).await;
    let created = "/api/audit?action=channel.created";
    assert_eq!(actions(&read(&app, &root, created).await).len(), 6);
    let mine = read(&app, &root, &format!("{created}&actorId={}", asha.id)).await;
    assert_eq!(actions(&mine).len(), 5);

    // Pages of two, each older than the last, meet every entry once.
    let mut seen = Vec::new();
    let mut path = format!("/api/audit?limit=2&actorId={}", asha.id);
    loop {
        let page = read(&app, &root, &path).await;
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["details"]["name"].as_str().unwrap().to_owned()),
        );
        match page["pagination"]["nextCursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/audit?limit=2&actorId={}&cursor={cursor}", asha.id);
            }
            None => break,
        }
    }
    assert_eq!(seen, ["room-4", "room-3", "room-2", "room-1", "room-0"]);

    for (query, field) in [
        ("action=channel.renamed", "action"),
        ("actorId=someone", "actorId"),
        ("channelId=42", "channelId"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let body = assert_error(
            app.get_as(&root.token, &format!("/api/audit?{query}"))
                .await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{query}: {body}"
        );
    }
    // A cursor of another list is not one of this list's.
    let users = read(&app, &root, "/api/users?limit=1").await;
    let other = users["pagination"]["nextCursor"].as_str().unwrap();
    assert_error(
        app.get_as(&root.token, &format!("/api/audit?cursor={other}"))
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // Unknown ids filter to nothing.
    let none = read(
        &app,
        &root,
        &format!("/api/audit?actorId={}", uuid::Uuid::now_v7()),
    )
    .await;
    assert!(actions(&none).is_empty());
}

#[tokio::test]
async fn entries_past_retention_are_swept_from_the_start() {
    let app = TestApp::spawn_with(|v| {
        v.insert("ADMIN_USERNAMES".into(), "root".into());
        v.insert("AUDIT_RETENTION_DAYS".into(), "30".into());
    })
    .await;
    let root = app.signup("root").await;
    app.create_channel(&root, "kept", false).await;
    // An entry of 31 days ago, as a server that ran then would have left it.
    let by = chai_tapri::models::audit::Actor {
        user: None,
        ip: None,
        at: chrono::Utc::now() - chrono::Duration::days(31),
    };
    let mut old = chai_tapri::models::audit::NewAudit::login_failed(&by, "long-ago");
    old.id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(by.at.timestamp()).unwrap(),
        0,
    ));
    app.state.store.insert_audit(&old).await.unwrap();
    assert_eq!(
        actions(&read(&app, &root, "/api/audit").await),
        ["channel.created", "auth.login_failed"]
    );
    // The sweep runs at start-up (then hourly).
    let app = app.restart().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = actions(&read(&app, &root, "/api/audit").await);
        if left == ["channel.created"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
