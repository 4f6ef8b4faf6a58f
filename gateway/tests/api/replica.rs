//! The revocation replica as clients see it: a second gateway reaches Redis through a chaos
//! proxy, so the test decides when it can follow the stream. A 401 whose detail says "revoked"
//! is that gateway's own verdict (upstream refusals read differently).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use revocation::CheckSettings;
use serde_json::Value;
use test_support::{Backend, ChaosProxy};

use crate::helpers::{Stack, eventually, problem, spawn_stack, wait_until_ready};

/// The stack's gateway settings, with Redis reached through `proxy` and `budget_ms` of
/// staleness allowed.
fn behind(proxy: &ChaosProxy, stack: &Stack, budget_ms: u64) -> gateway::Settings {
    let mut settings = stack.gateway_settings.clone();
    settings.redis.url = Some(format!("redis://{}", proxy.addr()).into());
    settings.revocation = CheckSettings {
        staleness_budget_ms: budget_ms,
        ..CheckSettings::default()
    };
    settings
}

async fn books_on(stack: &Stack, base: &str, token: &str) -> reqwest::Response {
    stack
        .client
        .get(format!("{base}/api/books"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_revocation_through_auth_service_is_denied_by_another_gateway_from_its_memory() {
    let mut stack = spawn_stack(Backend::Postgres).await;
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    let second = stack
        .start_gateway_with(behind(&proxy, &stack, 60_000))
        .await;
    let leaving = stack.user("leaving").await;
    let staying = stack.user("staying").await;
    for user in [&leaving, &staying] {
        assert_eq!(
            books_on(&stack, &second, &user.access).await.status(),
            StatusCode::OK
        );
    }

    let logout = stack
        .request(Method::POST, "/api/auth/logout", Some(&leaving.access))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    eventually("the second gateway denies the logged-out token", || {
        stack.denies_as_revoked(&second, &leaving.access)
    })
    .await;

    // Redis is now out of the second gateway's reach: what it answers, it answers from memory.
    proxy.cut();
    for _ in 0..20 {
        assert!(stack.denies_as_revoked(&second, &leaving.access).await);
        assert_eq!(
            books_on(&stack, &second, &staying.access).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_gateway_cut_off_from_redis_denies_every_revocation_it_missed_once_reconnected() {
    let mut stack = spawn_stack(Backend::Postgres).await;
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    let second = stack
        .start_gateway_with(behind(&proxy, &stack, 60_000))
        .await;
    let logged_out = stack.user("logged-out").await;
    let everywhere = stack.user("everywhere").await;
    let laptop = stack.user("owner").await;
    let phone = stack.logged_in("owner").await;
    let live = stack.user("live").await;

    proxy.cut();
    let post =
        |path: &'static str, token: &str| stack.request(Method::POST, path, Some(token)).send();
    assert_eq!(
        post("/api/auth/logout", &logged_out.access)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("/api/auth/logout-all", &everywhere.access)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let sessions: Value = stack
        .get("/api/auth/sessions", &laptop.access)
        .await
        .json()
        .await
        .unwrap();
    let phone_session = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = stack
        .request(
            Method::DELETE,
            &format!("/api/auth/sessions/{phone_session}"),
            Some(&laptop.access),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);

    proxy.restore();
    for (what, token) in [
        ("a logout", &logged_out.access),
        ("a logout everywhere", &everywhere.access),
        ("a session revoked by its owner", &phone.access),
    ] {
        eventually(what, || stack.denies_as_revoked(&second, token)).await;
    }
    assert_eq!(
        books_on(&stack, &second, &live.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        books_on(&stack, &second, &laptop.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn past_its_staleness_budget_a_gateway_answers_503_and_recovers_by_itself() {
    let mut stack = spawn_stack(Backend::Sqlite).await;
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    let second = stack.start_gateway_with(behind(&proxy, &stack, 300)).await;
    let user = stack.user("patient").await;
    assert_eq!(
        books_on(&stack, &second, &user.access).await.status(),
        StatusCode::OK
    );

    proxy.cut();
    eventually("503 past the budget", || async {
        books_on(&stack, &second, &user.access).await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let refused = books_on(&stack, &second, &user.access).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    let ready = stack
        .client
        .get(format!("{second}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let healthz = stack
        .client
        .get(format!("{second}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);

    proxy.restore();
    eventually("served again", || async {
        books_on(&stack, &second, &user.access).await.status() == StatusCode::OK
    })
    .await;
    wait_until_ready(&stack.client, &second).await;
}

#[tokio::test]
async fn a_gateway_loads_the_revocations_before_it_reports_ready() {
    let mut stack = spawn_stack(Backend::Postgres).await;
    let gone = stack.user("gone").await;
    let live = stack.user("here").await;
    let logout = stack
        .request(Method::POST, "/api/auth/logout", Some(&gone.access))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    // A new instance that cannot read the stream yet is not ready, and refuses rather than
    // guesses.
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    proxy.cut();
    let second = stack.spawn_gateway(behind(&proxy, &stack, 60_000)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = stack
        .client
        .get(format!("{second}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    problem(
        books_on(&stack, &second, &live.access).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    proxy.restore();
    wait_until_ready(&stack.client, &second).await;
    // Ready means loaded: the earlier revocation is known at once.
    assert!(stack.denies_as_revoked(&second, &gone.access).await);
    assert_eq!(
        books_on(&stack, &second, &live.access).await.status(),
        StatusCode::OK
    );
}
