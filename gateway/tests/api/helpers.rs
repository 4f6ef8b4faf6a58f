//! `spawn_stack`: auth-service, books-service and the gateway on port 0, each service with a
//! fresh database on the test's backend, all sharing one Redis namespace; and a reqwest client
//! with one helper per route.

use std::net::SocketAddr;

use auth_service::accounts::Registration;
use auth_service::keys::{KeyKind, SigningKey, write_new_key};
use observability::ManagementSettings;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use revocation::CheckSettings;
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use test_support::{Backend, ChaosProxy, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";

/// The detail of the gateway's own refusal of a revoked token (an upstream refusal reads
/// differently).
pub const REVOKED: &str = "the access token has been revoked";

/// What a test may change about the stack.
pub struct StackOptions {
    /// Redis as the gateway alone sees it (a chaos proxy, say).
    pub gateway_redis_url: Option<String>,
    /// Every service reaches Redis through [`Stack::redis_proxy`].
    pub proxy_redis: bool,
    /// books-service reaches its database through [`Stack::books_db_proxy`] (PostgreSQL only).
    pub proxy_books_database: bool,
    /// How often auth-service retries publishing revocations and checks the store's seed.
    pub revocation_retry_ms: u64,
    /// How the gateway and books-service check revocation, and the replica's staleness budget.
    pub revocation: CheckSettings,
    pub rate_limit: u32,
    pub body_limit: usize,
    pub cors_origins: Vec<String>,
    /// auth-service's bcrypt cost: 4 keeps tests fast; races need longer hashes.
    pub bcrypt_cost: u32,
    /// How long access tokens live.
    pub access_ttl_secs: u64,
    /// The console's `public_origin`.
    pub console_origin: String,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            gateway_redis_url: None,
            proxy_redis: false,
            proxy_books_database: false,
            revocation_retry_ms: 100,
            revocation: CheckSettings::default(),
            rate_limit: 1_000,
            body_limit: 1024 * 1024,
            cors_origins: Vec::new(),
            bcrypt_cost: 4,
            access_ttl_secs: 900,
            console_origin: String::new(),
        }
    }
}

pub struct Stack {
    pub client: reqwest::Client,
    pub gateway: String,
    /// The management listeners (`/metrics`, `/healthz`, `/readyz`) of the first gateway,
    /// auth-service and books-service, as base URLs.
    pub gateway_management: String,
    pub auth_management: String,
    pub books_management: String,
    pub auth_settings: auth_service::Settings,
    pub gateway_settings: gateway::Settings,
    /// auth-service's signing key, for tests that forge tokens with it.
    pub signing_key: SigningKey,
    /// books-service's gRPC address, for tests that call it directly.
    pub books_url: String,
    pub redis_proxy: Option<ChaosProxy>,
    pub books_db_proxy: Option<ChaosProxy>,
    auth: Option<Running>,
    auth_addr: SocketAddr,
    shutdown: CancellationToken,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    _keys: TempDir,
    _databases: (TestDatabase, TestDatabase),
}

pub async fn spawn_stack(backend: Backend) -> Stack {
    spawn_stack_with(backend, StackOptions::default()).await
}

pub async fn spawn_stack_with(backend: Backend, options: StackOptions) -> Stack {
    test_support::init_tracing();
    let auth_db = TestDatabase::create(backend);
    let books_db = TestDatabase::create(backend);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing.pem");
    let signing_key = write_new_key(&key_file, KeyKind::Ed25519).unwrap();
    let prefix = test_support::unique_redis_prefix();
    let redis_proxy = if options.proxy_redis {
        Some(ChaosProxy::start(test_support::redis_addr()).await)
    } else {
        None
    };
    let redis = match &redis_proxy {
        Some(proxy) => format!("redis://{}", proxy.addr()),
        None => test_support::redis_url(),
    };
    let books_db_proxy = if options.proxy_books_database {
        Some(ChaosProxy::start(books_db.server_addr()).await)
    } else {
        None
    };
    let books_db_url = match &books_db_proxy {
        Some(proxy) => books_db.url_via(proxy.addr()),
        None => books_db.url().to_owned(),
    };
    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();

    let mut auth_settings =
        auth_service::Settings::for_tests(auth_db.url(), &redis, &prefix, key_file);
    auth_settings.revocation.retry_interval_ms = options.revocation_retry_ms;
    auth_settings.passwords.bcrypt_cost = options.bcrypt_cost;
    auth_settings.tokens.access_ttl_secs = options.access_ttl_secs;
    let auth = Running::auth(auth_settings.clone(), &shutdown).await;
    let auth_url = format!("http://{}", auth.addr);

    let mut books_settings = books_service::Settings {
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        management: ManagementSettings::on_port(0),
        shutdown_grace_secs: 1,
        ..books_service::Settings::default()
    };
    books_settings.database.url = Some(SecretString::from(books_db_url));
    books_settings.redis.url = Some(SecretString::from(redis.clone()));
    books_settings.redis.key_prefix = prefix.clone();
    books_settings.redis.timeout_ms = 2_000;
    books_settings.revocation = options.revocation.clone();
    books_settings.auth.url = auth_url.clone();
    let books = books_service::Application::build(books_settings)
        .await
        .unwrap();
    let books_url = format!("http://{}", books.local_addr());
    let books_management = format!("http://{}", books.management_addr());
    servers.push(tokio::spawn(books.run_until_stopped(shutdown.clone())));

    let mut gateway_settings = gateway::Settings {
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        management: ManagementSettings::on_port(0),
        workers: 2,
        shutdown_grace_secs: 1,
        body_limit_bytes: options.body_limit,
        ..gateway::Settings::default()
    };
    gateway_settings.redis.url = Some(SecretString::from(
        options.gateway_redis_url.unwrap_or(redis),
    ));
    gateway_settings.redis.key_prefix = prefix;
    gateway_settings.redis.timeout_ms = 1_000;
    gateway_settings.revocation = options.revocation;
    gateway_settings.auth.url = auth_url;
    gateway_settings.auth.jwks_min_refetch_ms = 100;
    gateway_settings.books.url = books_url.clone();
    gateway_settings.auth_rate_limit.max_requests = options.rate_limit;
    gateway_settings.cors.allowed_origins = options.cors_origins;
    gateway_settings.console.public_origin = options.console_origin;

    let mut stack = Stack {
        client: reqwest::Client::new(),
        gateway: String::new(),
        gateway_management: String::new(),
        auth_management: format!("http://{}", auth.management),
        books_management,
        auth_settings,
        gateway_settings,
        signing_key,
        books_url,
        redis_proxy,
        books_db_proxy,
        auth_addr: auth.addr,
        auth: Some(auth),
        shutdown,
        servers,
        _keys: keys,
        _databases: (auth_db, books_db),
    };
    let (gateway, management) = stack
        .spawn_gateway_with_management(stack.gateway_settings.clone())
        .await;
    wait_until_ready(&stack.client, &gateway).await;
    (stack.gateway, stack.gateway_management) = (gateway, management);
    stack
}

/// Waits until the gateway at `base` reports ready, as a load balancer would.
pub async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the gateway at {base} never became ready");
}

/// Waits until `condition` holds, for up to 10 s. A revocation reaches every replica within
/// milliseconds of the revoking call, not at the instant it returns: checks that follow one
/// wait for it.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A session as the tests use it.
#[derive(Debug, Clone)]
pub struct Login {
    pub access: String,
    pub refresh: String,
}

impl Login {
    fn from_json(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// A service running on the test's runtime until its token is cancelled.
struct Running {
    addr: SocketAddr,
    management: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn auth(settings: auth_service::Settings, stack: &CancellationToken) -> Self {
        let auth = auth_service::Application::build(settings).await.unwrap();
        let shutdown = stack.child_token();
        Self {
            addr: auth.local_addr(),
            management: auth.management_addr(),
            server: tokio::spawn(auth.run_until_stopped(shutdown.clone())),
            shutdown,
        }
    }
}

impl Stack {
    /// Stops auth-service as SIGTERM would, and waits until it has.
    pub async fn stop_auth(&mut self) {
        let auth = self.auth.take().expect("auth-service is not running");
        auth.shutdown.cancel();
        auth.server.await.unwrap().unwrap();
    }

    /// Starts auth-service again, on the address it had.
    pub async fn start_auth(&mut self) {
        let settings = auth_service::Settings {
            listen_addr: self.auth_addr,
            ..self.auth_settings.clone()
        };
        self.auth = Some(Running::auth(settings, &self.shutdown).await);
    }

    /// Starts another gateway on the same services and Redis; returns its base URL once it
    /// reports ready.
    pub async fn start_gateway(&mut self) -> String {
        self.start_gateway_with(self.gateway_settings.clone()).await
    }

    /// Starts a gateway with `settings`; returns its base URL once it reports ready.
    pub async fn start_gateway_with(&mut self, settings: gateway::Settings) -> String {
        let url = self.spawn_gateway(settings).await;
        wait_until_ready(&self.client, &url).await;
        url
    }

    /// Starts a gateway with `settings` and returns its base URL without waiting for it to be
    /// ready.
    pub async fn spawn_gateway(&mut self, settings: gateway::Settings) -> String {
        self.spawn_gateway_with_management(settings).await.0
    }

    /// [`spawn_gateway`](Self::spawn_gateway), with the base URL of its management listener.
    async fn spawn_gateway_with_management(
        &mut self,
        settings: gateway::Settings,
    ) -> (String, String) {
        let gateway = gateway::Application::build(settings).await.unwrap();
        let url = format!("http://{}", gateway.local_addr());
        let management = format!("http://{}", gateway.management_addr());
        self.servers.push(tokio::spawn(
            gateway.run_until_stopped(self.shutdown.clone()),
        ));
        (url, management)
    }

    /// The Prometheus text a management listener at `base` serves.
    pub async fn metrics(&self, base: &str) -> String {
        self.client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// A request to the first gateway, with `token` as Bearer when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// The key set the gateway publishes at /.well-known/jwks.json.
    pub async fn jwks(&self) -> Value {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Whether the gateway at `base` itself refuses `token` as revoked (on `GET /api/books`).
    pub async fn denies_as_revoked(&self, base: &str, token: &str) -> bool {
        let response = self
            .client
            .get(format!("{base}/api/books"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::UNAUTHORIZED {
            return false;
        }
        problem(response, StatusCode::UNAUTHORIZED).await["detail"] == REVOKED
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        self.request(method, path, token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers `username` with [`PASSWORD`]; returns its first session.
    pub async fn user(&self, username: &str) -> Login {
        let response = self
            .send_json(
                Method::POST,
                "/api/auth/register",
                None,
                &json!({"username": username, "email": format!("{username}@example.org"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        Login::from_json(&response.json().await.unwrap())
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.send_json(
            Method::POST,
            "/api/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn logged_in(&self, username: &str) -> Login {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        Login::from_json(&response.json().await.unwrap())
    }

    /// Creates an admin the way `auth-service create-admin` does, and logs it in.
    pub async fn admin(&self, username: &str) -> Login {
        let registration = Registration {
            username: username.to_owned(),
            email: format!("{username}@example.org"),
            password: PASSWORD.to_owned(),
        };
        auth_service::startup::create_admin(&self.auth_settings, registration)
            .await
            .unwrap();
        self.logged_in(username).await
    }

    pub async fn create_book(&self, token: &str, title: &str) -> Value {
        let response = self
            .send_json(
                Method::POST,
                "/api/books",
                Some(token),
                &json!({"title": title, "author": "Author"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts an RFC 9457 answer with `status`, and returns its body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "the body quotes the request id"
    );
    body
}
