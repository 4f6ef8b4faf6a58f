use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backend, both_backends};

use crate::helpers::{PASSWORD, StackOptions, problem, spawn_stack_with};

both_backends! {
    async fn client_mistakes_get_the_documented_status_and_a_problem_body(backend) {
        let stack = spawn_stack_with(backend, StackOptions { body_limit: 4_096, ..StackOptions::default() }).await;
        let user = stack.user("mistaken").await;
        let token = Some(user.access.as_str());

        // 400: not JSON.
        let malformed = stack.request(Method::POST, "/api/books", token)
            .header("content-type", "application/json").body("{\"title\": ").send().await.unwrap();
        problem(malformed, StatusCode::BAD_REQUEST).await;

        // 401: no token, a broken token, the wrong scheme; each with the challenge.
        for request in [
            stack.request(Method::GET, "/api/books", None),
            stack.request(Method::GET, "/api/books", Some("not.a.token")),
            stack.request(Method::GET, "/api/books", None).header("authorization", "Basic dXNlcjpwYXNz"),
        ] {
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="bookstore", error="invalid_token""#);
            problem(response, StatusCode::UNAUTHORIZED).await;
        }
        // The token may come as x-access-token, and the scheme in any letter case.
        let alternate = stack.request(Method::GET, "/api/me", None).header("x-access-token", &user.access).send().await.unwrap();
        assert_eq!(alternate.status(), StatusCode::OK);
        let lower = stack.request(Method::GET, "/api/me", None).header("authorization", format!("bearer {}", user.access)).send().await.unwrap();
        assert_eq!(lower.status(), StatusCode::OK);

        // 401 for bad credentials: one answer, with a Basic challenge.
        let wrong = stack.login("mistaken", "wrong password").await;
        assert!(wrong.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let unknown = stack.login("nobody-at-all", PASSWORD).await;
        assert_eq!(wrong.headers()["www-authenticate"], unknown.headers()["www-authenticate"]);
        let (mut wrong, mut unknown) = (problem(wrong, StatusCode::UNAUTHORIZED).await, problem(unknown, StatusCode::UNAUTHORIZED).await);
        // The whole answer is the same, but for the request id.
        wrong["request_id"].take();
        unknown["request_id"].take();
        assert_eq!(wrong, unknown);

        // 403: an admin route for a plain user.
        problem(stack.get("/api/admin/users", &user.access).await, StatusCode::FORBIDDEN).await;

        // 404: unknown book, malformed id, unknown route.
        problem(stack.get(&format!("/api/books/{}", uuid::Uuid::now_v7()), &user.access).await, StatusCode::NOT_FOUND).await;
        problem(stack.get("/api/books/not-a-uuid", &user.access).await, StatusCode::NOT_FOUND).await;
        problem(stack.get("/api/nothing-here", &user.access).await, StatusCode::NOT_FOUND).await;

        // 405: a route that exists, with a method it does not serve, names the ones it does.
        let wrong_method = stack.request(Method::DELETE, "/api/books", token).send().await.unwrap();
        assert_eq!(wrong_method.headers()["allow"], "GET, POST");
        problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
        let wrong_method = stack.request(Method::POST, &format!("/api/books/{}", uuid::Uuid::now_v7()), token).send().await.unwrap();
        assert_eq!(wrong_method.headers()["allow"], "GET, PUT, PATCH, DELETE");
        problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;

        // 409: a taken username, in another letter case.
        let taken = stack.send_json(Method::POST, "/api/auth/register", None, &json!({
            "username": "MISTAKEN", "email": "other@example.org", "password": PASSWORD
        })).await;
        problem(taken, StatusCode::CONFLICT).await;

        // 412: a stale If-Match changes nothing.
        let book = stack.create_book(&user.access, "Versioned").await;
        let path = format!("/api/books/{}", book["id"].as_str().unwrap());
        let stale = stack.request(Method::PATCH, &path, token).header("if-match", "\"7\"").json(&json!({"title": "Lost"})).send().await.unwrap();
        problem(stale, StatusCode::PRECONDITION_FAILED).await;
        let stale_delete = stack.request(Method::DELETE, &path, token).header("if-match", "\"7\"").send().await.unwrap();
        problem(stale_delete, StatusCode::PRECONDITION_FAILED).await;
        let unchanged: Value = stack.get(&path, &user.access).await.json().await.unwrap();
        assert_eq!(unchanged["title"], "Versioned");

        // 413: over the body limit, for JSON and for raw login bodies.
        let huge = json!({"title": "x".repeat(5_000), "author": "A"});
        problem(stack.send_json(Method::POST, "/api/books", token, &huge).await, StatusCode::PAYLOAD_TOO_LARGE).await;
        let huge_login = stack.request(Method::POST, "/api/auth/login", None)
            .header("content-type", "application/json").body("x".repeat(5_000)).send().await.unwrap();
        problem(huge_login, StatusCode::PAYLOAD_TOO_LARGE).await;

        // 415: not JSON at all.
        let text = stack.request(Method::POST, "/api/books", token).header("content-type", "text/plain").body("Dune").send().await.unwrap();
        problem(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        let xml_login = stack.request(Method::POST, "/api/auth/login", None).header("content-type", "application/xml").body("<x/>").send().await.unwrap();
        problem(xml_login, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

        // 422: invalid fields, named; wrong types; unknown fields; out-of-range queries.
        let invalid = problem(stack.send_json(Method::POST, "/api/books", token, &json!({"title": "", "author": "A", "isbn": "123"})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(invalid["errors"]["title"].is_array() && invalid["errors"]["isbn"].is_array(), "{invalid}");
        problem(stack.send_json(Method::POST, "/api/books", token, &json!({"title": 5, "author": "A"})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        problem(stack.send_json(Method::POST, "/api/books", token, &json!({"title": "T", "author": "A", "owner_id": "me"})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let limit = problem(stack.get("/api/books?limit=0", &user.access).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(limit["errors"]["limit"].is_array(), "{limit}");
        problem(stack.get("/api/books?limit=abc", &user.access).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let cursor = problem(stack.get("/api/books?cursor=bogus", &user.access).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(cursor["errors"]["cursor"].is_array(), "{cursor}");
        let weak = problem(stack.send_json(Method::POST, "/api/auth/register", None, &json!({
            "username": "newcomer", "email": "newcomer@example.org", "password": "password"
        })).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(weak["errors"]["password"].is_array(), "{weak}");
    }
}

#[tokio::test]
async fn the_auth_routes_are_throttled_per_client_address() {
    let stack = spawn_stack_with(
        Backend::Sqlite,
        StackOptions {
            rate_limit: 3,
            ..StackOptions::default()
        },
    )
    .await;

    for _ in 0..3 {
        assert_eq!(
            stack.login("nobody", "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = stack.login("nobody", "wrong").await;

    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
}
