use reqwest::{Method, StatusCode};
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
async fn without_redis_protected_routes_and_readiness_answer_503_and_recover_by_themselves() {
    let proxy = ChaosProxy::start(test_support::redis_addr()).await;
    let options = StackOptions {
        gateway_redis_url: Some(format!("redis://{}", proxy.addr())),
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
