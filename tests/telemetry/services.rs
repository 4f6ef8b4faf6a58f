//! The three services as an operator runs them: each its own binary, in its own process, on
//! free ports, logging JSON, each on a database of its own (PostgreSQL or SQLite) and the test
//! machine's Redis under a prefix of their own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::{Backend, TestDatabase};

/// A running service and the addresses its first log lines named.
pub struct Service {
    pub name: &'static str,
    child: Child,
    pub addr: String,
    pub management: String,
}

/// The three services, started in the order they need each other.
pub struct Services {
    pub auth: Service,
    pub books: Service,
    pub gateway: Service,
    _data: tempfile::TempDir,
    _databases: [TestDatabase; 2],
}

impl Services {
    /// Starts the stack on `backend`; `extra` is added to every service's environment (the
    /// trace settings).
    pub fn start(backend: Backend, extra: &[(&str, String)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let key = data.path().join("signing.pem");
        let keygen = Command::new(binary("auth-service"))
            .arg("keygen")
            .arg("--out")
            .arg(&key)
            .output()
            .unwrap();
        assert!(keygen.status.success(), "keygen: {keygen:?}");
        let redis = test_support::redis_url();
        let prefix = test_support::unique_redis_prefix();
        let common = |service: &str| -> Vec<(String, String)> {
            let setting = |key: &str, value: String| (format!("{service}__{key}"), value);
            vec![
                setting("LISTEN_ADDR", "127.0.0.1:0".into()),
                setting("MANAGEMENT__LISTEN_ADDR", "127.0.0.1:0".into()),
                setting("TELEMETRY__LOG_FORMAT", "json".into()),
                setting("REDIS__URL", redis.clone()),
                setting("REDIS__KEY_PREFIX", prefix.clone()),
            ]
        };
        let databases = [TestDatabase::create(backend), TestDatabase::create(backend)];

        let mut auth_env = common("AUTH");
        auth_env.extend([
            ("AUTH__DATABASE__URL".into(), databases[0].url().to_owned()),
            (
                "AUTH__TOKENS__SIGNING_KEY_FILE".into(),
                key.display().to_string(),
            ),
            ("AUTH__PASSWORDS__BCRYPT_COST".into(), "4".into()),
        ]);
        let auth = Service::start("auth-service", &auth_env, extra);
        let auth_url = format!("http://{}", auth.addr);

        let mut books_env = common("BOOKS");
        books_env.extend([
            ("BOOKS__DATABASE__URL".into(), databases[1].url().to_owned()),
            ("BOOKS__AUTH__URL".into(), auth_url.clone()),
        ]);
        let books = Service::start("books-service", &books_env, extra);

        let mut gateway_env = common("GATEWAY");
        gateway_env.extend([
            ("GATEWAY__AUTH__URL".into(), auth_url),
            (
                "GATEWAY__BOOKS__URL".into(),
                format!("http://{}", books.addr),
            ),
        ]);
        let gateway = Service::start("gateway", &gateway_env, extra);

        let services = Self {
            auth,
            books,
            gateway,
            _data: data,
            _databases: databases,
        };
        services.wait_until_ready();
        services
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.gateway.addr)
    }

    pub fn all(&self) -> [&Service; 3] {
        [&self.gateway, &self.auth, &self.books]
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for service in self.all() {
            let url = format!("http://{}/readyz", service.management);
            while reqwest::blocking::get(&url)
                .ok()
                .map(|r| r.status().as_u16())
                != Some(200)
            {
                assert!(
                    Instant::now() < deadline,
                    "{} never became ready",
                    service.name
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Stops every service with SIGTERM (what flushes their spans) and waits for each to exit.
    pub fn stop(self) {
        let Self {
            auth,
            books,
            gateway,
            ..
        } = self;
        for service in [gateway, books, auth] {
            service.stop();
        }
    }
}

/// A binary of the workspace, built beside the one of this package (`cargo test --workspace`
/// builds every binary before it runs any test).
fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the services first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

impl Service {
    fn start(name: &'static str, env: &[(String, String)], extra: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary(name));
        command.arg("serve");
        // Nothing of the caller's environment may configure these services but what is set here.
        for (key, _) in std::env::vars() {
            if ["AUTH__", "BOOKS__", "GATEWAY__", "OTEL_", "RUST_LOG"]
                .iter()
                .any(|prefix| key.starts_with(prefix))
            {
                command.env_remove(key);
            }
        }
        command
            .envs(env.iter().map(|(key, value)| (key, value)))
            .envs(extra.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["message"]
                        .as_str()
                        .is_some_and(|m| m.ends_with(" listening"))
                {
                    let _ = sender.send((
                        entry["addr"].as_str().unwrap_or_default().to_owned(),
                        entry["management"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        });
        let Ok((addr, management)) = receiver.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("{name} did not say where it listens within 60 s");
        };
        Self {
            name,
            child,
            addr,
            management,
        }
    }

    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "{} exited with {exit}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not stop within 30 s of SIGTERM", self.name);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
