use std::collections::BTreeSet;

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection, sql_query};

/// The tables, columns and secondary indexes of a migrated database: what must be equal
/// between a service's PostgreSQL and SQLite migration trees.
#[derive(Debug, PartialEq, Eq)]
pub struct SchemaShape {
    pub columns: BTreeSet<(String, String)>,
    pub indexes: BTreeSet<String>,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
}

impl SchemaShape {
    /// Reads the shape of the database at `url` (a `postgres://` URL or a `sqlite://` path),
    /// leaving out diesel's bookkeeping table and the indexes behind primary keys.
    pub fn of(url: &str) -> Self {
        let (columns, indexes) = match url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut conn = SqliteConnection::establish(path).unwrap();
                let columns = sql_query(
                    "SELECT m.name AS table_name, p.name AS column_name \
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                     AND m.name <> '__diesel_schema_migrations'",
                )
                .load::<Column>(&mut conn)
                .unwrap();
                let indexes = sql_query(
                    "SELECT name FROM sqlite_master WHERE type = 'index' \
                     AND name NOT LIKE 'sqlite_autoindex%'",
                )
                .load::<Index>(&mut conn)
                .unwrap();
                (columns, indexes)
            }
            None => {
                let mut conn = PgConnection::establish(url).unwrap();
                let columns = sql_query(
                    "SELECT table_name::text AS table_name, column_name::text AS column_name \
                     FROM information_schema.columns WHERE table_schema = 'public' \
                     AND table_name <> '__diesel_schema_migrations'",
                )
                .load::<Column>(&mut conn)
                .unwrap();
                let indexes = sql_query(
                    "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = 'public' \
                     AND indexname NOT LIKE '%\\_pkey'",
                )
                .load::<Index>(&mut conn)
                .unwrap();
                (columns, indexes)
            }
        };
        Self {
            columns: columns
                .into_iter()
                .map(|c| (c.table_name, c.column_name))
                .collect(),
            indexes: indexes.into_iter().map(|i| i.name).collect(),
        }
    }
}
