//! gRPC calls, served or made, as operators see them: their duration
//! (`rpc_server_call_duration_seconds`, `rpc_client_call_duration_seconds`) by `rpc_service`,
//! `rpc_method` and `rpc_grpc_status_code`, and a span for each (the one its log lines carry),
//! continuing the caller's trace on a server and passing it on from a client. One tower layer
//! serves tonic servers and channels alike.
//!
//! A call ends, for this count, when its response head arrives: for the unary calls every
//! service here makes, that is when the answer is known. Its code is the head's `grpc-status`
//! (tonic sends errors in a trailers-only answer), 0 when the head has none (success, whose
//! status follows in the trailers), 14 (UNAVAILABLE) when no answer came at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, Registry};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;

use crate::DURATION_BUCKETS;
use crate::traces::{self, HeaderExtractor};

/// UNIMPLEMENTED: a method this server does not have. Its name is not recorded, since anyone
/// can send any path and each would become a time series.
const UNIMPLEMENTED: &str = "12";
const UNAVAILABLE: &str = "14";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// One histogram of call durations, and what the calls' spans say of whose they are.
#[derive(Clone)]
pub struct CallMetrics {
    duration: HistogramVec,
    side: Side,
    /// The service answering (server) or making (client) the calls, in `service.name`.
    service: &'static str,
}

impl CallMetrics {
    /// The calls `service`, a server, answers.
    ///
    /// # Errors
    /// The metric is registered already.
    pub fn server(registry: &Registry, service: &'static str) -> Result<Self, prometheus::Error> {
        Self::new(
            registry,
            "rpc_server_call_duration_seconds",
            "Duration of the gRPC calls this service answered.",
            (Side::Server, service),
        )
    }

    /// The calls `service` makes to others.
    ///
    /// # Errors
    /// The metric is registered already.
    pub fn client(registry: &Registry, service: &'static str) -> Result<Self, prometheus::Error> {
        Self::new(
            registry,
            "rpc_client_call_duration_seconds",
            "Duration of the gRPC calls this service made to others.",
            (Side::Client, service),
        )
    }

    fn new(
        registry: &Registry,
        name: &str,
        help: &str,
        (side, service): (Side, &'static str),
    ) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(name, help)
                .const_label("rpc_system", "grpc")
                .buckets(DURATION_BUCKETS.to_vec()),
            &["rpc_service", "rpc_method", "rpc_grpc_status_code"],
        )?;
        Ok(Self {
            duration: crate::register(registry, duration)?,
            side,
            service,
        })
    }

    /// The span of a call to `path`. Its OpenTelemetry fields stay empty unless `traced`
    /// (spans are exported), so that log lines show only the method and, on a server, the
    /// caller's request id.
    fn span<B>(&self, path: &str, request: &mut http::Request<B>, traced: bool) -> tracing::Span {
        let span = match self.side {
            Side::Server => {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "grpc",
                    method = %path,
                    request_id = %request_id,
                    otel.name = Empty,
                    otel.kind = Empty,
                    service.name = Empty,
                    rpc.grpc.status_code = Empty,
                )
            }
            Side::Client => tracing::info_span!(
                "grpc client",
                method = %path,
                otel.name = Empty,
                otel.kind = Empty,
                service.name = Empty,
                rpc.grpc.status_code = Empty,
            ),
        };
        if traced {
            span.record("otel.name", path.trim_start_matches('/'));
            span.record(traces::SERVICE, self.service);
            match self.side {
                Side::Server => {
                    span.record("otel.kind", "server");
                    traces::continue_trace(&span, &HeaderExtractor(request.headers()));
                }
                Side::Client => {
                    span.record("otel.kind", "client");
                    traces::propagate(&span, request.headers_mut());
                }
            }
        }
        span
    }

    pub fn layer(&self) -> CallMetricsLayer {
        CallMetricsLayer {
            metrics: self.clone(),
        }
    }

    fn observe(&self, path: &str, code: &str, started: Instant) {
        let (service, method) = if code == UNIMPLEMENTED {
            ("other", "other")
        } else {
            split(path)
        };
        self.duration
            .with_label_values(&[service, method, code])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// `/bookstore.auth.v1.AuthService/Login` → (`bookstore.auth.v1.AuthService`, `Login`).
fn split(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("other", "other"))
}

#[derive(Clone)]
pub struct CallMetricsLayer {
    metrics: CallMetrics,
}

impl<S> Layer<S> for CallMetricsLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A gRPC service (server or channel) whose calls are timed and traced.
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    metrics: CallMetrics,
}

impl<S, B, R> Service<http::Request<B>> for Observed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let traced = traces::enabled();
        let span = metrics.span(&path, &mut request, traced);
        let started = Instant::now();
        // Entered while the handler's future is made: spans it opens on the way are the call's.
        let call = span.in_scope(|| self.inner.call(request));
        let recorded = span.clone();
        Box::pin(
            async move {
                let outcome = call.await;
                let code = match &outcome {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .map_or_else(|| "0".to_owned(), ToOwned::to_owned),
                    Err(_) => UNAVAILABLE.to_owned(),
                };
                metrics.observe(&path, &code, started);
                if traced {
                    recorded.record("rpc.grpc.status_code", code.as_str());
                }
                outcome
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn calls_are_counted_by_service_method_and_code_and_unknown_methods_as_other() {
        let registry = Registry::new();
        let metrics = CallMetrics::server(&registry, "auth-service").unwrap();
        let now = Instant::now();
        metrics.observe("/bookstore.auth.v1.AuthService/Login", "0", now);
        metrics.observe("/bookstore.auth.v1.AuthService/Login", "16", now);
        metrics.observe("/anything/an-attacker-sends", UNIMPLEMENTED, now);

        let text = {
            let mut buffer = Vec::new();
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &registry.gather(),
                &mut buffer,
            )
            .unwrap();
            String::from_utf8(buffer).unwrap()
        };
        for series in [
            r#"rpc_server_call_duration_seconds_count{rpc_grpc_status_code="0",rpc_method="Login",rpc_service="bookstore.auth.v1.AuthService",rpc_system="grpc"} 1"#,
            r#"rpc_server_call_duration_seconds_count{rpc_grpc_status_code="16",rpc_method="Login",rpc_service="bookstore.auth.v1.AuthService",rpc_system="grpc"} 1"#,
            r#"rpc_server_call_duration_seconds_count{rpc_grpc_status_code="12",rpc_method="other",rpc_service="other",rpc_system="grpc"} 1"#,
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        assert!(!text.contains("an-attacker-sends"));
    }
}
