//! The one-process launcher as a newcomer runs it: the `bookstore` binary (what `cargo run`
//! starts) as a child process on free ports with a temporary data folder, driven over HTTP
//! through the quickstart, stopped with SIGTERM and started again on the same folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A running `bookstore` and the base URL of its API.
struct Launched {
    child: Child,
    api: String,
}

impl Launched {
    /// Starts the binary and waits for the banner that names the API's URL.
    fn start(data_dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-port", "0", "--auth-port", "0", "--books-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the bookstore binary");
        // Owned by `Self` at once, so that `Drop` reaps it whatever happens next.
        let mut launched = Self {
            child,
            api: String::new(),
        };
        let stdout = launched.child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        // Keeps reading until the process ends, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = received
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the banner never appeared");
            if let Some(url) = line.trim().strip_prefix("API ") {
                launched.api = url.trim().to_owned();
                return launched;
            }
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "bookstore exited with {exit}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bookstore did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until_ready(client: &reqwest::Client, api: &str) {
    for _ in 0..200 {
        let ready = client.get(format!("{api}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{api} never became ready");
}

async fn login(client: &reqwest::Client, api: &str) -> String {
    let response = client
        .post(format!("{api}/api/auth/login"))
        .basic_auth("ada", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_quickstart_works_and_its_data_and_key_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // First run: the quickstart.
    let first = Launched::start(data.path());
    wait_until_ready(&client, &first.api).await;
    let registered = client
        .post(format!("{}/api/auth/register", first.api))
        .json(&json!({"username": "ada", "email": "ada@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let token = login(&client, &first.api).await;
    let doomed = login(&client, &first.api).await;
    let created = client
        .post(format!("{}/api/books", first.api))
        .bearer_auth(&token)
        .json(&json!({"title": "Dune", "author": "Frank Herbert"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let logout = client
        .post(format!("{}/api/auth/logout", first.api))
        .bearer_auth(&doomed)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let key_before = std::fs::read(bookstore::signing_key_path(data.path())).unwrap();
    first.stop();

    // Second run on the same folder.
    let second = Launched::start(data.path());
    wait_until_ready(&client, &second.api).await;

    assert_eq!(
        std::fs::read(bookstore::signing_key_path(data.path())).unwrap(),
        key_before
    );
    let me = client
        .get(format!("{}/api/me", second.api))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "a token from before the restart still works"
    );
    let books: Value = client
        .get(format!("{}/api/books", second.api))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(books["books"][0]["title"], "Dune");
    let revoked = client
        .get(format!("{}/api/me", second.api))
        .bearer_auth(&doomed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoked.status(),
        StatusCode::UNAUTHORIZED,
        "a revocation survives the restart too"
    );
    second.stop();
}
