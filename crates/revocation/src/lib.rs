//! The revocation store: which tokens are dead before their expiry.
//!
//! A token is revoked when its id (`jti`) is, when its session (`sid`) is, or when it was issued
//! before its user's cut-off (`iat < cut-off`, in milliseconds, e.g. after "log out
//! everywhere"). auth-service
//! writes revocations here after recording them durably in its own database. Every verifier
//! (gateway, books-service) checks each request either against a [`Replica`] in its own memory,
//! which follows the stream of revocations in Redis (no network on the request path),
//! or against Redis itself, in one round trip ([`Checker`]).
//!
//! A store that lost its data (a Redis restart or flush) would silently let revoked tokens
//! through. So auth-service marks the store as seeded when it has written every live
//! revocation into it, and a check on a store without the mark is an error
//! ([`StoreError::NotSeeded`]): verifiers fail closed until auth-service has re-seeded it.
//!
//! Entries only need to outlive the access tokens they cover: refresh tokens are checked by
//! auth-service against its database, never against this store.
//!
//! Two implementations serve the same [`RevocationStore`] trait: [`RedisStore`], shared by
//! every instance, and [`MemoryStore`], for the single-process embedded mode.

#[cfg(test)]
mod contract_tests;
mod denylist;
mod memory;
mod redis_store;
mod replica;
mod stream;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use memory::MemoryStore;
pub use redis_store::{RedisSettings, RedisStore};
pub use replica::{CheckMode, CheckSettings, Replica};

/// The parts of a verified token that revocation is decided on.
#[derive(Debug, Clone, Copy)]
pub struct TokenIdentity<'a> {
    /// `jti`
    pub token_id: &'a str,
    /// `sid`
    pub session_id: &'a str,
    /// `sub`
    pub user_id: &'a str,
    /// `iat`, milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
}

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token, by `jti`.
    Token { token_id: String },
    /// Every token of a session, by `sid`.
    Session { session_id: String },
    /// Every token of a user issued before `not_before_ms` (milliseconds since the Unix
    /// epoch: a token issued a millisecond before is revoked, one issued at it is not).
    UserCutoff { user_id: String, not_before_ms: i64 },
}

/// A revocation and the moment it stops mattering (every token it covers has expired by then),
/// in seconds since the Unix epoch. Stores forget entries after that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub revocation: Revocation,
    pub expires_at: i64,
}

/// Which rule revoked a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    Token,
    Session,
    UserCutoff,
}

/// The store could not be asked or written. Callers decide whether to fail closed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revocation store unreachable")]
    Unreachable(#[source] redis::RedisError),
    #[error("revocation store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("revocation store returned an unexpected value: {0}")]
    Corrupt(String),
    #[error("revocation store lost its data and has not been seeded again yet")]
    NotSeeded,
    #[error("revocation replica has not loaded the revocations yet")]
    NotLoaded,
    #[error("revocation replica is {0:?} behind, more than its staleness budget")]
    Stale(Duration),
}

/// What verifiers ask.
pub trait RevocationCheck: Send + Sync {
    /// Whether `token` is revoked, and by which rule; `None` when it is not.
    fn check(
        &self,
        token: &TokenIdentity<'_>,
    ) -> impl Future<Output = Result<Option<RevokedBy>, StoreError>> + Send;

    /// Whether checks can be answered now, for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where revocations are kept: what auth-service writes to.
pub trait RevocationStore: RevocationCheck {
    /// Records `entries`. Idempotent: publishing an entry twice, or an older user cut-off after
    /// a newer one, changes nothing.
    fn publish(&self, entries: &[Entry]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Until when the last [`reseed`](Self::reseed) vouches for the store, or `None` when the
    /// store holds no seed (never seeded, or it lost its data): the publisher then publishes
    /// every live entry again.
    fn seeded_until(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Publishes `entries`, which must be every live revocation, and records in the same atomic
    /// step that the store is seeded, to be re-seeded after `seeded_until`: a restart can never
    /// leave the mark without the entries.
    fn reseed(
        &self,
        entries: &[Entry],
        seeded_until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store auth-service was configured with: Redis when a URL is set, in process otherwise.
#[derive(Clone)]
pub enum Revocations {
    Redis(RedisStore),
    Memory(Arc<MemoryStore>),
}

impl Revocations {
    /// Connects lazily: an unreachable Redis shows up as errors on use, not here. `retention`
    /// is the life of the longest-lived entry: the stream keeps items that long.
    ///
    /// # Errors
    /// A malformed Redis URL.
    pub fn from_settings(
        settings: &RedisSettings,
        retention: Duration,
    ) -> Result<Self, StoreError> {
        match RedisStore::connect(settings, retention)? {
            Some(redis) => Ok(Self::Redis(redis)),
            None => Ok(Self::Memory(Arc::new(MemoryStore::default()))),
        }
    }
}

impl RevocationCheck for Revocations {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        match self {
            Self::Redis(store) => store.check(token).await,
            Self::Memory(store) => store.check(token).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Redis(store) => store.ping().await,
            Self::Memory(store) => store.ping().await,
        }
    }
}

impl RevocationStore for Revocations {
    async fn publish(&self, entries: &[Entry]) -> Result<(), StoreError> {
        match self {
            Self::Redis(store) => store.publish(entries).await,
            Self::Memory(store) => store.publish(entries).await,
        }
    }

    async fn seeded_until(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Redis(store) => store.seeded_until().await,
            Self::Memory(store) => store.seeded_until().await,
        }
    }

    async fn reseed(&self, entries: &[Entry], seeded_until: i64) -> Result<(), StoreError> {
        match self {
            Self::Redis(store) => store.reseed(entries, seeded_until).await,
            Self::Memory(store) => store.reseed(entries, seeded_until).await,
        }
    }
}

/// How a verifier checks revocation, as configured: a [`Replica`] following Redis, Redis on
/// every request, or the store shared in process (embedded mode).
#[derive(Clone)]
pub enum Checker {
    Replica(Arc<Replica>),
    Redis(RedisStore),
    Memory(Arc<MemoryStore>),
}

impl Checker {
    /// The checker `check` asks for over the Redis of `redis`, or a process-local store without
    /// a Redis URL. A replica must then be kept current with [`Replica::follow`].
    ///
    /// # Errors
    /// A malformed Redis URL.
    pub fn from_settings(redis: &RedisSettings, check: &CheckSettings) -> Result<Self, StoreError> {
        let checker = match check.mode {
            CheckMode::Replica => {
                Replica::connect(redis, check)?.map(|r| Self::Replica(Arc::new(r)))
            }
            // A verifier never appends to the stream, so no retention applies.
            CheckMode::Redis => RedisStore::connect(redis, Duration::ZERO)?.map(Self::Redis),
        };
        Ok(checker.unwrap_or_else(|| Self::Memory(Arc::default())))
    }

    /// How far behind the published revocations checks may be: a replica's lag (`None` before
    /// its first load); zero for the others, which ask the store itself.
    pub fn lag(&self) -> Option<Duration> {
        match self {
            Self::Replica(replica) => replica.lag(),
            Self::Redis(_) | Self::Memory(_) => Some(Duration::ZERO),
        }
    }
}

impl RevocationCheck for Checker {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        match self {
            Self::Replica(replica) => replica.check(token).await,
            Self::Redis(store) => store.check(token).await,
            Self::Memory(store) => store.check(token).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Replica(replica) => replica.ping().await,
            Self::Redis(store) => store.ping().await,
            Self::Memory(store) => store.ping().await,
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
