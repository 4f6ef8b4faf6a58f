use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::health::PooledConnection;
use crate::metrics::PoolMetrics;
use crate::migrations::{Migrations, run_migrations};
use crate::{AnyConnection, DatabaseError, DatabaseUrl};

/// `database.*` keys, the same for every service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://PATH`. Unset means the service's embedded SQLite file.
    pub url: Option<SecretString>,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered "unavailable".
    pub connection_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            connection_timeout_ms: 2_000,
        }
    }
}

impl DatabaseSettings {
    pub fn connection_timeout(&self) -> Duration {
        Duration::from_millis(self.connection_timeout_ms)
    }

    /// The `(key, value, min, max)` rows of the numeric keys, for the service's range checks
    /// (`service_support::check_ranges`). r2d2 panics on a pool of 0 connections and on a zero
    /// timeout; waiting more than a minute for a connection answers no request in time.
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 2] {
        [
            (
                "database.max_connections",
                self.max_connections.into(),
                1,
                1_000,
            ),
            (
                "database.connection_timeout_ms",
                self.connection_timeout_ms,
                1,
                60_000,
            ),
        ]
    }
}

pub(crate) type Pool = r2d2::Pool<ConnectionManager>;

/// A pool of connections to one database, and the way to use it from async code.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    metrics: Option<Arc<PoolMetrics>>,
}

impl Database {
    /// Opens the pool and checks that one connection can be made. For SQLite, creates the
    /// file's directory when missing.
    ///
    /// # Errors
    /// A malformed URL, an unreachable server, or an unusable file.
    pub fn connect(
        settings: &DatabaseSettings,
        default_url: &str,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let raw = settings
            .url
            .as_ref()
            .map_or(default_url, |url| url.expose_secret());
        let url = DatabaseUrl::parse(raw)?;
        if let DatabaseUrl::Sqlite(path) = &url
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_connections)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout())
            .build(ConnectionManager { url: url.clone() })?;
        Ok(Self {
            pool,
            url,
            metrics: None,
        })
    }

    /// This database, with its pool's metrics in `registry` under `pool_name`.
    ///
    /// # Errors
    /// The metrics are registered there already.
    pub fn with_metrics(
        mut self,
        registry: &observability::Registry,
        pool_name: &str,
    ) -> Result<Self, prometheus::Error> {
        self.metrics = Some(Arc::new(PoolMetrics::register(
            registry, &self.pool, pool_name,
        )?));
        Ok(self)
    }

    /// Opens the pool (off the async threads) and applies pending migrations: what every
    /// service does at start-up.
    ///
    /// # Errors
    /// The database cannot be reached or a migration fails.
    pub async fn open(
        settings: &DatabaseSettings,
        default_url: &'static str,
        migrations: &'static Migrations,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let settings = settings.clone();
        let database =
            tokio::task::spawn_blocking(move || Self::connect(&settings, default_url)).await??;
        database
            .run(move |conn| run_migrations(conn, migrations))
            .await?;
        Ok(database)
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, in a span of its own
    /// when traces are exported and the work is a request's (work in the background has no
    /// trace to join).
    ///
    /// # Errors
    /// `f`'s own error, or [`DatabaseError`] (converted into `E`) when no connection came
    /// within the configured wait or the task panicked.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DatabaseError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let metrics = self.metrics.clone();
        let system = match self.url {
            DatabaseUrl::Postgres(_) => "postgresql",
            DatabaseUrl::Sqlite(_) => "sqlite",
        };
        service_support::spawn_blocking_with_tracing(move || {
            let span = observability::traces::database_span(system, system);
            let _in_span = span.enter();
            let asked = Instant::now();
            let conn = pool.get();
            if let Some(metrics) = &metrics {
                metrics.waited(asked.elapsed(), conn.is_ok());
            }
            let mut pooled = conn.map_err(DatabaseError::Unavailable)?;
            f(&mut pooled.conn)
        })
        .await
        .map_err(|join| E::from(DatabaseError::TaskFailed(join)))?
    }

    /// Whether a connection can be checked out and answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.run(|conn| conn.ping().map_err(|_| PingFailed))
            .await
            .is_ok()
    }
}

struct PingFailed;

impl From<DatabaseError> for PingFailed {
    fn from(_: DatabaseError) -> Self {
        Self
    }
}

/// Establishes the variant of [`AnyConnection`] that the URL names, prepares SQLite connections
/// for concurrent use, and judges connections by what their queries found (see
/// [`crate::health`]).
pub(crate) struct ConnectionManager {
    url: DatabaseUrl,
}

// The busy timeout comes first so that even switching to WAL waits for a concurrent
// connection instead of failing; WAL lets readers run beside the one writer; foreign keys are
// off by default in SQLite.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PooledConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, Self::Error> {
        self.establish().map(PooledConnection::watch)
    }

    fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), Self::Error> {
        if pooled.answered_recently() {
            return Ok(());
        }
        pooled.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        std::thread::panicking() || pooled.is_lost() || pooled.conn.is_broken()
    }
}

impl ConnectionManager {
    fn establish(&self) -> Result<AnyConnection, diesel::r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use diesel::sql_types::{Integer, Text};
    use diesel::{QueryableByName, RunQueryDsl};
    use service_support::check_ranges;
    use test_support::{Backend, Bound, TestDatabase, assert_bounds};

    use super::*;
    use crate::is_unavailable;

    #[derive(Debug, QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }

    #[derive(Debug, thiserror::Error)]
    enum Failure {
        #[error(transparent)]
        Pool(DatabaseError),
        #[error(transparent)]
        Query(diesel::result::Error),
    }

    impl From<DatabaseError> for Failure {
        fn from(error: DatabaseError) -> Self {
            Self::Pool(error)
        }
    }

    fn pid_query(conn: &mut AnyConnection, sql: &str) -> Result<Pid, Failure> {
        diesel::sql_query(sql)
            .get_result::<Pid>(conn)
            .map_err(Failure::Query)
    }

    fn lost(failure: &Failure) -> bool {
        matches!(failure, Failure::Query(error) if is_unavailable(error))
    }

    #[derive(QueryableByName)]
    struct LastQuery {
        #[diesel(sql_type = Text)]
        query: String,
    }

    /// A pool of one connection to a fresh PostgreSQL database, and a connection beside it.
    fn one_connection(db: &TestDatabase) -> (Database, PgConnection) {
        let settings = DatabaseSettings {
            url: Some(db.url().to_owned().into()),
            max_connections: 1,
            connection_timeout_ms: 2_000,
        };
        let database = Database::connect(&settings, "unused").unwrap();
        (database, PgConnection::establish(db.url()).unwrap())
    }

    async fn backend_pid(database: &Database) -> i32 {
        database
            .run(|conn| pid_query(conn, "SELECT pg_backend_pid() AS pid"))
            .await
            .unwrap()
            .pid
    }

    fn last_query(admin: &mut PgConnection, pid: i32) -> String {
        diesel::sql_query("SELECT query FROM pg_stat_activity WHERE pid = $1")
            .bind::<Integer, _>(pid)
            .get_result::<LastQuery>(admin)
            .unwrap()
            .query
    }

    fn terminate(admin: &mut PgConnection, pid: i32) {
        admin
            .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
            .unwrap();
    }

    #[tokio::test]
    async fn a_connection_in_steady_use_is_handed_out_without_a_ping() {
        let db = TestDatabase::create(Backend::Postgres);
        let (database, mut admin) = one_connection(&db);
        let pid = backend_pid(&database).await;

        // A checkout that runs nothing: a test on checkout would leave its `SELECT 1` behind.
        database.run(|_| Ok::<_, Failure>(())).await.unwrap();
        assert!(last_query(&mut admin, pid).contains("pg_backend_pid"));
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_trusted_window_is_pinged_and_replaced_if_dead() {
        let db = TestDatabase::create(Backend::Postgres);
        let (database, mut admin) = one_connection(&db);
        let pid = backend_pid(&database).await;
        terminate(&mut admin, pid);
        tokio::time::sleep(crate::health::TRUSTED_FOR + Duration::from_millis(200)).await;

        let replacement = backend_pid(&database).await;
        assert_ne!(replacement, pid);
    }

    #[tokio::test]
    async fn a_connection_found_lost_by_a_query_is_not_handed_out_again() {
        let db = TestDatabase::create(Backend::Postgres);
        let (database, mut admin) = one_connection(&db);
        let pid = backend_pid(&database).await;
        terminate(&mut admin, pid);

        // Used a moment ago, so trusted: the request that finds it dead fails as unavailable…
        let failure = database
            .run(|conn| pid_query(conn, "SELECT pg_backend_pid() AS pid"))
            .await
            .unwrap_err();
        assert!(lost(&failure), "{failure:?}");
        // …and every later one gets a new connection.
        let replacement = backend_pid(&database).await;
        assert_ne!(replacement, pid);
    }

    #[tokio::test]
    async fn concurrent_requests_after_the_server_ended_every_connection_all_succeed_later() {
        let db = TestDatabase::create(Backend::Postgres);
        let settings = DatabaseSettings {
            url: Some(db.url().to_owned().into()),
            max_connections: 4,
            connection_timeout_ms: 2_000,
        };
        let database = Database::connect(&settings, "unused").unwrap();
        let mut admin = PgConnection::establish(db.url()).unwrap();
        let burst = |database: &Database| {
            (0..16)
                .map(|_| {
                    let database = database.clone();
                    tokio::spawn(async move {
                        database
                            .run(|conn| {
                                pid_query(conn, "SELECT pg_backend_pid() AS pid, pg_sleep(0.01)")
                            })
                            .await
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut before = std::collections::HashSet::new();
        for task in burst(&database) {
            before.insert(task.await.unwrap().unwrap().pid);
        }
        for pid in &before {
            terminate(&mut admin, *pid);
        }

        // Each dead connection fails at most the one request that finds it dead.
        let mut failed = 0;
        for task in burst(&database) {
            match task.await.unwrap() {
                Ok(Pid { pid }) => assert!(!before.contains(&pid)),
                Err(failure) => {
                    assert!(lost(&failure), "{failure:?}");
                    failed += 1;
                }
            }
        }
        assert!(
            failed <= before.len(),
            "{failed} failures for {} dead",
            before.len()
        );
        for task in burst(&database) {
            let Pid { pid } = task.await.unwrap().unwrap();
            assert!(!before.contains(&pid));
        }
    }

    #[test]
    fn every_numeric_key_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric).
        let DatabaseSettings {
            url: _,
            max_connections: _,
            connection_timeout_ms: _,
        } = DatabaseSettings::default();
        let table: &[Bound<DatabaseSettings>] = &[
            (
                "database.max_connections",
                |s, v| s.max_connections = v.try_into().unwrap(),
                1,
                1_000,
            ),
            (
                "database.connection_timeout_ms",
                |s, v| s.connection_timeout_ms = v,
                1,
                60_000,
            ),
        ];
        assert_bounds(
            &DatabaseSettings::default(),
            |s| check_ranges(&s.ranges()),
            table,
        );
    }
}
