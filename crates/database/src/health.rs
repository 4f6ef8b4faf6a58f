//! Whether a pooled connection still works, learnt from the queries it runs instead of from a
//! `SELECT 1` before every use (r2d2's default test on checkout, one more round trip per
//! request).
//!
//! A connection that answered a query within [`TRUSTED_FOR`] is handed out as it is; one idle
//! for longer is pinged first, as before. A query that finds the connection lost (the server
//! restarted, a proxy cut it) marks it, and the pool drops it when it comes back instead of
//! handing it out again. The cost: a connection lost while in steady use fails the one request
//! that finds out (answered 503, like a request in flight during the loss), where the ping would
//! have caught it first. HikariCP makes the same trade (`aliveBypassWindowMs`, 500 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::AnyConnection;
use crate::errors::is_lost_connection;

/// How long after its last successful query a connection is handed out without a ping.
pub(crate) const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection and what its queries told about it.
pub struct PooledConnection {
    pub(crate) conn: AnyConnection,
    health: Arc<Health>,
}

impl PooledConnection {
    /// Watches `conn`'s queries from now on.
    pub(crate) fn watch(mut conn: AnyConnection) -> Self {
        let health = Arc::new(Health {
            born: Instant::now(),
            answered_at_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        });
        diesel::Connection::set_instrumentation(
            &mut conn,
            Watch {
                health: Arc::clone(&health),
            },
        );
        Self { conn, health }
    }

    /// Whether a query found the connection lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.health.lost.load(Ordering::Relaxed)
    }

    /// Whether a query succeeded on it within [`TRUSTED_FOR`].
    pub(crate) fn answered_recently(&self) -> bool {
        let answered_at = Duration::from_millis(self.health.answered_at_ms.load(Ordering::Relaxed));
        answered_at > Duration::ZERO
            && self.health.born.elapsed().saturating_sub(answered_at) < TRUSTED_FOR
    }
}

struct Health {
    born: Instant,
    /// Milliseconds after `born` of the last successful query; 0 before the first.
    answered_at_ms: AtomicU64,
    lost: AtomicBool,
}

/// Diesel reports every finished query of the connection here, on the thread that ran it.
struct Watch {
    health: Arc<Health>,
}

impl Instrumentation for Watch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let InstrumentationEvent::FinishQuery { error, .. } = event else {
            return;
        };
        match error {
            None => {
                // At least 1: 0 means "never answered".
                let at = u64::try_from(self.health.born.elapsed().as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                self.health.answered_at_ms.store(at, Ordering::Relaxed);
            }
            Some(error) if is_lost_connection(error) => {
                self.health.lost.store(true, Ordering::Relaxed);
            }
            Some(_) => {}
        }
    }
}
