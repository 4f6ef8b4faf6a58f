use auth_service::keys::{KeyKind, SigningKey, generate_pem};
use jsonwebtoken::{Header, encode};
use proto::auth::v1::TokenRejection;
use test_support::{Backend, both_backends};
use token_verifier::Claims;

use crate::helpers::{TestApp, TestOptions, claims_of, spawn_app, spawn_app_with};

/// Signs `claims` with `key`, as an attacker holding that key would.
fn sign(claims: &Claims, key: &SigningKey) -> String {
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    encode(&header, claims, key.encoding_key()).unwrap()
}

async fn valid_claims(app: &TestApp) -> Claims {
    let login = app.user("subject").await;
    claims_of(&login.access)
}

both_backends! {
    async fn tokens_signed_by_an_unpublished_key_are_rejected(backend) {
        let app = spawn_app(backend).await;
        let claims = valid_claims(&app).await;
        let stranger = SigningKey::from_pem(generate_pem(KeyKind::Ed25519).unwrap().as_bytes()).unwrap();

        let forged = sign(&claims, &stranger);

        assert_eq!(app.rejection(&forged).await, TokenRejection::BadSignature);
    }

    async fn expired_tokens_are_rejected(backend) {
        let app = spawn_app(backend).await;
        let mut claims = valid_claims(&app).await;
        claims.issued_at_ms -= 3_600_000;
        claims.nbf -= 3_600;
        claims.exp = claims.nbf + 60;

        let expired = sign(&claims, &app.active_key());

        assert_eq!(app.rejection(&expired).await, TokenRejection::Expired);
    }

    async fn a_refresh_token_is_not_an_access_token(backend) {
        let app = spawn_app(backend).await;
        let login = app.user("swapper").await;

        assert_eq!(app.rejection(&login.refresh).await, TokenRejection::WrongType);
    }
}

#[tokio::test]
async fn unsigned_and_tampered_tokens_are_rejected() {
    let app = spawn_app(Backend::Sqlite).await;
    let login = app.user("target").await;
    let [header, payload, signature]: [&str; 3] = login
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let mut admin_claims = claims_of(&login.access);
    admin_claims.roles.push("admin".to_owned());
    let elevated = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&admin_claims).unwrap())
    };
    let mut flipped = signature.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    let cases = [
        // alg "none", with and without a signature.
        (
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
            TokenRejection::Malformed,
        ),
        (
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.{signature}"),
            TokenRejection::Malformed,
        ),
        (format!("{header}.{payload}."), TokenRejection::BadSignature),
        (
            format!("{header}.{payload}.{flipped}"),
            TokenRejection::BadSignature,
        ),
        (
            format!("{header}.{elevated}.{signature}"),
            TokenRejection::BadSignature,
        ),
        ("garbage".to_owned(), TokenRejection::Malformed),
    ];
    for (token, expected) in cases {
        assert_eq!(app.rejection(&token).await, expected, "{token}");
    }
    assert!(app.is_valid(&login.access).await);
}

#[tokio::test]
async fn hs256_signed_with_the_published_public_key_is_rejected() {
    let app = spawn_app(Backend::Sqlite).await;
    let claims = valid_claims(&app).await;
    let jwk = app.jwks().await.remove(0);
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(jwk.kid.clone());

    let confused = encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwk.x.as_bytes()),
    )
    .unwrap();

    assert_eq!(app.rejection(&confused).await, TokenRejection::BadSignature);
}

#[tokio::test]
async fn rs256_and_es256_keys_sign_tokens_that_validate() {
    for kind in [KeyKind::Rsa, KeyKind::P256] {
        let app = spawn_app_with(
            Backend::Sqlite,
            TestOptions {
                key_kind: kind,
                ..TestOptions::default()
            },
        )
        .await;
        let login = app.user("algorithms").await;
        let alg = jsonwebtoken::decode_header(&login.access).unwrap().alg;
        assert_eq!(alg, app.active_key().algorithm());
        assert!(app.is_valid(&login.access).await, "{kind:?}");
    }
}

both_backends! {
    async fn tokens_of_the_previous_key_validate_while_it_is_published(backend) {
        let mut app = spawn_app(backend).await;
        let before = app.user("rotation").await;
        let old_kid = app.active_key().kid().to_owned();
        let old_file = app.settings.tokens.signing_key_file.clone().unwrap();
        let new_file = app.new_key("next.pem", KeyKind::Ed25519);

        app.restart(|settings| {
            settings.tokens.signing_key_file = Some(new_file.clone());
            settings.tokens.previous_key_files = vec![old_file.clone()];
        })
        .await;

        let kids: Vec<String> = app.jwks().await.into_iter().map(|jwk| jwk.kid).collect();
        assert_eq!(kids.len(), 2);
        assert_ne!(kids[0], old_kid, "the new key signs");
        assert_eq!(kids[1], old_kid);
        assert!(app.is_valid(&before.access).await);
        let after = app.refresh(&before.refresh).await.unwrap();
        assert_eq!(jsonwebtoken::decode_header(&after.access).unwrap().kid.unwrap(), kids[0]);

        app.restart(|settings| settings.tokens.previous_key_files.clear()).await;

        assert_eq!(app.rejection(&before.access).await, TokenRejection::BadSignature);
        assert!(app.is_valid(&after.access).await);
    }
}
