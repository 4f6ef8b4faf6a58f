use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
            let mut conn = conn.map_err(DatabaseError::Unavailable)?;
            f(&mut conn)
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

/// Establishes the variant of [`AnyConnection`] that the URL names, and prepares SQLite
/// connections for concurrent use.
pub(crate) struct ConnectionManager {
    url: DatabaseUrl,
}

// The busy timeout comes first so that even switching to WAL waits for a concurrent
// connection instead of failing; WAL lets readers run beside the one writer; foreign keys are
// off by default in SQLite.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
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

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use service_support::check_ranges;
    use test_support::{Bound, assert_bounds};

    use super::*;

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
