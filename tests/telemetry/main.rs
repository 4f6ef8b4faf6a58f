//! What operators see of the stack, checked with the real tools: the three services as separate
//! processes scraped by a real Prometheus, whose query API must find every service's series and
//! run every query of the dashboard and the alert rules; and their traces, exported over
//! OTLP/HTTP to a receiver this suite serves, one trace per request across the three services,
//! from the separate binaries and from the one-process launcher alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../launcher/launched.rs"]
mod launched;
mod otlp;
mod prometheus;
mod services;
mod traces;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// Registers `username` and logs in: the access token.
fn register_and_login(client: &Client, api: &str, username: &str) -> String {
    let registered = client
        .post(format!("{api}/api/auth/register"))
        .json(&json!({"username": username, "email": format!("{username}@example.org"), "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login = client
        .post(format!("{api}/api/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let body: Value = login.json().unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}
