use test_support::both_backends;
use tonic::Code;

use crate::helpers::{PASSWORD, invalid_fields, spawn_app};

both_backends! {
    async fn register_returns_the_user_and_a_working_token_pair(backend) {
        let app = spawn_app(backend).await;

        let response = app.register("Ada", "Ada@Example.org", PASSWORD).await.unwrap();

        let user = response.user.unwrap();
        assert_eq!(user.username, "Ada");
        assert_eq!(user.email, "Ada@Example.org");
        assert_eq!(user.roles, ["user"]);
        assert!(user.is_active);
        assert!(uuid::Uuid::parse_str(&user.id).is_ok());
        let tokens = response.tokens.unwrap();
        assert_eq!(tokens.token_type, "Bearer");
        assert_eq!(tokens.expires_in, 900);
        let validated = app.validate(&tokens.access_token).await;
        assert!(validated.valid);
        assert_eq!(validated.claims.unwrap().user_id, user.id);
    }

    async fn a_username_taken_in_another_letter_case_or_width_is_already_exists(backend) {
        let app = spawn_app(backend).await;
        app.register("Strasse", "one@example.org", PASSWORD).await.unwrap();

        for taken in ["strasse", "STRASSE", "Straße", "ｓｔｒａｓｓｅ"] {
            let status = app.register(taken, "two@example.org", PASSWORD).await.unwrap_err();
            assert_eq!(status.code(), Code::AlreadyExists, "{taken}");
            assert!(status.message().contains("username"), "{}", status.message());
        }
    }

    async fn an_email_taken_in_another_letter_case_is_already_exists(backend) {
        let app = spawn_app(backend).await;
        app.register("first", "Grace@Example.org", PASSWORD).await.unwrap();

        let status = app.register("second", "grace@EXAMPLE.org", PASSWORD).await.unwrap_err();

        assert_eq!(status.code(), Code::AlreadyExists);
        assert!(status.message().contains("email"), "{}", status.message());
    }

    async fn weak_or_over_long_passwords_are_invalid_argument_naming_the_field(backend) {
        let app = spawn_app(backend).await;
        let over_72_bytes = "é".repeat(37);

        for password in ["short", "password1", "zelda-user", over_72_bytes.as_str()] {
            let status = app.register("zelda-user", "zelda@example.org", password).await.unwrap_err();
            assert_eq!(invalid_fields(&status), ["password"], "{password}");
        }
        assert_eq!(app.login("zelda-user", "whatever-pass").await.unwrap_err().code(), Code::Unauthenticated);
    }

    async fn every_invalid_field_is_named_at_once(backend) {
        let app = spawn_app(backend).await;

        let status = app.register("a\u{0}b", "not-an-email", "short").await.unwrap_err();

        assert_eq!(invalid_fields(&status), ["username", "email", "password"]);
    }
}
