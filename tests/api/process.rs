//! The binary itself: configuration errors, first run on the embedded default, log files,
//! and SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use reqwest::Method;

use crate::helpers::{TempDir, call_json, unique_name};
use chai_tapri_sio::{Auth, SioClient};

const BIN: &str = env!("CARGO_BIN_EXE_chai-tapri");

/// The binary in `dir`, with nothing from the test runner's environment.
pub(crate) fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_clear().envs(vars.iter().copied());
    cmd
}

/// Starts the binary on a free port with JSON console logs (stderr to `stderr.log` in `dir`);
/// returns it and its address.
pub(crate) fn start(dir: &Path, vars: &[(&str, &str)]) -> (Child, String) {
    start_limited(dir, vars, None)
}

/// As [`start`], with the open-file limit (soft and hard) of the process set to `nofile`.
pub(crate) fn start_limited(
    dir: &Path,
    vars: &[(&str, &str)],
    nofile: Option<u64>,
) -> (Child, String) {
    let mut all = vec![
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("SHUTDOWN_TIMEOUT", "5s"),
    ];
    all.extend_from_slice(vars);
    let mut cmd = match nofile {
        None => command(dir, &all),
        Some(n) => {
            let mut cmd = Command::new("/usr/bin/prlimit");
            cmd.arg(format!("--nofile={n}:{n}"))
                .arg(BIN)
                .current_dir(dir)
                .env_clear()
                .envs(all.iter().copied());
            cmd
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read on a thread of its own, which keeps draining stdout afterwards (into
    // `stdout.log` in `dir`) so the server never blocks on a full pipe; the address must
    // come within 30 s.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut copy = std::fs::File::create(dir.join("stdout.log")).unwrap();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(copy, "{line}");
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "chai-tapri listening"
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(event["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server printed its address within 30 s");
    (child, addr)
}

/// Signs `name` (`<name>@example.com`) up on the binary at `addr`; the whole answer.
pub(crate) async fn signup_at(
    client: &reqwest::Client,
    addr: &str,
    name: &str,
    password: &str,
) -> Value {
    let body = serde_json::json!({"username": name, "email": format!("{name}@example.com"), "password": password});
    call_json(
        client,
        Method::POST,
        format!("{addr}/api/auth/signup"),
        None,
        Some(&body),
    )
    .await
}

pub(crate) fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub(crate) fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the server did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?}: not JSON ({e}): {l}"))
        })
        .collect()
}

#[test]
fn a_bad_value_stops_the_start_with_one_line_naming_the_variable() {
    let dir = TempDir::new();
    for (var, value) in [
        ("PORT", "abc"),
        ("JWT_EXPIRES_IN", "7x"),
        ("RATE_LIMIT_API", "lots"),
        ("DATABASE_URL", "mysql://localhost/chat"),
    ] {
        let output = command(&dir.0, &[(var, value)]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("{var}: expected")), "{stderr}");
    }
    assert!(
        !dir.0.join("data").exists(),
        "nothing is created before the configuration is valid"
    );
}

#[test]
fn help_and_version_print_and_exit_0_and_an_unknown_argument_is_a_usage_error() {
    let dir = TempDir::new();
    let secret = "a-secret-that-help-must-never-show-0123456789";
    let help = command(&dir.0, &[("JWT_SECRET", secret)])
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    for expected in [
        "Usage: chai-tapri",
        "--port <PORT>",
        "[env: PORT]",
        "[default: 3000]",
        "--database-url",
        "--jwt-secret",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    assert!(
        !text.contains(secret),
        "the environment's values stay hidden:\n{text}"
    );

    let version = command(&dir.0, &[]).arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("chai-tapri {}", env!("CARGO_PKG_VERSION"))
    );

    for bad in ["--bogus", "serve-please"] {
        let output = command(&dir.0, &[]).arg(bad).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("Usage: chai-tapri"), "{stderr}");
        assert!(stderr.contains(bad), "{stderr}");
    }
    assert!(
        !dir.0.join("data").exists() && !dir.0.join("logs").exists(),
        "help, version and a usage error start nothing"
    );
}

#[test]
fn a_flag_wins_over_the_environment() {
    let dir = TempDir::new();
    let output = command(&dir.0, &[("PORT", "0")])
        .args(["--port", "abc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("PORT: expected a port number"), "{stderr}");
}

#[test]
fn production_refuses_to_start_without_a_strong_jwt_secret() {
    let dir = TempDir::new();
    let output = command(
        &dir.0,
        &[("APP_ENV", "production"), ("JWT_SECRET", "too-short")],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("JWT_SECRET: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too-short"),
        "the secret is never printed: {stderr}"
    );
}

#[test]
fn values_in_dot_env_are_read_and_the_environment_wins() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join(".env"), "PORT=abc\nBCRYPT_COST=99\n").unwrap();
    let output = command(&dir.0, &[("PORT", "0")]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("BCRYPT_COST"),
        "PORT came from the environment, BCRYPT_COST from .env: {stderr}"
    );
}

#[tokio::test]
async fn the_first_run_creates_the_database_answers_health_logs_json_and_exits_0_on_sigterm() {
    let dir = TempDir::new();
    let (mut child, addr) = start(&dir.0, &[]);
    assert!(dir.0.join("data/chai-tapri.db").exists());
    let body: Value = crate::helpers::http_client()
        .get(format!("{addr}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["redis"], "disabled");
    let response = crate::helpers::http_client()
        .get(format!("{addr}/api/nope"))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let started = Instant::now();
    terminate(&child);
    let status = wait_with_deadline(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));

    let lines = json_lines(&dir.0.join("logs/combined.log"));
    let request_line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == request_id.as_str())
        .expect("the request is logged with its id");
    assert_eq!(request_line["status"], 404);
    assert_eq!(request_line["span"]["method"], "GET");
    assert!(request_line["latency_ms"].is_number());
    assert!(request_line["timestamp"].is_string() && request_line["level"] == "INFO");
    assert!(lines.iter().any(|l| l["message"] == "server stopped"));
}

#[tokio::test]
async fn sigterm_with_sockets_open_stores_their_last_seen_and_panics_nowhere() {
    let dir = TempDir::new();
    let vars = [
        ("BCRYPT_COST", "4"),
        ("JWT_SECRET", "sigterm-test-secret-sigterm-test-secret"),
    ];
    let (mut child, addr) = start(&dir.0, &vars);
    let client = crate::helpers::http_client();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut sockets = Vec::new();
    let mut ids = Vec::new();
    for name in ["ravi_online", "meera_online"] {
        let r = signup_at(&client, &addr, name, "correct-horse").await;
        let token = r["data"]["token"].as_str().unwrap().to_owned();
        ids.push((
            r["data"]["user"]["id"].as_str().unwrap().to_owned(),
            token.clone(),
        ));
        sockets.push(
            SioClient::connect(&format!("http://127.0.0.1:{port}"), Auth::Payload(&token))
                .await
                .unwrap(),
        );
    }
    let (id, token) = &ids[0];
    let before = call_json(
        &client,
        Method::GET,
        format!("{addr}/api/users/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(before["data"]["user"]["isOnline"], true, "{before}");

    terminate(&child);
    assert_eq!(
        wait_with_deadline(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
    let stderr = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let warnings: Vec<Value> = json_lines(&dir.0.join("logs/combined.log"))
        .into_iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");

    // The next start shows both users offline, with the moment the server closed their sockets.
    let (mut child, addr) = start(&dir.0, &vars);
    for (id, token) in &ids {
        let after = call_json(
            &client,
            Method::GET,
            format!("{addr}/api/users/{id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(after["data"]["user"]["isOnline"], false, "{after}");
        assert!(after["data"]["user"]["lastSeen"].is_string(), "{after}");
    }
    terminate(&child);
    wait_with_deadline(&mut child, Duration::from_secs(10));
    drop(sockets);
}

#[test]
fn a_start_that_fails_says_why_on_stderr_and_in_error_log() {
    let dir = TempDir::new();
    let output = command(
        &dir.0,
        &[(
            "DATABASE_URL",
            "postgres://nobody:pw-not-logged@127.0.0.1:1/none",
        )],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    let errors = json_lines(&dir.0.join("logs/error.log"));
    assert!(!errors.is_empty(), "the failure reached error.log");
    assert!(errors.iter().all(|l| l["level"] == "ERROR"));
    let all = std::fs::read_to_string(dir.0.join("logs/combined.log")).unwrap() + &stderr;
    assert!(
        !all.contains("pw-not-logged"),
        "passwords never reach a log: {all}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: run by the second pass (scripts/test.sh)"]
async fn the_same_binary_runs_on_postgres_and_redis() {
    let (db, redis) = (
        crate::helpers::require_database_url(),
        crate::helpers::require_redis_url(),
    );
    let dir = TempDir::new();
    let name = unique_name();
    let sep = if db.contains('?') { '&' } else { '?' };
    let database = format!("{db}{sep}schema={name}");
    let prefix = format!("chai:test:{name}:");
    let (mut child, addr) = start(
        &dir.0,
        &[
            ("DATABASE_URL", &database),
            ("REDIS_URL", &redis),
            ("REDIS_PREFIX", &prefix),
        ],
    );
    let body: Value = crate::helpers::http_client()
        .get(format!("{addr}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
    terminate(&child);
    assert_eq!(
        wait_with_deadline(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
}

#[tokio::test]
async fn passwords_tokens_and_the_jwt_secret_never_reach_the_logs() {
    let dir = TempDir::new();
    let secret = "jwt-secret-that-must-never-be-logged-0123456789";
    let (mut child, addr) = start(
        &dir.0,
        &[
            ("LOG_LEVEL", "trace"),
            ("BCRYPT_COST", "4"),
            ("JWT_SECRET", secret),
        ],
    );
    let client = crate::helpers::http_client();
    let password = "pass-word-never-logged";
    let signup = signup_at(&client, &addr, "quiet", password).await;
    let token = signup["data"]["token"].as_str().unwrap().to_owned();
    let login = serde_json::json!({"username": "quiet", "password": password});
    let logged_in = call_json(
        &client,
        Method::POST,
        format!("{addr}/api/auth/login"),
        None,
        Some(&login),
    )
    .await;
    let second = logged_in["data"]["token"].as_str().unwrap().to_owned();
    let wrong = serde_json::json!({"username": "quiet", "password": "wrong-pass-never-logged"});
    client
        .post(format!("{addr}/api/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    let me = client
        .get(format!("{addr}/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    client
        .post(format!("{addr}/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    terminate(&child);
    wait_with_deadline(&mut child, Duration::from_secs(5));

    let logs = std::fs::read_to_string(dir.0.join("logs/combined.log")).unwrap();
    assert!(logs.lines().count() > 10, "trace level logs a lot: {logs}");
    let user_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "request completed" && l["span"]["route"] == "/api/auth/me")
        .expect("the me request is logged");
    assert_eq!(
        user_line["span"]["user_id"], signup["data"]["user"]["id"],
        "user id when known"
    );
    for secret_text in [password, "wrong-pass-never-logged", &token, &second, secret] {
        assert!(
            !logs.contains(secret_text),
            "a secret reached the log: {secret_text}"
        );
    }
    // The bcrypt hash is not logged either.
    assert!(!logs.contains("$2b$"), "a password hash reached the log");
}

/// `deploy/logrotate/chai-tapri`, run by the real logrotate against this server's files
/// (paths, user and `postrotate` pointed at the test's own), while requests keep coming.
#[tokio::test]
async fn logrotate_with_sighup_loses_no_line_and_duplicates_none() {
    let logrotate = ["/usr/sbin/logrotate", "/usr/bin/logrotate"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("logrotate is installed (scripts/test.sh installs it)");
    let dir = TempDir::new();
    let (mut child, addr) = start(&dir.0, &[("LOG_ROTATION", "off")]);
    let logs = dir.0.join("logs");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/logrotate/chai-tapri"
    ))
    .unwrap();
    let config = shipped
        .replace("/var/log/chai-tapri", &logs.display().to_string())
        .replace("su chai-tapri chai-tapri", "su root root")
        .replace(
            "systemctl reload chai-tapri.service >/dev/null 2>&1 || true",
            &format!("kill -HUP {}", child.id()),
        );
    assert!(
        config.contains("kill -HUP"),
        "the shipped postrotate was found"
    );
    let conf = dir.0.join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();

    // Requests with ids of our own, one after the other, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            let client = crate::helpers::http_client();
            let mut sent = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = client
                    .get(format!("{addr}/health"))
                    .header("x-request-id", format!("rot-{sent}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                sent += 1;
            }
            sent
        })
    };
    let completed = |path: &Path| -> Vec<String> {
        json_lines(path)
            .into_iter()
            .filter(|l| l["message"] == "request completed")
            .filter_map(|l| l["span"]["request_id"].as_str().map(str::to_owned))
            .filter(|id| id.starts_with("rot-"))
            .collect()
    };
    let live = logs.join("combined.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while completed(&live).len() < 50 {
        assert!(Instant::now() < deadline, "requests reach the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = dir.0.join("logrotate.state");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(logrotate)
            .arg("--force")
            .arg("--state")
            .arg(&state)
            .arg(&conf)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The reopened file takes requests again.
    while completed(&live).len() < 50 {
        assert!(
            Instant::now() < deadline,
            "the reopened file takes new lines"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = sender.await.unwrap();
    terminate(&child);
    assert!(wait_with_deadline(&mut child, Duration::from_secs(15)).success());

    let rotated: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("combined.log-")
        })
        .collect();
    assert_eq!(rotated.len(), 1, "one rotated file: {rotated:?}");
    let before = completed(&rotated[0]);
    let after = completed(&live);
    assert!(!before.is_empty() && !after.is_empty());
    let mut all: Vec<String> = before.into_iter().chain(after).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no line twice");
    let expected: std::collections::BTreeSet<String> =
        (0..sent).map(|n| format!("rot-{n}")).collect();
    let got: std::collections::BTreeSet<String> = all.into_iter().collect();
    assert_eq!(got, expected, "every request of the {sent} is logged once");
    let reopened = json_lines(&live)
        .iter()
        .any(|l| l["message"] == "SIGHUP: log files reopened");
    assert!(reopened, "the server says it reopened its files");
}

#[tokio::test]
async fn an_admin_name_no_account_holds_is_warned_of_at_start_until_it_is_taken() {
    let dir = TempDir::new();
    let vars = [("BCRYPT_COST", "4"), ("ADMIN_USERNAMES", "Ghost,asha")];
    let warnings = |dir: &Path| -> Vec<String> {
        json_lines(&dir.join("stdout.log"))
            .into_iter()
            .filter(|l| l["level"] == "WARN" && l["username"].is_string())
            .map(|l| l["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let (mut child, addr) = start(&dir.0, &vars);
    assert_eq!(warnings(&dir.0), ["ghost", "asha"]);
    let client = crate::helpers::http_client();
    let signed = signup_at(&client, &addr, "GHOST", "correct-horse").await;
    assert_eq!(signed["data"]["user"]["isAdmin"], true, "{signed}");
    terminate(&child);
    wait_with_deadline(&mut child, Duration::from_secs(10));

    let (mut child, _) = start(&dir.0, &vars);
    assert_eq!(
        warnings(&dir.0),
        ["asha"],
        "the name taken is no longer warned of"
    );
    terminate(&child);
    wait_with_deadline(&mut child, Duration::from_secs(10));
}
