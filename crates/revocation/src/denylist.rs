use std::collections::HashMap;

use crate::{Entry, Revocation, RevokedBy, TokenIdentity};

/// Revocations held in memory, each until it expires: the state of [`MemoryStore`] and of
/// [`Replica`].
///
/// [`MemoryStore`]: crate::MemoryStore
/// [`Replica`]: crate::Replica
#[derive(Debug, Default)]
pub(crate) struct Denylist {
    // value: expiry (seconds since the epoch)
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    // value: (cut-off in milliseconds, expiry)
    users: HashMap<String, (i64, i64)>,
    // When expired entries were last dropped: at most once a second, so that a stream of
    // single revocations does not scan every entry for each one.
    swept_at: i64,
}

impl Denylist {
    pub(crate) fn check(&self, token: &TokenIdentity<'_>, now: i64) -> Option<RevokedBy> {
        let live = |expiry: Option<&i64>| expiry.is_some_and(|at| *at > now);
        if live(self.tokens.get(token.token_id)) {
            Some(RevokedBy::Token)
        } else if live(self.sessions.get(token.session_id)) {
            Some(RevokedBy::Session)
        } else {
            self.users
                .get(token.user_id)
                .filter(|(cutoff, expires_at)| *expires_at > now && token.issued_at_ms < *cutoff)
                .map(|_| RevokedBy::UserCutoff)
        }
    }

    /// Adds the live ones among `entries`. Idempotent, and an older cut-off never lowers a
    /// newer one.
    pub(crate) fn add<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>, now: i64) {
        for entry in entries.into_iter().filter(|entry| entry.expires_at > now) {
            match &entry.revocation {
                Revocation::Token { token_id } => {
                    let at = self.tokens.entry(token_id.clone()).or_default();
                    *at = (*at).max(entry.expires_at);
                }
                Revocation::Session { session_id } => {
                    let at = self.sessions.entry(session_id.clone()).or_default();
                    *at = (*at).max(entry.expires_at);
                }
                Revocation::UserCutoff {
                    user_id,
                    not_before_ms,
                } => {
                    let (cutoff, at) = self.users.entry(user_id.clone()).or_default();
                    if *not_before_ms >= *cutoff {
                        *cutoff = *not_before_ms;
                        *at = (*at).max(entry.expires_at);
                    }
                }
            }
        }
    }

    /// Drops expired entries, unless that was done less than a second ago.
    pub(crate) fn sweep(&mut self, now: i64) {
        if now <= self.swept_at {
            return;
        }
        self.swept_at = now;
        self.tokens.retain(|_, expires_at| *expires_at > now);
        self.sessions.retain(|_, expires_at| *expires_at > now);
        self.users.retain(|_, (_, expires_at)| *expires_at > now);
    }

    /// How many entries are held, expired ones not yet swept included.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.users.len()
    }
}
