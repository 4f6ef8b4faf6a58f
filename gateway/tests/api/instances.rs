use reqwest::{Method, StatusCode};
use revocation::{CheckMode, CheckSettings};
use test_support::{Backend, ChaosProxy, both_backends};

use crate::helpers::{StackOptions, problem, spawn_stack, spawn_stack_with};

both_backends! {
    async fn a_logout_through_one_gateway_is_honoured_by_another_at_once(backend) {
        let mut stack = spawn_stack(backend).await;
        let second = stack.start_gateway().await;
        let user = stack.user("traveller").await;
        let on_second = |path: &str| stack.client.get(format!("{second}{path}")).bearer_auth(&user.access).send();
        assert_eq!(on_second("/api/me").await.unwrap().status(), StatusCode::OK);

        let logout = stack.request(Method::POST, "/api/auth/logout", Some(&user.access)).send().await.unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);

        problem(on_second("/api/me").await.unwrap(), StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn checking_redis_per_request_protected_routes_and_readiness_answer_503_without_it() {
    // The replica's counterpart (503 only past its staleness budget) is in `replica`.
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    let options = StackOptions {
        gateway_redis_url: Some(format!("redis://{}", proxy.addr())),
        revocation: CheckSettings {
            mode: CheckMode::Redis,
            ..CheckSettings::default()
        },
        ..StackOptions::default()
    };
    let stack = spawn_stack_with(Backend::Sqlite, options).await;
    let user = stack.user("patient").await;
    assert_eq!(
        stack.get("/api/me", &user.access).await.status(),
        StatusCode::OK
    );

    proxy.cut();

    let refused = stack.get("/api/books", &user.access).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    let ready = stack.client.get(stack.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["checks"]["redis"],
        "down"
    );
    assert_eq!(
        stack
            .client
            .get(stack.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.restore();

    let mut recovered = false;
    for _ in 0..50 {
        if stack.get("/api/books", &user.access).await.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "protected routes came back without a restart");
    assert_eq!(
        stack
            .client
            .get(stack.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_throttling_holds_across_gateways() {
    // The gateways' per-address limit of the auth routes is counted in Redis.
    let mut stack = spawn_stack_with(
        Backend::Postgres,
        StackOptions {
            rate_limit: 4,
            ..StackOptions::default()
        },
    )
    .await;
    let second = stack.start_gateway().await;
    let login_on = |base: &str| {
        stack
            .client
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"username": "nobody", "password": "guess"}))
            .send()
    };
    for base in [&stack.gateway, &second, &stack.gateway, &second] {
        assert_eq!(
            login_on(base).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for base in [&stack.gateway, &second] {
        problem(login_on(base).await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    }
}

#[tokio::test]
async fn password_guessing_is_stopped_per_account_whichever_gateway_is_asked() {
    let mut stack = spawn_stack(Backend::Postgres).await;
    let second = stack.start_gateway().await;
    stack.user("guarded").await;
    let login_on = |base: &str, password: &str| {
        stack
            .client
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"username": "guarded", "password": password}))
            .send()
    };
    // auth-service allows 10 failures per account and address (login_throttle.*).
    for attempt in 0..10 {
        let base = if attempt % 2 == 0 {
            &stack.gateway
        } else {
            &second
        };
        let guess = login_on(base, &format!("guess {attempt}")).await.unwrap();
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    // Then even the right password waits, on either gateway.
    for base in [&stack.gateway, &second] {
        let right = login_on(base, crate::helpers::PASSWORD).await.unwrap();
        assert!(right.headers().contains_key("retry-after"));
        problem(right, StatusCode::TOO_MANY_REQUESTS).await;
    }
}
