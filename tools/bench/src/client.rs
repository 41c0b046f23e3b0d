//! The two clients the scenarios drive: the REST API (reqwest) and Socket.IO (the shared
//! client crate, `chai-tapri-sio`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
pub use chai_tapri_sio::{Auth, Packet, Socket as Sio};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
}

#[derive(Clone, Debug)]
pub struct Account {
    pub token: String,
}

/// The `data` of a success envelope, or an error naming the route, status and error code.
pub async fn data(what: &str, response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{what}: {status} without a JSON body"))?;
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("?");
        let hint = if status == 429 {
            " (start the server with RATE_LIMIT_ENABLED=false)"
        } else {
            ""
        };
        bail!("{what}: {status} {code}{hint}");
    }
    Ok(body["data"].clone())
}

/// Setup requests (signups, channels, joins) retried while the server answers 503 or 429:
/// an overloaded server during setup should slow the run down, not end it.
async fn setup_request(
    what: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let mut wait = Duration::from_millis(100);
    for _ in 0..8 {
        let r = build().send().await?;
        if r.status() == 503 || r.status() == 429 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            continue;
        }
        return data(what, r).await;
    }
    data(what, build().send().await?).await
}

impl Api {
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        // Built in one workspace with the server, reqwest carries TLS with no default
        // provider; any second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api{path}", self.base)
    }

    pub async fn signup(&self, username: &str) -> anyhow::Result<Account> {
        let body = json!({
            "username": username,
            "email": format!("{username}@bench.example.com"),
            "password": "bench-password",
        });
        let d = setup_request("POST /auth/signup", || {
            self.http.post(self.url("/auth/signup")).json(&body)
        })
        .await?;
        Ok(Account {
            token: d["token"]
                .as_str()
                .context("signup without a token")?
                .to_owned(),
        })
    }

    /// `n` accounts named `<prefix>u<i>`, `concurrency` signups at a time, in order.
    pub async fn signup_many(
        &self,
        prefix: &str,
        n: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Account>> {
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (api, gate, name) = (self.clone(), gate.clone(), format!("{prefix}u{i}"));
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                api.signup(&name).await
            }));
        }
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await??);
        }
        Ok(out)
    }

    /// The tokens of two accounts, `<prefix>u0` and `<prefix>u1`.
    pub async fn signup_pair(&self, prefix: &str) -> anyhow::Result<(String, String)> {
        let mut accounts = self.signup_many(prefix, 2, 2).await?.into_iter();
        match (accounts.next(), accounts.next()) {
            (Some(a), Some(b)) => Ok((a.token, b.token)),
            _ => anyhow::bail!("two signups gave fewer than two accounts"),
        }
    }

    pub async fn create_channel(&self, token: &str, name: &str) -> anyhow::Result<String> {
        let d = setup_request("POST /channels", || {
            self.http
                .post(self.url("/channels"))
                .bearer_auth(token)
                .json(&json!({ "name": name }))
        })
        .await?;
        Ok(d["channel"]["id"]
            .as_str()
            .context("channel without id")?
            .to_owned())
    }

    pub async fn join(&self, token: &str, channel: &str) -> anyhow::Result<()> {
        let url = self.url(&format!("/channels/{channel}/join"));
        setup_request("POST /channels/:id/join", || {
            self.http.post(&url).bearer_auth(token)
        })
        .await
        .map(drop)
    }

    /// `n` new users named after `prefix`, all members of one new channel: their tokens (the
    /// first one owns it) and the channel id.
    pub async fn channel_of(
        &self,
        prefix: &str,
        n: usize,
    ) -> anyhow::Result<(Vec<String>, String)> {
        let tokens: Vec<String> = self
            .signup_many(prefix, n.max(1), 32)
            .await?
            .into_iter()
            .map(|a| a.token)
            .collect();
        let channel = self
            .create_channel(&tokens[0], &format!("{prefix}c"))
            .await?;
        let pairs = tokens[1..]
            .iter()
            .map(|t| (t.clone(), channel.clone()))
            .collect();
        self.join_many(pairs, 32).await?;
        Ok((tokens, channel))
    }

    /// Joins every `(account, channel)` pair, `concurrency` at a time.
    pub async fn join_many(
        &self,
        pairs: Vec<(String, String)>,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(pairs.len());
        for (token, channel) in pairs {
            let (api, gate) = (self.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                api.join(&token, &channel).await
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(())
    }

    pub async fn post_message(
        &self,
        token: &str,
        channel: &str,
        content: &str,
    ) -> anyhow::Result<String> {
        let r = self
            .http
            .post(self.url(&format!("/channels/{channel}/messages")))
            .bearer_auth(token)
            .json(&json!({ "content": content }))
            .send()
            .await?;
        let d = data("POST /channels/:id/messages", r).await?;
        Ok(d["message"]["id"]
            .as_str()
            .context("message without id")?
            .to_owned())
    }

    /// One page of history (`query` without the leading `?`): the messages, oldest first.
    pub async fn messages(
        &self,
        token: &str,
        channel: &str,
        query: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let r = self
            .http
            .get(self.url(&format!("/channels/{channel}/messages?{query}")))
            .bearer_auth(token)
            .send()
            .await?;
        let mut d = data("GET /channels/:id/messages", r).await?;
        match d["messages"].take() {
            Value::Array(list) => Ok(list),
            _ => bail!("GET /channels/:id/messages: no messages array"),
        }
    }
}

/// Emits with an ack and waits for it; an error naming the event and the refusal's code.
pub async fn call(sio: &mut Sio, ack: u64, event: &str, payload: &Value) -> anyhow::Result<()> {
    match sio.call(ack, event, payload).await? {
        Some(frame) if ok_ack(&frame) => Ok(()),
        Some(frame) => Err(anyhow!("{event}: {}", error_code(&frame))),
        None => bail!("{event}: closed before the ack"),
    }
}

/// Whether an ack frame carries a success envelope: `success` is the envelope's first or last
/// key (a server may order keys either way), never searched for inside `data`.
pub fn ok_ack(frame: &str) -> bool {
    frame.ends_with("\"success\":true}]")
        || frame
            .find('[')
            .is_some_and(|i| frame[i..].starts_with("[{\"success\":true"))
}

/// The `code` of an error envelope in a frame, `?` when there is none.
pub fn error_code(frame: &str) -> String {
    frame
        .split_once("\"code\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(|| "?".to_owned(), |(code, _)| code.to_owned())
}

/// Time since a fixed instant, in microseconds (the clock content stamps use).
pub fn micros_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}
