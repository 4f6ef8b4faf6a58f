//! `spawn_app`: auth-service on port 0 against a fresh database and a private Redis namespace,
//! with one helper per RPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use auth_service::accounts::Registration;
use auth_service::keys::{KeyKind, SigningKey, write_new_key};
use auth_service::{Application, Settings, startup};
use proto::auth::v1 as pb;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use revocation::RevocationCheck;
use tempfile::TempDir;
use test_support::{Backend, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub const PASSWORD: &str = "correct horse battery";

/// What a test may change about the service it starts.
pub struct TestOptions {
    pub refresh_grace_secs: u64,
    pub client_max_failures: u32,
    pub account_max_failures: u32,
    /// Redis as the service sees it (a chaos proxy, say); the tests' own checks always go
    /// to the real Redis.
    pub redis_url: Option<String>,
    pub key_kind: KeyKind,
    /// 4 keeps tests fast; races need a hash long enough for requests to overlap.
    pub bcrypt_cost: u32,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            refresh_grace_secs: 10,
            client_max_failures: 10,
            account_max_failures: 100,
            redis_url: None,
            key_kind: KeyKind::Ed25519,
            bcrypt_cost: 4,
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: AuthServiceClient<Channel>,
    pub settings: Settings,
    pub redis: redis::aio::MultiplexedConnection,
    keys_dir: TempDir,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the service must stop before its database goes.
    _db: TestDatabase,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, TestOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: TestOptions) -> TestApp {
    test_support::init_tracing();
    let db = TestDatabase::create(backend);
    let keys_dir = tempfile::tempdir().expect("no temporary directory");
    let key_file = keys_dir.path().join("signing.pem");
    write_new_key(&key_file, options.key_kind).expect("cannot write the signing key");

    let redis_url = options.redis_url.unwrap_or_else(test_support::redis_url);
    let prefix = test_support::unique_redis_prefix();
    let mut settings = Settings::for_tests(db.url(), &redis_url, &prefix, key_file);
    settings.tokens.refresh_grace_secs = options.refresh_grace_secs;
    settings.login_throttle.client_max_failures = options.client_max_failures;
    settings.login_throttle.account_max_failures = options.account_max_failures;
    settings.passwords.bcrypt_cost = options.bcrypt_cost;

    let redis = redis::Client::open(test_support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("cannot reach Redis at TEST_REDIS_URL: start it (scripts/test does)");
    let (addr, client, shutdown, server) = start(settings.clone()).await;
    TestApp {
        addr,
        client,
        settings,
        redis,
        keys_dir,
        shutdown,
        server: Some(server),
        _db: db,
    }
}

async fn start(
    settings: Settings,
) -> (
    SocketAddr,
    AuthServiceClient<Channel>,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    let app = Application::build(settings)
        .await
        .expect("auth-service failed to start");
    let addr = app.local_addr();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = AuthServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("cannot connect to auth-service");
    (addr, client, shutdown, server)
}

/// The session a login opened, as the tests use it.
#[derive(Debug, Clone)]
pub struct Login {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl From<pb::TokenPair> for Login {
    fn from(pair: pb::TokenPair) -> Self {
        Self {
            access: pair.access_token,
            refresh: pair.refresh_token,
            session_id: pair.session_id,
        }
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn client_from(ip: &str) -> Option<pb::ClientInfo> {
    Some(pb::ClientInfo {
        user_agent: "api-tests".to_owned(),
        ip: ip.to_owned(),
    })
}

impl TestApp {
    /// Stops the service and starts it again on the same database, after `change` to its
    /// settings (a new signing key, say).
    pub async fn restart(&mut self, change: impl FnOnce(&mut Settings)) {
        self.stop().await;
        change(&mut self.settings);
        let (addr, client, shutdown, server) = start(self.settings.clone()).await;
        self.addr = addr;
        self.client = client;
        self.shutdown = shutdown;
        self.server = Some(server);
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Another instance of the service on the same database and Redis namespace, as a second
    /// replica in a cluster would be; it stops when the returned token is dropped.
    pub async fn second_instance(&self) -> (AuthServiceClient<Channel>, DropGuard) {
        let (_, client, shutdown, _) = start(self.settings.clone()).await;
        (client, shutdown.drop_guard())
    }

    /// Whether the revocation store the verifiers read refuses a token of this identity.
    pub async fn store_refuses(&self, token: &revocation::TokenIdentity<'_>) -> bool {
        let real_redis = revocation::RedisSettings {
            url: Some(test_support::redis_url().into()),
            ..self.settings.redis.clone()
        };
        let store = revocation::RedisStore::connect(&real_redis, Duration::ZERO)
            .unwrap()
            .unwrap();
        store.check(token).await.unwrap().is_some()
    }

    /// A fresh connection to the service, for clients of other gRPC services.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A new key file in the test's key directory.
    pub fn new_key(&self, name: &str, kind: KeyKind) -> PathBuf {
        let path = self.keys_dir.path().join(name);
        write_new_key(&path, kind).unwrap();
        path
    }

    pub fn active_key(&self) -> SigningKey {
        SigningKey::load(self.settings.tokens.signing_key_file.as_ref().unwrap()).unwrap()
    }

    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<pb::RegisterResponse, Status> {
        self.client
            .clone()
            .register(pb::RegisterRequest {
                username: username.to_owned(),
                email: email.to_owned(),
                password: password.to_owned(),
                client: client_from("127.0.0.1"),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Registers `username` with [`PASSWORD`] and returns its first session.
    pub async fn user(&self, username: &str) -> Login {
        let response = self
            .register(username, &format!("{username}@example.org"), PASSWORD)
            .await
            .expect("registration failed");
        response.tokens.unwrap().into()
    }

    /// Creates an admin the way `auth-service create-admin` does, and logs it in.
    pub async fn admin(&self, username: &str) -> Login {
        let registration = Registration {
            username: username.to_owned(),
            email: format!("{username}@example.org"),
            password: PASSWORD.to_owned(),
        };
        startup::create_admin(&self.settings, registration)
            .await
            .unwrap();
        self.login(username, PASSWORD).await.unwrap()
    }

    pub async fn login_from(
        &self,
        username: &str,
        password: &str,
        ip: &str,
    ) -> Result<Login, Status> {
        self.client
            .clone()
            .login(pb::LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                client: client_from(ip),
            })
            .await
            .map(|response| response.into_inner().tokens.unwrap().into())
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Login, Status> {
        self.login_from(username, password, "127.0.0.1").await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Login, Status> {
        self.client
            .clone()
            .refresh(pb::RefreshRequest {
                refresh_token: refresh_token.to_owned(),
                client: client_from("127.0.0.1"),
            })
            .await
            .map(|response| response.into_inner().tokens.unwrap().into())
    }

    /// ChangePassword as the session of `access`; the number of other sessions it ended.
    pub async fn change_password(
        &self,
        access: &str,
        current: &str,
        new: &str,
    ) -> Result<i32, Status> {
        let request = pb::ChangePasswordRequest {
            current_password: current.to_owned(),
            new_password: new.to_owned(),
        };
        self.client
            .clone()
            .change_password(bearer(request, access))
            .await
            .map(|response| response.into_inner().sessions_revoked)
    }

    /// UpdateUser as the admin of `access`.
    pub async fn update_user(
        &self,
        access: &str,
        user_id: &str,
        is_active: Option<bool>,
        roles: Option<&[&str]>,
    ) -> Result<pb::User, Status> {
        let request = pb::UpdateUserRequest {
            user_id: user_id.to_owned(),
            is_active,
            roles: roles.map(|names| pb::RoleList {
                roles: names.iter().map(|n| (*n).to_owned()).collect(),
            }),
        };
        self.client
            .clone()
            .update_user(bearer(request, access))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn validate(&self, token: &str) -> pb::ValidateTokenResponse {
        self.client
            .clone()
            .validate_token(pb::ValidateTokenRequest {
                token: token.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The rejection of `token`, or `Unspecified` when it is valid.
    pub async fn rejection(&self, token: &str) -> pb::TokenRejection {
        self.validate(token).await.rejection()
    }

    pub async fn is_valid(&self, token: &str) -> bool {
        self.validate(token).await.valid
    }

    pub async fn logout(&self, access: &str) -> Result<(), Status> {
        self.client
            .clone()
            .logout(bearer(pb::LogoutRequest {}, access))
            .await
            .map(drop)
    }

    pub async fn sessions(&self, access: &str, include_revoked: bool) -> Vec<pb::Session> {
        self.client
            .clone()
            .list_sessions(bearer(pb::ListSessionsRequest { include_revoked }, access))
            .await
            .unwrap()
            .into_inner()
            .sessions
    }

    pub async fn jwks(&self) -> Vec<pb::Jwk> {
        self.client
            .clone()
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys
    }

    /// Whether the real Redis holds `revoked:<kind>:<id>` under this test's prefix.
    pub async fn in_redis(&self, kind: &str, id: &str) -> bool {
        let key = format!("{}revoked:{kind}:{id}", self.settings.redis.key_prefix);
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<bool>(&mut self.redis.clone())
            .await
            .unwrap()
    }

    /// Polls [`in_redis`](Self::in_redis) for up to ten seconds.
    pub async fn eventually_in_redis(&self, kind: &str, id: &str) -> bool {
        for _ in 0..100 {
            if self.in_redis(kind, id).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Deletes every key of this test's namespace, as a Redis restart would.
    pub async fn wipe_redis(&self) {
        test_support::wipe_redis_namespace(&self.settings.redis.key_prefix).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The field names of an INVALID_ARGUMENT status's `BadRequest` detail.
pub fn invalid_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    grpc_conventions::field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

/// A token's claims, read without verifying anything.
pub fn claims_of(token: &str) -> token_verifier::Claims {
    jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
}
