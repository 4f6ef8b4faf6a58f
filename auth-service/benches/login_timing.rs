//! How long a failed login takes, by why it failed, at the production bcrypt cost: an unknown
//! username and a wrong password must cost the same (a dummy hash is checked for unknown
//! users), so that response time does not tell which accounts exist. A successful login is
//! measured beside them for scale. Over real gRPC, auth-service on PostgreSQL and Redis.
//!
//! Run: `cargo bench -p auth-service --bench login_timing` with PostgreSQL and Redis reachable
//! (`TEST_DATABASE_URL`, `TEST_REDIS_URL`, defaults on 127.0.0.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth_service::keys::{KeyKind, write_new_key};
use criterion::{Criterion, criterion_group, criterion_main};
use proto::auth::v1 as pb;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use test_support::{Backend, TestDatabase};
use tokio_util::sync::CancellationToken;
use tonic::Code;

const PASSWORD: &str = "correct horse battery";

struct Stack {
    auth: AuthServiceClient<tonic::transport::Channel>,
    _db: TestDatabase,
    _keys: tempfile::TempDir,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start() -> Stack {
    let db = TestDatabase::create(Backend::Postgres);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing.pem");
    write_new_key(&key_file, KeyKind::Ed25519).unwrap();
    let mut settings = auth_service::Settings::for_tests(
        db.url(),
        &test_support::redis_url(),
        &test_support::unique_redis_prefix(),
        key_file,
    );
    settings.passwords.bcrypt_cost = auth_service::Settings::default().passwords.bcrypt_cost;
    // Measured here is the cost of a check, not the throttle that stops a real attacker.
    settings.login_throttle.client_max_failures = 1_000_000;
    settings.login_throttle.account_max_failures = 1_000_000;
    let shutdown = CancellationToken::new();
    let app = auth_service::Application::build(settings).await.unwrap();
    let url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut auth = AuthServiceClient::connect(url).await.unwrap();
    auth.register(pb::RegisterRequest {
        username: "existing".to_owned(),
        email: "existing@example.org".to_owned(),
        password: PASSWORD.to_owned(),
        client: None,
    })
    .await
    .unwrap();
    Stack {
        auth,
        _db: db,
        _keys: keys,
        _shutdown: shutdown.drop_guard(),
    }
}

fn login_timing(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = runtime.block_on(start());

    let mut group = c.benchmark_group("login_bcrypt_cost_12");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, username, password, expected) in [
        (
            "unknown_user",
            "nobody-here",
            PASSWORD,
            Code::Unauthenticated,
        ),
        (
            "wrong_password",
            "existing",
            "wrong password",
            Code::Unauthenticated,
        ),
        ("success", "existing", PASSWORD, Code::Ok),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut auth = stack.auth.clone();
                let request = pb::LoginRequest {
                    username: username.to_owned(),
                    password: password.to_owned(),
                    client: None,
                };
                async move {
                    let code = auth
                        .login(request)
                        .await
                        .map_or_else(|s| s.code(), |_| Code::Ok);
                    assert_eq!(code, expected);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, login_timing);
criterion_main!(benches);
