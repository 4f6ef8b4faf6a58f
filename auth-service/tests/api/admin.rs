use proto::auth::v1::{self as pb, TokenRejection};
use test_support::both_backends;
use tonic::{Code, Status};

use crate::helpers::{Login, PASSWORD, TestApp, bearer, claims_of, spawn_app};

async fn update(
    app: &TestApp,
    admin: &Login,
    user_id: &str,
    is_active: Option<bool>,
    roles: Option<&[&str]>,
) -> Result<pb::User, Status> {
    app.update_user(&admin.access, user_id, is_active, roles)
        .await
}

both_backends! {
    async fn deactivation_kills_the_users_live_tokens_at_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin("root").await;
        let user = app.user("employee").await;
        let other_session = app.login("employee", PASSWORD).await.unwrap();
        let user_id = claims_of(&user.access).sub;

        let updated = update(&app, &admin, &user_id, Some(false), None).await.unwrap();

        assert!(!updated.is_active);
        for login in [&user, &other_session] {
            assert_eq!(app.rejection(&login.access).await, TokenRejection::Revoked);
            assert_eq!(app.refresh(&login.refresh).await.unwrap_err().code(), Code::Unauthenticated);
        }
        assert!(app.in_redis("user", &user_id).await);
        assert!(app.in_redis("session", &user.session_id).await);
        assert_eq!(app.login("employee", PASSWORD).await.unwrap_err().code(), Code::Unauthenticated);
        assert!(app.is_valid(&admin.access).await);

        update(&app, &admin, &user_id, Some(true), None).await.unwrap();
        assert!(app.login("employee", PASSWORD).await.is_ok());
    }

    async fn a_role_change_ends_the_sessions_so_no_token_keeps_old_roles(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin("chief").await;
        let user = app.user("promoted").await;
        let user_id = claims_of(&user.access).sub;

        let updated = update(&app, &admin, &user_id, None, Some(&["user", "admin"])).await.unwrap();

        assert_eq!(updated.roles, ["user", "admin"]);
        assert_eq!(app.rejection(&user.access).await, TokenRejection::Revoked);
        let fresh = app.login("promoted", PASSWORD).await.unwrap();
        assert_eq!(claims_of(&fresh.access).roles, ["user", "admin"]);
        assert_eq!(update(&app, &admin, &user_id, None, Some(&["root"])).await.unwrap_err().code(), Code::InvalidArgument);
    }

    async fn admins_list_users_page_by_page_and_never_see_hashes(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin("lister").await;
        for name in ["u-one", "u-two", "u-three", "u-four"] {
            app.user(name).await;
        }
        let page = |token: String| {
            let mut client = app.client.clone();
            let access = admin.access.clone();
            async move {
                client
                    .list_users(bearer(pb::ListUsersRequest { page_size: 2, page_token: token }, &access))
                    .await
                    .map(tonic::Response::into_inner)
            }
        };

        let first = page(String::new()).await.unwrap();
        let second = page(first.next_page_token.clone()).await.unwrap();
        let third = page(second.next_page_token.clone()).await.unwrap();

        let names: Vec<_> = [&first, &second, &third].iter().flat_map(|p| p.users.iter().map(|u| u.username.clone())).collect();
        assert_eq!(names, ["lister", "u-one", "u-two", "u-three", "u-four"]);
        assert!(third.next_page_token.is_empty());
        assert_eq!(page("garbage".to_owned()).await.unwrap_err().code(), Code::InvalidArgument);
    }

    async fn non_admins_cannot_use_admin_rpcs_and_admins_cannot_lock_themselves_out(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin("keeper").await;
        let user = app.user("plain").await;
        let admin_id = claims_of(&admin.access).sub;

        let listed = app.client.clone().list_users(bearer(pb::ListUsersRequest::default(), &user.access)).await;
        assert_eq!(listed.unwrap_err().code(), Code::PermissionDenied);
        assert_eq!(update(&app, &user, &admin_id, Some(false), None).await.unwrap_err().code(), Code::PermissionDenied);
        let peek = app.client.clone().get_user(bearer(pb::GetUserRequest { user_id: admin_id.clone() }, &user.access)).await;
        assert_eq!(peek.unwrap_err().code(), Code::PermissionDenied);

        assert_eq!(update(&app, &admin, &admin_id, Some(false), None).await.unwrap_err().code(), Code::FailedPrecondition);
        assert_eq!(update(&app, &admin, &admin_id, None, Some(&["user"])).await.unwrap_err().code(), Code::FailedPrecondition);
        let missing = uuid::Uuid::now_v7().to_string();
        assert_eq!(update(&app, &admin, &missing, Some(false), None).await.unwrap_err().code(), Code::NotFound);
    }

    async fn get_user_returns_the_caller_by_default(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("myself").await;

        let me = app.client.clone().get_user(bearer(pb::GetUserRequest::default(), &user.access)).await.unwrap().into_inner();

        assert_eq!(me.username, "myself");
        assert_eq!(me.id, claims_of(&user.access).sub);
        let anonymous = app.client.clone().get_user(pb::GetUserRequest::default()).await.unwrap_err();
        assert_eq!(anonymous.code(), Code::Unauthenticated);
    }
}
