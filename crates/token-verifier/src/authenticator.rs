use std::sync::Arc;

use revocation::{RevocationStore, Revocations, StoreError};

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
/// auth-service's published keys (remembered for tokens seen before), then the revocation
/// store, on every request.
pub struct Authenticator {
    keys: Arc<RemoteKeys>,
    verifier: Verifier,
    verified: VerifiedTokens,
    revocations: Revocations,
}

impl Authenticator {
    pub fn new(keys: Arc<RemoteKeys>, verifier: Verifier, revocations: Revocations) -> Self {
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

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
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
