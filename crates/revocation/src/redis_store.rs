use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::Instrument;

use crate::{
    Entry, Revocation, RevocationCheck, RevocationStore, RevokedBy, StoreError, TokenIdentity,
    stream, unix_now,
};

/// `redis.*` keys, the same for every service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`. Unset means the in-process store (embedded mode only: instances
    /// would not see each other's revocations).
    pub url: Option<SecretString>,
    /// Prepended to every key, so several deployments (or test runs) can share one Redis.
    pub key_prefix: String,
    /// Upper bound for one Redis command, connection included.
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "bookstore:".to_owned(),
            timeout_ms: 500,
        }
    }
}

impl RedisSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The `(key, value, min, max)` rows of the numeric keys, for the service's range checks:
    /// a zero timeout would fail every command, and a bound above a minute bounds nothing a
    /// request could wait for.
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 1] {
        [("redis.timeout_ms", self.timeout_ms, 1, 60_000)]
    }

    /// A connection to `url` (none without a URL) that connects lazily, bounds each command by
    /// the timeout, and reconnects by itself after an outage.
    ///
    /// # Errors
    /// The URL does not parse.
    pub fn connection(&self) -> Result<Option<ConnectionManager>, StoreError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let timeout = self.timeout();
        let client = redis::Client::open(url.expose_secret()).map_err(StoreError::Unreachable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        ConnectionManager::new_lazy_with_config(client, config)
            .map(Some)
            .map_err(StoreError::Unreachable)
    }
}

/// Revocations in Redis, shared by every instance of every service.
///
/// Keys: `<prefix>revoked:token:<jti>`, `<prefix>revoked:session:<sid>` and
/// `<prefix>revoked:user:<user id>` (value: the cut-off in milliseconds), each expiring with the last token it
/// covers, plus `<prefix>revoked:seeded` (value: until when the seed vouches; no expiry, so it
/// disappears only with the data it vouches for). Every entry is also appended to the
/// stream that replicas follow.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    stream_retention: Duration,
}

// Keeps the later of two cut-offs, so re-publishing an old entry never revives tokens.
const RAISE_CUTOFF: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 0";

impl RedisStore {
    /// A store for `settings.url`, or `None` when no URL is configured. Connects lazily and
    /// reconnects by itself after an outage. Stream items are kept for `stream_retention`,
    /// which must be at least the life of the longest-lived entry (a store that only checks
    /// never appends).
    ///
    /// # Errors
    /// The URL does not parse.
    pub fn connect(
        settings: &RedisSettings,
        stream_retention: Duration,
    ) -> Result<Option<Self>, StoreError> {
        Ok(settings.connection()?.map(|connection| Self {
            connection,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout(),
            stream_retention,
        }))
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}revoked:{kind}:{id}", self.prefix)
    }

    /// Queues the commands that record the live ones among `entries`.
    fn add_entries(&self, pipe: &mut redis::Pipeline, entries: &[Entry], now: i64) {
        let stream = stream::key(&self.prefix);
        let now_ms = now.saturating_mul(1_000);
        for entry in entries.iter().filter(|e| e.expires_at > now) {
            stream::append(pipe, &stream, entry, now_ms, self.stream_retention);
            let ttl = entry.expires_at - now;
            match &entry.revocation {
                Revocation::Token { token_id } => {
                    pipe.set_ex(self.key("token", token_id), 1, ttl.unsigned_abs());
                }
                Revocation::Session { session_id } => {
                    pipe.set_ex(self.key("session", session_id), 1, ttl.unsigned_abs());
                }
                Revocation::UserCutoff {
                    user_id,
                    not_before_ms,
                } => {
                    pipe.cmd("EVAL")
                        .arg(RAISE_CUTOFF)
                        .arg(1)
                        .arg(self.key("user", user_id))
                        .arg(*not_before_ms)
                        .arg(ttl);
                }
            }
            pipe.ignore();
        }
    }

    /// Sends the pipeline `request` builds, as the `operation` traces name.
    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        request: impl FnOnce(&mut redis::Pipeline),
    ) -> Result<T, StoreError> {
        let mut pipeline = redis::pipe();
        request(&mut pipeline);
        let mut connection = self.connection.clone();
        tokio::time::timeout(self.timeout, pipeline.query_async(&mut connection))
            .instrument(observability::traces::database_span("redis", operation))
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
            .map_err(StoreError::Unreachable)
    }
}

impl RevocationCheck for RedisStore {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        let keys = [
            self.key("token", token.token_id),
            self.key("session", token.session_id),
            self.key("user", token.user_id),
            seeded_key(&self.prefix),
        ];
        type Found = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let ((by_token, by_session, cutoff, seeded),): (Found,) = self
            .run("revocation check", |pipe| {
                pipe.mget(&keys);
            })
            .await?;
        if seeded.is_none() {
            return Err(StoreError::NotSeeded);
        }
        if by_token.is_some() {
            return Ok(Some(RevokedBy::Token));
        }
        if by_session.is_some() {
            return Ok(Some(RevokedBy::Session));
        }
        match cutoff {
            None => Ok(None),
            Some(raw) => {
                let cutoff: i64 = raw.parse().map_err(|_| StoreError::Corrupt(raw))?;
                Ok((token.issued_at_ms < cutoff).then_some(RevokedBy::UserCutoff))
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self.seeded_until().await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotSeeded),
        }
    }
}

impl RevocationStore for RedisStore {
    async fn publish(&self, entries: &[Entry]) -> Result<(), StoreError> {
        // Redis refuses an empty pipeline.
        let now = unix_now();
        if entries.iter().all(|entry| entry.expires_at <= now) {
            return Ok(());
        }
        self.run::<()>("revocation publish", |pipe| {
            self.add_entries(pipe, entries, now);
        })
        .await
    }

    async fn seeded_until(&self) -> Result<Option<i64>, StoreError> {
        let (until,): (Option<String>,) = self
            .run("revocation seeded", |pipe| {
                pipe.get(seeded_key(&self.prefix));
            })
            .await?;
        // A mark written before marks held a time (value 1) is simply due for a re-seed.
        until
            .map(|raw| raw.parse().map_err(|_| StoreError::Corrupt(raw)))
            .transpose()
    }

    async fn reseed(&self, entries: &[Entry], seeded_until: i64) -> Result<(), StoreError> {
        let now = unix_now();
        self.run::<()>("revocation reseed", |pipe| {
            pipe.atomic();
            self.add_entries(pipe, entries, now);
            pipe.set(seeded_key(&self.prefix), seeded_until).ignore();
        })
        .await
    }
}

/// The mark that the store holds every live revocation (see [`RevocationStore::reseed`]).
pub(crate) fn seeded_key(prefix: &str) -> String {
    format!("{prefix}revoked:seeded")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::contract_tests::{self as contract, cutoff, token};

    fn store() -> RedisStore {
        let settings = RedisSettings {
            url: Some(SecretString::from(test_support::redis_url())),
            key_prefix: test_support::unique_redis_prefix(),
            timeout_ms: 1_000,
        };
        RedisStore::connect(&settings, Duration::from_secs(60))
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn each_rule_revokes_only_what_it_names() {
        contract::each_rule_revokes_only_what_it_names(&contract::seeded(store()).await).await;
    }

    #[tokio::test]
    async fn an_older_cutoff_published_later_never_lowers_a_newer_one() {
        contract::an_older_cutoff_published_later_never_lowers_a_newer_one(
            &contract::seeded(store()).await,
        )
        .await;
    }

    #[tokio::test]
    async fn expired_entries_are_not_kept() {
        let store = contract::seeded(store()).await;
        contract::expired_entries_are_not_kept(&store).await;

        let ttl: i64 = redis::cmd("TTL")
            .arg(store.key("token", "t1"))
            .query_async(&mut store.connection.clone())
            .await
            .unwrap();
        assert_eq!(ttl, -2, "nothing was written");
    }

    #[tokio::test]
    async fn a_store_answers_only_after_a_reseed() {
        contract::a_store_answers_only_after_a_reseed(&store()).await;
    }

    #[test]
    fn every_numeric_key_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric).
        let RedisSettings {
            url: _,
            key_prefix: _,
            timeout_ms: _,
        } = RedisSettings::default();
        let table: &[test_support::Bound<RedisSettings>] =
            &[("redis.timeout_ms", |s, v| s.timeout_ms = v, 1, 60_000)];
        test_support::assert_bounds(
            &RedisSettings::default(),
            |s| service_support::check_ranges(&s.ranges()),
            table,
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_within_the_timeout() {
        let settings = RedisSettings {
            url: Some(SecretString::from("redis://127.0.0.1:1".to_owned())),
            key_prefix: "unused:".into(),
            timeout_ms: 200,
        };
        let store = RedisStore::connect(&settings, Duration::ZERO)
            .unwrap()
            .unwrap();

        assert!(store.check(&token("t", "s", 0)).await.is_err());
        assert!(store.publish(&[cutoff(1)]).await.is_err());
    }
}
