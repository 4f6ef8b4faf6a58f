//! Prometheus metrics of one gateway instance, in its own registry (several instances can share
//! a process, as in tests): requests by route, method and status, latency, authentication
//! failures by reason, upstream errors, the age of the key set and the lag of revocations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    auth_failures: IntCounterVec,
    upstream_errors: IntCounterVec,
    key_set_age: Gauge,
    revocation_lag: Gauge,
}

impl Metrics {
    /// # Errors
    /// A metric could not be registered (a programming error: names are constants).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response, by route and method.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new("auth_failures_total", "Refused access tokens by reason."),
            &["reason"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "upstream_errors_total",
                "Failed calls to auth-service and books-service by gRPC code.",
            ),
            &["service", "code"],
        )?;
        let key_set_age = Gauge::new(
            "jwks_age_seconds",
            "Seconds since auth-service's keys were last fetched (-1 before the first fetch).",
        )?;
        let revocation_lag = Gauge::new(
            "revocation_lag_seconds",
            "How far behind Redis the revocations checked here may be: the replica's lag, 0 when \
             Redis is asked on every request (-1 before the replica's first load).",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(key_set_age.clone()))?;
        registry.register(Box::new(revocation_lag.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            auth_failures,
            upstream_errors,
            key_set_age,
            revocation_lag,
        })
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    pub fn upstream_error(&self, service: &str, code: tonic::Code) {
        self.upstream_errors
            .with_label_values(&[service, &format!("{code:?}")])
            .inc();
    }

    /// The metrics in Prometheus' text format, with the key set's age and the revocations' lag
    /// as of now.
    pub fn render(
        &self,
        key_set_age: Option<Duration>,
        revocation_lag: Option<Duration>,
    ) -> String {
        let seconds = |duration: Option<Duration>| duration.map_or(-1.0, |d| d.as_secs_f64());
        self.key_set_age.set(seconds(key_set_age));
        self.revocation_lag.set(seconds(revocation_lag));
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Counts and times every request under its route pattern (`/api/books/{id}`, never the raw
/// path, so label values stay few).
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = request.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        // Known only once routing happened.
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[&route, &method, &status])
            .inc();
        metrics
            .latency
            .with_label_values(&[&route, &method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
