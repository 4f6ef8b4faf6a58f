//! The one error type of auth-service, and the one place it becomes a gRPC status.

use std::time::Duration;

pub use grpc_conventions::FieldErrors;
use grpc_conventions::with_retry_after;
use token_verifier::Rejection;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid input: {0:?}")]
    InvalidInput(FieldErrors),
    #[error("username already taken")]
    UsernameTaken,
    #[error("email already registered")]
    EmailTaken,
    /// Unknown user, wrong password or deactivated account: one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid access token: {0}")]
    InvalidToken(Rejection),
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("refresh token reused; session revoked")]
    RefreshTokenReused,
    #[error("permission denied")]
    PermissionDenied,
    #[error("user not found")]
    UserNotFound,
    #[error("an admin cannot deactivate or demote itself")]
    SelfModification,
    #[error("too many failed attempts")]
    Throttled { retry_after: Duration },
    #[error("password hashing is saturated")]
    Busy,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FieldErrors> for AuthError {
    fn from(errors: FieldErrors) -> Self {
        Self::InvalidInput(errors)
    }
}

impl From<database::DatabaseError> for AuthError {
    fn from(error: database::DatabaseError) -> Self {
        match error {
            database::DatabaseError::Unavailable(_) => Self::Unavailable(error.into()),
            database::DatabaseError::TaskFailed(_) => Self::Internal(error.into()),
        }
    }
}

impl From<diesel::result::Error> for AuthError {
    fn from(error: diesel::result::Error) -> Self {
        if database::is_unavailable(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidInput(fields) => fields.into_status(),
            AuthError::UsernameTaken => Status::already_exists("username is already taken"),
            AuthError::EmailTaken => Status::already_exists("email is already registered"),
            AuthError::InvalidCredentials => {
                Status::unauthenticated("invalid username or password")
            }
            AuthError::MissingToken => Status::unauthenticated("missing bearer token"),
            AuthError::InvalidToken(_) => Status::unauthenticated("invalid access token"),
            AuthError::InvalidRefreshToken => Status::unauthenticated("invalid refresh token"),
            AuthError::RefreshTokenReused => Status::unauthenticated(
                "refresh token was already used; the session has been revoked",
            ),
            AuthError::PermissionDenied => Status::permission_denied("permission denied"),
            AuthError::UserNotFound => Status::not_found("user not found"),
            AuthError::SelfModification => {
                Status::failed_precondition("an admin cannot deactivate or demote itself")
            }
            AuthError::Throttled { retry_after } => with_retry_after(
                Status::resource_exhausted("too many failed attempts; try again later"),
                retry_after,
            ),
            AuthError::Busy => with_retry_after(
                Status::unavailable("server busy; try again shortly"),
                Duration::from_secs(1),
            ),
            AuthError::Unavailable(source) => {
                tracing::warn!(error = ?source, "dependency unavailable");
                with_retry_after(
                    Status::unavailable("service temporarily unavailable"),
                    Duration::from_secs(1),
                )
            }
            AuthError::Internal(source) => {
                tracing::error!(error = ?source, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// `?` for `anyhow`-able failures that are bugs or broken invariants, not client mistakes.
pub fn internal(error: impl Into<anyhow::Error>) -> AuthError {
    AuthError::Internal(error.into())
}
