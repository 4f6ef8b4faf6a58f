//! What the services' integration tests share: a fresh database per test on either backend,
//! the local Redis with a key namespace per test, a TCP proxy that can cut a connection on
//! demand, tracing output on request, and a table-driven check of settings ranges.
//!
//! Missing infrastructure fails the test with one sentence saying what to start: a test never
//! skips. `TEST_DATABASE_URL` (an administrative PostgreSQL URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) point elsewhere; `scripts/test` sets both.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod bounds;
mod chaos;
mod database;
mod schema;
mod tracing_once;

pub use bounds::{Bound, assert_bounds};
pub use chaos::ChaosProxy;
pub use database::{Backend, TestDatabase};
pub use schema::SchemaShape;
pub use tracing_once::init_tracing;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The address of [`redis_url`], for a [`ChaosProxy`] in front of it.
pub fn redis_addr() -> std::net::SocketAddr {
    socket_addr_of(&redis_url())
}

/// The `host:port` of a `scheme://[user[:password]@]host:port[/path][?query]` URL, resolved.
pub(crate) fn socket_addr_of(url: &str) -> std::net::SocketAddr {
    let host_port = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("{url} has no reachable host:port"))
}

/// Deletes every key under `prefix`, as a Redis restart without persistence (or a flush)
/// would: what a store that lost its data looks like.
pub async fn wipe_redis_namespace(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
}

/// A key prefix no other test uses, so tests share one Redis without seeing each other. It
/// names its creation time so that the first call of a test process can delete what earlier
/// runs left behind (most keys expire by themselves; the revocation store's seed mark does not).
pub fn unique_redis_prefix() -> String {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_stale_redis_namespaces);
    format!("test:{}:{}:", unix_now(), uuid::Uuid::new_v4().simple())
}

// Databases and Redis namespaces older than this are leftovers of finished or killed test runs,
// dropped when a test process starts.
pub(crate) const STALE_AFTER_SECS: u64 = 3_600;

fn sweep_stale_redis_namespaces() {
    let Ok(mut connection) =
        redis::Client::open(redis_url()).and_then(|client| client.get_connection())
    else {
        return; // The test that needs Redis will say so.
    };
    let Ok(keys) = redis::cmd("KEYS")
        .arg("test:*")
        .query::<Vec<String>>(&mut connection)
    else {
        return;
    };
    let now = unix_now();
    let stale: Vec<&String> = keys
        .iter()
        .filter(|key| {
            // `test:<created>:<uuid>:…`; older prefixes without a time are stale too.
            let created = key.split(':').nth(1).and_then(|at| at.parse::<u64>().ok());
            created.is_none_or(|at| now.saturating_sub(at) > STALE_AFTER_SECS)
        })
        .collect();
    if !stale.is_empty() {
        let _ = redis::cmd("DEL").arg(stale).query::<()>(&mut connection);
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Emits, for each `async fn name(backend) { … }`, a module `name` with two tests,
/// `name::postgres` and `name::sqlite`, that run the body against each backend.
#[macro_export]
macro_rules! both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($backend:ident) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case($backend: $crate::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                case($crate::Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case($crate::Backend::Sqlite).await
            }
        }
    )*};
}
