//! The pub/sub driver under the Socket.IO Redis adapter, one that survives Redis going away.
//!
//! socketioxide-redis's own driver holds one multiplexed connection and never reconnects: after
//! a Redis restart every broadcast is still published by nobody's connection and heard by no
//! other node, while sends keep being acknowledged. This one runs on a
//! [`ConnectionManager`], which reconnects by itself and subscribes again to every channel it
//! was subscribed to (RESP3 push messages), so cross-node delivery resumes with Redis.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

tokio::task_local! {
    /// Set around the broadcast of a new message: the key that records, in the same script as
    /// the publish, that it was published (`backends::redis::RedisBackends::announced_key`).
    pub static ANNOUNCING: String;
}

/// Publishes and records the publication at once, so that a node dying between the two
/// cannot leave a published message unrecorded (a retry of its send would announce it
/// twice) or a recorded one unpublished. KEYS[1] record; ARGV: channel, payload, record ms.
static PUBLISH_AND_RECORD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
",
    )
});

/// Each subscribed channel's queue to the adapter.
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// A Redis pub/sub driver that reconnects and resubscribes by itself.
#[derive(Clone)]
pub struct ResilientDriver {
    handlers: Handlers,
    conn: ConnectionManager,
    /// The completion of the latest publish: each publish returns only after the one
    /// called before it (see [`ResilientDriver::publish`]).
    latest: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
}

/// A push message's channel and payload, when it is a published message.
fn message_of(push: PushInfo) -> Option<ChanItem> {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return None;
    }
    let mut data = push.data.into_iter();
    let channel: String = redis::from_redis_value(data.next()?).ok()?;
    let payload: Vec<u8> = redis::from_redis_value(data.next()?).ok()?;
    Some((channel, payload))
}

fn deliver(push: PushInfo, handlers: &Handlers) {
    let Some((channel, payload)) = message_of(push) else {
        return;
    };
    let handlers = handlers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(tx) = handlers.get(&channel)
        && tx.try_send((channel, payload)).is_err()
    {
        tracing::warn!("a Socket.IO adapter channel is full or gone: a broadcast was dropped");
    }
}

impl ResilientDriver {
    /// Connects (the client must speak RESP3, for push messages).
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn connect(client: redis::Client) -> redis::RedisResult<Self> {
        let handlers: Handlers = Arc::default();
        let sink = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                deliver(push, &sink);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            handlers,
            conn,
            latest: Arc::default(),
        })
    }
}

impl ResilientDriver {
    async fn publish_now(&self, chan: String, val: Vec<u8>) -> redis::RedisResult<()> {
        match ANNOUNCING.try_with(Clone::clone) {
            Ok(record) => {
                let ms = crate::backends::redis::ANNOUNCED_FOR
                    .as_millis()
                    .to_string();
                PUBLISH_AND_RECORD
                    .key(record)
                    .arg(chan)
                    .arg(val)
                    .arg(ms)
                    .invoke_async::<Value>(&mut self.conn.clone())
                    .await?;
            }
            Err(_) => {
                self.conn.clone().publish::<_, _, Value>(chan, val).await?;
            }
        }
        Ok(())
    }
}

impl Driver for ResilientDriver {
    type Error = redis::RedisError;

    /// Publishes are pipelined on one connection, several in flight at once (the delivery
    /// task publishes a run of new messages together), and the adapter broadcasts to this
    /// node's sockets once a publish returns. Each publish therefore returns only after the
    /// one called before it has, so this node's sockets hear broadcasts in the order they
    /// were made whatever order the replies are handled in (300 pipelined sends showed two
    /// neighbours swapped about once in ten runs without it).
    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let (done, mine) = tokio::sync::oneshot::channel::<()>();
        let before = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(mine);
        let result = self.publish_now(chan, val).await;
        if let Some(before) = before {
            // An error means that publish was dropped: nothing to wait for.
            let _ = before.await;
        }
        let _ = done.send(());
        result
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&chan);
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
