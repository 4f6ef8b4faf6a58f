use reqwest::StatusCode;
use test_support::Backend;

use crate::helpers::spawn_stack;

/// Every route of the README's route table.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/logout-all"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("post", "/api/auth/sessions/revoke"),
    ("get", "/api/me"),
    ("put", "/api/me/password"),
    ("get", "/api/books"),
    ("post", "/api/books"),
    ("get", "/api/books/{id}"),
    ("put", "/api/books/{id}"),
    ("patch", "/api/books/{id}"),
    ("delete", "/api/books/{id}"),
    ("get", "/api/admin/users"),
    ("patch", "/api/admin/users/{id}"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/docs"),
];

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_lists_every_route() {
    let stack = spawn_stack(Backend::Sqlite).await;

    let text = stack
        .client
        .get(stack.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (method, path) in ROUTES {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    for status in ["201", "400", "401", "413", "415", "422", "503"] {
        assert!(
            document["paths"]["/api/books"]["post"]["responses"][status].is_object(),
            "POST /api/books {status}"
        );
    }
    assert!(document["paths"]["/api/me"]["get"]["responses"]["401"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn the_interactive_docs_are_served_from_the_process() {
    let stack = spawn_stack(Backend::Sqlite).await;

    let page = stack.client.get(stack.url("/docs/")).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
}
