use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::{Connection, PgConnection, SqliteConnection};

/// A connection to whichever backend the URL named. Queries written against it run on both;
/// it supports only the SQL types and features the two share (no `ON CONFLICT`, no
/// `RETURNING`, no UUID or `timestamptz` columns).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    // Listed first: establishing through the derive tries variants in order.
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Evaluates `$body` with `$c` bound to the backend's own connection (`PgConnection` or
/// `SqliteConnection`) inside `$conn: &mut AnyConnection`, for statements the multi-backend
/// connection cannot run (batch inserts on SQLite) and for hot ones: through it, every
/// statement is rendered to SQL on every call, while a backend's own connection finds a
/// statement of static shape in its prepared-statement cache without rendering it.
#[macro_export]
macro_rules! with_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::AnyConnection::Postgresql($c) => $body,
            $crate::AnyConnection::Sqlite($c) => $body,
        }
    };
}

/// Runs `f` in a transaction that may write.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`: a deferred transaction that reads
/// and then writes fails at once with `SQLITE_BUSY` when another connection wrote in between,
/// while an immediate one waits for the write lock under the busy timeout. PostgreSQL uses a
/// plain transaction.
///
/// # Errors
/// Whatever `f` returns, or the error of beginning or committing.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if !matches!(conn, AnyConnection::Sqlite(_)) {
        return conn.transaction(f);
    }
    with_sqlite(conn, |c| {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
    })?;
    match f(conn) {
        Ok(value) => {
            with_sqlite(conn, AnsiTransactionManager::commit_transaction)?;
            Ok(value)
        }
        Err(error) => {
            with_sqlite(conn, AnsiTransactionManager::rollback_transaction)?;
            Err(error)
        }
    }
}

fn with_sqlite(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut SqliteConnection) -> diesel::QueryResult<()>,
) -> diesel::QueryResult<()> {
    match conn {
        AnyConnection::Sqlite(inner) => f(inner),
        AnyConnection::Postgresql(_) => Ok(()),
    }
}
