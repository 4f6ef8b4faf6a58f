//! The one error type of books-service, and the one place it becomes a gRPC status.

use std::time::Duration;

pub use grpc_conventions::FieldErrors;
use grpc_conventions::with_retry_after;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    #[error("invalid input: {0:?}")]
    InvalidInput(FieldErrors),
    /// Missing, or another user's: the two look the same.
    #[error("book not found")]
    NotFound,
    #[error("book is at version {current}")]
    StaleVersion { current: i64 },
    #[error("permission denied")]
    PermissionDenied,
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid access token: {0}")]
    InvalidToken(token_verifier::Rejection),
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FieldErrors> for BooksError {
    fn from(errors: FieldErrors) -> Self {
        Self::InvalidInput(errors)
    }
}

impl From<database::DatabaseError> for BooksError {
    fn from(error: database::DatabaseError) -> Self {
        match error {
            database::DatabaseError::Unavailable(_) => Self::Unavailable(error.into()),
            database::DatabaseError::TaskFailed(_) => Self::Internal(error.into()),
        }
    }
}

impl From<diesel::result::Error> for BooksError {
    fn from(error: diesel::result::Error) -> Self {
        if database::is_unavailable(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<token_verifier::AuthFailure> for BooksError {
    fn from(failure: token_verifier::AuthFailure) -> Self {
        match failure {
            token_verifier::AuthFailure::Missing => Self::MissingToken,
            token_verifier::AuthFailure::Rejected(rejection) => Self::InvalidToken(rejection),
            // Not judged: a valid token must not be called invalid while the keys are missing.
            token_verifier::AuthFailure::KeysUnavailable => Self::Unavailable(failure.into()),
            // Revocation cannot be checked: refuse rather than risk serving a revoked token.
            token_verifier::AuthFailure::StoreUnavailable { error, .. } => {
                Self::Unavailable(error.into())
            }
        }
    }
}

impl From<BooksError> for Status {
    fn from(error: BooksError) -> Self {
        match error {
            BooksError::InvalidInput(fields) => fields.into_status(),
            BooksError::NotFound => Status::not_found("book not found"),
            BooksError::StaleVersion { current } => Status::failed_precondition(format!(
                "the book was changed meanwhile; it is now at version {current}"
            )),
            BooksError::PermissionDenied => Status::permission_denied("permission denied"),
            BooksError::MissingToken => Status::unauthenticated("missing bearer token"),
            BooksError::InvalidToken(rejection) => {
                tracing::debug!(reason = rejection.as_str(), "token refused");
                Status::unauthenticated("invalid access token")
            }
            BooksError::Unavailable(source) => {
                tracing::warn!(error = ?source, "dependency unavailable");
                with_retry_after(
                    Status::unavailable("service temporarily unavailable"),
                    Duration::from_secs(1),
                )
            }
            BooksError::Internal(source) => {
                tracing::error!(error = ?source, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
