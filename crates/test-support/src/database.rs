use std::sync::Once;

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query, sql_types::Text};
use tempfile::TempDir;

use crate::{STALE_AFTER_SECS, unix_now};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// An empty database that exists for one test: a new PostgreSQL database (dropped on `Drop`)
/// or a SQLite file in a temporary directory. The service under test migrates it itself, so
/// every test also runs the production start-up path.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

enum Kind {
    Postgres { name: String },
    Sqlite { _dir: TempDir },
}

impl TestDatabase {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::create_postgres(),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("cannot create a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    url,
                    kind: Kind::Sqlite { _dir: dir },
                }
            }
        }
    }

    /// The URL for the service's `database.url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PostgreSQL server's address, for a [`ChaosProxy`](crate::ChaosProxy) in front of it.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        assert!(
            matches!(self.kind, Kind::Postgres { .. }),
            "SQLite has no server"
        );
        crate::socket_addr_of(&self.url)
    }

    /// [`url`](Self::url) with the server reached at `addr` instead (a proxy).
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"));
        format!("{scheme}://{}{addr}/{path}", user.unwrap_or_default())
    }

    fn create_postgres() -> Self {
        let admin_url = admin_url();
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|error| {
            panic!(
                "cannot reach PostgreSQL at {admin_url} ({error}): start it (scripts/test does) \
                 or set TEST_DATABASE_URL"
            )
        });
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_stale(&mut admin));

        let name = format!("test_{}_{}", unix_now(), uuid::Uuid::new_v4().simple());
        sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("cannot create a test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("TEST_DATABASE_URL must end with /<database>"),
        };
        Self {
            url,
            kind: Kind::Postgres { name },
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { name } = &self.kind
            && let Ok(mut admin) = PgConnection::establish(&admin_url())
        {
            // FORCE ends the stopped service's pooled connections (PostgreSQL 13+).
            let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

fn sweep_stale(admin: &mut PgConnection) {
    let Ok(names) = sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")
        .load::<DatabaseName>(admin)
    else {
        return;
    };
    let now = unix_now();
    for DatabaseName { datname } in names {
        let created = datname
            .split('_')
            .nth(1)
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER_SECS) {
            let _ =
                sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)")).execute(admin);
        }
    }
}
