//! A minimal Socket.IO v4 client (Engine.IO 4 over WebSocket) for the integration tests.
//! The official JS and Python clients are exercised by the end-to-end suites.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What the server sent, decoded.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// `42[name, data]`
    Event(String, Value),
    /// `43<id>[data]`
    Ack(u64, Value),
}

pub struct SioClient {
    out: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    next_ack: u64,
    backlog: Vec<Incoming>,
    pub closed: tokio::sync::watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SioClient {
    /// Dropping the client closes its connection, as a closed browser tab would.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How the handshake carries the token.
pub enum Auth<'a> {
    None,
    Payload(&'a str),
    Header(&'a str),
    Cookie(&'a str),
}

impl SioClient {
    /// Connects; `Err(message)` is the server's `connect_error` message.
    pub async fn connect(port: u16, auth: Auth<'_>) -> Result<Self, String> {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let mut request = url.into_client_request().unwrap();
        match auth {
            Auth::Header(t) => {
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            Auth::Cookie(t) => {
                request
                    .headers_mut()
                    .insert("cookie", format!("token={t}").parse().unwrap());
            }
            Auth::None | Auth::Payload(_) => {}
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let open = stream.next().await.unwrap().unwrap().into_text().unwrap();
        assert!(open.starts_with('0'), "{open}");
        let connect = match auth {
            Auth::Payload(t) => format!("40{}", json!({ "token": t })),
            _ => "40".to_owned(),
        };
        sink.send(Message::text(connect)).await.unwrap();
        loop {
            let frame = stream.next().await.unwrap().unwrap().into_text().unwrap();
            if let Some(body) = frame.strip_prefix("44") {
                let v: Value = serde_json::from_str(body).unwrap();
                return Err(v["message"].as_str().unwrap().to_owned());
            }
            if frame.starts_with("40") {
                break;
            }
        }
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        let pong = out.clone();
        let writer = tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader = tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Ok(text) = frame.into_text() else {
                    continue;
                };
                let text = text.to_string();
                if text == "2" {
                    let _ = pong.send("3".to_owned());
                } else if let Some(body) = text.strip_prefix("42") {
                    let v: Value = serde_json::from_str(body).unwrap();
                    let name = v[0].as_str().unwrap().to_owned();
                    let _ = in_tx.send(Incoming::Event(
                        name,
                        v.get(1).cloned().unwrap_or(Value::Null),
                    ));
                } else if let Some(body) = text.strip_prefix("43") {
                    let split = body.find('[').unwrap();
                    let id: u64 = body[..split].parse().unwrap();
                    let v: Value = serde_json::from_str(&body[split..]).unwrap();
                    let _ = in_tx.send(Incoming::Ack(id, v[0].clone()));
                } else if text.starts_with("41") || text == "1" {
                    break;
                }
            }
            let _ = closed_tx.send(true);
        });
        Ok(Self {
            out,
            incoming,
            next_ack: 0,
            backlog: Vec::new(),
            closed,
            tasks: vec![writer, reader],
        })
    }

    /// Emits without an ack.
    pub fn emit(&self, event: &str, data: &Value) {
        let _ = self.out.send(format!("42{}", json!([event, data])));
    }

    /// Sends a raw Engine.IO text frame.
    pub fn raw(&self, text: &str) {
        let _ = self.out.send(text.to_owned());
    }

    /// Emits and waits for the ack.
    pub async fn call(&mut self, event: &str, data: &Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let _ = self.out.send(format!("42{id}{}", json!([event, data])));
        let found = self
            .wait(
                Duration::from_secs(5),
                |m| matches!(m, Incoming::Ack(i, _) if *i == id),
            )
            .await
            .unwrap_or_else(|| panic!("no ack for {event}"));
        match found {
            Incoming::Ack(_, v) => v,
            Incoming::Event(..) => unreachable!(),
        }
    }

    async fn wait(
        &mut self,
        limit: Duration,
        want: impl Fn(&Incoming) -> bool,
    ) -> Option<Incoming> {
        if let Some(pos) = self.backlog.iter().position(&want) {
            return Some(self.backlog.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(m)) if want(&m) => return Some(m),
                Ok(Some(m)) => self.backlog.push(m),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next `name` event within `limit`.
    pub async fn event(&mut self, name: &str, limit: Duration) -> Option<Value> {
        match self
            .wait(limit, |m| matches!(m, Incoming::Event(n, _) if n == name))
            .await
        {
            Some(Incoming::Event(_, v)) => Some(v),
            _ => None,
        }
    }

    /// Every event that arrived before the first `name` event whose data `marker` accepts
    /// (the marker itself is consumed; acks stay for [`SioClient::call`]). The server
    /// delivers in order, so a marker sent after an action proves that nothing else the
    /// action caused is still on its way. Panics when the marker is not there within `limit`.
    pub async fn events_before(
        &mut self,
        name: &str,
        marker: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Vec<(String, Value)> {
        let is_marker = |m: &Incoming| matches!(m, Incoming::Event(n, v) if n == name && marker(v));
        let mut before = Vec::new();
        let mut kept = Vec::new();
        let mut found = false;
        for m in std::mem::take(&mut self.backlog) {
            if found {
                kept.push(m);
            } else if is_marker(&m) {
                found = true;
            } else if let Incoming::Event(n, v) = m {
                before.push((n, v));
            } else {
                kept.push(m);
            }
        }
        self.backlog = kept;
        let deadline = tokio::time::Instant::now() + limit;
        while !found {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(m)) if is_marker(&m) => found = true,
                Ok(Some(Incoming::Event(n, v))) => before.push((n, v)),
                Ok(Some(ack)) => self.backlog.push(ack),
                Ok(None) | Err(_) => {
                    panic!("no {name} marker within {limit:?}; before it: {before:?}")
                }
            }
        }
        before
    }
}
