//! `chai-tapri migrate-data`: a SQLite database filled through the API (100,000 messages)
//! moves to PostgreSQL, cut off once and continued, and the API answers the same there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TempDir, TestApp, TestUser, json, require_database_url, test_vars};

const BIN: &str = env!("CARGO_BIN_EXE_chai-tapri");
const MESSAGES: usize = 100_000;

/// `path` as `token` sees it: its `data`, after a 200.
async fn data(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = json(app.get_as(token, path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    json!({ "path": path, "data": body["data"] })
}

/// What a client sees of the data: the same on both databases after the move.
async fn answers(app: &TestApp, users: &[TestUser], channels: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for u in users {
        for path in [
            "/api/channels".to_owned(),
            "/api/channels/starred".to_owned(),
            "/api/dms".to_owned(),
            "/api/threads".to_owned(),
            "/api/unreads".to_owned(),
            // The search index is the database's own: built there as the rows arrive.
            "/api/search?q=final".to_owned(),
            "/api/search?q=question".to_owned(),
            "/api/search?q=draft".to_owned(),
            format!("/api/users/{}", u.id),
            "/api/auth/me".to_owned(),
        ] {
            out.push(data(app, &u.token, &path).await);
        }
    }
    let token = &users[0].token;
    out.push(data(app, token, "/api/users?limit=100").await);
    for c in channels {
        // The owner of the private channel reads it too.
        let reader = if c == &channels[0] {
            token
        } else {
            &users[1].token
        };
        out.push(data(app, reader, &format!("/api/channels/{c}")).await);
        out.push(data(app, reader, &format!("/api/channels/{c}/members")).await);
        let newest = data(
            app,
            reader,
            &format!("/api/channels/{c}/messages?limit=100"),
        )
        .await;
        let oldest = newest["data"]["messages"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        out.push(newest);
        out.push(
            data(
                app,
                reader,
                &format!("/api/channels/{c}/messages?limit=100&before={oldest}"),
            )
            .await,
        );
        out.push(
            data(
                app,
                reader,
                &format!("/api/channels/{c}/messages?limit=100&after={oldest}"),
            )
            .await,
        );
    }
    out
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by the second pass (scripts/test.sh)"]
async fn a_sqlite_team_moves_to_postgres_cut_off_once_and_the_api_answers_the_same() {
    let pg = require_database_url();
    let dir = std::sync::Arc::new(TempDir::new());
    let sqlite = dir.0.join("team.db");
    let mut vars = test_vars(&dir);
    vars.insert(
        "DATABASE_URL".into(),
        format!("sqlite://{}", sqlite.display()),
    );
    vars.remove("REDIS_URL");
    vars.insert(
        "STORAGE_URL".into(),
        dir.0.join("uploads").display().to_string(),
    );
    let app = TestApp::spawn_in(dir.clone(), vars.clone()).await;

    // A team: users, a public and a private channel, a direct conversation, stars, an edit,
    // reactions,
    // a thread (with its followers) whose root was deleted into a tombstone, a delete, a file on a message, a revoked token, and 100,000 messages with nonces.
    let mut users = Vec::new();
    for name in ["mig_asha", "mig_bilal", "mig_chen", "mig_dara"] {
        users.push(app.signup(name).await);
    }
    let public = app.create_channel(&users[0], "mig-general", false).await;
    let private = app.create_channel(&users[1], "mig-secret", true).await;
    let channels = vec![public.clone(), private.clone()];
    for u in &users[1..] {
        assert_eq!(
            app.post_as(u, &format!("/api/channels/{public}/join"))
                .await
                .status(),
            200
        );
    }
    let r = app
        .send_as(
            Method::POST,
            &users[1].token,
            &format!("/api/channels/{private}/members"),
            &json!({ "userId": users[2].id }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for u in &users[..2] {
        assert_eq!(
            app.send_as(
                Method::PUT,
                &u.token,
                &format!("/api/channels/{public}/star"),
                &json!({})
            )
            .await
            .status(),
            200
        );
    }
    let edited = app.send_message(&users[0], &public, "first draft").await;
    let r = app
        .send_as(
            Method::PATCH,
            &users[0].token,
            &format!("/api/messages/{}", edited["id"].as_str().unwrap()),
            &json!({ "content": "final" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    for (who, emoji) in [(0, "👍"), (1, "👍"), (1, ":tada:")] {
        let r = app
            .send_as(
                Method::PUT,
                &users[who].token,
                &format!(
                    "/api/messages/{}/reactions/{emoji}",
                    edited["id"].as_str().unwrap()
                ),
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let asked = app.send_message(&users[0], &public, "a question").await;
    let r = app
        .send_as(
            Method::POST,
            &users[1].token,
            &format!("/api/channels/{public}/messages"),
            &json!({ "content": "an answer", "parentId": asked["id"] }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.delete_as(
            &users[0],
            &format!("/api/messages/{}", asked["id"].as_str().unwrap())
        )
        .await
        .status(),
        200
    );
    let gone = app.send_message(&users[0], &public, "to be deleted").await;
    assert_eq!(
        app.delete_as(
            &users[0],
            &format!("/api/messages/{}", gone["id"].as_str().unwrap())
        )
        .await
        .status(),
        200
    );
    let file =
        crate::files::upload(&app, &users[0], "minutes.txt", b"minutes of the meeting").await;
    let r = app
        .send_as(
            Method::POST,
            &users[0].token,
            &format!("/api/channels/{public}/messages"),
            &json!({ "content": "attached", "attachments": [file["key"]] }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (status, dm) = json(
        app.send_as(
            Method::POST,
            &users[0].token,
            "/api/dms",
            &json!({ "userIds": [users[3].id] }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{dm}");
    let dm = dm["data"]["dm"]["id"].as_str().unwrap().to_owned();
    app.send_message(&users[3], &dm, "a word in private").await;
    let revoked = app.signup("mig_gone").await;
    assert_eq!(
        app.post_as(&revoked, "/api/auth/logout").await.status(),
        200
    );

    let started = Instant::now();
    let client = app.client.clone();
    let sent: Vec<(u16, String)> = futures_util::stream::iter(0..MESSAGES)
        .map(|n| {
            let client = client.clone();
            // One in five goes to the private channel, from its two members.
            let (u, channel) = if n % 5 == 0 {
                (&users[1 + (n / 5) % 2], &private)
            } else {
                (&users[n % users.len()], &public)
            };
            let url = app.url(&format!("/api/channels/{channel}/messages"));
            async move {
                let r = client
                    .post(url)
                    .bearer_auth(&u.token)
                    .json(&json!({ "content": format!("message {n}"), "nonce": format!("n{n}") }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.text().await.unwrap())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (status, body) in &sent {
        assert_eq!(*status, 201, "{body}");
    }
    eprintln!(
        "{MESSAGES} messages through the API in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = answers(&app, &users, &channels).await;
    assert_eq!(app.stop().await, chai_tapri::Stopped::Clean);

    // The copy: cut off with SIGKILL once messages are under way, then continued.
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let sep = if pg.contains('?') { '&' } else { '?' };
    let target = format!("{pg}{sep}schema={schema}");
    let from = format!("sqlite://{}", sqlite.display());
    let migrate = || {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "migrate-data",
            "--from",
            &from,
            "--to",
            &target,
            "--batch",
            "2000",
        ])
        .current_dir(&dir.0)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };
    let mut first = migrate().spawn().unwrap();
    let stderr = BufReader::new(first.stderr.take().unwrap());
    let mut cut = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("messages: ") {
            first.kill().unwrap();
            cut = true;
            break;
        }
    }
    assert!(cut, "the first run reached the messages");
    let _ = first.wait();
    let second = migrate().output().unwrap();
    let out = String::from_utf8_lossy(&second.stdout);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{out}\n{err}");
    assert!(err.contains("continuing an interrupted copy"), "{err}");
    assert!(out.contains("copied and verified (continued)"), "{out}");
    let line = |table: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{table}\t")))
            .unwrap_or_default()
            .to_owned()
    };
    // The 100,000, the edited one, the tombstone and its reply, the one with the file and
    // the direct one (the deleted one is gone).
    assert!(
        line("messages").contains(&format!("{} rows", MESSAGES + 5)),
        "{out}"
    );
    assert!(line("thread_follows").contains("2 rows"), "{out}");
    assert!(line("message_versions").contains("1 rows"), "{out}");
    assert!(line("users").contains("5 rows"), "{out}");
    assert!(line("token_revocations").contains("1 rows"), "{out}");
    // The audit log travels too (at least the logout behind that revocation).
    let audit = line("audit_log");
    assert!(
        audit.contains(" rows") && !audit.contains("\t0 rows"),
        "{out}"
    );
    eprintln!("{out}");
    // The planner knows the copied tables' sizes at once (a search's plan depends on them).
    let store = chai_tapri::store::postgres::PgStore::connect(&target, 1)
        .await
        .unwrap();
    let rows: f32 = sqlx::query_scalar(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = 'messages'",
    )
    .bind(&schema)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(rows > (MESSAGES / 2) as f32, "{rows} rows estimated");
    chai_tapri::store::Store::close(&store).await;

    // Again: the target is not empty now.
    let again = migrate().output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("the target is not empty"));

    // The same team on PostgreSQL: same answers, same tokens, same revocation, same nonces.
    let mut vars = vars.clone();
    vars.insert("DATABASE_URL".into(), target.clone());
    vars.insert("PORT".into(), "0".into());
    let app = TestApp::spawn_in(dir.clone(), vars).await;
    let after = answers(&app, &users, &channels).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    assert_eq!(
        app.get_as(&revoked.token, "/api/auth/me").await.status(),
        401
    );
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": users[2].email, "password": users[2].password }),
        )
        .await;
    assert_eq!(login.status(), 200);
    let r = app
        .send_as(
            Method::POST,
            &users[1].token,
            &format!("/api/channels/{public}/messages"),
            &json!({ "content": "message 1", "nonce": "n1" }),
        )
        .await;
    let (status, body) = json(r).await;
    assert_eq!(
        status, 200,
        "a known nonce is answered with its message: {body}"
    );
    assert_eq!(body["data"]["message"]["content"], "message 1");
    let r = app
        .get_as(&users[0].token, file["fileUrl"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"minutes of the meeting");
    // The edit's history came along.
    let (status, body) = json(
        app.get_as(
            &users[1].token,
            &format!("/api/messages/{}/history", edited["id"].as_str().unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let contents: Vec<&str> = body["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["first draft", "final"]);
}
