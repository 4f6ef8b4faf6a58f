//! `x-request-id`: taken from the request when it is a sane token, generated otherwise, put on
//! every response, into the span of every log line of the request, and onto every upstream
//! call. Error bodies read it from a task-local, since an error is turned into a response
//! without access to the request.
//!
//! The request's span is also its server span when traces are exported: it continues the
//! caller's `traceparent`, and the upstream calls made inside it pass the trace on.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use observability::traces;
use tracing::Instrument;
use tracing::field::Empty;

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
    // The OpenTelemetry fields stay empty, out of the log lines, while no span is exported.
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %request.method(),
        path = %request.path(),
        otel.kind = Empty,
        service.name = Empty,
        http.request.method = Empty,
        http.route = Empty,
        http.response.status_code = Empty,
    );
    let traced = traces::enabled();
    if traced {
        span.record("otel.kind", "server");
        span.record(traces::SERVICE, "gateway");
        span.record("http.request.method", request.method().as_str());
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        traces::continue_trace_from(&span, header("traceparent"), header("tracestate"));
    }
    let recorded = span.clone();
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
    if traced {
        // Known only once routing happened.
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        traces::rename(
            &recorded,
            format!("{} {route}", response.request().method()),
        );
        recorded.record("http.route", route);
        recorded.record("http.response.status_code", response.status().as_u16());
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
