//! bcrypt on a bounded pool: at most `hashing_threads` hashes run at once and at most
//! `hashing_queue` wait; beyond that callers get [`AuthError::Busy`] (UNAVAILABLE with
//! Retry-After) instead of an unbounded queue that would make every login slow.

use secrecy::{ExposeSecret, SecretString};
use service_support::spawn_blocking_with_tracing;
use tokio::sync::Semaphore;

use crate::config::PasswordSettings;
use crate::error::{AuthError, internal};

pub struct PasswordHasher {
    cost: u32,
    running: Semaphore,
    waiting: Semaphore,
    // A hash of a random password at the configured cost: verifying against it makes an
    // unknown user cost exactly what a wrong password costs.
    dummy_hash: String,
}

impl PasswordHasher {
    /// # Errors
    /// An invalid bcrypt cost.
    pub fn new(settings: &PasswordSettings) -> Result<Self, bcrypt::BcryptError> {
        let threads = match settings.hashing_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let dummy_hash = bcrypt::hash(uuid::Uuid::new_v4().to_string(), settings.bcrypt_cost)?;
        Ok(Self {
            cost: settings.bcrypt_cost,
            running: Semaphore::new(threads),
            waiting: Semaphore::new(threads + settings.hashing_queue),
            dummy_hash,
        })
    }

    /// # Errors
    /// [`AuthError::Busy`] when the pool and its queue are full.
    pub async fn hash(&self, password: SecretString) -> Result<String, AuthError> {
        let cost = self.cost;
        self.run(move || bcrypt::hash(password.expose_secret(), cost))
            .await?
            .map_err(internal)
    }

    /// Whether `password` matches `hash`. Without a hash (unknown user) it verifies against a
    /// dummy hash and answers `false`, taking the same time.
    ///
    /// # Errors
    /// [`AuthError::Busy`] when the pool and its queue are full.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, AuthError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move || bcrypt::verify(password.expose_secret(), &hash))
            .await?
            // A stored hash that does not parse cannot match; it is not the client's fault.
            .unwrap_or(false);
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _waiting = self.waiting.try_acquire().map_err(|_| AuthError::Busy)?;
        let _running = self.running.acquire().await.map_err(internal)?;
        spawn_blocking_with_tracing(work).await.map_err(internal)
    }
}
