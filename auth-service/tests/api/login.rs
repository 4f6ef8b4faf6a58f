use proto::auth::v1::UpdateUserRequest;
use test_support::both_backends;
use tonic::Code;

use crate::helpers::{PASSWORD, TestOptions, bearer, spawn_app, spawn_app_with};

both_backends! {
    async fn login_by_username_or_email_in_any_case_opens_a_session(backend) {
        let app = spawn_app(backend).await;
        let first = app.user("Linus").await;

        let by_name = app.login("LINUS", PASSWORD).await.unwrap();
        let by_email = app.login("linus@EXAMPLE.org", PASSWORD).await.unwrap();

        assert!(app.is_valid(&by_name.access).await);
        assert!(app.is_valid(&by_email.access).await);
        let sessions = app.sessions(&by_name.access, false).await;
        assert_eq!(sessions.len(), 3);
        let current: Vec<_> = sessions.iter().filter(|s| s.current).map(|s| &s.id).collect();
        assert_eq!(current, [&by_name.session_id]);
        assert!(sessions.iter().any(|s| s.id == first.session_id && s.ip == "127.0.0.1"));
    }

    async fn login_by_an_email_with_non_ascii_letters_ignores_their_case(backend) {
        let app = spawn_app(backend).await;
        app.register("strasse-fan", "Straße.Ü@Example.org", PASSWORD).await.unwrap();

        assert!(app.login("straße.ü@EXAMPLE.org", PASSWORD).await.is_ok());
    }

    async fn every_login_failure_gets_the_same_unauthenticated_answer(backend) {
        let app = spawn_app(backend).await;
        app.user("grace").await;
        let admin = app.admin("boss").await;
        let deactivated = app.user("gone").await;
        let gone_id = app.validate(&deactivated.access).await.claims.unwrap().user_id;
        app.client
            .clone()
            .update_user(bearer(
                UpdateUserRequest { user_id: gone_id, is_active: Some(false), roles: None },
                &admin.access,
            ))
            .await
            .unwrap();

        let unknown_user = app.login("nobody", PASSWORD).await.unwrap_err();
        let wrong_password = app.login("grace", "wrong password").await.unwrap_err();
        let inactive = app.login("gone", PASSWORD).await.unwrap_err();

        for status in [&unknown_user, &wrong_password, &inactive] {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), unknown_user.message());
        }
        assert_eq!(unknown_user.message(), "invalid username or password");
    }

    async fn malformed_login_input_is_invalid_argument(backend) {
        let app = spawn_app(backend).await;

        let empty = app.login("", PASSWORD).await.unwrap_err();
        let control = app.login("ad\u{7}a", PASSWORD).await.unwrap_err();
        let long_password = app.login("ada", &"x".repeat(73)).await.unwrap_err();

        assert_eq!(empty.code(), Code::InvalidArgument);
        assert_eq!(control.code(), Code::InvalidArgument);
        assert_eq!(long_password.code(), Code::InvalidArgument);
    }

    async fn repeated_failures_from_one_client_are_throttled_even_for_the_right_password(backend) {
        let app = spawn_app_with(backend, TestOptions { client_max_failures: 3, ..TestOptions::default() }).await;
        app.user("hopper").await;

        for _ in 0..3 {
            assert_eq!(app.login_from("hopper", "wrong", "10.0.0.1").await.unwrap_err().code(), Code::Unauthenticated);
        }
        let throttled = app.login_from("hopper", PASSWORD, "10.0.0.1").await.unwrap_err();

        assert_eq!(throttled.code(), Code::ResourceExhausted);
        let retry_after: u64 = throttled.metadata().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        // The real user, elsewhere, is not locked out by that client.
        assert!(app.login_from("hopper", PASSWORD, "10.0.0.2").await.is_ok());
    }

    async fn unknown_names_are_throttled_exactly_like_known_ones(backend) {
        let app = spawn_app_with(backend, TestOptions { client_max_failures: 2, ..TestOptions::default() }).await;

        for _ in 0..2 {
            assert_eq!(app.login("ghost", "wrong").await.unwrap_err().code(), Code::Unauthenticated);
        }

        assert_eq!(app.login("ghost", "wrong").await.unwrap_err().code(), Code::ResourceExhausted);
    }

    async fn failures_spread_over_clients_hit_the_account_limit(backend) {
        let options = TestOptions { client_max_failures: 3, account_max_failures: 5, ..TestOptions::default() };
        let app = spawn_app_with(backend, options).await;
        app.user("turing").await;

        for _ in 0..3 {
            app.login_from("turing", "wrong", "10.0.0.1").await.unwrap_err();
        }
        for _ in 0..2 {
            app.login_from("turing", "wrong", "10.0.0.2").await.unwrap_err();
        }

        let elsewhere = app.login_from("turing", PASSWORD, "10.0.0.3").await.unwrap_err();
        assert_eq!(elsewhere.code(), Code::ResourceExhausted);
    }

    async fn a_successful_login_clears_the_clients_failures(backend) {
        let app = spawn_app_with(backend, TestOptions { client_max_failures: 3, ..TestOptions::default() }).await;
        app.user("lovelace").await;

        for _ in 0..2 {
            app.login("lovelace", "wrong").await.unwrap_err();
        }
        app.login("lovelace", PASSWORD).await.unwrap();
        for _ in 0..2 {
            app.login("lovelace", "wrong").await.unwrap_err();
        }

        assert!(app.login("lovelace", PASSWORD).await.is_ok());
    }
}
