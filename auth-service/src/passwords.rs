//! bcrypt on a bounded pool: at most `hashing_threads` hashes run at once and at most
//! `hashing_queue` wait; beyond that callers get [`AuthError::Busy`] (UNAVAILABLE with
//! Retry-After) instead of an unbounded queue that would make every login slow.
//!
//! The pool's threads are its own, at a lower CPU priority (nice +10 on Linux) than everything
//! else: a login storm then takes only the CPU that serving requests leaves over, instead of
//! making every other request of this host wait behind bcrypt, and still all of it when nothing
//! else runs.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use observability::{ComputedGauge, Registry};
use prometheus::Opts;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, oneshot};
use tracing::Instrument;

use crate::config::PasswordSettings;
use crate::error::{AuthError, internal};
use crate::metrics::AuthMetrics;

/// Added to the hashing threads' nice value (lower priority; 0 is the default, 19 the lowest).
const HASHING_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Why the hasher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    #[error("passwords.bcrypt_cost: {0}")]
    Cost(#[from] bcrypt::BcryptError),
    #[error("cannot start the password hashing threads: {0}")]
    Threads(#[from] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

pub struct PasswordHasher {
    cost: u32,
    // Dropping the sender ends the threads.
    jobs: Sender<Job>,
    waiting: Arc<Semaphore>,
    metrics: Arc<AuthMetrics>,
    // A hash of a random password at the configured cost: verifying against it makes an
    // unknown user cost exactly what a wrong password costs.
    dummy_hash: String,
}

impl PasswordHasher {
    /// A pool whose work is counted in `metrics`, and its queue's depth (hashes running or
    /// waiting) in `registry`.
    ///
    /// # Errors
    /// An invalid bcrypt cost, threads that cannot be started, or the depth gauge registered
    /// already.
    pub fn new(
        settings: &PasswordSettings,
        registry: &Registry,
        metrics: Arc<AuthMetrics>,
    ) -> Result<Self, HasherError> {
        let threads = match settings.hashing_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let dummy_hash = bcrypt::hash(uuid::Uuid::new_v4().to_string(), settings.bcrypt_cost)?;
        let capacity = threads + settings.hashing_queue;
        let waiting = Arc::new(Semaphore::new(capacity));
        let watched = Arc::clone(&waiting);
        ComputedGauge::register(
            registry,
            Opts::new(
                "bookstore_password_hash_queue_depth",
                "Hashes running or waiting for a hashing thread.",
            ),
            move || count(capacity.saturating_sub(watched.available_permits())),
        )?;
        ComputedGauge::register(
            registry,
            Opts::new(
                "bookstore_password_hash_queue_capacity",
                "The most hashes that may run or wait; past it, 503.",
            ),
            move || count(capacity),
        )?;
        Ok(Self {
            cost: settings.bcrypt_cost,
            jobs: start_threads(threads)?,
            waiting,
            metrics,
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
        let Ok(_waiting) = self.waiting.try_acquire() else {
            self.metrics.hash_refusals.inc();
            return Err(AuthError::Busy);
        };
        let (answer, answered) = oneshot::channel();
        let span = tracing::Span::current();
        let duration = self.metrics.hash_duration.clone();
        let job: Job = Box::new(move || {
            // A caller that gave up while queued (its client timed out) costs no hash: under a
            // storm, abandoned logins would otherwise keep the threads busy long after.
            if answer.is_closed() {
                return;
            }
            let _entered = span.enter();
            let timer = duration.start_timer();
            let result = work();
            // Observed before answering: once answered, the caller's response (and a scrape
            // after it) may come before this thread runs again.
            timer.observe_duration();
            // The caller may give up while this runs; the result is dropped then.
            let _ = answer.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| internal(anyhow::anyhow!("the password hashing threads have stopped")))?;
        answered.in_current_span().await.map_err(internal)
    }
}

/// Starts `count` hashing threads at the lower priority, fed by the returned sender.
fn start_threads(count: usize) -> std::io::Result<Sender<Job>> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("bcrypt-{n}"))
            .spawn(move || hash_forever(&queue))?;
    }
    Ok(jobs)
}

fn hash_forever(queue: &Mutex<Receiver<Job>>) {
    // On Linux the nice value belongs to the calling thread alone.
    if let Err(error) = rustix::process::nice(HASHING_NICENESS) {
        tracing::warn!(%error, "cannot lower the priority of a password hashing thread");
    }
    loop {
        // The lock is held only while waiting for a job, never while hashing.
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// A count as a gauge's value.
fn count(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::MAX, f64::from)
}
