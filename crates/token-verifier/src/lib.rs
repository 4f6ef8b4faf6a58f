//! Verification of the bookstore's JWTs, shared by every service that accepts them.
//!
//! A token is accepted only when its `kid` names a key of the [`KeySet`], its `alg` is the one
//! algorithm that key allows (so `none`, HMAC with a public key, or any other confusion fails),
//! its signature verifies, and its claims pass strict checks: issuer, audience, `exp`, `nbf` and
//! `iat` within a small leeway, every claim present, and the expected token type.
//!
//! Whether a valid token was revoked is answered by the `revocation` crate from
//! [`Claims::identity`]; [`Authenticator`] does both for services that accept tokens from
//! auth-service, whose keys [`RemoteKeys`] fetches and caches. Signing belongs to auth-service
//! alone.

mod authenticator;
mod bearer;
mod claims;
mod jwks;
mod remote_keys;
mod verified_cache;
mod verify;

pub use authenticator::{AuthFailure, Authenticator};
pub use bearer::{bearer_from_metadata, bearer_token};
pub use claims::{Claims, TokenType};
pub use jwks::{JwksError, KeySet, jwk_from_proto, jwk_to_proto};
pub use remote_keys::{FetchError, RemoteKeys};
pub use verified_cache::VerifiedTokens;
pub use verify::{Rejection, Verifier, VerifierSettings};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    unix_now_ms().div_euclid(1_000)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
