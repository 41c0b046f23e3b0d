//! `TestApp::spawn()`: the real server on port 0, with a fresh database per test (a temp
//! SQLite file, or a fresh PostgreSQL schema when `TEST_DATABASE_URL` is set) and its own
//! Redis key prefix when `TEST_REDIS_URL` is set.
#![allow(dead_code)] // shared helpers: not every test module uses every one

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use chai_tapri::middleware::validate::JsonObject;
use chai_tapri::state::AppState;
use chai_tapri::{App, AppError, Config, Stopped};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A JWT secret shared by every test server, so a restarted server accepts old tokens.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// PostgreSQL URL for the second pass of the suite, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Redis URL for the second pass of the suite, if any.
pub fn test_redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The S3-compatible server of the second pass (`http://127.0.0.1:<port>`), if any.
pub fn test_s3_endpoint() -> Option<String> {
    std::env::var("TEST_S3_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Creates a bucket on the test's S3-compatible server (which takes unsigned requests).
pub fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("the S3 test server is up");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "bucket {bucket}: {answer}"
    );
}

/// PostgreSQL for a test that needs it (marked `#[ignore]`, run by the second pass).
pub fn require_database_url() -> String {
    test_database_url().expect("TEST_DATABASE_URL must name PostgreSQL for this test")
}

/// Redis for a test that needs it (marked `#[ignore]`, run by the second pass).
pub fn require_redis_url() -> String {
    test_redis_url().expect("TEST_REDIS_URL must name Redis for this test")
}

/// A client builder. reqwest shares the server's TLS features (for S3), which come without a
/// default crypto provider: the one the server uses is installed first.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A plain client.
pub fn http_client() -> reqwest::Client {
    client_builder().build().unwrap()
}

/// A unique, lower-case name for this test's database objects.
pub fn unique_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// A scratch folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("chai-tapri-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The variables of a test server: a fresh database and Redis prefix, fast bcrypt,
/// rate limits off (tests of the limits turn them on).
pub fn test_vars(dir: &TempDir) -> HashMap<String, String> {
    let name = unique_name();
    let mut vars: HashMap<String, String> = [
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", TEST_JWT_SECRET),
        ("BCRYPT_COST", "4"),
        ("RATE_LIMIT_ENABLED", "false"),
        ("SHUTDOWN_TIMEOUT", "5s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert("LOG_DIR".into(), dir.0.join("logs").display().to_string());
    // The second pass stores files in an S3-compatible server (`TEST_S3_ENDPOINT`), in a
    // bucket of the test's own.
    let storage = match test_s3_endpoint() {
        Some(endpoint) => {
            let bucket = name.replace('_', "-");
            create_bucket(&endpoint, &bucket);
            format!("s3://{bucket}?endpoint={endpoint}&region=us-east-1")
        }
        None => dir.0.join("uploads").display().to_string(),
    };
    vars.insert("STORAGE_URL".into(), storage);
    let database = match test_database_url() {
        Some(url) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}schema={name}")
        }
        None => format!("sqlite://{}", dir.0.join("chai-tapri.db").display()),
    };
    vars.insert("DATABASE_URL".into(), database);
    if let Some(redis) = test_redis_url() {
        vars.insert("REDIS_URL".into(), redis);
        vars.insert("REDIS_PREFIX".into(), format!("chai:test:{name}:"));
    }
    vars
}

/// Routes that exist only in tests, to drive faults through the real stack. `/__test/slow`
/// counts the requests that reached it in `slow_entered`.
fn fault_routes(slow_entered: Arc<AtomicUsize>) -> Router<AppState> {
    Router::new()
        .route(
            "/__test/panic",
            get(|| async {
                let v: Vec<u8> = Vec::new();
                // An index out of bounds, as a real bug would do.
                let i = v.len() + 3;
                v[i].to_string()
            }),
        )
        .route(
            "/__test/slow",
            get(move || async move {
                slow_entered.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "done"
            }),
        )
        .route(
            "/__test/fail",
            get(|| async { Err::<(), _>(AppError::internal("secret detail 10.1.2.3")) }),
        )
        .route(
            "/__test/echo",
            post(|JsonObject(body): JsonObject| async move { axum::Json(Value::Object(body)) }),
        )
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub vars: HashMap<String, String>,
    /// Requests that reached `/api/__test/slow`.
    pub slow_entered: Arc<AtomicUsize>,
    /// `http://host:port` of `GET /metrics`, when `METRICS_ADDR` is set.
    pub metrics_address: Option<String>,
    connections: chai_tapri::connections::OpenConnections,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<Stopped>>>,
    pub dir: std::sync::Arc<TempDir>,
}

impl TestApp {
    /// A server with the default test variables.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose variables `adjust` may change first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let dir = TempDir::new();
        let mut vars = test_vars(&dir);
        adjust(&mut vars);
        Self::spawn_in(std::sync::Arc::new(dir), vars).await
    }

    /// A server on `vars` whose files live in `dir` (a restart reuses both).
    pub async fn spawn_in(dir: std::sync::Arc<TempDir>, vars: HashMap<String, String>) -> Self {
        let config = Config::from_map(&vars).expect("test configuration is valid");
        let slow_entered = Arc::new(AtomicUsize::new(0));
        let app = App::build_with(config, Some(fault_routes(slow_entered.clone())))
            .await
            .expect("test server starts");
        let port = app.port();
        let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
        let state = app.state().clone();
        let connections = app.open_connections();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            state,
            vars,
            slow_entered,
            metrics_address,
            connections,
            shutdown: Some(tx),
            handle: Some(handle),
            dir,
        }
    }

    /// How many connections the server has open.
    pub fn open_connections(&self) -> usize {
        self.connections.count()
    }

    /// A socket of `user`, connected with the token in the handshake's `auth`.
    pub async fn socket(&self, user: &TestUser) -> chai_tapri_sio::SioClient {
        chai_tapri_sio::SioClient::connect(
            &self.address,
            chai_tapri_sio::Auth::Payload(&user.token),
        )
        .await
        .expect("the handshake is accepted")
    }

    /// Waits (at most 5 s) until `n` requests have reached `/api/__test/slow`.
    pub async fn until_slow_entered(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.slow_entered.load(Ordering::SeqCst) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no request reached /api/__test/slow"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asks the server to stop and waits for it.
    pub async fn stop(mut self) -> Stopped {
        self.stop_inner().await
    }

    async fn stop_inner(&mut self) -> Stopped {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.unwrap().unwrap(),
            None => Stopped::Clean,
        }
    }

    /// Stops this server and starts a new one on the same database and variables.
    pub async fn restart(mut self) -> Self {
        self.stop_inner().await;
        let mut vars = self.vars.clone();
        vars.insert("PORT".into(), "0".into());
        Self::spawn_in(self.dir.clone(), vars).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Status and JSON body of a response.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body)
}

/// Asserts an error envelope with `status` and `code`.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let (got, body) = json(response).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert_eq!(body["success"], false, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// A signed-up user and their token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl TestApp {
    /// Signs up `username` (email `<username>@example.com`, password `password-<username>`).
    pub async fn signup(&self, username: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let password = format!("password-{username}");
        let response = self
            .post_json(
                "/api/auth/signup",
                &serde_json::json!({ "username": username, "email": email, "password": password }),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{body}");
        TestUser {
            id: body["data"]["user"]["id"].as_str().unwrap().to_owned(),
            username: username.to_owned(),
            email,
            password,
            token: body["data"]["token"].as_str().unwrap().to_owned(),
        }
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A request with a JSON body and a bearer token.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Creates a channel as `user`; returns its id.
    pub async fn create_channel(&self, user: &TestUser, name: &str, private: bool) -> String {
        let response = self
            .send_as(
                reqwest::Method::POST,
                &user.token,
                "/api/channels",
                &serde_json::json!({ "name": name, "isPrivate": private }),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["channel"]["id"].as_str().unwrap().to_owned()
    }

    /// Sends a message as `user`; returns the message object.
    pub async fn send_message(&self, user: &TestUser, channel: &str, content: &str) -> Value {
        let response = self
            .send_as(
                reqwest::Method::POST,
                &user.token,
                &format!("/api/channels/{channel}/messages"),
                &serde_json::json!({ "content": content }),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["message"].clone()
    }

    /// Edits `message` (a message object) as `user`; returns the message as edited.
    pub async fn edit_message(&self, user: &TestUser, message: &Value, content: &str) -> Value {
        let response = self
            .send_as(
                reqwest::Method::PATCH,
                &user.token,
                &format!("/api/messages/{}", message["id"].as_str().unwrap()),
                &serde_json::json!({ "content": content }),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["message"].clone()
    }

    /// `user` joins `channel`.
    pub async fn join(&self, user: &TestUser, channel: &str) {
        let (status, body) = json(
            self.post_as(user, &format!("/api/channels/{channel}/join"))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Opens (or finds) the direct conversation of `user` and `other`; its id.
    pub async fn open_dm(&self, user: &TestUser, other: &TestUser) -> String {
        let (status, body) = json(
            self.send_as(
                reqwest::Method::POST,
                &user.token,
                "/api/dms",
                &serde_json::json!({ "userIds": [other.id] }),
            )
            .await,
        )
        .await;
        assert!(status == 200 || status == 201, "{body}");
        body["data"]["dm"]["id"].as_str().unwrap().to_owned()
    }

    /// POST with no body as `user`.
    pub async fn post_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// DELETE as `user`.
    pub async fn delete_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }
}

/// A JSON request to a server reached by address (a child process); the body it answered.
pub async fn call_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> Value {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap().json().await.unwrap()
}
