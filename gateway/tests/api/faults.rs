//! The fault suite: the stack on PostgreSQL under a steady load of book reads and writes from
//! the test itself while a dependency fails and comes back: Redis, auth-service, books-service's
//! PostgreSQL, and the gateway process itself (SIGTERM). Each test prints what the load saw
//! before, during and after the fault, and asserts what must hold: only the documented answers,
//! recovery without a restart, and no acknowledged write lost.
//!
//! Ignored by a plain `cargo test`: `scripts/test` runs these one at a time with their output
//! shown (`cargo test -p gateway --test api -- --ignored --nocapture --test-threads 1`), so
//! that the figures appear and the loads do not compete.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use revocation::{CheckMode, CheckSettings};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use test_support::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Stack, StackOptions, problem, spawn_stack_with};

const PHASES: [&str; 3] = ["before", "during", "after"];
const WORKERS: usize = 4;

/// What the load saw in one phase.
#[derive(Debug, Default, Clone)]
struct Tally {
    sent: u64,
    ok: u64,
    unavailable: u64,
    /// Any other status or transport error, by name.
    other: BTreeMap<String, u64>,
    /// Books whose creation was acknowledged with 201.
    created: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.unavailable += other.unavailable;
        for (name, count) in other.other {
            *self.other.entry(name).or_default() += count;
        }
        self.created.extend(other.created);
    }

    fn others(&self) -> u64 {
        self.other.values().sum()
    }
}

/// Clients alternating `GET /api/books` and `POST /api/books` against `base` until finished,
/// counting outcomes in the current phase.
struct Load {
    phase: Arc<AtomicUsize>,
    stop: CancellationToken,
    workers: Vec<JoinHandle<Vec<Tally>>>,
}

impl Load {
    fn start(base: &str, token: &str) -> Self {
        let phase = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let workers = (0..WORKERS)
            .map(|worker| {
                let (client, phase, stop) = (client.clone(), Arc::clone(&phase), stop.clone());
                let (base, token) = (base.to_owned(), token.to_owned());
                tokio::spawn(async move {
                    let mut tallies = vec![Tally::default(); PHASES.len()];
                    for n in 0_u64.. {
                        if stop.is_cancelled() {
                            break;
                        }
                        let writing = n % 2 == 1;
                        let request = if writing {
                            client.post(format!("{base}/api/books")).json(
                                &json!({"title": format!("Load {worker}-{n}"), "author": "Load"}),
                            )
                        } else {
                            client.get(format!("{base}/api/books?limit=5"))
                        };
                        let outcome = request.bearer_auth(&token).send().await;
                        let tally = &mut tallies[phase.load(Ordering::SeqCst)];
                        tally.sent += 1;
                        match outcome {
                            Ok(response) if response.status().is_success() => {
                                tally.ok += 1;
                                if writing {
                                    let book: Value = response.json().await.unwrap();
                                    tally.created.push(book["id"].as_str().unwrap().to_owned());
                                }
                            }
                            Ok(response)
                                if response.status() == StatusCode::SERVICE_UNAVAILABLE =>
                            {
                                tally.unavailable += 1;
                            }
                            Ok(response) => {
                                *tally
                                    .other
                                    .entry(response.status().to_string())
                                    .or_default() += 1;
                            }
                            Err(error) => {
                                let kind = if error.is_connect() {
                                    "connect error"
                                } else {
                                    "transport error"
                                };
                                *tally.other.entry(kind.to_owned()).or_default() += 1;
                                // As a client would, rather than spin on a refused connection.
                                hold(Duration::from_millis(10)).await;
                            }
                        }
                    }
                    tallies
                })
            })
            .collect();
        Self {
            phase,
            stop,
            workers,
        }
    }

    fn next_phase(&self) {
        self.phase.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops the clients and reports each phase, printing them under `title`.
    async fn finish(self, title: &str) -> Vec<Tally> {
        self.stop.cancel();
        let mut phases = vec![Tally::default(); PHASES.len()];
        for worker in self.workers {
            for (phase, tally) in phases.iter_mut().zip(worker.await.unwrap()) {
                phase.merge(tally);
            }
        }
        println!("{title}");
        for (name, tally) in PHASES.iter().zip(&phases) {
            println!(
                "  {name:<7} sent={} 2xx={} 503={} other={:?}",
                tally.sent, tally.ok, tally.unavailable, tally.other
            );
        }
        phases
    }
}

/// Runs for `duration`, long enough for the load to send requests in the current phase.
async fn hold(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Waits until `path` answers 200 again, as a client retrying would.
async fn until_ok(stack: &Stack, path: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if stack.get(path, token).await.status() == StatusCode::OK {
            return;
        }
        hold(Duration::from_millis(100)).await;
    }
    panic!("{path} did not recover within 15 s");
}

/// Every book whose creation was acknowledged is there.
async fn assert_nothing_acknowledged_was_lost(stack: &Stack, token: &str, phases: &[Tally]) {
    let mut checked = 0;
    for id in phases.iter().flat_map(|tally| &tally.created) {
        let found = stack.get(&format!("/api/books/{id}"), token).await;
        assert_eq!(
            found.status(),
            StatusCode::OK,
            "acknowledged book {id} is gone"
        );
        checked += 1;
    }
    println!("  all {checked} acknowledged books are there");
}

/// What a dependency outage must look like to the load: served before, refused with 503 (and
/// nothing else) during, served again after, and no acknowledged write lost.
async fn assert_failed_closed_and_recovered(stack: &Stack, token: &str, phases: &[Tally]) {
    for tally in phases {
        assert_eq!(tally.others(), 0, "only 2xx and 503: {tally:?}");
    }
    assert!(phases[0].ok > 0 && phases[2].ok > 0, "{phases:?}");
    assert!(phases[1].unavailable > 0, "{phases:?}");
    assert_nothing_acknowledged_was_lost(stack, token, phases).await;
}

async fn loaded_stack(options: StackOptions) -> (Stack, String) {
    let stack = spawn_stack_with(Backend::Postgres, options).await;
    let token = stack.user("steady").await.access;
    (stack, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test: run with --ignored --nocapture"]
async fn redis_stopped_and_restarted_empty_under_load_replica() {
    // A budget well within the outage, so that the replicas' fail-closed answer shows.
    redis_stopped_and_restarted_empty_under_load(
        CheckSettings {
            mode: CheckMode::Replica,
            staleness_budget_ms: 500,
        },
        "Redis stopped for 1.5 s and restarted empty, replicas with a 0.5 s budget:",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test: run with --ignored --nocapture"]
async fn redis_stopped_and_restarted_empty_under_load_per_request() {
    redis_stopped_and_restarted_empty_under_load(
        CheckSettings {
            mode: CheckMode::Redis,
            ..CheckSettings::default()
        },
        "Redis stopped for 1.5 s and restarted empty, checked per request:",
    )
    .await;
}

async fn redis_stopped_and_restarted_empty_under_load(revocation: CheckSettings, title: &str) {
    let (stack, token) = loaded_stack(StackOptions {
        proxy_redis: true,
        // auth-service notices the empty store only after this (1 s by default): long enough
        // to see what the verifiers do with an unseeded store meanwhile.
        revocation_retry_ms: 2_000,
        revocation,
        ..StackOptions::default()
    })
    .await;
    let redis = stack.redis_proxy.as_ref().unwrap();
    // A session ended before the restart must stay dead through it.
    let ended = stack.logged_in("steady").await.access;
    let logout = stack
        .request(reqwest::Method::POST, "/api/auth/logout", Some(&ended))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let load = Load::start(&stack.gateway, &token);
    hold(Duration::from_millis(500)).await;

    load.next_phase();
    redis.cut();
    // Redis here keeps nothing on disk: a restart loses every revocation with it.
    test_support::wipe_redis_namespace(&stack.gateway_settings.redis.key_prefix).await;
    hold(Duration::from_millis(1_500)).await;
    let refused = stack.get("/api/books", &token).await;
    let refused = problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("revocation"),
        "{refused}"
    );
    redis.restore();

    load.next_phase();
    // From the moment Redis answers again, empty, until auth-service has seeded it again, the
    // ended session is refused (503 while unseeded, then 401; a replica remembers it, 401
    // throughout): never served.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = stack.get("/api/books", &ended).await.status();
        assert_ne!(
            status,
            StatusCode::OK,
            "a revoked token passed after the restart"
        );
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store was never seeded again"
        );
        hold(Duration::from_millis(20)).await;
    }
    until_ok(&stack, "/api/books", &token).await;
    problem(
        stack.get("/api/books", &ended).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    hold(Duration::from_millis(500)).await;
    let phases = load.finish(title).await;

    assert_failed_closed_and_recovered(&stack, &token, &phases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test: run with --ignored --nocapture"]
async fn auth_service_stopped_and_restarted_under_load() {
    let (mut stack, token) = loaded_stack(StackOptions::default()).await;
    let load = Load::start(&stack.gateway, &token);
    hold(Duration::from_millis(500)).await;

    load.next_phase();
    stack.stop_auth().await;
    hold(Duration::from_millis(1_500)).await;
    // Books keep being served with the cached keys; logging in needs auth-service.
    let login = stack.login("steady", crate::helpers::PASSWORD).await;
    let login = problem(login, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        login["detail"].as_str().unwrap().contains("unavailable"),
        "{login}"
    );
    stack.start_auth().await;

    load.next_phase();
    let deadline = Instant::now() + Duration::from_secs(15);
    while stack
        .login("steady", crate::helpers::PASSWORD)
        .await
        .status()
        != StatusCode::OK
    {
        assert!(Instant::now() < deadline, "login did not come back");
        hold(Duration::from_millis(100)).await;
    }
    hold(Duration::from_millis(500)).await;
    let phases = load.finish("auth-service stopped for 1.5 s:").await;

    for tally in &phases {
        assert_eq!(
            (tally.unavailable, tally.others()),
            (0, 0),
            "book requests never noticed: {tally:?}"
        );
        assert!(tally.ok > 0, "{phases:?}");
    }
    assert_nothing_acknowledged_was_lost(&stack, &token, &phases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test: run with --ignored --nocapture"]
async fn postgres_connections_broken_under_load() {
    let (stack, token) = loaded_stack(StackOptions {
        proxy_books_database: true,
        ..StackOptions::default()
    })
    .await;
    let database = stack.books_db_proxy.as_ref().unwrap();
    let load = Load::start(&stack.gateway, &token);
    hold(Duration::from_millis(500)).await;

    load.next_phase();
    database.cut();
    let refused = stack.get("/api/books", &token).await;
    let refused = problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("unavailable"),
        "{refused}"
    );
    hold(Duration::from_millis(1_500)).await;
    database.restore();

    load.next_phase();
    until_ok(&stack, "/api/books", &token).await;
    hold(Duration::from_millis(500)).await;
    let phases = load
        .finish("books-service's PostgreSQL connections cut for 1.5 s:")
        .await;

    assert_failed_closed_and_recovered(&stack, &token, &phases).await;
}

/// The gateway binary, as production runs it, in front of the test's services.
struct GatewayProcess {
    child: std::process::Child,
    base: String,
}

impl GatewayProcess {
    const GRACE_SECS: u64 = 5;

    fn start(stack: &Stack) -> Self {
        let settings = &stack.gateway_settings;
        let redis = settings
            .redis
            .url
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env("GATEWAY__LISTEN_ADDR", "127.0.0.1:0")
            .env("GATEWAY__WORKERS", "2")
            .env("GATEWAY__SHUTDOWN_GRACE_SECS", Self::GRACE_SECS.to_string())
            .env("GATEWAY__REDIS__URL", redis)
            .env("GATEWAY__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
            .env("GATEWAY__AUTH__URL", &settings.auth.url)
            .env("GATEWAY__BOOKS__URL", &settings.books.url)
            .env("GATEWAY__TELEMETRY__LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Owned by `Self` at once, so that `Drop` reaps it whatever happens next.
        let mut process = Self {
            child,
            base: String::new(),
        };
        let stdout = BufReader::new(process.child.stdout.take().unwrap());
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        loop {
            let line = received.recv_timeout(Duration::from_secs(30)).unwrap();
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "gateway listening" {
                process.base = format!("http://{}", event["addr"].as_str().unwrap());
                return process;
            }
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test: run with --ignored --nocapture"]
async fn sigterm_lets_in_flight_requests_finish_and_exits_within_the_grace_period() {
    let (stack, token) = loaded_stack(StackOptions::default()).await;
    let mut gateway = GatewayProcess::start(&stack);
    crate::helpers::wait_until_ready(&stack.client, &gateway.base).await;
    let load = Load::start(&gateway.base, &token);
    hold(Duration::from_millis(500)).await;

    // A request in flight at SIGTERM: headers and half of the body sent before, the rest after.
    let body = json!({"title": "In flight", "author": "Patient"}).to_string();
    let (first, second) = body.split_at(body.len() / 2);
    let addr = gateway.base.trim_start_matches("http://").to_owned();
    let mut in_flight = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/books HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    hold(Duration::from_millis(200)).await;

    load.next_phase();
    let terminated = Instant::now();
    gateway.terminate();
    hold(Duration::from_millis(500)).await;
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(
        refused.is_err(),
        "new connections are refused after SIGTERM"
    );
    in_flight.write_all(second.as_bytes()).await.unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let exit = loop {
        if let Some(exit) = gateway.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            terminated.elapsed() < Duration::from_secs(GatewayProcess::GRACE_SECS + 2),
            "the gateway outlived its grace period"
        );
        hold(Duration::from_millis(50)).await;
    };
    let stopped_after = terminated.elapsed();
    load.next_phase();
    let phases = load.finish("gateway sent SIGTERM under load:").await;
    println!("  exited with {exit} {stopped_after:?} after SIGTERM");

    assert!(exit.success(), "{exit}");
    for tally in &phases {
        assert_eq!(tally.unavailable, 0, "{tally:?}");
        let answered_otherwise = tally
            .other
            .iter()
            .filter(|(name, _)| !name.ends_with("error"))
            .count();
        assert_eq!(answered_otherwise, 0, "every answer is a 2xx: {tally:?}");
    }
    assert!(phases[0].ok > 0, "{phases:?}");
    assert_nothing_acknowledged_was_lost(&stack, &token, &phases).await;
    let (_, in_flight_body) = answer.split_once("\r\n\r\n").unwrap();
    let book: Value = serde_json::from_str(in_flight_body).unwrap();
    let stored = stack
        .get(
            &format!("/api/books/{}", book["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(
        stored.status(),
        StatusCode::OK,
        "the in-flight book was stored"
    );
}
