//! bcrypt off the async runtime, on a bounded pool: at most one hash per core at a time,
//! a bounded queue, and a wait limit answered 503 — so a login storm never stalls the
//! other requests of the node.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::models::user::Password;

/// How long a hash may wait for a free core before the request is answered 503: long
/// enough for a full queue at cost 12 (64 per core, about 0.25 s each), shorter than the
/// default 30 s request timeout.
const QUEUE_WAIT: Duration = Duration::from_secs(25);
/// Hashes allowed to wait per core before new ones are refused at once.
const QUEUE_PER_CORE: usize = 64;

/// The bounded bcrypt pool of one node.
pub struct PasswordHasher {
    cost: u32,
    slots: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// A hash of a random password, verified when a login names no user, so that unknown
    /// users and wrong passwords take the same time.
    dummy_hash: String,
}

impl PasswordHasher {
    /// A pool hashing at `cost` on every available core.
    ///
    /// # Errors
    /// The dummy hash could not be made.
    pub async fn new(cost: u32) -> Result<Arc<Self>, AppError> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let dummy_hash = tokio::task::spawn_blocking(move || {
            let mut random = [0u8; 24];
            getrandom::fill(&mut random).map_err(AppError::internal)?;
            let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
            bcrypt::hash(text, cost).map_err(AppError::internal)
        })
        .await
        .map_err(AppError::internal)??;
        Ok(Arc::new(Self {
            cost,
            slots: Semaphore::new(cores),
            waiting: AtomicUsize::new(0),
            max_waiting: cores * QUEUE_PER_CORE,
            dummy_hash,
        }))
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let busy = || AppError::ServiceUnavailable("password hashing queue is full".into());
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let permit = tokio::time::timeout(QUEUE_WAIT, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| busy())?.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(AppError::internal)?
    }

    /// Hashes a password.
    ///
    /// # Errors
    /// `SERVICE_UNAVAILABLE` when the pool is saturated.
    pub async fn hash(&self, password: Password) -> Result<String, AppError> {
        let cost = self.cost;
        self.run(move || bcrypt::hash(password.expose(), cost).map_err(AppError::internal))
            .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it verifies against
    /// the dummy hash and answers `false`.
    ///
    /// # Errors
    /// `SERVICE_UNAVAILABLE` when the pool is saturated.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move || Ok(bcrypt::verify(password, &hash).unwrap_or(false)))
            .await?;
        Ok(known && matches)
    }
}
