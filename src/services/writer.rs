//! The group-commit writer: every message send of this node goes through one task that
//! gathers the sends waiting at that moment into one transaction (one fsync for all of
//! them). Each caller awaits its own result; one failing message fails alone.
//!
//! The task also hands each new message to the events bus, right after its commit and in
//! commit order: were the callers to do it, two sends of one sender could be announced in
//! the other order, and a client that resumes with `after=<last id seen>` would skip one.
//!
//! The channel between callers and the task is bounded, so a flood of sends waits for
//! the disk instead of growing memory. Shutdown drops the sender side and waits until the
//! queue is written.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::AppError;
use crate::models::message::{Inserted, MessageView, NewMessage};
use crate::services::events::Events;
use crate::store::{Store, StoreError};

/// Sends gathered into one transaction at most.
pub const MAX_BATCH: usize = 512;
/// Sends queued before callers wait.
const QUEUE: usize = 8192;

/// A send's result, and (many nodes) the receipt of its broadcast.
type Reply = (Result<Inserted, AppError>, Option<oneshot::Receiver<()>>);

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Reply>,
}

/// How long a send waits for its broadcast to be published before it is answered anyway
/// (the message is committed; only live delivery to other nodes is in doubt).
const RECEIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Handle to the writer task.
pub struct MessageWriter {
    tx: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    events: Events,
}

fn to_app_error(e: StoreError) -> AppError {
    match e {
        StoreError::Missing => AppError::ChannelNotFound,
        StoreError::NotMember => AppError::NotChannelMember,
        StoreError::Unattachable => AppError::field(
            "attachments",
            "a file was attached to another message or deleted meanwhile",
        ),
        other => other.into(),
    }
}

impl MessageWriter {
    /// Starts the writer; with `group_commit` off every send gets its own transaction
    /// (for comparison in benchmarks).
    #[must_use]
    pub fn start(store: Arc<dyn Store>, group_commit: bool, events: Events) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let max_batch = if group_commit { MAX_BATCH } else { 1 };
        let task = tokio::spawn(run(store, rx, max_batch, events.clone()));
        Self {
            tx: std::sync::Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            events,
        }
    }

    /// Writes one message durably; returns once its transaction has committed (and, on many
    /// nodes, once its broadcast was published — or after [`RECEIPT_WAIT`]).
    ///
    /// # Errors
    /// `CHANNEL_NOT_FOUND` when the channel went away, `SERVICE_UNAVAILABLE` when the
    /// database cannot be reached or the server is shutting down.
    pub async fn insert(&self, message: NewMessage) -> Result<Inserted, AppError> {
        let sender = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| AppError::ServiceUnavailable("the server is shutting down".into()))?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Job { message, reply })
            .await
            .map_err(|_| AppError::ServiceUnavailable("the message writer has stopped".into()))?;
        let (result, receipt) = answer
            .await
            .map_err(|_| AppError::internal("the message writer dropped a send"))?;
        if let (Some(receipt), Ok(inserted)) = (receipt, &result)
            && tokio::time::timeout(RECEIPT_WAIT, receipt).await.is_err()
        {
            self.events.forget_receipt(inserted.message.id);
            tracing::warn!("a send was answered before its broadcast was published");
        }
        result
    }

    /// Stops taking sends and waits until every queued one is written.
    pub async fn shutdown(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Announces a newly written message (not one found again by its nonce), then answers.
fn finish(job: Job, result: Result<Inserted, AppError>, events: &Events) {
    let mut receipt = None;
    if let Ok(inserted) = &result
        && inserted.created
    {
        crate::metrics::message_sent();
        receipt = events.emit_message(MessageView::from(&inserted.message));
    }
    let _ = job.reply.send((result, receipt));
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, max_batch: usize, events: Events) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let batch: Vec<NewMessage> = jobs.iter().map(|j| j.message.clone()).collect();
        let started = std::time::Instant::now();
        let written = store.insert_messages(&batch).await;
        crate::metrics::batch_written(batch.len(), started.elapsed());
        match written {
            Ok(results) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    finish(job, result.map_err(to_app_error), &events);
                }
            }
            Err(e) if jobs.len() > 1 => {
                // The batch as a whole failed (its commit, say): retry each send alone so
                // that one bad apple cannot fail the others.
                tracing::warn!(error = %e, size = jobs.len(), "message batch failed; retrying one by one");
                for job in jobs.drain(..) {
                    let result = match store
                        .insert_messages(std::slice::from_ref(&job.message))
                        .await
                    {
                        Ok(mut one) => one
                            .pop()
                            .unwrap_or(Err(StoreError::Missing))
                            .map_err(to_app_error),
                        Err(e) => Err(to_app_error(e)),
                    };
                    finish(job, result, &events);
                }
            }
            Err(e) => {
                if let Some(job) = jobs.pop() {
                    let _ = job.reply.send((Err(to_app_error(e)), None));
                }
            }
        }
    }
}
