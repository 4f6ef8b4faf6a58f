use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::{Entry, Revocation, RevocationStore, RevokedBy, StoreError, TokenIdentity, unix_now};

/// Revocations held in this process, for the embedded single-process mode, where every service
/// shares one instance. Nothing survives a restart: it starts unseeded (and refuses checks), so
/// auth-service re-publishes what its database holds before anything is checked.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    // 0 until the first re-seed.
    seeded_until: AtomicI64,
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
        self.ping().await?;
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

    async fn ping(&self) -> Result<(), StoreError> {
        match self.seeded_until().await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotSeeded),
        }
    }

    // Once seeded, an in-process store cannot lose entries behind its owner's back.
    async fn seeded_until(&self) -> Result<Option<i64>, StoreError> {
        let until = self.seeded_until.load(Ordering::Acquire);
        Ok((until != 0).then_some(until))
    }

    async fn reseed(&self, entries: &[Entry], seeded_until: i64) -> Result<(), StoreError> {
        self.publish(entries).await?;
        self.seeded_until.store(seeded_until, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::contract_tests as contract;

    #[tokio::test]
    async fn each_rule_revokes_only_what_it_names() {
        contract::each_rule_revokes_only_what_it_names(
            &contract::seeded(MemoryStore::default()).await,
        )
        .await;
    }

    #[tokio::test]
    async fn an_older_cutoff_published_later_never_lowers_a_newer_one() {
        contract::an_older_cutoff_published_later_never_lowers_a_newer_one(
            &contract::seeded(MemoryStore::default()).await,
        )
        .await;
    }

    #[tokio::test]
    async fn expired_entries_are_not_kept() {
        contract::expired_entries_are_not_kept(&contract::seeded(MemoryStore::default()).await)
            .await;
    }

    #[tokio::test]
    async fn a_store_answers_only_after_a_reseed() {
        contract::a_store_answers_only_after_a_reseed(&MemoryStore::default()).await;
    }
}
