//! The one error type of the gateway and the one place it becomes an HTTP answer: an RFC 9457
//! `application/problem+json` body carrying the request id, plus the headers the status needs
//! (`WWW-Authenticate`, `Retry-After`). gRPC statuses from the services are mapped here too.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tonic::Code;

use crate::request_id;

/// Which challenge a 401 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A missing, invalid, expired, revoked or wrong-type bearer token.
    InvalidToken,
    /// Wrong login credentials.
    Credentials,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed syntax: a body that is not JSON, a broken header.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Well-formed but invalid values, by field.
    #[error("validation failed: {detail}")]
    Validation {
        detail: String,
        errors: BTreeMap<String, Vec<String>>,
    },
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: String,
        challenge: Challenge,
    },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed: {detail}")]
    MethodNotAllowed { detail: String, allow: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { detail: String, retry_after: u64 },
    #[error("unavailable: {detail}")]
    Unavailable { detail: String, retry_after: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self::Unauthorized {
            detail: detail.into(),
            challenge: Challenge::InvalidToken,
        }
    }

    /// One invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Validation {
            detail: format!("{field}: {message}"),
            errors: BTreeMap::from([(field.to_owned(), vec![message])]),
        }
    }

    /// A dependency the request needs is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable {
            detail: detail.into(),
            retry_after: 1,
        }
    }
}

/// The body of every error answer (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what happened.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// Messages by field, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
    /// The `x-request-id` of the request, to quote when reporting a problem.
    pub request_id: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (detail, errors) = match self {
            Self::Validation { detail, errors } => (detail.clone(), Some(errors.clone())),
            Self::Unauthorized { detail, .. }
            | Self::MethodNotAllowed { detail, .. }
            | Self::TooManyRequests { detail, .. }
            | Self::Unavailable { detail, .. } => (detail.clone(), None),
            Self::BadRequest(detail)
            | Self::Forbidden(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::PreconditionFailed(detail)
            | Self::UnsupportedMediaType(detail) => (detail.clone(), None),
            Self::PayloadTooLarge { limit } => {
                (format!("the body exceeds the limit of {limit} bytes"), None)
            }
            Self::Internal(error) => {
                tracing::error!(error = ?error, "internal error");
                ("an unexpected error occurred".to_owned(), None)
            }
        };
        let problem = Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            request_id: request_id::current().unwrap_or_default(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match self {
            Self::Unauthorized { challenge, .. } => {
                response.insert_header((header::WWW_AUTHENTICATE, challenge_header(*challenge)));
            }
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.clone()));
            }
            Self::TooManyRequests { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        response.json(problem)
    }
}

fn challenge_header(challenge: Challenge) -> HeaderValue {
    HeaderValue::from_static(match challenge {
        Challenge::InvalidToken => r#"Bearer realm="bookstore", error="invalid_token""#,
        Challenge::Credentials => r#"Basic realm="bookstore", charset="UTF-8""#,
    })
}

/// gRPC field names that the HTTP API calls differently.
fn http_field_name(field: &str) -> &str {
    match field {
        "page_size" => "limit",
        "page_token" => "cursor",
        "query" => "q",
        other => other.strip_prefix("book.").unwrap_or(other),
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let detail = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => {
                let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (field, message) in grpc_conventions::field_violations(&status) {
                    errors
                        .entry(http_field_name(&field).to_owned())
                        .or_default()
                        .push(message);
                }
                Self::Validation { detail, errors }
            }
            Code::NotFound => Self::NotFound(detail),
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => {
                Self::Conflict(detail)
            }
            Code::Unauthenticated => Self::invalid_token(detail),
            Code::PermissionDenied => Self::Forbidden(detail),
            Code::ResourceExhausted => Self::TooManyRequests {
                detail,
                retry_after: grpc_conventions::retry_after(&status).unwrap_or(1),
            },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable {
                detail: "a service this request needs is unavailable; try again shortly".to_owned(),
                retry_after: grpc_conventions::retry_after(&status).unwrap_or(1),
            },
            Code::Ok
            | Code::Unknown
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => Self::Internal(anyhow::anyhow!("upstream answered {status:?}")),
        }
    }
}
