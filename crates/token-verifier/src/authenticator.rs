use std::sync::Arc;
use std::time::Duration;

use revocation::{Checker, RevocationCheck, StoreError};
use tokio_util::sync::CancellationToken;

use crate::{Claims, Rejection, RemoteKeys, TokenType, VerifiedTokens, Verifier};

/// Tokens remembered as verified: ~10,000 clients reusing their tokens, under 10 MB.
const VERIFIED_TOKENS: usize = 10_000;

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no bearer token")]
    Missing,
    #[error(transparent)]
    Rejected(#[from] Rejection),
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
            verified: VerifiedTokens::new(VERIFIED_TOKENS, verifier.leeway()),
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
    async fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let kid = jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|header| header.kid)
            .ok_or(Rejection::Malformed)?;
        let keys = self.keys.for_kid(&kid).await;
        let claims = self.verifier.verify(&keys, token, TokenType::Access)?;
        self.verified.insert(token, kid, claims.clone());
        Ok(claims)
    }
}
