use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use observability::rpc::Observed;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::auth::v1::{GetJwksRequest, Jwk};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::{JwksError, KeySet};

/// Why the key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("auth-service did not answer GetJwks: {0}")]
    Unreachable(#[from] tonic::Status),
    #[error("auth-service published an unusable key: {0}")]
    Invalid(#[from] JwksError),
}

/// auth-service's public keys as a verifier sees them: fetched over gRPC (`GetJwks`), kept in
/// memory, refreshed in the background, refetched when a token names an unknown `kid`, and kept
/// as they were when auth-service cannot be reached.
pub struct RemoteKeys {
    client: AuthServiceClient<Observed<Channel>>,
    state: RwLock<State>,
    // Serialises fetches (concurrent requests with an unknown kid trigger one fetch) and holds
    // when the last one started, successful or not.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    min_refetch_interval: Duration,
}

struct State {
    keys: Arc<KeySet>,
    // The JWKS as auth-service published it, for verifiers that re-publish it.
    published: Arc<Vec<Jwk>>,
    fetched_at: Option<Instant>,
}

impl RemoteKeys {
    /// An empty cache; call [`refresh`](Self::refresh) before serving.
    /// `min_refetch_interval` bounds how often an unknown `kid` may trigger a fetch, so forged
    /// tokens cannot turn into a flood of GetJwks calls. The calls go through `channel`, timed
    /// and traced as the caller's.
    pub fn new(channel: Observed<Channel>, min_refetch_interval: Duration) -> Self {
        Self {
            client: AuthServiceClient::new(channel),
            state: RwLock::new(State {
                keys: Arc::new(KeySet::default()),
                published: Arc::new(Vec::new()),
                fetched_at: None,
            }),
            fetching: tokio::sync::Mutex::new(None),
            min_refetch_interval,
        }
    }

    /// The current key set.
    pub fn current(&self) -> Arc<KeySet> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .keys,
        )
    }

    /// The keys as auth-service published them at the last fetch.
    pub fn published(&self) -> Arc<Vec<Jwk>> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .published,
        )
    }

    /// Time since the last successful fetch; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fetched_at
            .map(|at| at.elapsed())
    }

    /// The key set to verify a token signed with `kid`: the current one if it knows the key,
    /// else a freshly fetched one, unless a fetch was attempted within the minimum interval
    /// (then the current one, and the token fails as signed by an unknown key). The interval
    /// counts from the last attempt, not the last success: while auth-service is down, forged
    /// tokens with random kids must not turn into one GetJwks call each, queued in front of
    /// the background refresh.
    pub async fn for_kid(&self, kid: &str) -> Arc<KeySet> {
        let keys = self.current();
        if keys.contains(kid) {
            return keys;
        }
        let mut last_attempt = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let keys = self.current();
        let recent = last_attempt.is_some_and(|at| at.elapsed() < self.min_refetch_interval);
        if keys.contains(kid) || recent {
            return keys;
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(%error, "cannot refetch the JWKS for an unknown key id");
                keys
            }
        }
    }

    /// Fetches the key set now, replacing the current one on success.
    ///
    /// # Errors
    /// auth-service is unreachable or published an unusable key; the current set is kept.
    pub async fn refresh(&self) -> Result<Arc<KeySet>, FetchError> {
        let mut last_attempt = self.fetching.lock().await;
        *last_attempt = Some(Instant::now());
        self.fetch().await
    }

    async fn fetch(&self) -> Result<Arc<KeySet>, FetchError> {
        let published = self
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await?
            .into_inner()
            .keys;
        let keys = Arc::new(KeySet::from_proto(&published)?);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.keys = Arc::clone(&keys);
        state.published = Arc::new(published);
        state.fetched_at = Some(Instant::now());
        Ok(keys)
    }

    /// Fetches the keys at once unless they are loaded, then refreshes every `interval` until
    /// `shutdown`, so keys never age out while auth-service is reachable. After a failure it
    /// retries sooner: after half a second, then twice as long each time, up to `interval / 10`.
    /// Services start it when they start serving; readiness waits for the first success.
    pub async fn run_refresher(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let first_retry = Duration::from_millis(500).min(interval);
        let mut wait = if self.age().is_some() {
            interval
        } else {
            Duration::ZERO
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.refresh().await {
                Ok(_) => interval,
                Err(error) => {
                    tracing::warn!(%error, "JWKS refresh failed; keeping the last good key set");
                    (wait * 2).clamp(first_retry, (interval / 10).max(first_retry))
                }
            };
        }
    }
}
