//! The web console: on the wire (`http`), and in a real browser (`browser` drives Debian's
//! Chromium over WebDriver; `journeys` are what people do with it).

mod browser;
mod http;
mod journeys;

/// The titles of `username`'s books, as the JSON API lists them: what the console stored.
async fn titles(stack: &crate::helpers::Stack, username: &str) -> Vec<String> {
    let token = stack.logged_in(username).await.access;
    let body: serde_json::Value = stack
        .get("/api/books?limit=100", &token)
        .await
        .json()
        .await
        .unwrap();
    body["books"]
        .as_array()
        .unwrap()
        .iter()
        .map(|book| book["title"].as_str().unwrap().to_owned())
        .collect()
}
