//! auth-service's own metrics, beside the gRPC calls (`rpc_server_call_duration_seconds`) and
//! the pool (`db_client_*`): logins by outcome, throttled attempts, refresh-token replays, the
//! password-hashing pool, and how revocations reach the store.

use observability::{DURATION_BUCKETS, Registry, register};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::error::AuthError;

pub struct AuthMetrics {
    logins: IntCounterVec,
    throttled: IntCounterVec,
    pub refresh_token_reuse: IntCounter,
    pub hash_duration: Histogram,
    pub hash_refusals: IntCounter,
    pub publish_lag: Histogram,
    pub outbox_backlog: IntGauge,
}

impl AuthMetrics {
    /// # Errors
    /// A metric is registered already (a programming error: names are constants).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let seconds = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()))
        };
        Ok(Self {
            logins: register(
                registry,
                IntCounterVec::new(
                    Opts::new("bookstore_logins_total", "Login attempts by outcome."),
                    &["outcome"],
                )?,
            )?,
            throttled: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "bookstore_throttled_attempts_total",
                        "Password checks refused by the failed-attempt throttle, by operation.",
                    ),
                    &["operation"],
                )?,
            )?,
            refresh_token_reuse: register(
                registry,
                IntCounter::new(
                    "bookstore_refresh_token_reuse_total",
                    "Replays of a rotated refresh token (each ended its session).",
                )?,
            )?,
            hash_duration: register(
                registry,
                seconds(
                    "bookstore_password_hash_duration_seconds",
                    "Time one bcrypt hash or check took on a hashing thread.",
                )?,
            )?,
            hash_refusals: register(
                registry,
                IntCounter::new(
                    "bookstore_password_hash_refusals_total",
                    "Hashes refused because the hashing pool and its queue were full (503).",
                )?,
            )?,
            publish_lag: register(
                registry,
                seconds(
                    "bookstore_revocation_publish_lag_seconds",
                    "Time from a revocation's commit to its publication in the store.",
                )?,
            )?,
            outbox_backlog: register(
                registry,
                IntGauge::new(
                    "bookstore_revocation_outbox_backlog",
                    "Revocations committed but not yet published to the store.",
                )?,
            )?,
        })
    }

    /// Counts a login by how it ended.
    pub fn login(&self, outcome: &Result<impl Sized, AuthError>) {
        let label = match outcome {
            Ok(_) => "success",
            Err(AuthError::InvalidCredentials) => "invalid_credentials",
            Err(AuthError::Throttled { .. }) => {
                self.throttled(Operation::Login);
                "throttled"
            }
            Err(AuthError::Busy) => "busy",
            Err(AuthError::InvalidInput(_)) => "invalid_input",
            Err(_) => "error",
        };
        self.logins.with_label_values(&[label]).inc();
    }

    pub fn throttled(&self, operation: Operation) {
        let label = match operation {
            Operation::Login => "login",
            Operation::ChangePassword => "change_password",
        };
        self.throttled.with_label_values(&[label]).inc();
    }
}

/// What a throttled password check was for.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Login,
    ChangePassword,
}
