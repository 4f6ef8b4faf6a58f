use diesel::{RunQueryDsl, sql_query};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::AnyConnection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies the pending migrations of the connection's backend.
///
/// On PostgreSQL the run holds an advisory lock named by `lock_key`, so several replicas
/// starting together do not apply the same migration twice.
///
/// # Errors
/// A migration failed; it was rolled back.
pub fn run_migrations(
    conn: &mut AnyConnection,
    postgres: EmbeddedMigrations,
    sqlite: EmbeddedMigrations,
    lock_key: i64,
) -> Result<(), BoxError> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            sql_query(format!("SELECT pg_advisory_lock({lock_key})")).execute(pg)?;
            let outcome = pg.run_pending_migrations(postgres).map(drop);
            sql_query(format!("SELECT pg_advisory_unlock({lock_key})")).execute(pg)?;
            outcome
        }
        AnyConnection::Sqlite(lite) => lite.run_pending_migrations(sqlite).map(drop),
    }
}
