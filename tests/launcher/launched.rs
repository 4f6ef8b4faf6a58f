//! The `bookstore` binary run as a child process, as `cargo run --release -- ARGS` runs it:
//! shared by the launcher's suite and the telemetry suite.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `bookstore`, the base URL of its API and the banner that named it.
pub struct Launched {
    child: Child,
    pub api: String,
    /// The lines of the start-up banner, each address on its own line.
    pub banner: Vec<String>,
}

/// The launcher with its data folder.
pub fn bookstore(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
    command.arg("--data-dir").arg(data_dir);
    command
}

pub const ANY_FREE_PORTS: [&str; 12] = [
    "--http-port",
    "0",
    "--auth-port",
    "0",
    "--books-port",
    "0",
    "--gateway-management-port",
    "0",
    "--auth-management-port",
    "0",
    "--books-management-port",
    "0",
];

impl Launched {
    /// Starts `command` (a [`bookstore`]) and waits for the whole banner, which names the
    /// API's URL and every other address.
    pub fn spawn(mut command: Command) -> Self {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the bookstore binary");
        // Owned by `Self` at once, so that `Drop` reaps it whatever happens next.
        let mut launched = Self {
            child,
            api: String::new(),
            banner: Vec::new(),
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
            let last = line.contains("Press Ctrl-C");
            launched.banner.push(line);
            if last {
                break;
            }
        }
        launched.api = launched
            .banner
            .iter()
            .find_map(|line| line.trim().strip_prefix("API "))
            .expect("the banner names no API")
            .trim()
            .to_owned();
        launched
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
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
