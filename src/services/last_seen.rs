//! `lastSeen` writes, gathered: the disconnects that arrive together (a reconnect storm, a
//! node going down) share one transaction and one fsync instead of one each. Every caller
//! waits for the commit that holds its update, so `user:offline` still goes out after its
//! `lastSeen` is stored.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::Store;

/// Most updates in one transaction.
const BATCH: usize = 1000;

type Request = (Uuid, DateTime<Utc>, oneshot::Sender<Result<(), String>>);

/// The handle callers use; the writer task lives as long as one handle does.
#[derive(Debug)]
pub struct LastSeenWriter {
    tx: mpsc::UnboundedSender<Request>,
}

impl LastSeenWriter {
    /// Starts the writer task.
    #[must_use]
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let seen: Vec<(Uuid, DateTime<Utc>)> =
                    batch.iter().map(|(id, at, _)| (*id, *at)).collect();
                let result = store
                    .update_last_seen(&seen)
                    .await
                    .map_err(|e| e.to_string());
                for (_, _, reply) in batch.drain(..) {
                    let _ = reply.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Stores that `user` was last seen `at`, together with whatever else is waiting.
    ///
    /// # Errors
    /// The database refused the batch (the message says why), or the writer is gone.
    pub async fn record(&self, user: Uuid, at: DateTime<Utc>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((user, at, reply))
            .map_err(|_| "the lastSeen writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the lastSeen writer has stopped".to_owned())?
    }
}
