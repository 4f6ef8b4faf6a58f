use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::{Entry, Revocation, RevocationStore, RevokedBy, StoreError, TokenIdentity, unix_now};

/// Revocations held in this process, for the embedded single-process mode, where every service
/// shares one instance. Nothing survives a restart: it starts unseeded, so auth-service
/// re-publishes what its database holds.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    seeded: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    // value: expiry (seconds since the epoch)
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    // value: (cut-off, expiry)
    users: HashMap<String, (i64, i64)>,
}

impl State {
    fn forget_expired(&mut self, now: i64) {
        self.tokens.retain(|_, expires_at| *expires_at > now);
        self.sessions.retain(|_, expires_at| *expires_at > now);
        self.users.retain(|_, (_, expires_at)| *expires_at > now);
    }
}

impl MemoryStore {
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // No code panics while holding the lock, and the maps stay consistent even if one did.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

impl RevocationStore for MemoryStore {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        let now = unix_now();
        Ok(self.with_state(|state| {
            let live = |expiry: Option<&i64>| expiry.is_some_and(|at| *at > now);
            if live(state.tokens.get(token.token_id)) {
                Some(RevokedBy::Token)
            } else if live(state.sessions.get(token.session_id)) {
                Some(RevokedBy::Session)
            } else {
                state
                    .users
                    .get(token.user_id)
                    .filter(|(cutoff, expires_at)| *expires_at > now && token.issued_at < *cutoff)
                    .map(|_| RevokedBy::UserCutoff)
            }
        }))
    }

    async fn publish(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let now = unix_now();
        self.with_state(|state| {
            state.forget_expired(now);
            for entry in entries.iter().filter(|entry| entry.expires_at > now) {
                match &entry.revocation {
                    Revocation::Token { token_id } => {
                        let at = state.tokens.entry(token_id.clone()).or_default();
                        *at = (*at).max(entry.expires_at);
                    }
                    Revocation::Session { session_id } => {
                        let at = state.sessions.entry(session_id.clone()).or_default();
                        *at = (*at).max(entry.expires_at);
                    }
                    Revocation::UserCutoff {
                        user_id,
                        not_before,
                    } => {
                        let (cutoff, at) = state.users.entry(user_id.clone()).or_default();
                        if *not_before >= *cutoff {
                            *cutoff = *not_before;
                            *at = (*at).max(entry.expires_at);
                        }
                    }
                }
            }
        });
        Ok(())
    }

    // Once seeded, an in-process store cannot lose entries behind its owner's back.
    async fn is_seeded(&self) -> Result<bool, StoreError> {
        Ok(self.seeded.load(Ordering::Acquire))
    }

    async fn reseed(&self, entries: &[Entry], _seeded_until: i64) -> Result<(), StoreError> {
        self.publish(entries).await?;
        self.seeded.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token<'a>(token_id: &'a str, session_id: &'a str, issued_at: i64) -> TokenIdentity<'a> {
        TokenIdentity {
            token_id,
            session_id,
            user_id: "u1",
            issued_at,
        }
    }

    fn entry(revocation: Revocation, expires_at: i64) -> Entry {
        Entry {
            revocation,
            expires_at,
        }
    }

    #[tokio::test]
    async fn each_rule_revokes_only_what_it_names() {
        let store = MemoryStore::default();
        let later = unix_now() + 60;
        store
            .publish(&[
                entry(
                    Revocation::Token {
                        token_id: "t1".into(),
                    },
                    later,
                ),
                entry(
                    Revocation::Session {
                        session_id: "s2".into(),
                    },
                    later,
                ),
                entry(
                    Revocation::UserCutoff {
                        user_id: "u1".into(),
                        not_before: 1_000,
                    },
                    later,
                ),
            ])
            .await
            .unwrap();

        assert_eq!(
            store.check(&token("t1", "s1", 2_000)).await.unwrap(),
            Some(RevokedBy::Token)
        );
        assert_eq!(
            store.check(&token("t9", "s2", 2_000)).await.unwrap(),
            Some(RevokedBy::Session)
        );
        assert_eq!(
            store.check(&token("t9", "s9", 999)).await.unwrap(),
            Some(RevokedBy::UserCutoff)
        );
        assert_eq!(store.check(&token("t9", "s9", 1_000)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_older_cutoff_never_replaces_a_newer_one() {
        let store = MemoryStore::default();
        let later = unix_now() + 60;
        let cutoff = |not_before| {
            entry(
                Revocation::UserCutoff {
                    user_id: "u1".into(),
                    not_before,
                },
                later,
            )
        };
        store
            .publish(&[cutoff(2_000), cutoff(1_000)])
            .await
            .unwrap();

        assert_eq!(
            store.check(&token("t", "s", 1_500)).await.unwrap(),
            Some(RevokedBy::UserCutoff)
        );
    }

    #[tokio::test]
    async fn expired_entries_are_forgotten() {
        let store = MemoryStore::default();
        store
            .publish(&[entry(
                Revocation::Token {
                    token_id: "t1".into(),
                },
                unix_now() - 1,
            )])
            .await
            .unwrap();

        assert_eq!(store.check(&token("t1", "s1", 0)).await.unwrap(), None);
    }
}
