use test_support::both_backends;
use tonic::Code;

use crate::helpers::{PASSWORD, TestOptions, claims_of, spawn_app, spawn_app_with};
use proto::auth::v1::TokenRejection;

both_backends! {
    async fn refresh_rotates_the_pair_and_the_used_token_stops_working(backend) {
        let app = spawn_app_with(backend, TestOptions { refresh_grace_secs: 0, ..TestOptions::default() }).await;
        let first = app.user("rotor").await;

        let second = app.refresh(&first.refresh).await.unwrap();

        assert_eq!(second.session_id, first.session_id);
        assert_ne!(second.refresh, first.refresh);
        assert_ne!(claims_of(&second.access).jti, claims_of(&first.access).jti);
        assert!(app.is_valid(&second.access).await);
        let third = app.refresh(&second.refresh).await.unwrap();
        assert!(app.is_valid(&third.access).await);
        assert_eq!(app.refresh(&first.refresh).await.unwrap_err().code(), Code::Unauthenticated, "a used refresh token is dead");
    }

    async fn concurrent_refreshes_with_one_token_inside_the_grace_window_both_get_working_pairs(backend) {
        let app = spawn_app_with(backend, TestOptions { refresh_grace_secs: 60, ..TestOptions::default() }).await;
        let login = app.user("tabs").await;

        let (a, b) = tokio::join!(app.refresh(&login.refresh), app.refresh(&login.refresh));
        let (a, b) = (a.unwrap(), b.unwrap());

        assert!(app.is_valid(&a.access).await);
        assert!(app.is_valid(&b.access).await);
        // Both hold the session's current refresh token, so both keep working.
        assert_eq!(a.refresh, b.refresh);
        let next = app.refresh(&a.refresh).await.unwrap();
        let sessions = app.sessions(&next.access, true).await;
        assert_eq!(sessions.len(), 1);
        assert!(sessions[0].revoked_at.is_none());
    }

    async fn a_rotated_token_replayed_after_the_window_revokes_the_session(backend) {
        let app = spawn_app_with(backend, TestOptions { refresh_grace_secs: 0, ..TestOptions::default() }).await;
        let stolen = app.user("victim").await;
        let rotated = app.refresh(&stolen.refresh).await.unwrap();

        let replay = app.refresh(&stolen.refresh).await.unwrap_err();

        assert_eq!(replay.code(), Code::Unauthenticated);
        assert!(replay.message().contains("already used"), "{}", replay.message());
        assert_eq!(app.rejection(&rotated.access).await, TokenRejection::Revoked);
        assert!(app.in_redis("token", &claims_of(&rotated.access).jti).await);
        assert!(app.in_redis("session", &rotated.session_id).await);
        assert_eq!(app.refresh(&rotated.refresh).await.unwrap_err().code(), Code::Unauthenticated);
        let other = app.login("victim", PASSWORD).await.unwrap();
        let sessions = app.sessions(&other.access, true).await;
        let dead = sessions.iter().find(|s| s.id == rotated.session_id).unwrap();
        assert_eq!(dead.revoked_reason, "refresh_token_reused");
        assert!(dead.revoked_at.is_some());
        assert!(app.sessions(&other.access, false).await.iter().all(|s| s.id != rotated.session_id));
    }

    async fn a_token_two_generations_old_is_theft_even_inside_the_window(backend) {
        let app = spawn_app_with(backend, TestOptions { refresh_grace_secs: 60, ..TestOptions::default() }).await;
        let first = app.user("ancient").await;
        let second = app.refresh(&first.refresh).await.unwrap();
        let third = app.refresh(&second.refresh).await.unwrap();

        assert_eq!(app.refresh(&first.refresh).await.unwrap_err().code(), Code::Unauthenticated);

        assert_eq!(app.rejection(&third.access).await, TokenRejection::Revoked);
        assert_eq!(app.refresh(&third.refresh).await.unwrap_err().code(), Code::Unauthenticated);
    }

    async fn an_access_token_or_garbage_cannot_refresh(backend) {
        let app = spawn_app(backend).await;
        let login = app.user("mixup").await;

        for token in [login.access.as_str(), "", "not.a.jwt", "a.b"] {
            assert_eq!(app.refresh(token).await.unwrap_err().code(), Code::Unauthenticated, "{token}");
        }
        assert!(app.is_valid(&login.access).await, "failed refreshes revoke nothing");
    }
}
