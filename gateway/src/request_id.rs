//! `x-request-id`: taken from the request when it is a sane token, generated otherwise, put on
//! every response, into the span of every log line of the request, and onto every upstream
//! call. Error bodies read it from a task-local, since an error is turned into a response
//! without access to the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Accepts ids a client or proxy may reasonably send (UUIDs, trace ids); anything else could
/// smuggle text into logs, so it is replaced.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), ToOwned::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let header = HeaderValue::from_str(&id).ok();
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %request.method(),
        path = %request.path(),
    );
    let outcome = CURRENT
        .scope(id, async {
            next.call(request).await.map_err(|error| {
                // Rendered here, inside the scope, so the body carries the request id.
                let mut response = error.error_response();
                if let Some(value) = header.clone() {
                    response.headers_mut().insert(HEADER, value);
                }
                Error::from(InternalError::from_response(error.to_string(), response))
            })
        })
        .instrument(span)
        .await;
    let mut response = outcome?;
    if let Some(value) = header {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_plain_tokens_are_taken_from_clients() {
        assert!(acceptable("0190f3b2-7c1e-7abc-8def-0123456789ab"));
        assert!(acceptable("trace.42:span_7"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(129)));
        assert!(!acceptable("evil\nlog line"));
        assert!(!acceptable("a b"));
    }
}
