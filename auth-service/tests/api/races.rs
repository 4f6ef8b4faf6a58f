//! What a login, a refresh or a password change decides must still hold when it commits:
//! requests fired concurrently, as an attacker would, at a bcrypt cost that keeps each one in
//! flight long enough to straddle the change they race.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::auth::v1::{self as pb, TokenRejection};
use revocation::TokenIdentity;
use test_support::both_backends;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::helpers::{
    Login, PASSWORD, TestApp, TestOptions, claims_of, client_from, spawn_app_with,
};

/// A hash of about 10–40 ms here: long enough for concurrent requests to overlap.
const RACE_BCRYPT_COST: u32 = 8;
const RACERS: usize = 6;
const NEW_PASSWORD: &str = "a brand new secret";

fn slow_hashing() -> TestOptions {
    TestOptions {
        bcrypt_cost: RACE_BCRYPT_COST,
        ..TestOptions::default()
    }
}

fn racing() -> TestOptions {
    TestOptions {
        // The racers' failures after the change must not be throttled: what they get is the
        // point.
        client_max_failures: 1_000,
        account_max_failures: 1_000,
        ..slow_hashing()
    }
}

/// Logs in as `username` with `password` from `RACERS` clients in a loop until `change` has
/// returned, each ending with one login started after it. Returns every session opened.
async fn race_logins<F, T>(
    app: &Arc<TestApp>,
    username: &str,
    password: &str,
    change: F,
) -> (T, Vec<Login>)
where
    F: std::future::Future<Output = T>,
{
    let changed = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (app, changed, succeeded) = (
            Arc::clone(app),
            Arc::clone(&changed),
            Arc::clone(&succeeded),
        );
        let (username, password) = (username.to_owned(), password.to_owned());
        racers.spawn(async move {
            let mut opened = Vec::new();
            loop {
                let last = changed.load(Ordering::SeqCst);
                if let Ok(login) = app.login(&username, &password).await {
                    opened.push(login);
                    succeeded.fetch_add(1, Ordering::SeqCst);
                }
                if last {
                    return opened;
                }
            }
        });
    }
    // Let every racer get going, so that some logins straddle the change: waiting for
    // successes, not for a fixed time, keeps the race real on a loaded machine too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while succeeded.load(Ordering::SeqCst) < RACERS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the racers opened no session in 30 s: no race can run"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let outcome = change.await;
    changed.store(true, Ordering::SeqCst);
    let mut opened = Vec::new();
    while let Some(sessions) = racers.join_next().await {
        opened.extend(sessions.unwrap());
    }
    (outcome, opened)
}

/// Asserts that neither auth-service nor the store the verifiers read accepts the session's
/// access token, and that its refresh token is refused.
async fn assert_dead(app: &TestApp, login: &Login) {
    assert_eq!(
        app.rejection(&login.access).await,
        TokenRejection::Revoked,
        "{login:?}"
    );
    let claims = claims_of(&login.access);
    assert!(
        eventually_refused(app, &claims.identity()).await,
        "{login:?}"
    );
    assert_eq!(
        app.refresh(&login.refresh).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

/// `count` wrong passwords for `username` at once, split over `clients`; the answers' codes.
async fn wrong_logins(
    clients: &[AuthServiceClient<Channel>],
    username: &str,
    count: usize,
) -> Vec<Code> {
    let mut attempts = JoinSet::new();
    for n in 0..count {
        let mut client = clients[n % clients.len()].clone();
        let request = pb::LoginRequest {
            username: username.to_owned(),
            password: format!("wrong guess {n}"),
            client: client_from("203.0.113.7"),
        };
        attempts.spawn(async move { client.login(request).await.map(drop) });
    }
    let mut codes = Vec::new();
    while let Some(answer) = attempts.join_next().await {
        codes.push(
            answer
                .unwrap()
                .map_or_else(|status: Status| status.code(), |()| Code::Ok),
        );
    }
    codes
}

fn count(codes: &[Code], code: Code) -> usize {
    codes.iter().filter(|c| **c == code).count()
}

both_backends! {
    async fn logins_racing_a_password_change_open_no_session_that_outlives_it(backend) {
        let app = Arc::new(spawn_app_with(backend, racing()).await);
        let owner = app.user("victim").await;

        let (changed, stolen) = race_logins(&app, "victim", PASSWORD, async {
            app.change_password(&owner.access, PASSWORD, NEW_PASSWORD).await
        })
        .await;

        changed.unwrap();
        for login in &stolen {
            assert_dead(&app, login).await;
        }
        assert!(app.is_valid(&owner.access).await, "the changer's own session stays");
        let fresh = app.login("victim", NEW_PASSWORD).await.unwrap();
        assert!(app.is_valid(&fresh.access).await);
    }

    async fn logins_racing_a_deactivation_get_no_token_that_is_accepted(backend) {
        let app = Arc::new(spawn_app_with(backend, racing()).await);
        let admin = app.admin("root").await;
        let user = app.user("leaver").await;
        let user_id = claims_of(&user.access).sub;

        let (deactivated, opened) = race_logins(&app, "leaver", PASSWORD, async {
            app.update_user(&admin.access, &user_id, Some(false), None).await
        })
        .await;

        assert!(!deactivated.unwrap().is_active);
        for login in opened.iter().chain([&user]) {
            assert_dead(&app, login).await;
        }
        assert_eq!(app.login("leaver", PASSWORD).await.unwrap_err().code(), Code::Unauthenticated);
    }

    async fn logins_racing_a_demotion_get_no_token_that_carries_the_removed_role(backend) {
        let app = Arc::new(spawn_app_with(backend, racing()).await);
        let root = app.admin("root").await;
        let chief = app.admin("chief").await;
        let chief_id = claims_of(&chief.access).sub;

        let (demoted, opened) = race_logins(&app, "chief", PASSWORD, async {
            app.update_user(&root.access, &chief_id, None, Some(&["user"])).await
        })
        .await;

        assert_eq!(demoted.unwrap().roles, ["user"]);
        for login in opened.iter().chain([&chief]) {
            if claims_of(&login.access).roles.iter().any(|role| role == "admin") {
                assert_dead(&app, login).await;
            } else {
                assert!(app.is_valid(&login.access).await, "{login:?}");
            }
        }
        let after = app.login("chief", PASSWORD).await.unwrap();
        assert_eq!(claims_of(&after.access).roles, ["user"]);
    }

    async fn refreshes_racing_a_deactivation_get_no_token_that_is_accepted(backend) {
        let app = Arc::new(spawn_app_with(backend, racing()).await);
        let admin = app.admin("root").await;
        let user = app.user("leaver").await;
        let user_id = claims_of(&user.access).sub;
        let changed = Arc::new(AtomicBool::new(false));
        let mut racers = JoinSet::new();
        for _ in 0..RACERS {
            let (app, changed) = (Arc::clone(&app), Arc::clone(&changed));
            let mut login = app.login("leaver", PASSWORD).await.unwrap();
            racers.spawn(async move {
                let mut issued = vec![login.clone()];
                loop {
                    let last = changed.load(Ordering::SeqCst);
                    match app.refresh(&login.refresh).await {
                        Ok(pair) => {
                            issued.push(pair.clone());
                            login = pair;
                        }
                        Err(status) => {
                            assert_eq!(status.code(), Code::Unauthenticated);
                            return issued;
                        }
                    }
                    if last {
                        return issued;
                    }
                }
            });
        }

        tokio::time::sleep(Duration::from_millis(100)).await;
        app.update_user(&admin.access, &user_id, Some(false), None).await.unwrap();
        changed.store(true, Ordering::SeqCst);
        while let Some(issued) = racers.join_next().await {
            for login in issued.unwrap() {
                assert_dead(&app, &login).await;
            }
        }
    }

    async fn concurrent_wrong_passwords_are_judged_at_most_the_limit_times(backend) {
        let app = spawn_app_with(backend, slow_hashing()).await;
        app.user("target").await;

        let codes = wrong_logins(std::slice::from_ref(&app.client), "target", 48).await;

        let limit = app.settings.login_throttle.client_max_failures as usize;
        assert_eq!(count(&codes, Code::Unauthenticated), limit, "{codes:?}");
        assert_eq!(count(&codes, Code::ResourceExhausted), 48 - limit, "{codes:?}");
    }

    async fn concurrent_wrong_passwords_through_two_instances_are_judged_at_most_the_limit_times(backend) {
        let app = spawn_app_with(backend, slow_hashing()).await;
        app.user("target").await;
        let (second, _running) = app.second_instance().await;

        let codes = wrong_logins(&[app.client.clone(), second], "target", 48).await;

        let limit = app.settings.login_throttle.client_max_failures as usize;
        assert_eq!(count(&codes, Code::Unauthenticated), limit, "{codes:?}");
        assert_eq!(count(&codes, Code::ResourceExhausted), 48 - limit, "{codes:?}");
    }

    async fn concurrent_wrong_current_passwords_are_judged_at_most_the_limit_times(backend) {
        let app = Arc::new(spawn_app_with(backend, slow_hashing()).await);
        let user = app.user("changer").await;

        let mut attempts = JoinSet::new();
        for n in 0..40 {
            let (app, access) = (Arc::clone(&app), user.access.clone());
            attempts.spawn(async move {
                app.change_password(&access, &format!("wrong guess {n}"), NEW_PASSWORD).await
            });
        }
        let mut codes = Vec::new();
        while let Some(answer) = attempts.join_next().await {
            codes.push(answer.unwrap().map_or_else(|status| status.code(), |_| Code::Ok));
        }

        let limit = app.settings.login_throttle.client_max_failures as usize;
        assert_eq!(count(&codes, Code::InvalidArgument), limit, "{codes:?}");
        assert_eq!(count(&codes, Code::ResourceExhausted), 40 - limit, "{codes:?}");
        assert!(app.login("changer", PASSWORD).await.is_ok(), "the password is unchanged");
    }

    async fn a_cut_off_refuses_what_was_issued_before_it_to_the_millisecond(backend) {
        let app = spawn_app_with(backend, TestOptions::default()).await;
        let before = app.user("quick").await;
        let before_claims = claims_of(&before.access);

        let mut client = app.client.clone();
        client.logout_all(crate::helpers::bearer(pb::LogoutAllRequest {}, &before.access)).await.unwrap();
        let after = app.login("quick", PASSWORD).await.unwrap();
        let after_claims = claims_of(&after.access);

        // Any token of the user issued when the first one was is refused by the cut-off
        // itself, whatever its session; the login right after it works.
        let issued_then = TokenIdentity {
            token_id: "another-token",
            session_id: "another-session",
            user_id: &before_claims.sub,
            issued_at_ms: before_claims.issued_at_ms,
        };
        assert!(eventually_refused(&app, &issued_then).await);
        assert!(!app.store_refuses(&after_claims.identity()).await);
        assert!(app.is_valid(&after.access).await);
        assert_eq!(app.rejection(&before.access).await, TokenRejection::Revoked);
    }
}

async fn eventually_refused(app: &TestApp, token: &TokenIdentity<'_>) -> bool {
    for _ in 0..100 {
        if app.store_refuses(token).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
