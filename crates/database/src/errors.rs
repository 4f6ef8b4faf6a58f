use diesel::result::{DatabaseErrorKind, Error};

/// Failure to run database work at all: no connection within the configured wait, or the
/// blocking task died. Query errors are returned by the work itself.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("no database connection available")]
    Unavailable(#[source] r2d2::Error),
    #[error("database task failed")]
    TaskFailed(#[source] tokio::task::JoinError),
}

/// The constraint a unique violation hit, when `error` is one: the constraint or index name on
/// PostgreSQL, the `table.column` list on SQLite (which reports no constraint names). Name
/// unique indexes after their columns (`users_email_key_idx` on `email_key`) and match on the
/// column name to classify both alike.
pub fn unique_violation(error: &Error) -> Option<&str> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Some(info.constraint_name().unwrap_or_else(|| info.message()))
        }
        _ => None,
    }
}

/// Whether `error` means the database could not serve the request now but may later (503 with
/// Retry-After), as opposed to a bug or a constraint (500 or a domain error).
///
/// Decided on the error's kind, which diesel derives from PostgreSQL's SQLSTATE (never from its
/// messages, which the server translates into its `lc_messages` language): a lost connection
/// (class 08, or a connection libpq found broken: the server shut down, a proxy cut it), a
/// serialization failure (40001: a transaction lost to a concurrent one under REPEATABLE READ
/// or SERIALIZABLE, which a database may be configured to default to), or a read-only
/// transaction (25006: a write reached a standby during a failover).
///
/// Deadlocks (40P01) get no kind of their own from diesel; our transactions cannot deadlock
/// with each other, because every one that locks both a user and its sessions locks the user
/// first (see docs/architecture.md), so one would be a bug, reported as such.
///
/// SQLite has no SQLSTATE, and diesel keeps its result code only for constraint errors: a
/// writer that waited out the busy timeout comes back as the message of `SQLITE_BUSY`, which
/// is SQLite's fixed, untranslated text for that code (`sqlite3_errstr`), so it is compared
/// here as the code it stands for.
pub fn is_unavailable(error: &Error) -> bool {
    if is_lost_connection(error) {
        return true;
    }
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message() == SQLITE_BUSY_TEXT
        }
        _ => false,
    }
}

/// Whether `error` means the connection itself is gone (class 08, or libpq found it broken):
/// the pool must not hand it out again.
pub(crate) fn is_lost_connection(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
    )
}

/// `sqlite3_errstr(SQLITE_BUSY)`.
const SQLITE_BUSY_TEXT: &str = "database is locked";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::Integer;
    use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
    use test_support::{Backend, TestDatabase};

    use super::*;

    fn postgres(db: &TestDatabase) -> PgConnection {
        PgConnection::establish(db.url()).unwrap()
    }

    fn failure(conn: &mut impl SimpleConnection, sql: &str) -> Error {
        conn.batch_execute(sql).expect_err(sql)
    }

    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }

    #[test]
    fn a_unique_violation_names_its_index_on_both_backends() {
        let schema = "CREATE TABLE t (k TEXT NOT NULL); CREATE UNIQUE INDEX t_k_idx ON t (k); \
                      INSERT INTO t VALUES ('a');";
        let db = TestDatabase::create(Backend::Postgres);
        let mut pg = postgres(&db);
        pg.batch_execute(schema).unwrap();
        let error = failure(&mut pg, "INSERT INTO t VALUES ('a')");
        assert_eq!(unique_violation(&error), Some("t_k_idx"));
        assert!(!is_unavailable(&error));

        let dir = tempfile::tempdir().unwrap();
        let mut lite =
            SqliteConnection::establish(&dir.path().join("t.db").to_string_lossy()).unwrap();
        lite.batch_execute(schema).unwrap();
        let error = failure(&mut lite, "INSERT INTO t VALUES ('a')");
        assert!(unique_violation(&error).unwrap().contains("t.k"), "{error}");
    }

    #[test]
    fn a_serialization_failure_is_unavailability_not_a_bug() {
        let db = TestDatabase::create(Backend::Postgres);
        let (mut first, mut second) = (postgres(&db), postgres(&db));
        first
            .batch_execute("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (0);")
            .unwrap();
        second
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT n FROM t;")
            .unwrap();
        first.batch_execute("UPDATE t SET n = 1").unwrap();

        let error = failure(&mut second, "UPDATE t SET n = 2");
        assert!(is_unavailable(&error), "{error:?}");
    }

    #[test]
    fn a_connection_the_server_ended_is_unavailability() {
        let db = TestDatabase::create(Backend::Postgres);
        let (mut admin, mut victim) = (postgres(&db), postgres(&db));
        let Pid { pid } = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut victim)
            .unwrap();
        admin
            .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
            .unwrap();

        let error = failure(&mut victim, "SELECT 1");
        assert!(is_unavailable(&error), "{error:?}");
    }

    #[test]
    fn a_sqlite_writer_that_waited_out_the_busy_timeout_is_unavailability() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let mut holder = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        let mut waiter = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        holder
            .batch_execute("CREATE TABLE t (n INTEGER); BEGIN IMMEDIATE;")
            .unwrap();
        waiter.batch_execute("PRAGMA busy_timeout = 10").unwrap();

        let error = failure(&mut waiter, "BEGIN IMMEDIATE");
        assert!(is_unavailable(&error), "{error:?}");
    }

    #[test]
    fn a_malformed_statement_is_a_bug_not_unavailability() {
        let db = TestDatabase::create(Backend::Postgres);
        let error = failure(&mut postgres(&db), "SELEC 1");
        assert!(!is_unavailable(&error), "{error:?}");
        assert_eq!(unique_violation(&error), None);
    }
}
