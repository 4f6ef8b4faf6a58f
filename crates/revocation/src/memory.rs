use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::denylist::Denylist;
use crate::{
    Entry, RevocationCheck, RevocationStore, RevokedBy, StoreError, TokenIdentity, unix_now,
};

/// Revocations held in this process, for the embedded single-process mode, where every service
/// shares one instance. Nothing survives a restart: it starts unseeded (and refuses checks), so
/// auth-service re-publishes what its database holds before anything is checked.
#[derive(Debug, Default)]
pub struct MemoryStore {
    denylist: Mutex<Denylist>,
    // 0 until the first re-seed.
    seeded_until: AtomicI64,
}

impl MemoryStore {
    fn with_denylist<T>(&self, f: impl FnOnce(&mut Denylist) -> T) -> T {
        // No code panics while holding the lock, and the maps stay consistent even if one did.
        let mut denylist = self.denylist.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut denylist)
    }
}

impl RevocationCheck for MemoryStore {
    async fn check(&self, token: &TokenIdentity<'_>) -> Result<Option<RevokedBy>, StoreError> {
        self.ping().await?;
        let now = unix_now();
        Ok(self.with_denylist(|denylist| denylist.check(token, now)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self.seeded_until().await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotSeeded),
        }
    }
}

impl RevocationStore for MemoryStore {
    async fn publish(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let now = unix_now();
        self.with_denylist(|denylist| {
            denylist.sweep(now);
            denylist.add(entries, now);
        });
        Ok(())
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
