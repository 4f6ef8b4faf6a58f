//! Inside the one process the services call each other through memory, not over loopback
//! TCP, while their gRPC ports still answer other callers: the same servers, counted by the
//! same metrics, drained alike on a stop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::auth::v1::LoginRequest;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::books::v1::ListBooksRequest;
use proto::books::v1::books_service_client::BooksServiceClient;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use crate::launched::{ANY_FREE_PORTS, Launched, bookstore};
use crate::{PASSWORD, login, wait_until_ready};

/// Concurrent requests of each kind.
const CALLS: usize = 16;

fn start_with_env(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Launched {
    let mut command = bookstore(data_dir);
    command
        .args(ANY_FREE_PORTS)
        // Every registration and login of these tests comes from one address.
        .env("GATEWAY__AUTH_RATE_LIMIT__MAX_REQUESTS", "1000")
        .envs(env.iter().copied());
    Launched::spawn(command)
}

/// The gRPC address the banner lists for `service` (`auth` or `books`).
fn grpc_addr(launched: &Launched, service: &str) -> SocketAddr {
    let label = format!("{service} gRPC");
    launched
        .banner
        .iter()
        .find_map(|line| line.trim().strip_prefix(label.as_str()))
        .unwrap_or_else(|| panic!("no {label} in {:?}", launched.banner))
        .trim()
        .parse()
        .unwrap()
}

/// The `/metrics` URL the banner lists for `service` (`gateway`, `auth-service`, …).
fn metrics_url(launched: &Launched, service: &str) -> String {
    let suffix = format!("/metrics ({service})");
    launched
        .banner
        .iter()
        .find(|line| line.trim_end().ends_with(&suffix))
        .and_then(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with("http://"))
        })
        .unwrap_or_else(|| panic!("no metrics URL for {service} in {:?}", launched.banner))
        .to_owned()
}

/// The sum of the samples of `metric` that carry `label`, as `url` exposes them.
async fn metric(client: &reqwest::Client, url: &str, metric: &str, label: &str) -> f64 {
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| {
            (line.starts_with(&format!("{metric}{{")) && line.contains(label))
                || line.starts_with(&format!("{metric} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The states (hex, as /proc/net/tcp writes them: 01 established, 0A listening, 06 TIME_WAIT…)
/// of the TCP sockets at either end of which is `addr`, an IPv4 address.
fn tcp_states_at(addr: SocketAddr) -> Vec<String> {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4");
    };
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 3 && (fields[1] == wanted || fields[2] == wanted))
                .then(|| fields[3].to_owned())
        })
        .collect()
}

async fn register(client: &reqwest::Client, api: &str) {
    let registered = client
        .post(format!("{api}/api/auth/register"))
        .json(&json!({"username": "ada", "email": "ada@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
}

async fn grpc_login(auth: SocketAddr) -> String {
    let mut client = AuthServiceClient::connect(format!("http://{auth}"))
        .await
        .unwrap();
    let answer = client
        .login(LoginRequest {
            username: "ada".to_owned(),
            password: PASSWORD.to_owned(),
            client: None,
        })
        .await
        .unwrap()
        .into_inner();
    answer.tokens.unwrap().access_token
}

#[tokio::test]
async fn the_services_call_each_other_in_memory_while_their_grpc_ports_still_answer() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let launched = start_with_env(data.path(), &[]);
    let api = launched.api.clone();
    let (auth, books) = (grpc_addr(&launched, "auth"), grpc_addr(&launched, "books"));
    wait_until_ready(&client, &api).await;
    register(&client, &api).await;
    let token = login(&client, &api).await;

    // Calls to both services at once, each also authenticated with keys books-service
    // fetched from auth-service.
    let mut calls = JoinSet::new();
    for n in 0..CALLS {
        let (client, api, token) = (client.clone(), api.clone(), token.clone());
        calls.spawn(async move {
            let created = client
                .post(format!("{api}/api/books"))
                .bearer_auth(&token)
                .json(&json!({"title": format!("Book {n}"), "author": "Ada"}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), StatusCode::CREATED);
            let me = client
                .get(format!("{api}/api/me"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), StatusCode::OK);
        });
    }
    calls.join_all().await;

    for addr in [auth, books] {
        assert_eq!(
            tcp_states_at(addr),
            ["0A"],
            "only the listener at {addr}: no service called another over TCP"
        );
    }

    // The gRPC ports answer, authenticated as over HTTP: a login on auth's port, its token
    // used on books' port and through the gateway.
    let access = grpc_login(auth).await;
    let mut books_client = BooksServiceClient::connect(format!("http://{books}"))
        .await
        .unwrap();
    let mut listing = tonic::Request::new(ListBooksRequest {
        page_size: 100,
        ..ListBooksRequest::default()
    });
    listing
        .metadata_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    let listed = books_client.list_books(listing).await.unwrap().into_inner();
    assert_eq!(listed.books.len(), CALLS);
    assert!(
        tcp_states_at(books).contains(&"01".to_owned()),
        "a connection over TCP shows in /proc/net/tcp"
    );
    let me = client
        .get(format!("{api}/api/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // Both paths are counted, each call once on each side.
    let server = "rpc_server_call_duration_seconds_count";
    let client_calls = "rpc_client_call_duration_seconds_count";
    let (gateway_metrics, auth_metrics, books_metrics) = (
        metrics_url(&launched, "gateway"),
        metrics_url(&launched, "auth-service"),
        metrics_url(&launched, "books-service"),
    );
    let calls = (CALLS + 1) as f64;
    let create_book = r#"rpc_method="CreateBook""#;
    let get_user = r#"rpc_method="GetUser""#;
    let login_method = r#"rpc_method="Login""#;
    assert_eq!(
        metric(&client, &gateway_metrics, client_calls, create_book).await,
        CALLS as f64
    );
    assert_eq!(
        metric(&client, &books_metrics, server, create_book).await,
        CALLS as f64
    );
    assert_eq!(
        metric(&client, &gateway_metrics, client_calls, get_user).await,
        calls
    );
    assert_eq!(
        metric(&client, &auth_metrics, server, get_user).await,
        calls
    );
    assert_eq!(
        metric(&client, &gateway_metrics, client_calls, login_method).await,
        1.0
    );
    assert_eq!(
        metric(&client, &auth_metrics, server, login_method).await,
        2.0,
        "the gateway's login and the one on the gRPC port"
    );
    assert_eq!(
        metric(&client, &books_metrics, server, r#"rpc_method="ListBooks""#).await,
        1.0
    );
    assert!(
        metric(
            &client,
            &books_metrics,
            client_calls,
            r#"rpc_method="GetJwks""#
        )
        .await
            >= 1.0,
        "books-service's key fetches are counted"
    );
    launched.stop();
}

#[tokio::test]
async fn a_stop_lets_the_calls_in_flight_on_both_paths_finish() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // One hashing thread: the logins below wait in turn in auth-service's hashing queue,
    // where the stop finds them.
    let launched = start_with_env(data.path(), &[("AUTH__PASSWORDS__HASHING_THREADS", "1")]);
    let api = launched.api.clone();
    let auth = grpc_addr(&launched, "auth");
    let auth_metrics = metrics_url(&launched, "auth-service");
    wait_until_ready(&client, &api).await;
    register(&client, &api).await;

    let mut logins = JoinSet::new();
    for _ in 0..2 {
        let (client, api) = (client.clone(), api.clone());
        logins.spawn(async move { login(&client, &api).await });
        logins.spawn(grpc_login(auth));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(
        &client,
        &auth_metrics,
        "bookstore_password_hash_queue_depth",
        "",
    )
    .await
        < 4.0
    {
        assert!(
            Instant::now() < deadline,
            "the logins never all reached auth-service"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopped = tokio::task::spawn_blocking(move || launched.stop());
    for token in logins.join_all().await {
        assert!(!token.is_empty());
    }
    stopped.await.unwrap();
}
