//! bcrypt on a bounded pool, behind admission control: a hash is taken on only if it is
//! expected to finish within `passwords.admission_budget_ms`, and one that waits until it no
//! longer can is refused then; either way the caller gets [`AuthError::Busy`] (UNAVAILABLE with
//! Retry-After) at once instead of an answer after its client gave up (see [`admission`]).
//!
//! The pool's threads are its own, at a lower CPU priority (nice +10 on Linux) than everything
//! else: a login storm then takes only the CPU that serving requests leaves over, instead of
//! making every other request of this host wait behind bcrypt, and still all of it when nothing
//! else runs.

mod admission;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use observability::{ComputedGauge, Registry};
use prometheus::Opts;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::config::PasswordSettings;
use crate::error::{AuthError, internal};
use crate::metrics::AuthMetrics;
use admission::Admission;
pub use admission::Refusal;

/// Added to the hashing threads' nice value (lower priority; 0 is the default, 19 the lowest).
const HASHING_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

// Where a job is. The caller giving up and a thread starting it race to move it out of
// `QUEUED`; whichever wins decides whether it runs.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

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
    admission: Arc<Admission>,
    metrics: Arc<AuthMetrics>,
    // A hash of a random password at the configured cost: verifying against it makes an
    // unknown user cost exactly what a wrong password costs.
    dummy_hash: String,
}

impl PasswordHasher {
    /// A pool whose work is counted in `metrics`, and its queue (depth, capacity, the
    /// estimate admission works with) in `registry`.
    ///
    /// # Errors
    /// An invalid bcrypt cost, threads that cannot be started, or the gauges registered
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
        // The dummy hash is also the first measurement of what a hash costs here.
        let started = Instant::now();
        let dummy_hash = bcrypt::hash(uuid::Uuid::new_v4().to_string(), settings.bcrypt_cost)?;
        let first_estimate = started.elapsed();
        let budget = settings.admission_budget();
        if first_estimate > budget {
            tracing::warn!(
                ?first_estimate,
                ?budget,
                "one hash takes longer than passwords.admission_budget_ms: \
                 hashes will run one at a time, and most will be refused"
            );
        }
        let admission = Arc::new(Admission::new(
            threads,
            settings.hashing_queue,
            budget,
            first_estimate,
        ));
        let watched = Arc::clone(&admission);
        ComputedGauge::register(
            registry,
            Opts::new(
                "bookstore_password_hash_queue_depth",
                "Hashes running or waiting for a hashing thread.",
            ),
            move || count(watched.outstanding()),
        )?;
        let capacity = admission.capacity();
        ComputedGauge::register(
            registry,
            Opts::new(
                "bookstore_password_hash_queue_capacity",
                "The most hashes that may run or wait; past it, 503.",
            ),
            move || count(capacity),
        )?;
        let watched = Arc::clone(&admission);
        ComputedGauge::register(
            registry,
            Opts::new(
                "bookstore_password_hash_estimate_seconds",
                "What one hash takes now by the recent ones: admission's measure of the queue.",
            ),
            move || watched.estimate().as_secs_f64(),
        )?;
        Ok(Self {
            cost: settings.bcrypt_cost,
            jobs: start_threads(threads)?,
            admission,
            metrics,
            dummy_hash,
        })
    }

    /// # Errors
    /// [`AuthError::Busy`] when the hash would not finish within the budget.
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
    /// [`AuthError::Busy`] when the check would not finish within the budget.
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
        let admitted = self
            .admission
            .admit(Instant::now())
            .map_err(|refusal| self.refuse(refusal))?;
        let state = Arc::new(AtomicU8::new(QUEUED));
        // Dropped with this future: a caller that gives up while queued (its client timed
        // out) costs no hash, and its place is free at once.
        let claim = Claim {
            state: Arc::clone(&state),
            admission: Arc::clone(&self.admission),
        };
        let (answer, answered) = oneshot::channel();
        let span = tracing::Span::current();
        let duration = self.metrics.hash_duration.clone();
        let admission = Arc::clone(&self.admission);
        let job: Job = Box::new(move || {
            if state
                .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            let _entered = span.enter();
            let started = Instant::now();
            let result = work();
            let took = started.elapsed();
            admission.finished(took);
            duration.observe(took.as_secs_f64());
            // The caller may have given up while this ran; the result is dropped then.
            let _ = answer.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| internal(anyhow::anyhow!("the password hashing threads have stopped")))?;
        let mut answered = answered.in_current_span();
        let answer = match admitted.start_by {
            Some(start_by) => match tokio::time::timeout_at(start_by.into(), &mut answered).await {
                Ok(answer) => answer,
                // It could no longer finish within the budget, unless a thread took it just
                // now: then it runs, and is waited for.
                Err(_) if claim.withdraw() => return Err(self.refuse(Refusal::Expired)),
                Err(_) => answered.await,
            },
            None => answered.await,
        };
        answer.map_err(internal)
    }

    fn refuse(&self, refusal: Refusal) -> AuthError {
        self.metrics.hash_refused(refusal);
        AuthError::Busy {
            retry_after: self.admission.retry_after(),
        }
    }
}

/// The caller's hold on a queued job.
struct Claim {
    state: Arc<AtomicU8>,
    admission: Arc<Admission>,
}

impl Claim {
    /// Takes the job back unless a thread has started it; whether it did. A job taken back
    /// never runs.
    fn withdraw(&self) -> bool {
        let withdrawn = self
            .state
            .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if withdrawn {
            self.admission.withdrawn();
        }
        withdrawn
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.withdraw();
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
