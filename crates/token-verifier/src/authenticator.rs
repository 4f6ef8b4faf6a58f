use std::sync::Arc;
use std::time::Duration;

use revocation::{Checker, RevocationCheck, StoreError};
use tokio_util::sync::CancellationToken;

use crate::verify::key_id;
use crate::{Claims, Rejection, RemoteKeys, VerifiedTokens, Verifier};

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no bearer token")]
    Missing,
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// auth-service's keys have never been loaded here (it was unreachable since this verifier
    /// started): no token can be judged yet, valid ones included, so none is called invalid.
    #[error("auth-service's keys are not loaded yet")]
    KeysUnavailable,
    /// The token is valid but the revocation store could not be asked; the caller decides
    /// whether to refuse (fail closed) or to serve with these claims (fail open).
    #[error("cannot check revocation")]
    StoreUnavailable {
        claims: Box<Claims>,
        #[source]
        error: StoreError,
    },
}

/// Everything a verifying service does with an access token: signature and claims against
/// auth-service's published keys (remembered for tokens seen before), then revocation, on
/// every request.
pub struct Authenticator {
    keys: Arc<RemoteKeys>,
    verifier: Verifier,
    verified: VerifiedTokens,
    revocations: Checker,
}

impl Authenticator {
    pub fn new(keys: Arc<RemoteKeys>, verifier: Verifier, revocations: Checker) -> Self {
        Self {
            keys,
            verified: VerifiedTokens::new(VerifiedTokens::DEFAULT_CAPACITY, verifier.leeway()),
            verifier,
            revocations,
        }
    }

    pub fn keys(&self) -> &Arc<RemoteKeys> {
        &self.keys
    }

    pub fn revocations(&self) -> &Checker {
        &self.revocations
    }

    /// Registers in `registry` what operators watch of a verifier, computed at each scrape:
    /// `bookstore_jwks_age_seconds` (since auth-service's keys were last fetched) and
    /// `bookstore_revocation_replica_lag_seconds` (how far behind Redis the revocations
    /// checked here may be; 0 when Redis is asked on every request). Both are -1 before the
    /// first fetch or load.
    ///
    /// # Errors
    /// The metrics are registered there already.
    pub fn register_metrics(
        &self,
        registry: &observability::Registry,
    ) -> Result<(), prometheus::Error> {
        let seconds = |duration: Option<Duration>| duration.map_or(-1.0, |d| d.as_secs_f64());
        let keys = Arc::clone(&self.keys);
        observability::ComputedGauge::register(
            registry,
            prometheus::Opts::new(
                "bookstore_jwks_age_seconds",
                "Seconds since auth-service's keys were last fetched (-1 before the first).",
            ),
            move || seconds(keys.age()),
        )?;
        let revocations = self.revocations.clone();
        observability::ComputedGauge::register(
            registry,
            prometheus::Opts::new(
                "bookstore_revocation_replica_lag_seconds",
                "How far behind the published revocations the checks here may be (-1 before \
                 the replica's first load, 0 when Redis is asked on every request).",
            ),
            move || seconds(revocations.lag()),
        )
    }

    /// Keeps auth-service's keys (refetched every `key_refresh`) and the revocation replica, if
    /// any, current until `shutdown`. Services run it for as long as they serve.
    pub async fn keep_current(&self, key_refresh: Duration, shutdown: CancellationToken) {
        let keys = Arc::clone(&self.keys).run_refresher(key_refresh, shutdown.clone());
        match &self.revocations {
            Checker::Replica(replica) => {
                tokio::join!(keys, replica.follow(shutdown));
            }
            Checker::Redis(_) | Checker::Memory(_) => keys.await,
        }
    }

    /// The claims of a valid, unrevoked access token.
    ///
    /// # Errors
    /// [`AuthFailure::Rejected`] for an invalid or revoked token,
    /// [`AuthFailure::KeysUnavailable`] before auth-service's keys were ever loaded,
    /// [`AuthFailure::StoreUnavailable`] when revocation cannot be checked.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, AuthFailure> {
        let claims = match self.verified.get(token, &self.keys.current()) {
            Some(claims) => claims,
            None => self.verify(token).await?,
        };
        match self.revocations.check(&claims.identity()).await {
            Ok(None) => Ok(claims),
            Ok(Some(_)) => Err(AuthFailure::Rejected(Rejection::Revoked)),
            Err(error) => Err(AuthFailure::StoreUnavailable {
                claims: Box::new(claims),
                error,
            }),
        }
    }

    /// Checks signature and claims, fetching the keys first if `kid` is new, and remembers the
    /// result.
    async fn verify(&self, token: &str) -> Result<Claims, AuthFailure> {
        let kid = key_id(token)?;
        let keys = self.keys.for_kid(&kid).await;
        if self.keys.age().is_none() {
            return Err(AuthFailure::KeysUnavailable);
        }
        Ok(self.verified.verify(&self.verifier, &keys, token)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use revocation::MemoryStore;
    use tokio::task::JoinSet;
    use tonic::body::Body;
    use tonic::server::NamedService;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Endpoint, Server};
    use tower_layer::Layer;

    use super::*;
    use crate::VerifierSettings;

    /// Stands where auth-service would be, down: every call answers UNAVAILABLE, and GetJwks
    /// calls are counted.
    #[derive(Clone)]
    struct DownAuthService {
        jwks_calls: Arc<AtomicUsize>,
    }

    impl NamedService for DownAuthService {
        const NAME: &'static str = "bookstore.auth.v1.AuthService";
    }

    impl tower_service::Service<http::Request<Body>> for DownAuthService {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            if request.uri().path().ends_with("/GetJwks") {
                self.jwks_calls.fetch_add(1, Ordering::SeqCst);
            }
            std::future::ready(Ok(tonic::Status::unavailable("down").into_http()))
        }
    }

    async fn down_auth_service() -> (SocketAddr, Arc<AtomicUsize>) {
        let jwks_calls = Arc::new(AtomicUsize::new(0));
        let service = DownAuthService {
            jwks_calls: Arc::clone(&jwks_calls),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        (addr, jwks_calls)
    }

    fn authenticator(addr: SocketAddr, min_refetch: Duration) -> Arc<Authenticator> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let calls =
            observability::CallMetrics::client(&prometheus::Registry::new(), "gateway").unwrap();
        Arc::new(Authenticator::new(
            Arc::new(RemoteKeys::new(calls.layer().layer(channel), min_refetch)),
            Verifier::new(&VerifierSettings::default()),
            Checker::Memory(Arc::new(MemoryStore::default())),
        ))
    }

    /// A token whose header names a key nobody has.
    fn forged(n: usize) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(format!("forged-{n}"));
        let claims = serde_json::json!({ "sub": "u1" });
        encode(&header, &claims, &EncodingKey::from_secret(b"attacker")).unwrap()
    }

    /// Sends `tokens` at once; each is refused as unjudgeable, since the keys were never loaded.
    async fn burst(authenticator: &Arc<Authenticator>, tokens: impl Iterator<Item = String>) {
        let mut requests = JoinSet::new();
        for token in tokens {
            let authenticator = Arc::clone(authenticator);
            requests.spawn(async move { authenticator.authenticate(&token).await });
        }
        while let Some(outcome) = requests.join_next().await {
            assert!(matches!(
                outcome.unwrap(),
                Err(AuthFailure::KeysUnavailable)
            ));
        }
    }

    #[tokio::test]
    async fn while_auth_service_is_down_unknown_kids_fetch_keys_once_per_interval() {
        let (addr, jwks_calls) = down_auth_service().await;
        let interval = Duration::from_millis(300);
        let authenticator = authenticator(addr, interval);

        burst(&authenticator, (0..100).map(forged)).await;
        assert_eq!(
            jwks_calls.load(Ordering::SeqCst),
            1,
            "one attempt for the burst"
        );

        tokio::time::sleep(interval + Duration::from_millis(50)).await;
        burst(&authenticator, (100..200).map(forged)).await;
        assert_eq!(
            jwks_calls.load(Ordering::SeqCst),
            2,
            "one more after the interval"
        );

        // The background refresh is never refused by the bound, nor queued behind forgeries.
        assert!(authenticator.keys().refresh().await.is_err());
        assert_eq!(jwks_calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_oversized_token_is_refused_before_its_header_is_read() {
        let (addr, jwks_calls) = down_auth_service().await;
        let authenticator = authenticator(addr, Duration::ZERO);
        let huge = format!("{}.{}", forged(0), "a".repeat(8 * 1024));

        let outcome = authenticator.authenticate(&huge).await;
        assert!(matches!(
            outcome,
            Err(AuthFailure::Rejected(Rejection::Malformed))
        ));
        assert_eq!(jwks_calls.load(Ordering::SeqCst), 0);
    }
}
