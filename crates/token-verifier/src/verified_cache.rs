use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::verify::key_id;
use crate::{Claims, KeySet, Rejection, TokenType, Verifier, unix_now};

/// Access tokens whose signature and claims were verified, so that a client reusing its token
/// costs a hash lookup instead of a signature check. Bounded (S3-FIFO eviction), keyed by the
/// whole token with a keyed hash (tokens come from clients), and never trusted past the token's
/// expiry or once its key is no longer published. Revocation is not cached: callers check it on
/// every request.
pub struct VerifiedTokens {
    entries: Cache<Arc<str>, Arc<Verified>>,
    leeway: i64,
}

struct Verified {
    kid: String,
    claims: Claims,
}

impl VerifiedTokens {
    /// What a verifying service remembers: ~10,000 clients reusing their tokens, under 10 MB.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// At most `capacity` tokens; `leeway` as the verifier's, in seconds.
    pub fn new(capacity: usize, leeway: i64) -> Self {
        Self {
            entries: Cache::new(capacity.max(1)),
            leeway,
        }
    }

    /// The claims of `token` if it was verified before, has not expired since, and was signed
    /// by a key that `keys` still holds.
    pub fn get(&self, token: &str, keys: &KeySet) -> Option<Claims> {
        let verified = self.entries.get(token)?;
        let live = verified.claims.exp.saturating_add(self.leeway) >= unix_now();
        (live && keys.contains(&verified.kid)).then(|| verified.claims.clone())
    }

    /// The claims of the access token `token`: remembered, or checked by `verifier` against
    /// `keys` (and then remembered).
    ///
    /// # Errors
    /// The [`Rejection`] of a token not remembered and not valid.
    pub fn verify(
        &self,
        verifier: &Verifier,
        keys: &KeySet,
        token: &str,
    ) -> Result<Claims, Rejection> {
        if let Some(claims) = self.get(token, keys) {
            return Ok(claims);
        }
        let claims = verifier.verify(keys, token, TokenType::Access)?;
        self.insert(token, key_id(token)?, claims.clone());
        Ok(claims)
    }

    /// Remembers that `token`, signed by key `kid`, verified with `claims`.
    pub fn insert(&self, token: &str, kid: String, claims: Claims) {
        self.entries
            .insert(Arc::from(token), Arc::new(Verified { kid, claims }));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::Ed25519KeyPair;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey};

    use super::*;
    use crate::TokenType;

    const LEEWAY: i64 = 5;

    fn keys_with(kid: &str) -> KeySet {
        signing_key(kid).1
    }

    fn signing_key(kid: &str) -> (EncodingKey, KeySet) {
        let der = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        let key = EncodingKey::from_ed_der(der.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA);
        (key, KeySet::from_jwks([&jwk]).unwrap())
    }

    fn sign(key: &EncodingKey, kid: &str, claims: &Claims) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    #[test]
    fn verify_remembers_valid_access_tokens_and_nothing_it_refused() {
        let cache = VerifiedTokens::new(100, LEEWAY);
        let verifier = Verifier::new(&crate::VerifierSettings::default());
        let (key, keys) = signing_key("k1");
        let now = unix_now();
        let access = sign(&key, "k1", &claims(now + 60));
        let refresh = sign(
            &key,
            "k1",
            &Claims {
                typ: TokenType::Refresh,
                ..claims(now + 60)
            },
        );

        assert_eq!(
            cache.verify(&verifier, &keys, &refresh),
            Err(Rejection::WrongType)
        );
        assert_eq!(
            cache.verify(&verifier, &keys, "not.a.token"),
            Err(Rejection::Malformed)
        );
        assert!(cache.is_empty());
        let claims = cache.verify(&verifier, &keys, &access).unwrap();
        assert_eq!(cache.get(&access, &keys), Some(claims));
        // Remembered only for as long as its key is published.
        assert_eq!(
            cache.verify(&verifier, &keys_with("k2"), &access),
            Err(Rejection::BadSignature)
        );
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "bookstore-auth".into(),
            aud: "bookstore".into(),
            sub: "u1".into(),
            sid: "s1".into(),
            jti: "j1".into(),
            issued_at_ms: (exp - 900) * 1_000,
            nbf: exp - 900,
            exp,
            typ: TokenType::Access,
            roles: vec!["user".into()],
        }
    }

    #[test]
    fn a_verified_token_is_found_until_it_expires_as_the_verifier_would_decide() {
        let cache = VerifiedTokens::new(100, LEEWAY);
        let keys = keys_with("k1");
        let now = unix_now();
        for (token, exp, found) in [
            ("live", now + 60, true),
            ("inside-leeway", now - LEEWAY + 1, true),
            ("expired", now - LEEWAY - 1, false),
        ] {
            cache.insert(token, "k1".into(), claims(exp));
            assert_eq!(cache.get(token, &keys).is_some(), found, "{token}");
        }
        assert_eq!(cache.get("never-seen", &keys), None);
    }

    #[test]
    fn a_token_whose_key_was_withdrawn_is_verified_again() {
        let cache = VerifiedTokens::new(100, LEEWAY);
        cache.insert("token", "old-key".into(), claims(unix_now() + 60));

        assert!(cache.get("token", &keys_with("old-key")).is_some());
        assert_eq!(cache.get("token", &keys_with("new-key")), None);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = VerifiedTokens::new(1_000, LEEWAY);
        let exp = unix_now() + 60;
        for n in 0..20_000 {
            cache.insert(&format!("token-{n}"), "k1".into(), claims(exp));
        }
        assert!(!cache.is_empty() && cache.len() <= 1_000, "{}", cache.len());
    }
}
