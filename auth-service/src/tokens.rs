//! Issuing the session's two tokens, and verifying tokens with the service's own keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, encode};
use token_verifier::{Claims, Rejection, TokenType, VerifiedTokens, Verifier};

use crate::config::TokenSettings;
use crate::db::{from_db, sessions::Session};
use crate::domain::Roles;
use crate::error::{AuthError, internal};
use crate::keys::KeyRing;

/// The pair handed to a client.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub session_id: String,
}

pub struct Tokens {
    keys: KeyRing,
    verifier: Verifier,
    // Callers present the same access token on every call: its signature is checked once.
    verified: VerifiedTokens,
    settings: TokenSettings,
}

impl Tokens {
    pub fn new(keys: KeyRing, settings: TokenSettings) -> Self {
        let verifier = Verifier::new(&settings.verifier());
        Self {
            verified: VerifiedTokens::new(VerifiedTokens::DEFAULT_CAPACITY, verifier.leeway()),
            verifier,
            keys,
            settings,
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.access_ttl_secs)
    }

    /// The tokens a session's row describes: the access token `session.access_jti` issued at
    /// `issued_at` (see `revocation::issue_time`), and the current refresh token, whose claims
    /// depend only on the row, so the same row always yields the same refresh token (the grace
    /// window relies on this).
    ///
    /// # Errors
    /// Signing failed.
    pub fn pair(
        &self,
        session: &Session,
        roles: &Roles,
        issued_at: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let now_secs = issued_at.timestamp();
        let access_exp = now_secs.saturating_add(secs(self.settings.access_ttl_secs));
        let access = self.sign(&Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: session.user_id.clone(),
            sid: session.id.clone(),
            jti: session.access_jti.clone(),
            issued_at_ms: issued_at.timestamp_millis(),
            nbf: now_secs,
            exp: access_exp,
            typ: TokenType::Access,
            roles: roles.names(),
        })?;

        let refreshed_at = from_db(session.refreshed_at);
        let refreshed = refreshed_at.timestamp();
        let refresh_exp = refreshed
            .saturating_add(secs(self.settings.refresh_idle_ttl_secs))
            .min(from_db(session.expires_at).timestamp());
        let refresh = self.sign(&Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: session.user_id.clone(),
            sid: session.id.clone(),
            jti: session.refresh_jti.clone(),
            issued_at_ms: refreshed_at.timestamp_millis(),
            nbf: refreshed,
            exp: refresh_exp,
            typ: TokenType::Refresh,
            roles: Vec::new(),
        })?;

        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: access_exp - now_secs,
            refresh_expires_in: (refresh_exp - now_secs).max(0),
            session_id: session.id.clone(),
        })
    }

    /// # Errors
    /// The reason `token` is not a valid token of type `expected` signed by a published key.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, Rejection> {
        match expected {
            TokenType::Access => self
                .verified
                .verify(&self.verifier, self.keys.key_set(), token),
            // Presented once each, when rotated: nothing to remember.
            TokenType::Refresh => self.verifier.verify(self.keys.key_set(), token, expected),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let key = self.keys.active();
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid().to_owned());
        encode(&header, claims, key.encoding_key()).map_err(internal)
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
