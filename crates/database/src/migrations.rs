use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::{RunQueryDsl, sql_query};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::AnyConnection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's two migration trees, one per backend, with the same migrations. Services keep
/// theirs in a `static`.
pub struct Migrations {
    pub postgres: EmbeddedMigrations,
    pub sqlite: EmbeddedMigrations,
    /// Names the PostgreSQL advisory lock held while migrating, so several replicas starting
    /// together do not apply the same migration twice. Unique per service.
    pub lock_key: i64,
}

/// Applies the pending migrations of the connection's backend.
///
/// # Errors
/// A migration failed; it was rolled back.
pub fn run_migrations(
    conn: &mut AnyConnection,
    migrations: &'static Migrations,
) -> Result<(), BoxError> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            let key = migrations.lock_key;
            sql_query(format!("SELECT pg_advisory_lock({key})")).execute(pg)?;
            let outcome = pg
                .run_pending_migrations(Tree(&migrations.postgres))
                .map(drop);
            sql_query(format!("SELECT pg_advisory_unlock({key})")).execute(pg)?;
            outcome
        }
        AnyConnection::Sqlite(lite) => lite
            .run_pending_migrations(Tree(&migrations.sqlite))
            .map(drop),
    }
}

/// A borrowed migration tree: diesel takes sources by value, and embedded ones are not `Clone`.
struct Tree(&'static EmbeddedMigrations);

impl<DB: Backend> MigrationSource<DB> for Tree {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        self.0.migrations()
    }
}
