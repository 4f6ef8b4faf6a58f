//! books-service's table: the `books` rows and their queries, taking a `&mut AnyConnection`
//! and run on the blocking pool (see `Database::run`).

pub mod books;
pub mod schema;

use database::{Database, DatabaseSettings, Migrations};
use diesel_migrations::embed_migrations;

use crate::config::DEFAULT_DATABASE_URL;

static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
    // Any constant unique among the services sharing a PostgreSQL server.
    lock_key: 0x0b00_c500_0002,
};

/// Opens the pool and brings the schema up to date.
///
/// # Errors
/// The database cannot be reached or a migration fails.
pub async fn connect(
    settings: &DatabaseSettings,
) -> Result<Database, Box<dyn std::error::Error + Send + Sync>> {
    Database::open(settings, DEFAULT_DATABASE_URL, &MIGRATIONS).await
}
