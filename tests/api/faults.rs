//! Storage faults: the database's disk fills up and is freed again under a running server.
//! It answers 503 (never 500) while full, loses nothing it acknowledged, and serves again by
//! itself once space returns. The test mounts a small tmpfs, so it needs root: it is
//! `#[ignore]`d and `scripts/test.sh` runs it when it can mount (saying SKIPPED loudly when
//! it cannot).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TempDir, TestApp, json, test_vars};

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        let at = dir.join("disk");
        std::fs::create_dir_all(&at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount can be run");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {at:?} (root is needed)"
        );
        Self(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system of `path` until a write fails for want of space.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&block).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last partial blocks too.
    let small = [0u8; 512];
    while file
        .write_all(&small)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

/// Sends `send(i)` for `i = first, first + 1, …` (20 ms apart) until one is acknowledged
/// (201), allowing nothing but 503 before it and no more than `limit` after `since` (when
/// the fault cleared); the `i` acknowledged.
async fn until_a_send_succeeds<F, Fut>(
    send: &F,
    first: usize,
    since: Instant,
    limit: Duration,
    cleared: &str,
) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut i = first;
    loop {
        let (status, body) = send(i).await;
        if status == 201 {
            return i;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            since.elapsed() < limit,
            "sends still fail {limit:?} after {cleared}: {body}"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "mounts a tmpfs (needs root): run by scripts/test.sh when it can mount"]
async fn a_full_disk_answers_503_loses_nothing_and_heals_when_space_returns() {
    let dir = std::sync::Arc::new(TempDir::new());
    let disk = Tmpfs::mount(&dir.0, "4m");
    let mut vars = test_vars(&dir);
    vars.insert(
        "DATABASE_URL".into(),
        format!("sqlite://{}", disk.0.join("chai.db").display()),
    );
    let app = TestApp::spawn_in(dir.clone(), vars).await;
    let u = app.signup("diskfull").await;
    let channel = app.create_channel(&u, "disk", false).await;
    let path = format!("/api/channels/{channel}/messages");
    let send = |i: usize| {
        let (app, token, path) = (&app, u.token.clone(), path.clone());
        async move {
            let body = json!({"content": format!("message {i} {}", "x".repeat(500)), "nonce": format!("n{i}")});
            json(app.send_as(Method::POST, &token, &path, &body).await).await
        }
    };
    assert_eq!(send(0).await.0, 201);

    fill(&disk.0.join("filler"));
    let mut acknowledged = vec!["n0".to_owned()];
    let mut refused = 0;
    for i in 1..=400 {
        let (status, body) = send(i).await;
        match status {
            201 => acknowledged.push(format!("n{i}")),
            503 => {
                assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    assert!(refused >= 5, "the disk never filled up");
    // Reads still answer (200, or 503 — never 500); health says the database cannot write.
    let (status, _) = json(app.get_as(&u.token, &format!("{path}?limit=1")).await).await;
    assert!(status == 200 || status == 503, "{status}");
    let (status, health) = json(app.get("/health").await).await;
    assert_eq!(
        (status, health["checks"]["database"].as_str()),
        (503, Some("error")),
        "{health}"
    );

    std::fs::remove_file(disk.0.join("filler")).unwrap();
    let freed = Instant::now();
    let i =
        until_a_send_succeeds(&send, 1000, freed, Duration::from_secs(1), "space returned").await;
    acknowledged.push(format!("n{i}"));
    // The writer and every pooled connection are usable again: a burst succeeds.
    for j in 0..20 {
        let (status, body) = send(2000 + j).await;
        assert_eq!(status, 201, "{body}");
        acknowledged.push(format!("n{}", 2000 + j));
    }
    let (status, body) = json(
        app.send_as(
            Method::POST,
            &u.token,
            "/api/channels",
            &json!({"name": "after-the-fault"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, health) = json(app.get("/health").await).await;
    assert_eq!(status, 200, "{health}");

    // Nothing acknowledged was lost.
    let mut stored = std::collections::HashSet::new();
    let mut after = "00000000-0000-0000-0000-000000000000".to_owned();
    loop {
        let (_, page) = json(
            app.get_as(&u.token, &format!("{path}?limit=100&after={after}"))
                .await,
        )
        .await;
        let messages: Vec<Value> = page["data"]["messages"].as_array().unwrap().clone();
        let Some(last) = messages.last() else { break };
        after = last["id"].as_str().unwrap().to_owned();
        stored.extend(
            messages
                .iter()
                .filter_map(|m| m["nonce"].as_str().map(str::to_owned)),
        );
    }
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(*n))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    drop(app);
    drop(disk);
}

/// The PostgreSQL cluster on this machine (`pg_lsclusters`), stopped and started again by a
/// test; started again when dropped, whatever happened.
struct Cluster {
    version: String,
    name: String,
}

impl Cluster {
    fn local() -> Self {
        let out = std::process::Command::new("pg_lsclusters")
            .arg("-h")
            .output()
            .expect("pg_lsclusters can be run");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some("5432"))
            .expect("a cluster on port 5432")
            .split_whitespace();
        Self {
            version: fields.next().unwrap().to_owned(),
            name: fields.next().unwrap().to_owned(),
        }
    }

    fn ctl(&self, action: &str) {
        let mut command = std::process::Command::new("pg_ctlcluster");
        command.args([
            "--skip-systemctl-redirect",
            &self.version,
            &self.name,
            action,
        ]);
        if action == "stop" {
            command.args(["-m", "fast"]);
        }
        let status = command.status().expect("pg_ctlcluster can be run");
        assert!(status.success(), "pg_ctlcluster {action} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                &self.name,
                "start",
            ])
            .status();
    }
}

#[tokio::test]
#[ignore = "stops the machine's PostgreSQL: run alone by scripts/test.sh after pass 2"]
async fn pg_stopped_under_a_running_server_is_503_until_it_is_back() {
    crate::helpers::require_database_url();
    let app = TestApp::spawn().await;
    let u = app.signup("pgfault").await;
    let channel = app.create_channel(&u, "pg-fault", false).await;
    let path = format!("/api/channels/{channel}/messages");
    let send = |i: usize| {
        let (app, token, path) = (&app, u.token.clone(), path.clone());
        async move {
            let body = json!({"content": format!("pg message {i}"), "nonce": format!("p{i}")});
            json(app.send_as(Method::POST, &token, &path, &body).await).await
        }
    };
    assert_eq!(send(0).await.0, 201);

    let cluster = Cluster::local();
    cluster.ctl("stop");
    for i in 1..=3 {
        let (status, body) = send(i).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("SERVICE_UNAVAILABLE")),
            "{body}"
        );
    }
    let (status, health) = json(app.get("/health").await).await;
    assert_eq!(
        (status, health["checks"]["database"].as_str()),
        (503, Some("error")),
        "{health}"
    );

    cluster.ctl("start");
    let back = Instant::now();
    until_a_send_succeeds(
        &send,
        100,
        back,
        Duration::from_secs(10),
        "PostgreSQL came back",
    )
    .await;
    for j in 0..10 {
        assert_eq!(
            send(1000 + j).await.0,
            201,
            "every pooled connection is usable again"
        );
    }
    let (status, health) = json(app.get("/health").await).await;
    assert_eq!(status, 200, "{health}");
}

/// A `redis-server` of the test's own on `port`, stopped when dropped.
struct PrivateRedis(std::process::Child);

impl PrivateRedis {
    async fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server can be run");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self(child)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/users/online` as `token`'s user: the list as text, or `None` if not a 200.
async fn online(app: &TestApp, token: &str) -> Option<String> {
    let (status, body) = json(app.get_as(token, "/api/users/online").await).await;
    (status == 200).then(|| body["data"]["users"].to_string())
}

#[tokio::test]
#[ignore = "starts a redis-server of its own: run alone by scripts/test.sh"]
async fn redis_restarted_under_two_nodes_presence_and_delivery_come_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = PrivateRedis::start(port).await;
    let dir = std::sync::Arc::new(TempDir::new());
    let mut vars = test_vars(&dir);
    vars.insert("REDIS_URL".into(), format!("redis://127.0.0.1:{port}"));
    vars.insert(
        "REDIS_PREFIX".into(),
        format!("chai:test:{}:", crate::helpers::unique_name()),
    );
    let a = TestApp::spawn_in(dir.clone(), vars.clone()).await;
    let b = TestApp::spawn_in(dir.clone(), vars).await;
    let alice = a.signup("redisalice").await;
    let bob = a.signup("redisbob").await;
    let channel = a.create_channel(&alice, "redis-fault", false).await;
    b.post_as(&bob, &format!("/api/channels/{channel}/join"))
        .await;
    let mut on_b = b.socket(&bob).await;
    let joined = on_b
        .call("join-channel", &json!({"channelId": channel}))
        .await;
    assert_eq!(joined["success"], true, "{joined}");
    let heard = |text: &'static str| move |m: &Value| m["content"] == text;
    a.send_message(&alice, &channel, "before").await;
    on_b.events_before("new-message", heard("before"), Duration::from_secs(5))
        .await;
    let bob_id = bob.id.clone();
    assert!(
        online(&a, &alice.token).await.unwrap().contains(&bob_id),
        "bob is online before"
    );

    // Redis goes away: the nodes say so, and keep serving what does not need it.
    drop(redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = json(a.get("/health").await).await;
        if status == 503 {
            assert_eq!(health["checks"]["redis"], "error", "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "/health never noticed: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Back on the same port: health recovers, and a send on node a reaches node b again.
    redis = PrivateRedis::start(port).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while json(a.get("/health").await).await.0 != 200 {
        assert!(Instant::now() < deadline, "/health never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Redis came back empty: node b writes its presence again, so node a sees bob online
    // (within a heartbeat, a third of the 30 s presence lifetime).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !online(&a, &alice.token)
        .await
        .is_some_and(|users| users.contains(&bob_id))
    {
        assert!(
            Instant::now() < deadline,
            "bob never came back online in Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut crossed = false;
    for i in 0..30 {
        let text = format!("after {i}");
        a.send_message(&alice, &channel, &text).await;
        if on_b
            .event("new-message", Duration::from_millis(500))
            .await
            .is_some()
        {
            crossed = true;
            break;
        }
    }
    assert!(
        crossed,
        "no send of node a reached node b within 15 s of Redis coming back"
    );
    drop(redis);
}

#[tokio::test]
#[ignore = "mounts a tmpfs (needs root): run by scripts/test.sh when it can mount"]
async fn a_full_disk_under_log_dir_keeps_the_console_and_the_log_file_recovers() {
    let dir = TempDir::new();
    let disk = Tmpfs::mount(&dir.0, "1m");
    let logs = disk.0.join("logs");
    let (mut child, addr) = crate::process::start(
        &dir.0,
        &[
            ("LOG_DIR", logs.to_str().unwrap()),
            ("LOG_LEVEL", "info"),
            ("RATE_LIMIT_ENABLED", "false"),
        ],
    );
    let client = crate::helpers::http_client();
    // Requests whose log lines carry a marker of the phase they belong to.
    let ask = |phase: &'static str, n: usize| {
        let (client, addr) = (client.clone(), addr.clone());
        async move {
            for i in 0..n {
                let response = client
                    .get(format!("{addr}/health"))
                    .header("x-request-id", format!("{phase}-{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{phase}-{i}");
            }
        }
    };
    let logged = |path: &Path, phase: &str| -> usize {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"{phase}-")))
            .count()
    };
    let combined = logs.join("combined.log");
    let console = dir.0.join("stdout.log");
    let until = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    ask("before", 5).await;
    until("lines reach the file", &|| logged(&combined, "before") == 5);

    // The disk of LOG_DIR fills: the server answers as before, the console has every line;
    // the file takes what still fits in its last page, then nothing.
    fill(&disk.0.join("filler"));
    ask("full", 60).await;
    until("the console has every line", &|| {
        logged(&console, "full") == 60
    });
    let kept = logged(&combined, "full");
    assert!(kept < 50, "a full disk took {kept} of 60 lines");

    // Space returns: the next lines reach the file again, with no line broken by the loss.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    ask("after", 5).await;
    until("the file takes lines again", &|| {
        logged(&combined, "after") == 5
    });
    let lines = crate::process::json_lines(&combined);
    assert!(lines.len() >= 10, "{} lines", lines.len());
    let stderr = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
    assert!(stderr.contains("logging to the console only"), "{stderr}");
    assert!(stderr.contains("is writable again"), "{stderr}");

    crate::process::terminate(&child);
    crate::process::wait_with_deadline(&mut child, Duration::from_secs(10));
    drop(disk);
}
