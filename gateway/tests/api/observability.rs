use reqwest::StatusCode;
use serde_json::Value;
use test_support::Backend;

use crate::helpers::{StackOptions, eventually, spawn_stack, spawn_stack_with};

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
async fn every_service_shows_its_metrics_on_its_management_port_and_not_on_the_public_one() {
    let stack = spawn_stack(Backend::Sqlite).await;
    let user = stack.user("counted").await;
    stack.logged_in("counted").await;
    let book = stack.create_book(&user.access, "Counted").await;
    let path = format!("/api/books/{}", book["id"].as_str().unwrap());
    stack.get(&path, &user.access).await;
    stack.get("/api/books", "garbage").await;

    let public = stack
        .client
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "metrics left the public port");

    let gateway = stack.metrics(&stack.gateway_management).await;
    let auth = stack.metrics(&stack.auth_management).await;
    let books = stack.metrics(&stack.books_management).await;
    let expectations: [(&str, &str); 13] = [
        (
            &gateway,
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/api/books/{id}"} 1"#,
        ),
        (
            &gateway,
            r#"http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="201",http_route="/api/auth/register"} 1"#,
        ),
        (
            &gateway,
            r#"bookstore_token_rejections_total{reason="malformed"} 1"#,
        ),
        (
            &gateway,
            r#"rpc_client_call_duration_seconds_count{rpc_grpc_status_code="0",rpc_method="GetBook",rpc_service="bookstore.books.v1.BooksService",rpc_system="grpc"} 1"#,
        ),
        (&gateway, "bookstore_jwks_age_seconds "),
        (&gateway, "bookstore_revocation_replica_lag_seconds "),
        (
            &auth,
            r#"rpc_server_call_duration_seconds_count{rpc_grpc_status_code="0",rpc_method="Login",rpc_service="bookstore.auth.v1.AuthService",rpc_system="grpc"} 1"#,
        ),
        (&auth, r#"bookstore_logins_total{outcome="success"} 1"#),
        (&auth, "bookstore_password_hash_duration_seconds_count 2"),
        (
            &auth,
            r#"db_client_connection_count{db_client_connection_pool_name="auth",db_client_connection_state="idle"}"#,
        ),
        (&auth, "bookstore_revocation_outbox_backlog 0"),
        (
            &books,
            r#"rpc_server_call_duration_seconds_count{rpc_grpc_status_code="0",rpc_method="GetBook",rpc_service="bookstore.books.v1.BooksService",rpc_system="grpc"} 1"#,
        ),
        (
            &books,
            r#"db_client_connection_wait_time_seconds_count{db_client_connection_pool_name="books"}"#,
        ),
    ];
    for (text, series) in expectations {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    for base in [
        &stack.gateway_management,
        &stack.auth_management,
        &stack.books_management,
    ] {
        for probe in ["/healthz", "/readyz"] {
            // Readiness is re-checked every second or so, as the gRPC health is.
            eventually(&format!("{base}{probe} answers 200"), || async {
                let answer = stack
                    .client
                    .get(format!("{base}{probe}"))
                    .send()
                    .await
                    .unwrap();
                answer.status() == 200
            })
            .await;
        }
    }
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
