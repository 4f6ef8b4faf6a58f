//! auth-service's tables: one module per table with its row types and query functions. All of
//! them take a `&mut AnyConnection` and run on the blocking pool (see `Database::run`).

pub mod login_attempts;
pub mod revocations;
pub mod schema;
pub mod sessions;
pub mod users;

use chrono::{DateTime, NaiveDateTime, Utc};
use database::{Database, DatabaseSettings, run_migrations};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use crate::config::DEFAULT_DATABASE_URL;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
// Any constant unique among the services sharing a PostgreSQL server.
const MIGRATION_LOCK: i64 = 0x0b00_c500_0001;

/// Opens the pool and brings the schema up to date.
///
/// # Errors
/// The database cannot be reached or a migration fails.
pub async fn connect(
    settings: &DatabaseSettings,
) -> Result<Database, Box<dyn std::error::Error + Send + Sync>> {
    let settings = settings.clone();
    let database =
        tokio::task::spawn_blocking(move || Database::connect(&settings, DEFAULT_DATABASE_URL))
            .await??;
    database
        .run(|conn| run_migrations(conn, POSTGRES, SQLITE, MIGRATION_LOCK))
        .await
        .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { error })?;
    Ok(database)
}

/// Timestamps are stored as UTC without zone (the type both backends share).
pub fn to_db(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

pub fn from_db(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}
