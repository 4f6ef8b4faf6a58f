//! What accepting a token costs a verifier (gateway, books-service): the signature and claims
//! check for each signing algorithm auth-service offers, the lookup that replaces it for a
//! token verified before, and the revocation check in Redis.
//! Tokens are issued the way auth-service issues them, with keys it generates.
//!
//! Run: `cargo bench -p auth-service --bench verify_tokens` (the Redis case needs Redis:
//! `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_service::keys::{KeyKind, KeyRing, SigningKey, generate_pem};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Header, encode};
use revocation::{RedisSettings, RedisStore, RevocationStore};
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

fn revocation_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The connection manager spawns its driver on the current runtime.
    let _entered = runtime.enter();
    let store = RedisStore::connect(&RedisSettings {
        url: Some(SecretString::from(test_support::redis_url())),
        key_prefix: test_support::unique_redis_prefix(),
        timeout_ms: 1_000,
    })
    .unwrap()
    .unwrap();
    runtime
        .block_on(store.reseed(&[], unix_now() + 3_600))
        .unwrap();
    let (ring, token) = issued(KeyKind::Ed25519);
    let claims: Claims = Verifier::new(&VerifierSettings::default())
        .verify(ring.key_set(), &token, TokenType::Access)
        .unwrap();

    c.bench_function("revocation_check_redis", |b| {
        b.to_async(&runtime).iter(|| async {
            assert_eq!(store.check(&claims.identity()).await.unwrap(), None);
        });
    });
}

criterion_group!(benches, verify, revocation_check);
criterion_main!(benches);
