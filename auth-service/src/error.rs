//! The one error type of auth-service, and the one place it becomes a gRPC status.

use std::time::Duration;

use token_verifier::Rejection;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Messages for a request's invalid fields, named as in the `.proto`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Adds the error of `result`, if any, and returns its value.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(field, message)).ok()
    }

    /// `Ok(())` when no field was invalid.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] with every message.
    pub fn into_result(self) -> Result<(), AuthError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AuthError::InvalidInput(self))
        }
    }

    pub fn single(field: &'static str, message: impl Into<String>) -> AuthError {
        let mut errors = Self::default();
        errors.add(field, message);
        AuthError::InvalidInput(errors)
    }
}

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
            AuthError::InvalidInput(FieldErrors(fields)) => {
                let mut details = ErrorDetails::new();
                let mut summary = Vec::with_capacity(fields.len());
                for (field, message) in fields {
                    summary.push(format!("{field}: {message}"));
                    details.add_bad_request_violation(field, message);
                }
                Status::with_error_details(Code::InvalidArgument, summary.join("; "), details)
            }
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

fn with_retry_after(mut status: Status, after: Duration) -> Status {
    let seconds = after.as_secs().max(1).to_string();
    if let Ok(value) = seconds.parse() {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

/// `?` for `anyhow`-able failures that are bugs or broken invariants, not client mistakes.
pub fn internal(error: impl Into<anyhow::Error>) -> AuthError {
    AuthError::Internal(error.into())
}
