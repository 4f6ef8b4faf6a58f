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

/// Whether `error` means the database could not be reached or is too busy, so the request may
/// succeed later (503), as opposed to a bug or a constraint (500 or a domain error).
pub fn is_unavailable(error: &Error) -> bool {
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            // PostgreSQL shutting down or killing the backend; SQLite out of busy time.
            message.contains("terminating connection")
                || message.contains("server closed the connection")
                || message.contains("database is locked")
                || message.contains("could not connect")
        }
        _ => false,
    }
}
