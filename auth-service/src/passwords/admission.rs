//! Which hashes the pool takes on. The queue is counted in time, not in jobs: under CPU
//! contention each hash on the low-priority threads takes longer, so a queue of a fixed length
//! would hold callers past any client's patience. A hash is admitted only if the hashes ahead
//! of it and its own, at the current pace, fit the budget; one admitted but still waiting
//! when it could no longer finish in time is refused then instead of answering late.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Weight of the newest measured hash in the running estimate: a handful of hashes follow a
/// change in contention, one outlier does not swing admission on its own.
const NEWEST_WEIGHT: f64 = 0.25;

/// Why a hash was refused: the `reason` label of `bookstore_password_hash_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `hashing_threads + hashing_queue` hashes were running or waiting already.
    QueueFull,
    /// The hashes ahead of it would not have let it finish within the budget.
    OverBudget,
    /// It waited until it could no longer finish within the budget, and never ran.
    Expired,
}

impl Refusal {
    pub const ALL: [Self; 3] = [Self::QueueFull, Self::OverBudget, Self::Expired];

    pub fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::OverBudget => "over_budget",
            Self::Expired => "expired",
        }
    }
}

/// An admitted hash: if no thread has started it by `start_by`, it cannot finish within the
/// budget. `None` for a hash admitted into an idle pool whatever the estimate (see `admit`).
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted {
    pub start_by: Option<Instant>,
}

pub struct Admission {
    threads: usize,
    capacity: usize,
    budget: Duration,
    load: Mutex<Load>,
}

struct Load {
    /// Hashes admitted and neither finished nor withdrawn: running or waiting.
    outstanding: usize,
    /// What one hash takes on a hashing thread now, from the recent ones.
    estimate: Duration,
}

impl Admission {
    /// `threads` (at least one) hash at once, at most `queue` more wait; `first_estimate` is
    /// one hash's time until hashes are measured.
    pub fn new(threads: usize, queue: usize, budget: Duration, first_estimate: Duration) -> Self {
        let threads = threads.max(1);
        Self {
            threads,
            capacity: threads + queue,
            budget,
            load: Mutex::new(Load {
                outstanding: 0,
                estimate: first_estimate,
            }),
        }
    }

    /// Admits a hash asked for at `now`, counting it as outstanding until it is
    /// [`finished`](Self::finished) or [`withdrawn`](Self::withdrawn).
    ///
    /// # Errors
    /// Why it is refused.
    pub fn admit(&self, now: Instant) -> Result<Admitted, Refusal> {
        let mut load = self.lock();
        if load.outstanding >= self.capacity {
            return Err(Refusal::QueueFull);
        }
        // Those ahead of it take the threads in rounds, then it takes one round itself.
        let rounds = u32::try_from(load.outstanding / self.threads + 1).unwrap_or(u32::MAX);
        // Into an idle pool a hash is admitted even when the estimate exceeds the budget:
        // refusing it would refuse every hash from then on, as none would run to show that
        // hashing got faster again.
        if load.outstanding > 0 && load.estimate.saturating_mul(rounds) > self.budget {
            return Err(Refusal::OverBudget);
        }
        let start_by = self
            .budget
            .checked_sub(load.estimate)
            .and_then(|slack| now.checked_add(slack));
        load.outstanding += 1;
        Ok(Admitted { start_by })
    }

    /// A hash ran to its end in `took`.
    pub fn finished(&self, took: Duration) {
        let mut load = self.lock();
        load.outstanding = load.outstanding.saturating_sub(1);
        let blended = load.estimate.as_secs_f64() * (1.0 - NEWEST_WEIGHT)
            + took.as_secs_f64() * NEWEST_WEIGHT;
        load.estimate = Duration::try_from_secs_f64(blended).unwrap_or(took);
    }

    /// An admitted hash will not run (its caller was refused or went away).
    pub fn withdrawn(&self) {
        let mut load = self.lock();
        load.outstanding = load.outstanding.saturating_sub(1);
    }

    /// When a refused caller may come back: the time for the threads to work through what
    /// is outstanding, in whole seconds, at least one.
    pub fn retry_after(&self) -> Duration {
        let load = self.lock();
        let rounds = u32::try_from(load.outstanding.div_ceil(self.threads)).unwrap_or(u32::MAX);
        let drain = load.estimate.saturating_mul(rounds);
        let whole = drain.as_secs() + u64::from(drain.subsec_nanos() > 0);
        Duration::from_secs(whole.max(1))
    }

    pub fn outstanding(&self) -> usize {
        self.lock().outstanding
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn estimate(&self) -> Duration {
        self.lock().estimate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Load> {
        // Nothing panics while holding it; a poisoned lock still holds consistent numbers.
        self.load.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pool(threads: usize, queue: usize, budget_ms: u32, estimate_ms: u32) -> Admission {
        Admission::new(threads, queue, MS * budget_ms, MS * estimate_ms)
    }

    #[test]
    fn hashes_are_admitted_while_the_rounds_ahead_fit_the_budget() {
        // Two threads, 300 ms a hash, 1 s: two rounds ahead at most (3 × 300 ms ≤ 1 s).
        let admission = pool(2, 64, 1_000, 300);
        let now = Instant::now();
        let admitted: Vec<_> = (0..6).map(|_| admission.admit(now)).collect();
        assert!(admitted.iter().all(Result::is_ok), "{admitted:?}");
        assert_eq!(admission.admit(now), Err(Refusal::OverBudget));
        assert_eq!(admission.outstanding(), 6);
        assert_eq!(
            admitted[0].as_ref().ok().and_then(|a| a.start_by),
            Some(now + MS * 700),
            "it must start while its own hash still fits"
        );
    }

    #[test]
    fn the_queue_bound_still_holds_within_the_budget() {
        let admission = pool(1, 2, 60_000, 1);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(admission.admit(now).is_ok());
        }
        assert_eq!(admission.admit(now), Err(Refusal::QueueFull));
        admission.withdrawn();
        assert!(
            admission.admit(now).is_ok(),
            "a withdrawn hash frees its place"
        );
    }

    #[test]
    fn slower_hashes_shrink_what_is_admitted_and_faster_ones_grow_it() {
        let admission = pool(1, 64, 1_000, 100);
        let now = Instant::now();
        for _ in 0..20 {
            assert!(admission.admit(now).is_ok());
            admission.finished(MS * 600);
        }
        assert!(
            admission.estimate() > MS * 550,
            "{:?}",
            admission.estimate()
        );
        assert!(admission.admit(now).is_ok());
        assert_eq!(admission.admit(now), Err(Refusal::OverBudget));
        for _ in 0..20 {
            admission.finished(MS * 50);
            assert!(admission.admit(now).is_ok());
        }
        assert!(
            admission.estimate() < MS * 100,
            "{:?}",
            admission.estimate()
        );
        assert!(admission.admit(now).is_ok(), "two at once fit again");
    }

    #[test]
    fn an_idle_pool_admits_a_hash_slower_than_the_budget_without_a_start_deadline() {
        let admission = pool(2, 64, 100, 500);
        let now = Instant::now();
        assert_eq!(admission.admit(now), Ok(Admitted { start_by: None }));
        assert_eq!(
            admission.admit(now),
            Err(Refusal::OverBudget),
            "one at a time"
        );
        for _ in 0..10 {
            admission.finished(MS * 20);
            assert!(admission.admit(now).is_ok());
        }
        assert!(
            admission.admit(now).is_ok(),
            "fast hashes bring concurrency back"
        );
    }

    #[test]
    fn retry_after_is_the_drain_time_rounded_up_and_at_least_a_second() {
        let admission = pool(2, 64, 10_000, 700);
        assert_eq!(admission.retry_after(), Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..5 {
            assert!(admission.admit(now).is_ok());
        }
        // Three rounds of 700 ms.
        assert_eq!(admission.retry_after(), Duration::from_secs(3));
    }
}
