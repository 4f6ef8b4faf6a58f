use proto::auth::v1::{self as pb, TokenRejection};
use test_support::both_backends;
use tonic::Code;

use crate::helpers::{PASSWORD, bearer, claims_of, spawn_app};

both_backends! {
    async fn logout_ends_only_the_callers_session(backend) {
        let app = spawn_app(backend).await;
        let here = app.user("leaver").await;
        let there = app.login("leaver", PASSWORD).await.unwrap();

        app.logout(&here.access).await.unwrap();

        assert_eq!(app.rejection(&here.access).await, TokenRejection::Revoked);
        assert_eq!(app.refresh(&here.refresh).await.unwrap_err().code(), Code::Unauthenticated);
        assert!(app.in_redis("session", &here.session_id).await);
        assert!(app.in_redis("token", &claims_of(&here.access).jti).await);
        assert!(app.is_valid(&there.access).await);
        assert!(app.refresh(&there.refresh).await.is_ok());
        assert_eq!(app.logout(&here.access).await.unwrap_err().code(), Code::Unauthenticated);
    }

    async fn logout_all_ends_every_session_and_cuts_off_the_user(backend) {
        let app = spawn_app(backend).await;
        let one = app.user("everywhere").await;
        let two = app.login("everywhere", PASSWORD).await.unwrap();
        let bystander = app.user("bystander").await;

        let revoked = app
            .client
            .clone()
            .logout_all(bearer(pb::LogoutAllRequest {}, &one.access))
            .await
            .unwrap()
            .into_inner()
            .sessions_revoked;

        assert_eq!(revoked, 2);
        for login in [&one, &two] {
            assert_eq!(app.rejection(&login.access).await, TokenRejection::Revoked);
            assert_eq!(app.refresh(&login.refresh).await.unwrap_err().code(), Code::Unauthenticated);
        }
        assert!(app.in_redis("user", &claims_of(&one.access).sub).await);
        assert!(app.is_valid(&bystander.access).await);
        let again = app.login("everywhere", PASSWORD).await.unwrap();
        assert!(app.is_valid(&again.access).await, "a new login works after the cut-off");
    }

    async fn revoke_sessions_ends_the_chosen_sessions_of_the_caller_only(backend) {
        let app = spawn_app(backend).await;
        let laptop = app.user("owner").await;
        let phone = app.login("owner", PASSWORD).await.unwrap();
        let stranger = app.user("stranger").await;

        let revoke = |ids: Vec<String>| {
            let mut client = app.client.clone();
            let access = laptop.access.clone();
            async move {
                client
                    .revoke_sessions(bearer(pb::RevokeSessionsRequest { session_ids: ids }, &access))
                    .await
                    .map(|response| response.into_inner().revoked)
            }
        };

        assert_eq!(revoke(vec![stranger.session_id.clone()]).await.unwrap(), 0);
        assert_eq!(revoke(vec![phone.session_id.clone()]).await.unwrap(), 1);
        assert_eq!(revoke(vec![phone.session_id.clone()]).await.unwrap(), 0, "already revoked");
        assert_eq!(revoke(vec!["not-a-uuid".to_owned()]).await.unwrap_err().code(), Code::InvalidArgument);

        assert_eq!(app.rejection(&phone.access).await, TokenRejection::Revoked);
        assert!(app.is_valid(&laptop.access).await);
        assert!(app.is_valid(&stranger.access).await);
        let listed = app.sessions(&laptop.access, true).await;
        let phone_row = listed.iter().find(|s| s.id == phone.session_id).unwrap();
        assert_eq!(phone_row.revoked_reason, "revoked_by_user");
    }

    async fn change_password_keeps_this_session_and_ends_the_others(backend) {
        let app = spawn_app(backend).await;
        let here = app.user("changer").await;
        let there = app.login("changer", PASSWORD).await.unwrap();
        let change = |current, new| app.change_password(&here.access, current, new);

        let wrong = change("not my password", "a brand new secret").await.unwrap_err();
        assert_eq!(crate::helpers::invalid_fields(&wrong), ["current_password"]);
        let weak = change(PASSWORD, "password").await.unwrap_err();
        assert_eq!(crate::helpers::invalid_fields(&weak), ["new_password"]);

        assert_eq!(change(PASSWORD, "a brand new secret").await.unwrap(), 1);

        assert!(app.is_valid(&here.access).await);
        assert_eq!(app.rejection(&there.access).await, TokenRejection::Revoked);
        assert_eq!(app.login("changer", PASSWORD).await.unwrap_err().code(), Code::Unauthenticated);
        assert!(app.login("changer", "a brand new secret").await.is_ok());
    }
}
