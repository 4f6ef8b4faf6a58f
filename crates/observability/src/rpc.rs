//! The duration of gRPC calls, served (`rpc_server_call_duration_seconds`) or made
//! (`rpc_client_call_duration_seconds`), by `rpc_service`, `rpc_method` and
//! `rpc_grpc_status_code`: a tower layer for tonic servers and channels alike.
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

use crate::DURATION_BUCKETS;

/// UNIMPLEMENTED: a method this server does not have. Its name is not recorded, since anyone
/// can send any path and each would become a time series.
const UNIMPLEMENTED: &str = "12";
const UNAVAILABLE: &str = "14";

/// One histogram of call durations.
#[derive(Clone)]
pub struct CallMetrics {
    duration: HistogramVec,
}

impl CallMetrics {
    /// The calls a server answers.
    ///
    /// # Errors
    /// The metric is registered already.
    pub fn server(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::new(
            registry,
            "rpc_server_call_duration_seconds",
            "Duration of the gRPC calls this service answered.",
        )
    }

    /// The calls a client makes.
    ///
    /// # Errors
    /// The metric is registered already.
    pub fn client(registry: &Registry) -> Result<Self, prometheus::Error> {
        Self::new(
            registry,
            "rpc_client_call_duration_seconds",
            "Duration of the gRPC calls this service made to others.",
        )
    }

    fn new(registry: &Registry, name: &str, help: &str) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(name, help)
                .const_label("rpc_system", "grpc")
                .buckets(DURATION_BUCKETS.to_vec()),
            &["rpc_service", "rpc_method", "rpc_grpc_status_code"],
        )?;
        Ok(Self {
            duration: crate::register(registry, duration)?,
        })
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
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A gRPC service (server or channel) whose calls are timed.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: CallMetrics,
}

impl<S, B, R> Service<http::Request<B>> for Metered<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
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
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn calls_are_counted_by_service_method_and_code_and_unknown_methods_as_other() {
        let registry = Registry::new();
        let metrics = CallMetrics::server(&registry).unwrap();
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
