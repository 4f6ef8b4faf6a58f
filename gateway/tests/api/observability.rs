use reqwest::StatusCode;
use serde_json::Value;
use test_support::Backend;

use crate::helpers::{StackOptions, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let stack = spawn_stack(Backend::Sqlite).await;

    let given = stack
        .client
        .get(stack.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    let generated = stack
        .client
        .get(stack.url("/api/books"))
        .send()
        .await
        .unwrap();
    let forged = stack
        .client
        .get(stack.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();

    assert_eq!(given.headers()["x-request-id"], "trace-42");
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(
        generated.json::<Value>().await.unwrap()["request_id"],
        id.as_str()
    );
    assert_ne!(forged.headers()["x-request-id"], "a b\tc");
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let stack = spawn_stack(Backend::Sqlite).await;

    // books-service reports SERVING within a probe interval of loading the keys.
    let mut body = Value::Null;
    for _ in 0..50 {
        let ready = stack.client.get(stack.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        body = ready.json().await.unwrap();
        if body["checks"]
            .as_object()
            .unwrap()
            .values()
            .all(|state| state == "up")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    assert_eq!(body["status"], "ready");
    for dependency in ["keys", "redis", "auth_service", "books_service"] {
        assert_eq!(body["checks"][dependency], "up", "{dependency}: {body}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_auth_failures_by_reason() {
    let stack = spawn_stack(Backend::Sqlite).await;
    let user = stack.user("counted").await;
    let book = stack.create_book(&user.access, "Counted").await;
    stack
        .get(
            &format!("/api/books/{}", book["id"].as_str().unwrap()),
            &user.access,
        )
        .await;
    stack.get("/api/books", "garbage").await;

    let text = stack
        .client
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/books/{id}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{method="POST",route="/api/auth/register",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"auth_failures_total{reason="malformed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("jwks_age_seconds"), "{text}");
}

#[tokio::test]
async fn the_jwks_is_republished_from_the_gateway() {
    let stack = spawn_stack(Backend::Sqlite).await;

    let jwks = stack.jwks().await;

    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("OKP"), Some("EdDSA"), Some("sig"))
    );
    assert!(key.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_configured_origins() {
    let closed = spawn_stack(Backend::Sqlite).await;
    let open = spawn_stack_with(
        Backend::Sqlite,
        StackOptions {
            cors_origins: vec!["https://app.example.org".to_owned()],
            ..StackOptions::default()
        },
    )
    .await;
    let ask = |base: String| {
        let client = reqwest::Client::new();
        async move {
            client
                .request(reqwest::Method::OPTIONS, format!("{base}/api/books"))
                .header("origin", "https://app.example.org")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap()
        }
    };

    let refused = ask(closed.gateway.clone()).await;
    let allowed = ask(open.gateway.clone()).await;

    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
}
