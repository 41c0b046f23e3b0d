//! A Socket.IO v4 client (Engine.IO 4 over WebSocket, namespace `/`, one packet per frame),
//! shared by the load tool and the integration tests so that both speak the protocol the
//! same way.
//!
//! - [`Socket`]: one connection driven by its caller — send, read the next packet. Cheap
//!   enough for the load tool to hold tens of thousands.
//! - [`SioClient`]: a socket on a task of its own, for tests: emit, call and wait for an ack,
//!   wait for an event (every wait with a deadline), or take everything that arrived before a
//!   marker event.

use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How the handshake carries the token.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No token at all.
    None,
    /// `auth: {token}` in the CONNECT packet.
    Payload(&'a str),
    /// `Authorization: Bearer <token>` on the WebSocket upgrade.
    Header(&'a str),
    /// `Cookie: token=<token>` on the WebSocket upgrade.
    Cookie(&'a str),
}

/// Why a connection did not come up.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered the CONNECT with `connect_error`; this is its `message`.
    Refused(String),
    /// The TCP connection, the WebSocket handshake or the Engine.IO handshake failed.
    Transport(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(message) => write!(f, "connect_error {message}"),
            Self::Transport(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A Socket.IO packet, as read off the wire.
#[derive(Debug)]
pub enum Packet {
    /// `42[...]`: an event (the whole frame).
    Event(Utf8Bytes),
    /// `43<id>[...]`: the answer to an ack (the whole frame).
    Ack(u64, Utf8Bytes),
    /// `41` (Socket.IO disconnect) or `1` (Engine.IO close): the server hung up.
    Disconnect,
    /// Anything else (connect, connect_error, binary…): the whole frame.
    Other(Utf8Bytes),
}

/// tungstenite zero-fills its whole read buffer before every read (128 KiB by default): with
/// thousands of sockets each reading one small frame at a time, that memset was a third of the
/// load tool's CPU. Frames larger than this still arrive whole; the buffer grows for them.
const READ_BUFFER: usize = 4096;

/// One connection, driven by its caller.
pub struct Socket {
    ws: WebSocketStream<TcpStream>,
}

impl Socket {
    /// Opens a WebSocket to `<base>/socket.io/` (`base` is `http://host:port`) and connects
    /// to namespace `/`; resolves once the server answered the CONNECT.
    ///
    /// # Errors
    /// [`ConnectError::Refused`] with the server's `connect_error` message, or
    /// [`ConnectError::Transport`].
    pub async fn connect(base: &str, auth: Auth<'_>) -> Result<Self, ConnectError> {
        let transport =
            |what: &str, e: &dyn fmt::Display| ConnectError::Transport(format!("{what}: {e}"));
        let host = base
            .strip_prefix("http://")
            .ok_or_else(|| {
                ConnectError::Transport(format!("{base}: the URL must start with http://"))
            })?
            .trim_end_matches('/');
        let tcp = TcpStream::connect(host)
            .await
            .map_err(|e| transport("TCP connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| transport("TCP_NODELAY", &e))?;
        let mut request = format!("ws://{host}/socket.io/?EIO=4&transport=websocket")
            .into_client_request()
            .map_err(|e| transport("WebSocket request", &e))?;
        let header = match auth {
            Auth::Header(t) => Some(("authorization", format!("Bearer {t}"))),
            Auth::Cookie(t) => Some(("cookie", format!("token={t}"))),
            Auth::None | Auth::Payload(_) => None,
        };
        if let Some((name, value)) = header {
            let value = HeaderValue::from_str(&value).map_err(|e| transport("token header", &e))?;
            request.headers_mut().insert(name, value);
        }
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
            .await
            .map_err(|e| transport("WebSocket handshake", &e))?;
        let mut socket = Self { ws };
        let read = |e: tokio_tungstenite::tungstenite::Error| transport("read", &e);
        match socket.text().await.map_err(read)? {
            Some(open) if open.starts_with('0') => {}
            other => {
                return Err(ConnectError::Transport(format!(
                    "expected the Engine.IO OPEN packet, got {other:?}"
                )));
            }
        }
        let connect = match auth {
            Auth::Payload(t) => format!("40{}", json!({ "token": t })),
            _ => "40".to_owned(),
        };
        socket
            .send(connect)
            .await
            .map_err(|e| transport("write", &e))?;
        loop {
            match socket.text().await.map_err(read)? {
                Some(t) if t.starts_with("40") => return Ok(socket),
                Some(t) if t.starts_with("44") => {
                    let v: Value = serde_json::from_str(&t[2..]).unwrap_or(Value::Null);
                    let message = v["message"].as_str().unwrap_or(t.as_str()).to_owned();
                    return Err(ConnectError::Refused(message));
                }
                Some(_) => {}
                None => {
                    return Err(ConnectError::Transport(
                        "closed before CONNECT was answered".to_owned(),
                    ));
                }
            }
        }
    }

    /// Sends one text frame as it is (an Engine.IO packet).
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send(
        &mut self,
        text: String,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::text(text)).await
    }

    /// `42[event,payload]`, or `42<ack>[event,payload]` when an ack is asked for.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn emit(
        &mut self,
        ack: Option<u64>,
        event: &str,
        payload: &Value,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let frame = json!([event, payload]);
        self.send(match ack {
            Some(id) => format!("42{id}{frame}"),
            None => format!("42{frame}"),
        })
        .await
    }

    /// The next text frame; answers Engine.IO pings on the way. `None` once closed.
    async fn text(&mut self) -> Result<Option<Utf8Bytes>, tokio_tungstenite::tungstenite::Error> {
        while let Some(msg) = self.ws.next().await {
            match msg? {
                Message::Text(t) if t.as_str() == "2" => self.send("3".to_owned()).await?,
                Message::Text(t) => return Ok(Some(t)),
                Message::Close(_) => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }

    /// The next packet; `None` once the connection is closed.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn next(&mut self) -> Result<Option<Packet>, tokio_tungstenite::tungstenite::Error> {
        let Some(t) = self.text().await? else {
            return Ok(None);
        };
        let s = t.as_str();
        Ok(Some(if s.starts_with("42") {
            Packet::Event(t)
        } else if let Some(rest) = s.strip_prefix("43") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            match rest[..digits].parse() {
                Ok(id) => Packet::Ack(id, t),
                Err(_) => Packet::Other(t),
            }
        } else if s.starts_with("41") || s == "1" {
            Packet::Disconnect
        } else {
            Packet::Other(t)
        }))
    }

    /// Emits with ack `id` and waits for its answer, dropping every other packet on the way:
    /// the ack frame, or `None` when the connection closed first.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn call(
        &mut self,
        id: u64,
        event: &str,
        payload: &Value,
    ) -> Result<Option<Utf8Bytes>, tokio_tungstenite::tungstenite::Error> {
        self.emit(Some(id), event, payload).await?;
        loop {
            match self.next().await? {
                Some(Packet::Ack(got, frame)) if got == id => return Ok(Some(frame)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Hangs up without a Socket.IO or WebSocket goodbye, as a lost network would: the
    /// server sees the TCP stream end; whatever was still unread is lost with it.
    pub async fn hang_up(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(self.ws.get_mut()).await;
    }
}

/// An event frame's name and data (`null` when it has none).
#[must_use]
pub fn event_of(frame: &str) -> Option<(String, Value)> {
    let v: Value = serde_json::from_str(frame.strip_prefix("42")?).ok()?;
    let name = v.get(0)?.as_str()?.to_owned();
    Some((name, v.get(1).cloned().unwrap_or(Value::Null)))
}

/// An ack frame's first argument.
#[must_use]
pub fn ack_of(frame: &str) -> Option<Value> {
    let rest = frame.strip_prefix("43")?;
    let v: Value = serde_json::from_str(&rest[rest.find('[')?..]).ok()?;
    v.get(0).cloned()
}

/// What a [`SioClient`] received, decoded.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An event and its data.
    Event(String, Value),
    /// The answer to one of the client's acks.
    Ack(u64, Value),
}

/// A connection on a task of its own, for tests. Dropping it closes the connection without
/// a goodbye, as a closed browser tab would.
pub struct SioClient {
    out: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    next_ack: u64,
    backlog: Vec<Incoming>,
    /// Becomes `true` when the server closed the connection.
    pub closed: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SioClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long [`SioClient::call`] waits for an ack.
const ACK_WAIT: Duration = Duration::from_secs(5);

impl SioClient {
    /// Connects over WebSocket to `base` (`http://host:port`); `Err` is the server's
    /// `connect_error` message.
    ///
    /// # Panics
    /// The server cannot be reached or breaks the protocol (a test failure).
    pub async fn connect(base: &str, auth: Auth<'_>) -> Result<Self, String> {
        let mut socket = match Socket::connect(base, auth).await {
            Ok(socket) => socket,
            Err(ConnectError::Refused(message)) => return Err(message),
            Err(e @ ConnectError::Transport(_)) => panic!("cannot connect to {base}: {e}"),
        };
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    text = out_rx.recv() => {
                        let Some(text) = text else { break };
                        if socket.send(text).await.is_err() {
                            break;
                        }
                    }
                    packet = socket.next() => match packet {
                        Ok(Some(Packet::Event(t))) => {
                            if let Some((name, data)) = event_of(&t) {
                                let _ = in_tx.send(Incoming::Event(name, data));
                            }
                        }
                        Ok(Some(Packet::Ack(id, t))) => {
                            let _ = in_tx.send(Incoming::Ack(id, ack_of(&t).unwrap_or(Value::Null)));
                        }
                        Ok(Some(Packet::Other(_))) => {}
                        Ok(Some(Packet::Disconnect) | None) | Err(_) => break,
                    },
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
            task,
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

    /// Emits and waits (at most 5 s) for the ack; its first argument.
    ///
    /// # Panics
    /// No ack within 5 s.
    pub async fn call(&mut self, event: &str, data: &Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let _ = self.out.send(format!("42{id}{}", json!([event, data])));
        match self
            .wait(ACK_WAIT, |m| matches!(m, Incoming::Ack(i, _) if *i == id))
            .await
        {
            Some(Incoming::Ack(_, v)) => v,
            _ => panic!("no ack for {event} within {ACK_WAIT:?}"),
        }
    }

    /// The first message `want` takes, from the backlog or within `limit`; the others that
    /// arrive meanwhile are kept in order.
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
    /// action caused is still on its way.
    ///
    /// # Panics
    /// The marker is not there within `limit`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_to_their_event_or_ack() {
        assert_eq!(
            event_of(r#"42["new-message",{"id":1}]"#),
            Some(("new-message".to_owned(), json!({"id": 1})))
        );
        assert_eq!(
            event_of(r#"42["ping"]"#),
            Some(("ping".to_owned(), Value::Null))
        );
        assert_eq!(event_of("43[1]"), None);
        assert_eq!(
            ack_of(r#"4317[{"success":true}]"#),
            Some(json!({"success": true}))
        );
        assert_eq!(ack_of("42[]"), None);
    }
}
