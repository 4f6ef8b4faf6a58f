//! What accepting a token costs a verifier (gateway, books-service): the signature and claims
//! check for each signing algorithm auth-service offers, the lookup that replaces it for a
//! token verified before, the revocation check in Redis and in a replica, and the two together
//! for a reused token (what `Authenticator::authenticate` does on the hot path).
//! Tokens are issued the way auth-service issues them, with keys it generates.
//!
//! Run: `cargo bench -p auth-service --bench verify_tokens` (the revocation cases need Redis:
//! `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_service::keys::{KeyKind, KeyRing, SigningKey, generate_pem};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Header, encode};
use std::sync::Arc;
use std::time::Duration;

use revocation::{
    CheckMode, CheckSettings, Entry, RedisSettings, RedisStore, Replica, Revocation,
    RevocationCheck, RevocationStore,
};
use secrecy::SecretString;
use serde_json::json;
use token_verifier::{Claims, TokenType, VerifiedTokens, Verifier, VerifierSettings, unix_now};

/// A key ring holding one new key of `kind`, and an access token signed with it.
fn issued(kind: KeyKind) -> (KeyRing, String) {
    let key = SigningKey::from_pem(generate_pem(kind).unwrap().as_bytes()).unwrap();
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    let now = unix_now();
    let claims = json!({
        "iss": "bookstore-auth", "aud": "bookstore",
        "sub": uuid::Uuid::now_v7().to_string(), "sid": uuid::Uuid::now_v7().to_string(),
        "jti": uuid::Uuid::now_v7().to_string(),
        "iat": now, "nbf": now, "exp": now + 900, "typ": "access", "roles": ["user"],
    });
    let token = encode(&header, &claims, key.encoding_key()).unwrap();
    (KeyRing::new(key, Vec::new()).unwrap(), token)
}

fn verify(c: &mut Criterion) {
    let verifier = Verifier::new(&VerifierSettings::default());
    let verified = VerifiedTokens::new(10_000, verifier.leeway());
    let mut group = c.benchmark_group("verify_access_token");
    for (name, kind) in [
        ("eddsa", KeyKind::Ed25519),
        ("rs256", KeyKind::Rsa),
        ("es256", KeyKind::P256),
    ] {
        let (ring, token) = issued(kind);
        let claims = verifier
            .verify(ring.key_set(), &token, TokenType::Access)
            .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| verifier.verify(ring.key_set(), &token, TokenType::Access));
        });
        let kid = ring.active().kid().to_owned();
        verified.insert(&token, kid, claims);
        group.bench_function(format!("{name}_verified_before"), |b| {
            b.iter(|| verified.get(&token, ring.key_set()).unwrap());
        });
    }
    group.finish();
}

/// Revocations live in the store while a check runs: a busy day's logouts.
const LIVE_REVOCATIONS: usize = 10_000;

fn revocation_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The connection manager and the replica run on this runtime.
    let _entered = runtime.enter();
    let redis = RedisSettings {
        url: Some(SecretString::from(test_support::redis_url())),
        key_prefix: test_support::unique_redis_prefix(),
        timeout_ms: 1_000,
    };
    let store = RedisStore::connect(&redis, Duration::from_secs(3_600))
        .unwrap()
        .unwrap();
    let revoked: Vec<Entry> = (0..LIVE_REVOCATIONS)
        .map(|_| Entry {
            revocation: Revocation::Token {
                token_id: uuid::Uuid::now_v7().to_string(),
            },
            expires_at: unix_now() + 3_600,
        })
        .collect();
    runtime
        .block_on(store.reseed(&revoked, unix_now() + 3_600))
        .unwrap();
    let check = CheckSettings {
        mode: CheckMode::Replica,
        ..CheckSettings::default()
    };
    let replica = Arc::new(Replica::connect(&redis, &check).unwrap().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    runtime.spawn({
        let replica = Arc::clone(&replica);
        let shutdown = shutdown.clone();
        async move { replica.follow(shutdown).await }
    });
    runtime.block_on(async {
        while replica.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let (ring, token) = issued(KeyKind::Ed25519);
    let verifier = Verifier::new(&VerifierSettings::default());
    let claims: Claims = verifier
        .verify(ring.key_set(), &token, TokenType::Access)
        .unwrap();

    let mut group = c.benchmark_group("revocation_check");
    group.bench_function("redis", |b| {
        b.to_async(&runtime).iter(|| async {
            assert_eq!(store.check(&claims.identity()).await.unwrap(), None);
        });
    });
    group.bench_function("replica", |b| {
        b.to_async(&runtime).iter(|| async {
            assert_eq!(replica.check(&claims.identity()).await.unwrap(), None);
        });
    });
    group.finish();

    let verified = VerifiedTokens::new(10_000, verifier.leeway());
    verified.insert(&token, ring.active().kid().to_owned(), claims);
    c.bench_function("reused_token_verified_and_checked_in_replica", |b| {
        b.to_async(&runtime).iter(|| async {
            let claims = verified.get(&token, ring.key_set()).unwrap();
            assert_eq!(replica.check(&claims.identity()).await.unwrap(), None);
        });
    });
    shutdown.cancel();
}

criterion_group!(benches, verify, revocation_check);
criterion_main!(benches);
