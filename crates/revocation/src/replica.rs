use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::denylist::Denylist;
use crate::redis_store::seeded_key;
use crate::stream::{self, StreamEntries};
use crate::{RedisSettings, RevocationCheck, RevokedBy, StoreError, TokenIdentity, unix_now};

/// `revocation.*` keys of a verifying service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckSettings {
    pub mode: CheckMode,
    /// How far behind the stream a replica may fall (Redis unreachable) and still answer;
    /// past it, checks fail until it has caught up.
    pub staleness_budget_ms: u64,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            mode: CheckMode::Replica,
            staleness_budget_ms: 5_000,
        }
    }
}

impl CheckSettings {
    pub fn staleness_budget(&self) -> Duration {
        Duration::from_millis(self.staleness_budget_ms)
    }

    /// The `(key, value, min, max)` rows of the numeric keys, for the service's range checks:
    /// below 100 ms a healthy replica would have no time for its round trips, above an hour
    /// the budget would not be a bound.
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 1] {
        [(
            "revocation.staleness_budget_ms",
            self.staleness_budget_ms,
            100,
            3_600_000,
        )]
    }
}

/// Where a verifier looks revocations up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// In its own memory, kept current from the Redis stream: no round trip per request.
    Replica,
    /// In Redis, one round trip per request.
    Redis,
}

/// Items read per round: a replica catching up applies them in batches of this size.
const BATCH: usize = 1_000;
/// Pause after a failed round before trying again.
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// Longest wait in Redis for new items: a round trip at least this often notices a silent
/// network failure (the response timeout) and costs Redis next to nothing.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// `synced_at` before the first complete load.
const NEVER: u64 = u64::MAX;
/// The stream id before every item: reading after it reads the whole stream.
const START: &str = "0-0";

/// The live revocations in this process's memory, loaded from the Redis stream and kept
/// current by [`follow`](Self::follow), so that a check costs a hash lookup.
///
/// A replica answers only while it knows it is current: it is current as of the last round
/// trip in which Redis held the seed mark and had nothing newer to give. When it falls further
/// behind than its staleness budget (Redis unreachable, or lost its data and not yet re-seeded),
/// checks fail with [`StoreError::Stale`] until it has caught up. A check made before the first
/// complete load waits for it up to the Redis timeout, then fails with
/// [`StoreError::NotLoaded`].
pub struct Replica {
    denylist: RwLock<Denylist>,
    client: redis::Client,
    stream: String,
    seeded: String,
    timeout: Duration,
    budget: Duration,
    // Each round blocks in Redis at most this long waiting for new items.
    wait: Duration,
    epoch: Instant,
    // Milliseconds after `epoch` up to which every published revocation is applied.
    synced_at: AtomicU64,
    loaded: Notify,
}

impl Replica {
    /// A replica of the stream under `redis.key_prefix`, or `None` without a Redis URL. It
    /// holds nothing until [`follow`](Self::follow) runs.
    ///
    /// # Errors
    /// The URL does not parse.
    pub fn connect(
        redis: &RedisSettings,
        check: &CheckSettings,
    ) -> Result<Option<Self>, StoreError> {
        let Some(url) = &redis.url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.expose_secret()).map_err(StoreError::Unreachable)?;
        let budget = check.staleness_budget();
        Ok(Some(Self {
            denylist: RwLock::default(),
            client,
            stream: stream::key(&redis.key_prefix),
            seeded: seeded_key(&redis.key_prefix),
            timeout: redis.timeout(),
            budget,
            // A healthy replica is at most about two waits behind.
            wait: (budget / 4).min(MAX_WAIT),
            epoch: Instant::now(),
            synced_at: AtomicU64::new(NEVER),
            loaded: Notify::new(),
        }))
    }

    /// How far behind the stream this replica may be, or `None` before its first load.
    pub fn lag(&self) -> Option<Duration> {
        match self.synced_at.load(Ordering::Acquire) {
            NEVER => None,
            synced_at => Some(Duration::from_millis(
                self.now_ms().saturating_sub(synced_at),
            )),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn current(&self) -> Result<(), StoreError> {
        match self.lag() {
            None => Err(StoreError::NotLoaded),
            Some(lag) if lag > self.budget => Err(StoreError::Stale(lag)),
            Some(_) => Ok(()),
        }
    }

    /// Loads the stream, then follows it until `shutdown`; after an interruption it reads on
    /// from the last item it applied, so nothing appended meanwhile is missed.
    pub async fn follow(&self, shutdown: CancellationToken) {
        let mut cursor = START.to_owned();
        let mut connection = None;
        let mut failing = false;
        let mut caught_up = false;
        loop {
            let round = tokio::select! {
                () = shutdown.cancelled() => return,
                round = self.round(&mut connection, &mut cursor, caught_up) => round,
            };
            match round {
                Ok(complete) => {
                    caught_up = complete;
                    if failing {
                        tracing::info!("revocation replica following the stream again");
                        failing = false;
                    }
                }
                Err(error) => {
                    caught_up = false;
                    if !failing {
                        tracing::warn!(%error, "revocation replica cannot follow the stream; retrying");
                        failing = true;
                    }
                    connection = None;
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY_DELAY) => {}
                    }
                }
            }
        }
    }

    /// One round trip: whether Redis holds the seed mark, and the items after `cursor`, waiting
    /// for some when there are none yet if `wait`: a replica catching up (or loading) does not
    /// wait, so that it knows at once when it is current. Returns whether it is current.
    async fn round(
        &self,
        connection: &mut Option<MultiplexedConnection>,
        cursor: &mut String,
        wait: bool,
    ) -> Result<bool, StoreError> {
        let connection = match connection {
            Some(connection) => connection,
            None => connection.insert(self.open_connection().await?),
        };
        let sent_at = self.now_ms();
        let mut pipe = redis::pipe();
        let read = pipe.get(&self.seeded).cmd("XREAD").arg("COUNT").arg(BATCH);
        if wait {
            // Never 0, which would wait forever.
            let wait_ms = u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX);
            read.arg("BLOCK").arg(wait_ms.max(1));
        }
        read.arg("STREAMS").arg(&self.stream).arg(cursor.as_str());
        let (seeded, read): (Option<String>, Option<Vec<(String, StreamEntries)>>) = pipe
            .query_async(connection)
            .await
            .map_err(StoreError::Unreachable)?;
        let items = read
            .into_iter()
            .flatten()
            .flat_map(|(_, items)| items)
            .collect::<Vec<_>>();
        let complete = items.len() < BATCH;
        self.apply(&items)?;
        if let Some((last, _)) = items.last() {
            last.clone_into(cursor);
        }
        if seeded.is_none() {
            // Redis lost its data. Once auth-service has re-seeded it, read the stream from the
            // start: whatever the new stream's ids, nothing in it is skipped.
            START.clone_into(cursor);
            return Err(StoreError::NotSeeded);
        }
        if complete {
            let first_load = self.synced_at.swap(sent_at, Ordering::AcqRel) == NEVER;
            if first_load {
                self.loaded.notify_waiters();
                tracing::info!(
                    entries = self.read_denylist().len(),
                    "revocation replica loaded; following the stream"
                );
            }
        }
        Ok(complete)
    }

    async fn open_connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.wait + self.timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::Unreachable)
    }

    fn apply(&self, items: &StreamEntries) -> Result<(), StoreError> {
        let entries = items
            .iter()
            .map(|(id, fields)| stream::decode(id, fields))
            .collect::<Result<Vec<_>, _>>()?;
        let now = unix_now();
        let mut denylist = self
            .denylist
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        denylist.sweep(now);
        denylist.add(&entries, now);
        Ok(())
    }

    // No code panics while holding the lock, and the maps stay consistent even if one did.
    fn read_denylist(&self) -> std::sync::RwLockReadGuard<'_, Denylist> {
        self.denylist.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RevocationCheck for Replica {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        if self.lag().is_none() {
            // Registered before the second look, so a load in between is not missed.
            let loaded = self.loaded.notified();
            if self.lag().is_none() {
                let _ = tokio::time::timeout(self.timeout, loaded).await;
            }
        }
        self.current()?;
        Ok(self.read_denylist().check(token, unix_now()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.current()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::future::Future;
    use std::sync::Arc;

    use secrecy::SecretString;
    use test_support::ChaosProxy;

    use super::*;
    use crate::contract_tests::{entry, token};
    use crate::{Entry, RedisStore, Revocation, RevocationStore};

    /// auth-service's side: a store in a fresh namespace, and a replica of it, reaching Redis
    /// through `proxy` when given.
    struct Fixture {
        store: RedisStore,
        replica: Arc<Replica>,
        shutdown: CancellationToken,
    }

    impl Fixture {
        async fn start(budget_ms: u64, proxy: Option<&ChaosProxy>) -> Self {
            let prefix = test_support::unique_redis_prefix();
            let settings = |url: String| RedisSettings {
                url: Some(SecretString::from(url)),
                key_prefix: prefix.clone(),
                timeout_ms: 500,
            };
            let store = RedisStore::connect(
                &settings(test_support::redis_url()),
                Duration::from_secs(60),
            )
            .unwrap()
            .unwrap();
            let replica_url = proxy.map_or_else(test_support::redis_url, |proxy| {
                format!("redis://{}", proxy.addr())
            });
            let check = CheckSettings {
                mode: CheckMode::Replica,
                staleness_budget_ms: budget_ms,
            };
            let replica = Arc::new(
                Replica::connect(&settings(replica_url), &check)
                    .unwrap()
                    .unwrap(),
            );
            Self {
                store,
                replica,
                shutdown: CancellationToken::new(),
            }
        }

        fn follow(&self) {
            let replica = Arc::clone(&self.replica);
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move { replica.follow(shutdown).await });
        }

        async fn revoked(&self, token_id: &str) -> Result<Option<RevokedBy>, StoreError> {
            self.replica.check(&token(token_id, "s", 0)).await
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    fn revoke(token_id: &str) -> Entry {
        entry(Revocation::Token {
            token_id: token_id.to_owned(),
        })
    }

    async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition().await {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn every_numeric_key_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric).
        let CheckSettings {
            mode: _,
            staleness_budget_ms: _,
        } = CheckSettings::default();
        let table: &[test_support::Bound<CheckSettings>] = &[(
            "revocation.staleness_budget_ms",
            |s, v| s.staleness_budget_ms = v,
            100,
            3_600_000,
        )];
        test_support::assert_bounds(
            &CheckSettings::default(),
            |s| service_support::check_ranges(&s.ranges()),
            table,
        );
    }

    #[tokio::test]
    async fn it_loads_what_was_revoked_before_it_started_then_follows() {
        let fixture = Fixture::start(5_000, None).await;
        fixture
            .store
            .reseed(&[revoke("before")], unix_now() + 60)
            .await
            .unwrap();
        assert!(matches!(
            fixture.replica.ping().await,
            Err(StoreError::NotLoaded)
        ));

        // A check that arrives first waits for the load.
        let (early, ()) = tokio::join!(fixture.revoked("before"), async { fixture.follow() });
        assert_eq!(early.unwrap(), Some(RevokedBy::Token));
        fixture.replica.ping().await.unwrap();
        assert_eq!(fixture.revoked("live").await.unwrap(), None);

        fixture.store.publish(&[revoke("after")]).await.unwrap();
        eventually("the new revocation applied", || async {
            fixture.revoked("after").await.unwrap().is_some()
        })
        .await;
        assert_eq!(fixture.revoked("live").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_replica_cut_off_from_redis_replays_what_it_missed() {
        let proxy = ChaosProxy::start(test_support::redis_addr()).await;
        let fixture = Fixture::start(60_000, Some(&proxy)).await;
        fixture.store.reseed(&[], unix_now() + 60).await.unwrap();
        fixture.follow();
        eventually("loaded", || async { fixture.replica.ping().await.is_ok() }).await;

        proxy.cut();
        let missed: Vec<String> = (0..1_500).map(|i| format!("missed-{i}")).collect();
        for chunk in missed.chunks(500) {
            let entries: Vec<Entry> = chunk.iter().map(|id| revoke(id)).collect();
            fixture.store.publish(&entries).await.unwrap();
        }
        // Within its budget it answers from what it had.
        assert_eq!(fixture.revoked("missed-0").await.unwrap(), None);

        proxy.restore();
        eventually("every missed revocation applied", || async {
            fixture.revoked("missed-1499").await.unwrap().is_some()
        })
        .await;
        for id in &missed {
            assert_eq!(
                fixture.revoked(id).await.unwrap(),
                Some(RevokedBy::Token),
                "{id}"
            );
        }
    }

    #[tokio::test]
    async fn past_its_budget_it_refuses_until_it_has_caught_up() {
        let proxy = ChaosProxy::start(test_support::redis_addr()).await;
        let fixture = Fixture::start(300, Some(&proxy)).await;
        fixture.store.reseed(&[], unix_now() + 60).await.unwrap();
        fixture.follow();
        eventually("loaded", || async { fixture.replica.ping().await.is_ok() }).await;

        proxy.cut();
        fixture.store.publish(&[revoke("during")]).await.unwrap();
        eventually("stale", || async {
            matches!(fixture.revoked("live").await, Err(StoreError::Stale(_)))
        })
        .await;
        assert!(matches!(
            fixture.replica.ping().await,
            Err(StoreError::Stale(_))
        ));

        proxy.restore();
        eventually("current again", || async {
            fixture.replica.ping().await.is_ok()
        })
        .await;
        assert_eq!(
            fixture.revoked("during").await.unwrap(),
            Some(RevokedBy::Token)
        );
        assert_eq!(fixture.revoked("live").await.unwrap(), None);
    }

    #[tokio::test]
    async fn after_redis_lost_its_data_it_refuses_until_reseeded_and_forgets_nothing() {
        let fixture = Fixture::start(300, None).await;
        fixture
            .store
            .reseed(&[revoke("old")], unix_now() + 60)
            .await
            .unwrap();
        fixture.follow();
        eventually("loaded", || async { fixture.replica.ping().await.is_ok() }).await;

        test_support::wipe_redis_namespace(&fixture.replica.stream.replace("revocations", ""))
            .await;
        eventually("stale", || async {
            matches!(fixture.revoked("old").await, Err(StoreError::Stale(_)))
        })
        .await;

        fixture
            .store
            .reseed(&[revoke("new")], unix_now() + 60)
            .await
            .unwrap();
        eventually("current again", || async {
            fixture.replica.ping().await.is_ok()
        })
        .await;
        assert_eq!(
            fixture.revoked("new").await.unwrap(),
            Some(RevokedBy::Token)
        );
        assert_eq!(
            fixture.revoked("old").await.unwrap(),
            Some(RevokedBy::Token)
        );
    }

    #[tokio::test]
    async fn an_unreadable_stream_item_is_never_skipped() {
        let fixture = Fixture::start(300, None).await;
        fixture.store.reseed(&[], unix_now() + 60).await.unwrap();
        let mut connection = fixture
            .replica
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("XADD")
            .arg(&fixture.replica.stream)
            .arg("*")
            .arg("kind")
            .arg("everything")
            .query_async::<String>(&mut connection)
            .await
            .unwrap();
        fixture.store.publish(&[revoke("after")]).await.unwrap();
        fixture.follow();

        // The check waits for a first load as long as the Redis timeout allows.
        assert!(matches!(
            fixture.revoked("after").await,
            Err(StoreError::NotLoaded)
        ));
    }
}
