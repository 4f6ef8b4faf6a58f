//! The console on the wire, without a browser: its headers, cookies, redirects, the CSRF
//! defence and the refresh of near-expiry tokens by concurrent requests.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;
use test_support::both_backends;
use tokio::task::JoinSet;

use super::titles;
use crate::helpers::{PASSWORD, Stack, StackOptions, eventually, spawn_stack, spawn_stack_with};

/// The policy every console answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A browser as far as the console can tell: a cookie jar, no redirects followed, and the
/// `Origin` a same-origin form post carries.
#[derive(Clone)]
pub struct Visitor {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Visitor {
    pub fn new(stack: &Stack) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: stack.gateway.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let cookie = value.to_str().unwrap();
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A form post as the console's own page sends it.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", self.base.clone())
            .header("sec-fetch-site", "same-origin")
            .form(fields);
        self.send(request).await
    }

    /// The anti-forgery token of the form on `path`.
    pub async fn csrf(&mut self, path: &str) -> String {
        self.get(path).await.csrf()
    }

    /// Registers `username` with [`PASSWORD`] through the console; signed in afterwards.
    pub async fn sign_up(&mut self, username: &str) {
        let csrf = self.csrf("/ui/register").await;
        let email = format!("{username}@example.org");
        let page = self
            .post(
                "/ui/register",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("email", &email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap())
    }

    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self.body.find(marker).expect("no form with a csrf field") + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

both_backends! {
    async fn a_browser_is_led_from_the_root_to_sign_in_and_back(backend) {
        let stack = spawn_stack(backend).await;
        let mut visitor = Visitor::new(&stack);

        let root = visitor.get("/").await;
        assert_eq!((root.status, root.header("location")), (StatusCode::SEE_OTHER, "/ui/books"));
        let books = visitor.get("/ui/books?q=dune").await;
        assert_eq!(books.status, StatusCode::SEE_OTHER);
        assert_eq!(books.header("location"), "/ui/sign-in?next=%2Fui%2Fbooks%3Fq%3Ddune");

        visitor.sign_up("reader").await;
        let csrf = visitor.csrf("/ui/sign-in").await;
        let signed_in = visitor
            .post("/ui/sign-in", &[("csrf", &csrf), ("username", "reader"), ("password", PASSWORD), ("next", "/ui/books?q=dune")])
            .await;
        assert_eq!(signed_in.header("location"), "/ui/books?q=dune");
        let csrf = visitor.csrf("/ui/sign-in").await;
        let elsewhere = visitor
            .post("/ui/sign-in", &[("csrf", &csrf), ("username", "reader"), ("password", PASSWORD), ("next", "https://evil.example/")])
            .await;
        assert_eq!(elsewhere.header("location"), "/ui/books", "no open redirect");
        assert_eq!(visitor.get("/ui/books").await.status, StatusCode::OK);
    }

    async fn every_console_answer_carries_the_security_headers(backend) {
        let stack = spawn_stack(backend).await;
        let mut visitor = Visitor::new(&stack);
        visitor.sign_up("careful").await;
        let csrf = visitor.csrf("/ui/books/new").await;
        visitor.post("/ui/books", &[("csrf", &csrf), ("title", "Dune"), ("author", "Frank Herbert")]).await;

        let pages = ["/", "/ui/sign-in", "/ui/register", "/ui/books", "/ui/books/new", "/ui/sessions",
            "/ui/password", "/ui/admin/users", "/ui/nowhere", "/ui/books/not-a-uuid", "/ui/static/console.css"];
        for path in pages {
            let page = visitor.get(path).await;
            assert_eq!(page.header("content-security-policy"), CSP, "{path}");
            assert!(!CSP.contains("unsafe-inline"));
            assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
            assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
            assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
            if path.ends_with(".css") {
                assert_eq!(page.header("content-type"), "text/css; charset=utf-8");
            } else if path == "/" {
                assert_eq!(page.header("cache-control"), "no-store");
            } else {
                assert_eq!(page.header("cache-control"), "no-store", "{path}");
                assert_eq!(page.header("content-type"), "text/html; charset=utf-8", "{path}");
            }
        }
        assert_eq!(visitor.get("/ui/admin/users").await.status, StatusCode::FORBIDDEN);
        assert_eq!(visitor.get("/ui/nowhere").await.status, StatusCode::NOT_FOUND);
    }

    async fn every_cookie_is_http_only_and_strict_and_secure_behind_https(backend) {
        let options = StackOptions { console_origin: "https://books.example.org".into(), ..StackOptions::default() };
        let stack = spawn_stack_with(backend, options).await;
        let mut visitor = Visitor::new(&stack);
        let register = visitor.get("/ui/register").await;
        let csrf = register.csrf();
        let request = visitor.http.post(stack.url("/ui/register"))
            .header("origin", "https://books.example.org")
            .form(&[("csrf", csrf.as_str()), ("username", "secure"), ("email", "s@example.org"), ("password", PASSWORD)]);
        let registered = visitor.send(request).await;

        assert_eq!(registered.status, StatusCode::SEE_OTHER, "{}", registered.body);
        let set: Vec<&str> = registered.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(set.len(), 3, "{set:?}");
        for cookie in set.iter().chain(register.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>().iter()) {
            assert!(cookie.starts_with("__Host-bookstore-"), "{cookie}");
            for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
                assert!(cookie.contains(attribute), "{attribute}: {cookie}");
            }
            assert!(!cookie.contains("Domain="), "{cookie}");
        }
    }

    async fn a_state_change_without_the_forms_token_or_from_another_site_changes_nothing(backend) {
        let stack = spawn_stack(backend).await;
        let mut visitor = Visitor::new(&stack);
        visitor.sign_up("victim").await;
        let csrf = visitor.csrf("/ui/books/new").await;
        let book = [("title", "Forged"), ("author", "Mallory")];

        let mut attempts = vec![
            ("no token", visitor.http.post(stack.url("/ui/books")).form(&book)),
            ("another token", visitor.http.post(stack.url("/ui/books")).form(&[("csrf", "0".repeat(64).as_str()), ("title", "Forged"), ("author", "Mallory")])),
        ];
        for (name, value) in [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site")] {
            let forged = visitor.http.post(stack.url("/ui/books")).header(name, value)
                .form(&[("csrf", csrf.as_str()), ("title", "Forged"), ("author", "Mallory")]);
            attempts.push((value, forged));
        }
        for (what, request) in attempts {
            let page = visitor.send(request).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}: {}", page.body);
            assert!(page.body.contains("Form expired"), "{what}");
        }
        // Nothing changes state over GET.
        for path in ["/ui/sign-out", "/ui/sessions/revoke-others"] {
            assert_eq!(visitor.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        assert!(titles(&stack, "victim").await.is_empty());
        assert_eq!(visitor.get("/ui/books").await.status, StatusCode::OK, "still signed in");
    }

    async fn concurrent_requests_near_expiry_refresh_without_tripping_reuse_detection(backend) {
        // Every access token is within the refresh margin from the start: each request refreshes.
        let options = StackOptions { access_ttl_secs: 61, ..StackOptions::default() };
        let stack = spawn_stack_with(backend, options).await;
        let mut visitor = Visitor::new(&stack);
        visitor.sign_up("tabs").await;
        let first_access = visitor.cookies["bookstore-access"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

        let mut tabs = JoinSet::new();
        for _ in 0..6 {
            let mut tab = visitor.clone();
            tabs.spawn(async move {
                let page = tab.get("/ui/books").await;
                (page.status, tab)
            });
        }
        let mut refreshed = Vec::new();
        while let Some(outcome) = tabs.join_next().await {
            let (status, tab) = outcome.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_ne!(tab.cookies["bookstore-access"], first_access, "each tab refreshed");
            refreshed.push(tab);
        }

        // Whichever pair a tab kept, the session lives on.
        for mut tab in refreshed {
            assert_eq!(tab.get("/ui/sessions").await.status, StatusCode::OK);
        }
        let sessions = stack.get("/api/auth/sessions?include_revoked=true", &stack.logged_in("tabs").await.access)
            .await.json::<serde_json::Value>().await.unwrap();
        let revoked: Vec<_> = sessions["sessions"].as_array().unwrap().iter()
            .filter(|s| s["revoked_reason"] == json!("refresh_token_reused")).collect();
        assert!(revoked.is_empty(), "{sessions}");
    }

    async fn signing_out_revokes_the_session_and_clears_the_cookies(backend) {
        let stack = spawn_stack(backend).await;
        let mut visitor = Visitor::new(&stack);
        visitor.sign_up("leaving").await;
        let copied = visitor.clone();

        let csrf = visitor.csrf("/ui/books").await;
        let out = visitor.post("/ui/sign-out", &[("csrf", &csrf)]).await;

        assert_eq!(out.header("location"), "/ui/sign-in?signed_out=true");
        assert!(visitor.cookies.keys().all(|name| name.ends_with("csrf")), "{:?}", visitor.cookies);
        // The old cookies, replayed, open nothing: the session ended in auth-service.
        let access = copied.cookies["bookstore-access"].clone();
        eventually("the signed-out session's token is refused", || async {
            stack.get("/api/me", &access).await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
        let mut replay = copied;
        let page = replay.get("/ui/books").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(page.header("location").starts_with("/ui/sign-in"));
        assert!(!replay.cookies.contains_key("bookstore-access"), "the dead session's cookies are removed");
        assert!(!replay.cookies.contains_key("bookstore-refresh"));
    }
}
