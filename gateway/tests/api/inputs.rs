//! The input suite: malformed, oversized, mistyped and hostile inputs on every kind of field,
//! each answered with a 4xx problem body, with nothing stored and nothing lost; and hostile but
//! valid text (SQL, markup, any script) stored verbatim and read back unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::Backend;

use crate::helpers::{PASSWORD, Stack, StackOptions, problem, spawn_stack_with};

/// One hostile request: where, what body with which content type, and the status it must get.
struct Hostile {
    name: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    /// Replaces the caller's bearer token.
    authorization: Option<&'static str>,
}

fn hostile(
    name: impl Into<String>,
    method: Method,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
) -> Hostile {
    Hostile {
        name: name.into(),
        method,
        path: path.into(),
        content_type,
        body: body.into(),
        status,
        authorization: None,
    }
}

const JSON: Option<&str> = Some("application/json");
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;

fn json_body(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// A book body with `field` set to `value`.
fn book_with(field: &str, value: Value) -> Vec<u8> {
    let mut book = json!({"title": "T", "author": "A"});
    book[field] = value;
    json_body(&book)
}

/// Requests with hostile bodies, each refused for the caller with a valid token.
fn body_cases(book_path: &str) -> Vec<Hostile> {
    let long = "x".repeat(10_000);
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let nested_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let post = |name: &str, content_type, body: Vec<u8>, status| {
        hostile(name, Method::POST, "/api/books", content_type, body, status)
    };
    let mut cases = vec![
        // Not JSON, or not only JSON.
        post(
            "truncated JSON",
            JSON,
            b"{\"title\": ".to_vec(),
            BAD_REQUEST,
        ),
        post("empty body", JSON, Vec::new(), BAD_REQUEST),
        post(
            "trailing comma",
            JSON,
            b"{\"title\":\"T\",\"author\":\"A\",}".to_vec(),
            BAD_REQUEST,
        ),
        post(
            "trailing garbage",
            JSON,
            b"{\"title\":\"T\",\"author\":\"A\"} x".to_vec(),
            BAD_REQUEST,
        ),
        post(
            "byte order mark",
            JSON,
            b"\xef\xbb\xbf{\"title\":\"T\",\"author\":\"A\"}".to_vec(),
            BAD_REQUEST,
        ),
        post(
            "invalid UTF-8 in a string",
            JSON,
            b"{\"title\":\"\xff\xfe\",\"author\":\"A\"}".to_vec(),
            BAD_REQUEST,
        ),
        post(
            "lone surrogate escape",
            JSON,
            br#"{"title":"\ud800","author":"A"}"#.to_vec(),
            BAD_REQUEST,
        ),
        post(
            "NaN",
            JSON,
            b"{\"title\":\"T\",\"author\":\"A\",\"price_cents\":NaN}".to_vec(),
            BAD_REQUEST,
        ),
        post(
            "leading zero",
            JSON,
            b"{\"title\":\"T\",\"author\":\"A\",\"price_cents\":01}".to_vec(),
            BAD_REQUEST,
        ),
        post("20,000 nested arrays", JSON, nested.into_bytes(), INVALID),
        post(
            "5,000 nested objects in a field",
            JSON,
            format!("{{\"title\":\"T\",\"author\":\"A\",\"publisher\":{nested_object}}}")
                .into_bytes(),
            INVALID,
        ),
        // JSON of the wrong shape.
        post("null", JSON, b"null".to_vec(), INVALID),
        post("an array", JSON, b"[]".to_vec(), INVALID),
        post("a string", JSON, b"\"Dune\"".to_vec(), INVALID),
        post("empty object", JSON, b"{}".to_vec(), INVALID),
        post(
            "fields by position",
            JSON,
            br#"["T", "A", null, null, 0, null]"#.to_vec(),
            INVALID,
        ),
        post(
            "duplicate key",
            JSON,
            b"{\"title\":\"T\",\"title\":\"U\",\"author\":\"A\"}".to_vec(),
            INVALID,
        ),
        post(
            "unknown field",
            JSON,
            book_with("owner_id", json!("someone")),
            INVALID,
        ),
        post(
            "id chosen by the client",
            JSON,
            book_with("id", json!("0190a0a0-0000-7000-8000-000000000000")),
            INVALID,
        ),
        post(
            "version chosen by the client",
            JSON,
            book_with("version", json!(9)),
            INVALID,
        ),
        post("title null", JSON, book_with("title", Value::Null), INVALID),
        post(
            "title a number",
            JSON,
            book_with("title", json!(5)),
            INVALID,
        ),
        post(
            "title an object",
            JSON,
            book_with("title", json!({"$ne": ""})),
            INVALID,
        ),
        post("title empty", JSON, book_with("title", json!("")), INVALID),
        post(
            "title blank",
            JSON,
            book_with("title", json!("   ")),
            INVALID,
        ),
        post(
            "title 10,000 characters",
            JSON,
            book_with("title", json!(long)),
            INVALID,
        ),
        post(
            "title with NUL",
            JSON,
            book_with("title", json!("a\u{0}b")),
            INVALID,
        ),
        post(
            "title with a newline",
            JSON,
            book_with("title", json!("a\nb")),
            INVALID,
        ),
        post(
            "title with an escape sequence",
            JSON,
            book_with("title", json!("\u{1b}[31mred")),
            INVALID,
        ),
        post(
            "author 10,000 characters",
            JSON,
            book_with("author", json!(long)),
            INVALID,
        ),
        post(
            "publisher with a bell",
            JSON,
            book_with("publisher", json!("\u{7}")),
            INVALID,
        ),
        post(
            "isbn letters",
            JSON,
            book_with("isbn", json!("ISBN-DROP-TABLE")),
            INVALID,
        ),
        post(
            "isbn bad check digit",
            JSON,
            book_with("isbn", json!("9780441172710")),
            INVALID,
        ),
        post(
            "negative price",
            JSON,
            book_with("price_cents", json!(-1)),
            INVALID,
        ),
        post(
            "huge price",
            JSON,
            book_with("price_cents", json!(1e20)),
            INVALID,
        ),
        post(
            "price beyond i64",
            JSON,
            book_with("price_cents", json!(u64::MAX)),
            INVALID,
        ),
        post(
            "fractional price",
            JSON,
            book_with("price_cents", json!(9.99)),
            INVALID,
        ),
        post(
            "price as a string",
            JSON,
            book_with("price_cents", json!("999")),
            INVALID,
        ),
        post(
            "year 99999",
            JSON,
            book_with("published_year", json!(99_999)),
            INVALID,
        ),
        post(
            "year beyond i32",
            JSON,
            book_with("published_year", json!(i64::MAX)),
            INVALID,
        ),
        // Not JSON at all.
        post(
            "text/plain",
            Some("text/plain"),
            b"Dune".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        post(
            "form",
            Some("application/x-www-form-urlencoded"),
            b"title=T&author=A".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        post(
            "multipart",
            Some("multipart/form-data; boundary=x"),
            b"--x--".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        post(
            "XML",
            Some("application/xml"),
            b"<book/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        post(
            "no content type",
            None,
            book_with("title", json!("T")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        post(
            "over the body limit",
            JSON,
            book_with("title", json!("x".repeat(70_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    // The same mistakes in a replacement and a partial change leave the book as it was.
    for (name, method, body, status) in [
        (
            "PUT without author",
            Method::PUT,
            json_body(&json!({"title": "T"})),
            INVALID,
        ),
        (
            "PUT unknown field",
            Method::PUT,
            book_with("owner_id", json!("x")),
            INVALID,
        ),
        ("PUT malformed", Method::PUT, b"{".to_vec(), BAD_REQUEST),
        (
            "PATCH title null",
            Method::PATCH,
            json_body(&json!({"title": null})),
            INVALID,
        ),
        (
            "PATCH empty title",
            Method::PATCH,
            json_body(&json!({"title": ""})),
            INVALID,
        ),
        (
            "PATCH owner",
            Method::PATCH,
            json_body(&json!({"owner_id": "x"})),
            INVALID,
        ),
        (
            "PATCH version",
            Method::PATCH,
            json_body(&json!({"version": 1})),
            INVALID,
        ),
        (
            "PATCH negative price",
            Method::PATCH,
            json_body(&json!({"price_cents": -5})),
            INVALID,
        ),
        ("PATCH as an array", Method::PATCH, b"[]".to_vec(), INVALID),
        (
            "PATCH fields by position",
            Method::PATCH,
            br#"["T", null, null, null, null, null]"#.to_vec(),
            INVALID,
        ),
    ] {
        cases.push(hostile(name, method, book_path, JSON, body, status));
    }
    cases
}

/// Requests whose path or query is at fault.
fn address_cases(book_path: &str) -> Vec<Hostile> {
    let get = |name: &str, path: String, status| {
        hostile(name, Method::GET, path, None, Vec::new(), status)
    };
    let long = "x".repeat(10_000);
    vec![
        get(
            "book id not a UUID",
            "/api/books/not-a-uuid".into(),
            NOT_FOUND,
        ),
        get(
            "book id a SQL string",
            "/api/books/1%27%20OR%20%271%27%3D%271".into(),
            NOT_FOUND,
        ),
        get("book id with NUL", "/api/books/%00".into(), NOT_FOUND),
        get(
            "book id too long",
            format!("/api/books/{}", "a".repeat(5_000)),
            NOT_FOUND,
        ),
        get(
            "nil UUID",
            "/api/books/00000000-0000-0000-0000-000000000000".into(),
            NOT_FOUND,
        ),
        get(
            "book path traversal",
            "/api/books/..%2F..%2Fadmin%2Fusers".into(),
            NOT_FOUND,
        ),
        get(
            "trailing path segment",
            format!("{book_path}/extra"),
            NOT_FOUND,
        ),
        get("limit zero", "/api/books?limit=0".into(), INVALID),
        get("limit negative", "/api/books?limit=-1".into(), INVALID),
        get(
            "limit huge",
            "/api/books?limit=99999999999999999999".into(),
            INVALID,
        ),
        get("limit not a number", "/api/books?limit=ten".into(), INVALID),
        get(
            "unknown query parameter",
            "/api/books?owner_id=x".into(),
            INVALID,
        ),
        get("cursor garbage", "/api/books?cursor=bogus".into(), INVALID),
        get(
            "cursor base64 of garbage",
            "/api/books?cursor=Z2FyYmFnZQ".into(),
            INVALID,
        ),
        get(
            "cursor 10,000 characters",
            format!("/api/books?cursor={long}"),
            INVALID,
        ),
        get(
            "search 10,000 characters",
            format!("/api/books?q={long}"),
            INVALID,
        ),
        get(
            "search with a control character",
            "/api/books?q=a%07b".into(),
            INVALID,
        ),
        get("all not a boolean", "/api/books?all=maybe".into(), INVALID),
        get(
            "sessions flag not a boolean",
            "/api/auth/sessions?include_revoked=2".into(),
            INVALID,
        ),
        hostile(
            "revoke session not a UUID",
            Method::DELETE,
            "/api/auth/sessions/not-a-uuid",
            None,
            Vec::new(),
            NOT_FOUND,
        ),
        hostile(
            "revoke unknown session",
            Method::DELETE,
            format!("/api/auth/sessions/{}", uuid::Uuid::now_v7()),
            None,
            Vec::new(),
            NOT_FOUND,
        ),
        hostile(
            "delete book not a UUID",
            Method::DELETE,
            "/api/books/%27%3B--",
            None,
            Vec::new(),
            NOT_FOUND,
        ),
    ]
}

/// Registrations that must create nobody.
fn registration_cases() -> Vec<Hostile> {
    let register = |name: &str, body: Value, status| {
        hostile(
            name,
            Method::POST,
            "/api/auth/register",
            JSON,
            json_body(&body),
            status,
        )
    };
    let with = |field: &str, value: Value| {
        let mut body =
            json!({"username": "fresh", "email": "fresh@example.org", "password": PASSWORD});
        body[field] = value;
        body
    };
    let conflict = StatusCode::CONFLICT;
    vec![
        register(
            "roles chosen by the client",
            with("roles", json!(["admin"])),
            INVALID,
        ),
        register(
            "is_active chosen by the client",
            with("is_active", json!(true)),
            INVALID,
        ),
        register("username empty", with("username", json!("")), INVALID),
        register(
            "username 10,000 characters",
            with("username", json!("u".repeat(10_000))),
            INVALID,
        ),
        register(
            "username with a newline",
            with("username", json!("fresh\nadmin")),
            INVALID,
        ),
        register(
            "username with NUL",
            with("username", json!("fresh\u{0}")),
            INVALID,
        ),
        register(
            "username with a zero-width space",
            with("username", json!("pi\u{200b}lot")),
            INVALID,
        ),
        register(
            "username with a right-to-left override",
            with("username", json!("pi\u{202e}tol")),
            INVALID,
        ),
        register(
            "username SQL",
            with("username", json!("x' OR '1'='1")),
            INVALID,
        ),
        register("username a number", with("username", json!(42)), INVALID),
        register("email empty", with("email", json!("")), INVALID),
        register(
            "email without @",
            with("email", json!("fresh.example.org")),
            INVALID,
        ),
        register(
            "email 10,000 characters",
            with(
                "email",
                json!(format!("{}@example.org", "e".repeat(10_000))),
            ),
            INVALID,
        ),
        register(
            "email with CRLF",
            with("email", json!("fresh@example.org\r\nBcc: all@example.org")),
            INVALID,
        ),
        register("password empty", with("password", json!("")), INVALID),
        register(
            "password 10,000 characters",
            with("password", json!("p".repeat(10_000))),
            INVALID,
        ),
        register(
            "password with NUL",
            with("password", json!("correct horse\u{0}battery")),
            INVALID,
        ),
        register("password null", with("password", Value::Null), INVALID),
        hostile(
            "fields by position",
            Method::POST,
            "/api/auth/register",
            JSON,
            br#"["fresh", "fresh@example.org", "correct horse battery"]"#.to_vec(),
            INVALID,
        ),
        // Names that look like the existing "Zoë" (see the test): every one is the same account.
        register(
            "same name, other case",
            with("username", json!("ZOË")),
            conflict,
        ),
        register(
            "same name, decomposed",
            with("username", json!("Zoe\u{308}")),
            conflict,
        ),
        register(
            "same name, full width",
            with("username", json!("Ｚｏë")),
            conflict,
        ),
        register(
            "same name, padded",
            with("username", json!("  Zoë  ")),
            conflict,
        ),
        register(
            "same email, other case",
            json!({"username": "other", "email": "ZOË@EXAMPLE.ORG", "password": PASSWORD}),
            conflict,
        ),
    ]
}

/// Logins that must neither log anyone in nor count as a server failure.
fn login_cases() -> Vec<Hostile> {
    let login = |name: &str, body: Value, status| {
        hostile(
            name,
            Method::POST,
            "/api/auth/login",
            JSON,
            json_body(&body),
            status,
        )
    };
    vec![
        login(
            "username null",
            json!({"username": null, "password": PASSWORD}),
            INVALID,
        ),
        login(
            "username empty",
            json!({"username": "", "password": PASSWORD}),
            INVALID,
        ),
        login(
            "username 10,000 characters",
            json!({"username": "u".repeat(10_000), "password": PASSWORD}),
            INVALID,
        ),
        login(
            "username with CRLF",
            json!({"username": "zoë\r\n", "password": PASSWORD}),
            INVALID,
        ),
        login(
            "password 10,000 characters",
            json!({"username": "zoë", "password": "p".repeat(10_000)}),
            INVALID,
        ),
        login(
            "password as an object",
            json!({"username": "zoë", "password": {"$gt": ""}}),
            INVALID,
        ),
        login(
            "username SQL",
            json!({"username": "zoë' --", "password": "x"}),
            StatusCode::UNAUTHORIZED,
        ),
        login("fields by position", json!(["zoë", PASSWORD]), INVALID),
        login(
            "unknown field",
            json!({"username": "zoë", "password": PASSWORD, "admin": true}),
            INVALID,
        ),
        hostile(
            "form without password",
            Method::POST,
            "/api/auth/login",
            Some("application/x-www-form-urlencoded"),
            b"username=zo%C3%AB".to_vec(),
            INVALID,
        ),
        Hostile {
            authorization: Some("Basic %%%not-base64%%%"),
            ..hostile(
                "Basic not base64",
                Method::POST,
                "/api/auth/login",
                None,
                Vec::new(),
                BAD_REQUEST,
            )
        },
        hostile(
            "refresh token empty",
            Method::POST,
            "/api/auth/refresh",
            JSON,
            json_body(&json!({"refresh_token": ""})),
            StatusCode::UNAUTHORIZED,
        ),
        hostile(
            "refresh token a number",
            Method::POST,
            "/api/auth/refresh",
            JSON,
            json_body(&json!({"refresh_token": 7})),
            INVALID,
        ),
    ]
}

async fn send(stack: &Stack, token: &str, case: &Hostile) -> reqwest::Response {
    let mut request = stack
        .client
        .request(case.method.clone(), stack.url(&case.path))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let anonymous = case.path.starts_with("/api/auth/register")
        || case.path.starts_with("/api/auth/login")
        || case.path.starts_with("/api/auth/refresh");
    if let Some(authorization) = case.authorization {
        request = request.header("authorization", authorization);
    } else if !anonymous {
        request = request.bearer_auth(token);
    }
    if case.method == Method::PUT || case.method == Method::PATCH {
        request = request.header("if-match", "*");
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn hostile_inputs_get_a_clear_4xx_and_change_nothing() {
    let stack = spawn_stack_with(
        Backend::Postgres,
        StackOptions {
            body_limit: 64 * 1024,
            ..StackOptions::default()
        },
    )
    .await;
    let zoe = stack.user("Zoë").await;
    let admin = stack.admin("keeper").await;
    let book = stack.create_book(&zoe.access, "Kept").await;
    let book_path = format!("/api/books/{}", book["id"].as_str().unwrap());
    let users_before: Value = stack
        .get("/api/admin/users?limit=100", &admin.access)
        .await
        .json()
        .await
        .unwrap();

    let cases = [
        body_cases(&book_path),
        address_cases(&book_path),
        registration_cases(),
        login_cases(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    assert!(cases.len() >= 100, "{}", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let response = send(&stack, &zoe.access, case).await;
        if response.status() != case.status {
            wrong.push(format!(
                "{}: {} instead of {}",
                case.name,
                response.status(),
                case.status
            ));
            continue;
        }
        let body = problem(response, case.status).await;
        assert!(
            !body["detail"].as_str().unwrap().is_empty(),
            "{}",
            case.name
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Nothing stored, nothing lost.
    let books: Value = stack
        .get("/api/books?limit=100", &zoe.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(books["books"].as_array().unwrap().len(), 1, "{books}");
    let kept: Value = stack
        .get(&book_path, &zoe.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept, book);
    let users_after: Value = stack
        .get("/api/admin/users?limit=100", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users_after, users_before);
    stack.logged_in("Zoë").await;
}

#[tokio::test]
async fn hostile_but_valid_text_is_stored_verbatim() {
    let stack = spawn_stack_with(Backend::Postgres, StackOptions::default()).await;
    let reader = stack.user("verbatim").await;
    let texts = [
        "Robert'); DROP TABLE books;--",
        "\" OR 1=1 --",
        "%' OR '1'='1",
        "<script>alert(1)</script>",
        "{{7*7}} ${jndi:ldap://127.0.0.1/x}",
        "📚 Ünïcödé 中文 עברית العربية",
        "\u{202e}txt.exe",
        "back\\slash and \"quotes\"",
        "Straße",
    ];
    let mut ids = Vec::new();
    for text in texts {
        let created = stack
            .send_json(
                Method::POST,
                "/api/books",
                Some(&reader.access),
                &json!({"title": text, "author": text, "publisher": text}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED, "{text}");
        let created: Value = created.json().await.unwrap();
        let path = format!("/api/books/{}", created["id"].as_str().unwrap());
        let read: Value = stack.get(&path, &reader.access).await.json().await.unwrap();
        for field in ["title", "author", "publisher"] {
            assert_eq!(read[field], text, "{field}");
        }
        ids.push(created["id"].clone());
    }

    // Searching for them matches literally: each finds exactly its own book.
    for (text, id) in texts.iter().zip(&ids) {
        let query = serde_urlencoded::to_string([("q", *text)]).unwrap();
        let found: Value = stack
            .get(&format!("/api/books?{query}"), &reader.access)
            .await
            .json()
            .await
            .unwrap();
        let found: Vec<&Value> = found["books"]
            .as_array()
            .unwrap()
            .iter()
            .map(|book| &book["id"])
            .collect();
        assert_eq!(found, vec![id], "{text}");
    }
    let wildcard: Value = stack
        .get("/api/books?q=%25", &reader.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        wildcard["books"].as_array().unwrap().len(),
        1,
        "only the book with a literal %"
    );

    // The same text as a username is refused or kept as typed, never altered into another.
    let response = stack
        .request(Method::GET, "/api/me", Some(&reader.access))
        .send()
        .await
        .unwrap();
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "verbatim");
    let registered = stack
        .send_json(
            Method::POST,
            "/api/auth/register",
            None,
            &json!({"username": "Straße", "email": "strasse@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["user"]["username"], "Straße");
    let lookalike = stack
        .send_json(
            Method::POST,
            "/api/auth/register",
            None,
            &json!({"username": "STRASSE", "email": "strasse2@example.org", "password": PASSWORD}),
        )
        .await;
    problem(lookalike, StatusCode::CONFLICT).await;
}
