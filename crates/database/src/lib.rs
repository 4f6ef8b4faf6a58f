//! One diesel connection type over PostgreSQL and SQLite, and what every service does with it:
//! pick the backend from the URL, pool connections with a bounded wait, run embedded
//! migrations, run queries off the async threads, and classify low-level errors once.
//!
//! Schemas, models and queries stay in the service that owns the data.

mod connection;
mod errors;
mod health;
mod metrics;
mod migrations;
mod pool;
mod url;

pub use connection::{AnyConnection, write_transaction};
pub use errors::{DatabaseError, is_unavailable, unique_violation};
pub use migrations::Migrations;
pub use pool::{Database, DatabaseSettings};
pub use url::{Backend, DatabaseUrl, UrlError};
