//! The one-process launcher as a newcomer runs it: the `bookstore` binary (what `cargo run`
//! starts) as a child process with a temporary data folder, driven over HTTP through the
//! quickstart, stopped with SIGTERM and started again on the same folder; its first admin
//! created from the command line; its logs written to a file; and its start on the default
//! ports right after a load left sockets in TIME_WAIT on them; its services calling each other
//! in memory while their gRPC ports still answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

mod in_process;
mod launched;

use launched::{ANY_FREE_PORTS, Launched, bookstore};

/// Starts the binary on free ports and waits for the banner that names the API's URL.
fn start(data_dir: &Path) -> Launched {
    start_with(data_dir, &ANY_FREE_PORTS)
}

fn start_with(data_dir: &Path, args: &[&str]) -> Launched {
    let mut command = bookstore(data_dir);
    command.args(args);
    Launched::spawn(command)
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
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_quickstart_works_and_its_data_and_key_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // First run: the quickstart.
    let first = start(data.path());
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
    let second = start(data.path());
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

/// `bookstore create-admin`, the password on standard input; panics unless it succeeds.
fn create_admin(data_dir: &Path, username: &str) {
    let mut child = bookstore(data_dir)
        .args(["create-admin", "--username", username, "--email"])
        .arg(format!("{username}@example.org"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "create-admin {username} exited with {status}"
    );
}

async fn usernames_listed_by(client: &reqwest::Client, api: &str, username: &str) -> Vec<String> {
    let response = client
        .post(format!("{api}/api/auth/login"))
        .basic_auth(username, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{username} cannot log in"
    );
    let token = response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users: Value = client
        .get(format!("{api}/api/admin/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_admin_works_on_a_fresh_data_folder_and_beside_a_running_stack() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    create_admin(data.path(), "root");
    let running = start(data.path());
    wait_until_ready(&client, &running.api).await;
    assert_eq!(
        usernames_listed_by(&client, &running.api, "root").await,
        ["root"]
    );

    create_admin(data.path(), "deputy");
    assert_eq!(
        usernames_listed_by(&client, &running.api, "deputy").await,
        ["root", "deputy"]
    );
    running.stop();
}

/// Leaves a client socket in TIME_WAIT on local port `port`, as a load test's connections do:
/// bound to it, connected to a throw-away listener, closed by the client first.
async fn leave_time_wait_on(port: u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = client_socket_on(port).await;
    let client = socket
        .connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    drop(client);
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(server);
    for _ in 0..100 {
        if in_time_wait(port) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no socket entered TIME_WAIT on port {port}");
}

/// A client socket bound to `port`, without SO_REUSEADDR, as a load client's are. Sockets that
/// an earlier run left on the port (for a minute) must expire first.
async fn client_socket_on(port: u16) -> tokio::net::TcpSocket {
    for _ in 0..140 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        match socket.bind(([127, 0, 0, 1], port).into()) {
            Ok(()) => return socket,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("cannot bind a client socket to port {port}: {error}"),
        }
    }
    panic!("port {port} stayed in use for 70 s");
}

/// Whether a TCP socket on local port `port` is in TIME_WAIT (state 06 in /proc/net/tcp).
fn in_time_wait(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "06"
    })
}

/// The default ports, as `bookstore --help` states them.
const DEFAULT_PORTS: [u16; 6] = [8080, 8081, 8082, 9464, 9465, 9466];

#[tokio::test]
async fn the_launcher_starts_with_its_default_ports_in_time_wait() {
    for port in DEFAULT_PORTS {
        leave_time_wait_on(port).await;
    }
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // Nothing accepts on the ports: the launcher listens on free ones and says so.
    let launched = start_with(data.path(), &[]);

    wait_until_ready(&client, &launched.api).await;
    launched.stop();
}

#[test]
fn no_default_port_lies_where_the_kernel_places_client_sockets() {
    // A load test's connections get their local ports from this range, and hold them in
    // TIME_WAIT for a minute after they close: no default port may be among them.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    for port in DEFAULT_PORTS {
        assert!(
            !(bounds[0]..=bounds[1]).contains(&port),
            "{port} is in {range}"
        );
    }
    let help = bookstore(Path::new("unused"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for port in DEFAULT_PORTS {
        assert!(help.contains(&format!("[default: {port}]")), "{help}");
    }
}

#[tokio::test]
async fn a_port_something_listens_on_is_named_with_the_setting_that_changes_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();

    let output = bookstore(data.path())
        .args(&ANY_FREE_PORTS[..4])
        .args(["--books-port", &port])
        .args(&ANY_FREE_PORTS[6..])
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("books-service: cannot listen on 127.0.0.1:{port}"))
            && stderr.contains("--books-port or BOOKSTORE_BOOKS_PORT"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("stack.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = bookstore(&data.path().join("data"))
        .args(ANY_FREE_PORTS)
        .stdout(log)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let api = loop {
        let written = std::fs::read_to_string(&log_path).unwrap();
        if let Some(url) = written
            .lines()
            .find_map(|line| line.trim().strip_prefix("API "))
        {
            break url.trim().to_owned();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "bookstore exited: {written}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = reqwest::Client::new();
    wait_until_ready(&client, &api).await;
    let stop = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    assert!(child.wait().unwrap().success());

    let written = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        written.contains(" INFO "),
        "no log line was written: {written}"
    );
    assert!(
        !written.contains('\x1b'),
        "an escape code reached the file: {written:?}"
    );
}
