//! The behaviour every [`RevocationStore`] must have, run against each implementation by its
//! own tests.

#![allow(clippy::unwrap_used)]

use crate::{Entry, Revocation, RevocationStore, RevokedBy, StoreError, TokenIdentity, unix_now};

pub fn token<'a>(token_id: &'a str, session_id: &'a str, issued_at_ms: i64) -> TokenIdentity<'a> {
    TokenIdentity {
        token_id,
        session_id,
        user_id: "u1",
        issued_at_ms,
    }
}

pub fn entry(revocation: Revocation) -> Entry {
    Entry {
        revocation,
        expires_at: unix_now() + 60,
    }
}

pub fn cutoff(not_before_ms: i64) -> Entry {
    entry(Revocation::UserCutoff {
        user_id: "u1".into(),
        not_before_ms,
    })
}

/// A cut-off half-way through a second, in milliseconds.
const CUTOFF_MS: i64 = 1_764_590_000_500;

/// Seeds an empty store, as auth-service does before anything is published.
pub async fn seeded<S: RevocationStore>(store: S) -> S {
    store.reseed(&[], unix_now() + 60).await.unwrap();
    store
}

pub async fn each_rule_revokes_only_what_it_names(store: &impl RevocationStore) {
    store
        .publish(&[
            entry(Revocation::Token {
                token_id: "t1".into(),
            }),
            entry(Revocation::Session {
                session_id: "s2".into(),
            }),
            cutoff(CUTOFF_MS),
        ])
        .await
        .unwrap();

    let later = CUTOFF_MS + 1_000;
    assert_eq!(
        store.check(&token("t1", "s1", later)).await.unwrap(),
        Some(RevokedBy::Token)
    );
    assert_eq!(
        store.check(&token("t9", "s2", later)).await.unwrap(),
        Some(RevokedBy::Session)
    );
    // Issued a millisecond before the cut-off, in the same second: revoked. At it: not.
    assert_eq!(
        store
            .check(&token("t9", "s9", CUTOFF_MS - 1))
            .await
            .unwrap(),
        Some(RevokedBy::UserCutoff)
    );
    assert_eq!(
        store.check(&token("t9", "s9", CUTOFF_MS)).await.unwrap(),
        None
    );
}

pub async fn an_older_cutoff_published_later_never_lowers_a_newer_one(
    store: &impl RevocationStore,
) {
    store.publish(&[cutoff(2_000)]).await.unwrap();
    store.publish(&[cutoff(1_000)]).await.unwrap();

    assert_eq!(
        store.check(&token("t", "s", 1_500)).await.unwrap(),
        Some(RevokedBy::UserCutoff)
    );
}

pub async fn expired_entries_are_not_kept(store: &impl RevocationStore) {
    let mut expired = entry(Revocation::Token {
        token_id: "t1".into(),
    });
    expired.expires_at = unix_now() - 1;
    store.publish(&[expired]).await.unwrap();

    assert_eq!(store.check(&token("t1", "s1", 0)).await.unwrap(), None);
}

/// An unseeded store (new, or one that lost its data) refuses to answer rather than let
/// revoked tokens through.
pub async fn a_store_answers_only_after_a_reseed(store: &impl RevocationStore) {
    assert_eq!(store.seeded_until().await.unwrap(), None);
    let unseeded = store.check(&token("t", "s1", 0)).await;
    assert!(
        matches!(unseeded, Err(StoreError::NotSeeded)),
        "{unseeded:?}"
    );
    assert!(matches!(store.ping().await, Err(StoreError::NotSeeded)));

    store
        .reseed(
            &[entry(Revocation::Session {
                session_id: "s1".into(),
            })],
            unix_now() + 60,
        )
        .await
        .unwrap();

    assert!(store.seeded_until().await.unwrap() > Some(unix_now()));
    store.ping().await.unwrap();
    assert_eq!(
        store.check(&token("t", "s1", 0)).await.unwrap(),
        Some(RevokedBy::Session)
    );
}
