use std::time::{Duration, Instant};

use auth_service::keys::{KeyKind, SigningKey, generate_pem};
use jsonwebtoken::{Header, encode};
use proto::books::v1 as pb;
use revocation::{CheckMode, CheckSettings};
use test_support::{Backend, SchemaShape, both_backends};
use tonic::Code;

use crate::helpers::{book, spawn_app, spawn_app_with};

both_backends! {
    async fn checking_redis_per_request_a_revoked_token_is_refused_on_the_very_next_call(backend) {
        let per_request = CheckSettings { mode: CheckMode::Redis, ..CheckSettings::default() };
        let app = spawn_app_with(backend, per_request).await;
        let user = app.user("leaving").await;
        app.create(&user, book("Before", "Logout")).await.unwrap();

        app.logout(&user).await;

        let refused = app.list(&user, pb::ListBooksRequest::default()).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }

    async fn with_a_replica_a_revoked_token_is_refused_within_moments(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("leaving").await;
        app.create(&user, book("Before", "Logout")).await.unwrap();

        app.logout(&user).await;

        let started = Instant::now();
        loop {
            match app.list(&user, pb::ListBooksRequest::default()).await {
                Err(refused) => break assert_eq!(refused.code(), Code::Unauthenticated),
                Ok(_) => assert!(started.elapsed() < Duration::from_secs(10), "never refused"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn a_rotated_signing_key_is_picked_up_without_a_restart(backend) {
        let mut app = spawn_app(backend).await;
        let before = app.user("early").await;
        app.create(&before, book("Old key", "A")).await.unwrap();

        app.rotate_auth_key().await;
        let after = app.user("late").await;

        assert_ne!(jsonwebtoken::decode_header(&after).unwrap().kid, jsonwebtoken::decode_header(&before).unwrap().kid);
        assert!(app.create(&after, book("New key", "B")).await.is_ok());
        assert!(app.list(&before, pb::ListBooksRequest::default()).await.is_ok(), "the old key is still published");
    }
}

#[tokio::test]
async fn missing_malformed_and_foreign_tokens_are_unauthenticated() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = app.user("victim").await;
    let claims: token_verifier::Claims =
        jsonwebtoken::dangerous::insecure_decode_claims(&user).unwrap();
    let stranger =
        SigningKey::from_pem(generate_pem(KeyKind::Ed25519).unwrap().as_bytes()).unwrap();
    let mut header = Header::new(stranger.algorithm());
    header.kid = Some(stranger.kid().to_owned());
    let forged = encode(&header, &claims, stranger.encoding_key()).unwrap();

    let anonymous = app
        .books
        .clone()
        .list_books(pb::ListBooksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    for token in ["garbage", forged.as_str()] {
        let status = app
            .list(token, pb::ListBooksRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
    assert!(
        app.list(&user, pb::ListBooksRequest::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn both_migration_trees_build_the_same_schema() {
    let postgres = spawn_app(Backend::Postgres).await;
    let sqlite = spawn_app(Backend::Sqlite).await;

    let mut on_postgres = SchemaShape::of(postgres.books_database_url());
    let mut on_sqlite = SchemaShape::of(sqlite.books_database_url());

    assert!(on_postgres.indexes.contains("books_owner_id_idx"));
    // The one deliberate difference: each backend's own trigram index for search.
    assert!(on_postgres.indexes.remove("books_search_text_idx"));
    assert!(
        on_sqlite
            .columns
            .contains(&("books_search".to_owned(), "search_text".to_owned()))
    );
    on_sqlite
        .columns
        .retain(|(table, _)| !table.starts_with("books_search"));
    assert_eq!(on_postgres, on_sqlite);
}
